//! `--state DIR` and `state:` selectors: the `state` fixture parsed, its
//! manifest kept as the state, then changed in five ways (a model's body, a
//! macro a model calls, a config, an alias set in dbt_project.yml, a new
//! model); `dp ls` selects what `dbt ls` selected on the same project
//! (golden/ls/NN.txt for each line of golden/ls/SELECTORS.txt, made by
//! scripts/make_dbt_goldens.sh state).

use crate::common::*;
use std::path::Path;

/// Splits a SELECTORS.txt line (plain words, no quoting needed there).
fn words(line: &str) -> Vec<&str> {
    line.split_whitespace().collect()
}

/// `dp ls` of each line of `<golden>/SELECTORS.txt` lists the unique ids
/// of `<golden>/NN.txt` (made by `dbt ls`).
#[track_caller]
fn ls_equals_goldens(p: &Path, golden: &Path) {
    let selectors = std::fs::read_to_string(golden.join("SELECTORS.txt")).unwrap();
    for (i, line) in selectors.lines().filter(|l| !l.trim().is_empty()).enumerate() {
        let mut args = vec!["ls", "--resource-type", "all", "--output", "json", "--output-keys", "unique_id"];
        args.extend(words(line));
        let o = run(p, &args);
        ok(&o);
        let mut got: Vec<String> = stdout(&o)
            .lines()
            .filter(|l| l.starts_with('{'))
            .map(|l| serde_json::from_str::<serde_json::Value>(l).unwrap()["unique_id"].as_str().unwrap().to_string())
            .collect();
        got.sort();
        let want: Vec<String> = std::fs::read_to_string(golden.join(format!("{:02}.txt", i + 1))).unwrap().lines().map(String::from).collect();
        assert_eq!(got, want, "dp ls {line}");
    }
}

#[test]
fn state_modified_selects_what_dbt_selects() {
    let dir = fixture("state");
    let p = dir.path();
    ok(&run(p, &["parse"]));
    std::fs::create_dir_all(p.join("state")).unwrap();
    std::fs::copy(p.join("target/manifest.json"), p.join("state/manifest.json")).unwrap();
    copy_tree(&p.join("changes"), p);
    ls_equals_goldens(p, &repo().join("tests/fixtures/projects/state/golden/ls"));
}

#[test]
fn state_selectors_need_a_state() {
    let dir = fixture("state");
    let o = run(dir.path(), &["ls", "-s", "state:modified"]);
    assert_eq!(o.status.code(), Some(1));
    assert!(
        stderr(&o).contains(
            "invalid selector 'state:modified': a state: selector needs a previous manifest to compare with\n  hint: pass --state DIR (a folder holding the manifest.json of an earlier dp run)"
        ),
        "{}",
        stderr(&o)
    );
    let o = run(dir.path(), &["ls", "-s", "state:changed", "--state", "nowhere"]);
    assert_eq!(o.status.code(), Some(1));
    assert!(stderr(&o).contains("--state: could not read nowhere/manifest.json"), "{}", stderr(&o));
}

#[test]
fn result_selectors_read_the_states_run_results() {
    let dir = project(&[
        ("dbt_project.yml", "name: p\nprofile: p\n"),
        ("models/good.sql", "select 1 as id"),
        ("models/bad.sql", "select no_such_column from {{ ref('good') }}"),
        ("models/after_bad.sql", "select * from {{ ref('bad') }}"),
    ]);
    let p = dir.path();
    assert_eq!(run(p, &["run"]).status.code(), Some(1));
    copy_tree(&p.join("target"), &p.join("state"));
    let ids = |args: &[&str]| -> Vec<String> {
        let o = run(p, args);
        ok(&o);
        stdout(&o).lines().map(String::from).collect()
    };
    assert_eq!(ids(&["ls", "-s", "result:error", "--state", "state"]), ["p.bad"]);
    assert_eq!(ids(&["ls", "-s", "result:skipped", "--state", "state"]), ["p.after_bad"]);
    assert_eq!(ids(&["ls", "-s", "result:error+", "--state", "state"]), ["p.after_bad", "p.bad"]);
    // fixed, then only what failed runs again
    std::fs::write(p.join("models/bad.sql"), "select id from {{ ref('good') }}").unwrap();
    let o = run(p, &["run", "-s", "result:error+", "--state", "state"]);
    ok(&o);
    assert!(stderr(&o).contains("Done. PASS=2 WARN=0 ERROR=0 SKIP=0 NO-OP=0 TOTAL=2"), "{}", stderr(&o));
    let o = run(p, &["ls", "-s", "result:error"]);
    assert_eq!(o.status.code(), Some(1));
    assert!(stderr(&o).contains("a result: selector needs the run_results.json of an earlier run"), "{}", stderr(&o));
}

/// The state is a manifest written by dbt-core 1.11 itself (dbt parse,
/// golden/state/manifest.json); the project is then changed in five ways
/// (a body, a config, a macro a model calls, a contract's column type, a
/// new model) and `dp ls` selects what `dbt ls` selected (golden/ls, made by
/// scripts/make_dbt_goldens.sh dbt_state).
#[test]
fn state_modified_against_a_manifest_written_by_dbt() {
    let dir = fixture("dbt_state");
    let p = dir.path();
    let golden = repo().join("tests/fixtures/projects/dbt_state/golden");
    copy_tree(&golden.join("state"), &p.join("state"));
    copy_tree(&p.join("changes"), p);
    ls_equals_goldens(p, &golden.join("ls"));
    // dp's own manifest carries dbt's checksums and unrendered configs
    ok(&run(p, &["parse"]));
    let ours: serde_json::Value = serde_json::from_slice(&std::fs::read(p.join("target/manifest.json")).unwrap()).unwrap();
    let dbts: serde_json::Value = serde_json::from_slice(&std::fs::read(golden.join("state/manifest.json")).unwrap()).unwrap();
    for uid in ["model.dbt_state.contracted", "model.dbt_state.mart", "seed.dbt_state.lookup", "test.dbt_state.not_null_other_y.bb7b41baf0"] {
        for key in ["checksum", "unrendered_config", "raw_code"] {
            assert_eq!(ours["nodes"][uid].get(key), dbts["nodes"][uid].get(key), "{uid} {key}");
        }
    }
}

/// Unchanged projects compare as unmodified against the manifests dbt wrote
/// for them (the parity goldens of jaffle and advanced: sources, seeds,
/// generic tests with configs and shortened names, macros).
#[test]
fn unchanged_projects_are_unmodified_against_dbts_manifests() {
    for name in ["jaffle", "advanced"] {
        let dir = fixture(name);
        let p = dir.path();
        std::fs::create_dir_all(p.join("state")).unwrap();
        std::fs::copy(repo().join(format!("tests/fixtures/projects/{name}/golden/manifest.json")), p.join("state/manifest.json")).unwrap();
        let o = run(p, &["ls", "-s", "state:modified", "--state", "state", "--resource-type", "all"]);
        ok(&o);
        assert_eq!(stdout(&o), "", "{name}: {}", stderr(&o));
        let o = run(p, &["ls", "-s", "state:unmodified", "--state", "state", "--resource-type", "all"]);
        ok(&o);
        assert!(stdout(&o).lines().count() > 10, "{name}: {}", stdout(&o));
    }
}

/// A seed's body is its file (dbt's sha256 checksum of it).
#[test]
fn a_changed_seed_file_is_modified() {
    let dir = project(&[("dbt_project.yml", "name: p\nprofile: p\n"), ("seeds/a.csv", "k,v\n1,x\n"), ("seeds/b.csv", "k\n1\n")]);
    let p = dir.path();
    ok(&run(p, &["parse"]));
    copy_tree(&p.join("target"), &p.join("state"));
    let m: serde_json::Value = serde_json::from_slice(&std::fs::read(p.join("target/manifest.json")).unwrap()).unwrap();
    // sha256 of the stripped file, as dbt-core 1.11 writes it
    assert_eq!(
        m["nodes"]["seed.p.b"]["checksum"],
        serde_json::json!({"name": "sha256", "checksum": "82084b9555392b9dbad6e5e9c7eaab17982715b37d4efeef8c0109d32e0aee52"})
    );
    std::fs::write(p.join("seeds/a.csv"), "k,v\n1,y\n").unwrap();
    let o = run(p, &["ls", "-s", "state:modified.body", "--state", "state"]);
    ok(&o);
    assert_eq!(stdout(&o), "p.a\n");
}
