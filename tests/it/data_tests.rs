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
    assert!(err.contains("Done. PASS=18 WARN=1 ERROR=0 SKIP=0 NO-OP=0 TOTAL=19"), "{err}");
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
    assert!(err.contains("Done. PASS=4 WARN=1 ERROR=1 SKIP=1 NO-OP=0 TOTAL=7"), "{err}");
    assert!(err.contains("failures stored in main_dbt_test__audit.unique_base_id"), "{err}");
    let o = run(p, &["show", "--inline", "select unique_field, n_records from main_dbt_test__audit.unique_base_id", "--format", "csv"]);
    ok(&o);
    assert_eq!(stdout(&o).trim(), "unique_field,n_records\n1,2");
}

/// `dp source freshness`: dbt's lines, statuses (error over warn, a runtime
/// error for a bad filter) and target/sources.json; exit 1 on an error.
#[test]
fn source_freshness_judges_each_table_and_writes_sources_json() {
    let sources = r#"
sources:
  - name: raw
    loaded_at_field: loaded_at
    freshness:
      warn_after: {count: 1, period: day}
    tables:
      - name: fresh
        meta: {external_location: "data/fresh.csv"}
      - name: stale
        meta: {external_location: "data/stale.csv"}
        freshness:
          warn_after: {count: 1, period: day}
          error_after: {count: 30, period: day}
      - name: old
        meta: {external_location: "data/stale.csv"}
      - name: broken
        meta: {external_location: "data/stale.csv"}
        freshness:
          warn_after: {count: 1, period: hour}
          filter: "no_such_column > 1"
      - name: unchecked
        meta: {external_location: "data/stale.csv"}
        freshness: {}
"#;
    let dir = project(&[
        ("warehouse.toml", "[project]\nname = \"p\"\n"),
        ("models/src.yml", sources),
        ("data/fresh.csv", "id,loaded_at\n1,2099-01-01 00:00:00\n"),
        ("data/stale.csv", "id,loaded_at\n1,2020-01-01 00:00:00\n2,2020-01-02 12:00:00\n"),
    ]);
    let o = run(dir.path(), &["source", "freshness"]);
    let err = regex::Regex::new(r"in \d+\.\d+s").unwrap().replace_all(&stderr(&o), "in [t]s").into_owned();
    assert_eq!(o.status.code(), Some(1), "{err}");
    for line in [
        "1 of 4 PASS freshness of raw.fresh ............................................. [PASS in [t]s]",
        "2 of 4 ERROR STALE freshness of raw.stale ...................................... [ERROR STALE in [t]s]",
        "3 of 4 WARN freshness of raw.old ............................................... [WARN in [t]s]",
        "4 of 4 ERROR freshness of raw.broken ........................................... [ERROR in [t]s]",
        "Done. PASS=1 WARN=1 ERROR=2 TOTAL=4 (target/sources.json)",
    ] {
        assert!(err.contains(line), "missing {line:?} in\n{err}");
    }
    assert!(err.contains("error: source raw.stale: newest row is "), "{err}");
    assert!(
        err.contains(
            "error: source raw.broken: Schema error: No field named no_such_column.\nValid fields are raw.broken.id, raw.broken.loaded_at.\n  query: select"
        ),
        "{err}"
    );
    let v: serde_json::Value = serde_json::from_str(&std::fs::read_to_string(dir.path().join("target/sources.json")).unwrap()).unwrap();
    let got: Vec<(&str, &str)> = v["results"].as_array().unwrap().iter().map(|r| (r["unique_id"].as_str().unwrap(), r["status"].as_str().unwrap())).collect();
    assert_eq!(got, [("source.p.raw.fresh", "pass"), ("source.p.raw.stale", "error"), ("source.p.raw.old", "warn"), ("source.p.raw.broken", "runtime error")]);
    let stale = &v["results"][1];
    assert_eq!(stale["max_loaded_at"], "2020-01-02T12:00:00.000000Z");
    assert_eq!(stale["criteria"]["error_after"], serde_json::json!({"count": 30, "period": "day"}));
    assert_eq!(v["metadata"]["dbt_schema_version"], "https://schemas.getdbt.com/dbt/sources/v3.json");
}

/// A generic test's macro may set its own config (dbt_utils' equal_rowcount
/// sets `fail_calc`); YAML still wins over it.
#[test]
fn a_generic_test_macro_sets_its_own_config_beneath_yaml() {
    let dir = project(&[
        ("warehouse.toml", "[project]\nname = \"p\"\n"),
        ("models/m.sql", "select 1 as id, 0 as diff union all select 2, 0"),
        (
            "tests/generic/no_diff.sql",
            "{% test no_diff(model, column_name) %}{{ config(fail_calc='sum(' ~ column_name ~ ')', severity='warn') }}select {{ column_name }} from {{ model }}{% endtest %}",
        ),
        (
            "models/m.yml",
            "models:\n  - name: m\n    columns:\n      - name: diff\n        data_tests:\n          - no_diff\n          - no_diff:\n              name: strict_no_diff\n              config:\n                fail_calc: count(*)\n                severity: error\n",
        ),
    ]);
    let p = dir.path();
    ok(&run(p, &["run"]));
    let o = run(p, &["test"]);
    let err = stderr(&o);
    // The macro's fail_calc (sum = 0) passes; YAML's count(*) counts 2 rows, as an error.
    assert!(err.contains("PASS no_diff_m_diff"), "{err}");
    assert!(err.contains("FAIL 2 strict_no_diff"), "{err}");
    assert_eq!(o.status.code(), Some(1));
}

/// As dbt 1.11, `dp build` lists exposures as NO-OP (and skips one whose
/// parent failed); `dp run` leaves them out.
#[test]
fn build_lists_exposures_as_no_op() {
    let dir = project(&[
        ("warehouse.toml", "[project]\nname = \"p\"\n"),
        ("models/m.sql", "select 1 as id"),
        ("models/e.yml", "exposures:\n  - name: dash\n    type: dashboard\n    owner: {email: a@b.c}\n    depends_on: [ref('m')]\n"),
    ]);
    let p = dir.path();
    let o = run(p, &["build"]);
    ok(&o);
    let err = stderr(&o);
    assert!(err.contains("NO-OP exposure dash"), "{err}");
    assert!(err.contains("Done. PASS=1 WARN=0 ERROR=0 SKIP=0 NO-OP=1 TOTAL=2"), "{err}");
    let outcomes = outcomes(p);
    let dash = outcomes.as_array().unwrap().iter().find(|r| r["unique_id"] == "exposure.p.dash").unwrap();
    assert_eq!(dash["status"], "no-op");
    let err = stderr(&run(p, &["run"]));
    assert!(err.contains("Done. PASS=1 WARN=0 ERROR=0 SKIP=0 NO-OP=0 TOTAL=1"), "{err}");
}
