//! Names of operation kinds: turns what the BPF program recorded (an N-API
//! execute callback, a node::ThreadPoolWork vtable, a libuv work_cb, an fs
//! request type, or a caller's return address) into `module` + demangled
//! function name.
//!
//! Names are resolved from the files the target maps (a
//! `symbolize::Snapshot` of /proc/PID/maps, refreshed when ld.so loads
//! libraries, when a new kind's code is outside it, and at most once per
//! naming pass), so kinds can still be
//! named after the target has exited.  JIT code (anonymous memory) is
//! named through node's perf map, read at most once per pass.  Naming is
//! done when a report is printed, never in the tracing loop, which only
//! re-reads the maps (at most once per turn) when a new kind's code is
//! outside them.

use std::collections::HashMap;
use std::path::Path;

use symbolize::{PerfMap, Snapshot, Symbolizer};

use super::elf::{ElfImage, Sym};
use super::report::{RawKind, Report, Tally};
use super::target::Target;
use super::tracer::{KIND_FS, KIND_NAPI, KIND_TPW};

const JIT_MODULE: &str = "JIT";
const UNNAMED_JIT: &str = "[JIT code: run node with --perf-basic-prof for names]";

/// libc functions at the bottom of every stack (process and thread entry):
/// a stack walk that reaches them found no caller.
const STACK_BOTTOM: [&str; 6] =
    ["__libc_start_call_main", "__libc_start_main", "start_thread", "clone", "clone3", "_start"];

/// A kind's display name.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Kind {
    /// File name of the module holding the function (`node_sqlite3.node`).
    pub module: String,
    /// Demangled function name (`node_sqlite3::Statement::Work_Run`).
    pub name: String,
}

impl Kind {
    /// DTrace's `module`function` form.
    pub fn display(&self) -> String {
        if self.module.is_empty() {
            self.name.clone()
        } else {
            format!("{}`{}", self.module, self.name)
        }
    }
}

/// Resolves and caches kind names for one process.
pub struct Namer {
    pid: u32,
    snapshot: Option<Snapshot>,
    symbolizer: Symbolizer,
    /// `_ZTV*` symbols of the executable (runtime addresses), for ThreadPoolWork kinds.
    vtables: Vec<Sym>,
    /// File name of the executable, as the target names it (`node`).
    exe_module: String,
    /// The file holding libuv, as the target names it, and its file name.
    libuv: std::path::PathBuf,
    libuv_module: String,
    /// --by caller: name operations by their caller where there is one.
    by_caller: bool,
    cache: HashMap<RawKind, Kind>,
    /// Whether the maps were re-read in this naming pass.
    refreshed: bool,
    /// The perf map, once read in this naming pass.
    perf_map: Option<PerfMap>,
    /// Whether a kind seen while tracing is outside the snapshot.
    stale: bool,
}

impl Namer {
    /// `exe` is the executable's image and load bias (for vtable names) and
    /// `exe_path` its path as the target names it; `libuv` the path (as the
    /// target names it) of the file holding libuv.
    pub fn new(target: &Target, exe: Option<(&ElfImage, u64)>, exe_path: &Path, libuv: &Path, by_caller: bool) -> Self {
        let mut vtables = Vec::new();
        if let Some((image, bias)) = exe {
            vtables = image.symbols(|n| n.starts_with("_ZTV"));
            for v in &mut vtables {
                v.addr = v.addr.wrapping_add(bias);
            }
            vtables.sort_by_key(|v| v.addr);
        }
        Self {
            pid: target.pid,
            snapshot: Snapshot::take(target.pid).ok(),
            symbolizer: Symbolizer::new(),
            vtables,
            exe_module: short_name(exe_path),
            libuv: libuv.to_path_buf(),
            libuv_module: short_name(libuv),
            by_caller,
            cache: HashMap::new(),
            refreshed: false,
            perf_map: None,
            stale: false,
        }
    }

    /// The report of `tally` by name (one naming pass).
    pub fn name_all(&mut self, tally: &Tally) -> Report {
        self.new_pass();
        tally.named(|raw| self.name(raw))
    }

    /// Starts a naming pass: the maps may be re-read, and the perf map is
    /// read again, once more.
    pub fn new_pass(&mut self) {
        self.refreshed = false;
        self.perf_map = None;
    }

    /// The name of one raw kind: its caller's with --by caller when it has
    /// one outside node and libuv, else its own.
    pub fn name(&mut self, raw: &RawKind) -> Kind {
        if let Some(k) = self.cache.get(raw) {
            return k.clone();
        }
        let by_caller = (self.by_caller && raw.caller != 0).then(|| self.caller_kind(raw.caller)).flatten();
        let kind = match by_caller {
            Some(k) => k,
            None => self.own_kind(raw.kind_type, raw.kind),
        };
        self.cache.insert(*raw, kind.clone());
        kind
    }

    /// The kind of `addr` recorded as `kind_type`.
    fn own_kind(&mut self, kind_type: u32, addr: u64) -> Kind {
        match kind_type {
            KIND_TPW => self.vtable_kind(addr),
            KIND_FS => Kind { module: self.libuv_module.clone(), name: fs_kind(addr as i64) },
            KIND_NAPI if addr == 0 => {
                Kind { module: String::new(), name: "[N-API work with no execute callback]".into() }
            }
            _ => self.code_kind(addr).unwrap_or_else(|| Kind { module: JIT_MODULE.into(), name: UNNAMED_JIT.into() }),
        }
    }

    /// The caller named by return address `ret`, or `None` when it is no
    /// caller outside node and libuv: code in the file holding libuv (e.g.
    /// node's builtins, which V8 maps again elsewhere), JavaScript (JIT
    /// code without a perf map name, or code no longer mapped: a worker
    /// thread's, after it ended), or the bottom of the stack.
    fn caller_kind(&mut self, ret: u64) -> Option<Kind> {
        // The call instruction before the return address.
        let addr = ret.saturating_sub(1);
        self.cover(addr);
        let module = self.snapshot.as_ref().and_then(|s| s.module_at(addr));
        if module.and_then(|m| m.mapping.path.as_deref()).is_some_and(|p| p == self.libuv) {
            return None;
        }
        let kind = self.code_kind(addr)?;
        (!STACK_BOTTOM.contains(&kind.name.as_str())).then_some(kind)
    }

    fn vtable_kind(&self, vptr: u64) -> Kind {
        let i = self.vtables.partition_point(|v| v.addr <= vptr);
        let class = i
            .checked_sub(1)
            .map(|i| &self.vtables[i])
            .filter(|v| vptr < v.addr + v.size.max(8))
            .map(|v| vtable_class(&demangle(&v.name)).to_string());
        match class {
            Some(c) => Kind { module: self.exe_module.clone(), name: format!("{c}::DoThreadPoolWork") },
            None => Kind { module: self.exe_module.clone(), name: format!("node::ThreadPoolWork (vtable {vptr:#x})") },
        }
    }

    /// Notes a raw kind seen while tracing: the mappings are re-read
    /// (by [`Namer::refresh_if_needed`]) when they do not cover its code
    /// addresses, so that they can be named after the process has gone.
    /// Cheap: no symbol lookups.
    pub fn observe(&mut self, raw: &RawKind) {
        let code = !matches!(raw.kind_type, KIND_TPW | KIND_FS);
        let addrs = [code.then_some(raw.kind), (raw.caller != 0).then(|| raw.caller.saturating_sub(1))];
        let snapshot = self.snapshot.as_ref();
        if addrs.into_iter().flatten().any(|a| snapshot.is_none_or(|s| s.module_at(a).is_none())) {
            self.stale = true;
        }
    }

    /// Re-reads the mappings if [`Namer::observe`] found them stale.
    pub fn refresh_if_needed(&mut self) {
        if std::mem::take(&mut self.stale) {
            self.refresh_maps();
        }
    }

    /// Re-reads the process's mappings (after it loaded libraries); the
    /// last snapshot stays once the process has exited.
    pub fn refresh_maps(&mut self) {
        if let Ok(snapshot) = Snapshot::take(self.pid) {
            self.snapshot = Some(snapshot);
        }
    }

    /// Makes sure the snapshot covers `addr` if it can: re-reads the maps
    /// at most once per naming pass.
    fn cover(&mut self, addr: u64) {
        let covered = self.snapshot.as_ref().is_some_and(|s| s.module_at(addr).is_some());
        if !covered && !self.refreshed {
            self.refreshed = true;
            self.refresh_maps();
        }
    }

    /// The function at `addr`: in a mapped file (named by its symbols, or
    /// `module`0xOFFSET`), or JIT code named by the perf map; `None` for
    /// JIT code or unmapped memory the perf map does not name.
    fn code_kind(&mut self, addr: u64) -> Option<Kind> {
        self.cover(addr);
        let module = self.snapshot.as_ref().and_then(|s| s.module_at(addr));
        if let Some((path, m)) = module.and_then(|m| Some((m.mapping.path.as_ref()?, m))) {
            let snapshot = self.snapshot.as_ref()?;
            let name = snapshot.symbolize(&self.symbolizer, &[addr]).pop().and_then(|f| f.name);
            return Some(Kind {
                module: short_name(path),
                name: name
                    .map(|n| strip_params(&n).to_string())
                    .unwrap_or_else(|| format!("{:#x}", m.mapping.file_offset(addr))),
            });
        }
        // Anonymous or no longer mapped: JIT code.
        let pid = self.pid;
        let perf_map = self.perf_map.get_or_insert_with(|| PerfMap::read(pid));
        perf_map.lookup(addr).map(|(name, _)| Kind { module: JIT_MODULE.into(), name: name.to_string() })
    }
}

/// The file name of a path (`/usr/bin/node` -> `node`).
fn short_name(path: &Path) -> String {
    symbolize::short_module(&path.to_string_lossy()).to_string()
}

/// A demangled C++ name without its parameter list (and cv-qualifiers):
/// `ns::Class::Work_Run(napi_env__*, void*)` -> `ns::Class::Work_Run`,
/// like DTrace's `ufunc`.  Names without parameters are returned unchanged.
pub fn strip_params(name: &str) -> &str {
    let trimmed = name.trim_end_matches(" const").trim_end_matches(" volatile");
    if !trimmed.ends_with(')') {
        return name;
    }
    let mut depth = 0i32;
    for (i, c) in trimmed.char_indices().rev() {
        match c {
            ')' => depth += 1,
            '(' => {
                depth -= 1;
                if depth == 0 {
                    return &trimmed[..i];
                }
            }
            _ => {}
        }
    }
    name
}

/// libuv's `uv_fs_type` values (uv.h), in order from UV_FS_CUSTOM = 0.
const FS_TYPES: [&str; 37] = [
    "custom",
    "open",
    "close",
    "read",
    "write",
    "sendfile",
    "stat",
    "lstat",
    "fstat",
    "ftruncate",
    "utime",
    "futime",
    "access",
    "chmod",
    "fchmod",
    "fsync",
    "fdatasync",
    "unlink",
    "rmdir",
    "mkdir",
    "mkdtemp",
    "rename",
    "scandir",
    "link",
    "symlink",
    "readlink",
    "chown",
    "fchown",
    "realpath",
    "copyfile",
    "lchown",
    "opendir",
    "readdir",
    "closedir",
    "statfs",
    "mkstemp",
    "lutime",
];

/// The kind of an fs request: the libuv function that starts it (`uv_fs_stat`).
fn fs_kind(fs_type: i64) -> String {
    match usize::try_from(fs_type).ok().and_then(|i| FS_TYPES.get(i)) {
        Some(t) => format!("uv_fs_{t}"),
        None => format!("uv_fs (type {fs_type})"),
    }
}

/// The class of a demangled vtable symbol (`vtable for X` or `{vtable(X)}`).
fn vtable_class(demangled: &str) -> &str {
    demangled
        .strip_prefix("vtable for ")
        .or_else(|| demangled.strip_prefix("{vtable(").and_then(|s| s.strip_suffix(")}")))
        .unwrap_or(demangled)
}

/// Demangles a C++ symbol name (unchanged when it is not one).
pub fn demangle(name: &str) -> String {
    cpp_demangle::Symbol::new(name).ok().and_then(|s| s.demangle().ok()).unwrap_or_else(|| name.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn demangles_vtables_and_functions() {
        assert_eq!(vtable_class(&demangle("_ZTVN12_GLOBAL__N_16uvimpl4WorkE")), "(anonymous namespace)::uvimpl::Work");
        assert_eq!(vtable_class("vtable for node::ZlibStream"), "node::ZlibStream");
        assert_eq!(demangle("uv_queue_work"), "uv_queue_work");
        assert_eq!(
            strip_params("node_sqlite3::Statement::Work_Run(napi_env__*, void*)"),
            "node_sqlite3::Statement::Work_Run"
        );
        assert_eq!(
            strip_params("node::ThreadPoolWork::ScheduleWork()::{lambda(uv_work_s*)#1}::_FUN(uv_work_s*)"),
            "node::ThreadPoolWork::ScheduleWork()::{lambda(uv_work_s*)#1}::_FUN"
        );
        assert_eq!(strip_params("Foo::bar() const"), "Foo::bar");
        assert_eq!(strip_params("work_cb"), "work_cb");
        assert_eq!(fs_kind(1), "uv_fs_open");
        assert_eq!(fs_kind(6), "uv_fs_stat");
        assert_eq!(fs_kind(36), "uv_fs_lutime");
        assert_eq!(fs_kind(-1), "uv_fs (type -1)");
        let k = Kind { module: "node_sqlite3.node".into(), name: "node_sqlite3::Statement::Work_Run".into() };
        assert_eq!(k.display(), "node_sqlite3.node`node_sqlite3::Statement::Work_Run");
    }
}
