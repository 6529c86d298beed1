//! `--defer`, `--favor-state`, `--defer-state`: slim CI against a
//! production warehouse built earlier (its target/ kept as the state).

use crate::common::*;
use std::path::Path;

const STG: &str = "select id, name from {{ ref('people') }} where id <= {{ var('max_id', 100) }}";

fn slim_project() -> tempfile::TempDir {
    project(&[
        ("dbt_project.yml", "name: p\nprofile: p\nmodels:\n  p:\n    +materialized: table\n"),
        ("seeds/people.csv", "id,name\n1,ann\n2,bob\n3,cid\n"),
        ("models/stg_people.sql", STG),
        ("models/stg_view.sql", "{{ config(materialized='view') }}\nselect id from {{ ref('stg_people') }} where id > 1"),
        ("models/mart.sql", "select s.id, s.name, v.id as vid from {{ ref('stg_people') }} s left join {{ ref('stg_view') }} v on s.id = v.id"),
        ("models/other.sql", "select count(*) as n from {{ ref('stg_people') }}"),
        ("models/schema.yml", "version: 2\nmodels:\n  - name: mart\n    columns:\n      - name: id\n        data_tests: [not_null]\n"),
    ])
}

/// `dp` in `dir` writing the warehouse `wh` (a folder of the project).
fn dp_in(dir: &Path, wh: &str, args: &[&str]) -> std::process::Output {
    dp().current_dir(dir).env("DP_WAREHOUSE", dir.join(wh)).args(args).output().unwrap()
}

fn sql(dir: &Path, wh: &str, q: &str) -> String {
    let o = dp_in(dir, wh, &["sql", "--format", "csv", "-e", q]);
    ok(&o);
    stdout(&o)
}

fn ran(dir: &Path) -> Vec<String> {
    outcomes(dir).as_array().unwrap().iter().map(|r| format!("{} {}", r["unique_id"].as_str().unwrap(), r["status"].as_str().unwrap())).collect()
}

#[test]
fn slim_ci_builds_the_modified_models_reading_unmodified_parents_from_production() {
    let dir = slim_project();
    let p = dir.path();
    ok(&dp_in(p, "prod_wh", &["build"]));
    copy_tree(&p.join("target"), &p.join("prod_state"));
    // the change under review
    std::fs::write(
        p.join("models/mart.sql"),
        "select s.id, s.name, v.id as vid, 'v2' as version from {{ ref('stg_people') }} s left join {{ ref('stg_view') }} v on s.id = v.id",
    )
    .unwrap();
    let o = dp_in(p, "dev_wh", &["build", "-s", "state:modified+", "--defer", "--state", "prod_state"]);
    ok(&o);
    assert_eq!(ran(p), ["model.p.mart success", "test.p.not_null_mart_id.a3b2e5a4b1 pass"].map(|s| s.replace("a3b2e5a4b1", &test_hash(p))));
    // only the modified model was written to the dev warehouse
    assert!(p.join("dev_wh/main/mart/_delta_log").is_dir());
    assert!(!p.join("dev_wh/main/stg_people").exists());
    assert!(!p.join("dev_wh/main/stg_view").exists());
    // its rows come from production's parents (the table and the view)
    assert_eq!(sql(p, "dev_wh", "select id, name, vid, version from main.mart order by id"), "id,name,vid,version\n1,ann,,v2\n2,bob,2,v2\n3,cid,3,v2\n");
    // the compiled SQL names production's relations through the dp_state catalog
    let compiled = std::fs::read_to_string(p.join("target/compiled/p/models/mart.sql")).unwrap();
    assert!(compiled.contains("from dp_state.main.stg_people s left join dp_state.main.stg_view v"), "{compiled}");
}

/// The generic test's unique id suffix, as dp names it.
fn test_hash(p: &Path) -> String {
    let m: serde_json::Value = serde_json::from_slice(&std::fs::read(p.join("target/manifest.json")).unwrap()).unwrap();
    let id = m["nodes"].as_object().unwrap().keys().find(|k| k.starts_with("test.p.not_null_mart_id.")).unwrap().clone();
    id.rsplit('.').next().unwrap().to_string()
}

#[test]
fn defer_prefers_the_targets_relation_unless_favor_state() {
    let dir = slim_project();
    let p = dir.path();
    ok(&dp_in(p, "prod_wh", &["build"]));
    copy_tree(&p.join("target"), &p.join("prod_state"));
    // without a dev copy of stg_people, `other` reads production's (3 rows)
    ok(&dp_in(p, "dev_wh", &["run", "-s", "other", "--defer", "--state", "prod_state"]));
    assert_eq!(sql(p, "dev_wh", "select n from main.other"), "n\n3\n");
    // a dev stg_people with one row exists: --defer uses it ...
    ok(&dp_in(p, "dev_wh", &["run", "-s", "stg_people", "--vars", "{max_id: 1}", "--defer", "--state", "prod_state"]));
    ok(&dp_in(p, "dev_wh", &["run", "-s", "other", "--defer", "--defer-state", "prod_state"]));
    assert_eq!(sql(p, "dev_wh", "select n from main.other"), "n\n1\n");
    // ... and --favor-state production's, for every unselected node
    ok(&dp_in(p, "dev_wh", &["run", "-s", "other", "--defer", "--favor-state", "--state", "prod_state"]));
    assert_eq!(sql(p, "dev_wh", "select n from main.other"), "n\n3\n");
    // a selected node is never deferred, even with --favor-state
    ok(&dp_in(p, "dev_wh", &["run", "-s", "stg_people", "other", "--defer", "--favor-state", "--state", "prod_state", "--vars", "{max_id: 2}"]));
    assert_eq!(sql(p, "dev_wh", "select n from main.other"), "n\n2\n");
    // compile and show defer the same way
    let o = dp_in(p, "dev_wh", &["compile", "-s", "other", "--defer", "--favor-state", "--state", "prod_state"]);
    ok(&o);
    assert!(stdout(&o).contains("from dp_state.main.stg_people"), "{}", stdout(&o));
    let o = dp_in(p, "dev_wh", &["show", "--inline", "select count(*) as n from {{ ref('stg_view') }}", "--defer", "--state", "prod_state", "--format", "csv"]);
    ok(&o);
    assert_eq!(stdout(&o), "n\n2\n");
    // without --defer nothing changes
    let o = dp_in(p, "dev_wh", &["compile", "-s", "other", "--state", "prod_state"]);
    assert!(stdout(&o).contains(r#"from "dp"."main"."stg_people""#), "{}", stdout(&o));
}

#[test]
fn defer_in_the_same_warehouse_reads_the_states_schema() {
    let dir = slim_project();
    let p = dir.path();
    ok(&dp_in(p, "wh", &["build"]));
    copy_tree(&p.join("target"), &p.join("prod_state"));
    let o = dp()
        .current_dir(p)
        .env("DP_WAREHOUSE", p.join("wh"))
        .env("DP_SCHEMA", "dev")
        .args(["run", "-s", "other", "--defer", "--state", "prod_state"])
        .output()
        .unwrap();
    ok(&o);
    let compiled = std::fs::read_to_string(p.join("target/compiled/p/models/other.sql")).unwrap();
    assert!(compiled.contains(r#"from "dp"."main"."stg_people""#), "{compiled}");
    assert_eq!(sql(p, "wh", "select n from dev.other"), "n\n3\n");
}

#[test]
fn defer_needs_a_state() {
    let dir = slim_project();
    let p = dir.path();
    let o = dp_in(p, "wh", &["run", "--defer"]);
    assert_eq!(o.status.code(), Some(1));
    assert!(stderr(&o).contains("--state or --defer-state are required for deferral, but neither was provided\n  hint: pass --state DIR"), "{}", stderr(&o));
    let o = dp_in(p, "wh", &["run", "--defer", "--defer-state", "nowhere"]);
    assert_eq!(o.status.code(), Some(1));
    assert!(stderr(&o).contains("Could not find manifest in --state path: \"nowhere\""), "{}", stderr(&o));
}

#[test]
fn source_status_fresher_selects_sources_with_newer_rows_and_their_children() {
    let sources = r#"
sources:
  - name: raw
    loaded_at_field: loaded_at
    freshness:
      warn_after: {count: 100000, period: day}
    tables:
      - name: orders
        meta: {external_location: "data/orders.csv"}
      - name: customers
        meta: {external_location: "data/customers.csv"}
"#;
    let dir = project(&[
        ("warehouse.toml", "[project]\nname = \"p\"\n"),
        ("models/src.yml", sources),
        ("models/stg_orders.sql", "select * from {{ source('raw', 'orders') }}"),
        ("models/stg_customers.sql", "select * from {{ source('raw', 'customers') }}"),
        ("data/orders.csv", "id,loaded_at\n1,2024-01-01 00:00:00\n"),
        ("data/customers.csv", "id,loaded_at\n1,2024-01-01 00:00:00\n"),
    ]);
    let p = dir.path();
    ok(&run(p, &["parse"]));
    // no sources.json on either side yet
    let o = run(p, &["ls", "-s", "source_status:fresher", "--state", "target"]);
    assert_eq!(o.status.code(), Some(1));
    assert!(stderr(&o).contains("No previous state comparison freshness results in sources.json"), "{}", stderr(&o));
    ok(&run(p, &["source", "freshness"]));
    copy_tree(&p.join("target"), &p.join("prev"));
    std::fs::write(p.join("data/orders.csv"), "id,loaded_at\n1,2024-01-01 00:00:00\n2,2024-01-05 00:00:00\n").unwrap();
    ok(&run(p, &["source", "freshness"]));
    let ls = |sel: &str| {
        let o = run(p, &["ls", "-s", sel, "--state", "prev"]);
        ok(&o);
        stdout(&o).lines().map(String::from).collect::<Vec<_>>()
    };
    assert_eq!(ls("source_status:fresher"), ["source:p.raw.orders"]);
    assert_eq!(ls("source_status:fresher+"), ["p.stg_orders", "source:p.raw.orders"]);
    // dbt matches nothing but `fresher`
    assert!(ls("source_status:stale").is_empty());
}

/// A clone of a table whose merges left deletion vectors names each vector
/// by its absolute URL and has the feature: it reads the rows production
/// reads, not the rows the vectors delete.
#[test]
fn a_clone_reads_the_rows_production_reads_after_its_merges() {
    let dir = project(&[
        ("dbt_project.yml", "name: p\nprofile: p\n"),
        (
            "models/inc.sql",
            "{{ config(materialized='incremental', unique_key='id') }}\n\
             select value as id, {{ var('v', 0) }} as v from range({{ var('from', 0) }}, 1000)",
        ),
    ]);
    let p = dir.path();
    ok(&dp_in(p, "prod_wh", &["run"]));
    ok(&dp_in(p, "prod_wh", &["run", "--vars", "{from: 990, v: 1}"]));
    let prod = sql(p, "prod_wh", "select count(*) as n, sum(v) as changed, count(distinct id) as d from main.inc");
    assert_eq!(prod, "n,changed,d\n1000,10,1000\n");
    copy_tree(&p.join("target"), &p.join("prod_state"));
    ok(&dp_in(p, "dev_wh", &["clone", "-s", "inc", "--state", "prod_state"]));
    let log = std::fs::read_to_string(p.join("dev_wh/main/inc/_delta_log/00000000000000000000.json")).unwrap();
    let url = format!("file://{}/prod_wh/main/inc/deletion_vector_", p.display());
    assert!(log.contains(r#""storageType":"p""#) && log.contains(&url), "{log}");
    assert!(log.contains(r#""readerFeatures":["deletionVectors"]"#), "{log}");
    assert_eq!(sql(p, "dev_wh", "select count(*) as n, sum(v) as changed, count(distinct id) as d from main.inc"), prod);
}

#[test]
fn clone_makes_shallow_delta_clones_of_the_states_tables() {
    let dir = slim_project();
    let p = dir.path();
    ok(&dp_in(p, "prod_wh", &["build"]));
    copy_tree(&p.join("target"), &p.join("prod_state"));
    let o = dp_in(p, "dev_wh", &["clone", "-s", "people", "stg_people", "stg_view", "--state", "prod_state"]);
    assert_eq!(o.status.code(), Some(1));
    let err = stderr(&o);
    assert!(err.contains("OK cloned seed main.people"), "{err}");
    assert!(err.contains("[CLONE 1 file in "), "{err}");
    assert!(err.contains("Done. PASS=2 WARN=0 ERROR=1"), "{err}");
    // a view of another warehouse cannot be cloned as a view here
    assert!(err.contains("the state's relation") && err.contains("is a view of another warehouse"), "{err}");
    // the clone is a Delta table of its own whose log names production's files
    let log = std::fs::read_to_string(p.join("dev_wh/main/stg_people/_delta_log/00000000000000000000.json")).unwrap();
    assert!(log.contains(&format!("\"path\":\"file://{}/prod_wh/main/stg_people/", p.display())), "{log}");
    assert!(std::fs::read_dir(p.join("dev_wh/main/stg_people")).unwrap().flatten().all(|e| e.file_name() == "_delta_log"));
    assert_eq!(sql(p, "dev_wh", "select id, name from main.stg_people order by id"), "id,name\n1,ann\n2,bob\n3,cid\n");
    // writes to the clone leave production alone
    ok(&dp_in(p, "dev_wh", &["run", "-s", "stg_people", "--vars", "{max_id: 1}"]));
    assert_eq!(sql(p, "dev_wh", "select count(*) as n from main.stg_people"), "n\n1\n");
    assert_eq!(sql(p, "prod_wh", "select count(*) as n from main.stg_people"), "n\n3\n");
    // existing relations are kept, unless --full-refresh
    let o = dp_in(p, "dev_wh", &["clone", "-s", "stg_people", "--state", "prod_state"]);
    ok(&o);
    assert!(stderr(&o).contains("Relation main.stg_people already exists"), "{}", stderr(&o));
    assert_eq!(sql(p, "dev_wh", "select count(*) as n from main.stg_people"), "n\n1\n");
    ok(&dp_in(p, "dev_wh", &["clone", "-s", "stg_people", "--state", "prod_state", "--full-refresh"]));
    assert_eq!(sql(p, "dev_wh", "select count(*) as n from main.stg_people"), "n\n3\n");
    // in one warehouse (another schema) a view is cloned as a view over the state's
    let o = dp()
        .current_dir(p)
        .env("DP_WAREHOUSE", p.join("prod_wh"))
        .env("DP_SCHEMA", "dev")
        .args(["clone", "-s", "stg_view", "--state", "prod_state"])
        .output()
        .unwrap();
    ok(&o);
    assert_eq!(std::fs::read_to_string(p.join("prod_wh/dev/stg_view/_dp_view.sql")).unwrap(), "select * from main.stg_view");
    assert_eq!(sql(p, "prod_wh", "select count(*) as n from dev.stg_view"), "n\n2\n");
    // clone needs a state
    let o = dp_in(p, "dev_wh", &["clone"]);
    assert!(stderr(&o).contains("--state or --defer-state are required"), "{}", stderr(&o));
}

#[test]
fn dp_state_warehouse_says_where_the_states_warehouse_is_now() {
    let dir = slim_project();
    let p = dir.path();
    ok(&dp_in(p, "prod_wh", &["build"]));
    copy_tree(&p.join("target"), &p.join("prod_state"));
    // production's warehouse is reached elsewhere than where it was built
    std::fs::rename(p.join("prod_wh"), p.join("moved_wh")).unwrap();
    let o = dp_in(p, "dev_wh", &["run", "-s", "other", "--defer", "--state", "prod_state"]);
    assert_eq!(o.status.code(), Some(1));
    let o = dp()
        .current_dir(p)
        .env("DP_WAREHOUSE", p.join("dev_wh"))
        .env("DP_STATE_WAREHOUSE", "moved_wh")
        .args(["run", "-s", "other", "--defer", "--state", "prod_state"])
        .output()
        .unwrap();
    ok(&o);
    assert_eq!(sql(p, "dev_wh", "select n from main.other"), "n\n3\n");
}

/// The demo (with its quality checkpoints gating the layers) in slim CI:
/// one intermediate model changed, its layer and the marts built in an
/// empty dev warehouse; the staging checkpoint, which would only check
/// production's relations, is left out; the marts checkpoint reads the
/// staging table it compares with from production.
#[test]
fn slim_ci_on_the_demo_with_its_checkpoints() {
    let dir = demo_project();
    let p = dir.path();
    copy_tree(&repo().join("checkpoints"), &p.join("checkpoints"));
    ok(&run(p, &["demo", "--scale", "0.02"]));
    copy_tree(&p.join("target"), &p.join("prod_state"));
    let f = p.join("models/intermediate/int_customer_orders.sql");
    let code = std::fs::read_to_string(&f).unwrap();
    std::fs::write(&f, format!("{code}\n-- a reviewed change\n")).unwrap();
    let o = dp_in(p, "dev_wh", &["build", "-s", "state:modified+", "--defer", "--state", "prod_state"]);
    ok(&o);
    let err = stderr(&o);
    assert!(err.contains("Skipping checkpoint staging_checkpoint: every relation it checks is read from the state (--defer)"), "{err}");
    assert!(err.contains("PASS checkpoint marts_checkpoint"), "{err}");
    assert!(!p.join("dev_wh/staging").exists());
    assert!(p.join("dev_wh/intermediate/int_customer_orders/_delta_log").is_dir());
    let q = "select (select count(*) from marts.fct_orders) as orders, (select sum(lifetime_value) from marts.mart_customer_analytics) as ltv, (select count(*) from marts.mart_daily_summary) as days";
    assert_eq!(sql(p, "dev_wh", q), sql(p, "warehouse", q));
}

/// Column tests on a deferred model read the state's relation, also when
/// dp would batch them into one query per relation.
#[test]
fn deferred_column_tests_read_the_states_relation() {
    let dir = project(&[
        ("dbt_project.yml", "name: p\nprofile: p\nmodels:\n  p:\n    +materialized: table\n"),
        ("models/m.sql", "select * from (values (1), ({{ var('second', 2) }})) as t(id)"),
        ("models/s.yml", "version: 2\nmodels:\n  - name: m\n    columns:\n      - name: id\n        data_tests: [not_null, unique]\n"),
    ]);
    let p = dir.path();
    ok(&dp_in(p, "prod_wh", &["build"]));
    copy_tree(&p.join("target"), &p.join("prod_state"));
    // a dev copy of m with a duplicate id
    ok(&dp_in(p, "dev_wh", &["run", "--vars", "{second: 1}"]));
    assert_eq!(dp_in(p, "dev_wh", &["test"]).status.code(), Some(1));
    // --favor-state: the tests (selected) read production's m (unselected)
    let o = dp_in(p, "dev_wh", &["test", "--defer", "--favor-state", "--state", "prod_state"]);
    ok(&o);
    assert!(stderr(&o).contains("Done. PASS=2 WARN=0 ERROR=0"), "{}", stderr(&o));
}

/// `dp retry` repeats the last run's --defer and --state, as dbt's retry.
#[test]
fn retry_keeps_defer() {
    let dir = slim_project();
    let p = dir.path();
    ok(&dp_in(p, "prod_wh", &["build"]));
    copy_tree(&p.join("target"), &p.join("prod_state"));
    std::fs::write(p.join("models/other.sql"), "select count(no_such_column) as n from {{ ref('stg_people') }}").unwrap();
    assert_eq!(dp_in(p, "dev_wh", &["run", "-s", "state:modified", "--defer", "--state", "prod_state"]).status.code(), Some(1));
    let rr: serde_json::Value = serde_json::from_slice(&std::fs::read(p.join("target/run_results.json")).unwrap()).unwrap();
    assert_eq!(rr["args"]["defer"], true);
    assert_eq!(rr["args"]["state"], "prod_state");
    std::fs::write(p.join("models/other.sql"), "select count(*) as n from {{ ref('stg_people') }}").unwrap();
    ok(&dp_in(p, "dev_wh", &["retry"]));
    assert_eq!(ran(p), ["model.p.other success"]);
    assert_eq!(sql(p, "dev_wh", "select n from main.other"), "n\n3\n");
}

/// `dp compile --defer`: Jinja that queries a deferred relation of another
/// warehouse (run_query) reads the state's.
#[test]
fn compile_with_defer_queries_the_states_relations() {
    let dir = slim_project();
    let p = dir.path();
    ok(&dp_in(p, "prod_wh", &["build"]));
    copy_tree(&p.join("target"), &p.join("prod_state"));
    std::fs::write(
        p.join("models/probe.sql"),
        "{% set n = run_query('select count(*) from ' ~ ref('stg_people')).columns[0].values()[0] if execute else 0 %}select {{ n }} as n",
    )
    .unwrap();
    let o = dp_in(p, "dev_wh", &["compile", "-s", "probe", "--defer", "--state", "prod_state"]);
    ok(&o);
    assert!(stdout(&o).contains("select 3 as n"), "{}", stdout(&o));
}

/// Unit tests under --defer take their inputs' columns from the state's
/// relations when this target has none.
#[test]
fn unit_tests_with_defer_read_input_columns_from_the_state() {
    let dir = slim_project();
    let p = dir.path();
    ok(&dp_in(p, "prod_wh", &["build"]));
    copy_tree(&p.join("target"), &p.join("prod_state"));
    let unit = r#"
unit_tests:
  - name: mart_joins_the_view
    model: mart
    given:
      - input: ref('stg_people')
        rows: [{id: 1}, {id: 2}]
      - input: ref('stg_view')
        rows: [{id: 2}]
    expect:
      rows: [{id: 1, vid: null}, {id: 2, vid: 2}]
"#;
    std::fs::write(p.join("models/unit.yml"), unit).unwrap();
    let o = dp_in(p, "dev_wh", &["test", "-s", "test_type:unit", "--defer", "--state", "prod_state"]);
    ok(&o);
    assert!(stderr(&o).contains("PASS mart::mart_joins_the_view") || stderr(&o).contains("Done. PASS=1 WARN=0 ERROR=0"), "{}", stderr(&o));
    // without --defer the inputs' columns are unknown here
    let o = dp_in(p, "dev_wh", &["test", "-s", "test_type:unit"]);
    assert_eq!(o.status.code(), Some(1), "{}", stderr(&o));
}
