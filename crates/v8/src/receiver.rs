//! Names of anonymous methods from their receiver.  A function written as
//! `Module.prototype._compile = function (...) {...}` has no name of its own,
//! and when it comes from node's code cache (node 22 and later, and worker
//! threads) not even the name V8 infers from the source.  V8's stack
//! printers then look the function up in the frame's receiver (`this`) and
//! its prototypes and show the key that holds it (`_compile`; `Error.stack`
//! prefixes the receiver's type: `Module._compile`).  This does the same:
//! own properties of fast objects (the map's descriptors: constants, or
//! fields in the object or its property array) and of dictionary-mode
//! objects (a NameDictionary), along the prototype chain.
//!
//! Bounded like every walk here: a few prototypes, at most the number of
//! descriptors a map can have, dictionaries of limited size; every object
//! is type-checked, and a match is a pointer equal to the function itself.

use crate::heap::{Heap, MAX_NAME};
use crate::memory::MemoryExt;
use crate::metadata::Metadata;

/// Prototypes followed from the receiver.
const MAX_CHAIN: usize = 8;
/// `DescriptorArray::kMaxNumberOfDescriptors`.
const MAX_DESCRIPTORS: u64 = 1020;
/// Largest dictionary searched (entries).
const MAX_DICTIONARY: u64 = 1 << 16;

/// Where the pieces of a property lookup are, from the binary's metadata;
/// `None` when it lacks any of them.
#[derive(Clone, Debug)]
pub struct PropertyLayout {
    /// Receiver of a JavaScript frame: the first slot above the return address.
    fp_receiver: u64,
    map_prototype: u64,
    map_bit_field3: u64,
    map_descriptors: u64,
    map_instance_size_words: u64,
    map_inobject_start_words: u64,
    dictionary_map_bit: u32,
    own_descriptors_mask: u32,
    own_descriptors_shift: u32,
    descriptors_header: u64,
    /// Slots of a descriptor entry, and where its key, details and value are.
    descriptor_size: u64,
    descriptor_key: u64,
    descriptor_details: u64,
    descriptor_value: u64,
    /// PropertyDetails: kind (data = 0), location (field or descriptor),
    /// field index.
    kind_mask: i64,
    location_mask: i64,
    location_shift: i64,
    location_descriptor: i64,
    index_mask: i64,
    index_shift: i64,
    properties: u64,
    /// Index of a NameDictionary's first entry and the entry size (key, value, details).
    dictionary_start: u64,
    dictionary_entry: u64,
    first_receiver_type: u16,
    proxy_type: u16,
    global_types: [u16; 2],
    descriptor_array_type: u16,
    property_array_type: u16,
}

impl PropertyLayout {
    pub fn new(md: &Metadata) -> Option<PropertyLayout> {
        let f = |class: &str, field: &str| md.field(class, field).map(|v| v as u64);
        let c = |name: &str| md.get(name);
        let t = |name: &str| md.instance_type(name).map(|v| v as u16);
        let proxy = t("JS_PROXY_TYPE")?;
        Some(PropertyLayout {
            fp_receiver: c("off_fp_args")? as u64,
            map_prototype: f("Map", "prototype")?,
            map_bit_field3: f("Map", "bit_field3")?,
            map_descriptors: c("class_Map__instance_descriptors_offset")
                .map(|v| v as u64)
                .or(f("Map", "instance_descriptors"))?,
            map_instance_size_words: f("Map", "instance_size_in_words")?,
            map_inobject_start_words: f("Map", "inobject_properties_start_or_constructor_function_index")?,
            dictionary_map_bit: c("bit_field3_is_dictionary_map_shift")? as u32,
            own_descriptors_mask: c("bit_field3_number_of_own_descriptors_mask")? as u32,
            own_descriptors_shift: c("bit_field3_number_of_own_descriptors_shift")? as u32,
            descriptors_header: f("DescriptorArray", "header_size")?,
            descriptor_size: c("prop_desc_size")? as u64,
            descriptor_key: c("prop_desc_key")? as u64,
            descriptor_details: c("prop_desc_details")? as u64,
            descriptor_value: c("prop_desc_value")? as u64,
            kind_mask: c("prop_kind_mask")?,
            location_mask: c("prop_location_mask")?,
            location_shift: c("prop_location_shift")?,
            location_descriptor: c("prop_location_Descriptor")?,
            index_mask: c("prop_index_mask")?,
            index_shift: c("prop_index_shift")?,
            properties: f("JSReceiver", "raw_properties_or_hash")?,
            dictionary_start: (c("namedictionary_prefix_start_index")? + c("namedictionaryshape_prefix_size")?) as u64,
            dictionary_entry: c("namedictionaryshape_entry_size")? as u64,
            first_receiver_type: proxy,
            proxy_type: proxy,
            global_types: [t("JS_GLOBAL_OBJECT_TYPE")?, t("JS_GLOBAL_PROXY_TYPE")?],
            descriptor_array_type: t("DESCRIPTOR_ARRAY_TYPE")?,
            property_array_type: t("PROPERTY_ARRAY_TYPE")?,
        })
    }
}

impl Heap<'_> {
    /// The receiver of the JavaScript frame whose frame pointer is `fp`.
    pub fn frame_receiver(&self, p: &PropertyLayout, fp: u64) -> Option<u64> {
        self.slot(fp.checked_add(p.fp_receiver)?)
    }

    /// The key under which `receiver` or one of its prototypes holds
    /// `function`.
    pub fn method_key(&self, p: &PropertyLayout, receiver: u64, function: u64) -> Option<String> {
        let mut obj = receiver;
        for _ in 0..MAX_CHAIN {
            let t = self.instance_type(obj)?;
            if t < p.first_receiver_type || t == p.proxy_type || p.global_types.contains(&t) {
                return None;
            }
            let map = self.object_field(obj, self.l.map)?;
            let key = self.own_key(p, obj, map, function);
            if key.is_some() {
                return key;
            }
            obj = self.object_field(map, p.map_prototype)?;
        }
        None
    }

    /// The own property of `obj` (whose map is `map`) holding `function`.
    fn own_key(&self, p: &PropertyLayout, obj: u64, map: u64, function: u64) -> Option<String> {
        let bits = self.mem.u32(map - self.l.heap_object_tag + p.map_bit_field3)?;
        let key = if bits & (1 << p.dictionary_map_bit) != 0 {
            self.dictionary_key(p, obj, function)?
        } else {
            let count = u64::from((bits & p.own_descriptors_mask) >> p.own_descriptors_shift).min(MAX_DESCRIPTORS);
            self.descriptor_key(p, obj, map, count, function)?
        };
        self.is_string(key).then(|| self.string(key, MAX_NAME))?
    }

    /// Fast properties: the map's descriptors say where each value is.
    fn descriptor_key(&self, p: &PropertyLayout, obj: u64, map: u64, count: u64, function: u64) -> Option<u64> {
        let descriptors = self.object_field(map, p.map_descriptors)?;
        if !self.has_type(descriptors, p.descriptor_array_type) {
            return None;
        }
        let size_words = u64::from(self.mem.u8(map - self.l.heap_object_tag + p.map_instance_size_words)?);
        let start_words = u64::from(self.mem.u8(map - self.l.heap_object_tag + p.map_inobject_start_words)?);
        let inobject = size_words.saturating_sub(start_words);
        let entry =
            |i: u64, slot: u64| self.field(descriptors, p.descriptors_header + 8 * (i * p.descriptor_size + slot));
        for i in 0..count {
            let Some(details) = entry(i, p.descriptor_details).and_then(|w| self.smi(w)) else { continue };
            if details & p.kind_mask != 0 {
                continue; // an accessor
            }
            let value = if (details & p.location_mask) >> p.location_shift == p.location_descriptor {
                entry(i, p.descriptor_value)
            } else {
                let index = ((details & p.index_mask) >> p.index_shift) as u64;
                if index < inobject {
                    self.field(obj, 8 * (start_words + index))
                } else {
                    let array =
                        self.object_field(obj, p.properties).filter(|&a| self.has_type(a, p.property_array_type));
                    // PropertyArray: map, length and hash, then the values.
                    array.and_then(|a| self.field(a, 16 + 8 * (index - inobject)))
                }
            };
            if value == Some(function) {
                return entry(i, p.descriptor_key);
            }
        }
        None
    }

    /// Dictionary-mode properties: a NameDictionary of (key, value, details) entries.
    fn dictionary_key(&self, p: &PropertyLayout, obj: u64, function: u64) -> Option<u64> {
        let dict = self.object_field(obj, p.properties)?;
        let len = self.array_length(dict)?;
        let entries = (len.saturating_sub(p.dictionary_start) / p.dictionary_entry.max(1)).min(MAX_DICTIONARY);
        let words = self.mem.bytes(
            dict - self.l.heap_object_tag + self.l.fixed_array_data + 8 * p.dictionary_start,
            (8 * entries * p.dictionary_entry) as usize,
        )?;
        let word = |i: u64| u64::from_le_bytes(words[8 * i as usize..8 * i as usize + 8].try_into().unwrap());
        (0..entries).find(|e| word(e * p.dictionary_entry + 1) == function).map(|e| word(e * p.dictionary_entry))
    }
}
