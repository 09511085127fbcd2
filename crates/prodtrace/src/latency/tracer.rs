//! Loading latency.bpf.c, attaching its uprobes to one process, and decoding
//! the completed operations it sends through its ring buffer.

use std::mem::MaybeUninit;
use std::path::PathBuf;

use anyhow::{anyhow, Context, Result};
use libbpf_rs::skel::{OpenSkel, SkelBuilder};
use libbpf_rs::{Link, MapCore, MapFlags, OpenObject, UprobeMultiOpts};

use super::sites::NapiLayout;

mod skel {
    include!(concat!(env!("OUT_DIR"), "/latency.skel.rs"));
}
use skel::{LatencySkel, LatencySkelBuilder};

/// Kind types, as in latency.bpf.c.
pub const KIND_NAPI: u32 = 1;
pub const KIND_TPW: u32 = 2;
pub const KIND_FS: u32 = 4;

/// Size of the BPF program's buffer for the words of a request (WIN_MAX).
const WINDOW_MAX: i64 = 256;

/// Storage the skeleton borrows for its lifetime.
pub type ObjectStorage = MaybeUninit<OpenObject>;

/// What to attach where.
pub struct Config {
    pub pid: u32,
    /// The file holding libuv, opened through the target's root.
    pub libuv: PathBuf,
    /// File offsets of the submit and done sites.
    pub offsets: (u64, u64),
    /// Where workers start and finish operations (--breakdown).
    pub run: RunSites,
    /// N-API layout with node's load bias.
    pub napi: Option<(NapiLayout, u64)>,
    /// --by caller: also record the first return address outside `skip`.
    pub by_caller: bool,
    pub skip: Option<(u64, u64)>,
    pub breakdown: bool,
    /// Programs that return at once (bench/latency.sh's "bare probes").
    pub bare: bool,
    /// libuv's own requests (fs, dns...), when their functions are known.
    pub internal: Option<InternalConfig>,
    /// ld.so (opened through the target's root) and the file offset of its
    /// `_dl_debug_state`, to hear about library loads.
    pub dl_debug_state: Option<(PathBuf, u64)>,
    /// Smaller maps (1 MiB ring buffer, 8192 overflow slots), for --serve,
    /// which loads the program once per traced process.
    pub compact: bool,
    /// --serve: keep histograms in the kernel (`hists`, at most this many
    /// entries) instead of sending operations through the ring buffer.
    pub aggregate: Option<u32>,
}

/// The worker-side probes of --breakdown (file offsets).
pub enum RunSites {
    /// Around `w->work(w)` in the worker loop; the operation is
    /// `register + displacement` (see `sites::WorkerSites`).
    Worker { start: u64, end: u64, reg: u8, disp: i64 },
    /// Entry and return of `uv__queue_work` (single-stepped, and a uretprobe).
    QueueWork(u64),
}

impl RunSites {
    /// The BPF cookie that tells run_start/run_end where the operation is.
    fn cookie(reg: u8, disp: i64) -> u64 {
        1 << 63 | (reg as u64) << 32 | (disp as i32 as u32 as u64)
    }
}

/// Probes for libuv's own thread-pool requests (see `sites::InternalSites`).
pub struct InternalConfig {
    /// File offsets of `uv__work_submit`'s site and of the done functions' sites.
    pub submit: u64,
    pub dones: Vec<u64>,
    /// Addresses of `uv__queue_work` and `uv__fs_work` (0 if unknown)
    /// relative to the probed instruction of `uv__work_submit`, and the
    /// offset of `work_req` in `uv_fs_t`.
    pub queue_work_rel: i64,
    pub fs_work_rel: i64,
    pub fs_req_off: u64,
}

/// A completed operation (struct event in latency.bpf.c); times in ns.
#[derive(Clone, Copy, Debug)]
pub struct Event {
    pub kind: u64,
    pub caller: u64,
    pub t_submit: u64,
    pub t_run: u64,
    pub t_ran: u64,
    pub t_done: u64,
    pub kind_type: u32,
}

impl Event {
    pub fn parse(data: &[u8]) -> Option<Self> {
        let w = |i: usize| data.get(i * 8..i * 8 + 8).map(|b| u64::from_ne_bytes(b.try_into().unwrap()));
        Some(Self {
            kind: w(0)?,
            caller: w(1)?,
            t_submit: w(2)?,
            t_run: w(3)?,
            t_ran: w(4)?,
            t_done: w(5)?,
            kind_type: w(6)? as u32,
        })
    }
}

/// The loaded program and its uprobes.
pub struct Tracer<'obj> {
    pub skel: LatencySkel<'obj>,
    links: Vec<Link>,
}

impl<'obj> Tracer<'obj> {
    /// Loads the program configured for `cfg` and attaches its uprobes to
    /// process `cfg.pid` only (completion and worker probes first, so that
    /// every operation seen starting is also seen ending).
    pub fn attach(storage: &'obj mut ObjectStorage, cfg: &Config) -> Result<Self> {
        let mut open = LatencySkelBuilder::default().open(storage).context("opening the latency BPF program")?;
        {
            let ro = open.maps.rodata_data.as_deref_mut().context("BPF program has no read-only data")?;
            // Bare probes: no process matches.
            ro.target_tgid = if cfg.bare { 0 } else { cfg.pid };
            if let Some((napi, bias)) = &cfg.napi {
                ro.tpw_work_cb = napi.work_cb.wrapping_add(*bias);
                ro.tpw_req_off = napi.req_off;
                ro.napi_vtable_lo = napi.vtable.0.wrapping_add(*bias);
                ro.napi_vtable_hi = napi.vtable.1.wrapping_add(*bias);
                // The one window of the request the BPF program reads: the
                // vtable pointer and the execute callback (unless too far
                // apart for its buffer: then N-API work is named by class).
                let vptr = -(napi.req_off as i64);
                let exec = napi.exec_off.filter(|&e| e.max(vptr) + 8 - e.min(vptr) <= WINDOW_MAX);
                let (lo, hi) = exec.map_or((vptr, vptr + 8), |e| (e.min(vptr), e.max(vptr) + 8));
                ro.napi_exec_off = exec.unwrap_or(0);
                ro.win_lo = lo;
                ro.win_len = (hi - lo) as u32;
            }
            if let Some(i) = &cfg.internal {
                ro.queue_work_rel = i.queue_work_rel;
                ro.fs_work_rel = i.fs_work_rel;
                ro.fs_req_off = i.fs_req_off;
            }
            ro.by_caller = cfg.by_caller;
            if let Some((lo, hi)) = cfg.skip {
                ro.skip1_lo = lo;
                ro.skip1_hi = hi;
            }
        }
        if cfg.compact {
            open.maps.events.set_max_entries(1 << 20).context("sizing the ring buffer")?;
            open.maps.starts.set_max_entries(8192).context("sizing the in-flight table")?;
        }
        if let Some(entries) = cfg.aggregate {
            open.maps.rodata_data.as_deref_mut().context("BPF program has no read-only data")?.aggregate = true;
            open.maps.hists.set_max_entries(entries.max(1)).context("sizing the histogram map")?;
            // Only library-load notices use a ring buffer then.
            open.maps.events.set_max_entries(4096).context("sizing the ring buffer")?;
        }
        if cfg.internal.is_none() {
            open.progs.submit_internal.set_autoload(false);
        }
        let worker_sites = matches!(cfg.run, RunSites::Worker { .. });
        if !cfg.breakdown {
            open.progs.run_start.set_autoload(false);
        }
        if !cfg.breakdown || !worker_sites {
            open.progs.run_end.set_autoload(false);
        }
        if !cfg.breakdown || worker_sites {
            open.progs.run_return.set_autoload(false);
        }
        let skel = open.load().context("loading the latency BPF program into the kernel")?;
        let mut tracer = Tracer { skel, links: Vec::new() };
        let pid = cfg.pid as i32;
        let (submit, done) = cfg.offsets;
        // One uprobe_multi link per program, bound to the target process;
        // `cookies`, one per offset or none, reach the program through
        // bpf_get_attach_cookie().
        let attach_all = |prog: &libbpf_rs::ProgramMut, ret: bool, offs: &[u64], cookies: &[u64], what: &str| {
            let offsets = offs.iter().map(|&o| o as usize).collect();
            let opts = UprobeMultiOpts { offsets, cookies: cookies.to_vec(), retprobe: ret, ..Default::default() };
            prog.attach_uprobe_multi_with_opts(pid, &cfg.libuv, "", opts)
                .with_context(|| format!("attaching uprobes to {what} in {} (offsets {offs:#x?})", cfg.libuv.display()))
        };
        let attach =
            |prog: &libbpf_rs::ProgramMut, ret: bool, off: u64, what: &str| attach_all(prog, ret, &[off], &[], what);
        if let Some((ldso, off)) = &cfg.dl_debug_state {
            let opts = UprobeMultiOpts { offsets: vec![*off as usize], ..Default::default() };
            tracer.links.push(
                tracer
                    .skel
                    .progs
                    .libs_changed
                    .attach_uprobe_multi_with_opts(pid, ldso, "", opts)
                    .with_context(|| format!("attaching a uprobe to _dl_debug_state in {}", ldso.display()))?,
            );
        }
        let mut dones = vec![done];
        if let Some(i) = &cfg.internal {
            dones.extend(&i.dones);
        }
        tracer.links.push(attach_all(
            &tracer.skel.progs.done,
            false,
            &dones,
            &[],
            "uv__queue_done and uv__fs_done...",
        )?);
        if cfg.breakdown {
            match cfg.run {
                RunSites::Worker { start, end, reg, disp } => {
                    let cookie = [RunSites::cookie(reg, disp)];
                    for (prog, off) in [(&tracer.skel.progs.run_start, start), (&tracer.skel.progs.run_end, end)] {
                        tracer.links.push(attach_all(prog, false, &[off], &cookie, "libuv's worker loop")?);
                    }
                }
                RunSites::QueueWork(run) => {
                    tracer.links.push(attach(&tracer.skel.progs.run_start, false, run, "uv__queue_work")?);
                    tracer.links.push(attach(&tracer.skel.progs.run_return, true, run, "uv__queue_work (return)")?);
                }
            }
        }
        if let Some(i) = &cfg.internal {
            tracer.links.push(attach(&tracer.skel.progs.submit_internal, false, i.submit, "uv__work_submit")?);
        }
        tracer.links.push(attach(&tracer.skel.progs.submit, false, submit, "uv_queue_work")?);
        Ok(tracer)
    }

    /// Removes every uprobe (the program stays loaded until drop).
    pub fn detach(&mut self) {
        // Stop new operations first, then completions.
        while let Some(link) = self.links.pop() {
            drop(link);
        }
    }

    /// Takes the uprobe links out, for the caller to close.  Closing one
    /// waits for an RCU grace period (about 50 ms here), so --serve,
    /// which detaches often and from many processes, closes them all at
    /// once on threads.
    pub fn take_links(&mut self) -> Vec<Link> {
        std::mem::take(&mut self.links)
    }

    /// (events lost because the ring buffer was full, operations not
    /// recorded because too many were in flight).
    pub fn losses(&self) -> Result<(u64, u64)> {
        let read = |i: u32| -> Result<u64> {
            let v = self
                .skel
                .maps
                .counters
                .lookup(&i.to_ne_bytes(), MapFlags::ANY)?
                .ok_or_else(|| anyhow!("counter {i} missing"))?;
            Ok(u64::from_ne_bytes(v[..8].try_into()?))
        };
        Ok((read(0)?, read(1)?))
    }
}
