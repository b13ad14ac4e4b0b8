//! The state backend behind `Context::state()`: the store keyed state operators use.
//!
//! Two backends behind one enum (a match per call, no `dyn`): memory, and RocksDB in
//! `--state-dir`. RocksDB keys are namespaced by node id — `s`, the node id, a 0 byte, the user
//! key — never by node index, since ids are the stable identities that survive edits of other
//! nodes. Between checkpoints every write goes to an in-memory overlay (values and tombstones)
//! that reads consult first; a checkpoint writes the overlay in the same `WriteBatch` as the
//! timers and the progress record, so RocksDB only ever holds committed checkpoints. Committed
//! entries stay in the overlay as a read cache within a 16 MB budget.

use std::collections::HashMap;
use std::fmt;
use std::path::Path;

use pulse_stdlib::state::{MemoryStore, Store};

use crate::keys::{state_key, SHARD_INDEX_PREFIX};
use rocksdb::{BlockBasedOptions, Cache, IteratorMode, Options, WriteBatch, WriteOptions, DB};

/// What the overlay knows about a key.
#[derive(Debug, PartialEq, Eq)]
pub enum Lookup<'a> {
    /// Written since the last checkpoint.
    Value(&'a [u8]),
    /// Deleted since the last checkpoint: the committed value, if any, is gone.
    Deleted,
    /// Untouched since the last checkpoint: ask the committed store.
    Unknown,
}

/// Bytes of committed (clean) entries the overlay keeps as a read cache.
const CLEAN_BUDGET_BYTES: usize = 16 << 20;
/// Per-entry bookkeeping counted against the budget.
const ENTRY_OVERHEAD: usize = 64;

#[derive(Debug)]
struct Slot {
    /// `None` is a tombstone (dirty) or a known-absent key (clean).
    value: Option<Vec<u8>>,
    /// Written since the last checkpoint.
    dirty: bool,
    /// Whether RocksDB holds the key, when known: a deleted key it never held needs no tombstone.
    committed: Option<bool>,
    /// The shard of the step that wrote it last (see `TimerQueue`): where its changelog goes.
    shard: u32,
}

/// Writes since the last checkpoint (values and tombstones), keyed by full RocksDB key, plus a
/// bounded cache of committed values (and known-absent keys) so hot keys are not read back from
/// RocksDB after every checkpoint.
#[derive(Debug, Default)]
pub struct Overlay {
    entries: HashMap<Box<[u8]>, Slot>,
    dirty: usize,
    bytes: usize,
}

impl Overlay {
    pub fn lookup(&self, full_key: &[u8]) -> Lookup<'_> {
        match self.entries.get(full_key) {
            Some(Slot { value: Some(value), .. }) => Lookup::Value(value),
            Some(Slot { value: None, .. }) => Lookup::Deleted,
            None => Lookup::Unknown,
        }
    }

    fn set(&mut self, full_key: &[u8], value: Option<Vec<u8>>, dirty: bool, shard: u32) {
        let size = value.as_ref().map_or(0, Vec::len);
        match self.entries.get_mut(full_key) {
            Some(slot) => {
                self.bytes = self.bytes + size - slot.value.as_ref().map_or(0, Vec::len);
                if dirty && !slot.dirty {
                    self.dirty += 1;
                }
                slot.value = value;
                slot.dirty |= dirty;
                if dirty {
                    slot.shard = shard;
                }
            }
            None => {
                self.bytes += full_key.len() + size + ENTRY_OVERHEAD;
                self.dirty += usize::from(dirty);
                // A clean entry is what RocksDB holds; a blind write says nothing about it.
                let committed = if dirty { None } else { Some(value.is_some()) };
                self.entries.insert(full_key.into(), Slot { value, dirty, committed, shard });
            }
        }
    }

    pub fn put(&mut self, full_key: &[u8], value: Vec<u8>) {
        self.put_in(0, full_key, value);
    }

    pub fn delete(&mut self, full_key: &[u8]) {
        self.delete_in(0, full_key);
    }

    /// A write by a step of `shard`.
    pub fn put_in(&mut self, shard: u32, full_key: &[u8], value: Vec<u8>) {
        self.set(full_key, Some(value), true, shard);
    }

    pub fn delete_in(&mut self, shard: u32, full_key: &[u8]) {
        self.set(full_key, None, true, shard);
    }

    /// Remembers a committed value (or its absence) read from RocksDB, within the budget.
    pub fn cache(&mut self, full_key: &[u8], value: Option<&[u8]>) {
        if self.bytes < CLEAN_BUDGET_BYTES {
            self.set(full_key, value.map(<[u8]>::to_vec), false, 0);
        }
    }

    /// Every write since the last checkpoint: (shard, full key, value or `None` for a delete).
    pub fn dirty_entries(&self) -> impl Iterator<Item = (u32, &[u8], Option<&[u8]>)> {
        self.entries
            .iter()
            .filter(|(_, slot)| slot.dirty)
            .map(|(key, slot)| (slot.shard, &key[..], slot.value.as_deref()))
    }

    /// Entries written since the last checkpoint.
    pub fn len(&self) -> usize {
        self.dirty
    }

    pub fn is_empty(&self) -> bool {
        self.dirty == 0
    }

    /// Moves every write into `batch` (puts and deletes); the entries stay as clean cache
    /// entries while they fit the budget.
    pub fn drain_into(&mut self, batch: &mut WriteBatch) {
        for (key, slot) in self.entries.iter_mut().filter(|(_, slot)| slot.dirty) {
            match &slot.value {
                Some(value) => batch.put(key, value),
                // A key RocksDB never held (put and deleted between checkpoints) needs nothing.
                None if slot.committed == Some(false) => {}
                None => batch.delete(key),
            }
            slot.dirty = false;
            slot.committed = Some(slot.value.is_some());
        }
        self.dirty = 0;
        if self.bytes > CLEAN_BUDGET_BYTES {
            self.entries.clear();
            self.bytes = 0;
        }
    }

    /// Forgets the clean entries (after the committed data changed underneath).
    pub fn clear(&mut self) {
        self.entries.clear();
        self.dirty = 0;
        self.bytes = 0;
    }
}

/// A raw (key, value) pair of RocksDB.
pub type RawEntry = (Box<[u8]>, Box<[u8]>);

/// RocksDB with the overlay of uncommitted writes in front of it.
pub struct RocksStore {
    db: DB,
    overlay: Overlay,
    /// The shard of the current step (see `TimerQueue`).
    shard: u32,
    scratch: Vec<u8>,
    /// The first read error; the driver stops after the step that hit it.
    error: Option<String>,
    /// Whether commits keep the shard index (`SHARD_INDEX_PREFIX`).
    index_shards: bool,
    /// A checkpoint written but not yet committed to RocksDB (its Kafka transactions are still
    /// committing): the batch, and its writes for reads until then.
    staged: Option<Staged>,
}

/// See `RocksStore::stage`.
struct Staged {
    batch: WriteBatch,
    writes: HashMap<Box<[u8]>, Option<Vec<u8>>>,
}

impl fmt::Debug for RocksStore {
    fn fmt(&self, formatter: &mut fmt::Formatter<'_>) -> fmt::Result {
        formatter
            .debug_struct("RocksStore")
            .field("path", &self.db.path())
            .field("overlay", &self.overlay.len())
            .finish()
    }
}

/// Options that keep the resident set small: an 8 MB block cache and 8 MB memtables.
fn rocks_options() -> Options {
    let mut options = Options::default();
    options.create_if_missing(true);
    options.set_write_buffer_size(8 << 20);
    options.set_max_write_buffer_number(2);
    options.set_max_open_files(256);
    options.set_keep_log_file_num(2);
    options.set_max_log_file_size(1 << 20);
    let mut table = BlockBasedOptions::default();
    table.set_block_cache(&Cache::new_lru_cache(8 << 20));
    table.set_bloom_filter(10.0, false);
    options.set_block_based_table_factory(&table);
    options
}

/// A failed RocksDB operation, named by what the runtime was doing.
#[derive(Debug, thiserror::Error)]
pub enum StateError {
    #[error("cannot open the state directory `{}`: {source}", dir.display())]
    Open { dir: std::path::PathBuf, source: rocksdb::Error },
    #[error("internal error: restoring a partition with uncommitted writes")]
    UncommittedWrites,
    #[error("internal error: a checkpoint staged while another is")]
    StagedTwice,
    #[error("cannot write the restored state: {0}")]
    WriteRestored(#[source] rocksdb::Error),
    #[error("cannot write the checkpoint: {0}")]
    Commit(#[source] rocksdb::Error),
    #[error("cannot read the state: {0}")]
    Read(#[source] rocksdb::Error),
}

impl RocksStore {
    /// Opens (creating if missing) the database in `dir`.
    pub fn open(dir: &Path) -> Result<RocksStore, StateError> {
        let db =
            DB::open(&rocks_options(), dir).map_err(|source| StateError::Open { dir: dir.to_path_buf(), source })?;
        Ok(RocksStore {
            db,
            overlay: Overlay::default(),
            shard: 0,
            scratch: Vec::new(),
            error: None,
            index_shards: false,
            staged: None,
        })
    }

    /// Opens the database without locking it, for `savepoint create` beside a running binary.
    pub fn open_read_only(dir: &Path) -> Result<DB, StateError> {
        DB::open_for_read_only(&rocks_options(), dir, false)
            .map_err(|source| StateError::Open { dir: dir.to_path_buf(), source })
    }

    pub fn db(&self) -> &DB {
        &self.db
    }

    pub fn overlay_len(&self) -> usize {
        self.overlay.len()
    }

    pub fn take_error(&mut self) -> Option<String> {
        self.error.take()
    }

    /// The shard the following writes belong to.
    pub fn set_shard(&mut self, shard: u32) {
        self.shard = shard;
    }

    pub fn overlay(&self) -> &Overlay {
        &self.overlay
    }

    /// From now on, commits record the shard of every state key (see `SHARD_INDEX_PREFIX`).
    pub fn index_shards(&mut self) {
        self.index_shards = true;
    }

    /// A committed entry handed to `shard` (a savepoint's part of a partition): written as if a
    /// step of the shard wrote it, so the next checkpoint also puts it in the changelog.
    pub fn seed(&mut self, shard: u32, full_key: &[u8], value: Vec<u8>) {
        self.overlay.put_in(shard, full_key, value);
    }

    /// Writes `batch` (entries restored from a changelog) straight to RocksDB, synced, and
    /// forgets the cached reads it may overwrite. Only between checkpoints with no writes
    /// pending.
    pub fn write_restored(&mut self, batch: WriteBatch) -> Result<(), StateError> {
        if !self.overlay.is_empty() || self.staged.is_some() {
            return Err(StateError::UncommittedWrites);
        }
        self.overlay.clear();
        let mut options = WriteOptions::default();
        options.set_sync(true);
        self.db.write_opt(batch, &options).map_err(StateError::WriteRestored)
    }

    /// Commits the overlay, plus whatever the caller put in `batch`, and syncs the WAL.
    pub fn commit(&mut self, batch: WriteBatch) -> Result<(), StateError> {
        self.stage(batch)?;
        self.commit_staged(&[])
    }

    /// Takes the overlay's writes, plus whatever the caller put in `batch`, as the next commit
    /// (`commit_staged`), while the next checkpoint's writes start: reads see them until then.
    pub fn stage(&mut self, mut batch: WriteBatch) -> Result<(), StateError> {
        if self.staged.is_some() {
            return Err(StateError::StagedTwice);
        }
        let writes =
            self.overlay.dirty_entries().map(|(_, key, value)| (Box::from(key), value.map(<[u8]>::to_vec))).collect();
        if self.index_shards {
            let mut index = Vec::new();
            for (shard, key, value) in self.overlay.dirty_entries() {
                index.clear();
                index.push(SHARD_INDEX_PREFIX);
                index.extend_from_slice(key);
                match value {
                    Some(_) if shard != 0 => batch.put(&index, shard.to_be_bytes()),
                    _ => batch.delete(&index),
                }
            }
        }
        self.overlay.drain_into(&mut batch);
        self.staged = Some(Staged { batch, writes });
        Ok(())
    }

    /// Writes the staged checkpoint, with the `extra` entries, to RocksDB and syncs the WAL;
    /// nothing when none is staged.
    pub fn commit_staged(&mut self, extra: &[(Vec<u8>, Vec<u8>)]) -> Result<(), StateError> {
        let Some(Staged { mut batch, .. }) = self.staged.take() else { return Ok(()) };
        for (key, value) in extra {
            batch.put(key, value);
        }
        let mut options = WriteOptions::default();
        options.set_sync(true);
        self.db.write_opt(batch, &options).map_err(StateError::Commit)
    }

    /// Every committed key with `prefix`, in key order.
    pub fn scan_prefix(db: &DB, prefix: &[u8]) -> Result<Vec<RawEntry>, StateError> {
        let mut entries = Vec::new();
        for item in db.iterator(IteratorMode::From(prefix, rocksdb::Direction::Forward)) {
            let (key, value) = item.map_err(StateError::Read)?;
            if !key.starts_with(prefix) {
                break;
            }
            entries.push((key, value));
        }
        Ok(entries)
    }
}

impl Store for RocksStore {
    fn get(&mut self, node: &str, key: &[u8]) -> Option<Vec<u8>> {
        state_key(&mut self.scratch, node, key);
        match self.overlay.lookup(&self.scratch) {
            Lookup::Value(value) => Some(value.to_vec()),
            Lookup::Deleted => None,
            Lookup::Unknown
                if self.staged.as_ref().is_some_and(|staged| staged.writes.contains_key(&self.scratch[..])) =>
            {
                self.staged.as_ref().and_then(|staged| staged.writes.get(&self.scratch[..]).cloned().flatten())
            }
            Lookup::Unknown => match self.db.get_pinned(&self.scratch) {
                Ok(value) => {
                    let value = value.map(|value| value.to_vec());
                    self.overlay.cache(&self.scratch, value.as_deref());
                    value
                }
                Err(error) => {
                    self.error.get_or_insert_with(|| format!("cannot read the state of node `{node}`: {error}"));
                    None
                }
            },
        }
    }

    fn put(&mut self, node: &str, key: &[u8], value: Vec<u8>) {
        state_key(&mut self.scratch, node, key);
        self.overlay.put_in(self.shard, &self.scratch, value);
    }

    fn delete(&mut self, node: &str, key: &[u8]) {
        state_key(&mut self.scratch, node, key);
        self.overlay.delete_in(self.shard, &self.scratch);
    }
}

/// The pipeline's keyed state.
#[derive(Debug)]
pub enum StateBackend {
    Memory(MemoryStore),
    Rocks(Box<RocksStore>),
}

impl Default for StateBackend {
    fn default() -> StateBackend {
        StateBackend::memory()
    }
}

impl StateBackend {
    pub fn memory() -> StateBackend {
        StateBackend::Memory(MemoryStore::new())
    }

    pub fn rocks(store: RocksStore) -> StateBackend {
        StateBackend::Rocks(Box::new(store))
    }

    /// (keys, bytes) of the committed state: exact for memory, RocksDB's estimates otherwise.
    pub fn size(&self) -> (u64, u64) {
        match self {
            StateBackend::Memory(store) => {
                let bytes = store
                    .entries()
                    .iter()
                    .map(|(node, key, value)| node.len() + key.len() + value.len())
                    .sum::<usize>();
                (store.len() as u64, bytes as u64)
            }
            StateBackend::Rocks(store) => {
                let property = |name: &str| store.db().property_int_value(name).ok().flatten().unwrap_or(0);
                (property("rocksdb.estimate-num-keys"), property("rocksdb.estimate-live-data-size"))
            }
        }
    }

    /// The first read error of the RocksDB backend since the last call.
    pub fn take_error(&mut self) -> Option<String> {
        match self {
            StateBackend::Memory(_) => None,
            StateBackend::Rocks(store) => store.take_error(),
        }
    }
}

impl Store for StateBackend {
    #[inline]
    fn get(&mut self, node: &str, key: &[u8]) -> Option<Vec<u8>> {
        match self {
            StateBackend::Memory(store) => store.get(node, key),
            StateBackend::Rocks(store) => store.get(node, key),
        }
    }

    #[inline]
    fn put(&mut self, node: &str, key: &[u8], value: Vec<u8>) {
        match self {
            StateBackend::Memory(store) => store.put(node, key, value),
            StateBackend::Rocks(store) => store.put(node, key, value),
        }
    }

    #[inline]
    fn delete(&mut self, node: &str, key: &[u8]) {
        match self {
            StateBackend::Memory(store) => store.delete(node, key),
            StateBackend::Rocks(store) => store.delete(node, key),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::keys::{node_range, split_state_key};

    #[test]
    fn overlay_values_and_tombstones_shadow_the_committed_store() {
        let mut overlay = Overlay::default();
        assert_eq!(overlay.lookup(b"k"), Lookup::Unknown);
        overlay.put(b"k", vec![1]);
        assert_eq!(overlay.lookup(b"k"), Lookup::Value(&[1]));
        overlay.delete(b"k");
        assert_eq!(overlay.lookup(b"k"), Lookup::Deleted);
        overlay.put(b"k", vec![2]);
        assert_eq!(overlay.lookup(b"k"), Lookup::Value(&[2]));
        let mut batch = WriteBatch::default();
        overlay.delete(b"gone");
        overlay.cache(b"clean", Some(&[7]));
        overlay.cache(b"absent", None);
        assert_eq!(overlay.len(), 2, "cached reads are not writes");
        overlay.drain_into(&mut batch);
        assert_eq!(batch.len(), 2);
        assert!(overlay.is_empty());
        // Committed entries stay readable from the cache.
        assert_eq!(overlay.lookup(b"k"), Lookup::Value(&[2]));
        assert_eq!(overlay.lookup(b"clean"), Lookup::Value(&[7]));
        assert_eq!(overlay.lookup(b"absent"), Lookup::Deleted);
        let mut batch = WriteBatch::default();
        overlay.drain_into(&mut batch);
        assert_eq!(batch.len(), 0, "nothing is written twice");
        // A key known to be absent that is written and deleted again needs no tombstone; a
        // blind delete of a key never read does.
        overlay.put(b"absent", vec![1]);
        overlay.delete(b"absent");
        overlay.delete(b"never-read");
        let mut batch = WriteBatch::default();
        overlay.drain_into(&mut batch);
        assert_eq!(batch.len(), 1);
    }

    #[test]
    fn state_keys_are_namespaced_by_node_id() {
        let mut key = Vec::new();
        state_key(&mut key, "settle", b"u1");
        assert_eq!(key, b"ssettle\0u1");
        assert_eq!(split_state_key(&key), Some(("settle", &b"u1"[..])));
        let (start, end) = node_range("settle");
        assert!(start.as_slice() <= key.as_slice() && key.as_slice() < end.as_slice());
        state_key(&mut key, "settle2", b"u1");
        assert!(!(start.as_slice() <= key.as_slice() && key.as_slice() < end.as_slice()));
    }

    fn state_key_of(node: &str, key: &[u8]) -> Vec<u8> {
        let mut full = Vec::new();
        state_key(&mut full, node, key);
        full
    }

    #[test]
    fn rocks_reads_fall_through_the_overlay_and_commits_persist() {
        let dir = tempfile::tempdir().expect("temp dir");
        {
            let mut store = RocksStore::open(dir.path()).expect("opens");
            store.put("n", b"a", vec![1]);
            store.put("n", b"b", vec![2]);
            assert_eq!(store.get("n", b"a"), Some(vec![1]));
            store.commit(WriteBatch::default()).expect("commits");
            assert_eq!(store.overlay_len(), 0);
            assert_eq!(store.get("n", b"a"), Some(vec![1]), "read from RocksDB");
            store.delete("n", b"a");
            assert_eq!(store.get("n", b"a"), None, "tombstone hides the committed value");
            store.put("n", b"c", vec![3]);
            // Not committed: lost when the process dies.
        }
        let mut store = RocksStore::open(dir.path()).expect("reopens");
        assert_eq!(store.get("n", b"a"), Some(vec![1]));
        assert_eq!(store.get("n", b"b"), Some(vec![2]));
        assert_eq!(store.get("n", b"c"), None);
        assert_eq!(store.get("other", b"a"), None);
    }

    #[test]
    fn a_staged_checkpoint_is_read_until_it_is_committed() {
        let dir = tempfile::tempdir().expect("temp dir");
        let mut store = RocksStore::open(dir.path()).expect("opens");
        store.put("n", b"b", vec![2]);
        store.commit(WriteBatch::default()).expect("commits");
        // A staged checkpoint is read before it reaches RocksDB, under the next writes.
        store.put("n", b"s", vec![5]);
        store.delete("n", b"b");
        store.stage(WriteBatch::default()).expect("stages");
        assert!(store.stage(WriteBatch::default()).is_err(), "one staged checkpoint at a time");
        assert_eq!(store.db().get(state_key_of("n", b"s")).expect("reads"), None, "not in RocksDB yet");
        // Reads that miss the overlay's cache find the staged writes.
        store.overlay.clear();
        assert_eq!(store.get("n", b"s"), Some(vec![5]));
        assert_eq!(store.get("n", b"b"), None);
        store.put("n", b"s", vec![6]);
        assert_eq!(store.get("n", b"s"), Some(vec![6]));
        store.commit_staged(&[]).expect("commits");
        assert_eq!(store.db().get(state_key_of("n", b"s")).expect("reads"), Some(vec![5]));
        store.commit(WriteBatch::default()).expect("commits");
        assert_eq!(store.db().get(state_key_of("n", b"s")).expect("reads"), Some(vec![6]));
        assert_eq!(store.db().get(state_key_of("n", b"b")).expect("reads"), None);
    }
}
