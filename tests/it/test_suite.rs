//! The test-suite fixture (`tests/fixtures/projects/test_suite`): every
//! data-test kind in passing and failing form. `dp test` after seed + run,
//! and `dp build` from scratch, give dbt-duckdb's outcomes (status and
//! failure count per test, golden files from `scripts/make_dbt_goldens.sh`);
//! `--show-failures` prints the first failing rows on stdout.

use crate::common::*;
use std::path::Path;

fn golden(file: &str) -> serde_json::Value {
    serde_json::from_slice(&std::fs::read(repo().join("tests/fixtures/projects/test_suite/golden").join(file)).unwrap()).unwrap()
}

/// A seeded and built copy of the fixture.
pub fn built_test_suite() -> tempfile::TempDir {
    let dir = fixture("test_suite");
    ok(&run(dir.path(), &["seed"]));
    ok(&run(dir.path(), &["run"]));
    dir
}

#[test]
fn test_suite_outcomes_equal_dbt() {
    let dir = built_test_suite();
    let p = dir.path();
    let o = run(p, &["test"]);
    assert_eq!(o.status.code(), Some(1), "{}", stderr(&o));
    let err = stderr(&o);
    assert_eq!(outcomes(p), golden("test_results.json"), "{err}");
    assert!(err.contains("Done. PASS=25 WARN=7 ERROR=17 SKIP=0 NO-OP=0 TOTAL=49"), "{err}");
    // dbt's messages for thresholds
    assert!(err.contains("Failure in test quantity_nulls_error (models/seeds.yml)\n  Got 3 results, configured to fail if >2"), "{err}");
    assert!(err.contains("Warning in test quantity_nulls_warn: Got 3 results, configured to warn if >1"), "{err}");
    assert!(err.contains("failures stored in main_dbt_test__audit.relationships_customers_country_code__code__ref_countries_"), "{err}");
    // a test on a missing column names the test, the column, the model and the YAML line
    assert!(
        err.contains(
            "test not_null_order_totals_no_such_column: column 'no_such_column' not found in model order_totals\n  hint: fix the column name in models/schema.yml:75, or add the column to model order_totals"
        ),
        "{err}"
    );
    // the disabled test is not run
    assert!(!err.contains("quantity_nulls_disabled"), "{err}");
    // run_results messages as dbt's: null on pass, "Got N results..." on warn/fail
    let rr: serde_json::Value = serde_json::from_slice(&std::fs::read(p.join("target/run_results.json")).unwrap()).unwrap();
    let by_name = |n: &str| rr["results"].as_array().unwrap().iter().find(|r| r["unique_id"].as_str().unwrap().contains(n)).unwrap().clone();
    assert_eq!(by_name("quantity_nulls_tolerated")["message"], serde_json::Value::Null);
    assert_eq!(by_name("quantity_nulls_limited")["message"], "Got 2 results, configured to fail if != 0");
}

#[test]
fn test_suite_build_equals_dbt() {
    let dir = fixture("test_suite");
    let p = dir.path();
    let o = run(p, &["build"]);
    assert_eq!(o.status.code(), Some(1), "{}", stderr(&o));
    assert_eq!(outcomes(p), golden("build_results.json"), "{}", stderr(&o));
    assert!(stderr(&o).contains("Done. PASS=20 WARN=5 ERROR=10 SKIP=21 NO-OP=0 TOTAL=56"), "{}", stderr(&o));
}

#[test]
fn show_failures_prints_first_failing_rows_on_stdout() {
    let dir = built_test_suite();
    let p = dir.path();
    let o = run(p, &["test", "--show-failures", "-s", "orders", "--threads", "1"]);
    assert_eq!(o.status.code(), Some(1), "{}", stderr(&o));
    // logs stay on stderr; stdout holds only the failing rows
    assert!(stderr(&o).contains("Done. PASS="), "{}", stderr(&o));
    insta::assert_snapshot!(stdout(&o));
    // without the flag, stdout is empty
    let o = run(p, &["test", "-s", "orders"]);
    assert_eq!(stdout(&o), "");
}

/// `[{unique_id, status, failures, message}]` of target/run_results.json, sorted.
fn outcomes_with_messages(dir: &Path) -> Vec<serde_json::Value> {
    let rr: serde_json::Value = serde_json::from_slice(&std::fs::read(dir.join("target/run_results.json")).unwrap()).unwrap();
    let mut items: Vec<serde_json::Value> = rr["results"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| serde_json::json!({"unique_id": r["unique_id"], "status": r["status"], "failures": r["failures"], "message": r["message"]}))
        .collect();
    items.sort_by(|a, b| a["unique_id"].as_str().cmp(&b["unique_id"].as_str()));
    items
}

#[test]
fn batched_column_tests_equal_one_by_one() {
    let dir = built_test_suite();
    let p = dir.path();
    // batched (the default): 28 column and relationships tests share one query per relation
    let o = dp().current_dir(p).args(["-v", "test"]).output().unwrap();
    assert_eq!(o.status.code(), Some(1), "{}", stderr(&o));
    let err = stderr(&o);
    assert!(err.contains("column tests batched by relation tests=28"), "{err}");
    // the group on order_totals holds a missing column: its tests run alone
    assert!(err.contains(r#"batched tests failed; running them one by one from="dp"."main"."order_totals""#), "{err}");
    // and no other group (those with relationships joins included) fell back
    assert_eq!(err.matches("batched tests failed").count(), 1, "{err}");
    let batched = outcomes_with_messages(p);
    // one query per test
    let o = dp().current_dir(p).env("DP_TEST_BATCH", "off").args(["-v", "test"]).output().unwrap();
    assert_eq!(o.status.code(), Some(1), "{}", stderr(&o));
    assert!(!stderr(&o).contains("column tests batched"), "{}", stderr(&o));
    let alone = outcomes_with_messages(p);
    assert_eq!(batched.len(), 49);
    for (b, a) in batched.iter().zip(&alone) {
        assert_eq!(b, a);
    }
    assert_eq!(outcomes(p), golden("test_results.json"));
}

#[test]
fn a_singular_test_with_bad_sql_names_its_file() {
    let dir = project(&[
        ("warehouse.toml", "[project]\nname = \"p\"\n"),
        ("models/m.sql", "select 1 as id"),
        ("tests/broken.sql", "select id from {{ ref('m') }} where nope > 1"),
    ]);
    let p = dir.path();
    ok(&run(p, &["run"]));
    let o = run(p, &["test"]);
    assert_eq!(o.status.code(), Some(1));
    let err = stderr(&o);
    assert!(err.contains("ERROR broken"), "{err}");
    assert!(err.contains("in test broken (tests/broken.sql); compiled SQL: target/compiled/p/tests/broken.sql"), "{err}");
    assert!(!err.contains("panicked"), "{err}");
}

#[test]
fn overridden_test_macros_and_stored_failures_are_not_batched() {
    let dir = project(&[
        ("warehouse.toml", "[project]\nname = \"p\"\n[models]\nmaterialized = \"table\"\n"),
        ("models/m.sql", "select * from (values (1, 'a'), (1, null), (2, 'c')) t(id, v)"),
        // the project's not_null ignores NULLs in `v`: it must be used, not the batch
        ("macros/not_null.sql", "{% test not_null(model, column_name) %}\nselect * from {{ model }} where {{ column_name }} is null and false\n{% endtest %}"),
        (
            "models/s.yml",
            "models:\n  - name: m\n    columns:\n      - name: id\n        data_tests:\n          - not_null\n          - unique\n          - accepted_values:\n              arguments: {values: [1, 2], quote: false}\n          - unique:\n              name: unique_id_stored\n              config: {store_failures: true}\n      - name: v\n        data_tests: [not_null]\n",
        ),
    ]);
    let p = dir.path();
    ok(&run(p, &["run"]));
    let o = dp().current_dir(p).args(["-v", "test"]).output().unwrap();
    let err = stderr(&o);
    // unique + accepted_values batch; not_null (overridden) and the stored test run alone
    assert!(err.contains("column tests batched by relation tests=2"), "{err}");
    assert!(err.contains("PASS not_null_m_v"), "{err}");
    assert!(err.contains("FAIL 1 unique_m_id"), "{err}");
    assert!(err.contains("FAIL 1 unique_id_stored"), "{err}");
    assert!(err.contains("failures stored in main_dbt_test__audit.unique_id_stored"), "{err}");
    // the test line is followed by where its rows went
    let lines: Vec<&str> = err.lines().collect();
    let at = lines.iter().position(|l| l.contains("FAIL 1 unique_id_stored")).expect(&err);
    assert!(lines[at + 1].ends_with("   failing rows in main_dbt_test__audit.unique_id_stored"), "{err}");
    assert!(err.contains("Done. PASS=3 WARN=0 ERROR=2 SKIP=0 NO-OP=0 TOTAL=5"), "{err}");
}
