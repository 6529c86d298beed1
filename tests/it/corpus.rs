//! dbt parity on projects nobody here wrote: the integration-test projects
//! of dbt-utils, dbt-project-evaluator, dbt-expectations and
//! dbt-audit-helper (`../shared/corpus`, its README). Each is copied to a
//! scratch folder with its packages laid as `dbt deps` would, and built
//! with `dp build` alone, as the reference run was; the nodes that pass under dbt-duckdb 1.11 (the corpus's
//! `expected/*_expected_status.json`) and also pass under dp are pinned as a
//! snapshot per project, so a regression fails and an improvement shows up
//! as a snapshot change (`INSTA_UPDATE=always` to accept it).
//! `scripts/corpus.sh` prints the same counts with the top failure causes.
//!
//! Beyond statuses, every table (seed, model, snapshot) that dbt-duckdb
//! builds the same way twice is compared row for row with dp's: the goldens
//! in `tests/fixtures/corpus_rows/<project>/` come from
//! `scripts/make_corpus_goldens.sh` (real dbt-core 1.11 + dbt-duckdb 1.11).
//! The tables equal to dbt-duckdb's are pinned in the same snapshot.

use crate::common::*;
use std::path::{Path, PathBuf};

pub(crate) fn corpus() -> PathBuf {
    // ../shared/corpus beside the main checkout, ../../shared/corpus from a worktree under it
    let c = ["../shared/corpus", "../../shared/corpus"].iter().map(|p| repo().join(p)).find(|c| c.is_dir());
    c.unwrap_or_else(|| {
        panic!("{} is missing: the corpus comes with the workplace's shared/ folder beside the checkout", repo().join("../shared/corpus").display())
    })
}

/// Copies `from` into `to`, leaving out the folder named `skip`.
pub(crate) fn copy_without(from: &Path, to: &Path, skip: &str) {
    std::fs::create_dir_all(to).unwrap();
    for e in std::fs::read_dir(from).unwrap().flatten() {
        let p = e.path();
        if e.file_name() == skip {
            continue;
        }
        if p.is_dir() {
            copy_without(&p, &to.join(e.file_name()), "");
        } else {
            std::fs::copy(&p, to.join(e.file_name())).unwrap();
        }
    }
}

/// The packages an integration project needs: (name under
/// `dbt_packages/`, folder in the corpus), as `scripts/corpus_lib.sh`'s
/// `packages_for` lists them.
fn packages(project: &str) -> &'static [(&'static str, &'static str)] {
    match project {
        "dbt_utils" => &[("dbt_utils", "dbt_utils")],
        "dbt_expectations" => &[("dbt_expectations", "dbt_expectations"), ("dbt_date", "dbt_date")],
        "dbt_audit_helper" => &[("audit_helper", "dbt_audit_helper"), ("dbt_utils", "dbt_utils")],
        "dbt_project_evaluator" => &[
            ("dbt_project_evaluator", "dbt_project_evaluator"),
            ("exclude_package", "dbt_project_evaluator/integration_tests/exclude_package"),
            ("dbt_utils", "dbt_utils"),
        ],
        _ => panic!("{project} is not a corpus project"),
    }
}

/// A scratch copy of one integration project (the returned folder, inside
/// the returned temporary directory) with its packages laid out as `dbt
/// deps` would.
pub(crate) fn lay_out(project: &str) -> (tempfile::TempDir, PathBuf) {
    let c = corpus();
    let dir = tempfile::tempdir().unwrap();
    let p = dir.path().join(project);
    copy_without(&c.join(project).join("integration_tests"), &p, "");
    for (name, from) in packages(project) {
        copy_without(&c.join(from), &p.join("dbt_packages").join(name), "integration_tests");
    }
    (dir, p)
}

/// Builds one integration project; returns "passing under dp / under
/// dbt-duckdb" and the sorted unique ids passing under both.
fn build(project: &str) -> String {
    let c = corpus();
    let (_dir, p) = lay_out(project);
    let _ = run(&p, &["build", "--threads", "1"]);
    let expected: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(c.join(format!("expected/{project}_expected_status.json"))).unwrap()).unwrap();
    let rr: serde_json::Value = std::fs::read_to_string(p.join("target/run_results.json")).ok().and_then(|t| serde_json::from_str(&t).ok()).unwrap_or_default();
    let ok = |s: &str| matches!(s, "success" | "pass" | "no-op");
    let got: std::collections::HashMap<&str, &str> =
        rr["results"].as_array().into_iter().flatten().filter_map(|r| Some((r["unique_id"].as_str()?, r["status"].as_str()?))).collect();
    let reference: Vec<&str> = expected.as_object().unwrap().iter().filter(|(_, s)| s.as_str().is_some_and(ok)).map(|(u, _)| u.as_str()).collect();
    let reference: Vec<&str> = reference.into_iter().filter(|u| !by_chance(u)).collect();
    let mut both: Vec<&str> = reference.iter().copied().filter(|u| got.get(u).is_some_and(|s| ok(s))).collect();
    both.sort();
    let (equal, differ) = compare_rows(project, &p, &got);
    format!(
        "{project}: {} of the {} nodes passing under dbt-duckdb pass under dp\n{}\n\n{} of the {} tables equal dbt-duckdb's rows\n{}\n",
        both.len(),
        reference.len(),
        both.join("\n"),
        equal.len(),
        equal.len() + differ.len(),
        equal.join("\n")
    )
}

/// One cell as compared: NULL and '' alike (dbt's export writes NULL as an
/// empty field); numbers by value to 7 significant digits (so `16` equals
/// `16.0`, `12.50` equals `12.5`, and a 4-byte float equals its widened
/// Python repr); timestamps with a space before the time and without a UTC
/// offset of zero; lists as `[a, b]` (Python prints `['a', 'b']`).
fn canonical(cell: &str) -> String {
    if let Ok(x) = cell.parse::<f64>()
        && x.is_finite()
        && !cell.starts_with('+')
    {
        return format!("{x:.6e}");
    }
    let b = cell.as_bytes();
    if b.len() > 10 && b[4] == b'-' && b[7] == b'-' && (b[10] == b'T' || b[10] == b' ') && b[..4].iter().all(u8::is_ascii_digit) {
        let t = cell.strip_suffix("+00:00").unwrap_or(cell);
        return format!("{} {}", &t[..10], &t[11..]);
    }
    if cell.starts_with("['") && cell.ends_with("']") {
        return format!("[{}]", cell[2..cell.len() - 2].replace("', '", ", "));
    }
    cell.to_string()
}

fn table_of(text: &str) -> (Vec<String>, Vec<Vec<String>>) {
    let mut r = csv::ReaderBuilder::new().has_headers(true).flexible(true).from_reader(text.as_bytes());
    let header = r.headers().map(|h| h.iter().map(|c| c.to_lowercase()).collect()).unwrap_or_default();
    let mut rows: Vec<Vec<String>> = r.records().flatten().map(|rec| rec.iter().map(canonical).collect()).collect();
    rows.sort();
    (header, rows)
}

/// Compares dp's tables with the project's row goldens; returns the unique
/// ids whose rows are equal and those that differ (with why, for the log).
fn compare_rows(project: &str, dir: &Path, status: &std::collections::HashMap<&str, &str>) -> (Vec<String>, Vec<String>) {
    let golden_dir = repo().join("tests/fixtures/corpus_rows").join(project);
    let manifest: serde_json::Value =
        std::fs::read_to_string(dir.join("target/manifest.json")).ok().and_then(|t| serde_json::from_str(&t).ok()).unwrap_or_default();
    let mut goldens: Vec<(String, String)> = std::fs::read_dir(&golden_dir)
        .unwrap_or_else(|e| panic!("{}: {e}; make them with scripts/make_corpus_goldens.sh", golden_dir.display()))
        .flatten()
        .filter_map(|e| {
            let name = e.file_name().to_string_lossy().into_owned();
            let uid = name.strip_suffix(".csv")?.to_string();
            Some((uid, std::fs::read_to_string(e.path()).unwrap()))
        })
        .collect();
    goldens.retain(|(uid, _)| !table_left_out(uid));
    goldens.sort();
    let (mut equal, mut differ) = (Vec::new(), Vec::new());
    for (uid, golden) in goldens {
        let node = &manifest["nodes"][&uid];
        if status.get(uid.as_str()).is_none_or(|s| *s != "success") || node.is_null() {
            differ.push(format!("{uid}: not built"));
            continue;
        }
        let (schema, alias) = (node["schema"].as_str().unwrap_or_default(), node["alias"].as_str().unwrap_or_default());
        let o = run(dir, &["sql", "--format", "csv", "-e", &format!("select * from \"{schema}\".\"{alias}\"")]);
        if !o.status.success() {
            differ.push(format!("{uid}: {}", stderr(&o).lines().next().unwrap_or_default()));
            continue;
        }
        let (gh, gr) = table_of(&golden);
        let (dh, dr) = table_of(&stdout(&o));
        if gh != dh {
            differ.push(format!("{uid}: columns {dh:?}, dbt-duckdb {gh:?}"));
        } else if gr != dr {
            let first = dr.iter().zip(gr.iter()).find(|(a, b)| a != b);
            differ.push(format!("{uid}: {} rows, dbt-duckdb {}; first difference {first:?}", dr.len(), gr.len()));
        } else {
            equal.push(uid);
        }
    }
    for d in &differ {
        eprintln!("{project}: table differs: {d}");
    }
    (equal, differ)
}

/// Nodes that pass or fail by chance, left out of the pinned sets:
/// dbt_expectations' tests over `timeseries_data.row_value`, which is
/// `100 * abs(rand())` (under dbt-duckdb too). (dbt_project_evaluator's
/// facts joined with `listagg` order the joined names on a `duckdb` target,
/// as dp's `target.type` is: they are pinned.)
fn by_chance(unique_id: &str) -> bool {
    unique_id.starts_with("test.dbt_expectations_integration_tests.") && unique_id.contains("row_value")
}

/// Tables left out of the row comparison: `data_nullcheck_table`, whose CSV
/// cells are `''`: dbt-duckdb loads seeds with DuckDB's `COPY`, whose
/// sniffer takes `'` for the quote character and reads them as empty
/// strings; dbt's other adapters (agate) and dp keep the two characters.
fn table_left_out(unique_id: &str) -> bool {
    unique_id.ends_with("_integration_tests.data_nullcheck_table") || unique_id.ends_with("_integration_tests.test_nullcheck_table")
}

#[test]
#[ignore = "needs ../shared/corpus: run by scripts/test.sh"]
fn dbt_utils_integration_tests() {
    insta::assert_snapshot!(build("dbt_utils"));
}

#[test]
#[ignore = "needs ../shared/corpus: run by scripts/test.sh"]
fn dbt_expectations_integration_tests() {
    insta::assert_snapshot!(build("dbt_expectations"));
}

#[test]
#[ignore = "needs ../shared/corpus: run by scripts/test.sh"]
fn dbt_audit_helper_integration_tests() {
    insta::assert_snapshot!(build("dbt_audit_helper"));
}

#[test]
#[ignore = "needs ../shared/corpus: run by scripts/test.sh"]
fn dbt_project_evaluator_integration_tests() {
    insta::assert_snapshot!(build("dbt_project_evaluator"));
}
