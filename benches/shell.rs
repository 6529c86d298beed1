//! `dp sql` start-up on a large warehouse: the catalog is registered lazily,
//! so a shell over 500 Delta tables should start about as fast as one over
//! an empty warehouse. Target: under 200 ms to run `select 1`.
//!
//! `cargo bench --bench shell -- [TABLES]` (default 500). Uses the release
//! `dp` (see benches/common); prints medians of 7 runs and the ratio against
//! the empty-warehouse baseline measured in the same run.

mod common;

use common::{copy_tree, dp_binary, measure, median};
use std::path::Path;

fn project(dir: &Path) {
    std::fs::create_dir_all(dir.join("models")).unwrap();
    std::fs::write(dir.join("warehouse.toml"), "[project]\nname = \"bench\"\n[models]\nmaterialized = \"table\"\n").unwrap();
    std::fs::write(dir.join("models/t.sql"), "select value as id, value * 2 as x from range(0, 1000)").unwrap();
}

fn time(dp: &Path, dir: &Path, sql: &str) -> f64 {
    let runs: Vec<_> = (0..7).map(|_| measure(dp, &["sql", "-q", "-e", sql, "--format", "csv"], dir, &[])).collect();
    for r in &runs {
        r.expect_ok("dp sql");
    }
    median(runs).wall_s
}

fn main() {
    if !common::invoked_by_cargo_bench() {
        return;
    }
    let tables: usize = common::bench_args().iter().find_map(|a| a.parse().ok()).unwrap_or(500);
    let dp = dp_binary();
    let empty = tempfile::tempdir().unwrap();
    project(empty.path());
    let big = tempfile::tempdir().unwrap();
    project(big.path());
    measure(&dp, &["run", "-q"], big.path(), &[]).expect_ok("dp run");
    // Copy the one Delta table into `tables` tables over 10 schemas.
    let src = big.path().join("warehouse/main/t");
    for i in 0..tables {
        copy_tree(&src, &big.path().join(format!("warehouse/s{}/t{i}", i % 10))).unwrap();
    }
    let base = time(&dp, empty.path(), "select 1");
    let started = time(&dp, big.path(), "select 1");
    let one = time(&dp, big.path(), &format!("select count(*) from s{}.t{}", (tables / 2) % 10, tables / 2));
    println!("dp sql start-up ({} tables, median of 7, {})", tables, dp.display());
    println!("  empty warehouse, select 1:        {:>8.1} ms  (baseline)", base * 1e3);
    println!("  {tables} tables, select 1:           {:>8.1} ms  ({:.2}x baseline)", started * 1e3, started / base);
    println!("  {tables} tables, count(*) of one:    {:>8.1} ms  ({:.2}x baseline)", one * 1e3, one / base);
    println!("  target < 200 ms: {}", if started < 0.2 { "PASS" } else { "MISS" });
}
