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

/// Every compiled file (path → SQL) and the manifest's text, its
/// per-invocation fields and the project's folder replaced.
fn outputs(dir: &Path) -> (BTreeMap<String, String>, String) {
    let mut sql = BTreeMap::new();
    let base = dir.join("target/compiled");
    for e in walk(&base) {
        sql.insert(e.strip_prefix(&base).unwrap().display().to_string(), std::fs::read_to_string(&e).unwrap());
    }
    (sql, manifest_text(dir))
}

/// target/manifest.json with `generated_at`, `invocation_id` and the
/// project's folder replaced (the rest must be byte for byte a full write's).
fn manifest_text(dir: &Path) -> String {
    let text = std::fs::read_to_string(dir.join("target/manifest.json")).unwrap();
    let re = regex::Regex::new(r#""(generated_at|invocation_id)":"[^"]*""#).unwrap();
    re.replace_all(&text, r#""$1":"-""#).replace(&dir.display().to_string(), "<DIR>")
}

fn walk(dir: &Path) -> Vec<std::path::PathBuf> {
    let mut out = vec![];
    for e in std::fs::read_dir(dir).into_iter().flatten().flatten() {
        let p = e.path();
        if p.is_dir() { out.extend(walk(&p)) } else { out.push(p) }
    }
    out
}

fn compile(dir: &Path, extra: &[&str], env: Option<&str>) -> String {
    let mut c = dp();
    c.current_dir(dir)
        .env("DP_LOG", "dp::project::cache=debug,dp::cli::context=debug,dp::compile::manifest_reuse=debug,dp::compile::cache=debug,dp::compile::files=debug")
        .args(["compile"])
        .args(extra);
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
    assert!(!cold_dir.path().join("target/partial_parse.bin").exists(), "--no-partial-parse wrote a cache");
    let cold = outputs(cold_dir.path());
    // Files of nodes that no longer exist stay in target/compiled/ (as with dbt).
    let warm_sql: BTreeMap<String, String> = warm.0.iter().filter(|(k, _)| cold.0.contains_key(*k)).map(|(k, v)| (k.clone(), v.clone())).collect();
    assert_eq!(warm_sql, cold.0, "warm compile's SQL differs from a cold compile's\nlog:\n{log}");
    if warm.1 != cold.1 {
        let at = warm.1.bytes().zip(cold.1.bytes()).position(|(a, b)| a != b).unwrap_or(warm.1.len().min(cold.1.len()));
        let around = |t: &str| t.get(at.saturating_sub(200)..(at + 200).min(t.len())).unwrap_or("").to_string();
        panic!("warm compile's manifest differs from a cold compile's at byte {at}:\nwarm: {}\ncold: {}\nlog:\n{log}", around(&warm.1), around(&cold.1));
    }
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
    assert!(p.join("target/partial_parse.bin").is_file() && p.join("target/render_cache.bin").is_file());

    // Nothing changed: both caches are used.
    let (log, sql) = warm_equals_cold(p, &[], None);
    assert!(log.contains("partial parse: cache hit"), "{log}");
    assert!(log.contains("render cache: 4 nodes reused"), "{log}");
    assert!(log.contains("render cache: 4 reused without their key"), "{log}");
    assert!(log.contains("manifest: Reused { serialized: 0 }"), "{log}");
    assert!(log.contains("compiled files: Written { trusted: 4, checked: 0, written: 0 }"), "{log}");
    assert_eq!(sql[totals], r#"select id, amount * 2 as total from "dp"."main"."orders""#);

    // A compiled file edited by hand, to the same size: written again.
    let file = p.join("target/compiled").join(totals);
    std::fs::write(&file, sql[totals].replace("amount", "amounx")).unwrap();
    let log = compile(p, &[], None);
    assert!(log.contains("compiled files: Written { trusted: 3, checked: 0, written: 1 }"), "{log}");
    assert_eq!(std::fs::read_to_string(&file).unwrap(), sql[totals]);

    // A model edited.
    write(p, "models/totals.sql", "select id, amount * {{ var('rate') }} + 1 as total from {{ ref('orders') }}");
    let (log, sql) = warm_equals_cold(p, &[], None);
    assert!(log.contains("partial parse: cache hit, re-parsed models/totals.sql"), "{log}");
    assert!(log.contains("render cache: 3 nodes reused") && log.contains("render cache: 3 reused without their key"), "{log}");
    assert!(log.contains("manifest: Reused { serialized: 1 }"), "{log}");
    // the re-parsed model went to the patch beside the cache file
    assert!(p.join("target/partial_parse.bin.patch").is_file());
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
    assert!(!p.join("target/partial_parse.bin.patch").exists());
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

/// An edit loop: every compile after an edit of one model reuses the other
/// renderings without computing their keys, however many edits in a row,
/// with `compile` or with `run -s` of that model alone (an entry is
/// recorded again before the parse it was checked under is forgotten:
/// src/compile/cache.rs), and the SQL is still a cold compile's.
#[test]
fn an_edit_loop_never_falls_back_to_keying_every_node() {
    let d = project(&files());
    let p = d.path();
    compile(p, &[], None);
    let edit = |i: usize| write(p, "models/totals.sql", &format!("select id, amount * {{{{ var('rate') }}}} + {i} as total from {{{{ ref('orders') }}}}"));
    for i in 0..20 {
        edit(i);
        let log = compile(p, &[], None);
        assert!(log.contains("re-parsed models/totals.sql"), "edit {i}: {log}");
        assert!(log.contains("render cache: 3 nodes reused") && log.contains("render cache: 3 reused without their key"), "edit {i}: {log}");
        assert!(log.contains("manifest: Reused { serialized: 1 }"), "edit {i}: {log}");
    }
    // `run -s totals` renders one node; the others' entries still age.
    ok(&dp().current_dir(p).args(["run"]).output().unwrap());
    for i in 20..40 {
        edit(i);
        let o = dp().current_dir(p).env("DP_LOG", "dp::project::cache=debug").args(["run", "-s", "totals"]).output().unwrap();
        ok(&o);
        assert!(stderr(&o).contains("re-parsed models/totals.sql"), "edit {i}: {}", stderr(&o));
    }
    let (log, sql) = warm_equals_cold(p, &[], None);
    assert!(log.contains("render cache: 4 nodes reused") && log.contains("render cache: 4 reused without their key"), "{log}");
    assert!(sql["p/models/totals.sql"].contains("amount * 2 + 39"), "{}", sql["p/models/totals.sql"]);
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

/// The warm manifest copies unchanged entries from the previous one
/// (src/compile/manifest_reuse.rs): after an edit, a selection, an
/// ephemeral model's edit, it is byte for byte a full write's; a manifest
/// edited since (even at the same size and mtime) is written in full.
#[test]
fn the_warm_manifest_equals_a_full_write_and_never_trusts_an_edited_one() {
    let mut f = files();
    f.push(("models/eph.sql", "{{ config(materialized='ephemeral') }}\nselect 1 as k"));
    f.push(("models/uses_eph.sql", "select k from {{ ref('eph') }}"));
    let d = project(&f);
    let p = d.path();
    compile(p, &[], None);

    // An ephemeral model edited: what inlines it is serialized again too.
    write(p, "models/eph.sql", "{{ config(materialized='ephemeral') }}\nselect 2 as k");
    let (log, sql) = warm_equals_cold(p, &[], None);
    assert!(log.contains("re-parsed models/eph.sql") && log.contains("manifest: Reused { serialized: 2 }"), "{log}");
    assert!(sql["p/models/uses_eph.sql"].contains("select 2 as k"), "{}", sql["p/models/uses_eph.sql"]);

    // A node compiled while left out of a selection that came after an edit of it.
    write(p, "models/totals.sql", "select id, amount * {{ var('rate') }} + 7 as total from {{ ref('orders') }}");
    let (log, _) = warm_equals_cold(p, &["-s", "orders"], None);
    assert!(log.contains("re-parsed models/totals.sql"), "{log}");
    let (_, sql) = warm_equals_cold(p, &[], None);
    assert!(sql["p/models/totals.sql"].contains("+ 7 as total"), "{}", sql["p/models/totals.sql"]);

    // A selection compiles fewer nodes: the others lose their compiled code.
    let (log, _) = warm_equals_cold(p, &["-s", "totals"], None);
    assert!(log.contains("manifest: Reused"), "{log}");
    let (log, _) = warm_equals_cold(p, &[], None);
    assert!(log.contains("manifest: Reused"), "{log}");

    // A model edited twice, with a command in between that parses but does not write the manifest.
    write(p, "models/totals.sql", "select id, amount * {{ var('rate') }} - 1 as total from {{ ref('orders') }}");
    ok(&dp().current_dir(p).args(["ls"]).output().unwrap());
    write(p, "models/orders.sql", "select 1 as id, {{ cents('200') }} as amount, 'x' as region");
    let (log, sql) = warm_equals_cold(p, &[], None);
    assert!(log.contains("manifest: Reused"), "{log}");
    assert!(sql["p/models/totals.sql"].contains("- 1 as total"), "{}", sql["p/models/totals.sql"]);

    // The manifest edited by hand, same size and mtime: never trusted.
    let path = p.join("target/manifest.json");
    let text = std::fs::read_to_string(&path).unwrap();
    let mtime = std::fs::metadata(&path).unwrap().modified().unwrap();
    std::fs::write(&path, text.replacen("Orders.", "Odrers.", 1)).unwrap();
    std::fs::File::options().write(true).open(&path).unwrap().set_modified(mtime).unwrap();
    let (log, _) = warm_equals_cold(p, &[], None);
    assert!(log.contains(r#"manifest: Full("the manifest changed since it was written")"#), "{log}");
    assert!(!std::fs::read_to_string(&path).unwrap().contains("Odrers."));
    let (log, _) = warm_equals_cold(p, &[], None);
    assert!(log.contains("manifest: Reused { serialized: 0 }"), "{log}");

    // Without the partial-parse cache: written in full, and its layout dropped.
    let log = compile(p, &["--no-partial-parse"], None);
    assert!(log.contains("manifest: Full"), "{log}");
    assert!(!p.join("target/manifest_layout.bin").exists());

    // An incremental model once its table exists: is_incremental() changes its SQL
    // (last: a copy of the project does not carry the warehouse along).
    write(p, "models/inc.sql", "{{ config(materialized='incremental') }}\nselect 1 as k{% if is_incremental() %} where k > 0{% endif %}");
    let (_, sql) = warm_equals_cold(p, &[], None);
    assert!(!sql["p/models/inc.sql"].contains("where"), "{}", sql["p/models/inc.sql"]);
    ok(&dp().current_dir(p).args(["run", "-s", "inc"]).output().unwrap());
    let log = compile(p, &[], None);
    let inc = std::fs::read_to_string(p.join("target/compiled/p/models/inc.sql")).unwrap();
    assert!(inc.contains("where k > 0"), "{inc}\n{log}");
}
