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
//! current lines and columns, with inlined functions expanded.
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

use std::cell::Cell;

use anyhow::Result;

pub use frames::{Frame, FrameKind, JsFunction, Tier};
pub use image::{Image, Module, Regs, Thread};
use layout::Layout;
use memory::MemoryExt;
use metadata::Metadata;
pub use native::NativeUnwinder;

/// Reads JavaScript stacks of one process image.
pub struct Reader {
    pub md: Metadata,
    /// Run-time address minus file address of the V8 binary.
    pub bias: u64,
    pub layout: Layout,
    /// Run-time range of the embedded builtins' code.
    pub embedded: Option<(u64, u64)>,
    bytecode_sizes: Option<Vec<u8>>,
    /// The map of InstructionStream objects, once seen.
    istream_map: Cell<Option<u64>>,
}

impl Reader {
    /// Finds the V8 binary of `image` and prepares to read its frames.
    /// Fails with "no V8 metadata in ..." for a process that is not node.
    pub fn new(image: &Image) -> Result<Reader> {
        let (md, bias) = Metadata::find(&image.modules)?;
        let layout = Layout::new(&md)?;
        let embedded = embedded_range(&md, bias, image);
        let bytecode_sizes = md.bytecode_sizes.clone();
        Ok(Reader { md, bias, layout, embedded, bytecode_sizes, istream_map: Cell::new(None) })
    }

    /// V8's version, when the binary's symbol table has it (`11.3`).
    pub fn version(&self, image: &Image) -> Option<String> {
        let sym = |n: &str| self.md.symbols.get(n).map(|a| a + self.bias);
        let major = image.memory.i32(sym("_ZN2v88internal7Version6major_E")?)?;
        let minor = image.memory.i32(sym("_ZN2v88internal7Version6minor_E")?)?;
        Some(format!("{major}.{minor}"))
    }
}

/// Where the embedded builtins are at run time: V8's own record of it
/// (`current_embedded_blob_code_` and its size, when `.symtab` names
/// them), else the span of the `Builtins_*` symbols.
fn embedded_range(md: &Metadata, bias: u64, image: &Image) -> Option<(u64, u64)> {
    let sym = |n: &str| md.symbols.get(n).map(|a| a + bias);
    let from_globals = || {
        let start = image.memory.u64(sym("_ZN2v88internal12_GLOBAL__N_127current_embedded_blob_code_E")?)?;
        let size = image.memory.u32(sym("_ZN2v88internal12_GLOBAL__N_132current_embedded_blob_code_size_E")?)?;
        (start != 0 && size != 0).then(|| (start, start + u64::from(size)))
    };
    from_globals().or_else(|| {
        let first = md.builtins.first()?;
        let last = md.builtins.last()?;
        Some((first.0 + bias, last.0 + last.1.max(1) + bias))
    })
}
