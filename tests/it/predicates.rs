//! `incremental_predicates` restrict which of the table's rows a `merge` or
//! `delete+insert` can match, as in dbt: the `predicates` fixture (merge
//! with a predicate on the table and one over both sides, delete+insert on
//! one key and on two, a model with no strategy, which is delete+insert as
//! in dbt-duckdb, merges that update only some columns, and a microbatch
//! model; a key repeated within one load)
//! run three times over growing data equals the tables
//! dbt-duckdb 1.11 built (scripts/make_dbt_goldens.sh predicates), both by
//! deletion vectors and by deltalake's MERGE and the rewrite
//! (`DP_DELETION_VECTORS=off`); files whose statistics rule the predicates
//! out are not read; predicates the writer cannot take fail with the model
//! and the predicate named, leaving the table as it was.

use crate::common::*;
use std::path::Path;

const MODELS: [&str; 7] = ["merged", "merged_newer", "deleted_inserted", "deleted_inserted_pair", "defaulted", "partial", "partial_listed"];
/// "Now" for the microbatch model, as the goldens pin it.
const NOW: &str = "2024-01-09T12:00:00";

fn sorted_rows(text: &str) -> Vec<String> {
    let mut lines: Vec<String> = text.lines().map(String::from).collect();
    let header = lines.remove(0);
    lines.sort();
    std::iter::once(header).chain(lines).collect()
}

fn table(dir: &Path, name: &str) -> Vec<String> {
    let o = run(dir, &["show", "--inline", &format!("select * from main.{name}"), "--limit", "1000", "--format", "csv", "--vars", "{step: 3}"]);
    ok(&o);
    sorted_rows(&stdout(&o))
}

/// The actions of a table's newest commit.
fn last_commit(table: &Path) -> Vec<serde_json::Value> {
    let log = table.join("_delta_log");
    let newest =
        std::fs::read_dir(&log).unwrap().flatten().map(|e| e.file_name().to_string_lossy().into_owned()).filter(|n| n.ends_with(".json")).max().unwrap();
    std::fs::read_to_string(log.join(newest)).unwrap().lines().map(|l| serde_json::from_str(l).unwrap()).collect()
}

#[test]
fn incremental_predicates_match_dbt_duckdb_by_deletion_vectors_and_by_rewrite() {
    for vectors in ["on", "off"] {
        let dir = fixture("predicates");
        let p = dir.path();
        std::fs::create_dir_all(p.join("data")).unwrap();
        for step in 1..=3 {
            std::fs::copy(p.join(format!("steps/{step}/events.csv")), p.join("data/events.csv")).unwrap();
            ok(&dp().current_dir(p).env("DP_DELETION_VECTORS", vectors).env("DP_MICROBATCH_NOW", NOW).args(["run"]).output().unwrap());
            let golden = repo().join(format!("tests/fixtures/projects/predicates/golden/step{step}"));
            for m in MODELS.iter().chain(&["batched"]) {
                let want = sorted_rows(&std::fs::read_to_string(golden.join(format!("{m}.csv"))).unwrap());
                assert_eq!(table(p, m), want, "deletion vectors {vectors}, step {step}: main.{m} differs from dbt-duckdb's (golden/step{step}/{m}.csv)");
            }
            if step > 1 {
                // By vectors, a merge whose predicates name only the table
                // marks rows; one that names the new rows goes to deltalake's MERGE.
                let marked = |m: &str| last_commit(&p.join("warehouse/main").join(m)).iter().any(|a| a["add"]["deletionVector"].is_object());
                assert_eq!(
                    MODELS.map(marked),
                    if vectors == "on" { [true, false, true, true, true, true, true] } else { [false; 7] },
                    "deletion vectors {vectors}, step {step}"
                );
            }
        }
        // The commit records the predicates the match took.
        let info = last_commit(&p.join("warehouse/main/merged")).into_iter().find_map(|a| a.get("commitInfo").cloned()).unwrap();
        let predicate = info["operationParameters"]["mergePredicate"].as_str().unwrap().to_string();
        assert!(predicate.contains("day >= '2024-01-03'"), "{predicate}");
    }
}

/// Step 3 merges keys that both files' ranges hold, but the predicates rule
/// out the first file by its statistics: the merge never opens it (it is
/// gone, and the merge succeeds) and leaves it untouched in the log.
#[test]
fn a_merge_does_not_read_the_files_its_predicates_rule_out() {
    let model = "{{ config(materialized='incremental', unique_key='id', incremental_predicates=[\"DBT_INTERNAL_DEST.day >= '2024-02-01'\"]) }}
{% set rows = {1: [(1, '2024-01-01'), (2, '2024-01-02'), (3, '2024-01-03')], 2: [(7, '2024-02-07'), (8, '2024-02-08')], 3: [(1, '2024-02-11'), (8, '2024-02-18')]}[var('step')] %}
{% for id, day in rows %}select {{ id }} as id, cast('{{ day }}' as date) as day, {{ var('step') }} as step{% if not loop.last %} union all {% endif %}{% endfor %}
";
    let dir = project(&[("dbt_project.yml", "name: p\nversion: '1'\nprofile: p\n"), ("models/m.sql", model)]);
    let p = dir.path();
    ok(&run(p, &["run", "--vars", "{step: 1}"]));
    ok(&run(p, &["run", "--vars", "{step: 2}"]));
    let t = p.join("warehouse/main/m");
    let first: Vec<String> =
        std::fs::read_dir(&t).unwrap().flatten().map(|e| e.file_name().to_string_lossy().into_owned()).filter(|n| n.ends_with(".parquet")).collect();
    assert_eq!(first.len(), 2, "{first:?}");
    let january = first.iter().find(|f| {
        let log = std::fs::read_to_string(t.join("_delta_log/00000000000000000000.json")).unwrap();
        log.contains(f.as_str())
    });
    let january = january.unwrap().clone();
    std::fs::rename(t.join(&january), p.join("january.parquet")).unwrap();
    let o = dp().current_dir(p).env("DP_LOG", "dp::materialize=debug").args(["run", "--vars", "{step: 3}"]).output().unwrap();
    ok(&o);
    assert!(stderr(&o).contains("merged by deletion vectors rows=2 updated=1"), "{}", stderr(&o));
    let touched: Vec<String> =
        last_commit(&t).iter().filter_map(|a| a.get("add").or(a.get("remove")).and_then(|f| f["path"].as_str()).map(String::from)).collect();
    assert!(!touched.contains(&january), "{touched:?}");
    std::fs::rename(p.join("january.parquet"), t.join(&january)).unwrap();
    // id 1's January row fails the predicate: kept, and the new one beside it
    assert_eq!(table(p, "m"), ["id,day,step", "1,2024-01-01,1", "1,2024-02-11,3", "2,2024-01-02,1", "3,2024-01-03,1", "7,2024-02-07,2", "8,2024-02-18,3"]);
}

#[test]
fn predicates_the_writer_cannot_take_fail_naming_the_model_and_keep_the_table() {
    let model = |strategy: &str, predicate: &str| {
        format!(
            "{{{{ config(materialized='incremental', unique_key='id', incremental_strategy='{strategy}', incremental_predicates=[\"{predicate}\"]) }}}}\nselect {{{{ var('step') }}}} as id, {{{{ var('step') }}}} as day"
        )
    };
    let dir = project(&[
        ("dbt_project.yml", "name: p\nversion: '1'\nprofile: p\n"),
        ("models/unknown.sql", &model("merge", "DBT_INTERNAL_DEST.dya > 1")),
        ("models/sourced.sql", &model("delete+insert", "DBT_INTERNAL_SOURCE.day > 1")),
    ]);
    let p = dir.path();
    ok(&run(p, &["run", "--vars", "{step: 1}"]));
    let o = run(p, &["run", "--vars", "{step: 2}"]);
    assert_eq!(o.status.code(), Some(1));
    let err = stderr(&o);
    assert!(
        err.contains("error: model unknown: incremental_predicates (dya > 1): Schema error: No field named dya.\nValid fields are id, day.\n  hint: name the table's columns, as DBT_INTERNAL_DEST.col or col"),
        "{err}"
    );
    assert!(
        err.contains("error: model sourced: incremental predicate \"DBT_INTERNAL_SOURCE.day > 1\" names the new rows (DBT_INTERNAL_SOURCE), which this write cannot match on\n  hint: name only the table's columns (DBT_INTERNAL_DEST.col); only a merge (without on_schema_change='sync_all_columns') compares the new rows with the table's"),
        "{err}"
    );
    for m in ["unknown", "sourced"] {
        assert_eq!(table(p, m), ["id,day", "1,1"], "{m}");
        assert_eq!(std::fs::read_dir(p.join("warehouse/main").join(m).join("_delta_log")).unwrap().count(), 1, "{m}: a commit was made");
    }
}

/// A microbatch batch whose query returns no rows still deletes the rows
/// of its window that satisfy the predicates (dbt-duckdb's `delete ...
/// where window and (p)` runs whatever the insert holds); the others stay.
#[test]
fn an_empty_batch_deletes_only_the_rows_its_predicates_match() {
    let model = "{{ config(materialized='incremental', incremental_strategy='microbatch', event_time='ts', batch_size='day', begin='2024-01-01', incremental_predicates=['id > 1']) }}
select * from (select 1 as id, cast('2024-01-01 10:00:00' as timestamp) as ts union all select 2 as id, cast('2024-01-01 11:00:00' as timestamp) as ts) as t
where {{ var('keep', 'true') }}
";
    for vectors in ["on", "off"] {
        let dir = project(&[("dbt_project.yml", "name: p\nversion: '1'\nprofile: p\n"), ("models/m.sql", model)]);
        let p = dir.path();
        let dp_run = |args: &[&str]| {
            dp().current_dir(p).env("DP_DELETION_VECTORS", vectors).env("DP_MICROBATCH_NOW", "2024-01-02T12:00:00").args(args).output().unwrap()
        };
        ok(&dp_run(&["run"]));
        assert_eq!(table(p, "m"), ["id,ts", "1,2024-01-01 10:00:00", "2,2024-01-01 11:00:00"]);
        let o = dp_run(&["run", "--vars", "{keep: 'false'}", "--event-time-start", "2024-01-01", "--event-time-end", "2024-01-02"]);
        ok(&o);
        assert_eq!(table(p, "m"), ["id,ts", "1,2024-01-01 10:00:00"], "deletion vectors {vectors}");
        let info = last_commit(&p.join("warehouse/main/m")).into_iter().find_map(|a| a.get("commitInfo").cloned()).unwrap();
        if vectors == "on" {
            assert_eq!(info["operation"], "WRITE", "{info}");
            assert!(info["operationParameters"]["predicate"].as_str().unwrap().ends_with("AND (id > 1)"), "{info}");
        }
    }
}

/// `on_schema_change='sync_all_columns'` reshapes the table, then applies
/// the strategy as dbt does: `append` keeps every row (its unique_key and
/// predicates play no part), `delete+insert` replaces only the matching
/// rows its predicates allow. The rows are those dbt-duckdb 1.11 leaves
/// for the same two models (run by hand: this case has no fixture).
#[test]
fn sync_all_columns_keeps_what_the_strategy_keeps() {
    let model = |strategy: &str| {
        format!(
            "{{{{ config(materialized='incremental', incremental_strategy='{strategy}', unique_key='id', on_schema_change='sync_all_columns', incremental_predicates=['day >= 2']) }}}}\n\
             {{% if var('step') == 1 %}}select 1 as id, 1 as day, 'x' as old_col union all select 2 as id, 2 as day, 'x' as old_col\n\
             {{% else %}}select 1 as id, 1 as day, 'y' as new_col union all select 2 as id, 2 as day, 'y' as new_col{{% endif %}}\n"
        )
    };
    let dir = project(&[
        ("dbt_project.yml", "name: p\nversion: '1'\nprofile: p\n"),
        ("models/appended.sql", &model("append")),
        ("models/replaced.sql", &model("delete+insert")),
    ]);
    let p = dir.path();
    ok(&run(p, &["run", "--vars", "{step: 1}"]));
    ok(&run(p, &["run", "--vars", "{step: 2}"]));
    assert_eq!(table(p, "appended"), ["id,day,new_col", "1,1,", "1,1,y", "2,2,", "2,2,y"]);
    assert_eq!(table(p, "replaced"), ["id,day,new_col", "1,1,", "1,1,y", "2,2,y"]);
}
