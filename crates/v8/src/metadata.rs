//! V8's postmortem metadata: the `v8dbg_*` constants a node binary (or
//! libnode.so) carries in its dynamic symbol table — frame markers, object
//! field offsets, instance type numbers — plus the few symbols of its full
//! symbol table (`.symtab`) this reader also uses when they are there: the
//! names and sizes of the embedded builtins (`Builtins_*`) and the globals
//! that say where the embedded blob lives.
//!
//! Each `v8dbg_NAME` is a C `int` whose value is read from the file.

use std::collections::HashMap;
use std::fs::File;
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use anyhow::{bail, Context, Result};
use memmap2::Mmap;
use object::{Object, ObjectSection, ObjectSegment, ObjectSymbol, SectionKind, SymbolKind};

use crate::image::Module;

/// The metadata of one V8 binary.
pub struct Metadata {
    /// The file it was read from.
    pub path: PathBuf,
    /// `v8dbg_NAME` → value, keyed by NAME.
    consts: HashMap<String, i64>,
    /// Embedded builtins from `.symtab`: (address, size, name without the
    /// `Builtins_` prefix), sorted by address; file addresses (add the load bias).
    pub builtins: Vec<(u64, u64, String)>,
    /// Other symbols of interest (file addresses).
    pub symbols: HashMap<&'static str, u64>,
    /// `interpreter::Bytecodes::kBytecodeSizes` (3 operand scales ×
    /// bytecode count, bytes), from `.symtab`: the length of every bytecode.
    pub bytecode_sizes: Option<Vec<u8>>,
    /// `MAJOR.MINOR` of the V8 version string in read-only data
    /// (`10.2.154.26-node.37`), for binaries without `.symtab`.
    pub version_string: Option<String>,
    /// File address and size of the embedded builtins' code
    /// (`v8_Default_embedded_blob_code_` and its size), from `.symtab`.
    blob: Option<(u64, u64)>,
    /// `(p_offset, p_vaddr, p_filesz)` of each loadable segment, to find
    /// the load bias from a mapping.
    loads: Vec<(u64, u64, u64)>,
}

/// The metadata of every file read so far (and which files have none),
/// by device and inode: a session reading many processes (`prodtrace
/// catch`) reads each binary once.
#[derive(Default)]
pub struct MetadataCache(HashMap<(u64, u64), Option<Arc<Metadata>>>);

impl MetadataCache {
    /// The metadata of `file` (`None`: not a V8 binary).
    pub fn read(&mut self, file: &Path) -> Result<Option<Arc<Metadata>>> {
        let meta = std::fs::metadata(file).with_context(|| format!("cannot read {}", file.display()))?;
        let key = (meta.dev(), meta.ino());
        if let Some(md) = self.0.get(&key) {
            return Ok(md.clone());
        }
        let md = Metadata::read(file)?.map(Arc::new);
        self.0.insert(key, md.clone());
        Ok(md)
    }
}

/// Symbols of `.symtab` the reader uses when present.
const WANTED: &[&str] = &[
    "_ZN2v88internal12_GLOBAL__N_127current_embedded_blob_code_E",
    "_ZN2v88internal12_GLOBAL__N_132current_embedded_blob_code_size_E",
    "_ZN2v88internal7Version6major_E",
    "_ZN2v88internal7Version6minor_E",
];

impl Metadata {
    /// Reads the metadata of an ELF file; `Ok(None)` when it has none
    /// (not a V8 binary).
    pub fn read(path: &Path) -> Result<Option<Metadata>> {
        let file = File::open(path).with_context(|| format!("cannot open {}", path.display()))?;
        // SAFETY: read-only private mapping of a binary.
        let map = unsafe { Mmap::map(&file) }.with_context(|| format!("cannot map {}", path.display()))?;
        let Ok(elf) = object::File::parse(&*map) else { return Ok(None) };
        let read_int = |addr: u64, size: u64| -> Option<i64> {
            let section = elf.sections().find(|s| addr >= s.address() && addr + size <= s.address() + s.size())?;
            if matches!(section.kind(), SectionKind::UninitializedData | SectionKind::UninitializedTls) {
                return Some(0); // constants that are 0 live in .bss
            }
            let data = section.data().ok()?;
            let off = (addr - section.address()) as usize;
            Some(match size {
                8 => i64::from_le_bytes(data.get(off..off + 8)?.try_into().ok()?),
                _ => i32::from_le_bytes(data.get(off..off + 4)?.try_into().ok()?) as i64,
            })
        };
        let read_bytes = |addr: u64, size: u64| -> Option<Vec<u8>> {
            let section = elf.sections().find(|s| addr >= s.address() && addr + size <= s.address() + s.size())?;
            let off = (addr - section.address()) as usize;
            Some(section.data().ok()?.get(off..off + size as usize)?.to_vec())
        };
        let mut consts = HashMap::new();
        for sym in elf.dynamic_symbols().chain(elf.symbols()) {
            let Ok(name) = sym.name() else { continue };
            if let Some(key) = name.strip_prefix("v8dbg_") {
                if consts.contains_key(key) {
                    continue;
                }
                if let Some(v) = read_int(sym.address(), sym.size().clamp(4, 8)) {
                    consts.insert(key.to_string(), v);
                }
            }
        }
        if !consts.contains_key("SmiTag") {
            return Ok(None);
        }
        let mut builtins = Vec::new();
        let mut symbols = HashMap::new();
        let mut bytecode_sizes = None;
        let (mut blob_start, mut blob_size) = (None, None);
        for sym in elf.symbols() {
            let Ok(name) = sym.name() else { continue };
            if name == "v8_Default_embedded_blob_code_" {
                blob_start = Some(sym.address());
            } else if name == "v8_Default_embedded_blob_code_size_" {
                blob_size = read_int(sym.address(), 4);
            } else if name == "_ZN2v88internal11interpreter9Bytecodes14kBytecodeSizesE" && sym.size() % 3 == 0 {
                // uint8_t kBytecodeSizes[3][kBytecodeCount].
                bytecode_sizes = read_bytes(sym.address(), sym.size());
            } else if let Some(b) = name.strip_prefix("Builtins_") {
                if sym.kind() == SymbolKind::Text || sym.size() > 0 {
                    builtins.push((sym.address(), sym.size(), b.to_string()));
                }
            } else if let Some(w) = WANTED.iter().find(|w| **w == name) {
                symbols.insert(*w, sym.address());
            }
        }
        if bytecode_sizes.is_none() {
            bytecode_sizes = find_bytecode_sizes(&elf);
        }
        builtins.sort();
        builtins.dedup_by_key(|b| b.0);
        let loads = elf
            .segments()
            .map(|s| {
                let (off, size) = s.file_range();
                (off, s.address(), size)
            })
            .collect();
        let blob = match (blob_start, blob_size) {
            (Some(start), Some(size)) if size > 0 => Some((start, size as u64)),
            _ => None,
        };
        let version_string =
            if symbols.contains_key("_ZN2v88internal7Version6major_E") { None } else { find_version(&elf) };
        Ok(Some(Metadata {
            path: path.to_path_buf(),
            consts,
            builtins,
            symbols,
            bytecode_sizes,
            version_string,
            blob,
            loads,
        }))
    }

    /// Finds the V8 binary among the modules of an image (the executable,
    /// or a libnode.so) and reads its metadata, through `cache`: returns it,
    /// its load bias and the path the image maps it under.
    pub fn find(modules: &[Module], cache: &mut MetadataCache) -> Result<(Arc<Metadata>, u64, String)> {
        let mut tried = Vec::new();
        // Executables and libnode first: the usual homes of V8.
        let mut candidates: Vec<&Module> = modules.iter().filter(|m| m.file_offset == 0).collect();
        candidates.sort_by_key(|m| !(m.path.contains("node") || m.path.contains("v8")));
        let mut seen = std::collections::HashSet::new();
        for m in candidates {
            if !seen.insert(&m.path) || m.path.starts_with("/dev/") || m.path.starts_with("/memfd:") {
                continue;
            }
            match cache.read(&m.file) {
                Ok(Some(md)) => {
                    let bias = md.load_bias(modules, &m.path).unwrap_or(0);
                    return Ok((md, bias, m.path.clone()));
                }
                Ok(None) => tried.push(m.path.clone()),
                Err(_) => tried.push(format!("{} (unreadable)", m.path)),
            }
        }
        match tried.first() {
            None => bail!("no V8 metadata: the process maps no files"),
            Some(exe) => bail!(
                "no V8 metadata in {exe}{} (not a node process, or a node built without V8's postmortem support)",
                if tried.len() > 1 {
                    format!(" or the {} other files it maps", tried.len() - 1)
                } else {
                    String::new()
                }
            ),
        }
    }

    /// The difference between run-time and file addresses of this binary,
    /// from a mapping of `path` in `modules`.
    pub fn load_bias(&self, modules: &[Module], path: &str) -> Option<u64> {
        modules.iter().filter(|m| m.path == path).find_map(|m| {
            let &(p_offset, p_vaddr, _) = self
                .loads
                .iter()
                .find(|(off, _, size)| m.file_offset >= *off && m.file_offset < off + (*size).max(1))?;
            Some(m.start.wrapping_sub(p_vaddr.wrapping_add(m.file_offset - p_offset)))
        })
    }

    /// The file addresses a mapping of this binary holds: `(start, end)`.
    pub fn file_addresses(&self, m: &Module) -> Option<(u64, u64)> {
        let &(p_offset, p_vaddr, _) =
            self.loads.iter().find(|(off, _, size)| m.file_offset >= *off && m.file_offset < off + (*size).max(1))?;
        let start = p_vaddr + (m.file_offset - p_offset);
        Some((start, start + (m.end - m.start)))
    }

    /// File addresses `(start, end)` of the embedded builtins' code: the
    /// blob's own symbols, else the span of the `Builtins_*` symbols.
    pub fn embedded_blob(&self) -> Option<(u64, u64)> {
        if let Some((start, size)) = self.blob {
            return Some((start, start + size));
        }
        let first = self.builtins.first()?;
        let last = self.builtins.last()?;
        Some((first.0, last.0 + last.1.max(1)))
    }

    /// `v8dbg_NAME`.
    pub fn get(&self, name: &str) -> Option<i64> {
        self.consts.get(name).copied()
    }

    /// The first of several spellings of a constant that exists (field
    /// names and types vary across V8 versions).
    pub fn any(&self, names: &[&str]) -> Option<i64> {
        names.iter().find_map(|n| self.get(n))
    }

    /// A class field offset `v8dbg_class_CLASS__FIELD__TYPE` whatever its
    /// TYPE spelling (`Object`, `Tagged_Object_`, ...).
    pub fn field(&self, class: &str, field: &str) -> Option<i64> {
        let prefix = format!("class_{class}__{field}__");
        self.consts.iter().filter(|(k, _)| k.starts_with(&prefix)).map(|(_, v)| *v).min()
    }

    /// An instance type number, `v8dbg_type_CLASS__TYPE_NAME`.
    pub fn instance_type(&self, type_name: &str) -> Option<i64> {
        let suffix = format!("__{type_name}");
        self.consts.iter().find(|(k, _)| k.starts_with("type_") && k.ends_with(&suffix)).map(|(_, v)| *v)
    }

    /// A frame type number, `v8dbg_frametype_NAME`.
    pub fn frame_type(&self, name: &str) -> Option<i64> {
        self.get(&format!("frametype_{name}"))
    }

    /// All frame types: number → name.
    pub fn frame_types(&self) -> HashMap<i64, String> {
        self.consts.iter().filter_map(|(k, v)| Some((*v, k.strip_prefix("frametype_")?.to_string()))).collect()
    }

    /// Number of `v8dbg_*` constants.
    pub fn len(&self) -> usize {
        self.consts.len()
    }

    pub fn is_empty(&self) -> bool {
        self.consts.is_empty()
    }

    /// The builtin whose code holds file address `addr`.
    pub fn builtin_at(&self, addr: u64) -> Option<&str> {
        let i = self.builtins.partition_point(|b| b.0 <= addr);
        let (start, size, name) = self.builtins.get(i.checked_sub(1)?)?;
        (addr < start + (*size).max(1)).then_some(name.as_str())
    }
}

/// The V8 version node embeds as a string (`V8_VERSION_STRING` with node's
/// `-node.N` suffix, e.g. `10.2.154.26-node.37`): `10.2`.
fn find_version(elf: &object::File) -> Option<String> {
    const SUFFIX: &[u8] = b"-node.";
    for section in
        elf.sections().filter(|s| s.kind() == SectionKind::ReadOnlyString || s.kind() == SectionKind::ReadOnlyData)
    {
        let Ok(data) = section.data() else { continue };
        let mut at = 0;
        while let Some(i) = data[at..].windows(SUFFIX.len()).position(|w| w == SUFFIX) {
            let end = at + i;
            at = end + 1;
            let start = data[..end].iter().rposition(|&c| !(c.is_ascii_digit() || c == b'.')).map_or(0, |p| p + 1);
            let version = std::str::from_utf8(&data[start..end]).ok()?;
            let parts: Vec<&str> = version.split('.').collect();
            if parts.len() == 4
                && parts.iter().all(|p| !p.is_empty())
                && data.get(start.wrapping_sub(1)).is_none_or(|&c| c == 0)
            {
                return Some(format!("{}.{}", parts[0], parts[1]));
            }
        }
    }
    None
}

/// `Bytecodes::kBytecodeSizes` of a binary without `.symtab`, found by its
/// shape in read-only data: three rows (operand scales 1, 2, 4) of one
/// byte per bytecode, each starting with the four one-byte prefixes (Wide,
/// ExtraWide and their DebugBreak twins) and DebugBreak0..; an operand
/// scaled by 2 or 4 makes a bytecode at most twice longer each time
/// (`size(2x) - 1 <= 2 (size(1x) - 1)`).  Only a single match is taken.
fn find_bytecode_sizes(elf: &object::File) -> Option<Vec<u8>> {
    const ROW0: [u8; 7] = [1, 1, 1, 1, 1, 2, 3];
    const ROW1: [u8; 7] = [1, 1, 1, 1, 1, 3, 5];
    const ROW2: [u8; 7] = [1, 1, 1, 1, 1, 5, 9];
    let mut found = Vec::new();
    for section in elf.sections().filter(|s| s.kind() == SectionKind::ReadOnlyData) {
        let Ok(data) = section.data() else { continue };
        let mut at = 0;
        while let Some(i) = data[at..].windows(ROW0.len()).position(|w| w == ROW0) {
            let x = at + i;
            at = x + 1;
            for n in 100..400 {
                let Some(rows) = data.get(x..x + 3 * n) else { break };
                let (r0, r1, r2) = (&rows[..n], &rows[n..2 * n], &rows[2 * n..]);
                if !r1.starts_with(&ROW1) || !r2.starts_with(&ROW2) {
                    continue;
                }
                let shaped = (0..n).all(|i| {
                    let (a, b, c) = (r0[i], r1[i], r2[i]);
                    1 <= a && a <= b && b <= c && c <= 32 && b - 1 <= 2 * (a - 1) && c - 1 <= 2 * (b - 1)
                });
                if shaped {
                    found.push(rows.to_vec());
                }
            }
            if found.len() > 1 {
                return None;
            }
        }
    }
    (found.len() == 1).then(|| found.pop()).flatten()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn node_binary_has_metadata() {
        let md = Metadata::read(Path::new("/usr/bin/node")).unwrap().expect("node has v8dbg_ symbols");
        assert!(md.len() > 400, "{} constants", md.len());
        assert_eq!(md.get("SmiTag"), Some(0));
        assert_eq!(md.get("HeapObjectTag"), Some(1));
        assert_eq!(md.field("HeapObject", "map"), Some(0));
        assert!(md.frame_type("EntryFrame").is_some());
        assert!(md.instance_type("JS_FUNCTION_TYPE").is_some());
        let trampoline = md.builtins.iter().find(|b| b.2 == "InterpreterEntryTrampoline").unwrap();
        assert_eq!(md.builtin_at(trampoline.0 + 3), Some("InterpreterEntryTrampoline"));
        let sizes = md.bytecode_sizes.as_ref().expect("kBytecodeSizes");
        let n = sizes.len() / 3;
        // Wide, ExtraWide: one byte; every bytecode is longer at a wider scale or as long.
        assert_eq!((sizes[0], sizes[1]), (1, 1));
        assert!((0..n).all(|i| sizes[i] <= sizes[n + i] && sizes[n + i] <= sizes[2 * n + i]));
    }

    #[test]
    fn bytecode_sizes_found_by_shape_are_the_symbol() {
        let file = File::open("/usr/bin/node").unwrap();
        let map = unsafe { Mmap::map(&file) }.unwrap();
        let elf = object::File::parse(&*map).unwrap();
        let md = Metadata::read(Path::new("/usr/bin/node")).unwrap().unwrap();
        assert_eq!(find_bytecode_sizes(&elf), md.bytecode_sizes);
        assert!(find_bytecode_sizes(
            &object::File::parse(&*unsafe { Mmap::map(&File::open("/bin/sh").unwrap()) }.unwrap()).unwrap()
        )
        .is_none());
        assert_eq!(find_version(&elf).as_deref(), Some("11.3"), "the string agrees with Version::major_/minor_");
    }

    #[test]
    fn other_binaries_have_none() {
        assert!(Metadata::read(Path::new("/bin/sh")).unwrap().is_none());
    }
}
