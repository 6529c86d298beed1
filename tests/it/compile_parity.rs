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
