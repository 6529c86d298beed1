//! Comparing a unit test's actual rows with the expected ones as multisets
//! (order-insensitive, duplicates counted), and rendering the difference as
//! dbt does in spirit: every row, sorted, marked `+++` when only in the
//! actual rows, `---` when only in the expected ones.
//!
//! ```text
//! actual differs from expected:
//!
//! @@  | id | status
//!     | 1  | placed
//! +++ | 2  | shipped
//! --- | 2  | returned
//! ```

use datafusion::arrow::record_batch::RecordBatch;
use datafusion::arrow::util::display::{ArrayFormatter, FormatOptions};
use std::collections::BTreeMap;

/// Rows as display strings (NULL as `null`).
pub fn rows_of(batches: &[RecordBatch]) -> Result<Vec<Vec<String>>, datafusion::arrow::error::ArrowError> {
    let opts = FormatOptions::default().with_null("null");
    let mut out = vec![];
    for b in batches {
        let fmts = b.columns().iter().map(|c| ArrayFormatter::try_new(c.as_ref(), &opts)).collect::<Result<Vec<_>, _>>()?;
        for i in 0..b.num_rows() {
            out.push(fmts.iter().map(|f| f.value(i).to_string()).collect());
        }
    }
    Ok(out)
}

/// `None` when the multisets are equal, else the rendered difference.
pub fn diff(columns: &[String], actual: &[Vec<String>], expected: &[Vec<String>]) -> Option<String> {
    let mut count: BTreeMap<&Vec<String>, (usize, usize)> = BTreeMap::new();
    for r in actual {
        count.entry(r).or_default().0 += 1;
    }
    for r in expected {
        count.entry(r).or_default().1 += 1;
    }
    if count.values().all(|(a, e)| a == e) {
        return None;
    }
    let mut lines: Vec<(String, &Vec<String>)> = vec![];
    for (row, (a, e)) in &count {
        for _ in 0..(*a).min(*e) {
            lines.push((String::new(), row));
        }
        for _ in *e..*a {
            lines.push(("+++".into(), row));
        }
        for _ in *a..*e {
            lines.push(("---".into(), row));
        }
    }
    let mut widths: Vec<usize> = columns.iter().map(|c| c.chars().count()).collect();
    for (_, r) in &lines {
        for (w, v) in widths.iter_mut().zip(r.iter()) {
            *w = (*w).max(v.chars().count());
        }
    }
    let fmt = |mark: &str, cells: &[String]| -> String {
        let mut s = format!("{mark:<3}");
        for (c, w) in cells.iter().zip(&widths) {
            s.push_str(&format!(" | {c:<w$}"));
        }
        s.trim_end().to_string()
    };
    let mut out = vec!["actual differs from expected:".to_string(), String::new(), fmt("@@", columns)];
    out.extend(lines.iter().map(|(m, r)| fmt(m, r)));
    Some(out.join("\n"))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rows(v: &[&[&str]]) -> Vec<Vec<String>> {
        v.iter().map(|r| r.iter().map(|s| s.to_string()).collect()).collect()
    }

    #[test]
    fn multiset_compare_ignores_order_and_counts_duplicates() {
        let cols = vec!["id".to_string(), "status".to_string()];
        let a = rows(&[&["2", "x"], &["1", "y"]]);
        let e = rows(&[&["1", "y"], &["2", "x"]]);
        assert_eq!(diff(&cols, &a, &e), None);
        let a = rows(&[&["1", "y"], &["1", "y"], &["2", "shipped"]]);
        let e = rows(&[&["1", "y"], &["2", "returned"]]);
        assert_eq!(
            diff(&cols, &a, &e).unwrap(),
            "actual differs from expected:\n\n@@  | id | status\n    | 1  | y\n+++ | 1  | y\n--- | 2  | returned\n+++ | 2  | shipped"
        );
    }
}
