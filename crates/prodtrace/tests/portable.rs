//! target/release/prodtrace is one portable file: it names no shared
//! library but glibc's (libbpf, libelf and zlib are linked in) and needs no
//! glibc newer than the docs promise.  Checked on the ELF file itself.

mod portable_support;

#[test]
fn prodtrace_needs_only_glibc() {
    portable_support::assert_portable(env!("CARGO_BIN_EXE_prodtrace").as_ref());
}
