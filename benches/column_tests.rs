//! One scan per table: 1,000 column tests over one mart table, judged by dp's batched
//! aggregate queries (the default) vs one query per test (`DP_TEST_BATCH=off`), in the same run.
//!
//!     cargo bench --bench column_tests -- --scale 10
//!
//! Options (after `--`): `--scale S` (default 10); `--tests N` (default 1000); `--repeat R`
//! (median of R `dp test` runs per mode, default 3); `--threads N` (dp test's `--threads`,
//! default the target's); `--keep`. `DP_BIN` overrides the dp binary.
//!
//! Steps: copy the demo project into a temp dir, `dp demo generate --scale S`, `dp seed`,
//! `dp run -s +fct_orders`, then add N tests to `fct_orders`' columns in `models/marts/_marts__models.yml`
//! (tag `bench`, each with its own `name:`): `not_null` on every column,
//! `accepted_values` on `status` and `line_count` with varying lists and thresholds, `unique`
//! on `order_id`. Then `dp test -s tag:bench` in both modes. Both must give the same
//! `run_results.json` outcomes (status, failures, message per test), checked here. Prints
//! both walls and the ratio one-by-one / batched (> 1 means batching is faster).

mod common;

use common::*;
use serde_json::{Value, json};
use std::path::Path;

struct Opts {
    scale: f64,
    tests: usize,
    repeat: usize,
    threads: Option<usize>,
    keep: bool,
}

fn parse_opts() -> Opts {
    let mut o = Opts { scale: 10.0, tests: 1000, repeat: 3, threads: None, keep: false };
    let args = bench_args();
    let mut it = args.iter();
    while let Some(a) = it.next() {
        let mut val = |k: &str| it.next().cloned().unwrap_or_else(|| panic!("{k} needs a value"));
        match a.as_str() {
            "--scale" => o.scale = val(a).parse().expect("--scale S"),
            "--tests" => o.tests = val(a).parse().expect("--tests N"),
            "--repeat" => o.repeat = val(a).parse().expect("--repeat R"),
            "--threads" => o.threads = Some(val(a).parse().expect("--threads N")),
            "--keep" => o.keep = true,
            s => eprintln!("column_tests bench: ignoring unknown argument {s}"),
        }
    }
    o
}

const COLUMNS: &[&str] = &[
    "order_id",
    "customer_id",
    "order_date",
    "order_day",
    "status",
    "is_revenue",
    "total_amount",
    "line_count",
    "item_count",
    "gross_line_amount",
    "discount_amount",
    "net_line_amount",
    "customer_order_number",
    "is_first_order",
    "days_since_previous_order",
    "updated_at",
];
const STATUSES: &[&str] = &["pending", "shipped", "delivered", "cancelled", "returned"];

/// `n` column tests on fct_orders as YAML entries per column: spread round-robin over the
/// columns and kinds, every test named and tagged `bench`, with varying `warn_if`.
fn bench_tests(n: usize) -> Vec<Vec<Value>> {
    let mut per_col: Vec<Vec<Value>> = vec![vec![]; COLUMNS.len()];
    for i in 0..n {
        let c = i % COLUMNS.len();
        let config = json!({"severity": "warn", "warn_if": format!("> {}", i % 7), "tags": ["bench"]});
        let entry = match (COLUMNS[c], i / COLUMNS.len() % 3) {
            ("status", 1) => {
                let k = 2 + i % (STATUSES.len() - 1);
                json!({"accepted_values": {"name": format!("bench_{i}"), "arguments": {"values": STATUSES[..k]}, "config": config}})
            }
            ("line_count" | "item_count", 1) => {
                let values: Vec<usize> = (1..=3 + i % 10).collect();
                json!({"accepted_values": {"name": format!("bench_{i}"), "arguments": {"values": values, "quote": false}, "config": config}})
            }
            ("order_id", 2) => json!({"unique": {"name": format!("bench_{i}"), "config": config}}),
            _ => json!({"not_null": {"name": format!("bench_{i}"), "config": config}}),
        };
        per_col[c].push(entry);
    }
    per_col
}

/// Adds the bench tests to fct_orders' columns in the demo's marts YAML.
fn add_tests(yml: &Path, n: usize) {
    let text = std::fs::read_to_string(yml).expect("read marts yaml");
    let mut doc: Value = serde_yaml_ng::from_str(&text).expect("parse marts yaml");
    let model = doc["models"].as_array_mut().unwrap().iter_mut().find(|m| m["name"] == "fct_orders").expect("fct_orders in the marts yaml");
    let cols = model["columns"].as_array_mut().expect("fct_orders columns");
    for (c, tests) in bench_tests(n).into_iter().enumerate() {
        let col = match cols.iter_mut().position(|x| x["name"] == COLUMNS[c]) {
            Some(p) => &mut cols[p],
            None => {
                cols.push(json!({"name": COLUMNS[c]}));
                cols.last_mut().unwrap()
            }
        };
        let obj = col.as_object_mut().unwrap();
        let list = obj.entry("data_tests").or_insert_with(|| json!([]));
        list.as_array_mut().unwrap().extend(tests);
    }
    std::fs::write(yml, serde_yaml_ng::to_string(&doc).unwrap()).expect("write marts yaml");
}

/// `(unique_id, status, failures, message)` per test of the last run, sorted.
fn outcomes(proj: &Path) -> Vec<(String, String, String, String)> {
    let rr: Value = serde_json::from_slice(&std::fs::read(proj.join("target/run_results.json")).expect("run_results.json")).unwrap();
    let mut v: Vec<_> = rr["results"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| (r["unique_id"].to_string(), r["status"].to_string(), r["failures"].to_string(), r["message"].to_string()))
        .collect();
    v.sort();
    v
}

fn main() {
    if !common::invoked_by_cargo_bench() {
        return;
    }
    let o = parse_opts();
    let dp = dp_binary();
    let (tmp, proj) = demo_copy("dp-bench-column-tests-");
    let pd = proj.to_str().unwrap().to_string();
    println!("dp column-tests benchmark ({} tests on fct_orders, demo scale {})", o.tests, o.scale);
    println!("  dp binary : {}", dp.display());
    println!("  machine   : {} CPUs, load average {} (1/5/15 min) at start", cpus(), loadavg());

    let scale = o.scale.to_string();
    let bronze = proj.join("bronze");
    measure(&dp, &["--project-dir", &pd, "demo", "generate", "--scale", &scale, "--out", bronze.to_str().unwrap()], &proj, &[]).expect_ok("dp demo generate");
    // The sales file drops (landing/) into bronze, as `dp demo` does.
    measure(&dp, &["--project-dir", &pd, "ingest", "-s", "source:raw.transactions"], &proj, &[]).expect_ok("dp ingest");
    measure(&dp, &["--project-dir", &pd, "seed"], &proj, &[]).expect_ok("dp seed");
    let run = measure(&dp, &["--project-dir", &pd, "run", "-s", "+fct_orders"], &proj, &[]);
    run.expect_ok("dp run -s +fct_orders");
    println!("  built     : fct_orders and its parents in {:.2}s", run.wall_s);
    add_tests(&proj.join("models/marts/_marts__models.yml"), o.tests);

    let mut args: Vec<String> = vec!["--project-dir".into(), pd.clone(), "test".into(), "-s".into(), "tag:bench".into()];
    if let Some(t) = o.threads {
        args.extend(["--threads".into(), t.to_string()]);
    }
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    let mut results = vec![];
    for (label, mode) in [("batched (one scan per table)", "on"), ("one query per test", "off")] {
        let runs: Vec<Measured> = (0..o.repeat.max(1))
            .map(|_| {
                let m = measure(&dp, &args, &proj, &[("DP_TEST_BATCH", mode)]);
                m.expect_ok(&format!("dp test ({label})"));
                m
            })
            .collect();
        let m = median(runs);
        let done = m.stderr.lines().rev().find(|l| l.starts_with("Done.")).unwrap_or("").to_string();
        println!("  {label:<30}: {:.3}s wall, {} MB peak   {done}", m.wall_s, fmt_mb(m.peak_mb));
        results.push((m, outcomes(&proj)));
    }
    let (batched, one_by_one) = (&results[0], &results[1]);
    assert_eq!(batched.1.len(), o.tests, "every bench test ran");
    assert!(batched.1 == one_by_one.1, "batched and one-by-one outcomes differ");
    println!("  outcomes  : identical in both modes ({} tests: status, failures, message)", o.tests);
    println!("Ratio one-by-one / batched: {:.3}s / {:.3}s = {:.2}x", one_by_one.0.wall_s, batched.0.wall_s, one_by_one.0.wall_s / batched.0.wall_s);
    println!("  load average {} at end", loadavg());
    if o.keep {
        println!("  kept project: {}", tmp.keep().display());
    }
}
