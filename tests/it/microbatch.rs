//! Microbatch models (`incremental_strategy='microbatch'`) build batch by
//! batch as dbt-duckdb 1.11 does: the `microbatch` fixture, built by days
//! in three steps (a first build from `begin`, late rows inside and outside
//! the lookback window, a backfill with --event-time-start/--event-time-end)
//! with "now" pinned (`DP_MICROBATCH_NOW`; the goldens pin dbt's invocation
//! time, scripts/frozen_now.py) and a machine time zone far from UTC, equals
//! the goldens of scripts/make_dbt_goldens.sh microbatch row for row, with
//! one Delta commit per batch; then a backfill in which one batch fails (a
//! partial success, the table keeping that window's old rows) and `dp
//! retry`, which runs that batch alone, as dbt's `retry` does.

use crate::common::*;
use std::path::Path;

const NOW: &str = "2024-01-05T12:00:00";
const MODELS: [&str; 3] = ["events_enriched", "daily_totals", "coded_events"];

fn sorted_rows(text: &str) -> Vec<String> {
    let mut lines: Vec<String> = text.lines().map(String::from).collect();
    let header = lines.remove(0);
    lines.sort();
    std::iter::once(header).chain(lines).collect()
}

/// dp in `dir` with "now" pinned and the machine in `tz`.
fn dp_at(dir: &Path, tz: &str, args: &[&str]) -> std::process::Output {
    dp().current_dir(dir).env("DP_MICROBATCH_NOW", NOW).env("TZ", tz).args(args).output().unwrap()
}

fn compare_step(dir: &Path, step: u32) {
    let golden = repo().join(format!("tests/fixtures/projects/microbatch/golden/step{step}"));
    for table in MODELS.iter().chain(&["stg_events", "event_types"]) {
        if !golden.join(format!("{table}.csv")).exists() {
            continue;
        }
        let want = sorted_rows(&std::fs::read_to_string(golden.join(format!("{table}.csv"))).unwrap());
        let o = run(dir, &["show", "--inline", &format!("select * from main.{table}"), "--limit", "1000", "--format", "csv"]);
        ok(&o);
        assert_eq!(sorted_rows(&stdout(&o)), want, "step {step}: main.{table} differs from dbt-duckdb's (golden/step{step}/{table}.csv)");
    }
    // run_results.json's status, message and batch_results, as dbt writes them
    let want: serde_json::Value = serde_json::from_str(&std::fs::read_to_string(golden.join("batch_results.json")).unwrap()).unwrap();
    let got: serde_json::Value = serde_json::from_str(&std::fs::read_to_string(dir.join("target/run_results.json")).unwrap()).unwrap();
    for w in want.as_array().unwrap().iter().filter(|w| !w["batch_results"].is_null()) {
        let g = got["results"].as_array().unwrap().iter().find(|g| g["unique_id"] == w["unique_id"]).unwrap();
        for k in ["status", "message", "batch_results"] {
            assert_eq!(g[k], w[k], "step {step}: {} {k}", w["unique_id"]);
        }
    }
}

fn use_step(dir: &Path, step: u32) {
    std::fs::create_dir_all(dir.join("data")).unwrap();
    std::fs::copy(dir.join(format!("steps/{step}/events.csv")), dir.join("data/events.csv")).unwrap();
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
fn microbatch_by_days_matches_dbt_duckdb() {
    let dir = fixture("microbatch");
    let p = dir.path();

    // 1. first build: one batch a day from `begin` to "now"
    use_step(p, 1);
    let o = dp_at(p, "Asia/Tokyo", &["build"]);
    ok(&o);
    let err = stderr(&o);
    for line in [
        "START sql microbatch model main.events_enriched",
        "Batch 1 of 5 START batch 2024-01-01 of main.events_enriched",
        "Batch 1 of 5 OK created batch 2024-01-01 of main.events_enriched ...",
        "Batch 5 of 5 OK created batch 2024-01-05 of main.daily_totals ...",
        "OK created sql microbatch model main.daily_totals ...",
    ] {
        assert!(err.contains(line), "no '{line}' in:\n{err}");
    }
    // batch lines come as batches run, before their model's line
    let pos = |s: &str| err.find(s).unwrap_or_else(|| panic!("no '{s}' in:\n{err}"));
    assert!(pos("Batch 5 of 5 OK created batch 2024-01-05 of main.daily_totals") < pos("OK created sql microbatch model main.daily_totals"), "{err}");
    assert!(pos("START sql microbatch model main.daily_totals") < pos("Batch 1 of 5 START batch 2024-01-01 of main.daily_totals"), "{err}");
    compare_step(p, 1);
    for m in MODELS {
        assert_eq!(commits(p, "main", m), 5, "{m}: one commit per batch");
    }

    // 2. late rows: the lookback window (yesterday and today) is rebuilt,
    //    an older late row waits for a backfill
    use_step(p, 2);
    let o = dp_at(p, "America/Los_Angeles", &["run"]);
    ok(&o);
    assert!(stderr(&o).contains("Batch 1 of 2 START batch 2024-01-04 of main.events_enriched"), "{}", stderr(&o));
    compare_step(p, 2);

    // 3. a backfill of two days
    use_step(p, 3);
    let o = dp_at(p, "Pacific/Kiritimati", &["run", "--event-time-start", "2024-01-02", "--event-time-end", "2024-01-04"]);
    ok(&o);
    compare_step(p, 3);
    // each batch's SQL is kept as dbt keeps it, inputs with event_time filtered
    let sql = std::fs::read_to_string(p.join("target/compiled/microbatch/models/events_enriched/events_enriched_2024-01-02.sql")).unwrap();
    assert!(sql.contains("where occurred_at >= '2024-01-02 00:00:00+00:00' and occurred_at < '2024-01-03 00:00:00+00:00')"), "{sql}");
    assert!(sql.contains("'20240102' as batch_id"), "{sql}");
    assert!(!sql.contains("\"event_types\" where"), "an input without event_time is read whole:\n{sql}");
    for m in MODELS {
        assert_eq!(commits(p, "main", m), 9, "{m}: one commit per batch");
    }

    // 4. a backfill in which coded_events' 2024-01-04 batch fails
    use_step(p, 4);
    let o = dp_at(p, "Asia/Tokyo", &["run", "--event-time-start", "2024-01-03", "--event-time-end", "2024-01-06"]);
    assert_eq!(o.status.code(), Some(1), "{}", stderr(&o));
    let err = stderr(&o);
    assert!(err.contains("Batch 2 of 3 ERROR creating batch 2024-01-04 of main.coded_events"), "{err}");
    assert!(err.contains("PARTIALLY created sql microbatch model main.coded_events"), "{err}");
    compare_step(p, 4);
    assert_eq!(commits(p, "main", "coded_events"), 11, "the failed batch commits nothing");

    // 5. `dp retry` once the data is fixed: that batch alone
    use_step(p, 5);
    let o = dp_at(p, "America/Los_Angeles", &["retry"]);
    ok(&o);
    let err = stderr(&o);
    assert!(err.contains("Batch 1 of 1 START batch 2024-01-04 of main.coded_events"), "{err}");
    assert!(!err.contains("main.events_enriched"), "{err}");
    compare_step(p, 5);
    assert_eq!(commits(p, "main", "coded_events"), 12);
}

const FLAKY: &str = "{{ config(materialized='incremental', incremental_strategy='microbatch', event_time='ts', batch_size='day', begin='2024-01-01') }}
select id, ts, {{ 'no_such_column' if var('broken', '') == model.batch.id else \"'ok'\" }} as note,
       {{ 'true' if is_incremental() else 'false' }} as incremental
from {{ ref('events') }}
";

fn flaky_project() -> tempfile::TempDir {
    project(&[
        ("dbt_project.yml", "name: p\nprofile: p\nseeds:\n  p:\n    events:\n      +event_time: ts\n"),
        ("seeds/events.csv", "id,ts\n1,2024-01-01 10:00:00\n2,2024-01-02 10:00:00\n3,2024-01-03 10:00:00\n4,2024-01-04 10:00:00\n"),
        ("models/daily.sql", FLAKY),
    ])
}

fn rows(dir: &Path, sql: &str) -> Vec<String> {
    let o = run(dir, &["show", "--inline", sql, "--format", "csv", "--limit", "100"]);
    ok(&o);
    stdout(&o).lines().skip(1).map(String::from).collect()
}

fn run_results(dir: &Path) -> serde_json::Value {
    let v: serde_json::Value = serde_json::from_str(&std::fs::read_to_string(dir.join("target/run_results.json")).unwrap()).unwrap();
    v["results"].as_array().unwrap().iter().find(|r| r["unique_id"] == "model.p.daily").unwrap().clone()
}

#[test]
fn a_failed_batch_is_a_partial_success_that_retry_completes() {
    let dir = flaky_project();
    let p = dir.path();
    let at = |args: &[&str]| dp().current_dir(p).env("DP_MICROBATCH_NOW", "2024-01-04T06:00:00").env("TZ", "Europe/Berlin").args(args).output().unwrap();
    let o = at(&["build", "--vars", "{broken: '20240103'}"]);
    assert_eq!(o.status.code(), Some(1), "{}", stderr(&o));
    let err = stderr(&o);
    for line in [
        "Batch 3 of 4 ERROR creating batch 2024-01-03 of main.daily ...",
        "Batch 4 of 4 OK created batch 2024-01-04 of main.daily ...",
        "2 of 2 PARTIALLY created sql microbatch model main.daily ...",
        "[PARTIAL SUCCESS (3/4) in ",
        "no_such_column",
        "hint: `dp retry` runs the failed batches again",
    ] {
        assert!(err.contains(line), "no '{line}' in:\n{err}");
    }
    // the failed batch committed nothing; the others did
    assert_eq!(rows(p, "select id, note, incremental from main.daily order by id"), ["1,ok,false", "2,ok,true", "4,ok,true"]);
    assert_eq!(commits(p, "main", "daily"), 3);
    let r = run_results(p);
    assert_eq!(r["status"], "partial success");
    assert_eq!(r["message"], "PARTIAL SUCCESS (3/4)");
    assert_eq!(r["batch_results"]["failed"], serde_json::json!([["2024-01-03T00:00:00+00:00", "2024-01-04T00:00:00+00:00"]]));
    assert_eq!(r["batch_results"]["successful"].as_array().unwrap().len(), 3);

    // retry: only the failed batch runs, incrementally, into the same table
    let o = dp().current_dir(p).env("TZ", "Asia/Kolkata").args(["retry"]).output().unwrap();
    ok(&o);
    let err = stderr(&o);
    assert!(err.contains("Batch 1 of 1 START batch 2024-01-03 of main.daily"), "{err}");
    assert!(!err.contains("batch 2024-01-01"), "{err}");
    assert_eq!(rows(p, "select id, note, incremental from main.daily order by id"), ["1,ok,false", "2,ok,true", "3,ok,true", "4,ok,true"]);
    assert_eq!(commits(p, "main", "daily"), 4);
    let r = run_results(p);
    assert_eq!(r["status"], "success");
    // as dbt: the earlier successes are carried into the retry's results
    assert_eq!(r["batch_results"]["successful"].as_array().unwrap().len(), 4);
    assert_eq!(r["batch_results"]["failed"], serde_json::json!([]));
}

#[test]
fn a_failed_first_batch_skips_the_rest() {
    let dir = flaky_project();
    let p = dir.path();
    let o = dp().current_dir(p).env("DP_MICROBATCH_NOW", "2024-01-02T06:00:00").args(["build", "--vars", "{broken: '20240101'}"]).output().unwrap();
    assert_eq!(o.status.code(), Some(1));
    let err = stderr(&o);
    assert!(err.contains("Batch 1 of 2 ERROR creating batch 2024-01-01 of main.daily"), "{err}");
    assert!(err.contains("Batch 2 of 2 SKIP batch 2024-01-02 of main.daily ..."), "{err}");
    assert!(err.contains("[SKIPPED]"), "{err}");
    let r = run_results(p);
    assert_eq!(r["status"], "error");
    assert_eq!(r["batch_results"]["failed"].as_array().unwrap().len(), 2);
}

fn parse_error(files: &[(&str, &str)]) -> String {
    let dir = project(files);
    let o = run(dir.path(), &["parse"]);
    assert_eq!(o.status.code(), Some(1), "{}", stderr(&o));
    stderr(&o)
}

#[test]
fn config_errors_name_the_model_and_file() {
    let project_yml = ("dbt_project.yml", "name: p\nprofile: p\n");
    let err = parse_error(&[
        project_yml,
        ("models/m.sql", "{{ config(materialized='incremental', incremental_strategy='microbatch', batch_size='day', begin='2024-01-01') }}\nselect 1 as id"),
    ]);
    assert_eq!(
        err,
        "error: models/m.sql:1: model 'm': a microbatch model must provide an 'event_time' (string) config that indicates the name of the event time column\n  hint: add event_time='<column>' to the model's config\n"
    );
    let err = parse_error(&[
        project_yml,
        (
            "models/m.sql",
            "{{ config(materialized='incremental', incremental_strategy='microbatch',\n    event_time='ts', batch_size='days', begin='2024-01-01') }}\nselect 1 as id",
        ),
    ]);
    assert_eq!(
        err,
        "error: models/m.sql:2: model 'm': a microbatch model must provide a 'batch_size' config that is one of ['hour', 'day', 'month', 'year'], but got: days\n  hint: did you mean 'day'? set batch_size='day' (or hour, month, year)\n"
    );
}

#[test]
fn event_time_flags_are_checked_as_dbt_does() {
    let dir = flaky_project();
    let p = dir.path();
    let o = run(p, &["run", "--event-time-end", "2024-01-02"]);
    assert_eq!(o.status.code(), Some(1));
    assert_eq!(
        stderr(&o),
        "error: The flag `--event-time-end` was specified, but `--event-time-start` was not. When specifying `--event-time-end`, `--event-time-start` must also be present.\n"
    );
    let o = run(p, &["run", "--event-time-start", "2024-01-03", "--event-time-end", "2024-01-02"]);
    assert_eq!(o.status.code(), Some(1));
    assert_eq!(stderr(&o), "error: Value for `--event-time-start` must be less than `--event-time-end`\n");
}

#[test]
fn concurrent_batches_commit_each_window_once() {
    let mut csv = String::from("id,ts\n");
    for d in 1..=8 {
        for h in (0..24).step_by(6) {
            csv.push_str(&format!("{},2024-01-{d:02} {h:02}:00:00\n", d * 100 + h));
        }
    }
    let model = "{{ config(materialized='incremental', incremental_strategy='microbatch', event_time='ts', batch_size='day', begin='2024-01-01', concurrent_batches=true) }}\nselect id, ts, '{{ model.batch.id }}' as batch_id from {{ ref('events') }}\n";
    let dir = project(&[
        ("dbt_project.yml", "name: p\nprofile: p\nseeds:\n  p:\n    events:\n      +event_time: ts\n"),
        ("seeds/events.csv", &csv),
        ("models/daily.sql", model),
    ]);
    let p = dir.path();
    let at = |args: &[&str]| dp().current_dir(p).env("DP_MICROBATCH_NOW", "2024-01-08T06:00:00").args(args).output().unwrap();
    ok(&at(&["build", "--threads", "4"]));
    assert_eq!(commits(p, "main", "daily"), 8);
    // a backfill of every day at once replaces each window exactly once
    ok(&at(&["run", "--threads", "4", "--event-time-start", "2024-01-01", "--event-time-end", "2024-01-09"]));
    assert_eq!(commits(p, "main", "daily"), 16);
    let got = rows(
        p,
        "select count(*), count(distinct id), min(batch_id), max(batch_id), count(*) filter (where batch_id <> strftime(ts, '%Y%m%d')) from main.daily",
    );
    assert_eq!(got, ["32,32,20240101,20240108,0"]);
    // Once `dp maintain` has compacted the days into one file, every batch
    // of a backfill rewrites that file: all but the first commit lose the
    // race, and are written again on the newest version (they failed,
    // refused by deltalake's conflict checker).
    let o = at(&["maintain", "-s", "daily"]);
    ok(&o);
    assert!(stderr(&o).contains("compacted 8 files into 1"), "{}", stderr(&o));
    ok(&at(&["run", "--threads", "4", "--event-time-start", "2024-01-01", "--event-time-end", "2024-01-09"]));
    assert_eq!(rows(p, "select count(*), count(distinct id), count(*) filter (where batch_id <> strftime(ts, '%Y%m%d')) from main.daily"), ["32,32,0"]);
}

#[test]
#[ignore = "needs PostgreSQL: run by scripts/test.sh"]
fn a_published_microbatch_model_reaches_postgres_after_its_batches() {
    let pg = crate::postgres::pg();
    let toml = "[project]\nname = \"p\"\n\n[targets.dev]\nwarehouse = \"./warehouse\"\nschema = \"main\"\n\n[targets.dev.postgres]\nretries = 1\nconnect_timeout_s = 2\n";
    let dir = project(&[
        ("warehouse.toml", toml),
        ("seeds/events.csv", "id,ts\n1,2024-01-01 10:00:00\n2,2024-01-02 10:00:00\n3,2024-01-03 10:00:00\n"),
        ("seeds/events.yml", "seeds:\n  - name: events\n    config:\n      event_time: ts\n"),
        (
            "models/daily.sql",
            "{{ config(materialized='incremental', incremental_strategy='microbatch', event_time='ts', batch_size='day', begin='2024-01-01', publish=['postgres']) }}\nselect id, ts from {{ ref('events') }}\n",
        ),
    ]);
    let p = dir.path();
    let mut c = dp();
    let o = pg.env(&mut c).current_dir(p).env("DP_MICROBATCH_NOW", "2024-01-03T12:00:00").args(["build"]).output().unwrap();
    ok(&o);
    assert_eq!(pg.rows("select count(*) from main.daily"), vec![vec![Some("3".to_string())]]);
    // a later run rebuilds the lookback window; PostgreSQL gets the same rows
    std::fs::write(p.join("seeds/events.csv"), "id,ts\n1,2024-01-01 10:00:00\n2,2024-01-02 10:00:00\n3,2024-01-03 10:00:00\n4,2024-01-03 11:00:00\n").unwrap();
    let mut c = dp();
    let o = pg.env(&mut c).current_dir(p).env("DP_MICROBATCH_NOW", "2024-01-03T12:00:00").args(["build"]).output().unwrap();
    ok(&o);
    assert_eq!(pg.rows("select count(*), max(id) from main.daily"), vec![vec![Some("4".to_string()), Some("4".to_string())]]);
}
