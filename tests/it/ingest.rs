//! `dp ingest`: file drops and PostgreSQL tables into bronze, with the
//! ingestion log, watermarks and schema history in `dp_meta`.

use crate::common::*;
use std::path::Path;

const TOML: &str = "[project]\nname = \"p\"\n[models]\nmaterialized = \"table\"\n";

fn files_sources(extra: &str) -> String {
    format!(
        "version: 2\nsources:\n  - name: raw\n    tables:\n      - name: sales\n        meta:\n          external_location: \"bronze/files/sales/*/sales.parquet\"\n          ingest:\n            from: files\n            path: landing/sales\n{extra}"
    )
}

fn files_project(extra: &str) -> tempfile::TempDir {
    let dir = project(&[
        ("warehouse.toml", TOML),
        ("models/_sources.yml", &files_sources(extra)),
        ("models/sales_total.sql", "select count(*) as n, sum(amount) as amount from {{ source('raw', 'sales') }}"),
    ]);
    std::fs::create_dir_all(dir.path().join("landing/sales")).unwrap();
    dir
}

fn land(dir: &Path, name: &str, bytes: &[u8]) {
    std::fs::write(dir.join("landing/sales").join(name), bytes).unwrap();
}

/// Rows of a query as CSV lines (header dropped).
fn sql(dir: &Path, q: &str) -> Vec<String> {
    let o = run(dir, &["sql", "--format", "csv", "-e", q]);
    ok(&o);
    stdout(&o).lines().skip(1).map(str::to_string).collect()
}

fn bronze_files(dir: &Path) -> Vec<String> {
    let base = dir.join("bronze/files/sales");
    let mut out: Vec<String> = walkdir(&base).into_iter().map(|p| p.strip_prefix(&base).unwrap().display().to_string()).collect();
    out.sort();
    out
}

fn walkdir(p: &Path) -> Vec<std::path::PathBuf> {
    let mut out = vec![];
    if let Ok(rd) = std::fs::read_dir(p) {
        for e in rd.flatten() {
            if e.path().is_dir() {
                out.extend(walkdir(&e.path()));
            } else {
                out.push(e.path());
            }
        }
    }
    out
}

#[test]
fn files_land_once_and_changed_files_land_again() {
    let dir = files_project("");
    let p = dir.path();
    land(p, "day1.csv", b"id,amount,note\n1,10.5,a\n2,20,b\n");
    land(p, "day2.csv", b"id,amount,note\n3,1.25,c\n");
    let o = run(p, &["ingest"]);
    ok(&o);
    let err = stderr(&o);
    assert!(err.contains("1 of 1 OK ingested raw.sales: 3 rows, "), "{err}");
    assert!(err.contains("(2 new files)"), "{err}");
    assert_eq!(bronze_files(p).len(), 2, "{:?}", bronze_files(p));

    // A re-run finds nothing new.
    let o = run(p, &["ingest"]);
    ok(&o);
    assert!(stderr(&o).contains("raw.sales: 0 rows, 0 B in "), "{}", stderr(&o));
    assert!(stderr(&o).contains("(0 new files; 2 already landed)"), "{}", stderr(&o));

    // A changed file lands again as a new version; a new column is a new schema version.
    land(p, "day2.csv", b"id,amount,note,channel\n3,1.25,c,web\n4,2,d,shop\n");
    let o = run(p, &["ingest"]);
    ok(&o);
    let err = stderr(&o);
    assert!(err.contains("raw.sales: 2 rows, "), "{err}");
    assert!(err.contains("schema v2: added channel Utf8"), "{err}");
    assert_eq!(bronze_files(p).len(), 3);

    // dp build reads what landed (old files see NULL for the new column).
    ok(&run(p, &["run"]));
    assert_eq!(sql(p, "select n, amount from main.sales_total"), ["5,35.0"]);
    assert_eq!(sql(p, "select count(channel) from raw.sales"), ["2"]);

    // The log: one success row per landed file, with checksums and keys.
    let log = sql(
        p,
        "select status, row_count, source_file like '%day2.csv', length(file_checksum), object_key like 'bronze/files/sales/%/sales.parquet' from dp_meta.ingestion_log order by finished_at",
    );
    assert_eq!(log, ["success,2,false,64,true", "success,1,true,64,true", "success,2,true,64,true"]);
    assert_eq!(sql(p, "select version, change_summary from dp_meta.schema_history order by version"), ["1,initial schema", "2,added channel Utf8"]);
}

#[test]
fn json_ndjson_parquet_and_latin1_files_land() {
    let dir = files_project("");
    let p = dir.path();
    land(p, "a.json", br#"[{"id": 1, "amount": 1.5, "note": "x"}]"#);
    land(p, "b.ndjson", b"{\"id\": 2, \"amount\": 2.5, \"note\": \"y\"}\n{\"id\": 3, \"amount\": 3.0, \"note\": \"z\"}\n");
    land(p, "c.csv", b"id,amount,note\n4,4.0,Jos\xe9\n");
    ok(&run(p, &["ingest"]));
    assert_eq!(sql(p, "select id, note from raw.sales order by id"), ["1,x", "2,y", "3,z", "4,José"]);
    // A Parquet drop: the bronze file of the CSV, copied into the landing folder.
    let bronze = walkdir(&p.join("bronze/files/sales")).into_iter().max().unwrap();
    std::fs::copy(&bronze, p.join("landing/sales/d.parquet")).unwrap();
    let o = run(p, &["ingest"]);
    ok(&o);
    assert!(stderr(&o).contains("raw.sales: 1 rows, "), "{}", stderr(&o));
}

/// Runs `dp ingest` expecting exit 1; returns stderr.
fn ingest_fails(p: &Path) -> String {
    let o = run(p, &["ingest"]);
    let err = stderr(&o);
    assert_eq!(o.status.code(), Some(1), "{err}");
    assert!(!err.contains("panicked"), "{err}");
    err
}

#[test]
fn bad_files_fail_with_file_and_line_and_a_failed_log_row() {
    let dir = files_project("");
    let p = dir.path();
    land(p, "ragged.csv", b"id,amount,note\n1,10,a\n2,20\n");
    let err = ingest_fails(p);
    let file = p.join("landing/sales/ragged.csv").display().to_string();
    assert!(err.contains("1 of 1 ERROR ingesting raw.sales in "), "{err}");
    assert!(
        err.contains(&format!(
            "error: source raw.sales: {file}:3: row has 2 fields, header has 3\n  hint: add the missing fields (leave a field empty for NULL)"
        )),
        "{err}"
    );
    assert!(bronze_files(p).is_empty(), "{:?}", bronze_files(p));
    assert_eq!(sql(p, "select status, source_file = error from dp_meta.ingestion_log"), ["failed,false"]);
    assert_eq!(sql(p, "select source_file from dp_meta.ingestion_log"), vec![file]);

    std::fs::remove_file(p.join("landing/sales/ragged.csv")).unwrap();
    land(p, "empty.csv", b"");
    let err = ingest_fails(p);
    assert!(err.contains("landing/sales/empty.csv: the file is empty\n  hint: remove it from the landing folder"), "{err}");
    std::fs::remove_file(p.join("landing/sales/empty.csv")).unwrap();

    land(p, "header.csv", b"id,amount,note\n");
    let err = ingest_fails(p);
    assert!(err.contains("landing/sales/header.csv: the file has a header row but no data rows"), "{err}");
    std::fs::remove_file(p.join("landing/sales/header.csv")).unwrap();

    land(p, "bad.json", b"{\"id\": 1}\n{\"id\": \n");
    let err = ingest_fails(p);
    assert!(err.contains("landing/sales/bad.json:2:7: malformed JSON: EOF while parsing a value\n  hint: fix the line, or set on_error: skip"), "{err}");
    std::fs::remove_file(p.join("landing/sales/bad.json")).unwrap();
    assert!(bronze_files(p).is_empty());
    assert_eq!(sql(p, "select count(*) from dp_meta.ingestion_log where status = 'failed'"), ["4"]);
}

#[test]
fn invalid_utf8_fails_when_the_encoding_is_utf8() {
    let dir = files_project("            encoding: utf-8\n");
    let p = dir.path();
    land(p, "x.csv", b"id,amount,note\n1,2,caf\xe9\n");
    let err = ingest_fails(p);
    assert!(err.contains("landing/sales/x.csv:2: invalid UTF-8 in "), "{err}");
}

#[test]
fn skip_drops_malformed_rows_and_logs_them() {
    let dir = files_project("            on_error: skip\n");
    let p = dir.path();
    land(p, "x.csv", b"id,amount,note\n1,10,a\n2,20\n3,30,c,extra\n4,40,d\n");
    let o = run(p, &["ingest"]);
    ok(&o);
    assert!(stderr(&o).contains("raw.sales: 2 rows, "), "{}", stderr(&o));
    assert!(stderr(&o).contains("2 malformed rows skipped"), "{}", stderr(&o));
    assert_eq!(
        sql(p, "select skipped_rows, bad_lines from dp_meta.ingestion_log").join("\n"),
        "2,\"line 3: 2 fields, header has 3\nline 4: 4 fields, header has 3\""
    );
}

#[test]
fn freeze_fails_on_a_schema_change_and_lands_nothing() {
    let dir = files_project("            schema_policy: freeze\n");
    let p = dir.path();
    land(p, "a.csv", b"id,amount\n1,10\n");
    ok(&run(p, &["ingest"]));
    land(p, "b.csv", b"id,amount,extra\n2,20,x\n");
    let err = ingest_fails(p);
    assert!(
        err.contains("the schema changed and schema_policy is freeze: added extra Utf8\n  hint: change the source back, or set schema_policy: evolve"),
        "{err}"
    );
    assert_eq!(bronze_files(p).len(), 1);
}

#[test]
fn parse_checks_ingest_blocks_with_file_and_line() {
    let bad = |block: &str| -> String {
        let yml = format!(
            "version: 2\nsources:\n  - name: raw\n    tables:\n      - name: orders\n        meta:\n          external_location: \"bronze/pg/orders/*/orders.parquet\"\n          ingest:\n{block}"
        );
        let dir = project(&[("warehouse.toml", TOML), ("models/_sources.yml", &yml)]);
        let o = run(dir.path(), &["parse"]);
        assert_eq!(o.status.code(), Some(1), "{}", stderr(&o));
        stderr(&o).trim().to_string()
    };
    assert_eq!(
        bad("            from: postgres\n            table: public.orders\n            mode: sometimes\n"),
        "error: models/_sources.yml:11: source raw.orders: ingest: mode 'sometimes' is not full or incremental\n  hint: write mode: full or mode: incremental"
    );
    assert_eq!(
        bad("            from: postgres\n            table: public.orders\n            mode: incremental\n"),
        "error: models/_sources.yml:11: source raw.orders: ingest: mode: incremental needs a watermark_column\n  hint: add watermark_column: <a timestamp, date or integer column that grows when rows change>"
    );
    assert_eq!(
        bad("            from: postgres\n            table: public.orders\n            watermark: updated_at\n"),
        "error: models/_sources.yml:11: source raw.orders: ingest: unknown key `watermark`\n  hint: did you mean `watermark_column`? keys for from: postgres are from, table, query, mode, watermark_column, lookback, schema_policy, connection"
    );
}

#[test]
fn an_unwritable_bronze_prefix_fails_and_logs() {
    let dir = files_project("");
    let p = dir.path();
    land(p, "a.csv", b"id,amount\n1,10\n");
    // A file where the bronze folder should be: nothing can be written under it.
    std::fs::create_dir_all(p.join("bronze/files")).unwrap();
    std::fs::write(p.join("bronze/files/sales"), b"not a folder").unwrap();
    let err = ingest_fails(p);
    assert!(err.contains("error: source raw.sales: cannot create the bronze folder "), "{err}");
    assert_eq!(sql(p, "select status from dp_meta.ingestion_log"), ["failed"]);
}

#[test]
fn a_published_file_the_log_lost_is_recovered_not_ingested_twice() {
    let dir = files_project("");
    let p = dir.path();
    land(p, "a.csv", b"id,amount\n1,10\n2,20\n");
    ok(&run(p, &["ingest"]));
    // As if the run had been killed between publishing the file and logging it.
    std::fs::remove_dir_all(p.join("warehouse/dp_meta/ingestion_log")).unwrap();
    let o = run(p, &["ingest"]);
    ok(&o);
    assert!(stderr(&o).contains("(0 new files; 1 already landed; 1 file(s) of an interrupted run logged)"), "{}", stderr(&o));
    assert_eq!(bronze_files(p).len(), 1);
    assert_eq!(sql(p, "select count(*) from raw.sales"), ["2"]);
}

/// Landing files and bronze on S3 (moto's server from scripts/services/s3.sh;
/// skipped without it, except under CI=true).
#[test]
fn files_land_from_an_s3_prefix_into_s3_bronze() {
    use object_store::{ObjectStore, ObjectStoreExt, PutPayload};
    let ep = match std::env::var("DP_TEST_S3_ENDPOINT") {
        Ok(e) if !e.is_empty() => e,
        _ if std::env::var("CI").as_deref() == Ok("true") => panic!("DP_TEST_S3_ENDPOINT is not set but CI=true: scripts/test.sh starts the S3 server"),
        _ => return eprintln!("skipping: DP_TEST_S3_ENDPOINT is not set (run scripts/test.sh)"),
    };
    let (key, secret) = ("dp-test", "dp-test-secret-do-not-print");
    let bucket = format!("dp-ingest-{}", &uuid::Uuid::new_v4().simple().to_string()[..12]);
    let host = ep.trim_start_matches("http://");
    let mut sock = std::net::TcpStream::connect(host).unwrap();
    use std::io::{Read, Write};
    write!(sock, "PUT /{bucket} HTTP/1.1\r\nHost: {host}\r\nContent-Length: 0\r\nConnection: close\r\n\r\n").unwrap();
    let mut r = String::new();
    sock.read_to_string(&mut r).unwrap();
    assert!(r.contains(" 200 "), "creating bucket: {r}");
    let store = object_store::aws::AmazonS3Builder::new()
        .with_endpoint(&ep)
        .with_bucket_name(&bucket)
        .with_region("us-east-1")
        .with_access_key_id(key)
        .with_secret_access_key(secret)
        .with_allow_http(true)
        .build()
        .unwrap();
    let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
    let put = |k: &str, v: &'static [u8]| rt.block_on(store.put(&object_store::path::Path::from(k), PutPayload::from_static(v))).unwrap();
    put("landing/sales/a.csv", b"id,amount\n1,10\n2,20\n");
    put("landing/sales/b.ndjson", b"{\"id\": 3, \"amount\": 30}\n");
    let toml = format!(
        "{TOML}[targets.s3]\nwarehouse = \"s3://{bucket}/warehouse\"\nsource_root = \"s3://{bucket}\"\nschema = \"main\"\n[targets.s3.s3]\nendpoint = \"{ep}\"\npath_style = true\nallow_http = true\n"
    );
    let dir = project(&[("warehouse.toml", &toml), ("models/_sources.yml", &files_sources(""))]);
    let p = dir.path();
    let dps = |args: &[&str]| {
        dp().current_dir(p)
            .env("DP_TARGET", "s3")
            .env("AWS_ACCESS_KEY_ID", key)
            .env("AWS_SECRET_ACCESS_KEY", secret)
            .env("AWS_REGION", "us-east-1")
            .args(args)
            .output()
            .unwrap()
    };
    let o = dps(&["ingest"]);
    ok(&o);
    assert!(stderr(&o).contains("raw.sales: 3 rows, "), "{}", stderr(&o));
    assert!(!stderr(&o).contains(secret));
    let o = dps(&["ingest"]);
    ok(&o);
    assert!(stderr(&o).contains("(0 new files; 2 already landed)"), "{}", stderr(&o));
    let o = dps(&["sql", "--format", "csv", "-e", "select sum(amount) from raw.sales; select count(*) from dp_meta.ingestion_log"]);
    ok(&o);
    assert_eq!(stdout(&o).lines().filter(|l| !l.contains('(')).collect::<Vec<_>>(), ["60", "2"], "{}", stdout(&o));
    use futures::TryStreamExt;
    let keys: Vec<String> =
        rt.block_on(store.list(Some(&object_store::path::Path::from("bronze"))).map_ok(|m| m.location.to_string()).try_collect::<Vec<_>>()).unwrap();
    assert_eq!(keys.len(), 2, "{keys:?}");
    assert!(keys.iter().all(|k| k.starts_with("bronze/files/sales/") && k.ends_with("/sales.parquet")), "{keys:?}");
}

// ---------------------------------------------------------------------------
// PostgreSQL (the test script's server)
// ---------------------------------------------------------------------------

use crate::postgres::{Pg, pg};

fn pg_project(pg: &Pg, tables: &str) -> tempfile::TempDir {
    let _ = pg;
    project(&[("warehouse.toml", TOML), ("models/_sources.yml", &format!("version: 2\nsources:\n  - name: raw\n    tables:\n{tables}"))])
}

fn pg_table(name: &str, ingest: &str) -> String {
    format!(
        "      - name: {name}\n        meta:\n          external_location: \"bronze/pg/{name}/*/{name}.parquet\"\n          ingest:\n            from: postgres\n{ingest}"
    )
}

fn lake(pg: &Pg, p: &Path, q: &str) -> Vec<String> {
    let o = pg.dp(p, &["sql", "--format", "csv", "-e", q]);
    ok(&o);
    stdout(&o).lines().skip(1).map(str::to_string).collect()
}

const ORDERS: &str = "CREATE TABLE public.orders (id bigint PRIMARY KEY, status text, total numeric(12,2), tags text[], payload jsonb, \
     uid uuid, day date, updated_at timestamp NOT NULL, seen timestamptz);
     INSERT INTO public.orders VALUES
       (1, 'new', 10.50, '{a,b}', '{\"k\": 1}', 'a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a11', '2024-01-01', '2024-01-01 10:00', '2024-01-01 10:00+02'),
       (2, 'new', -3.25, NULL, NULL, NULL, NULL, '2024-01-01 11:00', NULL),
       (3, 'shipped', 0, '{}', '[1, 2]', NULL, NULL, '2024-01-01 12:00', NULL);";

#[test]
#[ignore = "needs PostgreSQL: run by scripts/test.sh"]
fn pg_full_then_incremental_extracts_with_the_watermark_boundary() {
    let pg = pg();
    pg.exec(ORDERS);
    let dir =
        pg_project(&pg, &pg_table("orders", "            table: public.orders\n            mode: incremental\n            watermark_column: updated_at\n"));
    let p = dir.path();
    let o = pg.dp(p, &["ingest"]);
    ok(&o);
    let err = stderr(&o);
    assert!(err.contains("1 of 1 OK ingested raw.orders: 3 rows, "), "{err}");
    assert!(err.contains("(incremental, watermark ∅ → 2024-01-01 12:00:00)"), "{err}");
    assert_eq!(
        lake(&pg, p, "select id, status, total, array_to_string(tags, '|'), payload, uid, day, updated_at, seen from raw.orders order by id"),
        [
            "1,new,10.50,a|b,\"{\"\"k\"\": 1}\",a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a11,2024-01-01,2024-01-01 10:00:00,2024-01-01T08:00:00Z",
            "2,new,-3.25,,,,,2024-01-01 11:00:00,",
            "3,shipped,0.00,,\"[1, 2]\",,,2024-01-01 12:00:00,",
        ]
    );
    // Nothing new: no file, the watermark stays.
    let o = pg.dp(p, &["ingest"]);
    ok(&o);
    assert!(stderr(&o).contains("raw.orders: 0 rows, 0 B in "), "{}", stderr(&o));
    assert!(stderr(&o).contains("(incremental, no rows after watermark 2024-01-01 12:00:00)"), "{}", stderr(&o));

    // A row at exactly the stored watermark was read last time (`>` the
    // stored value); rows after it, up to the new maximum inclusive, are read.
    pg.exec("UPDATE public.orders SET status = 'paid', updated_at = '2024-01-01 13:00' WHERE id = 1; INSERT INTO public.orders (id, status, updated_at) VALUES (4, 'new', '2024-01-01 13:00');");
    let o = pg.dp(p, &["ingest"]);
    ok(&o);
    assert!(stderr(&o).contains("raw.orders: 2 rows, "), "{}", stderr(&o));
    assert!(stderr(&o).contains("watermark 2024-01-01 12:00:00 → 2024-01-01 13:00:00"), "{}", stderr(&o));
    assert_eq!(lake(&pg, p, "select id, status from raw.orders where updated_at > '2024-01-01 12:00:00' order by id"), ["1,paid", "4,new"]);
    assert_eq!(lake(&pg, p, "select count(*) from raw.orders"), ["5"]);
    assert_eq!(lake(&pg, p, "select source_name, watermark_column, watermark_value from dp_meta.watermarks"), ["raw.orders,updated_at,2024-01-01 13:00:00"]);
    assert_eq!(
        lake(&pg, p, "select mode, status, row_count, watermark_from, watermark_to, schema_version from dp_meta.ingestion_log order by finished_at"),
        [
            "incremental,success,3,,2024-01-01 12:00:00,1",
            "incremental,success,0,2024-01-01 12:00:00,2024-01-01 12:00:00,",
            "incremental,success,2,2024-01-01 12:00:00,2024-01-01 13:00:00,1",
        ]
    );
    // --full-refresh extracts everything again into a new dated file.
    let o = pg.dp(p, &["ingest", "--full-refresh"]);
    ok(&o);
    assert!(stderr(&o).contains("raw.orders: 4 rows, "), "{}", stderr(&o));
}

#[test]
#[ignore = "needs PostgreSQL: run by scripts/test.sh"]
fn pg_lookback_rereads_rows_committed_late() {
    let pg = pg();
    pg.exec("CREATE TABLE ev (id int, at timestamptz NOT NULL); INSERT INTO ev VALUES (1, '2024-01-01 10:00Z'), (2, '2024-01-01 11:00Z');");
    let dir = pg_project(
        &pg,
        &pg_table("ev", "            table: ev\n            mode: incremental\n            watermark_column: at\n            lookback: 1 hour\n"),
    );
    let p = dir.path();
    let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
    // A transaction stamps a row at 10:30 and commits only after the extract.
    let late = rt.block_on(async {
        let c = pg.connect().await;
        c.batch_execute("BEGIN; INSERT INTO ev VALUES (3, '2024-01-01 10:30Z')").await.unwrap();
        c
    });
    ok(&pg.dp(p, &["ingest"]));
    assert_eq!(lake(&pg, p, "select id from raw.ev order by id"), ["1", "2"]);
    rt.block_on(async { late.batch_execute("COMMIT").await.unwrap() });
    pg.exec("INSERT INTO ev VALUES (4, '2024-01-01 12:00Z')");
    let o = pg.dp(p, &["ingest"]);
    ok(&o);
    // The lookback re-reads after 10:00: the late row and row 2 again (staging dedups on the key).
    assert!(stderr(&o).contains("watermark 2024-01-01 11:00:00+00 → 2024-01-01 12:00:00+00"), "{}", stderr(&o));
    assert_eq!(lake(&pg, p, "select id, count(*) from raw.ev group by id order by id"), ["1,1", "2,2", "3,1", "4,1"]);
}

#[test]
#[ignore = "needs PostgreSQL: run by scripts/test.sh"]
fn pg_schema_evolution_and_freeze() {
    let pg = pg();
    pg.exec(
        "CREATE TABLE a (id int NOT NULL, v text); INSERT INTO a VALUES (1, 'x'); CREATE TABLE b (id int NOT NULL, v text); INSERT INTO b VALUES (1, 'x');",
    );
    let tables = pg_table("a", "            table: a\n") + &pg_table("b", "            table: b\n            schema_policy: freeze\n");
    let dir = pg_project(&pg, &tables);
    let p = dir.path();
    ok(&pg.dp(p, &["ingest"]));
    pg.exec("ALTER TABLE a ADD COLUMN extra bigint; ALTER TABLE b ADD COLUMN extra bigint; UPDATE a SET extra = 7; INSERT INTO a VALUES (2, 'y', 8);");
    let o = pg.dp(p, &["ingest"]);
    assert_eq!(o.status.code(), Some(1), "{}", stderr(&o));
    let err = stderr(&o);
    assert!(err.contains("raw.a: 2 rows, "), "{err}");
    assert!(err.contains("schema v2: added extra Int64"), "{err}");
    assert!(err.contains("ERROR ingesting raw.b in "), "{err}");
    assert!(err.contains("error: source raw.b: extracting from postgres://"), "{err}");
    assert!(err.contains("the schema changed and schema_policy is freeze: added extra Int64"), "{err}");
    // Old files read NULL for the new column.
    assert_eq!(lake(&pg, p, "select id, extra from raw.a order by id, extra nulls first"), ["1,", "1,7", "2,8"]);
    assert_eq!(lake(&pg, p, "select count(*) from raw.b"), ["1"]);
    assert_eq!(
        lake(&pg, p, "select source_name, version, change_summary from dp_meta.schema_history order by 1, 2"),
        ["raw.a,1,initial schema", "raw.a,2,added extra Int64", "raw.b,1,initial schema"]
    );
}

#[test]
#[ignore = "needs PostgreSQL: run by scripts/test.sh"]
fn pg_bad_inputs_fail_with_clear_messages_and_keep_the_watermark() {
    let pg = pg();
    pg.exec("CREATE TABLE t (id int, at timestamp, pt point); INSERT INTO t VALUES (1, '2024-01-01', '(1,2)'), (2, NULL, NULL);");
    let fails = |ingest: &str| -> String {
        let dir = pg_project(&pg, &pg_table("t", ingest));
        let o = pg.dp(dir.path(), &["ingest"]);
        let err = stderr(&o);
        assert_eq!(o.status.code(), Some(1), "{err}");
        assert_eq!(lake(&pg, dir.path(), "select status from dp_meta.ingestion_log"), ["failed"]);
        assert!(!dir.path().join("bronze/pg/t").read_dir().map(|mut d| d.next().is_some()).unwrap_or(false), "a bronze file was left");
        err
    };
    let err = fails("            table: public.nope\n");
    assert!(err.contains("public.nope: ERROR: relation \"public.nope\" does not exist\n  hint: check `table:` in the ingest block"), "{err}");
    let err = fails("            query: select id, at from t\n            mode: incremental\n            watermark_column: updated\n");
    assert!(err.contains("watermark column updated not found in the query (columns: id, at)"), "{err}");
    let err = fails("            query: select id, at from t\n            mode: incremental\n            watermark_column: at\n");
    assert!(err.contains("1 rows of the query have NULL in the watermark column at; incremental extracts would never read them"), "{err}");
    let err = fails("            table: t\n");
    assert!(err.contains("column pt of t has type point, which dp cannot extract\n  hint: cast it in a `query:` (e.g. \"pt\"::text) or leave it out"), "{err}");
    // Unreachable: the message names the server, never the password.
    let dir = pg_project(&pg, &pg_table("t", "            table: t\n            connection: {port: 1, password_env: DP_TEST_SECRET}\n"));
    let mut c = crate::common::dp();
    let o = pg.env(&mut c).env("DP_TEST_SECRET", "hunter2-do-not-print").current_dir(dir.path()).arg("ingest").output().unwrap();
    let err = stderr(&o);
    assert_eq!(o.status.code(), Some(1), "{err}");
    assert!(
        err.contains(&format!(
            "error: source raw.t: extracting from postgres://{}@127.0.0.1:1/{}: gave up after 4 attempts: could not connect to ",
            "postgres", pg.db
        )),
        "{err}"
    );
    assert!(!err.contains("hunter2"), "{err}");
}

#[test]
#[ignore = "needs PostgreSQL: run by scripts/test.sh"]
fn pg_sigkill_mid_extract_then_rerun_lands_exactly_the_rows() {
    let pg = pg();
    let n = 3_000_000;
    pg.exec(&format!("CREATE TABLE big AS SELECT g AS id, md5(g::text) AS a, md5((g * 7)::text) AS b, now() AS at FROM generate_series(1, {n}) g"));
    let dir = pg_project(&pg, &pg_table("big", "            table: big\n"));
    let p = dir.path();
    let mut c = crate::common::dp();
    pg.env(&mut c).current_dir(p).args(["ingest"]).stdout(std::process::Stdio::null()).stderr(std::process::Stdio::null());
    let mut child = c.spawn().unwrap();
    // Kill it once the bronze file is being written (a staged upload exists).
    let t = std::time::Instant::now();
    let staged = || walkdir(&p.join("bronze/pg/big")).iter().any(|f| f.to_string_lossy().contains('#'));
    while !staged() && t.elapsed() < std::time::Duration::from_secs(60) && child.try_wait().unwrap().is_none() {
        std::thread::sleep(std::time::Duration::from_millis(20));
    }
    assert!(child.try_wait().unwrap().is_none(), "the extract finished before it could be killed: raise n");
    child.kill().unwrap();
    child.wait().unwrap();
    let visible: Vec<_> = walkdir(&p.join("bronze/pg/big")).into_iter().filter(|f| f.extension().is_some_and(|e| e == "parquet")).collect();
    assert!(visible.is_empty(), "a partial file is visible: {visible:?}");
    ok(&pg.dp(p, &["ingest"]));
    assert_eq!(lake(&pg, p, "select count(*), count(distinct id), min(id), max(id) from raw.big"), [format!("{n},{n},1,{n}")]);
}

#[test]
#[ignore = "needs PostgreSQL: run by scripts/test.sh"]
fn pg_demo_runs_the_seed_flow_and_its_marts_equal_the_generated_ones() {
    let pg = pg();
    let generated = demo_project();
    demo_generate(generated.path(), "0.03");
    ok(&run(generated.path(), &["build"]));
    let flow = demo_project();
    let o = pg.dp(flow.path(), &["demo", "--target", "pg", "--scale", "0.03"]);
    ok(&o);
    let err = stderr(&o);
    assert!(err.contains("OK ingested raw.orders: "), "{err}");
    assert!(err.contains("(incremental, watermark ∅ → "), "{err}");
    assert!(err.contains("Ingesting the next day's changes"), "{err}");
    for mart in ["dim_customers", "dim_products", "fct_orders", "mart_customer_analytics", "mart_daily_summary", "mart_product_analytics"] {
        let q = format!("select * from marts.{mart}");
        let mut a = sql(generated.path(), &q);
        let mut b = lake(&pg, flow.path(), &q);
        a.sort();
        b.sort();
        assert!(!a.is_empty(), "{mart} is empty");
        assert!(a == b, "{mart} differs: {} vs {} rows; first {:?} vs {:?}", a.len(), b.len(), a.first(), b.first());
    }
    // And the marts were published.
    assert_eq!(pg.one("select count(*) from dp_meta.published"), "6");
}

#[test]
fn selection_picks_sources_and_one_failure_does_not_stop_the_others() {
    let extra = "      - name: other\n        meta:\n          external_location: \"bronze/files/other/*/other.parquet\"\n          ingest: {from: files, path: landing/missing}\n";
    let dir = project(&[("warehouse.toml", TOML), ("models/_sources.yml", &(files_sources("") + extra))]);
    let p = dir.path();
    std::fs::create_dir_all(p.join("landing/sales")).unwrap();
    land(p, "a.csv", b"id\n1\n");
    let o = run(p, &["ingest", "-s", "source:raw.sales"]);
    ok(&o);
    assert!(stderr(&o).contains("Ingesting 1 source table into bronze"), "{}", stderr(&o));
    // Both: `other` fails (no landing folder), `sales` still runs; exit 1.
    let o = run(p, &["ingest", "--threads", "2"]);
    let err = stderr(&o);
    assert_eq!(o.status.code(), Some(1), "{err}");
    assert!(err.contains("OK ingested raw.sales: 0 rows"), "{err}");
    assert!(err.contains("ERROR ingesting raw.other in "), "{err}");
    assert!(err.contains("landing/missing does not exist\n  hint: create it, or fix `path` in the source's ingest block"), "{err}");
    assert!(err.contains("Ingested 0 rows (0 B) from 1 table; ERROR=1"), "{err}");
}

#[test]
#[ignore = "needs PostgreSQL: run by scripts/test.sh"]
fn pg_types_map_in_reverse() {
    let pg = pg();
    pg.exec(
        "CREATE TYPE mood AS ENUM ('sad', 'ok'); CREATE DOMAIN posint AS integer CHECK (VALUE > 0); \
         CREATE TABLE ty (b boolean, s smallint, f4 real, f8 double precision, n numeric, big numeric(50,10), iv interval, \
           by bytea, tm time, m mood, d posint, ints int[], c char(3), vc varchar(5), j json); \
         INSERT INTO ty VALUES (true, -2, 1.5, 2.25, 123.456, 12345678901234567890123456789.0123456789, '1 year 2 mons 3 days 04:05:06.5', \
           '\\xdeadbeef', '13:14:15.5', 'ok', 7, '{1,NULL,3}', 'ab', 'xyz', '{\"a\": [1]}'), \
           (NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL);",
    );
    let dir = pg_project(&pg, &pg_table("ty", "            table: ty\n"));
    let p = dir.path();
    ok(&pg.dp(p, &["ingest"]));
    assert_eq!(
        lake(
            &pg,
            p,
            "select b, s, f4, f8, n, big, iv, encode(by, 'hex'), tm, m, d, array_to_string(ints, '|', 'null'), c, vc, j, \
             arrow_typeof(n), arrow_typeof(big), arrow_typeof(s), arrow_typeof(ints) from raw.ty order by b nulls last"
        ),
        [
            "true,-2,1.5,2.25,123.456000000,12345678901234567890123456789.0123456789,P1Y2M3DT4H5M6.5S,deadbeef,13:14:15.500,ok,7,1|null|3,ab ,xyz,\"{\"\"a\"\": [1]}\",\"Decimal128(38, 9)\",\"Decimal256(50, 10)\",Int16,List(Int32)",
            ",,,,,,,,,,,,,,,\"Decimal128(38, 9)\",\"Decimal256(50, 10)\",Int16,List(Int32)",
        ]
    );
}

/// Files over DP_INGEST_STREAM_MB (0 here: every file) stream through the
/// constant-memory CSV path; results match the whole-file path.
#[test]
fn large_csv_files_stream_with_the_same_results() {
    let ingest = |extra: &str, files: &[(&str, &[u8])], stream: bool| -> (std::process::Output, tempfile::TempDir) {
        let dir = files_project(extra);
        for (n, b) in files {
            land(dir.path(), n, b);
        }
        let mut c = dp();
        c.current_dir(dir.path()).arg("ingest");
        if stream {
            c.env("DP_INGEST_STREAM_MB", "0");
        }
        (c.output().unwrap(), dir)
    };
    let day1: &[u8] = b"id,amount,note,at\n1,10.5,Jos\xe9,2024-01-01 10:00:00\n2,20,b,2024-01-02T11:30:00\n";
    let q = "select id, amount, note, at, arrow_typeof(amount), arrow_typeof(at) from raw.sales order by id";
    let (o, whole) = ingest("", &[("a.csv", day1)], false);
    ok(&o);
    let (o, streamed) = ingest("", &[("a.csv", day1)], true);
    ok(&o);
    assert!(stderr(&o).contains("raw.sales: 2 rows, "), "{}", stderr(&o));
    assert_eq!(sql(streamed.path(), q), sql(whole.path(), q));
    assert_eq!(sql(streamed.path(), "select note from raw.sales order by id"), ["José", "b"]);
    // A re-run recognises the streamed file.
    let o = dp().current_dir(streamed.path()).env("DP_INGEST_STREAM_MB", "0").arg("ingest").output().unwrap();
    assert!(stderr(&o).contains("(0 new files; 1 already landed)"), "{}", stderr(&o));

    // on_error: skip drops ragged rows; header: false names the columns.
    let (o, d) = ingest("            on_error: skip\n", &[("a.csv", b"id,amount\n1,10\n2\n3,30\n")], true);
    ok(&o);
    assert!(stderr(&o).contains("raw.sales: 2 rows, "), "{}", stderr(&o));
    assert_eq!(sql(d.path(), "select skipped_rows, bad_lines from dp_meta.ingestion_log"), ["1,\"line 3: 1 fields, header has 2\""]);
    let (o, d) = ingest("            header: false\n", &[("a.csv", b"1,x\n2,y\n")], true);
    ok(&o);
    assert_eq!(sql(d.path(), "select column_1, column_2 from raw.sales order by 1"), ["1,x", "2,y"]);

    // A ragged row fails the file with its line; nothing lands.
    let (o, d) = ingest("", &[("a.csv", b"id,amount\n1,10\n2\n")], true);
    assert_eq!(o.status.code(), Some(1), "{}", stderr(&o));
    assert!(stderr(&o).contains("landing/sales/a.csv:3: row has 1 fields, header has 2"), "{}", stderr(&o));
    assert!(bronze_files(d.path()).is_empty());
}

/// `dp ingest` with every file streamed (DP_INGEST_STREAM_MB=0) in batches
/// of `batch` rows, its debug log on stderr.
fn ingest_streamed(p: &Path, batch: &str) -> std::process::Output {
    dp().current_dir(p).env("DP_INGEST_STREAM_MB", "0").env("DP_INGEST_BATCH_ROWS", batch).env("DP_LOG", "dp::ingest=debug").arg("ingest").output().unwrap()
}

/// Large NDJSON, JSON-array and Parquet files stream through arrow-json's
/// decoder and Parquet's row-group reader in batches, with the results of
/// the whole-file path.
#[test]
fn large_json_and_parquet_files_stream_in_batches() {
    let rows: Vec<String> = (1..=1000).map(|i| format!("{{\"id\": {i}, \"amount\": {}.5, \"note\": \"n{i}\", \"tags\": [\"a\", \"b\"]}}", i % 7)).collect();
    let ndjson = rows.join("\n") + "\n";
    let array_pretty = format!("[\n  {}\n]\n", rows.join(",\n  "));
    let array_one_line = format!("[{}]", rows.join(","));
    let q = "select count(*), sum(id), sum(amount), count(distinct note), max(array_length(tags)), arrow_typeof(max(amount)) from raw.sales";
    let whole = files_project("");
    land(whole.path(), "a.ndjson", ndjson.as_bytes());
    ok(&run(whole.path(), &["ingest"]));
    let want = sql(whole.path(), q);
    assert_eq!(want, ["1000,500500,3503.0,1000,2,Float64"]);
    for (file, body) in [("a.ndjson", &ndjson), ("b.json", &array_pretty), ("c.json", &array_one_line)] {
        let d = files_project("");
        land(d.path(), file, body.as_bytes());
        let o = ingest_streamed(d.path(), "100");
        ok(&o);
        let err = stderr(&o);
        assert!(err.contains(&format!("{file}: 1000 rows in 10 batches of at most 100 rows")), "{file}: {err}");
        assert_eq!(sql(d.path(), q), want, "{file}");
        // A Parquet drop (the bronze file just written) streams a batch at a time too.
        let bronze = walkdir(&d.path().join("bronze/files/sales")).into_iter().max().unwrap();
        std::fs::copy(&bronze, d.path().join("landing/sales/z.parquet")).unwrap();
        let o = ingest_streamed(d.path(), "300");
        ok(&o);
        assert!(stderr(&o).contains("z.parquet: 1000 rows in 4 batches of at most 300 rows"), "{}", stderr(&o));
        assert!(stderr(&o).contains("(1 new file; 1 already landed)"), "{}", stderr(&o));
        assert_eq!(sql(d.path(), "select count(*), count(distinct id) from raw.sales"), ["2000,1000"]);
    }
}

/// Streamed JSON fails with the whole-file path's words: file, line, column.
#[test]
fn large_json_files_fail_with_file_and_line_or_skip_bad_lines() {
    let bad = b"{\"id\": 1, \"amount\": 2}\n{\"id\": 2, \"amount\": 3}\n{\"id\": 3, \"amount\": }\n{\"id\": 4, \"amount\": 5}\n";
    let d = files_project("");
    land(d.path(), "a.json", bad);
    let o = ingest_streamed(d.path(), "2");
    assert_eq!(o.status.code(), Some(1), "{}", stderr(&o));
    assert!(
        stderr(&o).contains("landing/sales/a.json:3:21: malformed JSON: expected value\n  hint: fix the line, or set on_error: skip to drop malformed lines"),
        "{}",
        stderr(&o)
    );
    assert!(bronze_files(d.path()).is_empty());
    assert_eq!(sql(d.path(), "select status from dp_meta.ingestion_log"), ["failed"]);
    // on_error: skip drops the line, counts it and logs it.
    let d = files_project("            on_error: skip\n");
    land(d.path(), "a.json", bad);
    let o = ingest_streamed(d.path(), "2");
    ok(&o);
    assert!(stderr(&o).contains("raw.sales: 3 rows, "), "{}", stderr(&o));
    assert_eq!(sql(d.path(), "select skipped_rows, bad_lines from dp_meta.ingestion_log"), ["1,line 3: not a JSON object"]);
    // An array cut short, a value of another type than the first rows', invalid UTF-8.
    for (body, want) in [
        (&b"[{\"id\": 1}, {\"id\": 2}"[..], "landing/sales/a.json: malformed JSON: the array is not closed\n  hint: check the file is complete"),
        (b"{\"id\": 1}\n{\"id\": \"caf\xe9\"}\n", "landing/sales/a.json:2: invalid UTF-8 (JSON files must be UTF-8)\n  hint: save the file as UTF-8"),
    ] {
        let d = files_project("");
        land(d.path(), "a.json", body);
        let o = ingest_streamed(d.path(), "100");
        assert_eq!(o.status.code(), Some(1), "{}", stderr(&o));
        assert!(stderr(&o).contains(want), "{want}\n{}", stderr(&o));
        assert!(bronze_files(d.path()).is_empty());
    }
    // Types come from a sample (DP_INGEST_SAMPLE_KB): widened within it, an
    // error naming the lines after it.
    let sample: String = (1..=100).map(|i| format!("{{\"id\": {i}, \"v\": {i}}}\n")).collect();
    let d = files_project("");
    land(d.path(), "a.json", format!("{sample}{{\"id\": 101, \"v\": \"x\"}}\n").as_bytes());
    let o = dp().current_dir(d.path()).env("DP_INGEST_STREAM_MB", "0").env("DP_INGEST_SAMPLE_KB", "64").arg("ingest").output().unwrap();
    ok(&o);
    assert_eq!(sql(d.path(), "select arrow_typeof(v), max(id) from raw.sales group by 1"), ["Utf8View,101"]);
    for (extra, want) in [
        (
            "{\"id\": 101, \"v\": \"x\"}\n",
            "landing/sales/a.json: lines 1-101: Json error: whilst decoding field 'v': failed to parse \"x\" as Int64\n  hint: a large file's types come from its first 1 KB",
        ),
        (
            "{\"id\": 101, \"new\": 1}\n",
            "landing/sales/a.json: lines 1-101: Json error: column 'new' missing from schema\n  hint: a large file's columns come from its first 1 KB",
        ),
    ] {
        let d = files_project("");
        land(d.path(), "a.json", format!("{sample}{extra}").as_bytes());
        let o = dp().current_dir(d.path()).env("DP_INGEST_STREAM_MB", "0").env("DP_INGEST_SAMPLE_KB", "1").arg("ingest").output().unwrap();
        assert_eq!(o.status.code(), Some(1), "{}", stderr(&o));
        assert!(stderr(&o).contains(want), "{want}\n{}", stderr(&o));
    }
}

/// Streamed CSV: invalid UTF-8 under `encoding: utf-8` and a header-only
/// file fail with the whole-file path's words.
#[test]
fn large_csv_bad_inputs_fail_with_file_and_line() {
    let d = files_project("            encoding: utf-8\n");
    land(d.path(), "x.csv", b"id,amount,note\n1,2,caf\xe9\n");
    let o = ingest_streamed(d.path(), "100");
    assert_eq!(o.status.code(), Some(1), "{}", stderr(&o));
    assert!(stderr(&o).contains("landing/sales/x.csv:2: invalid UTF-8 in "), "{}", stderr(&o));
    let d = files_project("");
    land(d.path(), "x.csv", b"id,amount,note\n");
    let o = ingest_streamed(d.path(), "100");
    assert_eq!(o.status.code(), Some(1), "{}", stderr(&o));
    assert!(stderr(&o).contains("landing/sales/x.csv: the file has a header row but no data rows"), "{}", stderr(&o));
    assert_eq!(sql(d.path(), "select status from dp_meta.ingestion_log"), ["failed"]);
}

/// A landing file whose bronze file was deleted lands again (the log alone
/// does not make it landed).
#[test]
fn a_landed_file_whose_bronze_file_is_gone_lands_again() {
    let dir = files_project("");
    let p = dir.path();
    land(p, "a.csv", b"id,amount\n1,10\n");
    ok(&run(p, &["ingest"]));
    std::fs::remove_dir_all(p.join("bronze")).unwrap();
    let o = run(p, &["ingest"]);
    ok(&o);
    assert!(stderr(&o).contains("raw.sales: 1 rows, ") && stderr(&o).contains("(1 new file)"), "{}", stderr(&o));
    assert_eq!(bronze_files(p).len(), 1);
}

/// The embedded default demo: `dp demo` generates the operational extracts
/// into bronze and the sales files into landing/sales, ingests the files
/// into bronze Parquet, then builds; its marts equal those built with the
/// sales CSV files read in place from bronze (the demo before ingestion).
#[test]
fn demo_ingests_the_sales_drops_and_its_marts_equal_the_csv_bronze_ones() {
    let flow = demo_project();
    let p = flow.path();
    let o = run(p, &["demo", "--scale", "0.03"]);
    ok(&o);
    let err = stderr(&o);
    assert!(err.contains("1 of 1 OK ingested raw.transactions: "), "{err}");
    assert!(err.contains("(2 new files)"), "{err}");
    assert!(err.contains("Done. PASS=120 WARN=0 ERROR=0 SKIP=0 NO-OP=0 TOTAL=120"), "{err}");
    assert!(p.join("landing/sales/2024-01-15/transactions.csv").is_file() && p.join("landing/sales/2024-01-16/transactions.csv").is_file());
    assert!(!p.join("bronze/files/sales").join("2024-01-15").exists(), "the CSV files are not bronze any more");
    // Again: nothing new lands, the build runs on the same bronze.
    let o = run(p, &["demo", "--scale", "0.03"]);
    ok(&o);
    assert!(stderr(&o).contains("(0 new files; 2 already landed)"), "{}", stderr(&o));

    // The demo before ingestion: the same CSV files read in place from bronze.
    let before = demo_project();
    let b = before.path();
    ok(&run(b, &["demo", "generate", "--scale", "0.03"]));
    for day in ["2024-01-15", "2024-01-16"] {
        std::fs::create_dir_all(b.join("bronze/files/sales").join(day)).unwrap();
        std::fs::rename(b.join("landing/sales").join(day).join("transactions.csv"), b.join("bronze/files/sales").join(day).join("transactions.csv")).unwrap();
    }
    let yml = std::fs::read_to_string(b.join("models/staging/_sources.yml")).unwrap();
    let start = yml.find("          external_location: \"bronze/files/sales/*/transactions.parquet\"").unwrap();
    let end = start + yml[start..].find("        columns:").unwrap();
    let yml = format!("{}          external_location: \"bronze/files/sales/*/transactions.csv\"\n          format: csv\n{}", &yml[..start], &yml[end..]);
    std::fs::write(b.join("models/staging/_sources.yml"), yml).unwrap();
    ok(&run(b, &["build"]));
    for mart in ["dim_customers", "dim_products", "fct_orders", "mart_customer_analytics", "mart_daily_summary", "mart_product_analytics"] {
        let q = format!("select * from marts.{mart}");
        let (mut x, mut y) = (sql(p, &q), sql(b, &q));
        x.sort();
        y.sort();
        assert!(!x.is_empty(), "{mart} is empty");
        assert!(x == y, "{mart} differs: {} vs {} rows; first {:?} vs {:?}", x.len(), y.len(), x.first(), y.first());
    }
}

/// A malformed JSON array fails with file, line and column (whole-file path).
#[test]
fn a_malformed_json_array_fails_with_file_line_and_column() {
    let d = files_project("");
    land(d.path(), "a.json", b"[\n  {\"id\": 1},\n  {\"id\": }\n]\n");
    let err = ingest_fails(d.path());
    assert!(
        err.contains(
            "landing/sales/a.json:3:10: malformed JSON: expected value\n  hint: fix the file; a JSON file holds one array of objects, or one object per line"
        ),
        "{err}"
    );
    assert!(bronze_files(d.path()).is_empty());
    assert_eq!(sql(d.path(), "select status from dp_meta.ingestion_log"), ["failed"]);
}

/// A failed incremental extract leaves the watermark where it was, and the
/// next run reads the same range again.
#[test]
#[ignore = "needs PostgreSQL: run by scripts/test.sh"]
fn pg_a_failed_incremental_extract_keeps_the_watermark() {
    let pg = pg();
    pg.exec("CREATE TABLE w (id int, at timestamp NOT NULL); INSERT INTO w VALUES (1, '2024-01-01 10:00'), (2, '2024-01-01 11:00');");
    let dir = pg_project(&pg, &pg_table("w", "            table: w\n            mode: incremental\n            watermark_column: at\n"));
    let p = dir.path();
    ok(&pg.dp(p, &["ingest"]));
    pg.exec("INSERT INTO w VALUES (3, '2024-01-01 12:00'); ALTER TABLE w ADD COLUMN pt point;");
    let o = pg.dp(p, &["ingest"]);
    assert_eq!(o.status.code(), Some(1), "{}", stderr(&o));
    assert!(stderr(&o).contains("column pt of w has type point, which dp cannot extract"), "{}", stderr(&o));
    assert_eq!(lake(&pg, p, "select watermark_value from dp_meta.watermarks"), ["2024-01-01 11:00:00"]);
    assert_eq!(lake(&pg, p, "select status, watermark_from from dp_meta.ingestion_log order by finished_at"), ["success,", "failed,2024-01-01 11:00:00"]);
    pg.exec("ALTER TABLE w DROP COLUMN pt");
    let o = pg.dp(p, &["ingest"]);
    ok(&o);
    assert!(stderr(&o).contains("raw.w: 1 rows, ") && stderr(&o).contains("watermark 2024-01-01 11:00:00 → 2024-01-01 12:00:00"), "{}", stderr(&o));
    assert_eq!(lake(&pg, p, "select id from raw.w order by id"), ["1", "2", "3"]);
}

/// A role the server does not know (the test cluster trusts every password,
/// so a wrong password cannot be shown): the message names the server and
/// the role, never the password.
#[test]
#[ignore = "needs PostgreSQL: run by scripts/test.sh"]
fn pg_an_unknown_role_fails_without_printing_the_password() {
    let pg = pg();
    pg.exec("CREATE TABLE r (id int); INSERT INTO r VALUES (1);");
    let dir = pg_project(&pg, &pg_table("r", "            table: r\n            connection: {user: dp_no_such_role, password_env: DP_TEST_SECRET}\n"));
    let mut c = crate::common::dp();
    let o = pg.env(&mut c).env("DP_TEST_SECRET", "hunter2-do-not-print").current_dir(dir.path()).arg("ingest").output().unwrap();
    let err = stderr(&o);
    assert_eq!(o.status.code(), Some(1), "{err}");
    assert!(err.contains("error: source raw.r: extracting from postgres://dp_no_such_role@"), "{err}");
    assert!(err.contains("role \"dp_no_such_role\" does not exist"), "{err}");
    assert!(!err.contains("hunter2"), "{err}");
    assert_eq!(lake(&pg, dir.path(), "select status from dp_meta.ingestion_log"), ["failed"]);
}

/// A large file is read once, hashed as it streams; encoding detection
/// looks at its first rows, and a CSV whose later rows turn out not to be
/// UTF-8 is read again as Latin-1 (`encoding: auto`), or fails naming the
/// line and column (`encoding: utf-8`).
#[test]
fn large_files_found_not_utf8_late_are_read_as_latin1_or_fail() {
    let mut body = b"id,note\n".to_vec();
    for i in 1..=200 {
        body.extend_from_slice(format!("{i},plain\n").as_bytes());
    }
    body.extend_from_slice(b"201,Jos\xe9\n");
    let ingest = |d: &Path| dp().current_dir(d).env("DP_INGEST_STREAM_MB", "0").env("DP_INGEST_SAMPLE_KB", "1").arg("ingest").output().unwrap();
    let d = files_project("");
    land(d.path(), "x.csv", &body);
    ok(&ingest(d.path()));
    assert_eq!(sql(d.path(), "select count(*), max(case when id = 201 then note end) from raw.sales"), ["201,José"]);
    // The checksum of the one read is the file's: a re-run recognises it.
    let o = ingest(d.path());
    assert!(stderr(&o).contains("(0 new files; 1 already landed)"), "{}", stderr(&o));
    assert_eq!(bronze_files(d.path()).len(), 1);

    let d = files_project("            encoding: utf-8\n");
    land(d.path(), "x.csv", &body);
    let o = ingest(d.path());
    assert_eq!(o.status.code(), Some(1), "{}", stderr(&o));
    assert!(
        stderr(&o).contains("landing/sales/x.csv:202: invalid UTF-8 in column \"note\"\n  hint: save the file as UTF-8, or set encoding: latin-1"),
        "{}",
        stderr(&o)
    );
    assert!(bronze_files(d.path()).is_empty());

    let mut json: Vec<u8> = (1..=100).flat_map(|i| format!("{{\"id\": {i}, \"note\": \"plain\"}}\n").into_bytes()).collect();
    json.extend_from_slice(b"{\"id\": 101, \"note\": \"Jos\xe9\"}\n");
    let d = files_project("");
    land(d.path(), "x.json", &json);
    let o = ingest(d.path());
    assert_eq!(o.status.code(), Some(1), "{}", stderr(&o));
    assert!(stderr(&o).contains("landing/sales/x.json:101: invalid UTF-8 (JSON files must be UTF-8)"), "{}", stderr(&o));
    assert!(bronze_files(d.path()).is_empty());
}

/// A Parquet drop whose column is narrower than the source's (Int32 for
/// Int64) lands widened; a retyped one (text for a number) fails.
#[test]
fn parquet_drops_widen_to_the_sources_types() {
    let dir = files_project("");
    let p = dir.path();
    land(p, "a.csv", b"id,amount\n1,10.5\n");
    ok(&run(p, &["ingest"]));
    let o = run(p, &["sql", "-e", "copy (select arrow_cast(2, 'Int32') as id, arrow_cast(20.5, 'Float32') as amount) to 'landing/sales/b.parquet'"]);
    ok(&o);
    let o = run(p, &["ingest"]);
    ok(&o);
    assert!(stderr(&o).contains("raw.sales: 1 rows, "), "{}", stderr(&o));
    assert_eq!(
        sql(p, "select id, amount, arrow_typeof(id), arrow_typeof(amount) from raw.sales order by id"),
        ["1,10.5,Int64,Float64", "2,20.5,Int64,Float64"]
    );
    assert_eq!(
        sql(p, "select version, change_summary from dp_meta.schema_history order by version"),
        ["1,initial schema", "2,id is now NOT NULL; amount is now NOT NULL"]
    );
    let o = run(p, &["sql", "-e", "copy (select 'three' as id, 30.0 as amount) to 'landing/sales/c.parquet'"]);
    ok(&o);
    let err = ingest_fails(p);
    assert!(err.contains("the schema changed incompatibly: type of id"), "{err}");
}

/// A file ingestion killed while it streams leaves no bronze file and no
/// log row; the next run lands the file exactly once.
#[test]
fn a_killed_file_ingestion_leaves_nothing_and_the_rerun_lands_it_once() {
    use std::io::BufRead;
    let dir = files_project("");
    let p = dir.path();
    let n = 400_000;
    let mut body = b"id,amount,note\n".to_vec();
    for i in 1..=n {
        body.extend_from_slice(format!("{i},{}.25,note number {i}\n", i % 1000).as_bytes());
    }
    land(p, "big.csv", &body);
    let mut child = dp()
        .current_dir(p)
        .env("DP_INGEST_STREAM_MB", "0")
        .env("DP_INGEST_BATCH_ROWS", "1000")
        .env("DP_LOG", "dp::ingest=debug")
        .env("NO_COLOR", "1")
        .arg("ingest")
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    // Kill it once the bronze file is being written.
    let mut lines = std::io::BufReader::new(child.stderr.take().unwrap()).lines();
    let started = lines.by_ref().map_while(Result::ok).any(|l| l.contains("streaming ") && l.contains("big.csv into bronze/files/sales/"));
    assert!(started, "the streaming line never came");
    assert!(child.try_wait().unwrap().is_none(), "the ingestion finished before it could be killed: raise n");
    child.kill().unwrap();
    child.wait().unwrap();
    assert!(bronze_files(p).iter().all(|f| !f.ends_with(".parquet")), "a partial file is visible: {:?}", bronze_files(p));
    let o = run(p, &["ingest"]);
    ok(&o);
    assert!(stderr(&o).contains(&format!("raw.sales: {} rows, ", fmt(n))), "{}", stderr(&o));
    assert_eq!(sql(p, "select count(*), count(distinct id) from raw.sales"), [format!("{n},{n}")]);
    assert_eq!(sql(p, "select status, row_count from dp_meta.ingestion_log"), [format!("success,{n}")]);
}

fn fmt(n: u64) -> String {
    let s = n.to_string();
    let mut out = String::new();
    for (i, c) in s.chars().enumerate() {
        if i > 0 && (s.len() - i).is_multiple_of(3) {
            out.push(',');
        }
        out.push(c);
    }
    out
}

/// `dp_meta` tables get a commit per landed file: every tenth version is
/// checkpointed, so opening them does not replay an ever longer log, and
/// they read the same after it.
#[test]
fn dp_meta_tables_are_checkpointed() {
    let dir = files_project("");
    let p = dir.path();
    for i in 0..12 {
        land(p, &format!("day{i:02}.csv"), format!("id,amount\n{i},1.5\n").as_bytes());
    }
    ok(&run(p, &["ingest"]));
    let log = p.join("warehouse/dp_meta/ingestion_log/_delta_log");
    let checkpoints: Vec<String> = std::fs::read_dir(&log)
        .unwrap()
        .flatten()
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .filter(|n| n.ends_with(".checkpoint.parquet"))
        .collect();
    assert_eq!(checkpoints, ["00000000000000000010.checkpoint.parquet"], "{log:?}");
    assert_eq!(sql(p, "select count(*), count(distinct source_file) from dp_meta.ingestion_log where status = 'success'"), ["12,12"]);
    // a second run opens the table from its checkpoint and finds every file landed
    let o = run(p, &["ingest"]);
    ok(&o);
    assert!(stderr(&o).contains("(0 new files; 12 already landed)"), "{}", stderr(&o));
}
