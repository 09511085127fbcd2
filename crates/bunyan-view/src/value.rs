//! A borrowed JSON value with JavaScript's object semantics.
//!
//! `JSON.parse` in node keeps object keys in insertion order (a duplicate key
//! keeps its first position and takes the last value) except that
//! array-index keys ("0", "17", ...) come first in ascending order.
//! [`Value`] (built by [`crate::parse`]) borrows every string that has no
//! escapes from the input line; [`Object`] applies the duplicate-key rule
//! and [`Object::iter_js`] walks keys exactly as node does.

use std::borrow::Cow;
use std::collections::HashMap;

/// A JSON number as parsed: integers keep their exact value.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum Number {
    /// A non-negative integer.
    U(u64),
    /// A negative integer.
    I(i64),
    /// Anything with a fraction or an exponent, or too large for 64 bits.
    F(f64),
}

impl Number {
    /// The value as a JavaScript number (a double).
    pub fn as_f64(self) -> f64 {
        match self {
            Number::U(u) => u as f64,
            Number::I(i) => i as f64,
            Number::F(f) => f,
        }
    }
}

/// A parsed JSON value borrowing its strings from the input where possible.
#[derive(Clone, Debug, PartialEq)]
pub enum Value<'a> {
    Null,
    Bool(bool),
    Number(Number),
    String(Cow<'a, str>),
    Array(Vec<Value<'a>>),
    Object(Object<'a>),
}

/// A JSON object: entries in first-insertion order, duplicates resolved the
/// way `JSON.parse` resolves them (first position, last value).
#[derive(Clone, Debug, Default)]
pub struct Object<'a> {
    entries: Vec<(Cow<'a, str>, Value<'a>)>,
    /// Whether some key is an array index (so JS order differs from insertion order).
    has_index_keys: bool,
    /// Key positions, built once an object gets large (parsing only).
    /// Boxed to keep `Value` small: most objects never have one.
    #[allow(clippy::box_collection)]
    index: Option<Box<HashMap<Cow<'a, str>, usize>>>,
}

impl PartialEq for Object<'_> {
    fn eq(&self, other: &Self) -> bool {
        self.entries == other.entries
    }
}

/// Objects with more keys than this get a hash index while parsing so that
/// duplicate detection stays linear.
const LINEAR_SCAN_MAX: usize = 24;

impl<'a> Object<'a> {
    /// An empty object with room for `n` entries.
    pub fn with_capacity(n: usize) -> Object<'a> {
        Object { entries: Vec::with_capacity(n), has_index_keys: false, index: None }
    }

    /// The slot for a parsed `"key": value`, with `JSON.parse`'s rule for
    /// duplicates (first position, last value): an existing key's slot, or
    /// a new null entry at the end. Linear time overall (large objects get
    /// a hash index).
    #[inline(always)]
    pub fn slot_for(&mut self, key: Cow<'a, str>) -> &mut Value<'a> {
        let existing = match self.index.as_mut() {
            Some(ix) => match ix.get(&key) {
                Some(&i) => Some(i),
                None => {
                    ix.insert(key.clone(), self.entries.len());
                    None
                }
            },
            None => self.entries.iter().position(|(k, _)| *k == key),
        };
        let i = match existing {
            Some(i) => i,
            None => {
                self.push_new(key, Value::Null);
                if self.index.is_none() && self.entries.len() > LINEAR_SCAN_MAX {
                    self.index =
                        Some(Box::new(self.entries.iter().enumerate().map(|(i, (k, _))| (k.clone(), i)).collect()));
                }
                self.entries.len() - 1
            }
        };
        &mut self.entries[i].1
    }

    /// Looks a key up.
    pub fn get(&self, key: &str) -> Option<&Value<'a>> {
        self.entries.iter().find(|(k, _)| k == key).map(|(_, v)| v)
    }

    /// Number of entries.
    pub fn len(&self) -> usize {
        self.entries.len()
    }

    /// Whether there are no entries.
    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    /// Entries in insertion order (not JS order; see [`Object::iter_js`]).
    pub fn entries(&self) -> &[(Cow<'a, str>, Value<'a>)] {
        &self.entries
    }

    /// Entries in the order JavaScript enumerates them: array-index keys
    /// ascending first, then the others in insertion order.
    pub fn iter_js(&self) -> JsIter<'_, 'a> {
        if !self.has_index_keys {
            return JsIter::Plain(self.entries.iter());
        }
        let mut idx: Vec<(u32, usize)> = Vec::new();
        let mut rest: Vec<usize> = Vec::new();
        for (i, (k, _)) in self.entries.iter().enumerate() {
            match array_index(k) {
                Some(n) => idx.push((n, i)),
                None => rest.push(i),
            }
        }
        idx.sort_unstable();
        let order: Vec<usize> = idx.into_iter().map(|(_, i)| i).chain(rest).collect();
        JsIter::Ordered(order.into_iter(), &self.entries)
    }

    /// The object JavaScript sees for an array: index keys "0", "1", ...
    pub fn from_array(a: &[Value<'a>]) -> Object<'a> {
        Object {
            entries: a.iter().enumerate().map(|(i, v)| (Cow::Owned(i.to_string()), v.clone())).collect(),
            has_index_keys: !a.is_empty(),
            index: None,
        }
    }

    /// Inserts or replaces (keeping the position) like `obj[key] = value`.
    pub fn set(&mut self, key: Cow<'a, str>, value: Value<'a>) {
        self.index = None;
        if let Some(slot) = self.entries.iter_mut().find(|(k, _)| *k == key) {
            slot.1 = value;
        } else {
            self.push_new(key, value);
        }
    }

    #[inline(always)]
    fn push_new(&mut self, key: Cow<'a, str>, value: Value<'a>) {
        if !self.has_index_keys && array_index(&key).is_some() {
            self.has_index_keys = true;
        }
        self.entries.push((key, value));
    }
}

/// Iterator of [`Object::iter_js`] (allocation-free unless index keys exist).
pub enum JsIter<'o, 'a> {
    Plain(std::slice::Iter<'o, (Cow<'a, str>, Value<'a>)>),
    Ordered(std::vec::IntoIter<usize>, &'o [(Cow<'a, str>, Value<'a>)]),
}

impl<'o, 'a> Iterator for JsIter<'o, 'a> {
    type Item = (&'o str, &'o Value<'a>);

    fn next(&mut self) -> Option<Self::Item> {
        let (k, v) = match self {
            JsIter::Plain(it) => it.next()?,
            JsIter::Ordered(order, entries) => &entries[order.next()?],
        };
        Some((k.as_ref(), v))
    }
}

/// The array index a property key denotes in JavaScript, if any: the
/// canonical decimal form of an integer in 0..=2^32-2.
pub fn array_index(key: &str) -> Option<u32> {
    let b = key.as_bytes();
    if b.is_empty() || b.len() > 10 || !b[0].is_ascii_digit() {
        return None;
    }
    if b.len() > 1 && b[0] == b'0' {
        return None;
    }
    let mut n: u64 = 0;
    for &c in b {
        if !c.is_ascii_digit() {
            return None;
        }
        n = n * 10 + u64::from(c - b'0');
    }
    if n <= 4_294_967_294 {
        Some(n as u32)
    } else {
        None
    }
}

impl<'a> Value<'a> {
    /// Parses one JSON text (surrounding whitespace allowed) with
    /// `JSON.parse`'s grammar; `None` if it is not valid JSON.
    pub fn parse(text: &'a str) -> Option<Value<'a>> {
        crate::parse::parse_json(text)
    }

    /// The object, if this is one.
    pub fn as_object(&self) -> Option<&Object<'a>> {
        match self {
            Value::Object(o) => Some(o),
            _ => None,
        }
    }

    /// The string, if this is one.
    pub fn as_str(&self) -> Option<&str> {
        match self {
            Value::String(s) => Some(s),
            _ => None,
        }
    }

    /// `obj[key]` for objects; `None` (undefined) otherwise.
    pub fn get(&self, key: &str) -> Option<&Value<'a>> {
        self.as_object().and_then(|o| o.get(key))
    }

    /// Whether JS `typeof` says "object" and the value is not null.
    pub fn is_object_like(&self) -> bool {
        matches!(self, Value::Array(_) | Value::Object(_))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn values_stay_small() {
        assert!(std::mem::size_of::<Value>() <= 48, "{}", std::mem::size_of::<Value>());
    }

    /// An object's keys in JavaScript enumeration order.
    fn js_keys(v: &Value) -> Vec<String> {
        v.as_object().unwrap().iter_js().map(|(k, _)| k.to_owned()).collect()
    }

    #[test]
    fn duplicate_keys_keep_first_position_and_last_value() {
        let v = Value::parse(r#"{"a":1,"b":2,"a":3}"#).unwrap();
        assert_eq!(js_keys(&v), ["a", "b"]);
        assert_eq!(v.get("a"), Some(&Value::Number(Number::U(3))));
    }

    #[test]
    fn index_keys_come_first() {
        let v = Value::parse(r#"{"b":1,"10":2,"a":3,"2":4,"01":5}"#).unwrap();
        assert_eq!(js_keys(&v), ["2", "10", "b", "a", "01"]);
    }

    #[test]
    fn strings_without_escapes_are_borrowed() {
        let v = Value::parse(r#"{"msg":"plain","e":"a\nb"}"#).unwrap();
        assert!(matches!(v.get("msg"), Some(Value::String(Cow::Borrowed("plain")))));
        assert!(matches!(v.get("e"), Some(Value::String(Cow::Owned(_)))));
    }
}
