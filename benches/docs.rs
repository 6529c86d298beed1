//! `dp docs generate` on the synthetic project of N models (benches/synthetic).
//!
//!     cargo bench --bench docs                    # N = 10000
//!     cargo bench --bench docs -- 2000 --repeat 5
//!     DP_BIN=target/debug/dp cargo test --release=false --bench docs -- --bench 10000
//!
//! Options (after `--`): N values; `--repeat R` (runs per N, median by wall time, default
//! 3); `--keep` (keep the generated projects and print where). `DP_BIN` overrides the dp
//! binary (e.g. a debug build: the figures are then that profile's).
//!
//! The project gets one small Parquet file per source (written with `dp sql`), so every model
//! plans and has column lineage, as in tests/it/docs.rs. No warehouse is built: the catalog
//! holds the sources only (every model's relation is missing), which is the cost of a docs
//! generate before the first run. `target/` is removed before the first run only; the first
//! run is reported on its own (cold: no partial-parse or lineage cache), the median covers all. The phase timings come
//! from dp's own debug log (`DP_LOG=dp::docs=debug`).
//!
//! Target (issue 15): under 3 s wall and under 500 MB peak at N = 10,000 (release), printed as
//! PASS/MISS. No timing assertion.

mod common;
mod synthetic;

use common::*;
use std::path::Path;

const TARGET_S: f64 = 3.0;
const TARGET_MB: f64 = 500.0;

fn sources(dir: &Path, dp: &Path) {
    let copies: Vec<String> = (0..synthetic::SOURCES)
        .map(|s| {
            std::fs::create_dir_all(dir.join(format!("data/src_{s}"))).unwrap();
            format!(
                "COPY (SELECT CAST(i AS BIGINT) AS id, 'shipped' AS status, CAST(i * 100 AS BIGINT) AS amount_cents, 'a' AS col_a, 'b' AS col_b, 'c' AS col_c, \
                 CAST('2024-06-01' AS TIMESTAMP) AS updated_at, false AS is_deleted FROM (VALUES (1), (2), (3)) t(i)) TO 'data/src_{s}/part.parquet'"
            )
        })
        .collect();
    measure(dp, &["sql", "-e", &copies.join(";\n")], dir, &[]).expect_ok("dp sql (source files)");
}

/// The `phase=... seconds=...` debug lines dp logs for docs generate.
fn phases(stderr: &str) -> Vec<String> {
    stderr
        .lines()
        .filter(|l| l.contains("docs generate phase"))
        .filter_map(|l| {
            let phase = l.split("phase=").nth(1)?.split_whitespace().next()?.trim_matches('"');
            let secs: f64 = l.split("seconds=").nth(1)?.split_whitespace().next()?.parse().ok()?;
            Some(format!("{phase} {secs:.2}s"))
        })
        .collect()
}

fn main() {
    if !invoked_by_cargo_bench() {
        return;
    }
    let (mut ns, mut repeat, mut keep) = (vec![], 3usize, false);
    let args = bench_args();
    let mut it = args.iter();
    while let Some(a) = it.next() {
        match a.as_str() {
            "--repeat" => repeat = it.next().and_then(|v| v.parse().ok()).expect("--repeat R"),
            "--keep" => keep = true,
            s if s.starts_with("--") => eprintln!("docs bench: ignoring unknown option {s}"),
            s => ns.push(s.replace(['_', ','], "").parse::<usize>().unwrap_or_else(|_| panic!("not a model count: {s}"))),
        }
    }
    if ns.is_empty() {
        ns = vec![10_000];
    }
    let dp = dp_binary();
    println!("dp docs generate on synthetic projects; dp = {}", dp.display());
    println!("load average at start: {} ({} CPUs)", loadavg(), cpus());
    let mut at_target = None;
    for n in ns {
        let tmp = tempfile::Builder::new().prefix("dp-docs-bench-").tempdir().unwrap();
        let dir = tmp.path().to_path_buf();
        synthetic::generate(&dir, n);
        sources(&dir, &dp);
        let mut runs = vec![];
        let _ = std::fs::remove_dir_all(dir.join("target"));
        for _ in 0..repeat.max(1) {
            let m = measure(&dp, &["docs", "generate"], &dir, &[("DP_LOG", "dp::docs=debug"), ("NO_COLOR", "1")]);
            m.expect_ok("dp docs generate");
            eprintln!("  N={n}: {:.2}s, {} MB", m.wall_s, fmt_mb(m.peak_mb));
            runs.push(m);
        }
        let first = runs[0].clone();
        let m = median(runs);
        println!("N = {n}: dp docs generate {:.2} s wall, peak {} MB (median of {repeat})", m.wall_s, fmt_mb(m.peak_mb));
        println!(
            "  first run (no target/: cold parse, every model planned): {:.2} s wall, peak {} MB; later runs reuse target/partial_parse.bin and target/lineage_cache.json",
            first.wall_s,
            fmt_mb(first.peak_mb)
        );
        println!("  phases: {}", phases(&m.stderr).join(", "));
        if n == 10_000 {
            at_target = Some(m.clone());
        }
        if keep {
            println!("  kept {}", tmp.keep().display());
        }
    }
    println!("load average at end: {}", loadavg());
    if let Some(m) = at_target {
        let pass = m.wall_s < TARGET_S && m.peak_mb.is_none_or(|mb| mb < TARGET_MB);
        println!(
            "Target: dp docs generate of 10000 models under {TARGET_S} s wall and under {TARGET_MB} MB peak (release): {}",
            if pass { "PASS" } else { "MISS" }
        );
    }
}
