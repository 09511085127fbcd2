//! Build-script helper shared by the crates that carry BPF programs.
//!
//! [`compile_all`] compiles every `src/bpf/*.bpf.c` of the calling crate with
//! clang (through libbpf-cargo) and writes a libbpf-rs skeleton for each to
//! `$OUT_DIR/<name>.skel.rs`; the Rust module that loads the program does
//! `include!(concat!(env!("OUT_DIR"), "/<name>.skel.rs"))`.  The repository's
//! `bpf/include/` (a hand-written `vmlinux.h` with the few kernel types we
//! use) is on the include path, and so are libbpf's own headers.

use std::{env, ffi::OsStr, fs, path::PathBuf};

use libbpf_cargo::SkeletonBuilder;

/// Compiles the calling crate's `src/bpf/*.bpf.c`; call it from `build.rs`.
pub fn compile_all() {
    let manifest = PathBuf::from(env::var_os("CARGO_MANIFEST_DIR").expect("run from build.rs"));
    let out = PathBuf::from(env::var_os("OUT_DIR").expect("run from build.rs"));
    let include = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../bpf/include");
    let src = manifest.join("src/bpf");
    println!("cargo:rerun-if-changed={}", include.display());
    println!("cargo:rerun-if-changed={}", src.display());
    let mut entries: Vec<_> = fs::read_dir(&src)
        .unwrap_or_else(|e| panic!("reading {}: {e}", src.display()))
        .map(|e| e.expect("readable directory entry").path())
        .collect();
    entries.sort();
    for path in entries {
        println!("cargo:rerun-if-changed={}", path.display());
        let Some(stem) = path.file_name().and_then(OsStr::to_str).and_then(|n| n.strip_suffix(".bpf.c")) else {
            continue;
        };
        SkeletonBuilder::new()
            .source(&path)
            .clang_args([
                format!("-I{}", include.display()),
                // <asm/errno.h> and friends, for libbpf headers that use them.
                "-idirafter/usr/include/x86_64-linux-gnu".into(),
                "-D__TARGET_ARCH_x86".into(),
                "-Wall".into(),
            ])
            .build_and_generate(out.join(format!("{stem}.skel.rs")))
            .unwrap_or_else(|e| panic!("compiling {}: {e:#}", path.display()));
    }
}
