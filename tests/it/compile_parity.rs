//! `dp compile` produces the SQL dbt-core 1.11 produces for the same
//! project (goldens made with pip dbt-duckdb, see scripts/make_dbt_goldens.sh),
//! relations quoted as dbt quotes them (`"dp"."main"."orders"`), apart from
//! two names: dbt-duckdb's database is its file's name (`"jaffle"`) where dp's
//! is the target's (`"dp"`), and it reads external sources as
//! `'path/file.csv'` where dp registers them as relations.

use crate::common::*;
use std::path::Path;

fn normalize_golden(project: &str, sql: &str) -> String {
    let out = sql.replace(&format!("\"{project}\"."), "\"dp\".");
    out.replace("'data/events.csv'", "\"dp\".\"raw\".\"events\"").replace("'data/users.csv'", "\"dp\".\"raw\".\"users\"")
}

fn files(dir: &Path) -> Vec<String> {
    let mut out = vec![];
    for e in walkdir::WalkDir::new(dir) {
        let e = e.unwrap();
        if e.file_type().is_file() {
            out.push(e.path().strip_prefix(dir).unwrap().to_string_lossy().into_owned());
        }
    }
    out.sort();
    out
}

fn check(project: &str, golden_dir: &str, vars: Option<&str>, seed_warehouse: bool) {
    let dir = fixture(project);
    if seed_warehouse {
        // is_incremental() is true only when the table exists.
        let mut args = vec!["run", "-s", "fct_events+"];
        if let Some(v) = vars {
            args.extend(["--vars", v]);
        }
        let o = run(dir.path(), &["run", "--vars", "{cutoff: 2024-01-15}"]);
        ok(&o);
        let _ = args;
    }
    let mut args = vec!["compile"];
    if let Some(v) = vars {
        args.extend(["--vars", v]);
    }
    ok(&run(dir.path(), &args));
    let golden = repo().join("tests/fixtures/projects").join(project).join("golden").join(golden_dir);
    let ours = dir.path().join("target/compiled").join(project);
    let expected = files(&golden);
    assert_eq!(files(&ours), expected, "compiled file set differs for {project}");
    for f in expected {
        let want = normalize_golden(project, &std::fs::read_to_string(golden.join(&f)).unwrap());
        let got = std::fs::read_to_string(ours.join(&f)).unwrap();
        assert_eq!(got, want, "{project}: compiled {f} differs from dbt's");
    }
}

#[test]
fn jaffle_compiles_like_dbt() {
    check("jaffle", "compiled", None, false);
}

#[test]
fn advanced_compiles_like_dbt() {
    check("advanced", "compiled", None, false);
}

#[test]
fn advanced_incremental_compiles_like_dbt() {
    check("advanced", "compiled_incremental", Some("{cutoff: 2024-01-31}"), true);
}

/// dbt's quote policy: the project's `quoting:` for refs, `this` and
/// `api.Relation.create`; a source's own `quoting:` over dbt-duckdb's
/// default, not the project's. The expected text is what dbt-core 1.11 +
/// dbt-duckdb 1.11 compile from the same files (database `dp`).
#[test]
fn relations_are_quoted_as_dbt_quotes_them() {
    let dir = project(&[
        ("dbt_project.yml", "name: q\nversion: '1.0'\nprofile: q\nquoting:\n  identifier: false\n"),
        ("seeds/s.csv", "id,Name\n1,a\n"),
        (
            "models/m.sql",
            "select * from {{ ref('s') }} -- {{ this }} | {{ this.include(database=false) }} | {{ adapter.quote('X') }} | {{ api.Relation.create(schema='a', identifier='B') }} | {{ source('raw','t') }}\n",
        ),
        ("models/m2.sql", "{{ config(quoting={'identifier': false}) }}\nselect 1 as x -- {{ this }} {{ source('qq','T2') }}\n"),
        (
            "models/src.yml",
            "sources:\n  - name: raw\n    schema: main\n    tables: [{name: t}]\n  - name: qq\n    quoting: {identifier: false}\n    tables: [{name: T2}]\n",
        ),
    ]);
    ok(&run(dir.path(), &["compile"]));
    let compiled = |m: &str| std::fs::read_to_string(dir.path().join(format!("target/compiled/q/models/{m}.sql"))).unwrap();
    assert_eq!(compiled("m"), r#"select * from "dp"."main".s -- "dp"."main".m | "main".m | "X" | "a".B | "dp"."main"."t""#);
    assert_eq!(compiled("m2"), "\nselect 1 as x -- \"dp\".\"main\".m2 \"dp\".\"qq\".T2");
    let m: serde_json::Value = serde_json::from_slice(&std::fs::read(dir.path().join("target/manifest.json")).unwrap()).unwrap();
    assert_eq!(m["nodes"]["seed.q.s"]["relation_name"], r#""dp"."main".s"#);
    assert_eq!(m["sources"]["source.q.qq.T2"]["relation_name"], r#""dp"."qq".T2"#);
    assert_eq!(m["sources"]["source.q.qq.T2"]["quoting"], serde_json::json!({"database": null, "schema": null, "identifier": false, "column": null}));
}
