//! A reader of JavaScript stacks in node processes and their core files.
//!
//! Given a process image ([`image::Image`]: the memory of a stopped live
//! process, or a core file opened with [`core::open`]), a [`Reader`] finds
//! the V8 binary among the mapped files, reads its `v8dbg_*` postmortem
//! metadata ([`metadata`]) and derives the object layout from it
//! ([`layout`]); [`Reader::walk`] then walks a thread's stack
//! ([`frames`]): native frames with CFI ([`native`]), V8 frames by frame
//! pointer, decoding JavaScript frames from heap objects ([`heap`]) and
//! source position tables ([`positions`]) into function names, scripts,
//! current lines and columns, with inlined functions expanded, and
//! anonymous methods named from their receiver ([`receiver`]).
//!
//! Nothing here writes to the target or needs it to cooperate: a core file
//! and a frozen process read the same way ([`memory`]).

pub mod core;
pub mod frames;
pub mod heap;
pub mod image;
pub mod layout;
pub mod memory;
pub mod metadata;
pub mod native;
pub mod positions;
pub mod receiver;

use std::cell::Cell;
use std::sync::Arc;

use anyhow::{bail, Result};

pub use frames::{Frame, FrameKind, JsFunction, Tier};
pub use image::{Image, Module, Regs, Thread};
use layout::Layout;
use memory::MemoryExt;
use metadata::{Metadata, MetadataCache};
pub use native::NativeUnwinder;

/// Reads JavaScript stacks of one process image.
pub struct Reader {
    pub md: Arc<Metadata>,
    /// The path the image maps the V8 binary under.
    pub module_path: String,
    /// Run-time address minus file address of the V8 binary.
    pub bias: u64,
    pub layout: Layout,
    /// Where the embedded builtins' code is at run time (node 22 and later
    /// also map a copy of it next to the JIT code).
    pub embedded: Vec<Embedded>,
    /// The mappings of the V8 binary: without `embedded` (a stripped
    /// binary), its code that has no CFI is taken for builtins.
    binary: Vec<(u64, u64)>,
    /// Where to look up anonymous methods in their receiver.
    properties: Option<receiver::PropertyLayout>,
    /// The map of InstructionStream objects, once seen.
    istream_map: Cell<Option<u64>>,
}

/// One run-time range of embedded builtins' code.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Embedded {
    pub start: u64,
    pub end: u64,
    /// The file address of the code at `start` (to name builtins).
    pub file_address: u64,
}

impl Reader {
    /// Finds the V8 binary of `image` and prepares to read its frames.
    /// Fails with "no V8 metadata in ..." for a process that is not node,
    /// and names the V8 version whose layout it cannot read.
    pub fn new(image: &Image) -> Result<Reader> {
        Reader::new_cached(image, &mut MetadataCache::default())
    }

    /// [`Reader::new`], reading each binary's metadata once per `cache`.
    pub fn new_cached(image: &Image, cache: &mut MetadataCache) -> Result<Reader> {
        let (md, bias, module_path) = Metadata::find(&image.modules, cache)?;
        let layout = match Layout::new(&md) {
            Ok(l) => l,
            Err(e) => match version(&md, bias, image) {
                Some(v) => bail!("V8 {v} is not supported: {e}"),
                None => return Err(e),
            },
        };
        let embedded = embedded_ranges(&md, &module_path, bias, image);
        let binary = image.modules.iter().filter(|m| m.path == module_path).map(|m| (m.start, m.end)).collect();
        let properties = receiver::PropertyLayout::new(&md);
        Ok(Reader { md, module_path, bias, layout, embedded, binary, properties, istream_map: Cell::new(None) })
    }

    /// V8's version (`11.3`).
    pub fn version(&self, image: &Image) -> Option<String> {
        version(&self.md, self.bias, image)
    }
}

/// V8's version (`11.3`): from `Version::major_` and `minor_` when the
/// symbol table has them, else from the version string node builds in.
fn version(md: &Metadata, bias: u64, image: &Image) -> Option<String> {
    let sym = |n: &str| md.symbols.get(n).map(|a| a + bias);
    let from_symbols = || {
        let major = image.memory.i32(sym("_ZN2v88internal7Version6major_E")?)?;
        let minor = image.memory.i32(sym("_ZN2v88internal7Version6minor_E")?)?;
        Some(format!("{major}.{minor}"))
    };
    from_symbols().or_else(|| md.version_string.clone())
}

/// Where the embedded builtins are at run time: every mapping of the V8
/// binary that holds (part of) the blob — the binary itself, and the copy
/// node 22+ maps next to its code space — plus V8's own record of it
/// (`current_embedded_blob_code_`) if that is elsewhere.  Empty when the
/// binary's symbol table is gone (a stripped libnode): then code without
/// unwind information is tried as V8 code instead (see `frames`).
fn embedded_ranges(md: &Metadata, module_path: &str, bias: u64, image: &Image) -> Vec<Embedded> {
    let Some((blob_start, blob_end)) = md.embedded_blob() else { return Vec::new() };
    let mut out: Vec<Embedded> = image
        .modules
        .iter()
        .filter(|m| m.path == module_path)
        .filter_map(|m| {
            let (vstart, vend) = md.file_addresses(m)?;
            let (s, e) = (vstart.max(blob_start), vend.min(blob_end));
            (s < e).then(|| Embedded { start: m.start + (s - vstart), end: m.start + (e - vstart), file_address: s })
        })
        .collect();
    let sym = |n: &str| md.symbols.get(n).map(|a| a + bias);
    let from_globals = || {
        let start = image.memory.u64(sym("_ZN2v88internal12_GLOBAL__N_127current_embedded_blob_code_E")?)?;
        let size = image.memory.u32(sym("_ZN2v88internal12_GLOBAL__N_132current_embedded_blob_code_size_E")?)?;
        (start != 0 && size != 0).then(|| Embedded { start, end: start + u64::from(size), file_address: blob_start })
    };
    if let Some(e) = from_globals() {
        if !out.iter().any(|o| o.start <= e.start && e.start < o.end) {
            out.push(e);
        }
    }
    out
}
