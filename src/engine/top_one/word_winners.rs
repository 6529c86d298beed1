//! The fast path of [`super::TopOneExec`]: one key and its orderings, all
//! integers, dates or timestamps (the usual `partition by id order by
//! updated_at desc`), held as 64-bit words (`crate::engine::words`)
//! instead of Arrow's row format. Each key's entry in the hash table holds
//! the key, its winner's rank in the first ordering and its slot, so
//! deciding a row reads one entry: no row encoding, no arena, no second
//! lookup. The winner's ranks in further orderings (`order by updated_at
//! desc, loaded_at desc`) are kept by slot and read only when the first
//! ties. A NULL key is one key of its own, as it is one partition to the
//! window.

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
    /// The orderings after the first: how many, and each slot's winner's
    /// ranks in them (`rest` ranks a slot).
    rest: usize,
    rests: Vec<Rank>,
    /// Where each slot's row is: (kept batch, row).
    pub at: Vec<(u32, u32)>,
}

impl WordWinners {
    /// For rows ordered by `orderings` columns (0: any row wins).
    pub fn new(orderings: usize) -> WordWinners {
        WordWinners { rest: orderings.saturating_sub(1), ..WordWinners::default() }
    }

    pub fn memory(&self) -> usize {
        self.table.capacity() * (size_of::<Entry>() + 1) + self.at.capacity() * 8 + self.rests.capacity() * size_of::<Rank>()
    }

    fn win(&mut self, slot: u32, rest: &[Rank], at: (u32, u32)) {
        let from = slot as usize * self.rest;
        self.rests[from..from + self.rest].copy_from_slice(rest);
        self.at[slot as usize] = at;
    }

    fn push(&mut self, rest: &[Rank], at: (u32, u32)) {
        self.rests.extend_from_slice(rest);
        self.at.push(at);
    }

    /// Offers row `at` with `key` (`None`: NULL) and its ranks in the
    /// orderings (`first`, then `rest`, as many as [`WordWinners::new`]
    /// was told less one); true when it becomes its key's winner. Among
    /// equal ranks the first offered stays.
    pub fn offer(&mut self, key: Option<u64>, first: Rank, rest: &[Rank], at: (u32, u32)) -> Result<bool> {
        debug_assert_eq!(rest.len(), self.rest);
        let Some(key) = key else {
            return Ok(match self.null_key {
                Some((best, slot)) => {
                    let won = beats(&self.rests, first, rest, best, slot);
                    if won {
                        self.null_key = Some((first, slot));
                        self.win(slot, rest, at);
                    }
                    won
                }
                None => {
                    self.null_key = Some((first, self.next_slot()?));
                    self.push(rest, at);
                    true
                }
            });
        };
        let hash = self.hasher.hash_one(key);
        if let Some(e) = self.table.find_mut(hash, |e| e.key == key) {
            if !beats(&self.rests, first, rest, e.best, e.slot) {
                return Ok(false);
            }
            e.best = first;
            let slot = e.slot;
            self.win(slot, rest, at);
            return Ok(true);
        }
        let slot = self.next_slot()?;
        let hasher = &self.hasher;
        self.table.insert_unique(hash, Entry { key, best: first, slot }, |e| hasher.hash_one(e.key));
        self.push(rest, at);
        Ok(true)
    }

    fn next_slot(&self) -> Result<u32> {
        u32::try_from(self.at.len()).map_err(|_| DataFusionError::Execution("TopOneExec: more than 4 billion keys in one partition".into()))
    }
}

/// Whether a row ranked `first`, `rest` beats the winner of `slot`, ranked
/// `best` first and `rests[slot * rest.len()..]` after; on a tie the winner
/// stays.
fn beats(rests: &[Rank], first: Rank, rest: &[Rank], best: Rank, slot: u32) -> bool {
    match first.cmp(&best) {
        std::cmp::Ordering::Less => true,
        std::cmp::Ordering::Greater => false,
        std::cmp::Ordering::Equal => {
            let at = slot as usize * rest.len();
            rest < &rests[at..at + rest.len()]
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_key_keeps_its_smallest_rank_and_the_first_of_equals() {
        let mut w = WordWinners::new(1);
        assert!(w.offer(Some(7), (0, 10), &[], (0, 0)).unwrap());
        assert!(!w.offer(Some(7), (0, 10), &[], (0, 1)).unwrap());
        assert!(w.offer(Some(7), (0, 3), &[], (1, 5)).unwrap());
        assert!(!w.offer(Some(7), (1, 0), &[], (1, 6)).unwrap());
        assert!(w.offer(None, (1, 0), &[], (2, 0)).unwrap());
        assert!(w.offer(None, (0, 9), &[], (2, 1)).unwrap());
        assert!(w.offer(Some(8), (0, 0), &[], (2, 2)).unwrap());
        assert_eq!(w.at.len(), 3);
        assert_eq!(w.at, vec![(1, 5), (2, 1), (2, 2)]);
    }

    #[test]
    fn later_orderings_decide_only_ties_of_the_first() {
        let mut w = WordWinners::new(3);
        assert!(w.offer(Some(1), (0, 5), &[(0, 9), (0, 9)], (0, 0)).unwrap());
        // A better second ordering wins a tie of the first.
        assert!(w.offer(Some(1), (0, 5), &[(0, 2), (1, 0)], (0, 1)).unwrap());
        // The third decides a tie of the first two; equal in all: the first stays.
        assert!(w.offer(Some(1), (0, 5), &[(0, 2), (0, 7)], (0, 2)).unwrap());
        assert!(!w.offer(Some(1), (0, 5), &[(0, 2), (0, 7)], (0, 3)).unwrap());
        // A worse first loses whatever follows; a better first wins.
        assert!(!w.offer(Some(1), (0, 6), &[(0, 0), (0, 0)], (0, 4)).unwrap());
        assert!(w.offer(Some(1), (0, 4), &[(1, 0), (1, 0)], (0, 5)).unwrap());
        assert!(w.offer(Some(1), (0, 4), &[(0, 0), (1, 1)], (0, 6)).unwrap());
        assert!(w.offer(None, (1, 0), &[(0, 3), (0, 3)], (1, 0)).unwrap());
        assert!(w.offer(None, (1, 0), &[(0, 3), (0, 1)], (1, 1)).unwrap());
        assert_eq!(w.at, vec![(0, 6), (1, 1)]);
    }
}
