//! Snapshots (`dp snapshot`, and snapshots inside `dp build`) write the
//! rows dbt-duckdb writes: the `snapshots` fixture run in three steps
//! (updates, hard deletes, inserts, a restore) under every strategy and
//! hard-delete mode equals the goldens of scripts/make_dbt_goldens.sh, with
//! one Delta commit per run. The fixture's `snapshot_get_time()` reads the
//! run's time from --vars, so run-time stamps compare by value.

use crate::common::*;
use std::path::Path;

const SNAPSHOTS: [&str; 6] =
    ["customers_ts", "customers_ts_invalidate", "customers_ts_new_record", "customers_check_all", "customers_check_tier", "order_lines_snapshot"];

/// A field as the goldens write it: a timestamp's fraction without its
/// trailing zeros (`.250000` and `.250` are the same instant).
fn norm(field: &str) -> String {
    let ts = field.len() > 19 && field.as_bytes().get(4) == Some(&b'-') && field.as_bytes().get(19) == Some(&b'.');
    if ts { field.trim_end_matches('0').trim_end_matches('.').to_string() } else { field.to_string() }
}

fn sorted_rows(text: &str) -> Vec<String> {
    let mut lines: Vec<String> = text.lines().map(|l| l.split(',').map(norm).collect::<Vec<_>>().join(",")).collect();
    let header = lines.remove(0);
    lines.sort();
    std::iter::once(header).chain(lines).collect()
}

fn compare_step(dir: &Path, step: u32, tables: &[(&str, &str)]) {
    for (schema, table) in tables {
        let golden = repo().join(format!("tests/fixtures/projects/snapshots/golden/step{step}/{table}.csv"));
        let want = sorted_rows(&std::fs::read_to_string(&golden).unwrap());
        let o = run(dir, &["show", "--inline", &format!("select * from {schema}.{table}"), "--limit", "1000", "--format", "csv"]);
        ok(&o);
        let got = sorted_rows(&stdout(&o));
        assert_eq!(got, want, "step {step}: {schema}.{table} differs from dbt-duckdb's (golden/step{step}/{table}.csv)");
    }
}

fn use_step(dir: &Path, step: u32) {
    for f in ["customers.csv", "order_lines.csv"] {
        std::fs::copy(dir.join(format!("steps/{step}/{f}")), dir.join("data").join(f)).unwrap();
    }
}

/// Delta commits of a warehouse table.
fn commits(dir: &Path, schema: &str, table: &str) -> usize {
    std::fs::read_dir(dir.join("warehouse").join(schema).join(table).join("_delta_log"))
        .unwrap()
        .flatten()
        .filter(|e| e.file_name().to_string_lossy().ends_with(".json"))
        .count()
}

#[test]
fn snapshots_in_three_steps_match_dbt_duckdb() {
    let dir = fixture("snapshots");
    let p = dir.path();
    let snaps: Vec<(&str, &str)> = SNAPSHOTS.iter().map(|t| ("snapshots", *t)).collect();
    let vars = |step: u32| format!("{{snapshot_time: '2030-01-0{step} 00:00:00'}}");

    use_step(p, 1);
    ok(&run(p, &["run", "-s", "stg_customers", "--vars", &vars(1)]));
    let o = run(p, &["snapshot", "--vars", &vars(1)]);
    ok(&o);
    assert!(stderr(&o).contains("OK snapshotted snapshots.customers_ts "), "{}", stderr(&o));
    compare_step(p, 1, &snaps);

    use_step(p, 2);
    ok(&run(p, &["snapshot", "--vars", &vars(2)]));
    compare_step(p, 2, &snaps);

    // step 3 is a build: the snapshots run before the model that refs one
    use_step(p, 3);
    let o = run(p, &["build", "--vars", &vars(3)]);
    ok(&o);
    let err = stderr(&o);
    let pos = |s: &str| err.find(s).unwrap_or_else(|| panic!("no '{s}' in:\n{err}"));
    assert!(pos("OK snapshotted snapshots.customers_ts ") < pos("START sql table model main.current_customers"), "{err}");
    let mut all = snaps.clone();
    all.extend([("main", "stg_customers"), ("main", "current_customers")]);
    compare_step(p, 3, &all);
    // one Delta commit per snapshot run
    for t in SNAPSHOTS {
        assert_eq!(commits(p, "snapshots", t), 3, "{t}");
    }
}

#[test]
fn snapshot_keys_times_and_failures() {
    let dir = project(&[
        ("dbt_project.yml", "name: p\nprofile: p\n"),
        ("models/sources.yml", "version: 2\nsources:\n  - name: raw\n    tables:\n      - name: t\n        meta: {external_location: data/t.csv}\n"),
        (
            "snapshots/s.sql",
            "{% snapshot s %}\n{{ config(unique_key=['a', 'b'], strategy='check', check_cols='all', target_schema='hist') }}\nselect a, b, v from {{ source('raw', 't') }}\n{% endsnapshot %}\n",
        ),
        ("data/t.csv", "a,b,v\n1,,x\n2,1,y\n"),
    ]);
    let p = dir.path();
    let t0 = chrono::Utc::now().naive_utc();
    ok(&run(p, &["snapshot"]));
    ok(&run(p, &["snapshot"]));
    let t1 = chrono::Utc::now().naive_utc();
    // a NULL in the composite key matches itself: no new version per run
    let o = run(p, &["show", "--inline", "select a, b, v, dbt_valid_from, dbt_valid_to from hist.s order by a", "--format", "csv"]);
    ok(&o);
    let rows: Vec<String> = stdout(&o).lines().skip(1).map(String::from).collect();
    assert_eq!(rows.len(), 2, "{rows:?}");
    // check-strategy versions are stamped with the run's time (UTC)
    for r in &rows {
        let f: Vec<&str> = r.split(',').collect();
        let from = chrono::NaiveDateTime::parse_from_str(f[3], "%Y-%m-%d %H:%M:%S%.f").unwrap();
        assert!(t0 - chrono::Duration::seconds(1) <= from && from <= t1, "{from} not within {t0}..{t1}");
        assert_eq!(f[4], "", "{r}");
    }
    // a repeated key fails the run and commits nothing
    std::fs::write(p.join("data/t.csv"), "a,b,v\n1,,x\n2,1,y\n2,1,z\n").unwrap();
    let before = commits(p, "hist", "s");
    let o = run(p, &["snapshot"]);
    assert_eq!(o.status.code(), Some(1));
    assert!(
        stderr(&o).contains(
            "error: snapshot s: unique_key (a, b) is not unique in the snapshot's query: 1 key value(s) appear more than once\n  hint: keep one row per key in the query (e.g. the latest by updated_at), or set a unique_key that identifies a row"
        ),
        "{}",
        stderr(&o)
    );
    assert_eq!(commits(p, "hist", "s"), before);
    // fixed, `dp retry` runs the failed snapshot again
    std::fs::write(p.join("data/t.csv"), "a,b,v\n1,,x\n2,1,z\n").unwrap();
    let o = run(p, &["retry"]);
    ok(&o);
    assert!(stderr(&o).contains("OK snapshotted hist.s "), "{}", stderr(&o));
    assert_eq!(commits(p, "hist", "s"), before + 1);
}

#[test]
fn snapshot_config_errors_name_the_file_and_line() {
    let dir = project(&[
        ("dbt_project.yml", "name: p\nprofile: p\n"),
        ("snapshots/s.sql", "{% snapshot s %}\n{{ config(unique_key='id', strategy='timestamp') }}\nselect 1 as id\n{% endsnapshot %}\n"),
    ]);
    let o = run(dir.path(), &["snapshot"]);
    assert_eq!(o.status.code(), Some(1));
    let err = stderr(&o);
    assert!(
        err.contains(
            "snapshots/s.sql:1: snapshot 's': a snapshot with the timestamp strategy needs updated_at\n  hint: updated_at='updated_at' (the column that changes when the row does)"
        ),
        "{err}"
    );
}

#[test]
fn a_new_source_column_is_added_and_old_versions_keep_null() {
    let dir = project(&[
        ("dbt_project.yml", "name: p\nprofile: p\n"),
        ("models/sources.yml", "version: 2\nsources:\n  - name: raw\n    tables:\n      - name: t\n        meta: {external_location: data/t.csv}\n"),
        (
            "snapshots/s.sql",
            "{% snapshot s %}\n{{ config(unique_key='a', strategy='check', check_cols='all', hard_deletes='new_record') }}\nselect * from {{ source('raw', 't') }}\n{% endsnapshot %}\n",
        ),
        ("data/t.csv", "a,v\n1,x\n2,y\n"),
    ]);
    let p = dir.path();
    ok(&run(p, &["snapshot"]));
    std::fs::write(p.join("data/t.csv"), "a,v,w\n1,x,5\n3,z,6\n").unwrap();
    ok(&run(p, &["snapshot"]));
    let o = run(
        p,
        &["show", "--inline", "select a, v, w, dbt_valid_to is null as current, dbt_is_deleted from main.s order by a, dbt_valid_from", "--format", "csv"],
    );
    ok(&o);
    assert_eq!(stdout(&o), "a,v,w,current,dbt_is_deleted\n1,x,,false,False\n1,x,5,true,False\n2,y,,false,False\n2,y,,true,True\n3,z,6,true,False\n");
}

#[test]
fn a_text_updated_at_keeps_text_stamps() {
    let dir = project(&[
        ("dbt_project.yml", "name: p\nprofile: p\n"),
        ("models/sources.yml", "version: 2\nsources:\n  - name: raw\n    tables:\n      - name: t\n        meta: {external_location: data/t.csv}\n"),
        (
            "snapshots/s.sql",
            "{% snapshot s %}\n{{ config(unique_key='a', strategy='timestamp', updated_at='u', hard_deletes='invalidate') }}\nselect a, v, cast(u as varchar) as u from {{ source('raw', 't') }}\n{% endsnapshot %}\n",
        ),
        ("data/t.csv", "a,v,u\n1,x,2024-01-01\n2,y,2024-01-01\n"),
    ]);
    let p = dir.path();
    ok(&run(p, &["snapshot"]));
    std::fs::write(p.join("data/t.csv"), "a,v,u\n1,z,2024-01-02\n").unwrap();
    ok(&run(p, &["snapshot"]));
    let o = run(p, &["show", "--inline", "select a, v, dbt_valid_from, dbt_valid_to from main.s order by a, dbt_valid_from", "--format", "csv"]);
    ok(&o);
    let out = stdout(&o);
    let lines: Vec<&str> = out.lines().collect();
    assert_eq!(lines[..3], ["a,v,dbt_valid_from,dbt_valid_to", "1,x,2024-01-01,2024-01-02", "1,z,2024-01-02,"], "{out}");
    // the hard delete's stamp is the run's time, as DuckDB's text of it
    let deleted = lines[3].strip_prefix("2,y,2024-01-01,").unwrap_or_else(|| panic!("{out}"));
    assert!(chrono::NaiveDateTime::parse_from_str(deleted, "%Y-%m-%d %H:%M:%S%.f").is_ok(), "{deleted}");
}

#[test]
fn check_cols_must_be_columns_of_the_query() {
    let dir = project(&[
        ("dbt_project.yml", "name: p\nprofile: p\n"),
        (
            "snapshots/s.sql",
            "{% snapshot s %}\n{{ config(unique_key='id', strategy='check', check_cols=['stauts']) }}\nselect 1 as id, 'new' as status\n{% endsnapshot %}\n",
        ),
    ]);
    let o = run(dir.path(), &["snapshot"]);
    assert_eq!(o.status.code(), Some(1));
    assert!(
        stderr(&o).contains(
            "error: snapshot s: check_cols: 'stauts' is not a column of the snapshot's query (id, status)\n  hint: did you mean 'status'? list columns the query returns, or use check_cols='all'"
        ),
        "{}",
        stderr(&o)
    );
}
