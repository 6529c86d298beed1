//! Quality checkpoints at scale: N expectations (default 10,000) over the demo's bronze
//! relations, `dp check` against one plain scan of the same relations (`dp sql` reading every
//! column once), and against Great Expectations 1.x (pandas) on a sample of the same suite.
//!
//!     cargo bench --bench checkpoints -- --scale 10
//!
//! Options (after `--`): `--scale S` (default 10); `--expectations N` (default 10000);
//! `--repeat R` (median of R runs, default 3); `--gx-sample K` (expectations GX runs, default
//! 200, 0: skip GX; its time is extrapolated to N); `--keep`. `DP_BIN` overrides the dp binary.
//! GX comes from PyPI into `~/.cache/dp-test/gx` (installed when missing, with pyarrow).
//!
//! Also times adding one run to Data Docs holding 1,000 runs (`--docs-runs`, default 1000).

mod common;

use common::*;
use serde_json::{Value, json};
use std::path::Path;

struct Opts {
    scale: f64,
    expectations: usize,
    repeat: usize,
    gx_sample: usize,
    docs_runs: usize,
    keep: bool,
}

fn parse_opts() -> Opts {
    let mut o = Opts { scale: 10.0, expectations: 10_000, repeat: 3, gx_sample: 200, docs_runs: 1000, keep: false };
    let args = bench_args();
    let mut it = args.iter();
    while let Some(a) = it.next() {
        let mut val = |k: &str| it.next().cloned().unwrap_or_else(|| panic!("{k} needs a value"));
        match a.as_str() {
            "--scale" => o.scale = val(a).parse().expect("--scale S"),
            "--expectations" => o.expectations = val(a).parse().expect("--expectations N"),
            "--repeat" => o.repeat = val(a).parse().expect("--repeat R"),
            "--gx-sample" => o.gx_sample = val(a).parse().expect("--gx-sample K"),
            "--docs-runs" => o.docs_runs = val(a).parse().expect("--docs-runs N"),
            "--keep" => o.keep = true,
            s => eprintln!("checkpoints bench: ignoring unknown argument {s}"),
        }
    }
    o
}

/// (source table, numeric columns, text columns, all columns)
type Relation = (&'static str, &'static [&'static str], &'static [&'static str], &'static [&'static str]);

const RELATIONS: &[Relation] = &[
    (
        "customers",
        &["id"],
        &["email", "first_name", "last_name", "country_code"],
        &["id", "email", "first_name", "last_name", "country_code", "created_at", "updated_at"],
    ),
    ("products", &["id", "price", "cost"], &["name", "category"], &["id", "name", "category", "price", "cost", "created_at", "updated_at"]),
    ("orders", &["id", "customer_id", "total_amount"], &["status"], &["id", "customer_id", "order_date", "status", "total_amount", "updated_at"]),
    (
        "transactions",
        &["transaction_id", "order_id", "product_id", "quantity", "unit_price", "discount"],
        &["payment_method"],
        &["transaction_id", "order_id", "product_id", "quantity", "unit_price", "discount", "transaction_ts", "payment_method"],
    ),
];

/// The i-th expectation on a relation (varied arguments, so few expressions repeat).
fn expectation(i: usize, nums: &[&str], texts: &[&str], all: &[&str]) -> Value {
    let n = nums[i % nums.len()];
    let t = texts[i % texts.len()];
    let a = all[i % all.len()];
    match i % 10 {
        0 => json!({"expect_column_values_to_not_be_null": {"column": a, "mostly": 0.5 + (i % 50) as f64 / 100.0}}),
        1 => json!({"expect_column_values_to_be_between": {"column": n, "min_value": -((i % 100) as i64), "max_value": 1_000_000 + i}}),
        2 => json!({"expect_column_values_to_be_in_set": {"column": t, "value_set": ["a", "b", format!("v{i}")], "mostly": 0.0}}),
        3 => json!({"expect_column_value_lengths_to_be_between": {"column": t, "min_value": 0, "max_value": 10 + i % 50}}),
        4 => json!({"expect_column_values_to_be_between": {"column": n, "min_value": 0, "row_condition": format!("{n} > {}", i % 7)}}),
        5 => json!({"expect_column_mean_to_be_between": {"column": n, "min_value": -(i as i64), "max_value": 1e12}}),
        6 => json!({"expect_column_max_to_be_between": {"column": n, "max_value": 1e12 + i as f64}}),
        7 => json!({"expect_column_sum_to_be_between": {"column": n, "min_value": -(i as i64)}}),
        8 => json!({"expect_table_row_count_to_be_between": {"min_value": 1, "max_value": 1_000_000_000 + i}}),
        _ => json!({"expect_column_values_to_not_be_in_set": {"column": t, "value_set": [format!("x{i}")]}}),
    }
}

fn write_suite(proj: &Path, n: usize) {
    let per = n / RELATIONS.len();
    let mut validations = vec![];
    for (k, (table, nums, texts, all)) in RELATIONS.iter().enumerate() {
        let count = if k == RELATIONS.len() - 1 { n - per * k } else { per };
        let exps: Vec<Value> = (0..count).map(|i| expectation(i, nums, texts, all)).collect();
        validations.push(json!({"relation": format!("source:raw.{table}"), "expectations": exps}));
    }
    let doc =
        json!({"name": "bench_checkpoint", "gate": false, "failed_rows": 0, "actions": ["store_results", "update_data_docs"], "validations": validations});
    std::fs::create_dir_all(proj.join("checkpoints")).unwrap();
    std::fs::write(proj.join("checkpoints/bench_checkpoint.yml"), serde_yaml_ng::to_string(&doc).unwrap()).unwrap();
}

/// One pass over every value of every column the suite checks. Not `count(c)`: DataFusion
/// answers `count(*)`/`count(c)` from the Parquet footers' statistics without reading a page
/// (a `PlaceholderRowExec` plan), which made the first version of this baseline a metadata read.
fn plain_scan_sql() -> String {
    RELATIONS
        .iter()
        .map(|(t, _, _, all)| {
            let cols = all.iter().map(|c| format!("count(case when {c} is not null then 1 end)")).collect::<Vec<_>>().join(", ");
            format!("select count(*), {cols} from raw.{t};")
        })
        .collect::<Vec<_>>()
        .join("\n")
}

fn gx_python() -> Option<std::path::PathBuf> {
    let venv = std::path::PathBuf::from(std::env::var("HOME").ok()?).join(".cache/dp-test/gx");
    let py = venv.join("bin/python");
    let ready = |p: &Path| std::process::Command::new(p).args(["-c", "import great_expectations, pyarrow, yaml"]).output().is_ok_and(|o| o.status.success());
    if !ready(&py) {
        eprintln!("installing great_expectations, pyarrow and pyyaml into {}", venv.display());
        let _ = std::process::Command::new("python3").args(["-m", "venv"]).arg(&venv).status();
        let _ = std::process::Command::new(venv.join("bin/pip")).args(["install", "-q", "great_expectations>=1.0,<2", "pyarrow", "pyyaml"]).status();
    }
    ready(&py).then_some(py)
}

fn main() {
    if !common::invoked_by_cargo_bench() {
        return;
    }
    let o = parse_opts();
    let dp = dp_binary();
    let (tmp, proj) = demo_copy("dp-bench-checkpoints-");
    let pd = proj.to_str().unwrap().to_string();
    println!("dp checkpoints benchmark ({} expectations over the bronze sources, demo scale {})", o.expectations, o.scale);
    println!("  dp binary : {}", dp.display());
    println!("  machine   : {} CPUs, load average {} (1/5/15 min) at start", cpus(), loadavg());
    let scale = o.scale.to_string();
    let bronze = proj.join("bronze");
    measure(&dp, &["--project-dir", &pd, "demo", "generate", "--scale", &scale, "--out", bronze.to_str().unwrap()], &proj, &[]).expect_ok("dp demo generate");
    // The sales file drops (landing/) into bronze, as `dp demo` does.
    measure(&dp, &["--project-dir", &pd, "ingest", "-s", "source:raw.transactions"], &proj, &[]).expect_ok("dp ingest");
    write_suite(&proj, o.expectations);

    let scan = plain_scan_sql();
    let scan_m = median(
        (0..o.repeat.max(1)).map(|_| measure(&dp, &["--project-dir", &pd, "sql", "-e", &scan], &proj, &[]).expect_ok("dp sql (plain scan)").clone()).collect(),
    );
    println!("  plain scan of the 4 sources      : {:.3}s wall, {} MB peak", scan_m.wall_s, fmt_mb(scan_m.peak_mb));
    let check_m = median(
        (0..o.repeat.max(1))
            .map(|_| {
                let m = measure(&dp, &["--project-dir", &pd, "check", "bench_checkpoint"], &proj, &[]);
                assert!(m.stderr.contains("Done. PASS="), "dp check did not finish:\n{}", tail(&m.stderr, 3000));
                m
            })
            .collect(),
    );
    let done = check_m.stderr.lines().rev().find(|l| l.starts_with("Done.")).unwrap_or("").to_string();
    println!("  dp check ({} expectations)    : {:.3}s wall, {} MB peak   {done}", o.expectations, check_m.wall_s, fmt_mb(check_m.peak_mb));
    let ratio = check_m.wall_s / scan_m.wall_s;
    println!("Ratio dp check / plain scan: {ratio:.2}x (target <= 3x: {})", if ratio <= 3.0 { "PASS" } else { "MISS" });

    if o.gx_sample > 0 {
        match gx_python() {
            Some(py) => {
                let script = repo_root().join("benches/gx_baseline.py");
                let k = o.gx_sample.to_string();
                let m = measure(&py, &[script.to_str().unwrap(), &pd, &k], &proj, &[("TQDM_DISABLE", "1"), ("GX_ANALYTICS_ENABLED", "false")]);
                match m.stdout.lines().rev().find_map(|l| serde_json::from_str::<Value>(l).ok()) {
                    Some(v) => {
                        let per = v["validate_s"].as_f64().unwrap_or(0.0) / v["expectations"].as_f64().unwrap_or(1.0);
                        let gx_total = v["load_s"].as_f64().unwrap_or(0.0) + per * o.expectations as f64;
                        println!(
                            "  GX {} (pandas): {} expectations in {:.2}s (+{:.2}s loading), {} MB peak; extrapolated to {}: {:.0}s",
                            v["gx_version"],
                            v["expectations"],
                            v["validate_s"].as_f64().unwrap_or(0.0),
                            v["load_s"].as_f64().unwrap_or(0.0),
                            fmt_mb(m.peak_mb),
                            o.expectations,
                            gx_total
                        );
                        let r = gx_total / check_m.wall_s;
                        println!("Ratio GX / dp check: {r:.1}x (target >= 10x: {})", if r >= 10.0 { "PASS" } else { "MISS" });
                    }
                    None => println!("  GX baseline failed:\n{}", tail(&m.stderr, 2000)),
                }
            }
            None => println!("  GX baseline skipped: great_expectations could not be installed"),
        }
    }

    // Data Docs: one more run on a site holding `docs_runs` runs.
    let small = "name: docs_checkpoint\ngate: false\nactions: [update_data_docs]\nvalidations:\n  - relation: source:raw.products\n    expectations:\n      - expect_table_row_count_to_be_between: {min_value: 1}\n";
    std::fs::write(proj.join("checkpoints/docs_checkpoint.yml"), small).unwrap();
    let site = proj.join("target/data_docs");
    let jsonl = site.join("runs.jsonl");
    std::fs::create_dir_all(site.join("runs")).unwrap();
    let mut lines = String::new();
    for i in 0..o.docs_runs {
        let failed: Vec<String> = (0..50).map(|k| format!("raw.orders expect_column_values_to_be_between(c{k}) #{}", i % 7)).collect();
        lines.push_str(&json!({"run_id": format!("r{i}"), "checkpoint": format!("cp{}", i % 4), "started_at": "2024-01-01T00:00:00Z", "success": i % 3 != 0, "evaluated": 1000, "passed": 950, "failed_error": 30, "failed_warn": 20, "trigger": "check", "failed": failed}).to_string());
        lines.push('\n');
    }
    std::fs::write(&jsonl, lines).unwrap();
    let m = measure(&dp, &["--project-dir", &pd, "check", "docs_checkpoint"], &proj, &[]);
    m.expect_ok("dp check docs_checkpoint");
    println!(
        "  Data Docs: one run added to a site of {} runs: whole `dp check` {:.3}s (target < 1s: {})",
        o.docs_runs,
        m.wall_s,
        if m.wall_s < 1.0 { "PASS" } else { "MISS" }
    );
    println!("  load average {} at end", loadavg());
    if o.keep {
        println!("  kept project: {}", tmp.keep().display());
    }
}
