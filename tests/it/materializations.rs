//! Materializations and run options: incremental strategies and
//! on_schema_change, partition_by, compression, hooks, views, --fail-fast.

use crate::common::*;
use std::path::Path;

const TOML: &str = "[project]\nname = \"p\"\n[models]\nmaterialized = \"table\"\n";

fn csv(dir: &Path, sql: &str) -> String {
    let o = run(dir, &["show", "--inline", sql, "--limit", "1000", "--format", "csv"]);
    ok(&o);
    stdout(&o).trim_end().to_string()
}

fn incremental_project(strategy: &str) -> tempfile::TempDir {
    let model = format!(
        "{{{{ config(materialized='incremental', unique_key='id', incremental_strategy='{strategy}') }}}}\n\
         select id, v from (values (1, 'a'), (2, 'b'), (3, 'c'), (4, 'd')) as t(id, v)\n\
         where id <= {{{{ var('upto', 0) }}}}\n\
         {{% if is_incremental() %}} and id >= {{{{ var('from', 0) }}}} {{% endif %}}"
    );
    project(&[("warehouse.toml", TOML), ("models/inc.sql", &model)])
}

#[test]
fn merge_updates_and_inserts_by_key() {
    let dir = incremental_project("merge");
    let p = dir.path();
    ok(&run(p, &["run", "--vars", "{upto: 2, from: 0}"]));
    // Second run re-sends id 2 and adds 3: one row updated, one inserted.
    let o = run(p, &["run", "--vars", "{upto: 3, from: 2}"]);
    ok(&o);
    assert!(stderr(&o).contains("[MERGE 2 rows"), "{}", stderr(&o));
    assert_eq!(csv(p, "select id, v from main.inc order by id"), "id,v\n1,a\n2,b\n3,c");
}

#[test]
fn append_adds_rows_even_when_repeated() {
    let dir = project(&[
        ("warehouse.toml", TOML),
        ("models/inc.sql", "{{ config(materialized='incremental', incremental_strategy='append') }}\nselect {{ var('n', 0) }} as id"),
    ]);
    let p = dir.path();
    ok(&run(p, &["run", "--vars", "{n: 1}"]));
    ok(&run(p, &["run", "--vars", "{n: 2}"]));
    ok(&run(p, &["run", "--vars", "{n: 2}"]));
    assert_eq!(csv(p, "select id, count(*) as c from main.inc group by id order by id"), "id,c\n1,1\n2,2");
    // --full-refresh rebuilds from scratch.
    ok(&run(p, &["run", "--full-refresh", "--vars", "{n: 7}"]));
    assert_eq!(csv(p, "select id from main.inc"), "id\n7");
}

#[test]
fn delete_insert_replaces_matching_keys() {
    let dir = incremental_project("delete+insert");
    let p = dir.path();
    ok(&run(p, &["run", "--vars", "{upto: 3, from: 0}"]));
    let o = run(p, &["run", "--vars", "{upto: 4, from: 3}"]);
    ok(&o);
    assert!(stderr(&o).contains("[DELETE+INSERT 2 rows"), "{}", stderr(&o));
    assert_eq!(csv(p, "select id, v from main.inc order by id"), "id,v\n1,a\n2,b\n3,c\n4,d");
    // Id 3's old row is marked deleted in the first file, which stays; the
    // two new rows are a file of their own.
    let (adds, removes) = last_commit(&p.join("warehouse/main/inc"));
    assert_eq!(removes, 1);
    assert_eq!(vectors_of(&adds).iter().map(|(_, c)| *c).collect::<Vec<_>>().len(), 2);
    assert_eq!(adds.iter().filter_map(|a| a.get("deletionVector").and_then(|d| d["cardinality"].as_i64())).collect::<Vec<_>>(), [1]);
}

#[test]
fn on_schema_change_fail_and_append_new_columns() {
    let dir = project(&[("warehouse.toml", TOML), ("models/inc.sql", "{{ config(materialized='incremental', on_schema_change='fail') }}\nselect 1 as id")]);
    let p = dir.path();
    ok(&run(p, &["run"]));
    std::fs::write(p.join("models/inc.sql"), "{{ config(materialized='incremental', on_schema_change='fail') }}\nselect 2 as id, 'x' as extra").unwrap();
    let o = run(p, &["run"]);
    assert_eq!(o.status.code(), Some(1));
    assert!(
        stderr(&o).contains("model inc: the incremental model's columns changed (added: [extra], removed: [], changed: []) and on_schema_change is 'fail'"),
        "{}",
        stderr(&o)
    );
    assert_eq!(csv(p, "select * from main.inc"), "id\n1", "the failed run must leave the table as it was");
    std::fs::write(p.join("models/inc.sql"), "{{ config(materialized='incremental', on_schema_change='append_new_columns') }}\nselect 2 as id, 'x' as extra")
        .unwrap();
    ok(&run(p, &["run"]));
    assert_eq!(csv(p, "select id, extra from main.inc order by id"), "id,extra\n1,\n2,x");
}

#[test]
fn partition_by_writes_partition_folders_and_hooks_run() {
    let dir = project(&[
        ("warehouse.toml", "on-run-start = [\"select 1\"]\n[project]\nname = \"p\"\n[models]\nmaterialized = \"table\"\n"),
        (
            "models/part.sql",
            "{{ config(partition_by='region', compression='snappy', post_hook=\"select count(*) from {{ this }}\") }}\nselect * from (values (1, 'eu'), (2, 'us'), (3, 'eu')) as t(id, region)",
        ),
    ]);
    let p = dir.path();
    let o = run(p, &["run"]);
    ok(&o);
    let t = p.join("warehouse/main/part");
    assert!(t.join("region=eu").is_dir() && t.join("region=us").is_dir(), "no partition folders in {}", t.display());
    assert_eq!(csv(p, "select region, count(*) as n from main.part group by region order by region"), "region,n\neu,2\nus,1");
    // Hooks really run: a failing pre-hook fails its model (and names itself).
    std::fs::write(p.join("models/hooked.sql"), "{{ config(pre_hook='select * from main.no_such_table') }}\nselect 1 as id").unwrap();
    let o = run(p, &["run", "-s", "hooked"]);
    assert_eq!(o.status.code(), Some(1));
    assert!(stderr(&o).contains("pre-hook of hooked: Error during planning: table 'dp.main.no_such_table' not found"), "{}", stderr(&o));
}

/// The codec of the first column of `table`'s only Parquet file (a file
/// records its codec, not the level it was written at).
fn codec(dir: &Path, table: &str) -> String {
    use datafusion::parquet::file::reader::{FileReader, SerializedFileReader};
    let folder = dir.join("warehouse/main").join(table);
    let files: Vec<_> = std::fs::read_dir(&folder).unwrap().map(|e| e.unwrap().path()).filter(|p| p.extension().is_some_and(|x| x == "parquet")).collect();
    assert_eq!(files.len(), 1, "{files:?}");
    let reader = SerializedFileReader::new(std::fs::File::open(&files[0]).unwrap()).unwrap();
    let codec = format!("{:?}", reader.metadata().row_group(0).column(0).compression());
    codec.split('(').next().unwrap().to_string()
}

#[test]
fn compression_reaches_the_parquet_files_and_a_bad_level_stops_the_load() {
    let dir = project(&[
        ("warehouse.toml", TOML),
        ("models/plain.sql", "select 1 as id"),
        ("models/small.sql", "{{ config(compression='zstd', compression_level=19) }}\nselect 1 as id"),
        ("models/gz.sql", "{{ config(compression='gzip', compression_level=9) }}\nselect 1 as id"),
        ("models/fast.sql", "{{ config(compression='lz4') }}\nselect 1 as id"),
    ]);
    let p = dir.path();
    ok(&run(p, &["run"]));
    assert_eq!(codec(p, "plain"), "ZSTD", "zstd when nothing is named");
    assert_eq!(codec(p, "small"), "ZSTD");
    assert_eq!(codec(p, "gz"), "GZIP");
    assert_eq!(codec(p, "fast"), "LZ4_RAW");

    // A level the codec does not have stops the project before anything runs.
    std::fs::write(p.join("models/small.sql"), "{{ config(compression='zstd', compression_level=30) }}\nselect 1 as id").unwrap();
    let o = run(p, &["run"]);
    assert_eq!(o.status.code(), Some(1));
    assert_eq!(
        stderr(&o).trim(),
        "error: models/small.sql:1: model 'small': compression_level 30 is not a level of zstd\n  hint: use a whole number from 1 to 22"
    );
    std::fs::write(p.join("models/small.sql"), "{{ config(compression='snappy', compression_level=3) }}\nselect 1 as id").unwrap();
    let o = run(p, &["run"]);
    assert_eq!(o.status.code(), Some(1));
    assert_eq!(
        stderr(&o).trim(),
        "error: models/small.sql:1: model 'small': compression_level 3 is set but compression 'snappy' has no levels\n  hint: set compression to zstd (levels 1-22) or gzip (0-9), or remove compression_level"
    );
}

#[test]
fn views_resolve_in_later_commands() {
    let dir = project(&[
        ("warehouse.toml", TOML),
        ("models/base.sql", "select 1 as id union all select 2"),
        ("models/v.sql", "{{ config(materialized='view') }}\nselect id * 10 as x from {{ ref('base') }}"),
    ]);
    let p = dir.path();
    ok(&run(p, &["run"]));
    assert!(p.join("warehouse/main/v/_dp_view.sql").is_file());
    assert_eq!(csv(p, "select x from main.v order by x"), "x\n10\n20");
}

#[test]
fn fail_fast_stops_launching_work() {
    let dir = project(&[
        ("warehouse.toml", "[project]\nname = \"p\"\n[targets.dev]\nthreads = 1\n[models]\nmaterialized = \"table\"\n"),
        ("models/a_bad.sql", "select nope from (select 1 as x) t"),
        ("models/b.sql", "select 1 as id"),
        ("models/c.sql", "select 2 as id"),
    ]);
    let o = run(dir.path(), &["run", "--fail-fast"]);
    assert_eq!(o.status.code(), Some(1));
    let err = stderr(&o);
    assert!(err.contains("ERROR=1"), "{err}");
    // a_bad runs first (stable order); with one thread nothing else starts.
    assert!(err.contains("Done. PASS=0 WARN=0 ERROR=1 SKIP=2 NO-OP=0 TOTAL=3"), "{err}");
}

#[test]
fn composite_unique_keys_for_merge_and_delete_insert() {
    for strategy in ["merge", "delete+insert"] {
        let model = format!(
            "{{{{ config(materialized='incremental', unique_key=['k1', 'k2'], incremental_strategy='{strategy}') }}}}\n\
             select * from (values (1, 'a', 'old'), (1, 'b', 'old'), (2, 'a', 'old')) as t(k1, k2, v)\n\
             {{% if is_incremental() %}} where false union all select 1, 'b', 'new' union all select 3, 'c', 'new' {{% endif %}}"
        );
        let dir = project(&[("warehouse.toml", TOML), ("models/inc.sql", &model)]);
        let p = dir.path();
        ok(&run(p, &["run"]));
        ok(&run(p, &["run"]));
        assert_eq!(csv(p, "select k1, k2, v from main.inc order by k1, k2"), "k1,k2,v\n1,a,old\n1,b,new\n2,a,old\n3,c,new", "strategy {strategy}");
    }
}

/// `dp retry` runs the last command again on its failed and skipped nodes
/// only, with its flags; with nothing left to retry it says so.
#[test]
fn retry_runs_only_what_failed_or_was_skipped() {
    let dir = project(&[
        ("warehouse.toml", "[project]\nname = \"p\"\n"),
        ("models/a.sql", "{{ config(materialized='table') }}\nselect 1 as id"),
        ("models/b.sql", "{{ config(materialized='table') }}\nselect missing from {{ ref('a') }}"),
        ("models/c.sql", "{{ config(materialized='table') }}\nselect * from {{ ref('b') }}"),
    ]);
    let p = dir.path();
    let o = run(p, &["retry"]);
    assert_eq!(o.status.code(), Some(1));
    assert!(stderr(&o).contains("run_results.json: No such file or directory"), "{}", stderr(&o));
    let o = run(p, &["run", "--full-refresh"]);
    assert_eq!(o.status.code(), Some(1));
    assert!(stderr(&o).contains("Done. PASS=1 WARN=0 ERROR=1 SKIP=1 NO-OP=0 TOTAL=3"), "{}", stderr(&o));
    std::fs::write(p.join("models/b.sql"), "{{ config(materialized='table') }}\nselect id from {{ ref('a') }}").unwrap();
    let o = run(p, &["retry"]);
    ok(&o);
    let err = stderr(&o);
    assert!(err.contains("Done. PASS=2 WARN=0 ERROR=0 SKIP=0 NO-OP=0 TOTAL=2"), "{err}");
    assert!(err.contains("1 of 2 START sql table model main.b") && err.contains("2 of 2 START sql table model main.c"), "{err}");
    let rr: serde_json::Value = serde_json::from_str(&std::fs::read_to_string(p.join("target/run_results.json")).unwrap()).unwrap();
    assert_eq!(rr["args"], serde_json::json!({"which": "run", "full_refresh": true, "store_failures": false}));
    let o = run(p, &["retry"]);
    ok(&o);
    assert!(stderr(&o).contains("Nothing to do: the last run had no failed or skipped nodes."), "{}", stderr(&o));
}

/// As dbt, a node whose Jinja asks the warehouse compiles just before it
/// runs (after its parents are built, on a first build too), and a
/// post-hook renders after its model is built, so its `statement` sees it.
#[test]
fn introspecting_nodes_and_hooks_compile_when_they_run() {
    let dir = project(&[
        ("warehouse.toml", "[project]\nname = \"p\"\n[models]\nmaterialized = \"table\"\n"),
        ("models/wide.sql", "select 1 as id, 'a' as colour, 2.5 as price"),
        (
            "models/narrow.sql",
            "{% set cols = adapter.get_columns_in_relation(ref('wide')) | map(attribute='name') | reject('equalto', 'price') | list %}\nselect {{ cols | join(', ') }} from {{ ref('wide') }}",
        ),
        (
            "models/logged.sql",
            "{{ config(post_hook=\"{% call statement('ins') %}insert into {{ this }} values (2, 'b'){% endcall %}\") }}\nselect 1 as id, 'a' as colour",
        ),
    ]);
    let p = dir.path();
    ok(&run(p, &["run", "--threads", "1"]));
    assert_eq!(csv(p, "select * from main.narrow"), "id,colour\n1,a");
    assert_eq!(csv(p, "select * from main.logged order by id"), "id,colour\n1,a\n2,b");
    let compiled = std::fs::read_to_string(p.join("target/compiled/p/models/narrow.sql")).unwrap();
    assert_eq!(compiled.trim(), r#"select id, colour from "dp"."main"."wide""#);
}

/// The actions of one commit file of a table's log.
fn commit_actions(table: &Path, file: &str) -> Vec<serde_json::Value> {
    std::fs::read_to_string(table.join("_delta_log").join(file)).unwrap().lines().map(|l| serde_json::from_str(l).unwrap()).collect()
}

/// The adds and removes of a table's newest commit.
fn last_commit(table: &Path) -> (Vec<serde_json::Value>, usize) {
    let newest = std::fs::read_dir(table.join("_delta_log"))
        .unwrap()
        .flatten()
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .filter(|n| n.ends_with(".json"))
        .max()
        .unwrap();
    let lines = commit_actions(table, &newest);
    let adds = lines.iter().filter_map(|a| a.get("add").cloned()).collect();
    (adds, lines.iter().filter(|a| a.get("remove").is_some()).count())
}

fn records(add: &serde_json::Value) -> u64 {
    let stats: serde_json::Value = serde_json::from_str(add["stats"].as_str().unwrap()).unwrap();
    stats["numRecords"].as_u64().unwrap()
}

/// Replacing a table whose plan has two big partitions writes a file per
/// partition in one commit (with Delta statistics), reads back exactly as
/// deltalake's single writer leaves it (`DP_PARALLEL_WRITE=off`), keeps the
/// previous version readable, and leaves a small table as one file.
#[test]
fn a_replaced_table_is_written_by_one_writer_per_partition_in_one_commit() {
    let model = "select value as id, 'a' as src from range(0, {{ var('n', 1000) }}) \
                 union all select value + {{ var('n', 1000) }} as id, 'b' as src from range(0, {{ var('n', 1000) }})";
    let dir = project(&[("warehouse.toml", TOML), ("models/big.sql", model)]);
    let p = dir.path();
    let table = p.join("warehouse/main/big");
    let summary = "select count(*) as n, sum(id) as s, count(distinct id) as d, min(src) as lo, max(src) as hi from main.big";
    ok(&run(p, &["run", "--vars", "{n: 1000}"]));
    assert_eq!(csv(p, summary), "n,s,d,lo,hi\n2000,1999000,2000,a,b");

    // 200,000 rows per partition: each partition gets its own writer.
    let o = run(p, &["run", "--vars", "{n: 200000}"]);
    ok(&o);
    assert!(stderr(&o).contains("[REPLACE 400,000 rows"), "{}", stderr(&o));
    let (adds, removes) = last_commit(&table);
    assert_eq!(adds.len(), 2, "one file per partition: {adds:?}");
    assert_eq!(removes, 1, "the previous version's one file is removed");
    assert_eq!(adds.iter().map(records).collect::<Vec<_>>(), [200_000, 200_000]);
    let parallel = csv(p, summary);
    assert_eq!(parallel, "n,s,d,lo,hi\n400000,79999800000,400000,a,b");
    // The version before stays readable (Delta time travel in the shell).
    let o = run(p, &["sql", "--format", "csv", "-e", "select count(*) as n from delta_version('main.big', 0)"]);
    ok(&o);
    assert_eq!(stdout(&o).trim(), "n\n2000");

    // deltalake's own writer gives the same rows, in one file.
    let o = dp().current_dir(p).env("DP_PARALLEL_WRITE", "off").args(["run", "--vars", "{n: 200000}"]).output().unwrap();
    ok(&o);
    let (adds, removes) = last_commit(&table);
    assert_eq!((adds.len(), removes), (1, 2));
    assert_eq!(csv(p, summary), parallel);

    // Small partitions share one file.
    ok(&run(p, &["run", "--vars", "{n: 1000}"]));
    let (adds, removes) = last_commit(&table);
    assert_eq!((adds.len(), removes), (1, 1));
    assert_eq!(records(&adds[0]), 2000);
    assert_eq!(csv(p, summary), "n,s,d,lo,hi\n2000,1999000,2000,a,b");
}

/// Creating a table from a plan with two big partitions writes a file per
/// partition, and version 0 holds them with the protocol and metadata that
/// deltalake's own create writes (`DP_PARALLEL_WRITE=off`): one commit,
/// the same schema, the same rows.
#[test]
fn a_created_table_is_written_by_one_writer_per_partition_in_one_commit() {
    let model = "select value as id, 'a' as src, current_date as d from range(0, {{ var('n', 1000) }}) \
                 union all select value + {{ var('n', 1000) }} as id, 'b' as src, current_date as d from range(0, {{ var('n', 1000) }})";
    let summary = "select count(*) as n, sum(id) as s, count(distinct id) as c, min(src) as lo, max(src) as hi from main.big";
    let version0 = |p: &Path| -> Vec<serde_json::Value> {
        std::fs::read_to_string(p.join("warehouse/main/big/_delta_log/00000000000000000000.json"))
            .unwrap()
            .lines()
            .map(|l| serde_json::from_str(l).unwrap())
            .collect()
    };
    let mut logs = vec![];
    for parallel in ["on", "off"] {
        let dir = project(&[("warehouse.toml", TOML), ("models/big.sql", model)]);
        let p = dir.path();
        let o = dp().current_dir(p).env("DP_PARALLEL_WRITE", parallel).args(["run", "--vars", "{n: 200000}"]).output().unwrap();
        ok(&o);
        assert!(stderr(&o).contains("[CREATE 400,000 rows"), "{}", stderr(&o));
        assert_eq!(csv(p, summary), "n,s,c,lo,hi\n400000,79999800000,400000,a,b");
        let log = version0(p);
        let adds: Vec<&serde_json::Value> = log.iter().filter_map(|a| a.get("add")).collect();
        assert_eq!(adds.iter().map(|a| records(a)).sum::<u64>(), 400_000);
        assert_eq!(adds.len(), if parallel == "on" { 2 } else { 1 }, "{log:?}");
        let protocol = log.iter().find_map(|a| a.get("protocol")).cloned().expect("a protocol action");
        let mut metadata = log.iter().find_map(|a| a.get("metaData")).cloned().expect("a metaData action");
        for volatile in ["id", "createdTime"] {
            metadata.as_object_mut().unwrap().remove(volatile);
        }
        logs.push((protocol, metadata));
    }
    assert_eq!(logs[0], logs[1], "the parallel create's protocol and metadata differ from deltalake's");
}

/// dbt's incremental idiom, `where ts > (select max(ts) from {{ this }})`,
/// reaches the upstream scan as a literal: the upstream Delta table's files
/// that hold no newer row are skipped by their log statistics, not read.
/// The proof: the upstream's first file (all older than the newest row
/// already built) is deleted before the incremental run, which then still
/// succeeds, with exactly the new rows appended. The file holding that
/// newest row is still read: Delta truncates timestamp statistics to the
/// millisecond, so a file whose maximum equals the value may hold a newer
/// row. (A correlated subquery is left as written, with the same rows.)
#[test]
fn an_incremental_filter_on_max_of_this_skips_the_files_it_excludes() {
    let dir = project(&[
        ("warehouse.toml", TOML),
        (
            "models/events.sql",
            "{{ config(materialized='incremental', incremental_strategy='append') }}\n\
             select {{ var('day', 0) }} as day, cast('{{ var('ts', '2000-01-01') }}' as timestamp) as ts",
        ),
        (
            "models/latest.sql",
            "{{ config(materialized='incremental', incremental_strategy='append') }}\n\
             select day, ts from {{ ref('events') }} as e\n\
             {% if is_incremental() %}\n\
             where ts > (select max(ts) from {{ this }})\n\
               and exists (select 1 from {{ this }} as l where l.day = e.day - 1)\n\
             {% endif %}",
        ),
    ]);
    let p = dir.path();
    ok(&run(p, &["run", "--vars", "{day: 1, ts: '2024-01-01 10:00:00'}"]));
    ok(&run(p, &["run", "--vars", "{day: 2, ts: '2024-01-02 10:00:00'}"]));
    ok(&run(p, &["run", "-s", "events", "--vars", "{day: 3, ts: '2024-01-03 10:00:00'}"]));
    let events = p.join("warehouse/main/events");
    let first = commit_actions(&events, "00000000000000000000.json").into_iter().find_map(|a| a.get("add").cloned()).unwrap();
    std::fs::remove_file(events.join(first["path"].as_str().unwrap())).unwrap();
    let o = dp().current_dir(p).env("DP_LOG", "dp::engine::subquery=debug").args(["run", "-s", "latest"]).output().unwrap();
    ok(&o);
    assert!(stderr(&o).contains("scalar subquery evaluated before planning"), "{}", stderr(&o));
    assert!(stderr(&o).contains("value=1704189600000000"), "{}", stderr(&o));
    assert_eq!(csv(p, "select day, ts from main.latest order by day"), "day,ts\n1,2024-01-01 10:00:00\n2,2024-01-02 10:00:00\n3,2024-01-03 10:00:00");
}

/// The data files' paths of a table's newest commit: re-added ones (with
/// their deletion vector) and new ones.
fn vectors_of(adds: &[serde_json::Value]) -> Vec<(String, Option<i64>)> {
    let mut v: Vec<(String, Option<i64>)> =
        adds.iter().map(|a| (a["path"].as_str().unwrap().to_string(), a.get("deletionVector").and_then(|d| d["cardinality"].as_i64()))).collect();
    v.sort();
    v
}

/// A merge marks the table's old versions of the new rows deleted where
/// they lie (a deletion vector per touched file) and adds the new rows in a
/// file of their own: no existing data file is rewritten. A later merge
/// adds to a file's vector; time travel, deltalake's own MERGE (a model
/// with `merge_update_columns`), a full refresh, `dp clone` and the docs
/// catalog's row count all see the rows the vectors leave; and
/// `deletion_vectors=false` keeps a table on the legacy protocol.
#[test]
fn a_merge_marks_replaced_rows_in_deletion_vectors_and_rewrites_no_file() {
    // First build: 400,000 rows in two files (one per partition of the plan).
    // Later runs send the rows of `ids` with `v` = the run's letter.
    let model = |extra: &str| {
        format!(
            "{{{{ config(materialized='incremental', unique_key='id', incremental_strategy='merge'{extra}) }}}}\n\
             {{% if is_incremental() %}}\n\
             select id, '{{{{ var('v') }}}}' as v from unnest(make_array({{{{ var('ids') }}}})) as t(id)\n\
             {{% else %}}\n\
             select value as id, 'a' as v from range(0, 200000) union all select value + 200000 as id, 'a' as v from range(0, 200000)\n\
             {{% endif %}}"
        )
    };
    let dir = project(&[
        ("warehouse.toml", TOML),
        ("models/inc.sql", &model("")),
        ("models/plain.sql", &model(", deletion_vectors=false")),
        ("models/partial.sql", &model(", merge_update_columns=['v']")),
    ]);
    let p = dir.path();
    let table = p.join("warehouse/main/inc");
    let summary = |t: &str| {
        csv(
            p,
            &format!(
                "select count(*) as n, count(distinct id) as d, sum(id) as s, string_agg(v, '' order by id) filter (where v <> 'a') as changed from main.{t}"
            ),
        )
    };
    ok(&run(p, &["run"]));
    let (created, _) = last_commit(&table);
    assert_eq!(created.len(), 2, "{created:?}");
    let originals: Vec<String> = vectors_of(&created).into_iter().map(|(p, _)| p).collect();

    // One id in each file and one new id.
    let o = run(p, &["run", "--vars", "{ids: '5, 399999, 400000', v: b}"]);
    ok(&o);
    assert!(stderr(&o).contains("inc ") && stderr(&o).matches("[MERGE 3 rows").count() == 3, "{}", stderr(&o));
    let (adds, removes) = last_commit(&table);
    let got = vectors_of(&adds);
    assert_eq!(removes, 2);
    assert_eq!(got.iter().filter(|(path, _)| originals.contains(path)).map(|(_, c)| *c).collect::<Vec<_>>(), [Some(1), Some(1)], "{got:?}");
    assert_eq!(got.iter().filter(|(path, _)| !originals.contains(path)).map(|(_, c)| *c).collect::<Vec<_>>(), [None], "one new file: {got:?}");
    let after_b = "n,d,s,changed\n400001,400001,80000200000,bbb";
    assert_eq!(summary("inc"), after_b);
    assert_eq!(summary("plain"), after_b);
    assert_eq!(summary("partial"), after_b);
    let protocol = |t: &str| -> serde_json::Value {
        let dir = p.join("warehouse/main").join(t);
        let mut files: Vec<_> =
            std::fs::read_dir(dir.join("_delta_log")).unwrap().flatten().map(|e| e.path()).filter(|f| f.extension().is_some_and(|e| e == "json")).collect();
        files.sort();
        files.iter().rev().flat_map(|f| commit_actions(&dir, f.file_name().unwrap().to_str().unwrap())).find_map(|a| a.get("protocol").cloned()).unwrap()
    };
    assert_eq!((protocol("inc")["minReaderVersion"].as_i64(), protocol("inc")["readerFeatures"].clone()), (Some(3), serde_json::json!(["deletionVectors"])));
    assert_eq!(protocol("plain")["minReaderVersion"], 1, "deletion_vectors=false keeps the legacy protocol: {}", protocol("plain"));

    // Id 5 again (now in the second run's file) and id 7 (first file, which
    // already deletes id 5's old row): that file's vector holds both.
    ok(&run(p, &["run", "-s", "inc", "--vars", "{ids: '5, 7', v: c}"]));
    let (adds, removes) = last_commit(&table);
    let got = vectors_of(&adds);
    assert_eq!(removes, 2, "{got:?}");
    let first = got.iter().find(|(path, c)| originals.contains(path) && *c == Some(2));
    assert!(first.is_some(), "the first file's vector holds ids 5 and 7: {got:?}");
    assert_eq!(got.iter().filter(|(path, _)| !originals.contains(path)).count(), 2, "the second run's file (vector of 1) and this run's: {got:?}");
    assert_eq!(summary("inc"), "n,d,s,changed\n400001,400001,80000200000,ccbb");
    // Time travel reads each version with its vectors.
    let o = run(p, &["sql", "--format", "csv", "-e", "select count(*) as n, count(distinct id) as d from delta_version('main.inc', 2)"]);
    ok(&o);
    assert_eq!(stdout(&o).trim(), "n,d\n400001,400001");

    // deltalake's MERGE (the escape hatch) on a table with vectors.
    let o = dp().current_dir(p).env("DP_DELETION_VECTORS", "off").args(["run", "-s", "inc", "--vars", "{ids: '7, 400001', v: d}"]).output().unwrap();
    ok(&o);
    assert_eq!(summary("inc"), "n,d,s,changed\n400002,400002,80000600001,cdbbd");

    // The docs catalog counts the rows the vectors leave.
    ok(&run(p, &["docs", "generate"]));
    let catalog: serde_json::Value = serde_json::from_str(&std::fs::read_to_string(p.join("target/catalog.json")).unwrap()).unwrap();
    assert_eq!(catalog["nodes"]["model.p.inc"]["stats"]["row_count"]["value"], 400002, "{}", catalog["nodes"]["model.p.inc"]["stats"]);

    // A full refresh replaces files and vectors in one commit.
    ok(&run(p, &["run", "-s", "inc", "--full-refresh"]));
    let (adds, removes) = last_commit(&table);
    assert!(removes >= 3 && adds.iter().all(|a| a.get("deletionVector").is_none_or(|d| d.is_null())), "{adds:?}");
    assert_eq!(summary("inc"), "n,d,s,changed\n400000,400000,79999800000,");

    // Maintenance: compaction rewrites the files without their deleted rows,
    // vacuum then drops the old files and vectors, a checkpoint is written.
    ok(&run(p, &["run", "-s", "inc", "--vars", "{ids: '5, 7', v: e}"]));
    ok(&run(p, &["maintain", "-s", "inc", "--retention", "0s"]));
    let left: Vec<String> = std::fs::read_dir(&table).unwrap().flatten().map(|e| e.file_name().to_string_lossy().into_owned()).collect();
    assert!(left.iter().all(|f| !f.starts_with("deletion_vector_")), "{left:?}");
    assert_eq!(summary("inc"), "n,d,s,changed\n400000,400000,79999800000,ee");
}
