//! The keys of [`super::WordSortExec`]: each row's sort values as 64-bit
//! words (`crate::engine::words`) followed by its place, `(batch << 32) |
//! row`, sorted once. The place breaks ties, so equal keys keep the order
//! the rows were read in.
//!
//! A string's word is its first eight bytes, big-endian, zero-padded:
//! words that differ order two strings as their bytes do, and equal words
//! send the comparison to the whole strings (read from the batches through
//! the rows' places), so a string key costs a full comparison only where
//! the first eight bytes tie.
//!
//! A column's NULLs become the lowest word (`NULLS FIRST`) or the highest
//! (`NULLS LAST`); only when the column also holds a value whose word is
//! that one does it get a rank word before its value word (0 before 1), so
//! a key is usually one word per column. Keys of up to four words are
//! fixed-size arrays sorted in place; wider ones sort an index.

use crate::engine::words;
use datafusion::arrow::array::{Array, ArrayRef, AsArray, GenericStringArray, StringViewArray};
use datafusion::arrow::compute::SortOptions;
use datafusion::arrow::datatypes::DataType;
use datafusion::common::Result;
use datafusion::error::DataFusionError;
use std::cmp::Ordering;

/// Whether [`sorted_places`] sorts on columns of type `t`.
pub fn is_key(t: &DataType) -> bool {
    words::is_word(t) || is_string(t)
}

fn is_string(t: &DataType) -> bool {
    matches!(t, DataType::Utf8 | DataType::LargeUtf8 | DataType::Utf8View)
}

/// A column's words in `options`' direction (NULL slots unspecified).
fn column_words(a: &ArrayRef, options: SortOptions) -> Result<Vec<u64>> {
    if !is_string(a.data_type()) {
        return words::sort_words(a, options);
    }
    let prefix = |b: &[u8]| {
        let mut w = [0u8; 8];
        let n = b.len().min(8);
        w[..n].copy_from_slice(&b[..n]);
        let v = u64::from_be_bytes(w);
        if options.descending { !v } else { v }
    };
    Ok(match Strings::of(a) {
        Some(s) => (0..a.len()).map(|i| prefix(s.bytes(i))).collect(),
        None => return Err(DataFusionError::Internal(format!("WordSortExec: {} is not a string type", a.data_type()))),
    })
}

/// A string column of one batch, read by row.
enum Strings<'a> {
    Utf8(&'a GenericStringArray<i32>),
    Large(&'a GenericStringArray<i64>),
    View(&'a StringViewArray),
}

impl<'a> Strings<'a> {
    fn of(a: &'a ArrayRef) -> Option<Strings<'a>> {
        Some(match a.data_type() {
            DataType::Utf8 => Strings::Utf8(a.as_string::<i32>()),
            DataType::LargeUtf8 => Strings::Large(a.as_string::<i64>()),
            DataType::Utf8View => Strings::View(a.as_string_view()),
            _ => return None,
        })
    }

    /// Row `i`'s bytes (whatever a NULL slot holds, for a NULL).
    fn bytes(&self, i: usize) -> &'a [u8] {
        match self {
            Strings::Utf8(a) => a.value(i).as_bytes(),
            Strings::Large(a) => a.value(i).as_bytes(),
            Strings::View(a) => a.value(i).as_bytes(),
        }
    }

    fn is_null(&self, i: usize) -> bool {
        match self {
            Strings::Utf8(a) => a.is_null(i),
            Strings::Large(a) => a.is_null(i),
            Strings::View(a) => a.is_null(i),
        }
    }
}

/// The string columns of a sort, for comparing two rows whose words tie.
struct Ties<'a> {
    /// Per key word: the string column whose value word it is, if any.
    of_word: Vec<Option<usize>>,
    /// Per string column: descending, and its arrays by batch.
    columns: Vec<(bool, Vec<Strings<'a>>)>,
}

impl<'a> Ties<'a> {
    fn new(batches: &'a [Vec<ArrayRef>], layout: &[Layout]) -> Ties<'a> {
        let mut ties = Ties { of_word: vec![], columns: vec![] };
        for (c, l) in layout.iter().enumerate() {
            if l.ranked {
                ties.of_word.push(None);
            }
            let strings: Vec<Strings<'a>> = batches.iter().filter_map(|arrays| Strings::of(&arrays[c])).collect();
            if strings.len() == batches.len() && !strings.is_empty() {
                ties.of_word.push(Some(ties.columns.len()));
                ties.columns.push((l.options.descending, strings));
            } else {
                ties.of_word.push(None);
            }
        }
        ties
    }

    /// Compares two keys: words first, a tied string word by the whole
    /// strings, then the places.
    fn compare(&self, a: &[u64], pa: u64, b: &[u64], pb: u64) -> Ordering {
        for (j, (x, y)) in a.iter().zip(b).enumerate() {
            match x.cmp(y) {
                Ordering::Equal => {
                    if let Some(c) = self.of_word[j] {
                        let o = self.strings(c, pa, pb);
                        if o != Ordering::Equal {
                            return o;
                        }
                    }
                }
                o => return o,
            }
        }
        pa.cmp(&pb)
    }

    /// Two rows' strings of column `c` in its direction (two NULLs, the only
    /// NULLs whose words tie, are equal).
    fn strings(&self, c: usize, pa: u64, pb: u64) -> Ordering {
        let (descending, arrays) = &self.columns[c];
        let (sa, ra) = (&arrays[(pa >> 32) as usize], (pa & u32::MAX as u64) as usize);
        let (sb, rb) = (&arrays[(pb >> 32) as usize], (pb & u32::MAX as u64) as usize);
        if sa.is_null(ra) || sb.is_null(rb) {
            return Ordering::Equal;
        }
        let o = sa.bytes(ra).cmp(sb.bytes(rb));
        if *descending { o.reverse() } else { o }
    }
}

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
/// evaluated sort columns (all of types [`is_key`] accepts), in the order
/// of `options`.
pub fn sorted_places(batches: &[Vec<ArrayRef>], options: &[SortOptions]) -> Result<Vec<u64>> {
    let mut layout: Vec<Layout> = options.iter().map(|&options| Layout { options, ranked: false }).collect();
    let mut rows = 0usize;
    for arrays in batches {
        rows += arrays.first().map_or(0, |a| a.len());
        for (a, l) in arrays.iter().zip(layout.iter_mut()) {
            if a.null_count() > 0 && !l.ranked {
                let null_word = l.null_word();
                let w = column_words(a, l.options)?;
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
        let mut w = column_words(a, l.options)?;
        if l.ranked {
            let (null_rank, value_rank) = if l.options.nulls_first { (0, 1) } else { (1, 0) };
            out.push((0..a.len()).map(|i| if a.is_null(i) { null_rank } else { value_rank }).collect());
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
    let ties = Ties::new(batches, layout);
    if ties.columns.is_empty() {
        keys.sort_unstable();
    } else {
        keys.sort_unstable_by(|a, b| ties.compare(&a.words, a.place, &b.words, b.place));
    }
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
    let ties = Ties::new(batches, layout);
    let mut order: Vec<usize> = (0..places.len()).collect();
    order.sort_unstable_by(|&a, &b| ties.compare(&flat[a * width..(a + 1) * width], places[a], &flat[b * width..(b + 1) * width], places[b]));
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
