//! The fast path of [`super::TopOneExec`]: one key and at most one
//! ordering, both integers, dates or timestamps (the usual `partition by id
//! order by updated_at desc`), held as 64-bit words (`crate::engine::words`)
//! instead of Arrow's row format. Each key's entry in the hash table holds
//! the key, its winner's rank and word, and its slot, so deciding a row
//! reads one entry: no row encoding, no arena, no second lookup. A NULL key
//! is one key of its own, as it is one partition to the window.

use crate::engine::words::Rank;
use datafusion::common::Result;
use datafusion::error::DataFusionError;
use hashbrown::HashTable;
use std::hash::BuildHasher;

#[derive(Clone, Copy)]
struct Entry {
    key: u64,
    best: Rank,
    slot: u32,
}

/// The winning row of every key seen, keyed by words.
#[derive(Default)]
pub struct WordWinners {
    table: HashTable<Entry>,
    hasher: foldhash::fast::RandomState,
    null_key: Option<(Rank, u32)>,
    /// Where each slot's row is: (kept batch, row).
    pub at: Vec<(u32, u32)>,
}

impl WordWinners {
    pub fn len(&self) -> usize {
        self.at.len()
    }

    pub fn memory(&self) -> usize {
        self.table.capacity() * (size_of::<Entry>() + 1) + self.at.capacity() * 8
    }

    /// Offers row `at` with `key` (`None`: NULL) and its `rank`; true when
    /// it becomes its key's winner. Among equal ranks the first offered
    /// stays.
    pub fn offer(&mut self, key: Option<u64>, rank: Rank, at: (u32, u32)) -> Result<bool> {
        let Some(key) = key else {
            return Ok(match &mut self.null_key {
                Some((best, slot)) => {
                    let won = rank < *best;
                    if won {
                        *best = rank;
                        self.at[*slot as usize] = at;
                    }
                    won
                }
                None => {
                    self.null_key = Some((rank, self.next_slot()?));
                    self.at.push(at);
                    true
                }
            });
        };
        let hash = self.hasher.hash_one(key);
        if let Some(e) = self.table.find_mut(hash, |e| e.key == key) {
            let won = rank < e.best;
            if won {
                e.best = rank;
                self.at[e.slot as usize] = at;
            }
            return Ok(won);
        }
        let slot = self.next_slot()?;
        let hasher = &self.hasher;
        self.table.insert_unique(hash, Entry { key, best: rank, slot }, |e| hasher.hash_one(e.key));
        self.at.push(at);
        Ok(true)
    }

    fn next_slot(&self) -> Result<u32> {
        u32::try_from(self.at.len()).map_err(|_| DataFusionError::Execution("TopOneExec: more than 4 billion keys in one partition".into()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_key_keeps_its_smallest_rank_and_the_first_of_equals() {
        let mut w = WordWinners::default();
        assert!(w.offer(Some(7), (0, 10), (0, 0)).unwrap());
        assert!(!w.offer(Some(7), (0, 10), (0, 1)).unwrap());
        assert!(w.offer(Some(7), (0, 3), (1, 5)).unwrap());
        assert!(!w.offer(Some(7), (1, 0), (1, 6)).unwrap());
        assert!(w.offer(None, (1, 0), (2, 0)).unwrap());
        assert!(w.offer(None, (0, 9), (2, 1)).unwrap());
        assert!(w.offer(Some(8), (0, 0), (2, 2)).unwrap());
        assert_eq!(w.len(), 3);
        assert_eq!(w.at, vec![(1, 5), (2, 1), (2, 2)]);
    }
}
