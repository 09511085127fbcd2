//! Where the probes go, found by reading libuv's and node's machine code.
//!
//! A uprobe costs about 0.5 µs per hit when the kernel *emulates* the probed
//! instruction (push of a register, relative jmp/call, conditional jump,
//! nop) and about 10-20 µs when it must single-step a copy of it (loads,
//! `lea`, `test`, `endbr64`...).  So each probe goes on the first
//! instruction of its function that the kernel emulates, provided every
//! instruction before it leaves the registers the BPF program reads
//! untouched; otherwise on the function's entry.
//!
//! Functions located:
//! * `uv_queue_work` — exported, found by name;
//! * `uv__queue_done` / `uv__queue_work` — static: by name when the file
//!   has a symbol table (node), otherwise among the code addresses
//!   `uv_queue_work` stores into the request: the done callback is the one
//!   that loads `after_work_cb` (`[w - 8]`), the work callback loads
//!   `work_cb` (`[w - 16]`) (offsets fixed by uv.h's public `uv_work_t`);
//! * libuv's worker loop, for --breakdown: the calls around `w->work(w)`
//!   (see [`WorkerSites`]);
//! * N-API's layout in node (see [`NapiLayout`]).

use anyhow::{bail, Result};
use iced_x86::{
    Decoder, DecoderOptions, FlowControl, Instruction, InstructionInfoFactory, Mnemonic, OpAccess, OpKind, Register,
};

use super::elf::ElfImage;

/// A probe location (virtual address in the ELF file).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Site {
    pub vaddr: u64,
    /// Entry of the function the site is in.
    pub func: u64,
    /// Whether the kernel emulates the instruction (cheap) or single-steps it.
    pub emulated: bool,
}

/// Probe sites in the file that contains libuv.
#[derive(Clone, Debug)]
pub struct LibuvSites {
    /// In `uv_queue_work`, before anything overwrites its arguments or the stack pointer.
    pub submit: Site,
    /// In `uv__queue_done`, before anything overwrites its argument (`&req->work_req`).
    pub done: Site,
    /// Entry of `uv__queue_work` (worker thread, --breakdown, when `worker`
    /// is not found).
    pub run: Site,
    /// Around the worker loop's `w->work(w)` (--breakdown).
    pub worker: Option<WorkerSites>,
    /// libuv's own thread-pool requests, when the file has a symbol table.
    pub internal: Option<InternalSites>,
}

/// Where libuv's own thread-pool requests (fs, getaddrinfo, getnameinfo,
/// random) start and end: they go through the static `uv__work_submit`,
/// not `uv_queue_work`.
#[derive(Clone, Debug)]
pub struct InternalSites {
    /// In `uv__work_submit(loop, w, kind, work, done)`.
    pub submit: Site,
    /// In each request type's done function (`uv__fs_done`...), argument `w`.
    pub dones: Vec<Site>,
    /// `uv__fs_work`, and the offset of `work_req` in `uv_fs_t` (from its `container_of`).
    pub fs_work: Option<(u64, u64)>,
}

/// Done functions of libuv's own requests, and an exported function that
/// submits each kind (for files without symbols).
const INTERNAL: [(&str, &str); 4] = [
    ("uv__fs_done", "uv_fs_stat"),
    ("uv__getaddrinfo_done", "uv_getaddrinfo"),
    ("uv__getnameinfo_done", "uv_getnameinfo"),
    ("uv__random_done", "uv_random"),
];

/// uv__work_submit and the work and done functions passed to it, from the
/// first call in `func` made with `lea work(%rip),%rcx` and
/// `lea done(%rip),%r8` (its 4th and 5th arguments) still in place.
fn submit_call(image: &ElfImage, func: u64, size: u64) -> Option<(u64, u64, u64)> {
    let mut factory = InstructionInfoFactory::new();
    let (mut rcx, mut r8) = (None, None);
    for ins in decode_function(image, func, size) {
        if ins.is_call_near() {
            if let (Some(work), Some(done)) = (rcx, r8) {
                return Some((ins.near_branch_target(), work, done));
            }
        }
        let lea_rip = ins.mnemonic() == Mnemonic::Lea && ins.is_ip_rel_memory_operand();
        for (reg, val) in [(Register::RCX, &mut rcx), (Register::R8, &mut r8)] {
            if lea_rip && ins.op0_register() == reg {
                *val = Some(ins.ip_rel_memory_address());
            } else if ins.is_call_near() || writes_any(&mut factory, &ins, &[reg]) {
                *val = None;
            }
        }
        if matches!(ins.flow_control(), FlowControl::Return | FlowControl::UnconditionalBranch) {
            break;
        }
    }
    None
}

/// The sites by name when the file has symbols (node), otherwise through
/// the exported functions that submit each kind of request (Debian's
/// stripped libuv.so): `uv_fs_stat` calls `uv__work_submit(loop,
/// &req->work_req, ..., uv__fs_work, uv__fs_done)`, and so on.
fn internal_sites(image: &ElfImage) -> Option<InternalSites> {
    let by_name = |n: &str| image.symbol(n).map(|s| s.addr);
    let (submit, fs_work, dones): (u64, Option<u64>, Vec<u64>) = match by_name("uv__work_submit") {
        Some(submit) => {
            (submit, by_name("uv__fs_work"), INTERNAL.iter().filter_map(|(done, _)| by_name(done)).collect())
        }
        None => {
            let calls: Vec<(u64, u64, u64)> = INTERNAL
                .iter()
                .filter_map(|(_, caller)| image.symbol(caller))
                .filter_map(|f| submit_call(image, f.addr, f.size))
                .collect();
            let &(submit, fs_work, _) = calls.first()?;
            // They must all call the same function, or this is not libuv's shape.
            if calls.iter().any(|c| c.0 != submit) {
                return None;
            }
            (submit, Some(fs_work), calls.iter().map(|c| c.2).collect())
        }
    };
    if dones.is_empty() {
        return None;
    }
    let fs_work = fs_work.and_then(|f| {
        let code = image.bytes_at(f, 64)?;
        decode(code, f).iter().find_map(|i| {
            (i.mnemonic() == Mnemonic::Lea && i.memory_base() == Register::RDI && i.memory_index() == Register::None)
                .then(|| (f, (i.memory_displacement64() as i64).unsigned_abs()))
        })
    });
    let args = [Register::RDI, Register::RSI, Register::RDX, Register::RCX, Register::R8, Register::RSP];
    Some(InternalSites {
        submit: probe_site(image, submit, &args),
        dones: dones.iter().map(|&d| probe_site(image, d, &[Register::RDI])).collect(),
        fs_work,
    })
}

/// Where worker threads start and finish an operation (--breakdown).
///
/// libuv's worker loop runs an operation with `w->work(w)`, which compiles
/// to `lea D(%R),%rdi; call *D(%R)` with `R` a callee-saved register, so
/// `R + D` is the operation's `struct uv__work *` before and after the
/// call.  The probes go on the nearest kernel-emulated instructions around
/// it that are on the same straight-line code and leave `R` alone (in
/// node: `call uv_mutex_unlock` before, `call uv_mutex_lock` after): about
/// 1 µs per hit, where a probe at `uv__queue_work`'s entry (a `lea`) is
/// single-stepped and its return needs a uretprobe.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct WorkerSites {
    pub start: Site,
    pub end: Site,
    /// The callee-saved register, numbered as latency.bpf.c's `saved_reg`.
    pub reg: u8,
    pub disp: i64,
}

/// Callee-saved registers, in latency.bpf.c's `saved_reg` numbering.
const SAVED_REGS: [Register; 6] =
    [Register::RBX, Register::RBP, Register::R12, Register::R13, Register::R14, Register::R15];

/// Functions examined when looking for the worker loop without symbols.
const MAX_WORKER_CANDIDATES: usize = 64;

/// Finds the worker loop: libuv's static `worker` by name, or else among the
/// functions `uv_queue_work` leads to through code references (it starts
/// the threads on first use: uv_queue_work -> init_once -> ... -> worker).
pub fn worker_sites(image: &ElfImage, queue_work: u64, queue_work_size: u64) -> Option<WorkerSites> {
    if let Some(w) = image.symbol("worker") {
        return worker_sites_in(image, w.addr, w.size);
    }
    let mut seen = vec![queue_work];
    let mut i = 0;
    while i < seen.len() && seen.len() <= MAX_WORKER_CANDIDATES {
        let (func, size) = (seen[i], if i == 0 { queue_work_size } else { 4096 });
        if i > 0 {
            if let Some(w) = worker_sites_in(image, func, size) {
                return Some(w);
            }
        }
        for r in code_refs(image, func, size) {
            if !seen.contains(&r) {
                seen.push(r);
            }
        }
        i += 1;
    }
    None
}

fn worker_sites_in(image: &ElfImage, func: u64, size: u64) -> Option<WorkerSites> {
    let insns = decode_function(image, func, size);
    // Branch targets: a probe site must not be skipped by a jump into the
    // straight-line code between it and the call.
    let targets: Vec<u64> = insns
        .iter()
        .filter(|i| i.is_jcc_short_or_near() || i.is_jmp_short_or_near())
        .map(|i| i.near_branch_target())
        .collect();
    let mut factory = InstructionInfoFactory::new();
    let straight = |i: &Instruction| matches!(i.flow_control(), FlowControl::Next | FlowControl::Call);
    for (c, call) in insns.iter().enumerate() {
        if call.flow_control() != FlowControl::IndirectCall
            || call.op0_kind() != OpKind::Memory
            || call.memory_index() != Register::None
        {
            continue;
        }
        let (base, disp) = (call.memory_base(), call.memory_displacement64() as i64);
        let Some(reg) = SAVED_REGS.iter().position(|&r| r == base) else { continue };
        // `lea D(%R),%rdi` before it, with neither register written in between.
        let Some(lea) = insns[..c].iter().rposition(|i| {
            i.mnemonic() == Mnemonic::Lea
                && i.op0_register() == Register::RDI
                && i.memory_base() == base
                && i.memory_index() == Register::None
                && i.memory_displacement64() as i64 == disp
        }) else {
            continue;
        };
        if insns[lea + 1..c].iter().any(|i| !straight(i) || writes_any(&mut factory, i, &[Register::RDI, base]))
            || insns[lea + 1..=c].iter().any(|i| targets.contains(&i.ip()))
        {
            continue;
        }
        // Before: walk back from the lea while the code is straight and leaves R alone.
        let mut start = None;
        for k in (0..=lea).rev() {
            let ins = &insns[k];
            if !straight(ins) || writes_any(&mut factory, ins, &[base]) {
                break;
            }
            if kernel_emulates(ins) {
                start = Some(ins.ip());
                break;
            }
            if targets.contains(&ins.ip()) {
                break;
            }
        }
        // After: walk forward from the call.
        let mut end = None;
        for ins in &insns[c + 1..] {
            if targets.contains(&ins.ip()) {
                break;
            }
            if kernel_emulates(ins) {
                end = Some(ins.ip());
                break;
            }
            if !straight(ins) || writes_any(&mut factory, ins, &[base]) {
                break;
            }
        }
        let (Some(start), Some(end)) = (start, end) else { continue };
        let site = |vaddr| Site { vaddr, func, emulated: true };
        return Some(WorkerSites { start: site(start), end: site(end), reg: reg as u8, disp });
    }
    None
}

/// Where N-API keeps the add-on's execute callback, for node binaries.
///
/// node's N-API async work is `uvimpl::Work : AsyncResource, ThreadPoolWork`;
/// `ThreadPoolWork::ScheduleWork` calls `uv_queue_work(loop, &work_req_,
/// <lambda>, ...)`.  At `uv_queue_work`, `req - req_off` is the
/// ThreadPoolWork (its first word the vtable pointer) and, when that vtable
/// is `uvimpl::Work`'s, `*(req + exec_off)` is the execute callback.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct NapiLayout {
    /// `ThreadPoolWork::ScheduleWork()::{lambda(uv_work_s*)#1}` (vaddr).
    pub work_cb: u64,
    /// Offset of `work_req_` in ThreadPoolWork.
    pub req_off: u64,
    /// `[lo, hi)` of the vtable of `uvimpl::Work` (vaddr).
    pub vtable: (u64, u64),
    /// Offset from `&work_req_` to `uvimpl::Work::_execute`, if it could be read.
    pub exec_off: Option<i64>,
}

const MAX_INSNS: usize = 64;

fn decode(code: &[u8], ip: u64) -> Vec<Instruction> {
    let mut decoder = Decoder::with_ip(64, code, ip, DecoderOptions::NONE);
    let mut out = Vec::new();
    while decoder.can_decode() && out.len() < MAX_INSNS {
        let ins = decoder.decode();
        if ins.is_invalid() {
            break;
        }
        out.push(ins);
    }
    out
}

/// The instructions of the function at `func` of `size` bytes (16 to 4096:
/// a function whose size is unknown is read as 4096 bytes), up to the first
/// undecodable one.
fn decode_function(image: &ElfImage, func: u64, size: u64) -> Vec<Instruction> {
    let Some(code) = image.bytes_at(func, size.clamp(16, 4096)) else { return Vec::new() };
    let mut decoder = Decoder::with_ip(64, code, func, DecoderOptions::NONE);
    let mut out = Vec::new();
    while decoder.can_decode() {
        let ins = decoder.decode();
        if ins.is_invalid() {
            break;
        }
        out.push(ins);
    }
    out
}

/// Whether Linux's x86 uprobe code emulates `ins` rather than single-stepping
/// it (arch/x86/kernel/uprobes.c: relative branches and calls, `push reg`,
/// nops).
pub fn kernel_emulates(ins: &Instruction) -> bool {
    match ins.mnemonic() {
        Mnemonic::Push => ins.op0_kind() == OpKind::Register && ins.op0_register().is_gpr64(),
        Mnemonic::Nop => true,
        _ => ins.is_jcc_short_or_near() || ins.is_jmp_short_or_near() || ins.is_call_near(),
    }
}

fn writes_any(factory: &mut InstructionInfoFactory, ins: &Instruction, regs: &[Register]) -> bool {
    factory.info(ins).used_registers().iter().any(|u| {
        !matches!(u.access(), OpAccess::Read | OpAccess::CondRead | OpAccess::NoMemAccess | OpAccess::None)
            && regs.contains(&u.register().full_register())
    })
}

/// The first kernel-emulated instruction of the function at `func` reached
/// straight from its entry with none of `keep` written before it; the entry
/// itself when there is none.  (Submit probes keep RSP too: --by caller
/// reads the return address at the top of the stack.)
pub fn probe_site(image: &ElfImage, func: u64, keep: &[Register]) -> Site {
    let entry = Site { vaddr: func, func, emulated: false };
    let Some(code) = image.bytes_at(func, 256) else { return entry };
    let mut factory = InstructionInfoFactory::new();
    for ins in decode(code, func) {
        if kernel_emulates(&ins) {
            return Site { vaddr: ins.ip(), func, emulated: true };
        }
        if ins.flow_control() != FlowControl::Next || writes_any(&mut factory, &ins, keep) {
            break;
        }
    }
    entry
}

/// Displacements of the memory operands based on RDI (and no index) that
/// the function at `func` uses before RDI is overwritten, on its
/// fall-through path.
fn rdi_displacements(image: &ElfImage, func: u64) -> Vec<i64> {
    let Some(code) = image.bytes_at(func, 256) else { return Vec::new() };
    let mut factory = InstructionInfoFactory::new();
    let mut out = Vec::new();
    for ins in decode(code, func) {
        for i in 0..ins.op_count() {
            if ins.op_kind(i) == OpKind::Memory
                && ins.memory_base() == Register::RDI
                && ins.memory_index() == Register::None
            {
                out.push(ins.memory_displacement64() as i64);
            }
        }
        if matches!(
            ins.flow_control(),
            FlowControl::Return | FlowControl::UnconditionalBranch | FlowControl::IndirectBranch
        ) || writes_any(&mut factory, &ins, &[Register::RDI])
        {
            break;
        }
    }
    out
}

/// Code addresses a function refers to: RIP-relative `lea` targets, code
/// pointers loaded from RIP-relative data, and immediates that fall in code.
fn code_refs(image: &ElfImage, func: u64, size: u64) -> Vec<u64> {
    let mut refs = Vec::new();
    for ins in decode_function(image, func, size) {
        for i in 0..ins.op_count() {
            match ins.op_kind(i) {
                OpKind::Memory if ins.is_ip_rel_memory_operand() => {
                    let target = ins.ip_rel_memory_address();
                    if ins.mnemonic() == Mnemonic::Lea {
                        refs.push(target);
                    } else {
                        refs.extend([image.u64_at(target), image.u64_at(target + 8)].into_iter().flatten());
                    }
                }
                OpKind::Immediate32 | OpKind::Immediate32to64 | OpKind::Immediate64 => refs.push(ins.immediate(i)),
                _ => {}
            }
        }
    }
    refs.retain(|&a| a != func && image.is_code(a));
    refs.sort_unstable();
    refs.dedup();
    refs
}

/// Finds the probe sites of the libuv inside `image`, which defines `uv_queue_work`.
pub fn libuv_sites(image: &ElfImage) -> Result<LibuvSites> {
    let Some(queue_work) = image.symbol("uv_queue_work") else {
        bail!("{} does not define uv_queue_work", image.path.display());
    };
    let by_name = |n: &str| image.symbol(n).map(|s| s.addr);
    let (mut work, mut done) = (by_name("uv__queue_work"), by_name("uv__queue_done"));
    if work.is_none() || done.is_none() {
        for cand in code_refs(image, queue_work.addr, queue_work.size) {
            let disps = rdi_displacements(image, cand);
            if done.is_none() && disps.contains(&-8) {
                done = Some(cand);
            } else if work.is_none() && disps.contains(&-16) {
                work = Some(cand);
            }
        }
    }
    let (Some(work), Some(done)) = (work, done) else {
        bail!("cannot find libuv's uv__queue_done/uv__queue_work in {} (unknown libuv build)", image.path.display());
    };
    use Register::*;
    Ok(LibuvSites {
        submit: probe_site(image, queue_work.addr, &[RDI, RSI, RDX, RCX, RSP]),
        done: probe_site(image, done, &[RDI]),
        run: Site { vaddr: work, func: work, emulated: false },
        worker: worker_sites(image, queue_work.addr, queue_work.size),
        internal: internal_sites(image),
    })
}

/// N-API's layout in a node binary; `None` when `image` is not node (has no
/// `ThreadPoolWork::ScheduleWork` lambda).
pub fn napi_layout(image: &ElfImage) -> Option<NapiLayout> {
    const LAMBDA: &str = "_ZZN4node14ThreadPoolWork12ScheduleWorkEvENUlP9uv_work_sE_";
    const DO_WORK: &str = "N12_GLOBAL__N_16uvimpl4Work16DoThreadPoolWorkEv";
    let lambda = image.symbols(|n| n.starts_with(LAMBDA)).into_iter().next()?;
    // The lambda's container_of: `lea -req_off(%rdi), reg`.
    let req_off = image
        .bytes_at(lambda.addr, 128)
        .map(|code| decode(code, lambda.addr))
        .and_then(|insns| {
            insns.iter().find_map(|i| {
                (i.mnemonic() == Mnemonic::Lea
                    && i.memory_base() == Register::RDI
                    && i.memory_index() == Register::None)
                    .then(|| (i.memory_displacement64() as i64).unsigned_abs())
            })
        })
        .unwrap_or(0x10);
    let vt = image.symbol("_ZTVN12_GLOBAL__N_16uvimpl4WorkE")?;
    let exec_off = image.symbol(&format!("_Z{DO_WORK}")).and_then(|f| {
        // `this` adjustment of the ThreadPoolWork base: the non-virtual
        // thunk `_ZThn<N>_...` subtracts N.
        let thunk_adj: i64 = image
            .symbols(|n| n.starts_with("_ZThn") && n.ends_with(DO_WORK))
            .first()
            .and_then(|t| t.name["_ZThn".len()..].split('_').next()?.parse().ok())
            .unwrap_or(0);
        execute_displacement(image, f.addr).map(|d| d - thunk_adj - req_off as i64)
    });
    Some(NapiLayout { work_cb: lambda.addr, req_off, vtable: (vt.addr, vt.addr + vt.size.max(8)), exec_off })
}

/// In `uvimpl::Work::DoThreadPoolWork` (`_execute(_env, _data)`), the
/// displacement from `this` of the pointer it calls.
fn execute_displacement(image: &ElfImage, func: u64) -> Option<i64> {
    let code = image.bytes_at(func, 128)?;
    let mut factory = InstructionInfoFactory::new();
    let mut loaded: Vec<(Register, i64)> = Vec::new();
    let mut rdi_intact = true;
    for ins in decode(code, func) {
        let from_rdi = rdi_intact
            && ins.op_count() == 2
            && ins.op1_kind() == OpKind::Memory
            && ins.memory_base() == Register::RDI
            && ins.memory_index() == Register::None;
        if matches!(ins.flow_control(), FlowControl::IndirectBranch | FlowControl::IndirectCall) {
            return match ins.op0_kind() {
                OpKind::Register => {
                    loaded.iter().rev().find(|(r, _)| *r == ins.op0_register().full_register()).map(|&(_, d)| d)
                }
                OpKind::Memory if rdi_intact && ins.memory_base() == Register::RDI => {
                    Some(ins.memory_displacement64() as i64)
                }
                _ => None,
            };
        }
        if ins.mnemonic() == Mnemonic::Mov && from_rdi && ins.op0_kind() == OpKind::Register {
            loaded.push((ins.op0_register().full_register(), ins.memory_displacement64() as i64));
        } else if writes_any(&mut factory, &ins, &[Register::RDI]) {
            rdi_intact = false;
        }
        if ins.flow_control() != FlowControl::Next {
            break;
        }
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::path::Path;

    #[test]
    fn classifies_instructions_like_the_kernel() {
        let cases: &[(&[u8], bool)] = &[
            (&[0x55], true),                    // push %rbp
            (&[0x41, 0x54], true),              // push %r12
            (&[0x74, 0x10], true),              // je
            (&[0x0f, 0x84, 1, 0, 0, 0], true),  // je rel32
            (&[0xe8, 1, 0, 0, 0], true),        // call rel32
            (&[0xeb, 0x10], true),              // jmp rel8
            (&[0x0f, 0x1f, 0x44, 0, 0], true),  // nopl 0(%rax,%rax,1)
            (&[0x48, 0x8b, 0x57, 0xe8], false), // mov -0x18(%rdi),%rdx
            (&[0x48, 0x85, 0xd2], false),       // test %rdx,%rdx
            (&[0xf3, 0x0f, 0x1e, 0xfa], false), // endbr64
            (&[0xff, 0xe0], false),             // jmp *%rax
            (&[0x4c, 0x8d, 0x47, 0xa8], false), // lea -0x58(%rdi),%r8
        ];
        for (bytes, want) in cases {
            let ins = decode(bytes, 0x1000)[0];
            assert_eq!(kernel_emulates(&ins), *want, "{bytes:02x?}");
        }
    }

    /// node's libuv has symbols; its uv_queue_work starts with `push %rbp`,
    /// and uv__queue_done's first emulated instruction is a `je` after two
    /// loads that leave RDI alone.
    #[test]
    fn node_sites() {
        let node = ElfImage::open(Path::new("/usr/bin/node")).unwrap();
        let s = libuv_sites(&node).unwrap();
        assert_eq!(s.submit.vaddr, node.symbol("uv_queue_work").unwrap().addr);
        assert!(s.submit.emulated && s.done.emulated);
        assert_eq!(s.done.func, node.symbol("uv__queue_done").unwrap().addr);
        assert!(s.done.vaddr > s.done.func);
        assert_eq!(s.run.func, node.symbol("uv__queue_work").unwrap().addr);
        let internal = s.internal.unwrap();
        assert_eq!(internal.submit.vaddr, node.symbol("uv__work_submit").unwrap().addr);
        assert_eq!(internal.dones.len(), 4);
        assert!(internal.dones.iter().all(|d| d.emulated), "{internal:?}");
        // uv__fs_work starts `push %rbp; lea -0x150(%rdi),%rax` (container_of).
        assert_eq!(internal.fs_work, Some((node.symbol("uv__fs_work").unwrap().addr, 0x150)));
        // --breakdown: around `call *-0x18(%rbx)` (w->work(w)) in worker():
        // `call uv_mutex_unlock` before, `call uv_mutex_lock` after.
        let q = node.symbol("uv_queue_work").unwrap();
        let w = worker_sites(&node, q.addr, q.size).unwrap();
        let worker = node.symbol("worker").unwrap();
        assert_eq!((w.reg, w.disp), (0, -0x18), "{w:?}");
        for (site, callee) in [(w.start, "uv_mutex_unlock"), (w.end, "uv_mutex_lock")] {
            assert_eq!(site.func, worker.addr);
            let ins = decode(node.bytes_at(site.vaddr, 16).unwrap(), site.vaddr)[0];
            assert!(ins.is_call_near(), "{ins:?}");
            assert_eq!(ins.near_branch_target(), node.symbol(callee).unwrap().addr);
        }
        assert!(w.start.vaddr < w.end.vaddr && w.end.vaddr - w.start.vaddr < 32, "{w:?}");
        let napi = napi_layout(&node).unwrap();
        assert_eq!(napi.req_off, 0x10);
        // Cross-checked with the lambda's inlined call `*0xa8(%r13)`, r13 = req - 0x10.
        assert_eq!(napi.exec_off, Some(0x98));
    }

    /// Debian's libuv.so is stripped: the static callbacks are found through
    /// uv_queue_work's references, and must agree with what node's symbols say
    /// about the same code shape.
    #[test]
    fn stripped_libuv_so_sites() {
        let lib = ElfImage::open(Path::new("/usr/lib/x86_64-linux-gnu/libuv.so.1")).unwrap();
        assert!(lib.symbol("uv__queue_done").is_none(), "expected a stripped libuv.so");
        let s = libuv_sites(&lib).unwrap();
        assert!(s.submit.emulated, "{s:?}");
        assert!(s.done.emulated, "{s:?}");
        assert_ne!(s.done.func, s.run.func);
        assert!(rdi_displacements(&lib, s.done.func).contains(&-8));
        assert!(rdi_displacements(&lib, s.run.func).contains(&-16));
        assert!(napi_layout(&lib).is_none());
        // Its worker loop is found through uv_queue_work's references, with
        // the same shape as node's: probes on the two PLT calls around `w->work(w)`.
        let q = lib.symbol("uv_queue_work").unwrap();
        let w = worker_sites(&lib, q.addr, q.size).unwrap();
        assert_eq!((w.reg, w.disp), (0, -0x18), "{w:?}");
        for site in [w.start, w.end] {
            assert!(decode(lib.bytes_at(site.vaddr, 16).unwrap(), site.vaddr)[0].is_call_near(), "{w:?}");
        }
        // libuv's own requests: found through uv_fs_stat, uv_getaddrinfo...
        // (uv_fs_stat: `lea uv__fs_done(%rip),%r8; lea uv__fs_work(%rip),%rcx;
        // call uv__work_submit`), with uv__fs_work's `lea -0x150(%rdi)`.
        let internal = s.internal.unwrap();
        assert_eq!(internal.dones.len(), 4, "{internal:?}");
        assert!(internal.submit.emulated && internal.dones.iter().all(|d| d.emulated), "{internal:?}");
        assert_eq!(internal.fs_work.map(|f| f.1), Some(0x150));
        let stat = lib.symbol("uv_fs_stat").unwrap();
        let (submit, work, done) = submit_call(&lib, stat.addr, stat.size).unwrap();
        assert_eq!((submit, work, done), (internal.submit.func, internal.fs_work.unwrap().0, internal.dones[0].func));
    }
}
