//! Values as 64-bit words that compare as the values do, for operators
//! that order or match integer-like columns (integers, dates, timestamps)
//! without Arrow's row format: `top_one`'s fast path and `word_sort`.
//!
//! Signed types get their sign bit flipped, unsigned ones stay as they
//! are, and a descending order inverts the word. NULLs get a rank beside
//! the word (0 before 1) that puts them first or last as the order says.

use datafusion::arrow::array::{Array, ArrayRef, AsArray};
use datafusion::arrow::compute::SortOptions;
use datafusion::arrow::datatypes::*;
use datafusion::common::Result;
use datafusion::error::DataFusionError;

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
        t => return Err(DataFusionError::Internal(format!("{t} values are not words"))),
    })
}

/// `a`'s values as words in `options`' direction (NULL slots hold an
/// unspecified word; the caller places NULLs).
pub fn sort_words(a: &ArrayRef, options: SortOptions) -> Result<Vec<u64>> {
    let mut w = words(a)?;
    if options.descending {
        w.iter_mut().for_each(|v| *v = !*v);
    }
    Ok(w)
}

/// The ranks of a NULL and of a value under `options`: NULLs first rank
/// before values, NULLs last after them.
pub fn null_and_value_rank(options: SortOptions) -> (u8, u8) {
    if options.nulls_first { (0, 1) } else { (1, 0) }
}

/// A row's place in its key's order: (rank, word), smaller first.
pub type Rank = (u8, u64);

/// The ranks of `order`'s rows under `options` (one column of a type
/// [`is_word`] accepts).
pub fn ranks(order: &ArrayRef, options: SortOptions) -> Result<Vec<Rank>> {
    let w = sort_words(order, options)?;
    let (null_rank, value_rank) = null_and_value_rank(options);
    Ok(w.into_iter().enumerate().map(|(i, v)| if order.is_null(i) { (null_rank, 0) } else { (value_rank, v) }).collect())
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
}
