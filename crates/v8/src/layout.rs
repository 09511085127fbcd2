//! The offsets and numbers the reader uses, derived from the binary's
//! metadata ([`Metadata`]) once.
//!
//! Most come straight from `v8dbg_*` constants.  The few that V8 does not
//! export are derived from exported neighbours, following the order V8
//! declares the fields in (noted at each one), and every object read
//! through them is type-checked by its map before use, so a wrong guess
//! shows as a frame without a line, never as a wrong line.

use anyhow::{bail, Result};

use crate::metadata::Metadata;

/// Where things are in V8 objects and frames.
#[derive(Clone, Debug)]
pub struct Layout {
    // Tagging.
    pub heap_object_tag: u64,
    pub heap_object_tag_mask: u64,
    /// Smi value = word >> smi_shift (32 without pointer compression).
    pub smi_shift: u32,
    pub pointer_size: u64,

    // Frames (offsets from the frame pointer).
    pub fp_context: i64,
    pub fp_function: i64,
    pub fp_bytecode_array: i64,
    pub fp_bytecode_offset: i64,
    pub frame_types: std::collections::HashMap<i64, String>,

    // Maps and instance types.
    pub map: u64,
    pub map_instance_type: u64,
    pub first_nonstring_type: u16,
    pub js_function_types: (u16, u16),
    pub sfi_type: u16,
    pub script_type: u16,
    pub scope_info_type: u16,
    pub bytecode_array_type: u16,
    pub code_type: u16,
    pub byte_array_types: Vec<u16>,
    pub fixed_array_types: Vec<u16>,

    // Strings.
    pub string_length: u64,
    pub string_repr_mask: u16,
    pub string_encoding_mask: u16,
    pub one_byte_tag: u16,
    pub seq_tag: u16,
    pub cons_tag: u16,
    pub external_tag: u16,
    pub sliced_tag: u16,
    pub thin_tag: u16,
    pub seq_one_byte_chars: u64,
    pub seq_two_byte_chars: u64,
    pub cons_first: u64,
    pub cons_second: u64,
    pub sliced_parent: u64,
    pub sliced_offset: u64,
    pub thin_actual: u64,
    pub external_resource: u64,

    // Arrays.
    pub fixed_array_length: u64,
    pub fixed_array_data: u64,

    // Functions and scripts.
    pub js_function_shared: u64,
    pub js_function_code: Option<u64>,
    pub sfi_name_or_scope_info: u64,
    pub sfi_script: u64,
    pub sfi_function_data: Option<u64>,
    pub script_source: u64,
    pub script_name: u64,
    pub script_line_ends: u64,
    /// Index (in tagged slots after the map) of a ScopeInfo's variable part.
    pub scope_info_first_slot: u64,
    pub scope_info_context_local_count_slot: u64,
    pub uncompiled_inferred_name: Option<u64>,
    pub uncompiled_data_types: Vec<u16>,

    // Bytecode.
    pub bytecode_array_header: u64,
    pub bytecode_array_source_positions: u64,

    // Code.
    pub instructions: Instructions,
    pub code_instruction_size: u64,
    pub code_flags: u64,
    pub code_kind_mask: u32,
    pub code_kind_shift: u32,
    pub code_kind_baseline: u32,
    pub code_kind_interpreted: u32,
    pub code_deopt_data: u64,
    pub code_source_positions: u64,

    // Deoptimization data (indexes into a FixedArray).
    pub deopt_literal_array: u64,
    pub deopt_inlining_positions: u64,
    pub deopt_shared_info: u64,
    pub deopt_shared_info_wrapped: bool,

    // Registers (x86_64 encoding).
    pub bytecode_offset_register: Option<i64>,
    pub bytecode_array_register: Option<i64>,
}

/// Where the machine code of a Code object is.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Instructions {
    /// V8 10 and older: right after the Code object's header of `header` bytes.
    Inline { header: u64 },
    /// V8 11 and later: in an InstructionStream object (of type
    /// `stream_type`, instructions after its `header` bytes, its Code in
    /// field `code`); the Code object holds their address in field `start`.
    Stream { start: u64, stream_type: u16, header: u64, code: u64 },
}

impl Layout {
    pub fn new(md: &Metadata) -> Result<Layout> {
        let need = |v: Option<i64>, what: &str| -> Result<i64> {
            match v {
                Some(v) => Ok(v),
                None => bail!("the V8 metadata of {} lacks {what}", md.path.display()),
            }
        };
        let c = |name: &str| need(md.get(name), &format!("v8dbg_{name}"));
        let f = |class: &str, field: &str| -> Result<u64> {
            Ok(need(md.field(class, field), &format!("{class}::{field}"))? as u64)
        };
        let t = |name: &str| -> Result<u16> { Ok(need(md.instance_type(name), name)? as u16) };
        let pointer_size = c("SystemPointerSize").unwrap_or(8) as u64;
        if pointer_size != 8 || c("TaggedSize")? != 8 {
            bail!(
                "{} is built with pointer compression (tagged size {}): not supported yet",
                md.path.display(),
                c("TaggedSize")?
            );
        }
        let js_function_types = match (md.get("FirstJSFunctionType"), md.get("LastJSFunctionType")) {
            (Some(a), Some(b)) => (a as u16, b as u16),
            _ => {
                let t = t("JS_FUNCTION_TYPE")?;
                (t, t)
            }
        };
        let types_named =
            |names: &[&str]| names.iter().filter_map(|n| md.instance_type(n)).map(|v| v as u16).collect::<Vec<_>>();

        // JSFunction::code: exported before V8 11 and in 12; in 11.x it is
        // the field between raw_feedback_cell and prototype_or_initial_map.
        // V8 13 (node 24) has none: a handle into a per-process dispatch
        // table takes its place (code is then found from the PC alone).
        let feedback_cell = md.field("JSFunction", "raw_feedback_cell");
        let js_function_code = md
            .field("JSFunction", "code")
            .or_else(|| {
                let cell = feedback_cell?;
                (md.field("JSFunction", "prototype_or_initial_map")? == cell + 16).then_some(cell + 8)
            })
            .map(|v| v as u64);

        // Code.  V8 10 and older (node 18) export flags, instruction_size
        // and instruction_start as a `uintptr_t` offset: the instructions
        // follow the Code header; relocation_info, deoptimization_data,
        // position_table and code_data_container come before
        // instruction_size.  V8 11.x (node 20) exports relocation_info,
        // deoptimization_data and source_position_table; then come
        // instruction_stream, code_entry_point (u64), flags (u32),
        // builtin_id (u16), kind_specific_flags (u16), instruction_size
        // (i32).  V8 12+ exports instruction_start (an `Address` field),
        // instruction_size and flags, with deoptimization_data,
        // position_table and wrapper before instruction_stream.
        let positions = md.field("Code", "source_position_table");
        let wrapper = md.field("Code", "wrapper");
        let stream = |start: i64| -> Result<Instructions> {
            Ok(Instructions::Stream {
                start: start as u64,
                stream_type: t("INSTRUCTION_STREAM_TYPE")?,
                header: need(
                    md.field("InstructionStream", "instruction_start"),
                    "InstructionStream::instruction_start",
                )? as u64,
                code: f("HeapObject", "map")? + 8,
            })
        };
        let (instructions, code_instruction_size, code_flags, code_deopt_data, code_source_positions) =
            if let (Some(header), Some(size), Some(flags)) = (
                md.get("class_Code__instruction_start__uintptr_t"),
                md.field("Code", "instruction_size"),
                md.field("Code", "flags"),
            ) {
                let pos = positions.unwrap_or(size - 16);
                let deopt = md.field("Code", "deoptimization_data").unwrap_or(pos - 8);
                (Instructions::Inline { header: header as u64 }, size, flags, deopt, pos)
            } else if let (Some(start), Some(size), Some(flags)) =
                (md.field("Code", "instruction_start"), md.field("Code", "instruction_size"), md.field("Code", "flags"))
            {
                let pos = positions.or(wrapper.map(|w| w - 8)).unwrap_or(16);
                let deopt = md.field("Code", "deoptimization_data").unwrap_or(pos - 8);
                (stream(start)?, size, flags, deopt, pos)
            } else if let Some(pos) = positions {
                let deopt = md.field("Code", "deoptimization_data").unwrap_or(pos - 8);
                (stream(pos + 16)?, pos + 32, pos + 24, deopt, pos)
            } else {
                bail!("{}: unknown layout of V8 Code objects", md.path.display());
            };

        // BytecodeArray: length, then (V8 <= 11) constant_pool,
        // handler_table, source_position_table; (V8 >= 12) wrapper,
        // source_position_table, handler_table, constant_pool.
        let ba_length =
            md.field("BytecodeArray", "length").or(md.field("FixedArrayBase", "length")).unwrap_or(8) as u64;
        let bytecode_array_source_positions = match md.field("BytecodeArray", "wrapper") {
            Some(w) => w as u64 + 8,
            None => ba_length + 24,
        };

        Ok(Layout {
            heap_object_tag: c("HeapObjectTag")? as u64,
            heap_object_tag_mask: c("HeapObjectTagMask")? as u64,
            smi_shift: (c("SmiShiftSize")? + md.get("SmiTagMask").map_or(1, |m| m.count_ones() as i64)) as u32,
            pointer_size,
            fp_context: md.any(&["off_fp_context_or_frame_type", "off_fp_context"]).unwrap_or(-8),
            fp_function: c("off_fp_function")?,
            fp_bytecode_array: c("off_fp_bytecode_array")?,
            fp_bytecode_offset: c("off_fp_bytecode_offset")?,
            frame_types: md.frame_types(),
            map: f("HeapObject", "map")?,
            map_instance_type: f("Map", "instance_type")?,
            first_nonstring_type: c("FirstNonstringType")? as u16,
            js_function_types,
            sfi_type: t("SHARED_FUNCTION_INFO_TYPE")?,
            script_type: t("SCRIPT_TYPE")?,
            scope_info_type: t("SCOPE_INFO_TYPE")?,
            bytecode_array_type: t("BYTECODE_ARRAY_TYPE")?,
            code_type: t("CODE_TYPE")?,
            byte_array_types: types_named(&["BYTE_ARRAY_TYPE", "TRUSTED_BYTE_ARRAY_TYPE"]),
            fixed_array_types: types_named(&["FIXED_ARRAY_TYPE", "TRUSTED_FIXED_ARRAY_TYPE"]),
            string_length: f("String", "length")?,
            string_repr_mask: c("StringRepresentationMask")? as u16,
            string_encoding_mask: c("StringEncodingMask")? as u16,
            one_byte_tag: c("OneByteStringTag")? as u16,
            seq_tag: c("SeqStringTag")? as u16,
            cons_tag: c("ConsStringTag")? as u16,
            external_tag: c("ExternalStringTag")? as u16,
            sliced_tag: c("SlicedStringTag")? as u16,
            thin_tag: c("ThinStringTag")? as u16,
            seq_one_byte_chars: f("SeqOneByteString", "chars")?,
            seq_two_byte_chars: f("SeqTwoByteString", "chars")?,
            cons_first: f("ConsString", "first")?,
            cons_second: f("ConsString", "second")?,
            sliced_parent: f("SlicedString", "parent")?,
            sliced_offset: f("SlicedString", "offset")?,
            thin_actual: f("ThinString", "actual")?,
            external_resource: f("ExternalString", "resource")?,
            fixed_array_length: f("FixedArrayBase", "length")?,
            fixed_array_data: f("FixedArray", "data")?,
            js_function_shared: f("JSFunction", "shared")?,
            js_function_code,
            sfi_name_or_scope_info: f("SharedFunctionInfo", "name_or_scope_info")?,
            sfi_script: need(
                md.field("SharedFunctionInfo", "script_or_debug_info").or(md.field("SharedFunctionInfo", "script")),
                "SharedFunctionInfo::script",
            )? as u64,
            sfi_function_data: md.field("SharedFunctionInfo", "function_data").map(|v| v as u64),
            script_source: f("Script", "source")?,
            script_name: f("Script", "name")?,
            script_line_ends: f("Script", "line_ends")?,
            scope_info_first_slot: c("scopeinfo_idx_first_vars")? as u64,
            scope_info_context_local_count_slot: c("scopeinfo_idx_ncontextlocals")? as u64,
            uncompiled_inferred_name: md.field("UncompiledData", "inferred_name").map(|v| v as u64),
            uncompiled_data_types: types_named(&[
                "UNCOMPILED_DATA_WITHOUT_PREPARSE_DATA_TYPE",
                "UNCOMPILED_DATA_WITH_PREPARSE_DATA_TYPE",
                "UNCOMPILED_DATA_WITHOUT_PREPARSE_DATA_WITH_JOB_TYPE",
                "UNCOMPILED_DATA_WITH_PREPARSE_DATA_AND_JOB_TYPE",
            ]),
            bytecode_array_header: f("BytecodeArray", "data")?,
            bytecode_array_source_positions,
            instructions,
            code_instruction_size: code_instruction_size as u64,
            code_flags: code_flags as u64,
            code_kind_mask: c("CodeKindFieldMask")? as u32,
            code_kind_shift: md.get("CodeKindFieldShift").unwrap_or(0) as u32,
            code_kind_baseline: c("CodeKindBaseline")? as u32,
            code_kind_interpreted: c("CodeKindInterpretedFunction")? as u32,
            code_deopt_data: code_deopt_data as u64,
            code_source_positions: code_source_positions as u64,
            deopt_literal_array: md.get("DeoptimizationDataLiteralArrayIndex").unwrap_or(2) as u64,
            deopt_inlining_positions: md.get("DeoptimizationDataInliningPositionsIndex").unwrap_or(7) as u64,
            deopt_shared_info: md
                .any(&["DeoptimizationDataSharedFunctionInfoIndex", "DeoptimizationDataWrappedSharedFunctionInfoIndex"])
                .unwrap_or(6) as u64,
            deopt_shared_info_wrapped: md.get("DeoptimizationDataWrappedSharedFunctionInfoIndex").is_some(),
            bytecode_offset_register: md.get("InterpreterBytecodeOffsetRegister"),
            bytecode_array_register: md.get("InterpreterBytecodeArrayRegister"),
        })
    }

    /// The code kinds of optimized code (Maglev, TurboFan): those after
    /// baseline in V8's CodeKind enum.
    pub fn is_optimized_kind(&self, kind: u32) -> bool {
        kind > self.code_kind_baseline && kind <= self.code_kind_baseline + 3
    }
}
