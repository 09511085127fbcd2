//! Names of operation kinds: turns the addresses the BPF program recorded
//! (an N-API execute callback, a node::ThreadPoolWork vtable, a libuv
//! work_cb, or a caller's return address) into `module` + demangled
//! function name.
//!
//! Names are resolved from the files the target maps (a
//! `symbolize::Snapshot` of /proc/PID/maps, refreshed when an address is not
//! covered), so kinds can still be named after the target has exited.  JIT
//! code (anonymous memory) is named through node's perf map.

use std::collections::HashMap;

use symbolize::{Snapshot, Symbolizer};

use super::elf::{ElfImage, Sym};
use super::target::Target;
use super::tracer::{KIND_FS, KIND_NAPI, KIND_TPW};

const JIT_MODULE: &str = "JIT";
const UNNAMED_JIT: &str = "[JIT code: run node with --perf-basic-prof for names]";

/// A kind's display name.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Kind {
    /// File name of the module holding the function (`node_sqlite3.node`).
    pub module: String,
    /// Demangled function name (`node_sqlite3::Statement::Work_Run`).
    pub name: String,
}

impl Kind {
    /// Whether this is JIT code without a name (no perf map).
    pub fn is_unnamed_jit(&self) -> bool {
        self.module == JIT_MODULE && self.name == UNNAMED_JIT
    }

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
    exe_module: String,
    /// File name of the module holding libuv (for fs kinds).
    libuv_module: String,
    cache: HashMap<(u32, u64), Kind>,
}

impl Namer {
    /// `exe` is the executable's image and load bias (for vtable names),
    /// `libuv` the path of the file holding libuv.
    pub fn new(target: &Target, exe: Option<(&ElfImage, u64)>, libuv: &str) -> Self {
        let mut vtables = Vec::new();
        let mut exe_module = String::new();
        if let Some((image, bias)) = exe {
            vtables = image.symbols(|n| n.starts_with("_ZTV"));
            for v in &mut vtables {
                v.addr = v.addr.wrapping_add(bias);
            }
            vtables.sort_by_key(|v| v.addr);
            exe_module = symbolize::short_module(&image.path.to_string_lossy()).to_string();
        }
        Self {
            pid: target.pid,
            snapshot: Snapshot::take(target.pid).ok(),
            symbolizer: Symbolizer::new(),
            vtables,
            exe_module,
            libuv_module: symbolize::short_module(libuv).to_string(),
            cache: HashMap::new(),
        }
    }

    /// The name of a kind recorded as `(kind_type, addr)`; `caller` marks a
    /// return address (named by the call instruction before it).
    pub fn name(&mut self, kind_type: u32, addr: u64, caller: bool) -> Kind {
        let key = (if caller { 0 } else { kind_type }, addr);
        if let Some(k) = self.cache.get(&key) {
            return k.clone();
        }
        let kind = if !caller && kind_type == KIND_TPW {
            self.vtable_kind(addr)
        } else if !caller && kind_type == KIND_FS {
            Kind { module: self.libuv_module.clone(), name: fs_kind(addr as i64) }
        } else {
            let lookup = if caller { addr.saturating_sub(1) } else { addr };
            let mut k = self.code_kind(lookup);
            if !caller && kind_type == KIND_NAPI && addr == 0 {
                k = Kind { module: String::new(), name: "[N-API work with no execute callback]".into() };
            }
            k
        };
        self.cache.insert(key, kind.clone());
        kind
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

    /// Re-reads the process's mappings (after it loaded libraries); the
    /// last snapshot stays once the process has exited.
    pub fn refresh_maps(&mut self) {
        if let Ok(snapshot) = Snapshot::take(self.pid) {
            self.snapshot = Some(snapshot);
        }
    }

    fn code_kind(&mut self, addr: u64) -> Kind {
        let covers = |s: &Option<Snapshot>| s.as_ref().is_some_and(|s| s.module_at(addr).is_some());
        if !covers(&self.snapshot) {
            self.refresh_maps();
        }
        let Some(snapshot) = self.snapshot.as_ref().filter(|s| s.module_at(addr).is_some()) else {
            return Kind { module: String::new(), name: format!("{addr:#x}") };
        };
        let name = snapshot.symbolize(&self.symbolizer, &[addr]).pop().and_then(|f| f.name);
        let mapping = snapshot.module_at(addr).map(|m| &m.mapping);
        match mapping.and_then(|m| Some((m.path.as_ref()?, m))) {
            Some((path, m)) => Kind {
                module: symbolize::short_module(&path.to_string_lossy()).to_string(),
                name: name
                    .map(|n| strip_params(&n).to_string())
                    .unwrap_or_else(|| format!("{:#x}", m.file_offset(addr))),
            },
            // Anonymous executable memory: JIT code (V8).
            None => Kind { module: JIT_MODULE.into(), name: name.unwrap_or_else(|| UNNAMED_JIT.into()) },
        }
    }
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
