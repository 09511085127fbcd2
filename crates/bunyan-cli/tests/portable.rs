//! target/release/bunyan is one portable file: it names no shared library
//! but glibc's (libbpf, libelf and zlib are linked in) and needs no glibc
//! newer than the docs promise.  Checked on the ELF file itself, with the
//! same checks as prodtrace's (crates/prodtrace/tests/portable_support).

#[path = "../../prodtrace/tests/portable_support/mod.rs"]
mod portable_support;

#[test]
fn bunyan_needs_only_glibc() {
    portable_support::assert_portable(env!("CARGO_BIN_EXE_bunyan").as_ref());
}
