//! Keyed state as operators see it: a store of byte values namespaced by node id and key, and
//! typed views over it (`ValueState`, `ListState`, `MapState`; timers are the runtime's). Operators are generic over `Store`, so generated code monomorphizes
//! them against the runtime's backend (RocksDB or memory); nothing here does I/O.
//!
//! Values are encoded with `Codec`: compact little-endian binary, versioned per operator by the
//! layout string the operator declares (`Layout`), never JSON.

use std::collections::HashMap;
use std::marker::PhantomData;

/// A key-value store namespaced by node id. Node ids are the user's names, so state survives
/// edits that add, remove or reorder other nodes.
pub trait Store {
    /// The value stored for (`node`, `key`), if any.
    fn get(&mut self, node: &str, key: &[u8]) -> Option<Vec<u8>>;
    fn put(&mut self, node: &str, key: &[u8], value: Vec<u8>);
    fn delete(&mut self, node: &str, key: &[u8]);
}

/// (node id, key) -> value.
type Entries = HashMap<(Box<str>, Box<[u8]>), Vec<u8>>;

/// A plain in-memory store: the backend for tests and for `stateBackend: "memory"`.
#[derive(Debug, Default, Clone)]
pub struct MemoryStore {
    entries: Entries,
}

impl MemoryStore {
    pub fn new() -> MemoryStore {
        MemoryStore::default()
    }

    pub fn len(&self) -> usize {
        self.entries.len()
    }

    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    /// Every entry, sorted, for snapshots and tests.
    pub fn entries(&self) -> Vec<(&str, &[u8], &[u8])> {
        let mut entries: Vec<(&str, &[u8], &[u8])> =
            self.entries.iter().map(|((node, key), value)| (&**node, &**key, value.as_slice())).collect();
        entries.sort();
        entries
    }
}

impl Store for MemoryStore {
    fn get(&mut self, node: &str, key: &[u8]) -> Option<Vec<u8>> {
        self.entries.get(&(Box::from(node), Box::from(key))).cloned()
    }

    fn put(&mut self, node: &str, key: &[u8], value: Vec<u8>) {
        self.entries.insert((Box::from(node), Box::from(key)), value);
    }

    fn delete(&mut self, node: &str, key: &[u8]) {
        self.entries.remove(&(Box::from(node), Box::from(key)));
    }
}

/// A decoding failure: the stored bytes do not match the layout the operator expects.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct CodecError(pub String);

/// Compact binary encoding of a state value.
pub trait Codec: Sized {
    fn encode(&self, out: &mut Vec<u8>);
    fn decode(input: &mut Reader<'_>) -> Result<Self, CodecError>;
}

/// A cursor over encoded bytes.
pub struct Reader<'a> {
    bytes: &'a [u8],
}

impl<'a> Reader<'a> {
    pub fn new(bytes: &'a [u8]) -> Reader<'a> {
        Reader { bytes }
    }

    pub fn is_empty(&self) -> bool {
        self.bytes.is_empty()
    }

    pub fn take(&mut self, n: usize) -> Result<&'a [u8], CodecError> {
        if self.bytes.len() < n {
            return Err(CodecError(format!("state value truncated: needed {n} more bytes")));
        }
        let (head, tail) = self.bytes.split_at(n);
        self.bytes = tail;
        Ok(head)
    }

    pub fn u8(&mut self) -> Result<u8, CodecError> {
        Ok(self.take(1)?[0])
    }

    /// LEB128 unsigned.
    pub fn varint(&mut self) -> Result<u64, CodecError> {
        let mut value = 0u64;
        for shift in (0..64).step_by(7) {
            let byte = self.u8()?;
            value |= u64::from(byte & 0x7f) << shift;
            if byte & 0x80 == 0 {
                return Ok(value);
            }
        }
        Err(CodecError("varint longer than 64 bits".into()))
    }

    /// Zig-zag LEB128 signed.
    pub fn varint_signed(&mut self) -> Result<i64, CodecError> {
        let raw = self.varint()?;
        Ok(((raw >> 1) as i64) ^ -((raw & 1) as i64))
    }

    pub fn f64(&mut self) -> Result<f64, CodecError> {
        let bytes: [u8; 8] = self.take(8)?.try_into().expect("took 8 bytes");
        Ok(f64::from_le_bytes(bytes))
    }

    pub fn bytes(&mut self) -> Result<&'a [u8], CodecError> {
        let len = self.varint()? as usize;
        self.take(len)
    }

    pub fn str(&mut self) -> Result<&'a str, CodecError> {
        std::str::from_utf8(self.bytes()?).map_err(|error| CodecError(format!("invalid UTF-8 in state: {error}")))
    }
}

pub fn put_varint(out: &mut Vec<u8>, mut value: u64) {
    while value >= 0x80 {
        out.push((value as u8) | 0x80);
        value >>= 7;
    }
    out.push(value as u8);
}

pub fn put_varint_signed(out: &mut Vec<u8>, value: i64) {
    put_varint(out, ((value << 1) ^ (value >> 63)) as u64);
}

pub fn put_f64(out: &mut Vec<u8>, value: f64) {
    out.extend_from_slice(&value.to_le_bytes());
}

pub fn put_bytes(out: &mut Vec<u8>, bytes: &[u8]) {
    put_varint(out, bytes.len() as u64);
    out.extend_from_slice(bytes);
}

impl Codec for i64 {
    fn encode(&self, out: &mut Vec<u8>) {
        put_varint_signed(out, *self);
    }
    fn decode(input: &mut Reader<'_>) -> Result<i64, CodecError> {
        input.varint_signed()
    }
}

impl Codec for u64 {
    fn encode(&self, out: &mut Vec<u8>) {
        put_varint(out, *self);
    }
    fn decode(input: &mut Reader<'_>) -> Result<u64, CodecError> {
        input.varint()
    }
}

impl Codec for f64 {
    fn encode(&self, out: &mut Vec<u8>) {
        put_f64(out, *self);
    }
    fn decode(input: &mut Reader<'_>) -> Result<f64, CodecError> {
        input.f64()
    }
}

impl Codec for bool {
    fn encode(&self, out: &mut Vec<u8>) {
        out.push(u8::from(*self));
    }
    fn decode(input: &mut Reader<'_>) -> Result<bool, CodecError> {
        Ok(input.u8()? != 0)
    }
}

impl Codec for String {
    fn encode(&self, out: &mut Vec<u8>) {
        put_bytes(out, self.as_bytes());
    }
    fn decode(input: &mut Reader<'_>) -> Result<String, CodecError> {
        Ok(input.str()?.to_string())
    }
}

impl Codec for Box<str> {
    fn encode(&self, out: &mut Vec<u8>) {
        put_bytes(out, self.as_bytes());
    }
    fn decode(input: &mut Reader<'_>) -> Result<Box<str>, CodecError> {
        Ok(input.str()?.into())
    }
}

impl<T: Codec> Codec for Option<T> {
    fn encode(&self, out: &mut Vec<u8>) {
        match self {
            None => out.push(0),
            Some(value) => {
                out.push(1);
                value.encode(out);
            }
        }
    }
    fn decode(input: &mut Reader<'_>) -> Result<Option<T>, CodecError> {
        match input.u8()? {
            0 => Ok(None),
            _ => Ok(Some(T::decode(input)?)),
        }
    }
}

impl<T: Codec> Codec for Vec<T> {
    fn encode(&self, out: &mut Vec<u8>) {
        put_varint(out, self.len() as u64);
        for item in self {
            item.encode(out);
        }
    }
    fn decode(input: &mut Reader<'_>) -> Result<Vec<T>, CodecError> {
        let len = input.varint()? as usize;
        let mut items = Vec::with_capacity(len.min(4096));
        for _ in 0..len {
            items.push(T::decode(input)?);
        }
        Ok(items)
    }
}

impl<A: Codec, B: Codec> Codec for (A, B) {
    fn encode(&self, out: &mut Vec<u8>) {
        self.0.encode(out);
        self.1.encode(out);
    }
    fn decode(input: &mut Reader<'_>) -> Result<(A, B), CodecError> {
        Ok((A::decode(input)?, B::decode(input)?))
    }
}

/// Encodes a value into fresh bytes.
pub fn encode<T: Codec>(value: &T) -> Vec<u8> {
    let mut out = Vec::new();
    value.encode(&mut out);
    out
}

/// Decodes a whole value; trailing bytes are a layout mismatch.
pub fn decode<T: Codec>(bytes: &[u8]) -> Result<T, CodecError> {
    let mut reader = Reader::new(bytes);
    let value = T::decode(&mut reader)?;
    if !reader.is_empty() {
        return Err(CodecError("trailing bytes after state value".into()));
    }
    Ok(value)
}

/// One value per key for one node: the typed API operators use.
pub struct ValueState<T> {
    pub node: &'static str,
    _value: PhantomData<fn() -> T>,
}

impl<T: Codec> ValueState<T> {
    pub const fn new(node: &'static str) -> ValueState<T> {
        ValueState { node, _value: PhantomData }
    }

    /// The key's value. Bytes that do not decode are a layout mismatch, reported, never reset.
    pub fn get(&self, store: &mut impl Store, key: &[u8]) -> Result<Option<T>, CodecError> {
        match store.get(self.node, key) {
            Some(bytes) => {
                decode(&bytes).map(Some).map_err(|error| CodecError(format!("state of node `{}`: {error}", self.node)))
            }
            None => Ok(None),
        }
    }

    pub fn put(&self, store: &mut impl Store, key: &[u8], value: &T) {
        store.put(self.node, key, encode(value));
    }

    pub fn clear(&self, store: &mut impl Store, key: &[u8]) {
        store.delete(self.node, key);
    }
}

/// A list per key: appends and reads of the whole list, stored as one encoded value.
pub struct ListState<T> {
    value: ValueState<Vec<T>>,
}

impl<T: Codec> ListState<T> {
    pub const fn new(node: &'static str) -> ListState<T> {
        ListState { value: ValueState::new(node) }
    }

    pub fn get(&self, store: &mut impl Store, key: &[u8]) -> Result<Vec<T>, CodecError> {
        Ok(self.value.get(store, key)?.unwrap_or_default())
    }

    pub fn push(&self, store: &mut impl Store, key: &[u8], item: T) -> Result<(), CodecError> {
        let mut items = self.get(store, key)?;
        items.push(item);
        self.value.put(store, key, &items);
        Ok(())
    }

    /// Keeps the items `keep` accepts; an empty list is removed.
    pub fn retain(&self, store: &mut impl Store, key: &[u8], keep: impl FnMut(&T) -> bool) -> Result<(), CodecError> {
        let mut items = self.get(store, key)?;
        items.retain(keep);
        if items.is_empty() {
            self.value.clear(store, key);
        } else {
            self.value.put(store, key, &items);
        }
        Ok(())
    }

    pub fn clear(&self, store: &mut impl Store, key: &[u8]) {
        self.value.clear(store, key);
    }
}

/// A sorted map per key (small maps: bucket counts, pending windows), stored as one value.
pub struct MapState<K, V> {
    value: ValueState<Vec<(K, V)>>,
}

impl<K: Codec + Ord, V: Codec> MapState<K, V> {
    pub const fn new(node: &'static str) -> MapState<K, V> {
        MapState { value: ValueState::new(node) }
    }

    /// The whole map of a key, sorted by map key.
    pub fn entries(&self, store: &mut impl Store, key: &[u8]) -> Result<Vec<(K, V)>, CodecError> {
        Ok(self.value.get(store, key)?.unwrap_or_default())
    }

    pub fn get(&self, store: &mut impl Store, key: &[u8], map_key: &K) -> Result<Option<V>, CodecError> {
        let entries = self.entries(store, key)?;
        Ok(entries.into_iter().find(|(existing, _)| existing == map_key).map(|(_, value)| value))
    }

    pub fn insert(&self, store: &mut impl Store, key: &[u8], map_key: K, value: V) -> Result<(), CodecError> {
        let mut entries = self.entries(store, key)?;
        match entries.binary_search_by(|(existing, _)| existing.cmp(&map_key)) {
            Ok(found) => entries[found].1 = value,
            Err(at) => entries.insert(at, (map_key, value)),
        }
        self.value.put(store, key, &entries);
        Ok(())
    }

    pub fn remove(&self, store: &mut impl Store, key: &[u8], map_key: &K) -> Result<(), CodecError> {
        let mut entries = self.entries(store, key)?;
        entries.retain(|(existing, _)| existing != map_key);
        if entries.is_empty() {
            self.value.clear(store, key);
        } else {
            self.value.put(store, key, &entries);
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn values_round_trip_compactly() {
        let value: Vec<(i64, u64)> = vec![(-1, 0), (1_700_000_000_000, 3), (i64::MIN, u64::MAX)];
        let bytes = encode(&value);
        assert_eq!(decode::<Vec<(i64, u64)>>(&bytes), Ok(value));
        assert_eq!(encode(&(-1i64)), vec![1]);
        assert_eq!(encode(&300u64), vec![0xac, 0x02]);
        assert!(decode::<u64>(&[0x80]).is_err());
        assert!(decode::<u64>(&[1, 2]).is_err());
    }

    #[test]
    fn value_state_is_namespaced_by_node() {
        let mut store = MemoryStore::new();
        let counts: ValueState<u64> = ValueState::new("counter");
        let other: ValueState<u64> = ValueState::new("other");
        counts.put(&mut store, b"u1", &7);
        assert_eq!(counts.get(&mut store, b"u1"), Ok(Some(7)));
        assert_eq!(other.get(&mut store, b"u1"), Ok(None));
        counts.clear(&mut store, b"u1");
        assert_eq!(counts.get(&mut store, b"u1"), Ok(None));
    }

    #[test]
    fn list_and_map_state_keep_one_value_per_key() {
        let mut store = MemoryStore::new();
        let list: ListState<i64> = ListState::new("times");
        list.push(&mut store, b"u1", 3).expect("decodes");
        list.push(&mut store, b"u1", 1).expect("decodes");
        assert_eq!(list.get(&mut store, b"u1"), Ok(vec![3, 1]));
        list.retain(&mut store, b"u1", |time| *time > 5).expect("decodes");
        assert!(store.is_empty(), "an emptied list is removed");

        let map: MapState<i64, u64> = MapState::new("buckets");
        map.insert(&mut store, b"u1", 7, 1).expect("decodes");
        map.insert(&mut store, b"u1", 2, 5).expect("decodes");
        map.insert(&mut store, b"u1", 7, 2).expect("decodes");
        assert_eq!(map.entries(&mut store, b"u1"), Ok(vec![(2, 5), (7, 2)]));
        assert_eq!(map.get(&mut store, b"u1", &7), Ok(Some(2)));
        map.remove(&mut store, b"u1", &2).expect("decodes");
        map.remove(&mut store, b"u1", &7).expect("decodes");
        assert!(store.is_empty());
    }

    #[test]
    fn a_layout_mismatch_is_an_error_naming_the_node() {
        let mut store = MemoryStore::new();
        store.put("seg", b"k", vec![0xff]);
        let state: ValueState<u64> = ValueState::new("seg");
        let error = state.get(&mut store, b"k").expect_err("does not decode");
        assert!(error.0.contains("`seg`"), "{error}");
    }
}
