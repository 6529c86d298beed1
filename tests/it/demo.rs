//! The demo medallion project end to end: generate bronze data, seed, run,
//! re-run (incremental merge), and check row-level results.

use crate::common::*;
use std::path::Path;

fn query(dir: &Path, sql: &str) -> String {
    let o = run(dir, &["show", "--inline", sql, "--limit", "100"]);
    ok(&o);
    stdout(&o)
}

#[test]
fn demo_runs_end_to_end() {
    let dir = demo_project();
    let p = dir.path();
    let o = run(p, &["demo", "--scale", "0.05"]);
    ok(&o);
    let err = stderr(&o);
    // 3 seeds, 13 models and their 104 data tests.
    assert!(err.contains("Done. PASS=120 WARN=0 ERROR=0 SKIP=0 NO-OP=0 TOTAL=120"), "{err}");
    assert!(err.contains("OK created sql incremental model marts.fct_orders"), "{err}");
    for t in ["staging/stg_customers", "intermediate/int_daily_aggregates", "marts/fct_orders", "raw/category_mapping"] {
        assert!(p.join("warehouse").join(t).join("_delta_log").is_dir(), "{t} is not a Delta table");
    }
    // Row-level checks on the marts.
    let out = query(p, "select count(*) as n, count(distinct order_id) as d from {{ ref('fct_orders') }}");
    let nums: Vec<&str> = out.lines().nth(3).unwrap().split('|').map(str::trim).filter(|s| !s.is_empty()).collect();
    assert_eq!(nums[0], nums[1], "fct_orders has duplicate order ids:\n{out}");
    let out = query(p, "select count(*) from {{ ref('stg_customers') }} where email not like '%@%.%' or email <> lower(trim(email))");
    assert!(out.contains("| 0 "), "invalid emails reached staging:\n{out}");
    // A second run merges into the incremental table and replaces the others.
    let o = run(p, &["run"]);
    ok(&o);
    let err = stderr(&o);
    assert!(err.contains("[MERGE 0 rows"), "{err}");
    assert!(err.contains("[REPLACE "), "{err}");
    let rr: serde_json::Value = serde_json::from_slice(&std::fs::read(p.join("target/run_results.json")).unwrap()).unwrap();
    let results = rr["results"].as_array().unwrap();
    assert_eq!(results.len(), 13);
    assert!(results.iter().all(|r| r["status"] == "success"));
    assert!(results.iter().any(|r| r["adapter_response"]["rows_affected"].as_u64().unwrap_or(0) > 0));
}

#[test]
fn failed_model_skips_descendants_and_keeps_old_version() {
    let dir = project(&[
        ("warehouse.toml", "[project]\nname = \"p\"\n[models]\nmaterialized = \"table\"\n"),
        ("models/a.sql", "select 1 as id"),
        ("models/b.sql", "select id from {{ ref('a') }}"),
        ("models/c.sql", "select id, 'x' as tag from {{ ref('b') }}"),
        ("models/d.sql", "select 2 as id"),
    ]);
    let p = dir.path();
    ok(&run(p, &["run"]));
    // Break b: it fails, c is skipped, a and d still build.
    std::fs::write(p.join("models/b.sql"), "select no_such_column from {{ ref('a') }}").unwrap();
    let o = run(p, &["run"]);
    assert_eq!(o.status.code(), Some(1));
    let err = stderr(&o);
    assert!(err.contains("Done. PASS=2 WARN=0 ERROR=1 SKIP=1 NO-OP=0 TOTAL=4"), "{err}");
    assert!(err.contains("in model b (models/b.sql); compiled SQL: target/compiled/p/models/b.sql"), "{err}");
    assert!(err.contains("SKIP relation main.c"), "{err}");
    // b's previous version is still there and readable.
    std::fs::write(p.join("models/b.sql"), "select id from {{ ref('a') }}").unwrap();
    let out = stdout(&run(p, &["show", "--inline", "select * from main.b"]));
    assert!(out.contains("| 1  |"), "{out}");
}
