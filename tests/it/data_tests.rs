//! `dp test` and `dp build`: outcomes (pass / warn / fail and failure
//! counts) equal dbt-duckdb's on the same projects; build order and
//! skipping; stored failures.

use crate::common::*;

fn golden(project: &str) -> serde_json::Value {
    serde_json::from_slice(&std::fs::read(repo().join("tests/fixtures/projects").join(project).join("golden/test_results.json")).unwrap()).unwrap()
}

#[test]
fn jaffle_test_outcomes_equal_dbt() {
    let dir = fixture("jaffle");
    let p = dir.path();
    ok(&run(p, &["seed"]));
    ok(&run(p, &["run"]));
    let o = run(p, &["test"]);
    ok(&o);
    let err = stderr(&o);
    assert!(err.contains("WARN 1 not_null_customers_last_name"), "{err}");
    assert!(err.contains("Done. PASS=18 WARN=1 ERROR=0 SKIP=0 TOTAL=19"), "{err}");
    assert_eq!(outcomes(p), golden("jaffle"));
}

#[test]
fn advanced_test_outcomes_equal_dbt() {
    let dir = fixture("advanced");
    let p = dir.path();
    ok(&run(p, &["run", "--vars", "{cutoff: 2024-01-15}"]));
    ok(&run(p, &["run", "--vars", "{cutoff: 2024-01-31}"]));
    let o = run(p, &["test", "--vars", "{cutoff: 2024-01-31}"]);
    assert_eq!(outcomes(p), golden("advanced"), "{}", stderr(&o));
}

#[test]
fn build_skips_children_of_a_failing_test_and_stores_failures() {
    let dir = project(&[
        ("warehouse.toml", "[project]\nname = \"p\"\n[models]\nmaterialized = \"table\"\n"),
        ("seeds/s.csv", "id,v\n1,a\n1,b\n2,c\n"),
        ("models/base.sql", "select id, v from {{ ref('s') }}"),
        ("models/child.sql", "select id from {{ ref('base') }}"),
        ("models/other.sql", "select 1 as x"),
        (
            "models/schema.yml",
            "version: 2\nmodels:\n  - name: base\n    columns:\n      - name: id\n        data_tests:\n          - unique:\n              config:\n                store_failures: true\n          - not_null\n          - accepted_values:\n              arguments:\n                values: [1]\n              config:\n                severity: warn\n",
        ),
    ]);
    let p = dir.path();
    let o = run(p, &["build"]);
    assert_eq!(o.status.code(), Some(1));
    let err = stderr(&o);
    assert!(err.contains("FAIL 1 unique_base_id"), "{err}");
    assert!(err.contains("WARN 1 accepted_values_base_id__1"), "{err}");
    assert!(err.contains("SKIP relation main.child"), "{err}");
    assert!(err.contains("Done. PASS=4 WARN=1 ERROR=1 SKIP=1 TOTAL=7"), "{err}");
    assert!(err.contains("failures stored in main_dbt_test__audit.unique_base_id"), "{err}");
    let o = run(p, &["show", "--inline", "select unique_field, n_records from main_dbt_test__audit.unique_base_id", "--format", "csv"]);
    ok(&o);
    assert_eq!(stdout(&o).trim(), "unique_field,n_records\n1,2");
}
