//! The partial-parse and render caches (src/project/cache.rs,
//! src/compile/cache.rs): a second compile reuses them, and after every kind
//! of edit (model, macro, YAML, var, env var, file added or removed) the
//! compiled SQL and the manifest's nodes equal a cold compile's.

use crate::common::*;
use std::collections::BTreeMap;
use std::path::Path;

const ENV: &str = "DP_TEST_PARTIAL_PARSE_REGION";

fn files() -> Vec<(&'static str, &'static str)> {
    vec![
        ("dbt_project.yml", "name: p\nversion: '1.0'\nconfig-version: 2\nprofile: p\nvars:\n  rate: 2\nmodels:\n  p:\n    +materialized: view\n"),
        ("models/orders.sql", "select 1 as id, {{ cents('100') }} as amount, '{{ env_var('DP_TEST_PARTIAL_PARSE_REGION', 'eu') }}' as region"),
        ("models/totals.sql", "select id, amount * {{ var('rate') }} as total from {{ ref('orders') }}"),
        ("macros/cents.sql", "{% macro cents(x) %}({{ x }} / 100.0){% endmacro %}"),
        (
            "models/schema.yml",
            "version: 2\nmodels:\n  - name: orders\n    description: Orders.\n    columns:\n      - name: id\n        data_tests: [unique, not_null]\n  - name: totals\n    description: Totals.\n",
        ),
    ]
}

/// Every compiled file (path → SQL) and the manifest's nodes, sources and
/// macros (with per-invocation fields removed).
fn outputs(dir: &Path) -> (BTreeMap<String, String>, serde_json::Value) {
    let mut sql = BTreeMap::new();
    let base = dir.join("target/compiled");
    for e in walk(&base) {
        sql.insert(e.strip_prefix(&base).unwrap().display().to_string(), std::fs::read_to_string(&e).unwrap());
    }
    let m: serde_json::Value = serde_json::from_slice(&std::fs::read(dir.join("target/manifest.json")).unwrap()).unwrap();
    let mut keep = serde_json::json!({"nodes": m["nodes"], "sources": m["sources"], "macros": m["macros"], "parent_map": m["parent_map"]});
    strip(&mut keep);
    (sql, keep)
}

fn walk(dir: &Path) -> Vec<std::path::PathBuf> {
    let mut out = vec![];
    for e in std::fs::read_dir(dir).into_iter().flatten().flatten() {
        let p = e.path();
        if p.is_dir() { out.extend(walk(&p)) } else { out.push(p) }
    }
    out
}

fn strip(v: &mut serde_json::Value) {
    match v {
        serde_json::Value::Object(m) => {
            m.remove("created_at");
            m.values_mut().for_each(strip);
        }
        serde_json::Value::Array(a) => a.iter_mut().for_each(strip),
        _ => {}
    }
}

fn compile(dir: &Path, extra: &[&str], env: Option<&str>) -> String {
    let mut c = dp();
    c.current_dir(dir).env("DP_LOG", "dp::project::cache=debug,dp::cli::context=debug").args(["compile"]).args(extra);
    match env {
        Some(v) => c.env(ENV, v),
        None => c.env_remove(ENV),
    };
    let o = c.output().unwrap();
    ok(&o);
    stderr(&o)
}

/// A warm compile in `dir` against a cold one (a copy of the project
/// without target/, `--no-partial-parse`): same SQL, same manifest nodes.
/// Returns the warm compile's log and compiled SQL.
#[track_caller]
fn warm_equals_cold(dir: &Path, extra: &[&str], env: Option<&str>) -> (String, BTreeMap<String, String>) {
    let log = compile(dir, extra, env);
    let warm = outputs(dir);
    let cold_dir = tempfile::tempdir().unwrap();
    copy_tree(dir, cold_dir.path());
    let mut args = vec!["--no-partial-parse"];
    args.extend(extra);
    compile(cold_dir.path(), &args, env);
    assert!(!cold_dir.path().join("target/partial_parse.json").exists(), "--no-partial-parse wrote a cache");
    let cold = outputs(cold_dir.path());
    // Files of nodes that no longer exist stay in target/compiled/ (as with dbt).
    let warm_sql: BTreeMap<String, String> = warm.0.iter().filter(|(k, _)| cold.0.contains_key(*k)).map(|(k, v)| (k.clone(), v.clone())).collect();
    assert_eq!(warm_sql, cold.0, "warm compile's SQL differs from a cold compile's\nlog:\n{log}");
    assert_eq!(warm.1, cold.1, "warm compile's manifest differs from a cold compile's");
    (log, warm_sql)
}

fn write(dir: &Path, file: &str, text: &str) {
    std::fs::create_dir_all(dir.join(file).parent().unwrap()).unwrap();
    std::fs::write(dir.join(file), text).unwrap();
}

#[test]
fn partial_parse_cache_never_serves_stale_sql() {
    let d = project(&files());
    let p = d.path();
    let totals = "p/models/totals.sql";
    let orders = "p/models/orders.sql";

    let log = compile(p, &[], None);
    assert!(log.contains("partial parse: full parse (no cache)"), "{log}");
    assert!(p.join("target/partial_parse.json").is_file() && p.join("target/render_cache.json").is_file());

    // Nothing changed: both caches are used.
    let (log, sql) = warm_equals_cold(p, &[], None);
    assert!(log.contains("partial parse: cache hit"), "{log}");
    assert!(log.contains("render cache: 4 nodes reused"), "{log}");
    assert_eq!(sql[totals], r#"select id, amount * 2 as total from "dp"."main"."orders""#);

    // A model edited.
    write(p, "models/totals.sql", "select id, amount * {{ var('rate') }} + 1 as total from {{ ref('orders') }}");
    let (log, sql) = warm_equals_cold(p, &[], None);
    assert!(log.contains("partial parse: cache hit, re-parsed models/totals.sql"), "{log}");
    assert!(log.contains("render cache: 3 nodes reused"), "{log}");
    assert!(sql[totals].contains("amount * 2 + 1"), "{}", sql[totals]);

    // A model's refs edited (re-parsed alone: the manifest's parents follow).
    write(p, "models/other.sql", "select 2 as id");
    warm_equals_cold(p, &[], None);
    write(p, "models/totals.sql", "select o.id, amount * {{ var('rate') }} + 1 as total from {{ ref('orders') }} o join {{ ref('other') }} x on o.id = x.id");
    let (log, sql) = warm_equals_cold(p, &[], None);
    assert!(log.contains("re-parsed models/totals.sql"), "{log}");
    assert!(sql[totals].contains(r#"join "dp"."main"."other" x"#), "{}", sql[totals]);
    let m: serde_json::Value = serde_json::from_slice(&std::fs::read(p.join("target/manifest.json")).unwrap()).unwrap();
    assert_eq!(m["parent_map"]["model.p.totals"], serde_json::json!(["model.p.orders", "model.p.other"]));
    write(p, "models/totals.sql", "select id, amount * {{ var('rate') }} + 1 as total from {{ ref('orders') }}");
    warm_equals_cold(p, &[], None);

    // A model's config() edited: parsed in full.
    write(p, "models/other.sql", "{{ config(materialized='table') }}\nselect 2 as id");
    let (log, _) = warm_equals_cold(p, &[], None);
    assert!(log.contains("full parse (models/other.sql changed)"), "{log}");
    let m: serde_json::Value = serde_json::from_slice(&std::fs::read(p.join("target/manifest.json")).unwrap()).unwrap();
    assert_eq!(m["nodes"]["model.p.other"]["config"]["materialized"], "table");
    std::fs::remove_file(p.join("models/other.sql")).unwrap();

    // A macro edited.
    write(p, "macros/cents.sql", "{% macro cents(x) %}cast({{ x }} as double) / 100{% endmacro %}");
    let (_, sql) = warm_equals_cold(p, &[], None);
    assert!(sql[orders].contains("cast(100 as double) / 100 as amount"), "{}", sql[orders]);

    // A YAML description edited (and a test added).
    let yaml = std::fs::read_to_string(p.join("models/schema.yml")).unwrap().replace("Totals.", "All totals.").replace("[unique, not_null]", "[unique]");
    write(p, "models/schema.yml", &yaml);
    warm_equals_cold(p, &[], None);
    let m: serde_json::Value = serde_json::from_slice(&std::fs::read(p.join("target/manifest.json")).unwrap()).unwrap();
    assert_eq!(m["nodes"]["model.p.totals"]["description"], "All totals.");
    assert_eq!(m["nodes"].as_object().unwrap().keys().filter(|k| k.starts_with("test.")).count(), 1);

    // A var from the command line, then back to the project's.
    let (_, sql) = warm_equals_cold(p, &["--vars", "{rate: 3}"], None);
    assert!(sql[totals].contains("amount * 3 + 1"), "{}", sql[totals]);
    let (_, sql) = warm_equals_cold(p, &[], None);
    assert!(sql[totals].contains("amount * 2 + 1"), "{}", sql[totals]);

    // A var in dbt_project.yml.
    let project_yml = std::fs::read_to_string(p.join("dbt_project.yml")).unwrap().replace("rate: 2", "rate: 5");
    write(p, "dbt_project.yml", &project_yml);
    let (_, sql) = warm_equals_cold(p, &[], None);
    assert!(sql[totals].contains("amount * 5 + 1"), "{}", sql[totals]);

    // An env var read by env_var(): set, changed, unset.
    let (log, sql) = warm_equals_cold(p, &[], Some("us"));
    assert!(log.contains(&format!("env var {ENV}")), "{log}");
    assert!(sql[orders].contains("'us' as region"), "{}", sql[orders]);
    let (_, sql) = warm_equals_cold(p, &[], Some("apac"));
    assert!(sql[orders].contains("'apac' as region"), "{}", sql[orders]);
    let (_, sql) = warm_equals_cold(p, &[], None);
    assert!(sql[orders].contains("'eu' as region"), "{}", sql[orders]);

    // A model added, then removed.
    write(p, "models/extra.sql", "select * from {{ ref('totals') }}");
    let (log, sql) = warm_equals_cold(p, &[], None);
    assert!(log.contains("files added or removed under models"), "{log}");
    assert!(sql.contains_key("p/models/extra.sql"));
    std::fs::remove_file(p.join("models/extra.sql")).unwrap();
    warm_equals_cold(p, &[], None);
    let m: serde_json::Value = serde_json::from_slice(&std::fs::read(p.join("target/manifest.json")).unwrap()).unwrap();
    assert!(m["nodes"].get("model.p.extra").is_none());

    // And unchanged again: a hit.
    let (log, _) = warm_equals_cold(p, &[], None);
    assert!(log.contains("partial parse: cache hit"), "{log}");
}

#[test]
fn a_project_reading_run_started_at_is_never_served_from_the_cache() {
    let d =
        project(&[("warehouse.toml", "[project]\nname = \"p\"\n"), ("models/stamp.sql", "select '{{ run_started_at }}' as at, '{{ invocation_id }}' as id")]);
    let p = d.path();
    compile(p, &[], None);
    let first = std::fs::read_to_string(p.join("target/compiled/p/models/stamp.sql")).unwrap();
    let log = compile(p, &[], None);
    assert!(log.contains("the project reads invocation_id or run_started_at"), "{log}");
    let second = std::fs::read_to_string(p.join("target/compiled/p/models/stamp.sql")).unwrap();
    assert_ne!(first, second, "the compiled SQL kept the first run's invocation id");
}
