//! Loading and attaching the catch BPF program (`bpf/catch.bpf.c`): turns a
//! [`Filter`] and the signal to send into the program's read-only
//! configuration, attaches it to the raw `sys_exit` tracepoint, and hands
//! matched events from its ring buffer to the caller.  Dropping the
//! [`Probe`] detaches the program.  When it stops processes, the program
//! holds one at a time until [`Probe::release_hold`] (matches meanwhile are
//! counted as [`Probe::skipped`]); prodtrace's own process never matches.

use std::cell::RefCell;
use std::collections::VecDeque;
use std::mem::MaybeUninit;
use std::rc::Rc;
use std::time::Duration;

use anyhow::{Context, Result};
use libbpf_rs::skel::{OpenSkel, SkelBuilder};
use libbpf_rs::{Link, MapCore, MapFlags, OpenObject, RingBuffer, RingBufferBuilder};

use super::filter::Filter;

#[allow(clippy::all, dead_code)]
mod skel {
    include!(concat!(env!("OUT_DIR"), "/catch.skel.rs"));
}
use skel::{CatchSkel, CatchSkelBuilder};

/// The signal the BPF program sends at a match (its `SEND_*` numbers).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Send {
    Nothing = 0,
    AbortThread = 1,
    StopProcess = 2,
}

/// Highest syscall number the program's number filter covers.
const MAX_NR: u32 = 1024;

/// The loaded and attached program.
pub struct Probe<'obj> {
    skel: CatchSkel<'obj>,
    link: RefCell<Option<Link>>,
}

/// Reader of the program's ring buffer (borrows the [`Probe`]).
pub struct Events<'a> {
    ring: RingBuffer<'a>,
    queue: Rc<RefCell<VecDeque<Vec<u8>>>>,
}

/// Storage the skeleton borrows for its lifetime.
pub type ObjectStorage = MaybeUninit<OpenObject>;

impl<'obj> Probe<'obj> {
    /// Loads the program configured for `filter`, sending `send` at each of
    /// the first `max_hits` matches (0: every match), and attaches it.
    pub fn attach(storage: &'obj mut ObjectStorage, filter: &Filter, send: Send, max_hits: u32) -> Result<Self> {
        let mut open = CatchSkelBuilder::default().open(storage).context("opening the catch BPF program")?;
        {
            let ro = open.maps.rodata_data.as_deref_mut().context("BPF program has no read-only data")?;
            ro.self_tgid = std::process::id();
            ro.target_tgid = filter.pid.unwrap_or(0);
            if let Some(comm) = &filter.comm {
                ro.filter_comm = true;
                for (dst, src) in ro.comm.iter_mut().zip(comm.bytes().take(15)) {
                    *dst = src as i8;
                }
            }
            if !filter.syscalls.is_empty() {
                ro.filter_nr = true;
                for &nr in &filter.syscalls {
                    if nr < MAX_NR {
                        ro.nr_set[nr as usize] = 1;
                    }
                }
            }
            if let Some(r) = filter.ret {
                ro.ret_op = r.op as u32;
                ro.ret_value = r.value;
            }
            ro.only_failed = filter.failed;
            for &(i, v) in &filter.args {
                ro.arg_mask |= 1 << i;
                ro.arg_values[i] = v;
            }
            ro.send = send as u32;
            ro.max_hits = max_hits;
        }
        let skel = open.load().context("loading the catch BPF program into the kernel")?;
        let link = skel
            .progs
            .catch_sys_exit
            .attach_raw_tracepoint("sys_exit")
            .context("attaching to the sys_exit tracepoint")?;
        Ok(Probe { skel, link: RefCell::new(Some(link)) })
    }

    /// A reader of the matched events.
    pub fn events(&self) -> Result<Events<'_>> {
        let queue: Rc<RefCell<VecDeque<Vec<u8>>>> = Rc::default();
        let q = queue.clone();
        let mut builder = RingBufferBuilder::new();
        builder.add(&self.skel.maps.events, move |data: &[u8]| {
            q.borrow_mut().push_back(data.to_vec());
            0
        })?;
        Ok(Events { ring: builder.build()?, queue })
    }

    /// Detaches the program: no new matches, no more signals.
    pub fn detach(&self) {
        self.link.borrow_mut().take();
    }

    /// Matches lost because the ring buffer was full (nothing was done
    /// for them: no event, no signal).
    pub fn dropped(&self) -> u64 {
        self.skel.maps.bss_data.as_deref().map(|b| b.dropped).unwrap_or(0)
    }

    /// Matches not acted on because a process stopped at an earlier match
    /// was still held (no event, no signal).
    pub fn skipped(&self) -> u64 {
        self.skel.maps.bss_data.as_deref().map(|b| b.skipped).unwrap_or(0)
    }

    /// Lets the program stop a process again: call it once the process
    /// stopped at the last match is resumed (or left stopped on purpose).
    pub fn release_hold(&self) -> Result<()> {
        let (key, value) = (0u32.to_ne_bytes(), 0u64.to_ne_bytes());
        self.skel.maps.holding.update(&key, &value, MapFlags::ANY).context("releasing the BPF program's hold")
    }
}

impl Events<'_> {
    /// Waits up to `timeout` for events; returns the ones that arrived.
    pub fn poll(&mut self, timeout: Duration) -> Result<Vec<Vec<u8>>> {
        match self.ring.poll(timeout) {
            // A signal (Ctrl-C) interrupted the wait: not an error.
            Err(e) if e.kind() == libbpf_rs::ErrorKind::Interrupted => {}
            other => other.context("reading events from the BPF ring buffer")?,
        }
        Ok(self.queue.borrow_mut().drain(..).collect())
    }

    /// Events already in the ring buffer, without waiting.
    pub fn drain(&mut self) -> Result<Vec<Vec<u8>>> {
        self.ring.consume().context("draining the BPF ring buffer")?;
        Ok(self.queue.borrow_mut().drain(..).collect())
    }
}
