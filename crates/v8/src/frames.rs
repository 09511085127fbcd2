//! The stack walker: from a thread's registers, frame by frame, native
//! frames unwound with CFI ([`crate::native`]), V8 frames by their frame
//! pointer.  A V8 frame is either a typed frame (a marker — the frame type
//! shifted left by one — in the context slot: entry, exit, stub...) or a
//! JavaScript frame (a context and a JSFunction in its fixed slots).  A
//! JavaScript frame's current position comes from:
//!
//! * interpreted frames: the bytecode offset saved in the frame (or in its
//!   register for the innermost frame) and the bytecode's source position table;
//! * baseline (Sparkplug) frames: the PC, the code's bytecode offset table
//!   and the bytecodes' lengths;
//! * optimized (Maglev, TurboFan) frames: the PC and the code's source
//!   position table, whose entries name the inlined function they belong
//!   to; the deoptimization data maps those to their functions and call
//!   sites, which expands the frame into one line per inlined function.
//!
//! Every walk is bounded: at most [`MAX_FRAMES`] frames, the stack pointer
//! must grow at every step, and every object is type-checked.

use framehop::x86_64::UnwindRegsX86_64;
use framehop::FrameAddress;

use crate::heap::Heap;
use crate::image::{Image, Thread};
use crate::layout::Instructions;
use crate::memory::MemoryExt;
use crate::native::NativeUnwinder;
use crate::positions::{self, SourcePosition};
use crate::Reader;

/// Most frames reported for one thread.
pub const MAX_FRAMES: usize = 1024;
/// How far back from a PC the start of its code object is searched.
const MAX_CODE_SIZE: u64 = 4 << 20;
/// Most inlined functions expanded for one frame.
const MAX_INLINED: usize = 64;

/// How a JavaScript frame's code was compiled.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Tier {
    Interpreted,
    Baseline,
    Maglev,
    Turbofan,
    /// A builtin (e.g. `Array.prototype.forEach`) with a JavaScript frame.
    Builtin,
}

impl Tier {
    pub fn as_str(self) -> &'static str {
        match self {
            Tier::Interpreted => "interpreted",
            Tier::Baseline => "baseline",
            Tier::Maglev => "maglev",
            Tier::Turbofan => "turbofan",
            Tier::Builtin => "builtin",
        }
    }
}

/// One JavaScript function of a frame.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct JsFunction {
    /// The function's name; empty for an anonymous function.
    pub name: String,
    /// The script's name (file path, or `node:internal/...`).
    pub script: Option<String>,
    /// 1-based line and column of the current position.
    pub line: Option<u32>,
    pub column: Option<u32>,
}

/// What a frame is.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum FrameKind {
    /// Native code (C, C++, Rust): the caller symbolizes it.
    Native,
    /// A JavaScript frame: its functions, innermost first — all but the
    /// last were inlined into the last by the optimizing compiler.
    Js { tier: Tier, functions: Vec<JsFunction> },
    /// Any other V8 frame: entry, exit, stub, internal... (a short label),
    /// with the builtin the PC is in, if known.
    V8 { label: String, builtin: Option<String> },
}

impl JsFunction {
    /// `name (script:line:column)`; `<anonymous>` for no name.
    pub fn display(&self, tier: Tier) -> String {
        let name = if self.name.is_empty() { "<anonymous>" } else { self.name.as_str() };
        match (&self.script, self.line, self.column) {
            (Some(s), Some(l), Some(c)) => format!("{name} ({s}:{l}:{c})"),
            (Some(s), _, _) => format!("{name} ({s})"),
            (None, _, _) if tier == Tier::Builtin => name.to_string(),
            (None, _, _) => format!("{name} (<no script>)"),
        }
    }
}

impl FrameKind {
    /// How a debugger's `bt` shows a V8 or JavaScript frame, one line per
    /// function, inlined ones first: `name (script:line:column)  [tier]`,
    /// `<Entry>  [JSEntry]`.  `None` for a native frame: the caller names it.
    pub fn lines(&self) -> Option<Vec<String>> {
        match self {
            FrameKind::Native => None,
            FrameKind::V8 { label, builtin: Some(b) } => Some(vec![format!("<{label}>  [{b}]")]),
            FrameKind::V8 { label, builtin: None } => Some(vec![format!("<{label}>")]),
            FrameKind::Js { tier, functions } => Some(
                functions
                    .iter()
                    .enumerate()
                    .map(|(i, f)| {
                        let inlined = if i + 1 < functions.len() { ", inlined" } else { "" };
                        format!("{}  [{}{inlined}]", f.display(*tier), tier.as_str())
                    })
                    .collect(),
            ),
        }
    }
}

/// One frame of a thread's stack.
#[derive(Clone, Debug)]
pub struct Frame {
    pub pc: u64,
    pub sp: u64,
    pub fp: u64,
    pub kind: FrameKind,
}

/// A code object found for a PC.
struct CodeInfo {
    code: u64,
    start: u64,
    kind: u32,
}

/// Walks the stack of `thread`: with a [`Reader`], V8's frames decoded;
/// without one (a process that is not node), native frames only.
pub fn walk(reader: Option<&Reader>, image: &Image, thread: &Thread, native: &mut NativeUnwinder) -> Vec<Frame> {
    let heap = reader.map(|r| Heap::new(&*image.memory, &r.layout));
    let mem = &*image.memory;
    let r = &thread.regs;
    let mut regs = UnwindRegsX86_64::new(r.ip(), r.sp(), r.bp());
    let mut address = FrameAddress::from_instruction_pointer(r.ip());
    let mut frames = Vec::new();
    while frames.len() < MAX_FRAMES {
        let (pc, sp, fp) = (address.address(), regs.sp(), regs.bp());
        if pc == 0 {
            break;
        }
        let top = frames.is_empty();
        let v8 = match (reader, &heap) {
            (Some(reader), Some(heap)) if reader.is_v8_code(image, pc, native) => {
                reader.v8_frame(heap, pc, fp, top, thread)
            }
            _ => None,
        };
        let next = match v8 {
            Some(kind) => {
                frames.push(Frame { pc, sp, fp, kind });
                // The caller, by frame pointer.
                if fp < sp || fp & 7 != 0 {
                    break;
                }
                let (Some(saved_fp), Some(ret)) = (mem.u64(fp), mem.u64(fp + 8)) else { break };
                regs = UnwindRegsX86_64::new(ret, fp + 16, saved_fp);
                ret
            }
            None => {
                frames.push(Frame { pc, sp, fp, kind: FrameKind::Native });
                match native.step(image, address, &mut regs) {
                    Some(ret) => ret,
                    None => break,
                }
            }
        };
        let Some(a) = FrameAddress::from_return_address(next) else { break };
        address = a;
        if regs.sp() <= sp {
            break; // no progress: a damaged stack
        }
    }
    frames
}

impl Reader {
    /// Walks the stack of `thread`.
    pub fn walk(&self, image: &Image, thread: &Thread, native: &mut NativeUnwinder) -> Vec<Frame> {
        walk(Some(self), image, thread, native)
    }

    /// Whether `pc` may be V8-generated code: a builtin of the embedded
    /// blob (in a stripped binary: code of the V8 binary without CFI), or
    /// code outside every mapped file (the JIT's code space).
    fn is_v8_code(&self, image: &Image, pc: u64, native: &NativeUnwinder) -> bool {
        if self.in_embedded(pc) {
            return self.embedded.iter().any(|e| pc >= e.start && pc < e.end) || !native.has_cfi(pc);
        }
        if !image.anon_exec.is_empty() {
            return image.anon_exec.iter().any(|&(s, e)| pc >= s && pc < e);
        }
        image.module_at(pc).is_none() && image.memory.u8(pc).is_some()
    }

    /// The builtin whose code holds `pc`, from the symbol table.
    pub fn builtin_at(&self, pc: u64) -> Option<&str> {
        match self.embedded.iter().find(|e| pc >= e.start && pc < e.end) {
            Some(e) => self.md.builtin_at(pc - e.start + e.file_address),
            None => self.md.builtin_at(pc.wrapping_sub(self.bias)),
        }
    }

    /// Whether `pc` is in the embedded builtins — or, when the binary does
    /// not say where they are, anywhere in the V8 binary.
    fn in_embedded(&self, pc: u64) -> bool {
        if self.embedded.is_empty() {
            return self.binary.iter().any(|&(s, e)| pc >= s && pc < e);
        }
        self.embedded.iter().any(|e| pc >= e.start && pc < e.end)
    }

    /// Decodes the V8 frame whose frame pointer is `fp`; `None` when it
    /// does not look like one.
    fn v8_frame(&self, heap: &Heap, pc: u64, fp: u64, top: bool, thread: &Thread) -> Option<FrameKind> {
        let l = &self.layout;
        let builtin = self.builtin_at(pc).map(str::to_string);
        let marker = heap.mem.u64(fp.wrapping_add(l.fp_context as u64))?;
        if marker & 1 == 0 {
            // A typed frame: the marker is the frame type shifted by one.
            let t = (marker as i64) >> 1;
            let name = l.frame_types.get(&t)?;
            let mut label = name.strip_suffix("Frame").unwrap_or(name).to_string();
            if name == "BuiltinExitFrame" {
                // The builtin's JSFunction ("target") is pushed above the
                // return address, after new.target.
                if let Some(f) = (2..5).filter_map(|i| heap.slot(fp + 8 * i)).find(|&w| heap.is_js_function(w)) {
                    if let Some(sfi) = heap.shared_info(f) {
                        label = format!("BuiltinExit {}", heap.function_name(sfi));
                    }
                }
            }
            return Some(FrameKind::V8 { label, builtin });
        }
        let function = heap.slot(fp.wrapping_add(l.fp_function as u64))?;
        if !heap.is_heap_object(marker) || !heap.is_js_function(function) {
            return None;
        }
        let mut kind = self.js_frame(heap, pc, fp, function, top, thread, builtin)?;
        // An anonymous function (not inlined: its receiver is in the
        // frame) is named by the property of its receiver that holds it.
        if let (FrameKind::Js { functions, .. }, Some(p)) = (&mut kind, &self.properties) {
            if let Some(f) = functions.last_mut().filter(|f| f.name.is_empty()) {
                if let Some(key) = heap.frame_receiver(p, fp).and_then(|r| heap.method_key(p, r, function)) {
                    f.name = key;
                }
            }
        }
        Some(kind)
    }

    /// The JavaScript frame of `function` whose frame pointer is `fp`.
    #[allow(clippy::too_many_arguments)]
    fn js_frame(
        &self,
        heap: &Heap,
        pc: u64,
        fp: u64,
        function: u64,
        top: bool,
        thread: &Thread,
        builtin: Option<String>,
    ) -> Option<FrameKind> {
        let l = &self.layout;
        let sfi = heap.shared_info(function)?;
        if self.in_embedded(pc) {
            return Some(self.builtin_js_frame(heap, pc, fp, sfi, top, thread, builtin.as_deref()));
        }
        let Some(code) = self.find_code(heap, pc, function) else {
            return Some(FrameKind::Js { tier: Tier::Turbofan, functions: vec![self.js_function(heap, sfi, None)] });
        };
        let offset = pc - code.start;
        if code.kind == l.code_kind_baseline {
            let position = self.baseline_position(heap, fp, &code, offset);
            return Some(FrameKind::Js {
                tier: Tier::Baseline,
                functions: vec![self.js_function(heap, sfi, position)],
            });
        }
        let tier = if code.kind == l.code_kind_baseline + 1 { Tier::Maglev } else { Tier::Turbofan };
        if !l.is_optimized_kind(code.kind) {
            return Some(FrameKind::V8 { label: format!("code kind {}", code.kind), builtin });
        }
        Some(FrameKind::Js { tier, functions: self.optimized_functions(heap, sfi, &code, offset.saturating_sub(1)) })
    }

    /// A JavaScript frame whose PC is in a builtin: an interpreted frame
    /// when the builtin is the interpreter's (or the frame holds a bytecode
    /// array and offset), else a builtin's own frame.
    #[allow(clippy::too_many_arguments)]
    fn builtin_js_frame(
        &self,
        heap: &Heap,
        _pc: u64,
        fp: u64,
        sfi: u64,
        top: bool,
        thread: &Thread,
        builtin: Option<&str>,
    ) -> FrameKind {
        let l = &self.layout;
        let bytecode =
            heap.slot(fp.wrapping_add(l.fp_bytecode_array as u64)).filter(|&b| heap.has_type(b, l.bytecode_array_type));
        let raw_offset = heap.mem.u64(fp.wrapping_add(l.fp_bytecode_offset as u64)).and_then(|w| heap.smi(w));
        let interpreter = builtin.is_none_or(|b| {
            b.starts_with("Interpreter") || b.ends_with("Handler") || b.starts_with("BaselineOrInterpreter")
        });
        match (bytecode, raw_offset) {
            (Some(bytecode), Some(raw)) if interpreter => {
                let mut raw = raw;
                // The innermost frame's offset lives in a register while a
                // bytecode handler runs; the frame slot is saved at calls.
                if top && builtin.is_some_and(|b| b.ends_with("Handler")) {
                    if let (Some(off), Some(arr)) = (
                        l.bytecode_offset_register.and_then(|r| thread.regs.by_code(r)),
                        l.bytecode_array_register.and_then(|r| thread.regs.by_code(r)),
                    ) {
                        if arr == bytecode && off < 1 << 30 {
                            raw = off as i64;
                        }
                    }
                }
                let offset = raw - (l.bytecode_array_header as i64 - l.heap_object_tag as i64);
                let position = self.bytecode_position(heap, bytecode, offset);
                FrameKind::Js { tier: Tier::Interpreted, functions: vec![self.js_function(heap, sfi, position)] }
            }
            _ => FrameKind::Js { tier: Tier::Builtin, functions: vec![self.js_function(heap, sfi, None)] },
        }
    }

    /// Name, script and (given a script offset) line and column of a function.
    fn js_function(&self, heap: &Heap, sfi: u64, position: Option<i64>) -> JsFunction {
        let name = heap.function_name(sfi).to_string();
        let script = heap.function_script(sfi).map(|s| heap.script(s));
        let (line, column) = match (&script, position) {
            (Some(s), Some(p)) if p >= 0 => s.line_column(p as u32).map_or((None, None), |(l, c)| (Some(l), Some(c))),
            _ => (None, None),
        };
        JsFunction { name, script: script.and_then(|s| s.name.clone()), line, column }
    }

    /// The script offset of bytecode `offset` of a BytecodeArray.
    fn bytecode_position(&self, heap: &Heap, bytecode: u64, offset: i64) -> Option<i64> {
        let table = heap.object_field(bytecode, self.layout.bytecode_array_source_positions)?;
        let bytes = heap.byte_array(table)?;
        positions::position_at(&bytes, offset).map(|raw| SourcePosition::from_raw(raw).script_offset)
    }

    /// The script offset a baseline frame is at.
    fn baseline_position(&self, heap: &Heap, fp: u64, code: &CodeInfo, pc_offset: u64) -> Option<i64> {
        let l = &self.layout;
        let bytecode = heap
            .slot(fp.wrapping_add(l.fp_bytecode_array as u64))
            .filter(|&b| heap.has_type(b, l.bytecode_array_type))?;
        let table = heap.byte_array(heap.object_field(code.code, l.code_source_positions)?)?;
        let starts = self.bytecode_starts(heap, bytecode)?;
        let offset = positions::baseline_bytecode_offset(&table, &starts, pc_offset)?;
        self.bytecode_position(heap, bytecode, offset as i64)
    }

    /// The offset of each bytecode of a BytecodeArray, from the bytecode
    /// sizes table of the binary (`Bytecodes::kBytecodeSizes`).
    fn bytecode_starts(&self, heap: &Heap, bytecode: u64) -> Option<Vec<u32>> {
        let sizes = self.md.bytecode_sizes.as_ref()?;
        let len = heap.array_length(bytecode)?.min(1 << 24) as usize;
        let bytes = heap.mem.bytes(bytecode - self.layout.heap_object_tag + self.layout.bytecode_array_header, len)?;
        let count = sizes.len() / 3;
        let mut starts = Vec::new();
        let mut at = 0usize;
        while at < len {
            starts.push(at as u32);
            let b = bytes[at] as usize;
            // Wide/ExtraWide (and their debug-break twins) prefix the next
            // bytecode and scale its operands.
            let size = match b {
                0 | 2 => 1 + *sizes.get(count + *bytes.get(at + 1)? as usize)? as usize,
                1 | 3 => 1 + *sizes.get(2 * count + *bytes.get(at + 1)? as usize)? as usize,
                _ => *sizes.get(b)? as usize,
            };
            if size == 0 {
                return None;
            }
            at += size;
        }
        Some(starts)
    }

    /// The functions of an optimized frame at code offset `offset`,
    /// innermost first.
    fn optimized_functions(&self, heap: &Heap, sfi: u64, code: &CodeInfo, offset: u64) -> Vec<JsFunction> {
        let l = &self.layout;
        let table = heap.object_field(code.code, l.code_source_positions).and_then(|t| heap.byte_array(t));
        let Some(raw) = table.and_then(|t| positions::position_at(&t, offset as i64)) else {
            return vec![self.js_function(heap, sfi, None)];
        };
        let mut pos = SourcePosition::from_raw(raw);
        let deopt = heap.object_field(code.code, l.code_deopt_data);
        let mut out = Vec::new();
        while let Some(id) = pos.inlining_id {
            if out.len() >= MAX_INLINED {
                break;
            }
            let Some((inlined_sfi, caller)) = deopt.and_then(|d| self.inlining(heap, d, id)) else { break };
            out.push(self.js_function(heap, inlined_sfi, Some(pos.script_offset)));
            pos = caller;
        }
        if pos.inlining_id.is_some() {
            // Inlining data unreadable: the position is in an unknown function.
            out.clear();
            out.push(self.js_function(heap, sfi, None));
            return out;
        }
        out.push(self.js_function(heap, sfi, Some(pos.script_offset)));
        out
    }

    /// Inlining entry `id` of deoptimization data `deopt`: the inlined
    /// function and the position of its call site.
    fn inlining(&self, heap: &Heap, deopt: u64, id: u32) -> Option<(u64, SourcePosition)> {
        let l = &self.layout;
        let positions = heap.object_field(deopt, l.fixed_array_data + 8 * l.deopt_inlining_positions)?;
        let bytes = heap.byte_array(positions)?;
        // InliningPosition: { SourcePosition position (8 bytes); int inlined_function_id; } padded to 16.
        let entry = bytes.get(16 * id as usize..16 * id as usize + 12)?;
        let caller = SourcePosition::from_raw(i64::from_le_bytes(entry[0..8].try_into().ok()?));
        let function_id = i32::from_le_bytes(entry[8..12].try_into().ok()?);
        let literals = heap.object_field(deopt, l.fixed_array_data + 8 * l.deopt_literal_array)?;
        let n = heap.array_length(literals)?;
        if function_id < 0 || function_id as u64 >= n {
            return None;
        }
        let mut sfi = heap.object_field(literals, l.fixed_array_data + 8 * function_id as u64)?;
        if !heap.has_type(sfi, l.sfi_type) {
            // A SharedFunctionInfoWrapper (V8 13+): the SFI is its first field.
            sfi = heap.object_field(sfi, 8).filter(|&s| heap.has_type(s, l.sfi_type))?;
        }
        Some((sfi, caller))
    }

    /// The code object holding `pc` (heap code only): the function's
    /// current code if it holds `pc`, else found by searching back from
    /// `pc` for the header of the object whose instructions hold it (the
    /// InstructionStream, or in V8 10 the Code object itself).
    fn find_code(&self, heap: &Heap, pc: u64, function: u64) -> Option<CodeInfo> {
        let l = &self.layout;
        if let Some(code) = l.js_function_code.and_then(|off| heap.object_field(function, off)) {
            if let Some(info) = self.code_info(heap, code).filter(|c| self.code_contains(heap, c, pc)) {
                return Some(info);
            }
        }
        let (header, holder_type) = match l.instructions {
            Instructions::Inline { header } => (header, l.code_type),
            Instructions::Stream { header, stream_type, .. } => (header, stream_type),
        };
        // Instructions start at 32-byte (or coarser) aligned addresses.
        let mut start = pc & !31;
        let lowest = pc.saturating_sub(MAX_CODE_SIZE);
        let known_map = self.istream_map.get();
        while start > lowest {
            let holder = start - header + l.heap_object_tag;
            let map = heap.mem.u64(holder - l.heap_object_tag);
            let hit = match (map, known_map) {
                (Some(m), Some(k)) => m == k,
                (Some(_), None) => heap.has_type(holder, holder_type),
                (None, _) => return None,
            };
            let code = match l.instructions {
                Instructions::Inline { .. } => Some(holder),
                Instructions::Stream { code, .. } => heap.object_field(holder, code),
            };
            if let Some(info) = code.filter(|_| hit).and_then(|c| self.code_info(heap, c)) {
                if info.start == start && self.code_contains(heap, &info, pc) {
                    self.istream_map.set(map);
                    return Some(info);
                }
            }
            start -= 32;
        }
        None
    }

    fn code_info(&self, heap: &Heap, code: u64) -> Option<CodeInfo> {
        let l = &self.layout;
        if !heap.has_type(code, l.code_type) {
            return None;
        }
        let start = match l.instructions {
            Instructions::Inline { header } => code - l.heap_object_tag + header,
            Instructions::Stream { start, .. } => heap.field(code, start)?,
        };
        let flags = heap.mem.u32(code - l.heap_object_tag + l.code_flags)?;
        Some(CodeInfo { code, start, kind: (flags >> l.code_kind_shift) & l.code_kind_mask })
    }

    fn code_contains(&self, heap: &Heap, c: &CodeInfo, pc: u64) -> bool {
        let size = heap.mem.u32(c.code - self.layout.heap_object_tag + self.layout.code_instruction_size);
        size.is_some_and(|s| pc >= c.start && pc < c.start + u64::from(s))
    }
}
