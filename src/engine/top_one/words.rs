//! The fast path of [`super::TopOneExec`]: one key and at most one
//! ordering, both integers, dates or timestamps (the usual `partition by id
//! order by updated_at desc`), held as 64-bit words instead of Arrow's row
//! format.
//!
//! A value becomes a word that compares as the value does: signed types
//! with their sign bit flipped, unsigned ones as they are, and a descending
//! order inverted. NULLs get a rank beside the word (0 before 1) that puts
//! them first or last as the order says. Each key's entry in the hash table
//! holds the key, its winner's rank and word, and its slot, so deciding a
//! row reads one entry: no row encoding, no arena, no second lookup. A
//! NULL key is one key of its own, as it is one partition to the window.

use datafusion::arrow::array::{Array, ArrayRef, AsArray};
use datafusion::arrow::compute::SortOptions;
use datafusion::arrow::datatypes::*;
use datafusion::common::Result;
use datafusion::error::DataFusionError;
use hashbrown::HashTable;
use std::hash::BuildHasher;

/// Whether values of `t` become words (see the module docs).
pub fn is_word(t: &DataType) -> bool {
    use DataType::*;
    matches!(t, Int8 | Int16 | Int32 | Int64 | UInt8 | UInt16 | UInt32 | UInt64 | Date32 | Date64 | Timestamp(_, _))
}

/// `a`'s values as words that compare as the values do (NULL slots hold
/// an unspecified word). `a` must be of a type [`is_word`] accepts.
pub fn words(a: &ArrayRef) -> Result<Vec<u64>> {
    const FLIP: u64 = 1 << 63;
    macro_rules! signed {
        ($t:ty) => {
            a.as_primitive::<$t>().values().iter().map(|&v| (v as i64 as u64) ^ FLIP).collect()
        };
    }
    macro_rules! unsigned {
        ($t:ty) => {
            a.as_primitive::<$t>().values().iter().map(|&v| v as u64).collect()
        };
    }
    Ok(match a.data_type() {
        DataType::Int8 => signed!(Int8Type),
        DataType::Int16 => signed!(Int16Type),
        DataType::Int32 => signed!(Int32Type),
        DataType::Int64 => signed!(Int64Type),
        DataType::Date32 => signed!(Date32Type),
        DataType::Date64 => signed!(Date64Type),
        DataType::Timestamp(TimeUnit::Second, _) => signed!(TimestampSecondType),
        DataType::Timestamp(TimeUnit::Millisecond, _) => signed!(TimestampMillisecondType),
        DataType::Timestamp(TimeUnit::Microsecond, _) => signed!(TimestampMicrosecondType),
        DataType::Timestamp(TimeUnit::Nanosecond, _) => signed!(TimestampNanosecondType),
        DataType::UInt8 => unsigned!(UInt8Type),
        DataType::UInt16 => unsigned!(UInt16Type),
        DataType::UInt32 => unsigned!(UInt32Type),
        DataType::UInt64 => unsigned!(UInt64Type),
        t => return Err(DataFusionError::Internal(format!("TopOneExec: {t} values are not words"))),
    })
}

/// A row's place in its key's order: (rank, word), smaller first.
pub type Rank = (u8, u64);

/// The ranks of `order`'s rows under `options` (one column of a type
/// [`is_word`] accepts).
pub fn ranks(order: &ArrayRef, options: SortOptions) -> Result<Vec<Rank>> {
    let w = words(order)?;
    let (null_rank, value_rank) = if options.nulls_first { ((0, 0), 1) } else { ((1, 0), 0) };
    Ok(w.into_iter().enumerate().map(|(i, v)| if order.is_null(i) { null_rank } else { (value_rank, if options.descending { !v } else { v }) }).collect())
}

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
    use datafusion::arrow::array::{Int8Array, Int64Array, UInt64Array};
    use std::sync::Arc;

    #[test]
    fn words_compare_as_their_values_do() {
        let a: ArrayRef = Arc::new(Int64Array::from(vec![i64::MIN, -1, 0, 1, i64::MAX]));
        let w = words(&a).unwrap();
        assert!(w.windows(2).all(|p| p[0] < p[1]), "{w:?}");
        let a: ArrayRef = Arc::new(Int8Array::from(vec![-128, -1, 0, 127]));
        let w = words(&a).unwrap();
        assert!(w.windows(2).all(|p| p[0] < p[1]), "{w:?}");
        let a: ArrayRef = Arc::new(UInt64Array::from(vec![0, 1 << 63, u64::MAX]));
        let w = words(&a).unwrap();
        assert!(w.windows(2).all(|p| p[0] < p[1]), "{w:?}");
    }

    #[test]
    fn ranks_follow_direction_and_null_placement() {
        let a: ArrayRef = Arc::new(Int64Array::from(vec![Some(-5), None, Some(7)]));
        let r = |descending, nulls_first| ranks(&a, SortOptions { descending, nulls_first }).unwrap();
        // Smallest rank first: the row the window would number 1.
        let first = |rs: Vec<Rank>| (0..3).min_by_key(|&i| rs[i]).unwrap();
        assert_eq!(first(r(false, false)), 0);
        assert_eq!(first(r(true, false)), 2);
        assert_eq!(first(r(false, true)), 1);
        assert_eq!(first(r(true, true)), 1);
    }

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
