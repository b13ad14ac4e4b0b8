//! The state backend behind `Context::state()`: the store keyed state operators use.

use pulse_stdlib::state::{MemoryStore, Store};

/// The pipeline's keyed state.
#[derive(Debug, Default)]
pub struct StateBackend {
    memory: MemoryStore,
}

impl StateBackend {
    pub fn memory() -> StateBackend {
        StateBackend::default()
    }
}

impl Store for StateBackend {
    fn get(&mut self, node: &str, key: &[u8]) -> Option<Vec<u8>> {
        self.memory.get(node, key)
    }

    fn put(&mut self, node: &str, key: &[u8], value: Vec<u8>) {
        self.memory.put(node, key, value);
    }

    fn delete(&mut self, node: &str, key: &[u8]) {
        self.memory.delete(node, key);
    }
}
