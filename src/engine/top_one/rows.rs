//! The general path of [`super::TopOneExec`]: any keys and orderings,
//! encoded in Arrow's row format, whose bytes compare as the sort
//! expressions order their values (so `DESC`, `NULLS FIRST/LAST` and NULL
//! keys mean what they mean to the window). A table of slot numbers finds
//! a key's bytes in one arena and its winner's ordering bytes in another:
//! a row costs a hash lookup and, for a known key, a byte comparison.

use datafusion::common::Result;
use datafusion::error::DataFusionError;
use hashbrown::HashTable;
use std::hash::BuildHasher;

/// The winning row of every key seen: keys and orderings in byte arenas,
/// found through a table of slot numbers (no allocation per key).
#[derive(Default)]
pub struct Winners {
    table: HashTable<u32>,
    hasher: foldhash::fast::RandomState,
    hashes: Vec<u64>,
    keys: Arena,
    orders: Arena,
    /// Where each slot's row is: (kept batch, row).
    pub at: Vec<(u32, u32)>,
}

impl Winners {
    pub fn memory(&self) -> usize {
        self.table.capacity() * (size_of::<u32>() + 1) + self.hashes.capacity() * 8 + self.keys.memory() + self.orders.memory() + self.at.capacity() * 8
    }

    /// Offers row `at` with `key` and `order`; true when it becomes its
    /// key's winner.
    pub fn offer(&mut self, key: &[u8], order: &[u8], at: (u32, u32)) -> Result<bool> {
        let hash = self.hasher.hash_one(key);
        let keys = &self.keys;
        if let Some(&slot) = self.table.find(hash, |&s| keys.get(s) == key) {
            if order < self.orders.get(slot) {
                self.orders.set(slot, order);
                self.at[slot as usize] = at;
                return Ok(true);
            }
            return Ok(false);
        }
        let slot = u32::try_from(self.at.len()).map_err(|_| DataFusionError::Execution("TopOneExec: more than 4 billion keys in one partition".into()))?;
        let hashes = &self.hashes;
        self.table.insert_unique(hash, slot, |&s| hashes[s as usize]);
        self.hashes.push(hash);
        self.keys.push(key);
        self.orders.push(order);
        self.at.push(at);
        Ok(true)
    }
}

/// Byte strings, one per slot, in one buffer. A longer replacement is
/// appended (its old bytes left unused).
#[derive(Default)]
struct Arena {
    bytes: Vec<u8>,
    spans: Vec<(usize, usize)>,
}

impl Arena {
    fn get(&self, slot: u32) -> &[u8] {
        let (start, len) = self.spans[slot as usize];
        &self.bytes[start..start + len]
    }

    fn push(&mut self, b: &[u8]) {
        self.spans.push((self.bytes.len(), b.len()));
        self.bytes.extend_from_slice(b);
    }

    fn set(&mut self, slot: u32, b: &[u8]) {
        let span = &mut self.spans[slot as usize];
        if b.len() <= span.1 {
            self.bytes[span.0..span.0 + b.len()].copy_from_slice(b);
            span.1 = b.len();
        } else {
            *span = (self.bytes.len(), b.len());
            self.bytes.extend_from_slice(b);
        }
    }

    fn memory(&self) -> usize {
        self.bytes.capacity() + self.spans.capacity() * 16
    }
}
