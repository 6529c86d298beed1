//! The keys of [`super::WordSortExec`]: each row's sort values as 64-bit
//! words (`crate::engine::words`) followed by its place, `(batch << 32) |
//! row`, sorted once. The place breaks ties, so equal keys keep the order
//! the rows were read in.
//!
//! A column's NULLs become the lowest word (`NULLS FIRST`) or the highest
//! (`NULLS LAST`); only when the column also holds a value whose word is
//! that one does it get a rank word before its value word (0 before 1), so
//! a key is usually one word per column. Keys of up to four words are
//! fixed-size arrays sorted in place; wider ones sort an index.

use crate::engine::words;
use datafusion::arrow::array::{Array, ArrayRef};
use datafusion::arrow::compute::SortOptions;
use datafusion::common::Result;
use datafusion::error::DataFusionError;

/// How one sort column becomes words.
#[derive(Clone, Copy)]
struct Layout {
    options: SortOptions,
    /// A rank word before the value word (see the module docs).
    ranked: bool,
}

impl Layout {
    /// The word a NULL takes when the column is not ranked.
    fn null_word(&self) -> u64 {
        if self.options.nulls_first { 0 } else { u64::MAX }
    }
}

/// The places of all rows, in sort order. `batches`: per input batch, its
/// evaluated sort columns (all of types `words::is_word` accepts), in the
/// order of `options`.
pub fn sorted_places(batches: &[Vec<ArrayRef>], options: &[SortOptions]) -> Result<Vec<u64>> {
    let mut layout: Vec<Layout> = options.iter().map(|&options| Layout { options, ranked: false }).collect();
    let mut rows = 0usize;
    for arrays in batches {
        rows += arrays.first().map_or(0, |a| a.len());
        for (a, l) in arrays.iter().zip(layout.iter_mut()) {
            if a.null_count() > 0 && !l.ranked {
                let null_word = l.null_word();
                let w = words::sort_words(a, l.options)?;
                l.ranked = (0..a.len()).any(|i| w[i] == null_word && a.is_valid(i));
            }
        }
    }
    if batches.len() > u32::MAX as usize {
        return Err(DataFusionError::Execution("WordSortExec: more than 4 billion input batches in one partition".into()));
    }
    let width: usize = layout.iter().map(|l| 1 + l.ranked as usize).sum();
    match width {
        1 => fixed::<1>(batches, &layout, rows),
        2 => fixed::<2>(batches, &layout, rows),
        3 => fixed::<3>(batches, &layout, rows),
        4 => fixed::<4>(batches, &layout, rows),
        _ => wide(batches, &layout, width, rows),
    }
}

/// One batch's key words: `width` vectors of one word per row.
fn batch_words(arrays: &[ArrayRef], layout: &[Layout]) -> Result<Vec<Vec<u64>>> {
    let mut out = Vec::with_capacity(layout.len() * 2);
    for (a, l) in arrays.iter().zip(layout) {
        let mut w = words::sort_words(a, l.options)?;
        if l.ranked {
            let (null_rank, value_rank) = words::null_and_value_rank(l.options);
            out.push((0..a.len()).map(|i| u64::from(if a.is_null(i) { null_rank } else { value_rank })).collect());
        }
        if a.null_count() > 0 {
            let null_word = if l.ranked { 0 } else { l.null_word() };
            for (i, v) in w.iter_mut().enumerate() {
                if a.is_null(i) {
                    *v = null_word;
                }
            }
        }
        out.push(w);
    }
    Ok(out)
}

fn place(batch: usize, row: usize) -> u64 {
    ((batch as u64) << 32) | row as u64
}

#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
struct Key<const W: usize> {
    words: [u64; W],
    place: u64,
}

fn fixed<const W: usize>(batches: &[Vec<ArrayRef>], layout: &[Layout], rows: usize) -> Result<Vec<u64>> {
    let mut keys: Vec<Key<W>> = Vec::with_capacity(rows);
    for (b, arrays) in batches.iter().enumerate() {
        let words = batch_words(arrays, layout)?;
        keys.extend((0..arrays[0].len()).map(|r| Key { words: std::array::from_fn(|j| words[j][r]), place: place(b, r) }));
    }
    keys.sort_unstable();
    // A new vector, not one collected in place: that would keep the keys'
    // allocation, four times the places', while the rows are emitted.
    let places = keys.iter().map(|k| k.place).collect();
    drop(keys);
    Ok(places)
}

fn wide(batches: &[Vec<ArrayRef>], layout: &[Layout], width: usize, rows: usize) -> Result<Vec<u64>> {
    let mut flat: Vec<u64> = Vec::with_capacity(rows * width);
    let mut places: Vec<u64> = Vec::with_capacity(rows);
    for (b, arrays) in batches.iter().enumerate() {
        let words = batch_words(arrays, layout)?;
        for r in 0..arrays[0].len() {
            flat.extend(words.iter().map(|w| w[r]));
            places.push(place(b, r));
        }
    }
    let mut order: Vec<usize> = (0..places.len()).collect();
    order.sort_unstable_by(|&a, &b| flat[a * width..(a + 1) * width].cmp(&flat[b * width..(b + 1) * width]).then(a.cmp(&b)));
    Ok(order.into_iter().map(|i| places[i]).collect())
}

#[cfg(test)]
mod tests {
    use super::*;
    use datafusion::arrow::array::{Int32Array, Int64Array};
    use std::sync::Arc;

    /// The places sorted the slow way: each column's (rank, word), then
    /// the place.
    fn naive(batches: &[Vec<ArrayRef>], options: &[SortOptions]) -> Vec<u64> {
        let mut keys = vec![];
        for (b, arrays) in batches.iter().enumerate() {
            let ranks: Vec<Vec<words::Rank>> = arrays.iter().zip(options).map(|(a, o)| words::ranks(a, *o).unwrap()).collect();
            for r in 0..arrays[0].len() {
                keys.push((ranks.iter().map(|c| c[r]).collect::<Vec<_>>(), place(b, r)));
            }
        }
        keys.sort();
        keys.into_iter().map(|k| k.1).collect()
    }

    fn int64(v: Vec<Option<i64>>) -> ArrayRef {
        Arc::new(Int64Array::from(v))
    }

    #[test]
    fn keys_sort_as_ranks_do_with_nulls_extremes_and_ties() {
        let a = vec![
            vec![
                int64(vec![Some(3), None, Some(i64::MAX), Some(i64::MIN), Some(3)]),
                Arc::new(Int32Array::from(vec![Some(1), Some(2), None, Some(0), Some(1)])) as ArrayRef,
            ],
            vec![int64(vec![None, Some(0), Some(i64::MAX), Some(-1), Some(3)]), Arc::new(Int32Array::from(vec![None, Some(-5), Some(7), Some(1), Some(1)]))],
        ];
        for d0 in [false, true] {
            for n0 in [false, true] {
                for d1 in [false, true] {
                    for n1 in [false, true] {
                        let options = [SortOptions { descending: d0, nulls_first: n0 }, SortOptions { descending: d1, nulls_first: n1 }];
                        assert_eq!(sorted_places(&a, &options).unwrap(), naive(&a, &options), "{options:?}");
                    }
                }
            }
        }
    }

    #[test]
    fn a_null_beside_the_word_it_would_take_gets_a_rank_word() {
        // i64::MAX ascending is the highest word, which NULLS LAST would
        // give the NULL: the rank word keeps the NULL after it.
        let a = vec![vec![int64(vec![None, Some(i64::MAX), Some(1)])]];
        let options = [SortOptions { descending: false, nulls_first: false }];
        assert_eq!(sorted_places(&a, &options).unwrap(), vec![2, 1, 0]);
        // Five columns, two of them ranked: the wide path.
        let col = || int64(vec![None, Some(i64::MAX), Some(1), Some(i64::MAX), None]);
        let a = vec![vec![col(), col(), int64(vec![Some(1); 5]), int64(vec![Some(2), Some(1), Some(2), Some(1), Some(1)]), col()]];
        let options = [SortOptions { descending: false, nulls_first: false }; 5];
        assert_eq!(sorted_places(&a, &options).unwrap(), naive(&a, &options));
        assert_eq!(sorted_places(&a, &options).unwrap(), vec![2, 1, 3, 4, 0]);
    }
}
