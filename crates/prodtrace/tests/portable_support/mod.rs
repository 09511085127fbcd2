//! What makes a built binary portable, read from its ELF file: the shared
//! libraries it names in DT_NEEDED must all be glibc's own (libbpf, libelf
//! and zlib are linked in statically), and the symbol versions it requires
//! from them must exist in the oldest glibc the docs promise (README
//! "Install", docs/kernels.md).  Shared by the prodtrace and bunyan tests.

use std::path::Path;

use object::elf::FileHeader64;
use object::read::elf::{Dyn, FileHeader};
use object::{elf, Endianness};

/// glibc's libraries (and GCC's unwinder, which every glibc system has).
pub const GLIBC_LIBRARIES: &[&str] =
    &["libc.so.6", "libm.so.6", "libpthread.so.0", "libdl.so.2", "librt.so.1", "ld-linux-x86-64.so.2", "libgcc_s.so.1"];

/// The oldest glibc the binaries run on: RHEL 9 has 2.34.
pub const OLDEST_GLIBC: (u32, u32) = (2, 34);

/// DT_NEEDED entries and (library, version) requirements of an ELF file.
pub struct Needs {
    pub libraries: Vec<String>,
    pub versions: Vec<(String, String)>,
}

pub fn read_needs(path: &Path) -> Needs {
    let data = std::fs::read(path).unwrap_or_else(|e| panic!("reading {}: {e}", path.display()));
    let data = &data[..];
    let header = FileHeader64::<Endianness>::parse(data).expect("a 64-bit ELF file");
    let endian = header.endian().expect("known endianness");
    let sections = header.sections(endian, data).expect("section table");
    let text = |b: &[u8]| String::from_utf8_lossy(b).into_owned();

    let (dynamic, link) =
        sections.dynamic(endian, data).expect("readable dynamic section").expect("a dynamically linked binary");
    let strings = sections.strings(endian, data, link).expect("dynamic strings");
    let libraries = dynamic
        .iter()
        .filter(|d| d.tag(endian) == elf::DT_NEEDED)
        .map(|d| text(d.string(endian, strings).expect("DT_NEEDED name")))
        .collect();

    let mut versions = Vec::new();
    if let Some((mut needs, link)) = sections.gnu_verneed(endian, data).expect("readable verneed") {
        let strings = sections.strings(endian, data, link).expect("verneed strings");
        while let Some((need, mut auxes)) = needs.next().expect("verneed entry") {
            let file = text(need.file(endian, strings).expect("verneed file"));
            while let Some(aux) = auxes.next().expect("vernaux entry") {
                versions.push((file.clone(), text(aux.name(endian, strings).expect("version name"))));
            }
        }
    }
    Needs { libraries, versions }
}

/// "GLIBC_2.34" -> (2, 34); None for other version names (GCC_3.0, GLIBC_PRIVATE).
pub fn glibc_version(name: &str) -> Option<(u32, u32)> {
    let mut parts = name.strip_prefix("GLIBC_")?.split('.');
    let major = parts.next()?.parse().ok()?;
    let minor = parts.next().map_or(Some(0), |m| m.parse().ok())?;
    Some((major, minor))
}

/// Asserts that the binary at `path` needs nothing from the host but glibc
/// no newer than [`OLDEST_GLIBC`].
pub fn assert_portable(path: &Path) {
    let needs = read_needs(path);
    assert!(
        needs.libraries.iter().any(|l| l == "libc.so.6"),
        "{}: DT_NEEDED {:?} lacks libc.so.6: not the binary we expect",
        path.display(),
        needs.libraries
    );
    let foreign: Vec<_> = needs.libraries.iter().filter(|l| !GLIBC_LIBRARIES.contains(&l.as_str())).collect();
    assert!(
        foreign.is_empty(),
        "{} needs shared libraries other than glibc's: {foreign:?} (all DT_NEEDED: {:?}); \
         link them statically (libbpf-rs feature \"static\", .cargo/config.toml)",
        path.display(),
        needs.libraries
    );
    for (file, version) in &needs.versions {
        assert!(
            GLIBC_LIBRARIES.contains(&file.as_str()),
            "{}: symbol version {version} required from {file}, not a glibc library",
            path.display()
        );
        assert_ne!(version, "GLIBC_PRIVATE", "{}: uses GLIBC_PRIVATE symbols of {file}", path.display());
        if let Some(v) = glibc_version(version) {
            assert!(
                v <= OLDEST_GLIBC,
                "{} requires {version} from {file}, newer than glibc {}.{} that the docs promise",
                path.display(),
                OLDEST_GLIBC.0,
                OLDEST_GLIBC.1
            );
        }
    }
    assert!(
        needs.versions.iter().any(|(_, v)| glibc_version(v).is_some()),
        "{}: no GLIBC_* version requirements found: the version table was not read",
        path.display()
    );
}
