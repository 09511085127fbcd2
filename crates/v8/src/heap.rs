//! V8 heap objects, read from a process image: tagged values, maps and
//! instance types, strings in every representation (sequential, cons,
//! sliced, thin, external; one- and two-byte), functions
//! (JSFunction → SharedFunctionInfo → name, script), scripts (name,
//! source, line ends), scope infos and code objects.
//!
//! Every read is bounded (string lengths, cons-string nodes, array
//! lengths) and type-checked by the object's map, so a damaged heap gives
//! missing names, not crashes or endless loops.

use std::cell::RefCell;
use std::collections::HashMap;
use std::rc::Rc;

use crate::layout::Layout;
use crate::memory::{Memory, MemoryExt};

/// Longest string read for a name.
pub const MAX_NAME: usize = 1024;
/// Longest script source read (UTF-16 code units).
pub const MAX_SOURCE: usize = 64 << 20;
/// Largest array (in bytes) read from the heap: a damaged length never
/// makes us allocate more.
const MAX_ARRAY_BYTES: u64 = 64 << 20;
/// Most pieces of a cons string followed.
const MAX_STRING_NODES: usize = 1 << 16;
/// ScopeInfo::kMaxInlinedLocalNamesSize: with more context locals their
/// names live in a hash table (one slot) instead of inline.
const MAX_INLINED_LOCAL_NAMES: u64 = 75;

/// A script: its name and what is needed to turn positions into lines.
#[derive(Debug, Default)]
pub struct Script {
    pub name: Option<String>,
    /// Offsets of the line terminators ('\n'), ascending.
    pub line_ends: Option<Vec<u32>>,
}

impl Script {
    /// 1-based (line, column) of a 0-based character position.
    pub fn line_column(&self, pos: u32) -> Option<(u32, u32)> {
        let ends = self.line_ends.as_ref()?;
        let line = ends.partition_point(|&e| e < pos);
        let start = if line == 0 { 0 } else { ends[line - 1] + 1 };
        Some((line as u32 + 1, pos.saturating_sub(start) + 1))
    }
}

/// Reads heap objects of one image; caches what it decoded.
pub struct Heap<'a> {
    pub mem: &'a dyn Memory,
    pub l: &'a Layout,
    names: RefCell<HashMap<u64, Rc<str>>>,
    scripts: RefCell<HashMap<u64, Rc<Script>>>,
}

impl<'a> Heap<'a> {
    pub fn new(mem: &'a dyn Memory, l: &'a Layout) -> Self {
        Heap { mem, l, names: RefCell::default(), scripts: RefCell::default() }
    }

    pub fn is_smi(&self, w: u64) -> bool {
        w & 1 == 0
    }

    pub fn smi(&self, w: u64) -> Option<i64> {
        self.is_smi(w).then(|| (w as i64) >> self.l.smi_shift)
    }

    pub fn is_heap_object(&self, w: u64) -> bool {
        w & self.l.heap_object_tag_mask == self.l.heap_object_tag && w > 0x1000
    }

    /// A tagged value held in a stack slot at `addr`.  A heap object a
    /// garbage collection moved since the stack was copied (a caught
    /// thread that ran on) is found at its new place: the collector leaves
    /// the new address, untagged, in the old copy's map word.  Values read
    /// from the heap itself never need this (the collector updated them).
    pub fn slot(&self, addr: u64) -> Option<u64> {
        let w = self.mem.u64(addr)?;
        if !self.is_heap_object(w) {
            return Some(w);
        }
        let Some(map_word) = self.field(w, self.l.map) else { return Some(w) };
        let moved = map_word & self.l.heap_object_tag_mask == 0 && map_word > 0x1000;
        let new = map_word.wrapping_add(self.l.heap_object_tag);
        Some(if moved && self.instance_type(new).is_some() { new } else { w })
    }

    /// The word at byte offset `off` of object `obj` (a tagged pointer).
    pub fn field(&self, obj: u64, off: u64) -> Option<u64> {
        self.mem.u64(obj.wrapping_sub(self.l.heap_object_tag).wrapping_add(off))
    }

    /// A tagged field that holds a heap object (weak references, whose tag
    /// is 3, are read as strong).
    pub fn object_field(&self, obj: u64, off: u64) -> Option<u64> {
        let w = self.field(obj, off)?;
        let w = if w & 3 == 3 { w & !2 } else { w };
        self.is_heap_object(w).then_some(w)
    }

    pub fn smi_field(&self, obj: u64, off: u64) -> Option<i64> {
        self.smi(self.field(obj, off)?)
    }

    /// The instance type of a heap object.
    pub fn instance_type(&self, obj: u64) -> Option<u16> {
        if !self.is_heap_object(obj) {
            return None;
        }
        let map = self.field(obj, self.l.map)?;
        if !self.is_heap_object(map) {
            return None;
        }
        self.mem.u16(map - self.l.heap_object_tag + self.l.map_instance_type)
    }

    pub fn has_type(&self, obj: u64, t: u16) -> bool {
        self.instance_type(obj) == Some(t)
    }

    pub fn is_js_function(&self, obj: u64) -> bool {
        let (lo, hi) = self.l.js_function_types;
        self.instance_type(obj).is_some_and(|t| t >= lo && t <= hi)
    }

    pub fn is_string(&self, obj: u64) -> bool {
        self.instance_type(obj).is_some_and(|t| t < self.l.first_nonstring_type)
    }

    /// Length of a FixedArray-like object (FixedArray, ByteArray, ...).
    pub fn array_length(&self, obj: u64) -> Option<u64> {
        let n = self.smi_field(obj, self.l.fixed_array_length)?;
        (0..1 << 28).contains(&n).then_some(n as u64)
    }

    /// Element `i` of a FixedArray.
    pub fn array_get(&self, arr: u64, i: u64) -> Option<u64> {
        (i < self.array_length(arr)?).then(|| self.field(arr, self.l.fixed_array_data + i * 8))?
    }

    /// The bytes of a ByteArray.
    pub fn byte_array(&self, arr: u64) -> Option<Vec<u8>> {
        let t = self.instance_type(arr)?;
        if !self.l.byte_array_types.contains(&t) {
            return None;
        }
        let n = self.array_length(arr)?.min(MAX_ARRAY_BYTES);
        self.mem.bytes(arr - self.l.heap_object_tag + self.l.fixed_array_data, n as usize)
    }

    // ---- strings ----

    /// A string's contents as UTF-16 code units, at most `limit` of them
    /// (longer strings are cut).
    pub fn string_units(&self, obj: u64, limit: usize) -> Option<Vec<u16>> {
        let mut out = Vec::new();
        // (string, offset into it, count) still to append.
        let mut todo = vec![(obj, 0u64, u64::MAX)];
        let mut nodes = 0;
        while let Some((s, start, count)) = todo.pop() {
            nodes += 1;
            if nodes > MAX_STRING_NODES || out.len() >= limit {
                break;
            }
            let t = self.instance_type(s)?;
            if t >= self.l.first_nonstring_type {
                return None;
            }
            let len = self.mem.i32(s - self.l.heap_object_tag + self.l.string_length)?;
            if len < 0 {
                return None;
            }
            let len = len as u64;
            let start = start.min(len);
            let count = count.min(len - start).min((limit - out.len()) as u64);
            let one_byte = t & self.l.string_encoding_mask == self.l.one_byte_tag;
            let repr = t & self.l.string_repr_mask;
            if repr == self.l.seq_tag {
                let chars = if one_byte { self.l.seq_one_byte_chars } else { self.l.seq_two_byte_chars };
                self.push_chars(s - self.l.heap_object_tag + chars, start, count, one_byte, &mut out)?;
            } else if repr == self.l.cons_tag {
                let first = self.object_field(s, self.l.cons_first)?;
                let second = self.object_field(s, self.l.cons_second)?;
                let first_len = self.mem.i32(first - self.l.heap_object_tag + self.l.string_length)?.max(0) as u64;
                // Pushed in reverse: `first` is taken next.
                if start + count > first_len {
                    let from = start.saturating_sub(first_len);
                    todo.push((second, from, start + count - first_len - from));
                }
                if start < first_len {
                    todo.push((first, start, count.min(first_len - start)));
                }
            } else if repr == self.l.sliced_tag {
                let parent = self.object_field(s, self.l.sliced_parent)?;
                let off = self.smi_field(s, self.l.sliced_offset)?.max(0) as u64;
                todo.push((parent, off + start, count));
            } else if repr == self.l.thin_tag {
                todo.push((self.object_field(s, self.l.thin_actual)?, start, count));
            } else if repr == self.l.external_tag {
                let data = self.external_data(s, len, one_byte)?;
                self.push_chars(data, start, count, one_byte, &mut out)?;
            } else {
                return None;
            }
        }
        Some(out)
    }

    fn push_chars(&self, addr: u64, start: u64, count: u64, one_byte: bool, out: &mut Vec<u16>) -> Option<()> {
        if one_byte {
            let b = self.mem.bytes(addr + start, count as usize)?;
            out.extend(b.into_iter().map(u16::from));
        } else {
            let b = self.mem.bytes(addr + 2 * start, 2 * count as usize)?;
            out.extend(b.chunks_exact(2).map(|c| u16::from_le_bytes([c[0], c[1]])));
        }
        Some(())
    }

    /// Where the characters of an external string are: the cached data
    /// pointer after the resource pointer, or else the resource's own data
    /// pointer (node's resources keep it right after their vtable).
    fn external_data(&self, s: u64, len: u64, one_byte: bool) -> Option<u64> {
        let base = s - self.l.heap_object_tag + self.l.external_resource;
        let bytes = if one_byte { len } else { 2 * len };
        let readable =
            |p: u64| p > 0x1000 && (len == 0 || self.mem.u8(p).is_some() && self.mem.u8(p + bytes - 1).is_some());
        if let Some(p) = self.mem.u64(base + 8).filter(|&p| readable(p)) {
            return Some(p);
        }
        let resource = self.mem.u64(base)?;
        self.mem.u64(resource + 8).filter(|&p| readable(p))
    }

    /// A string as Rust text (lossy), at most `limit` characters.
    pub fn string(&self, obj: u64, limit: usize) -> Option<String> {
        Some(String::from_utf16_lossy(&self.string_units(obj, limit)?))
    }

    // ---- functions ----

    /// The SharedFunctionInfo of a JSFunction.
    pub fn shared_info(&self, function: u64) -> Option<u64> {
        let sfi = self.object_field(function, self.l.js_function_shared)?;
        self.has_type(sfi, self.l.sfi_type).then_some(sfi)
    }

    /// The name of a function (SharedFunctionInfo): its own name, else the
    /// name V8 inferred for an anonymous function (`obj.method = function`),
    /// else empty.
    pub fn function_name(&self, sfi: u64) -> Rc<str> {
        if let Some(n) = self.names.borrow().get(&sfi) {
            return n.clone();
        }
        let name: Rc<str> = self.function_name_uncached(sfi).unwrap_or_default().into();
        self.names.borrow_mut().insert(sfi, name.clone());
        name
    }

    fn function_name_uncached(&self, sfi: u64) -> Option<String> {
        let v = self.field(sfi, self.l.sfi_name_or_scope_info)?;
        let mut name = None;
        let mut inferred = None;
        if self.is_string(v) {
            name = self.string(v, MAX_NAME);
        } else if self.has_type(v, self.l.scope_info_type) {
            (name, inferred) = self.scope_info_names(v);
        }
        if name.as_deref().unwrap_or("").is_empty() {
            inferred = inferred.or_else(|| self.uncompiled_inferred_name(sfi));
            return inferred.filter(|s| !s.is_empty()).or(name);
        }
        name
    }

    /// (function name, inferred name) from a ScopeInfo: after the context
    /// locals' names and infos come an optional saved class variable slot,
    /// the function variable (name, slot) and the inferred name, each
    /// present as the scope's flags say (bits 10, 12-13 and 14).
    fn scope_info_names(&self, si: u64) -> (Option<String>, Option<String>) {
        let slot = |i: u64| self.field(si, 8 + 8 * i);
        let Some(flags_word) = slot(0) else { return (None, None) };
        // A Smi (V8 <= 12) or a raw uint32 (V8 13+).
        let flags = if flags_word & 0xffff_ffff == 0 { flags_word >> 32 } else { flags_word & 0xffff_ffff };
        let Some(locals) = slot(self.l.scope_info_context_local_count_slot).and_then(|w| self.smi(w)) else {
            return (None, None);
        };
        if !(0..1 << 20).contains(&locals) {
            return (None, None);
        }
        let locals = locals as u64;
        let names = if locals < MAX_INLINED_LOCAL_NAMES { locals } else { 1 };
        let mut i = self.l.scope_info_first_slot + names + locals;
        if flags & (1 << 10) != 0 {
            i += 1; // saved_class_variable_info
        }
        let mut name = None;
        if (flags >> 12) & 3 != 0 {
            let w = slot(i).unwrap_or(0);
            if self.is_string(w) {
                name = self.string(w, MAX_NAME);
            }
            i += 2;
        }
        let mut inferred = None;
        if flags & (1 << 14) != 0 {
            let w = slot(i).unwrap_or(0);
            if self.is_string(w) {
                inferred = self.string(w, MAX_NAME);
            }
        }
        (name, inferred)
    }

    /// The inferred name kept in a not-yet-compiled function's UncompiledData.
    fn uncompiled_inferred_name(&self, sfi: u64) -> Option<String> {
        let data = self.object_field(sfi, self.l.sfi_function_data?)?;
        let t = self.instance_type(data)?;
        if !self.l.uncompiled_data_types.contains(&t) {
            return None;
        }
        let name = self.object_field(data, self.l.uncompiled_inferred_name?)?;
        self.is_string(name).then(|| self.string(name, MAX_NAME))?
    }

    /// The Script of a function, if it has one (builtins and API
    /// functions do not).
    pub fn function_script(&self, sfi: u64) -> Option<u64> {
        let s = self.object_field(sfi, self.l.sfi_script)?;
        if self.has_type(s, self.l.script_type) {
            return Some(s);
        }
        // A DebugInfo (a function being debugged): its script is one of
        // its first fields.
        (1..6).find_map(|i| self.object_field(s, 8 * i).filter(|&o| self.has_type(o, self.l.script_type)))
    }

    /// A script's name and line ends (cached per script).
    pub fn script(&self, script: u64) -> Rc<Script> {
        if let Some(s) = self.scripts.borrow().get(&script) {
            return s.clone();
        }
        let name = self
            .object_field(script, self.l.script_name)
            .filter(|&n| self.is_string(n))
            .and_then(|n| self.string(n, 4096));
        let line_ends = self.line_ends(script);
        let s = Rc::new(Script { name, line_ends });
        self.scripts.borrow_mut().insert(script, s.clone());
        s
    }

    /// Line ends from the script's cached `line_ends` array, else computed
    /// from its source.
    fn line_ends(&self, script: u64) -> Option<Vec<u32>> {
        if let Some(arr) = self.object_field(script, self.l.script_line_ends) {
            if self.instance_type(arr).is_some_and(|t| self.l.fixed_array_types.contains(&t)) {
                let n = self.array_length(arr)?.min(MAX_ARRAY_BYTES / 8);
                let words = self.mem.bytes(arr - self.l.heap_object_tag + self.l.fixed_array_data, 8 * n as usize)?;
                let ends: Option<Vec<u32>> = words
                    .chunks_exact(8)
                    .map(|w| self.smi(u64::from_le_bytes(w.try_into().unwrap())).map(|v| v as u32))
                    .collect();
                if let Some(ends) = ends.filter(|e| !e.is_empty()) {
                    return Some(ends);
                }
            }
        }
        let src = self.object_field(script, self.l.script_source).filter(|&s| self.is_string(s))?;
        Some(line_ends_of(&self.string_units(src, MAX_SOURCE)?))
    }
}

/// Line ends of a source the way V8 computes them (String::CalculateLineEnds):
/// the offset of each line terminator (\n, \r not followed by \n, U+2028,
/// U+2029), then the length of the source.
pub fn line_ends_of(src: &[u16]) -> Vec<u32> {
    let is_terminator = |c: u16| c == 0x0a || c == 0x0d || c == 0x2028 || c == 0x2029;
    let mut ends: Vec<u32> = src
        .iter()
        .enumerate()
        .filter(|&(i, &c)| is_terminator(c) && !(c == 0x0d && src.get(i + 1) == Some(&0x0a)))
        .map(|(i, _)| i as u32)
        .collect();
    ends.push(src.len() as u32);
    ends
}

#[cfg(test)]
mod tests {
    use super::*;

    fn units(s: &str) -> Vec<u16> {
        s.encode_utf16().collect()
    }

    #[test]
    fn line_ends_like_v8() {
        assert_eq!(line_ends_of(&units("a\nbc\r\nd\re")), vec![1, 5, 7, 9]);
        assert_eq!(line_ends_of(&units("")), vec![0]);
        assert_eq!(line_ends_of(&units("x\n")), vec![1, 2]);
    }

    #[test]
    fn positions_to_lines() {
        let s = Script { name: None, line_ends: Some(line_ends_of(&units("ab\ncde\n\nf"))) };
        assert_eq!(s.line_column(0), Some((1, 1)));
        assert_eq!(s.line_column(2), Some((1, 3)), "the newline belongs to its line");
        assert_eq!(s.line_column(3), Some((2, 1)));
        assert_eq!(s.line_column(5), Some((2, 3)));
        assert_eq!(s.line_column(7), Some((3, 1)));
        assert_eq!(s.line_column(8), Some((4, 1)));
    }
}
