//! Reading SystemTap SDT notes (`.note.stapsdt`) from ELF files: which
//! `bunyan:log-*` probes a file carries, and where their semaphores are.

use std::{fs::File, path::Path};

use anyhow::{Context, Result};
use object::{read::ReadCache, Object, ObjectSection, ObjectSegment};

/// One `bunyan:log-<level>` probe of an ELF file.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Probe {
    /// The probe name, e.g. `log-debug`.
    pub name: String,
    /// Link-time address of the probe site (prelink-adjusted).
    pub pc: u64,
    /// File offset of the 16-bit semaphore, if the probe has one.
    pub semaphore_offset: Option<u64>,
}

/// The provider bunyan's probes live under.
pub const PROVIDER: &str = "bunyan";

/// The `bunyan:log-*` probes in the ELF file at `path` (empty if it has
/// none or is not ELF).  Only the headers and the notes are read, so this
/// is cheap even for a 100 MB binary such as node.
pub fn bunyan_probes(path: &Path) -> Result<Vec<Probe>> {
    let file = File::open(path).with_context(|| format!("opening {}", path.display()))?;
    let cache = ReadCache::new(file);
    let Ok(elf) = object::File::parse(&cache) else {
        return Ok(Vec::new());
    };
    let Some(notes) = elf.section_by_name(".note.stapsdt") else {
        return Ok(Vec::new());
    };
    let data = notes.data().with_context(|| format!("reading .note.stapsdt of {}", path.display()))?;
    let base = elf.section_by_name(".stapsdt.base").map(|s| s.address());
    let segments: Vec<(u64, u64, u64)> =
        elf.segments().map(|s| (s.address(), s.file_range().0, s.file_range().1)).collect();
    let little = elf.is_little_endian();
    let mut probes = Vec::new();
    for note in parse_notes(data, little) {
        if note.provider != PROVIDER || !note.name.starts_with("log-") {
            continue;
        }
        // Prelink compensation, as libbpf and systemtap do it.
        let adjust = |addr: u64| match (base, note.base) {
            (Some(b), nb) if b != 0 && nb != 0 => addr.wrapping_add(b).wrapping_sub(nb),
            _ => addr,
        };
        let semaphore_offset = (note.semaphore != 0).then(|| adjust(note.semaphore)).and_then(|a| {
            segments
                .iter()
                .find(|(vaddr, _, size)| a >= *vaddr && a < vaddr + size)
                .map(|(vaddr, off, _)| a - vaddr + off)
        });
        probes.push(Probe { name: note.name, pc: adjust(note.pc), semaphore_offset });
    }
    Ok(probes)
}

struct RawNote {
    pc: u64,
    base: u64,
    semaphore: u64,
    provider: String,
    name: String,
}

/// Parses the notes of a `.note.stapsdt` section (type 3, owner "stapsdt",
/// 64-bit addresses); malformed notes end the walk.
fn parse_notes(data: &[u8], little: bool) -> Vec<RawNote> {
    let u32_at = |b: &[u8], i: usize| -> Option<u32> {
        let a: [u8; 4] = b.get(i..i + 4)?.try_into().ok()?;
        Some(if little { u32::from_le_bytes(a) } else { u32::from_be_bytes(a) })
    };
    let u64_at = |b: &[u8], i: usize| -> Option<u64> {
        let a: [u8; 8] = b.get(i..i + 8)?.try_into().ok()?;
        Some(if little { u64::from_le_bytes(a) } else { u64::from_be_bytes(a) })
    };
    let align4 = |n: usize| (n + 3) & !3;
    let mut out = Vec::new();
    let mut off = 0;
    while let (Some(namesz), Some(descsz), Some(ty)) = (u32_at(data, off), u32_at(data, off + 4), u32_at(data, off + 8))
    {
        let (namesz, descsz) = (namesz as usize, descsz as usize);
        let name_start = off + 12;
        let desc_start = name_start + align4(namesz);
        let next = desc_start + align4(descsz);
        let (Some(owner), Some(desc)) =
            (data.get(name_start..name_start + namesz), data.get(desc_start..desc_start + descsz))
        else {
            break;
        };
        off = next;
        if ty != 3 || owner != b"stapsdt\0" || desc.len() < 24 {
            continue;
        }
        let (Some(pc), Some(base), Some(semaphore)) = (u64_at(desc, 0), u64_at(desc, 8), u64_at(desc, 16)) else {
            continue;
        };
        let mut strings = desc[24..].split(|&b| b == 0).map(|s| String::from_utf8_lossy(s).into_owned());
        let (Some(provider), Some(name)) = (strings.next(), strings.next()) else {
            continue;
        };
        out.push(RawNote { pc, base, semaphore, provider, name });
    }
    out
}
