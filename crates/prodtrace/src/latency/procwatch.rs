//! Loader of procwatch.bpf.c: the exec and exit tracepoints that tell
//! `prodtrace latency --serve` about processes named by `--comm` starting
//! and about traced processes ending, so that it never polls /proc.

use std::cell::RefCell;
use std::mem::MaybeUninit;
use std::rc::Rc;

use anyhow::{Context, Result};
use libbpf_rs::skel::{OpenSkel, SkelBuilder};
use libbpf_rs::{Link, MapCore, MapFlags, OpenObject, RingBuffer, RingBufferBuilder};

mod skel {
    include!(concat!(env!("OUT_DIR"), "/procwatch.skel.rs"));
}
use skel::{ProcwatchSkel, ProcwatchSkelBuilder};

/// Storage the skeleton borrows for its lifetime.
pub type ObjectStorage = MaybeUninit<OpenObject>;

/// What happened to a process.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum ProcEvent {
    /// It finished execve() (a new program, named `comm`).
    Exec { pid: u32, comm: String },
    /// Its main thread exited.
    Exit { pid: u32 },
}

/// A comm as the kernel keeps it: at most 15 bytes, NUL-padded to 16.
pub fn comm_key(name: &str) -> [u8; 16] {
    let mut key = [0u8; 16];
    let b = name.as_bytes();
    let n = b.len().min(15);
    key[..n].copy_from_slice(&b[..n]);
    key
}

/// The loaded tracepoints and the ring buffer they write to.
pub struct ProcWatch<'obj> {
    skel: ProcwatchSkel<'obj>,
    _links: Vec<Link>,
    ring: RingBuffer<'static>,
    queue: Rc<RefCell<Vec<ProcEvent>>>,
}

impl<'obj> ProcWatch<'obj> {
    /// Starts watching for execs of processes named one of `comms`.
    pub fn start(storage: &'obj mut ObjectStorage, comms: &[String]) -> Result<Self> {
        let open = ProcwatchSkelBuilder::default().open(storage).context("opening the process-watch BPF program")?;
        let skel = open.load().context("loading the process-watch BPF program into the kernel")?;
        for c in comms {
            skel.maps.comms.update(&comm_key(c), &[1], MapFlags::ANY).context("configuring --comm")?;
        }
        let links = vec![
            skel.progs.on_exec.attach().context("attaching to the sched_process_exec tracepoint")?,
            skel.progs.on_exit.attach().context("attaching to the sched_process_exit tracepoint")?,
        ];
        let queue: Rc<RefCell<Vec<ProcEvent>>> = Rc::default();
        let q = queue.clone();
        let mut builder = RingBufferBuilder::new();
        builder.add(&skel.maps.proc_events, move |data: &[u8]| {
            if data.len() >= 24 {
                let pid = u32::from_ne_bytes(data[0..4].try_into().unwrap());
                let what = u32::from_ne_bytes(data[4..8].try_into().unwrap());
                let comm = &data[8..24];
                let end = comm.iter().position(|&b| b == 0).unwrap_or(comm.len());
                let comm = String::from_utf8_lossy(&comm[..end]).into_owned();
                q.borrow_mut().push(if what == 1 { ProcEvent::Exec { pid, comm } } else { ProcEvent::Exit { pid } });
            }
            0
        })?;
        let ring = builder.build().context("setting up the process-watch ring buffer")?;
        Ok(Self { skel, _links: links, ring, queue })
    }

    /// Also report the exit (and exec) of `pid`.
    pub fn watch(&self, pid: u32) {
        let _ = self.skel.maps.pids.update(&pid.to_ne_bytes(), &[1], MapFlags::ANY);
    }

    pub fn unwatch(&self, pid: u32) {
        let _ = self.skel.maps.pids.delete(&pid.to_ne_bytes());
    }

    /// Waits up to `timeout` for events; returns those that arrived.
    pub fn wait(&self, timeout: std::time::Duration) -> Vec<ProcEvent> {
        if self.ring.poll_raw(timeout) >= 0 {
            self.ring.consume_raw();
        }
        std::mem::take(&mut *self.queue.borrow_mut())
    }

    /// Events dropped because the ring buffer was full.
    pub fn lost(&self) -> u64 {
        self.skel
            .maps
            .proc_lost
            .lookup(&0u32.to_ne_bytes(), MapFlags::ANY)
            .ok()
            .flatten()
            .and_then(|v| v.get(..8).map(|b| u64::from_ne_bytes(b.try_into().unwrap())))
            .unwrap_or(0)
    }
}
