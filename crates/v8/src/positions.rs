//! Source positions: V8's source position tables (a code offset → source
//! position map, delta- and zigzag-VLQ-encoded) and the packed
//! `SourcePosition` values of optimized code, whose inlining id points into
//! the deoptimization data's inlining positions; and the bytecode offset
//! tables of baseline (Sparkplug) code, which map machine code back to
//! bytecodes.

/// One decoded `SourcePosition`: a character offset into the script, and
/// the inlined function it belongs to (`None`: the code's own function).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct SourcePosition {
    pub script_offset: i64,
    pub inlining_id: Option<u32>,
}

impl SourcePosition {
    /// Unpacks V8's 64-bit encoding: bit 0 external flag, bits 1-30 script
    /// offset + 1, bits 31-46 inlining id + 1.
    pub fn from_raw(raw: i64) -> SourcePosition {
        let raw = raw as u64;
        let script_offset = ((raw >> 1) & ((1 << 30) - 1)) as i64 - 1;
        let inlining = ((raw >> 31) & 0xffff) as i64 - 1;
        SourcePosition { script_offset, inlining_id: (inlining >= 0).then_some(inlining as u32) }
    }
}

/// Reads one zigzag-encoded variable-length integer (a VLQ whose low bit
/// is the sign).
fn read_zigzag(bytes: &[u8], at: &mut usize) -> Option<i64> {
    let v = read_vlq(bytes, at)?;
    Some(((v >> 1) as i64) ^ -((v & 1) as i64))
}

/// Reads one unsigned variable-length integer (VLQ).
pub fn read_vlq(bytes: &[u8], at: &mut usize) -> Option<u64> {
    let mut v: u64 = 0;
    let mut shift = 0;
    loop {
        let b = *bytes.get(*at)?;
        *at += 1;
        if shift < 64 {
            v |= u64::from(b & 0x7f) << shift;
        }
        shift += 7;
        if b & 0x80 == 0 {
            return Some(v);
        }
        if shift > 70 {
            return None;
        }
    }
}

/// The entries of a source position table: (code offset, raw source
/// position, is_statement), in table order.  Deltas start from code
/// offset -1 (`kFunctionEntryBytecodeOffset`) and position 0.
pub fn decode_table(bytes: &[u8]) -> Vec<(i64, i64, bool)> {
    let mut out = Vec::new();
    let (mut code, mut pos) = (-1i64, 0i64);
    let mut at = 0;
    while at < bytes.len() {
        let Some(c) = read_zigzag(bytes, &mut at) else { break };
        let Some(p) = read_zigzag(bytes, &mut at) else { break };
        let (delta, statement) = if c >= 0 { (c, true) } else { (-(c + 1), false) };
        code = code.wrapping_add(delta);
        pos = pos.wrapping_add(p);
        out.push((code, pos, statement));
    }
    out
}

/// The source position of the instruction (or bytecode) at `offset`: the
/// last entry at or before it, as V8's AbstractCode::SourcePosition.
pub fn position_at(bytes: &[u8], offset: i64) -> Option<i64> {
    let mut found = None;
    for (code, pos, _) in decode_table(bytes) {
        if code > offset {
            break;
        }
        found = Some(pos);
    }
    found
}

/// The bytecode offset that baseline code at `pc_offset` (from the start
/// of its instructions) executes.  `table` is the code's bytecode offset
/// table (one VLQ machine-code length per bytecode, in bytecode order) and
/// `bytecode_offsets` the start offset of each bytecode.  `None` for the
/// function's prologue.
pub fn baseline_bytecode_offset(table: &[u8], bytecode_offsets: &[u32], pc_offset: u64) -> Option<u32> {
    if pc_offset == 0 {
        return None;
    }
    let mut at = 0;
    // The first value is the prologue's length.
    let mut end = read_vlq(table, &mut at)?;
    let mut current = None;
    let mut bytecodes = bytecode_offsets.iter();
    while end < pc_offset {
        current = Some(*bytecodes.next()?);
        end += read_vlq(table, &mut at)?;
    }
    current
}

#[cfg(test)]
mod tests {
    use super::*;

    fn zigzag(v: i64, out: &mut Vec<u8>) {
        let mut u = ((v << 1) ^ (v >> 63)) as u64;
        loop {
            let more = u > 0x7f;
            out.push((u & 0x7f) as u8 | if more { 0x80 } else { 0 });
            u >>= 7;
            if !more {
                break;
            }
        }
    }

    /// Encodes entries the way V8's SourcePositionTableBuilder does.
    fn encode(entries: &[(i64, i64, bool)]) -> Vec<u8> {
        let mut out = Vec::new();
        let (mut pc, mut pp) = (-1, 0);
        for &(c, p, st) in entries {
            let d = c - pc;
            zigzag(if st { d } else { -d - 1 }, &mut out);
            zigzag(p - pp, &mut out);
            (pc, pp) = (c, p);
        }
        out
    }

    #[test]
    fn table_round_trip() {
        let entries =
            vec![(-1, 2 * 10, false), (0, 2 * 11, true), (5, 2 * 40, false), (300, 2 * 12, true), (301, 1 << 33, true)];
        let bytes = encode(&entries);
        assert_eq!(decode_table(&bytes), entries);
        assert_eq!(position_at(&bytes, 4), Some(22));
        assert_eq!(position_at(&bytes, 5), Some(80));
        assert_eq!(position_at(&bytes, 299), Some(80));
        assert_eq!(position_at(&bytes, 1000), Some(1 << 33));
        assert_eq!(position_at(&[], 3), None);
        // The bytes V8 wrote for `function outer() { return inner(3); }`
        // (node 20's --print-bytecode: 0 S> 209, 6 E> 216, 10 S> 225).
        let outer = encode(&[(-1, 406, false), (0, 420, true), (6, 434, false), (10, 452, true)]);
        assert_eq!(outer[0], 0x01, "first code delta is 0 from -1, an expression");
        assert_eq!(position_at(&outer, 6).map(|r| SourcePosition::from_raw(r).script_offset), Some(216));
    }

    #[test]
    fn truncated_tables_stop() {
        let bytes = encode(&[(0, 100, true), (70000, 5, true)]);
        assert_eq!(decode_table(&bytes[..bytes.len() - 1]).len(), 1);
        assert!(decode_table(&[0xff; 40]).is_empty(), "never-ending VLQ is cut");
    }

    #[test]
    fn source_position_packing() {
        // Offset 41, not inlined: (41 + 1) << 1.
        assert_eq!(SourcePosition::from_raw(84), SourcePosition { script_offset: 41, inlining_id: None });
        // Offset 7 in inlined function #2: inlining id + 1 = 3 at bit 31.
        let raw = (3i64 << 31) | (8 << 1);
        assert_eq!(SourcePosition::from_raw(raw), SourcePosition { script_offset: 7, inlining_id: Some(2) });
    }

    #[test]
    fn baseline_offsets() {
        // Prologue 10 bytes, then bytecodes at 0, 2, 5 with 4, 6, 3 bytes of code.
        let table = [10u8, 4, 6, 3];
        let starts = [0, 2, 5];
        assert_eq!(baseline_bytecode_offset(&table, &starts, 0), None);
        assert_eq!(baseline_bytecode_offset(&table, &starts, 10), None);
        assert_eq!(baseline_bytecode_offset(&table, &starts, 11), Some(0));
        assert_eq!(baseline_bytecode_offset(&table, &starts, 14), Some(0));
        assert_eq!(baseline_bytecode_offset(&table, &starts, 15), Some(2));
        assert_eq!(baseline_bytecode_offset(&table, &starts, 23), Some(5));
        assert_eq!(baseline_bytecode_offset(&table, &starts, 24), None, "past the end");
    }
}
