//! A loaded provider: its generated shared object written to a private temp
//! file and `dlopen`ed, the addresses of its probe sites and semaphores, and
//! firing (calling a site with the probe's arguments in SysV registers and
//! stack slots).  Dropping it `dlclose`s the object and removes the file.

use std::ffi::c_void;
use std::fs;
use std::hash::{BuildHasher, RandomState};
use std::io::Write;
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};

use libloading::os::unix::{Library, RTLD_LOCAL, RTLD_NOW};

use crate::elf::{self, ArgKind, ProbeDef, MAX_ARGS, REGISTER_ARGS};
use crate::files;

/// A provider whose probes are live in this process.
pub struct Loaded {
    path: PathBuf,
    /// Kept open for the lifetime of the provider; `None` only during drop.
    library: Option<Library>,
    sites: Vec<usize>,
    semaphores: *mut u16,
    probes: Vec<ProbeDef>,
}

/// Numbers the objects this process generates, so names never repeat.
static SEQUENCE: AtomicU64 = AtomicU64::new(0);

impl Loaded {
    /// Generates, writes and loads the object for `provider` with `probes`.
    pub fn load(provider: &str, probes: Vec<ProbeDef>) -> Result<Loaded, String> {
        let image = elf::build(provider, &probes).map_err(|e| format!("cannot build the ELF object: {e}"))?;
        let dir = files::directory();
        files::sweep_stale(&dir);
        let path = create_unique(&dir, provider, &image.bytes)?;
        // From here on the file is removed on every error path by `Drop`.
        let mut loaded = Loaded { path, library: None, sites: Vec::new(), semaphores: std::ptr::null_mut(), probes };
        // SAFETY: the object has no initialisers or dependencies; loading it
        // runs no code.
        let library = unsafe { Library::open(Some(&loaded.path), RTLD_NOW | RTLD_LOCAL) }.map_err(|e| {
            format!(
                "cannot load {}: {} (if {} is mounted noexec, set PRODTRACE_USDT_DIR to a directory that is not)",
                loaded.path.display(),
                with_source(&e),
                dir.display()
            )
        })?;
        let address = |name: &str| -> Result<usize, String> {
            // SAFETY: we only take the symbol's address, never call through this type.
            let sym = unsafe { library.get::<*mut c_void>(name.as_bytes()) }
                .map_err(|e| format!("generated object lacks symbol {name}: {}", with_source(&e)))?;
            Ok(*sym as usize)
        };
        loaded.sites = image.site_symbols.iter().map(|s| address(s)).collect::<Result<_, _>>()?;
        loaded.semaphores = address(image.semaphores_symbol)? as *mut u16;
        loaded.library = Some(library);
        Ok(loaded)
    }

    /// Path of the generated object (what `bpftrace usdt:PATH:…` takes).
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// The semaphore array: one `u16` per probe, in probe order.
    pub fn semaphores(&self) -> (*mut u16, usize) {
        (self.semaphores, self.probes.len())
    }

    /// Argument kinds of probe `index`.
    pub fn args(&self, index: usize) -> Option<&[ArgKind]> {
        self.probes.get(index).map(|p| p.args.as_slice())
    }

    /// Fires probe `index` with its first `argc` argument words `regs`
    /// (integers, or pointers to NUL-terminated strings).
    ///
    /// # Safety
    /// Every pointer among the words must stay valid during the call.
    pub unsafe fn fire(&self, index: usize, regs: &[u64; MAX_ARGS], argc: usize) {
        let Some(&site) = self.sites.get(index) else {
            return;
        };
        // SAFETY: `site` is a `nop; ret` in the object we loaded, which stays
        // loaded while `self` lives; it reads no memory and clobbers nothing
        // beyond the SysV caller-saved set.  A tracer reads the words as the
        // probe's note describes them.
        unsafe {
            if argc <= REGISTER_ARGS {
                let f: extern "C" fn(u64, u64, u64, u64, u64, u64) = std::mem::transmute(site);
                f(regs[0], regs[1], regs[2], regs[3], regs[4], regs[5]);
            } else {
                call32(site, regs);
            }
        }
    }
}

/// `libloading`'s message followed by the `dlerror()` text it wraps.
fn with_source(e: &libloading::Error) -> String {
    match std::error::Error::source(e) {
        Some(source) => format!("{e}: {source}"),
        None => e.to_string(),
    }
}

macro_rules! call_with_all {
    ($site:expr, $r:expr, $($i:literal)*) => {{
        type Site = extern "C" fn($(call_with_all!(@u64 $i)),*);
        // SAFETY: the caller passes a probe site, a function that takes
        // any number of integer arguments and ignores them.
        let f: Site = std::mem::transmute($site);
        f($($r[$i]),*)
    }};
    (@u64 $i:literal) => { u64 };
}

/// Calls a site with all [`MAX_ARGS`] arguments (registers, then stack).
///
/// # Safety
/// `site` must be the address of a loaded probe site (see `Loaded::fire`).
unsafe fn call32(site: usize, r: &[u64; MAX_ARGS]) {
    call_with_all!(site, r, 0 1 2 3 4 5 6 7 8 9 10 11 12 13 14 15 16 17 18 19 20 21 22 23 24 25 26 27 28 29 30 31)
}

/// Writes `bytes` to a new file in `dir` named for this process and
/// provider, mode 0644 (the probes are no secret, and tracers without
/// CAP_DAC_OVERRIDE must read it).  Never opens an existing file: should
/// the name be taken (someone else made it), it tries names with an
/// unguessable suffix.
fn create_unique(dir: &Path, provider: &str, bytes: &[u8]) -> Result<PathBuf, String> {
    const TRIES: usize = 8;
    let random = RandomState::new();
    for attempt in 0..TRIES {
        let seq = SEQUENCE.fetch_add(1, Ordering::Relaxed);
        let mut name = files::file_name(std::process::id(), provider, seq);
        if attempt > 0 {
            let suffix = format!("-{:016x}.so", random.hash_one((seq, attempt)));
            name = name.replace(".so", &suffix);
        }
        let path = dir.join(name);
        let file = fs::OpenOptions::new().write(true).create_new(true).mode(0o644).open(&path);
        let failed = |e: std::io::Error| {
            format!("cannot write {}: {e} (set PRODTRACE_USDT_DIR to a writable directory)", path.display())
        };
        return match file {
            Ok(mut f) => match f.write_all(bytes) {
                Ok(()) => Ok(path),
                Err(e) => {
                    // Ours (created above): do not leave it half-written.
                    let _ = fs::remove_file(&path);
                    Err(failed(e))
                }
            },
            Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => continue,
            Err(e) => Err(failed(e)),
        };
    }
    Err(format!("cannot create a file in {}: {TRIES} names were taken", dir.display()))
}

impl Drop for Loaded {
    fn drop(&mut self) {
        // Unmap first: tracers keep their own reference to the inode.
        drop(self.library.take());
        let _ = fs::remove_file(&self.path);
    }
}
