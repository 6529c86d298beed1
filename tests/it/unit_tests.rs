//! Unit tests (dbt 1.8 `unit_tests:`): fixtures instead of real inputs,
//! dbt's unique_ids and outcomes (pass / fail with failures 1 and a row
//! diff), `dp build` running them before their model and skipping the model
//! when one fails, errors that name the test, the model and the input.
//! Parity with dbt-duckdb on the test-suite fixture is in `test_suite.rs`.

use crate::common::*;

const PROJECT: &[(&str, &str)] = &[
    ("warehouse.toml", "[project]\nname = \"p\"\n[models]\nmaterialized = \"table\"\n"),
    ("seeds/people.csv", "id,name,born\n1,ann,2000-01-02\n2,bob,1990-05-06\n"),
    (
        "models/adults.sql",
        "select id + 1 as next_id, upper(name) as name, born from {{ ref('people') }} where born < date '{{ var(\"cutoff\", \"2001-01-01\") }}'",
    ),
    ("models/names.sql", "select name from {{ ref('adults') }}"),
    (
        "models/unit.yml",
        r#"unit_tests:
  - name: adults_pass
    model: adults
    given:
      - input: ref('people')
        format: csv
        rows: |
          id,name,born
          1,cy,1980-01-01
          2,di,2010-01-01
    expect:
      rows:
        - {next_id: 2, name: CY}
  - name: adults_cutoff_var
    model: adults
    overrides:
      vars: {cutoff: "2020-01-01"}
    given:
      - input: ref('people')
        rows:
          - {id: 1, name: cy, born: "1980-01-01"}
          - {id: 2, name: di, born: "2010-01-01"}
    expect:
      rows:
        - {next_id: 2, name: CY}
"#,
    ),
];

fn results(p: &std::path::Path) -> serde_json::Value {
    serde_json::from_slice(&std::fs::read(p.join("target/run_results.json")).unwrap()).unwrap()
}

#[test]
fn unit_tests_pass_and_fail_with_a_row_diff_without_building_upstream() {
    let dir = project(PROJECT);
    let p = dir.path();
    // nothing is built: fixtures keep their literal types
    let o = run(p, &["test", "-s", "test_type:unit", "--threads", "1"]);
    assert_eq!(o.status.code(), Some(1), "{}", stderr(&o));
    let err = stderr(&o);
    assert!(err.contains("START unit_test adults::adults_pass"), "{err}");
    assert!(err.contains("PASS adults::adults_pass"), "{err}");
    assert!(err.contains("FAIL 1 adults::adults_cutoff_var"), "{err}");
    assert!(
        err.contains(
            "Failure in unit_test adults_cutoff_var (models/unit.yml)\n\nactual differs from expected:\n\n@@  | next_id | name\n    | 2       | CY\n+++ | 3       | DI\n\n  compiled code at target/compiled/p/models/unit.yml/models/adults_cutoff_var.sql\n"
        ),
        "{err}"
    );
    assert!(err.contains("Done. PASS=1 WARN=0 ERROR=1 SKIP=0 NO-OP=0 TOTAL=2"), "{err}");
    let compiled = std::fs::read_to_string(p.join("target/compiled/p/models/unit.yml/models/adults_cutoff_var.sql")).unwrap();
    assert!(compiled.contains("with __dbt__cte__people as ("), "{compiled}");
    assert!(compiled.contains("date '2020-01-01'"), "{compiled}");
    let rr = results(p);
    let r: Vec<(String, String, u64)> = rr["results"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| (r["unique_id"].as_str().unwrap().to_string(), r["status"].as_str().unwrap().to_string(), r["failures"].as_u64().unwrap()))
        .collect();
    assert_eq!(
        r,
        vec![
            ("unit_test.p.adults.adults_cutoff_var".to_string(), "fail".to_string(), 1),
            ("unit_test.p.adults.adults_pass".to_string(), "pass".to_string(), 0)
        ]
    );
    // selecting data tests only leaves the unit tests out
    let o = run(p, &["test", "-s", "test_type:data"]);
    assert!(stderr(&o).contains("nothing to do"), "{}", stderr(&o));
}

#[test]
fn fixtures_are_typed_like_the_built_upstream() {
    let dir = project(PROJECT);
    let p = dir.path();
    ok(&run(p, &["seed"]));
    // csv values are strings: `id + 1` and the date comparison work because the
    // fixture is cast to the seed's types (bigint, date)
    let o = run(p, &["test", "-s", "adults_pass"]);
    ok(&o);
    assert!(stderr(&o).contains("PASS adults::adults_pass"), "{}", stderr(&o));
    let o = run(p, &["test", "-s", "adults_cutoff_var"]);
    assert!(stderr(&o).contains("+++ | 3       | DI"), "{}", stderr(&o));
}

#[test]
fn build_runs_unit_tests_before_their_model_and_skips_it_on_failure() {
    let dir = project(PROJECT);
    let p = dir.path();
    let o = run(p, &["build", "--threads", "1"]);
    assert_eq!(o.status.code(), Some(1), "{}", stderr(&o));
    let err = stderr(&o);
    let unit = err.find("FAIL 1 adults::adults_cutoff_var").expect(&err);
    let seed = err.find("OK loaded seed file main.people").expect(&err);
    assert!(seed < unit, "{err}");
    // numbered as dbt does: the model's unit tests right before it
    assert!(err.contains("2 of 5 START unit_test adults::adults_cutoff_var\n"), "{err}");
    assert!(err.contains("3 of 5 START unit_test adults::adults_pass\n"), "{err}");
    assert!(err.contains("SKIP relation main.adults"), "{err}");
    assert!(err.contains("SKIP relation main.names"), "{err}");
    assert!(err.contains("Done. PASS=2 WARN=0 ERROR=1 SKIP=2 NO-OP=0 TOTAL=5"), "{err}");
}

#[test]
fn unit_test_errors_name_the_test_the_model_and_the_input() {
    let dir = project(&[
        ("warehouse.toml", "[project]\nname = \"p\"\n"),
        ("models/a.sql", "select 1 as x"),
        ("models/b.sql", "select x from {{ ref('a') }}"),
        (
            "models/unit.yml",
            "unit_tests:\n  - name: no_input\n    model: b\n    given: []\n    expect:\n      rows: [{x: 1}]\n  - name: bad_column\n    model: b\n    given:\n      - input: ref('a')\n        rows: [{x: 1}]\n    expect:\n      rows: [{y: 1}]\n",
        ),
    ]);
    let o = run(dir.path(), &["test"]);
    assert_eq!(o.status.code(), Some(1));
    let err = stderr(&o);
    assert!(err.contains("unit test 'no_input': model 'b' uses ref('a'), which has no fixture"), "{err}");
    assert!(err.contains("hint: add `- input: ref('a')` with its rows"), "{err}");
    assert!(err.contains("unit test 'bad_column': invalid column name 'y' in the expected rows\n  accepted columns for model 'b' are: ['x']"), "{err}");
    assert!(!err.contains("panicked"), "{err}");
}

#[test]
fn unit_tests_are_in_the_manifest() {
    let dir = project(PROJECT);
    ok(&run(dir.path(), &["parse"]));
    let m: serde_json::Value = serde_json::from_slice(&std::fs::read(dir.path().join("target/manifest.json")).unwrap()).unwrap();
    let u = &m["unit_tests"]["unit_test.p.adults.adults_cutoff_var"];
    assert_eq!(u["model"], "adults");
    assert_eq!(u["overrides"]["vars"]["cutoff"], "2020-01-01");
}

#[test]
fn fixture_files_and_sql_expectations() {
    let dir = project(&[
        ("warehouse.toml", "[project]\nname = \"p\"\n"),
        ("models/a.sql", "select 1 as id, 'x' as tag"),
        ("models/b.sql", "select id * 10 as id10, tag from {{ ref('a') }}"),
        ("tests/fixtures/a_rows.csv", "id,tag\n1,p\n2,\n"),
        (
            "models/unit.yml",
            "unit_tests:\n  - name: from_file\n    model: b\n    given:\n      - input: ref('a')\n        format: csv\n        fixture: a_rows\n    expect:\n      format: sql\n      rows: \"select 20 as id10, null as tag union all select 10, 'p'\"\n",
        ),
    ]);
    let p = dir.path();
    ok(&run(p, &["run"]));
    let o = run(p, &["test"]);
    ok(&o);
    assert!(stderr(&o).contains("PASS b::from_file"), "{}", stderr(&o));
}

#[test]
fn macro_overrides_take_bare_and_package_qualified_names() {
    let dir = project(&[
        ("warehouse.toml", "[project]\nname = \"p\"\n"),
        ("macros/bounds.sql", "{% macro lo() %}1{% endmacro %}{% macro hi() %}2{% endmacro %}"),
        ("models/src.sql", "select 1 as id"),
        ("models/m.sql", "select id, {{ p.lo() }} as lo, {{ hi() }} as hi from {{ ref('src') }}"),
        (
            "models/unit.yml",
            "unit_tests:\n  - name: both\n    model: m\n    overrides:\n      macros:\n        p.lo: 5\n        hi: 7\n    given:\n      - input: ref('src')\n        rows: [{id: 1}]\n    expect:\n      rows: [{id: 1, lo: 5, hi: 7}]\n",
        ),
    ]);
    let o = run(dir.path(), &["test", "-s", "m"]);
    ok(&o);
    assert!(stderr(&o).contains("PASS m::both"), "{}", stderr(&o));
}
