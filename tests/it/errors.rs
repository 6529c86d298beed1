//! Bad input: every mistake names the file (and line) and exits 1; CLI
//! usage errors exit 2; nothing panics.

use crate::common::*;

const TOML: &str = "[project]\nname = \"p\"\n";

fn fails(files: &[(&str, &str)], args: &[&str]) -> String {
    let dir = project(files);
    let o = run(dir.path(), args);
    let err = stderr(&o);
    assert_eq!(o.status.code(), Some(1), "expected exit 1, got {:?}\n{err}", o.status.code());
    assert!(!err.contains("panicked"), "{err}");
    err
}

#[test]
fn missing_ref_names_file_line_and_suggests() {
    let err = fails(&[("warehouse.toml", TOML), ("models/orders.sql", "select 1 as id"), ("models/x.sql", "select *\nfrom {{ ref('order') }}")], &["parse"]);
    assert_eq!(err.trim(), "error: models/x.sql:2: ref 'order' was not found\n  hint: did you mean ref('orders')?");
}

#[test]
fn missing_source_names_file() {
    let err = fails(&[("warehouse.toml", TOML), ("models/x.sql", "select * from {{ source('raw', 'nope') }}")], &["parse"]);
    assert!(err.starts_with("error: models/x.sql:1: source 'raw.nope' was not found"), "{err}");
}

#[test]
fn cycle_prints_the_path() {
    let err = fails(
        &[
            ("warehouse.toml", TOML),
            ("models/a.sql", "select * from {{ ref('c') }}"),
            ("models/b.sql", "select * from {{ ref('a') }}"),
            ("models/c.sql", "select * from {{ ref('b') }}"),
        ],
        &["parse"],
    );
    assert!(err.contains("found a cycle: a -> b -> c -> a"), "{err}");
}

#[test]
fn duplicate_model_names_both_paths() {
    let err = fails(&[("warehouse.toml", TOML), ("models/a/m.sql", "select 1"), ("models/b/m.sql", "select 2")], &["parse"]);
    assert!(err.contains("two models with the name 'm':\n  - models/a/m.sql\n  - models/b/m.sql"), "{err}");
}

#[test]
fn malformed_yaml_has_line_and_column() {
    let err =
        fails(&[("warehouse.toml", TOML), ("models/m.sql", "select 1"), ("models/s.yml", "version: 2\nmodels:\n  - name: m\n   description: x\n")], &["parse"]);
    assert!(err.starts_with("error: models/s.yml: invalid YAML:"), "{err}");
    assert!(err.contains("line 4 column"), "{err}");
}

#[test]
fn jinja_syntax_error_shows_line_text() {
    let err = fails(&[("warehouse.toml", TOML), ("models/m.sql", "select 1\n{% if x %}\nselect 2")], &["parse"]);
    assert!(err.contains("models/m.sql:"), "{err}");
    assert!(err.contains("Jinja syntax error"), "{err}");
}

#[test]
fn undefined_var_names_it() {
    let err = fails(&[("warehouse.toml", TOML), ("models/m.sql", "select {{ var('start_date') }}")], &["parse"]);
    assert!(err.contains("models/m.sql:1: required var 'start_date' is not defined (used by model.p.m)"), "{err}");
}

#[test]
fn unknown_generic_test_names_yaml_line() {
    let err = fails(
        &[
            ("warehouse.toml", TOML),
            ("models/m.sql", "select 1 as id"),
            ("models/s.yml", "version: 2\nmodels:\n  - name: m\n    columns:\n      - name: id\n        data_tests: [uniqe]\n"),
        ],
        &["parse"],
    );
    assert!(err.contains("models/s.yml:5: unknown generic test 'uniqe' on column 'id' of 'm'\n  hint: did you mean 'unique'?"), "{err}");
}

#[test]
fn wrong_config_type_in_warehouse_toml() {
    let err = fails(&[("warehouse.toml", "[project]\nname = \"p\"\n[targets.dev]\nthreads = \"four\"\n")], &["parse"]);
    assert!(err.contains("warehouse.toml:"), "{err}");
    assert!(err.contains("threads"), "{err}");
}

#[test]
fn no_project_file() {
    let err = fails(&[("README.md", "x")], &["parse"]);
    assert!(err.contains("no warehouse.toml or dbt_project.yml in"), "{err}");
    assert!(err.contains("hint: run dp inside a project directory, or pass --project-dir"), "{err}");
}

#[test]
fn usage_error_exits_2() {
    let dir = project(&[("warehouse.toml", TOML)]);
    let o = run(dir.path(), &["run", "--no-such-flag"]);
    assert_eq!(o.status.code(), Some(2));
}

#[test]
fn runtime_sql_error_names_model_and_compiled_path() {
    let err = fails(&[("warehouse.toml", TOML), ("models/m.sql", "select missing_col from (select 1 as a) t")], &["run"]);
    assert!(err.contains("in model m (models/m.sql); compiled SQL: target/compiled/p/models/m.sql"), "{err}");
}

#[test]
fn missing_bronze_path_names_source_and_path() {
    let err = fails(
        &[
            ("warehouse.toml", TOML),
            (
                "models/src.yml",
                "version: 2\nsources:\n  - name: raw\n    tables:\n      - name: t\n        meta: {external_location: 'bronze/none/*.parquet'}\n",
            ),
            ("models/m.sql", "select * from {{ source('raw', 't') }}"),
        ],
        &["run"],
    );
    assert!(err.contains("source raw.t: no"), "{err}");
    assert!(err.contains("bronze/none/*.parquet"), "{err}");
}

#[test]
fn seed_ragged_row_names_file_and_line() {
    let err = fails(&[("warehouse.toml", TOML), ("seeds/s.csv", "a,b\n1,2\n3,4,5\n")], &["seed"]);
    assert!(err.contains("seeds/s.csv:3: row has 3 fields, header has 2"), "{err}");
}

/// The errors users meet most, pinned whole (stderr of a failing command,
/// timings and ports masked): each names the file, line or object and ends
/// with one hint.
mod pinned {
    use crate::common::*;

    const TOML: &str = "[project]\nname = \"p\"\n";

    fn stderr_of(files: &[(&str, &str)], args: &[&str], env: &[(&str, &str)]) -> String {
        let dir = project(files);
        let o = dp().current_dir(dir.path()).args(args).envs(env.iter().copied()).output().unwrap();
        let err = stderr(&o);
        assert_eq!(o.status.code(), Some(1), "expected exit 1\n{err}");
        let masked = regex::Regex::new(r"in \d+\.\d+s").unwrap().replace_all(&err, "in [t]s").into_owned();
        regex::Regex::new(r"127\.0\.0\.1:\d+").unwrap().replace_all(&masked, "127.0.0.1:[port]").into_owned()
    }

    #[test]
    fn missing_ref() {
        insta::assert_snapshot!(stderr_of(
            &[("warehouse.toml", TOML), ("models/orders.sql", "select 1 as id"), ("models/x.sql", "select *\nfrom {{ ref('order') }}")],
            &["parse"],
            &[]
        ));
    }

    #[test]
    fn cycle() {
        let files = [("warehouse.toml", TOML), ("models/a.sql", "select * from {{ ref('b') }}"), ("models/b.sql", "select * from {{ ref('a') }}")];
        insta::assert_snapshot!(stderr_of(&files, &["parse"], &[]));
    }

    #[test]
    fn yaml_error() {
        let files = [("warehouse.toml", TOML), ("models/m.sql", "select 1"), ("models/s.yml", "version: 2\nmodels:\n  - name: m\n   description: x\n")];
        insta::assert_snapshot!(stderr_of(&files, &["parse"], &[]));
    }

    #[test]
    fn bad_config() {
        let files = [("warehouse.toml", TOML), ("models/m.sql", "{{ config(materialized='incremental', incremental_strategy='upsert') }}\nselect 1 as id")];
        insta::assert_snapshot!(stderr_of(&files, &["run"], &[]));
    }

    #[test]
    fn bad_selector() {
        let files = [("warehouse.toml", TOML), ("models/m.sql", "select 1")];
        insta::assert_snapshot!(stderr_of(&files, &["run", "-s", "tagg:nightly"], &[]));
    }

    #[test]
    fn sql_error_in_a_model() {
        let files = [("warehouse.toml", TOML), ("models/m.sql", "select missing_col from (select 1 as a) t")];
        insta::assert_snapshot!(stderr_of(&files, &["run"], &[]));
    }

    #[test]
    fn unreachable_postgres() {
        let toml = "[project]\nname = \"p\"\n[targets.dev.postgres]\nhost = \"127.0.0.1\"\nport = 1\nuser = \"u\"\ndbname = \"d\"\nretries = 0\nconnect_timeout_s = 2\n";
        let files = [("warehouse.toml", toml), ("models/m.sql", "{{ config(materialized='table', publish=['postgres']) }}\nselect 1 as id")];
        insta::assert_snapshot!(stderr_of(&files, &["run"], &[("PGPASSWORD", "do-not-print")]));
    }

    #[test]
    fn unreachable_s3() {
        let toml = "[project]\nname = \"p\"\n[targets.dev]\nwarehouse = \"s3://b/warehouse\"\n[targets.dev.s3]\nendpoint = \"http://127.0.0.1:1\"\npath_style = true\nallow_http = true\n";
        let files = [("warehouse.toml", toml), ("models/m.sql", "select 1 as id")];
        let env = [("AWS_ACCESS_KEY_ID", "k"), ("AWS_SECRET_ACCESS_KEY", "do-not-print"), ("AWS_REGION", "us-east-1")];
        insta::assert_snapshot!(stderr_of(&files, &["run"], &env));
    }
}

/// As in dbt, an error raised while compiling one node (here inside `{% if
/// execute %}`) fails that node and skips what depends on it; the rest builds.
#[test]
fn a_compile_error_fails_only_its_node() {
    let dir = project(&[
        ("warehouse.toml", TOML),
        ("models/a.sql", "select 1 as id"),
        ("models/b.sql", "{% if execute %}{{ exceptions.raise_compiler_error('boom in b') }}{% endif %}\nselect 1 as id"),
        ("models/c.sql", "select * from {{ ref('b') }}"),
        ("models/d.sql", "select * from {{ ref('a') }}"),
    ]);
    let o = run(dir.path(), &["run"]);
    let err = stderr(&o);
    assert_eq!(o.status.code(), Some(1), "{err}");
    assert!(err.contains("Done. PASS=2 WARN=0 ERROR=1 SKIP=1 NO-OP=0 TOTAL=4"), "{err}");
    assert!(err.contains("boom in b"), "{err}");
    assert!(err.contains("SKIP relation main.c"), "{err}");
    let rr: serde_json::Value = serde_json::from_str(&std::fs::read_to_string(dir.path().join("target/run_results.json")).unwrap()).unwrap();
    let status: Vec<(String, String)> =
        rr["results"].as_array().unwrap().iter().map(|r| (r["unique_id"].as_str().unwrap().to_string(), r["status"].as_str().unwrap().to_string())).collect();
    let want = [("model.p.a", "success"), ("model.p.b", "error"), ("model.p.d", "success"), ("model.p.c", "skipped")];
    for (u, s) in want {
        assert!(status.contains(&(u.to_string(), s.to_string())), "{u} {s}: {status:?}");
    }
}
