//! S3 warehouses against a real S3-protocol server on loopback (moto's
//! server, started by `scripts/services/s3.sh`, which exports
//! `DP_TEST_S3_ENDPOINT`). Without it these tests skip with a message,
//! except under `CI=true`, where they fail.
//!
//! Each test works in a bucket of its own, created through the S3 API.

use crate::common::*;
use object_store::aws::AmazonS3Builder;
use object_store::path::Path as ObjPath;
use object_store::{ObjectStore, ObjectStoreExt, PutMode, PutOptions, PutPayload};
use std::io::{Read, Write};
use std::path::Path;
use std::process::{Command, Output, Stdio};
use std::sync::Arc;

/// The S3 test server's endpoint (started by scripts/test.sh; the tests
/// that need it are `#[ignore]`d and run with `--include-ignored`).
fn endpoint() -> String {
    match std::env::var("DP_TEST_S3_ENDPOINT") {
        Ok(e) if !e.is_empty() => e,
        _ => panic!("DP_TEST_S3_ENDPOINT is not set: run the suite with scripts/test.sh, which starts the S3 test server (scripts/services/s3.sh)"),
    }
}

const KEY: &str = "dp-test";
const SECRET: &str = "dp-test-secret-do-not-print";

/// A plain HTTP request to the server (bucket creation needs no signature on moto).
fn http(endpoint: &str, method: &str, path: &str) -> String {
    let host = endpoint.trim_start_matches("http://").trim_end_matches('/');
    let mut s = std::net::TcpStream::connect(host).unwrap();
    write!(s, "{method} {path} HTTP/1.1\r\nHost: {host}\r\nContent-Length: 0\r\nConnection: close\r\n\r\n").unwrap();
    let mut out = String::new();
    s.read_to_string(&mut out).unwrap();
    out
}

fn new_bucket(endpoint: &str) -> String {
    let name = format!("dp-test-{}", &uuid::Uuid::new_v4().simple().to_string()[..12]);
    let r = http(endpoint, "PUT", &format!("/{name}"));
    assert!(r.starts_with("HTTP/1.1 200") || r.starts_with("HTTP/1.0 200"), "creating bucket {name}: {r}");
    name
}

fn client(endpoint: &str, bucket: &str) -> Arc<dyn ObjectStore> {
    Arc::new(
        AmazonS3Builder::new()
            .with_endpoint(endpoint)
            .with_bucket_name(bucket)
            .with_region("us-east-1")
            .with_access_key_id(KEY)
            .with_secret_access_key(SECRET)
            .with_allow_http(true)
            .build()
            .unwrap(),
    )
}

fn list(store: &Arc<dyn ObjectStore>, prefix: &str) -> Vec<String> {
    use futures::TryStreamExt;
    let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
    let mut v: Vec<String> = rt.block_on(store.list(Some(&ObjPath::from(prefix))).map_ok(|m| m.location.to_string()).try_collect::<Vec<_>>()).unwrap();
    v.sort();
    v
}

/// warehouse.toml's S3 target as the demo writes it (names from the env).
const S3_TARGET: &str = r#"
[targets.s3]
warehouse = "s3://${DP_S3_BUCKET}/warehouse"
source_root = "s3://${DP_S3_BUCKET}"
schema = "main"
threads = 4

[targets.s3.s3]
endpoint = "${DP_S3_ENDPOINT}"
path_style = true
allow_http = true
"#;

/// `dp` with the S3 target's variables set.
fn dp_s3(dir: &Path, endpoint: &str, bucket: &str) -> Command {
    let mut c = dp();
    c.current_dir(dir)
        .env("DP_TARGET", "s3")
        .env("DP_S3_BUCKET", bucket)
        .env("DP_S3_ENDPOINT", endpoint)
        .env("AWS_ACCESS_KEY_ID", KEY)
        .env("AWS_SECRET_ACCESS_KEY", SECRET)
        .env("AWS_REGION", "us-east-1");
    c
}

fn run_s3(dir: &Path, endpoint: &str, bucket: &str, args: &[&str]) -> Output {
    dp_s3(dir, endpoint, bucket).args(args).output().unwrap()
}

fn assert_no_secret(o: &Output) {
    assert!(!stdout(o).contains(SECRET) && !stderr(o).contains(SECRET), "the secret key was printed:\n{}{}", stdout(o), stderr(o));
}

/// Row-level results the demo must give on any warehouse.
const CHECKS: &[&str] = &[
    "select count(*) as n, count(distinct order_id) as d, sum(total_amount) as amount from {{ ref('fct_orders') }}",
    "select count(*) from {{ ref('stg_customers') }} where email not like '%@%.%' or email <> lower(trim(email))",
    "select customer_segment, count(*) as n from {{ ref('mart_customer_analytics') }} group by 1 order by 1",
    "select order_day, order_count, revenue, cumulative_revenue from {{ ref('mart_daily_summary') }} order by order_day limit 20",
    "select performance_tier, count(*) as n from {{ ref('mart_product_analytics') }} group by 1 order by 1",
];

fn show(o: Output) -> String {
    ok(&o);
    stdout(&o)
}

#[test]
#[ignore = "needs the S3 test server: run by scripts/test.sh"]
fn demo_runs_on_s3_with_the_same_results_as_local_disk() {
    let ep = endpoint();
    let bucket = new_bucket(&ep);
    let dir = demo_project();
    let p = dir.path();

    let o = run_s3(p, &ep, &bucket, &["demo", "--scale", "0.05"]);
    ok(&o);
    assert_no_secret(&o);
    let err = stderr(&o);
    assert!(err.contains(&format!("Uploaded 4 files to s3://{bucket}/bronze and 2 to s3://{bucket}/landing in ")), "{err}");
    assert!(err.contains("OK ingested raw.transactions: "), "{err}");
    assert!(list(&client(&ep, &bucket), "bronze").contains(&"bronze/_dp_demo_uploaded".to_string()), "no upload marker");
    assert!(err.contains("Done. PASS=120 WARN=0 ERROR=0 SKIP=0 NO-OP=0 TOTAL=120"), "{err}");
    // Nothing on local disk: bronze and the warehouse are in the bucket.
    assert!(!p.join("warehouse").exists() && !p.join("bronze").exists() && !p.join("target/demo-bronze").exists());
    let store = client(&ep, &bucket);
    let bronze = list(&store, "bronze");
    assert!(bronze.iter().any(|k| k.starts_with("bronze/postgres/orders/") && k.ends_with("/orders.parquet")), "{bronze:?}");
    for t in ["staging/stg_customers", "intermediate/int_daily_aggregates", "marts/fct_orders", "raw/category_mapping"] {
        let keys = list(&store, &format!("warehouse/{t}/_delta_log"));
        assert!(keys.iter().any(|k| k.ends_with("00000000000000000000.json")), "{t} has no Delta log in the bucket: {keys:?}");
    }

    // An upload cut short (no marker) is redone; the second build merges
    // into the incremental table.
    let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
    rt.block_on(store.delete(&ObjPath::from("bronze/_dp_demo_uploaded"))).unwrap();
    let o = run_s3(p, &ep, &bucket, &["demo", "--scale", "0.05"]);
    ok(&o);
    let err = stderr(&o);
    assert!(err.contains(&format!("s3://{bucket}/bronze holds an incomplete upload (no _dp_demo_uploaded); uploading it again")), "{err}");
    assert!(err.contains("[MERGE 0 rows"), "{err}");
    let o = run_s3(p, &ep, &bucket, &["demo", "--scale", "0.05"]);
    ok(&o);
    assert!(stderr(&o).contains(&format!("Using existing bronze data in s3://{bucket}/bronze")), "{}", stderr(&o));

    // The same demo on local disk gives the same rows.
    let local = demo_project();
    ok(&run(local.path(), &["demo", "--scale", "0.05"]));
    for sql in CHECKS {
        let on_s3 = show(run_s3(p, &ep, &bucket, &["show", "--inline", sql, "--limit", "100", "--format", "csv"]));
        let on_disk = show(run(local.path(), &["show", "--inline", sql, "--limit", "100", "--format", "csv"]));
        assert_eq!(on_s3, on_disk, "{sql}");
        assert!(on_s3.lines().count() > 1, "{sql}: no rows");
    }
    let dups = show(run_s3(p, &ep, &bucket, &["show", "--inline", CHECKS[0], "--format", "csv"]));
    let row: Vec<&str> = dups.lines().nth(1).unwrap().split(',').collect();
    assert_eq!(row[0], row[1], "fct_orders has duplicate order ids: {dups}");

    // The shell lists the layers and time-travels on S3.
    let o = run_s3(p, &ep, &bucket, &["sql", "-e", "\\dt marts.*", "--format", "csv"]);
    let out = show(o);
    assert!(out.contains("marts,fct_orders,table"), "{out}");
    let out = show(run_s3(p, &ep, &bucket, &["sql", "-e", "select count(*) as n from delta_version('marts.fct_orders', 0)", "--format", "csv"]));
    assert_eq!(out.lines().nth(1).map(|l| l.parse::<u64>().unwrap() > 0), Some(true), "{out}");
}

/// A project with one table model and one append-only incremental model.
fn writers_project(bucket_target: &str) -> tempfile::TempDir {
    project(&[
        ("warehouse.toml", &format!("default_target = \"s3\"\n[project]\nname = \"w\"\n{bucket_target}")),
        ("models/t.sql", "{{ config(materialized='table') }}\nselect value as id, value * 2 as v from generate_series(1, 5000)"),
        ("models/events.sql", "{{ config(materialized='incremental', incremental_strategy='append') }}\nselect value as id from generate_series(1, 100)"),
    ])
}

fn spawn_all(dirs: &[&Path], ep: &str, bucket: &str, args: &[&str]) -> Vec<Output> {
    let children: Vec<_> = dirs.iter().map(|d| dp_s3(d, ep, bucket).args(args).stdout(Stdio::piped()).stderr(Stdio::piped()).spawn().unwrap()).collect();
    children.into_iter().map(|c| c.wait_with_output().unwrap()).collect()
}

fn log_versions(store: &Arc<dyn ObjectStore>, table: &str) -> Vec<u64> {
    list(store, &format!("warehouse/main/{table}/_delta_log")).iter().filter_map(|k| k.rsplit('/').next()?.strip_suffix(".json")?.parse().ok()).collect()
}

#[test]
#[ignore = "needs the S3 test server: run by scripts/test.sh"]
fn concurrent_writers_never_corrupt_the_delta_log() {
    let ep = endpoint();
    let bucket = new_bucket(&ep);
    // Four separate checkouts of the project writing one warehouse.
    let dirs: Vec<_> = (0..4).map(|_| writers_project(S3_TARGET)).collect();
    let paths: Vec<&Path> = dirs.iter().map(|d| d.path()).collect();
    let store = client(&ep, &bucket);

    // Race on creating the table: version 0 is written exactly once.
    let outs = spawn_all(&paths, &ep, &bucket, &["run", "-s", "t"]);
    let won = outs.iter().filter(|o| o.status.success()).count();
    assert!(won >= 1, "no writer succeeded: {}", stderr(&outs[0]));
    for o in &outs {
        assert_no_secret(o);
        let err = stderr(o);
        assert!(!err.contains("panicked"), "{err}");
        if !o.status.success() {
            assert!(err.contains("hint: another writer committed to this table at the same time; nothing of this write was committed: run it again"), "{err}");
        }
    }
    let v = log_versions(&store, "t");
    assert_eq!(v, (0..won as u64).collect::<Vec<_>>(), "one log entry per successful writer, no gaps or duplicates");

    // Overwrites racing on an existing table: each commit is whole.
    let outs = spawn_all(&paths, &ep, &bucket, &["run", "-s", "t"]);
    let won2 = outs.iter().filter(|o| o.status.success()).count();
    assert!(won2 >= 1);
    for o in outs.iter().filter(|o| !o.status.success()) {
        assert!(stderr(o).contains("another writer committed to this table at the same time"), "{}", stderr(o));
    }
    assert_eq!(log_versions(&store, "t"), (0..(won + won2) as u64).collect::<Vec<_>>());
    eprintln!("commit races on t: {won} of 4 created it, {won2} of 4 replaced it");
    let out = show(run_s3(paths[0], &ep, &bucket, &["show", "--inline", "select count(*) as n, sum(v) as s from main.t", "--format", "csv"]));
    assert_eq!(out, "n,s\n5000,25005000\n");

    // Appends do not conflict: the losers of a commit race retry and land.
    ok(&run_s3(paths[0], &ep, &bucket, &["run", "-s", "events"]));
    let outs = spawn_all(&paths, &ep, &bucket, &["run", "-s", "events"]);
    for o in &outs {
        ok(o);
    }
    assert_eq!(log_versions(&store, "events"), (0..5).collect::<Vec<_>>());
    let out = show(run_s3(paths[0], &ep, &bucket, &["show", "--inline", "select count(*) as n from main.events", "--format", "csv"]));
    assert_eq!(out, "n\n500\n");
}

#[test]
#[ignore = "needs the S3 test server: run by scripts/test.sh"]
fn the_server_honours_put_if_absent() {
    let ep = endpoint();
    let bucket = new_bucket(&ep);
    let store = client(&ep, &bucket);
    let rt = tokio::runtime::Builder::new_multi_thread().worker_threads(4).enable_all().build().unwrap();
    let results = rt.block_on(async {
        let key = ObjPath::from("t/_delta_log/00000000000000000001.json");
        let tasks: Vec<_> = (0..8)
            .map(|i| {
                let (s, k) = (store.clone(), key.clone());
                tokio::spawn(async move {
                    s.put_opts(&k, PutPayload::from(format!("writer {i}")), PutOptions { mode: PutMode::Create, ..Default::default() }).await
                })
            })
            .collect();
        let mut out = vec![];
        for t in tasks {
            out.push(t.await.unwrap());
        }
        out
    });
    assert_eq!(results.iter().filter(|r| r.is_ok()).count(), 1, "{results:?}");
    assert!(results.iter().filter(|r| r.is_err()).all(|r| matches!(r, Err(object_store::Error::AlreadyExists { .. }))), "{results:?}");
}

#[test]
#[ignore = "needs the S3 test server: run by scripts/test.sh"]
fn missing_bucket_and_unreachable_endpoint_fail_clearly() {
    let ep = endpoint();
    let dir = writers_project(S3_TARGET);
    let p = dir.path();

    let o = run_s3(p, &ep, "no-such-bucket-dp", &["run"]);
    assert_eq!(o.status.code(), Some(1));
    assert_no_secret(&o);
    let err = stderr(&o);
    assert!(
        err.contains(&format!(
            "error: s3://no-such-bucket-dp/warehouse: NoSuchBucket: The specified bucket does not exist (HTTP 404 Not Found, GET {ep}/no-such-bucket-dp)\n  hint: the bucket does not exist"
        )),
        "{err}"
    );

    // Port 1 on loopback refuses connections: retried, then a clear error in seconds.
    let t = std::time::Instant::now();
    let o = run_s3(p, "http://127.0.0.1:1", "b", &["run"]);
    assert_eq!(o.status.code(), Some(1));
    let err = stderr(&o);
    assert!(err.contains("error: s3://b/warehouse: no answer from the endpoint (GET http://127.0.0.1:1/b, after 3 retries)"), "{err}");
    assert!(err.contains("hint: the endpoint did not answer: check the target's s3.endpoint (or DP_S3_ENDPOINT) and that the server is running"), "{err}");
    assert!(t.elapsed() < std::time::Duration::from_secs(30), "took {:?}", t.elapsed());
    assert!(!p.join("warehouse").exists());

    // dp debug checks the bucket and masks the credentials.
    let o = run_s3(p, &ep, "no-such-bucket-dp", &["debug"]);
    assert_eq!(o.status.code(), Some(1));
    assert_no_secret(&o);
    let out = stdout(&o);
    assert!(
        out.contains(&format!(
            "s3:              endpoint={ep} region=us-east-1 path_style=true allow_http=true AWS_ACCESS_KEY_ID=**** AWS_SECRET_ACCESS_KEY=****"
        )),
        "{out}"
    );
    assert!(out.contains("warehouse check: ERROR s3://no-such-bucket-dp/warehouse: NoSuchBucket"), "{out}");
}

/// A second server that checks credentials (moto with authentication on).
struct AuthServer {
    child: std::process::Child,
    endpoint: String,
}

impl Drop for AuthServer {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn auth_server() -> Option<AuthServer> {
    let bin = std::env::var("DP_TEST_MOTO_SERVER").ok().filter(|b| !b.is_empty())?;
    let port = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
    let child = Command::new(bin)
        .args(["-H", "127.0.0.1", "-p", &port.to_string()])
        .env("INITIAL_NO_AUTH_ACTION_COUNT", "0")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .ok()?;
    let server = AuthServer { child, endpoint: format!("http://127.0.0.1:{port}") };
    for _ in 0..150 {
        if std::net::TcpStream::connect(("127.0.0.1", port)).is_ok() {
            return Some(server);
        }
        std::thread::sleep(std::time::Duration::from_millis(100));
    }
    None
}

#[test]
#[ignore = "needs the S3 test server: run by scripts/test.sh"]
fn wrong_credentials_fail_clearly_without_printing_them() {
    let _ = endpoint();
    let server = auth_server().expect("DP_TEST_MOTO_SERVER (set by scripts/services/s3.sh) must start moto with authentication");
    let dir = writers_project(S3_TARGET);
    let o = run_s3(dir.path(), &server.endpoint, "any-bucket", &["run"]);
    assert_eq!(o.status.code(), Some(1));
    assert_no_secret(&o);
    let err = stderr(&o);
    assert!(
        err.contains(&format!("error: s3://any-bucket/warehouse: InvalidAccessKeyId: The AWS Access Key Id you provided does not exist in our records. (HTTP 403 Forbidden, GET {}/any-bucket)", server.endpoint)),
        "{err}"
    );
    assert!(err.contains("hint: the server refused the credentials: check AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY (and AWS_SESSION_TOKEN)"), "{err}");
}

#[test]
#[ignore = "needs the S3 test server: run by scripts/test.sh"]
fn a_failed_model_keeps_the_previous_version_on_s3() {
    let ep = endpoint();
    let bucket = new_bucket(&ep);
    let dir = writers_project(S3_TARGET);
    let p = dir.path();
    ok(&run_s3(p, &ep, &bucket, &["run", "-s", "t"]));
    std::fs::write(p.join("models/t.sql"), "{{ config(materialized='table') }}\nselect value as id, 1 % (value - value) as v from generate_series(1, 5000)")
        .unwrap();
    let o = run_s3(p, &ep, &bucket, &["run", "-s", "t"]);
    assert_eq!(o.status.code(), Some(1), "{}", stderr(&o));
    let store = client(&ep, &bucket);
    assert_eq!(log_versions(&store, "t"), vec![0]);
    let out = show(run_s3(p, &ep, &bucket, &["show", "--inline", "select count(*) as n from main.t", "--format", "csv"]));
    assert_eq!(out, "n\n5000\n");
    // A view replaces the table in one step, and a table the view again.
    std::fs::write(p.join("models/t.sql"), "{{ config(materialized='view') }}\nselect 7 as id").unwrap();
    ok(&run_s3(p, &ep, &bucket, &["run", "-s", "t"]));
    assert_eq!(list(&store, "warehouse/main/t"), vec!["warehouse/main/t/_dp_view.sql".to_string()]);
    let out = show(run_s3(p, &ep, &bucket, &["sql", "-e", "select id from main.t", "--format", "csv"]));
    assert_eq!(out, "id\n7\n");
}

#[test]
fn docker_compose_file_is_valid_and_matches_the_docker_target() {
    let text = std::fs::read_to_string(repo().join("docker-compose.yml")).unwrap();
    let doc: serde_json::Value = serde_yaml_ng::from_str(&text).expect("docker-compose.yml parses as YAML");
    let services = doc["services"].as_object().expect("services");
    for s in ["minio", "minio-init", "postgres", "superset"] {
        assert!(services.contains_key(s), "service {s} missing");
        assert!(services[s]["image"].is_string(), "service {s} has no image");
    }
    assert_eq!(doc["services"]["postgres"]["image"], "postgres:15");
    assert!(doc["services"]["minio"]["ports"].as_array().unwrap().iter().any(|p| p.as_str().unwrap().starts_with("9000:9000")));
    assert!(doc["services"]["postgres"]["ports"].as_array().unwrap().iter().any(|p| p.as_str().unwrap().starts_with("5432:5432")));
    // The init container creates the bucket the docker target uses.
    let init = serde_json::to_string(&doc["services"]["minio-init"]["entrypoint"]).unwrap();
    assert!(init.contains("mc mb --ignore-existing local/dp"), "{init}");
    assert_eq!(doc["services"]["minio-init"]["depends_on"]["minio"]["condition"], "service_healthy");
    // Superset runs the version the tests run (scripts/services/superset.sh),
    // and the dashboards service connects it to the Postgres service.
    let script = std::fs::read_to_string(repo().join("scripts/services/superset.sh")).unwrap();
    let version = script.split("DP_SUPERSET_VERSION:-").nth(1).and_then(|v| v.split('}').next()).unwrap();
    assert_eq!(doc["services"]["superset"]["image"], format!("apache/superset:{version}"));
    let dashboards = serde_json::to_string(&doc["services"]["dashboards"]).unwrap();
    assert!(dashboards.contains("superset push --url http://superset:8088") && dashboards.contains("\"PGHOST\":\"postgres\""), "{dashboards}");
    assert_eq!(doc["services"]["dashboards"]["depends_on"]["superset"]["condition"], "service_healthy");
    assert_eq!(doc["services"]["superset"]["depends_on"]["postgres"]["condition"], "service_healthy");
    // No secret is written in the file: passwords come from variables (with local defaults).
    for (k, v) in [("MINIO_ROOT_PASSWORD", &doc["services"]["minio"]["environment"]), ("POSTGRES_PASSWORD", &doc["services"]["postgres"]["environment"])] {
        assert!(v[k].as_str().unwrap().starts_with("${"), "{k} is not taken from a variable");
    }

    // warehouse.toml's docker target points at these services.
    let dir = project(&[("warehouse.toml", &std::fs::read_to_string(repo().join("warehouse.toml")).unwrap())]);
    let o =
        dp().current_dir(dir.path()).args(["--target", "docker", "debug"]).env("AWS_ACCESS_KEY_ID", "k").env("AWS_SECRET_ACCESS_KEY", SECRET).output().unwrap();
    assert_no_secret(&o);
    let out = stdout(&o);
    assert!(out.contains("warehouse:       s3://dp/warehouse"), "{out}");
    assert!(out.contains("s3:              endpoint=http://localhost:9000 region=us-east-1 path_style=true allow_http=true"), "{out}");
    assert!(out.contains("source root:     s3://dp"), "{out}");
    assert!(out.contains("postgres:        postgres://dp@localhost:5432/dp password=$DP_PG_PASSWORD (not set) sslmode=prefer"), "{out}");
}

#[test]
#[ignore = "needs the S3 test server: run by scripts/test.sh"]
fn incremental_merge_updates_and_inserts_on_s3() {
    let ep = endpoint();
    let bucket = new_bucket(&ep);
    let dir = project(&[
        ("warehouse.toml", &format!("default_target = \"s3\"\n[project]\nname = \"m\"\n{S3_TARGET}")),
        (
            "models/m.sql",
            "{{ config(materialized='incremental', unique_key='id', incremental_strategy='merge') }}\nselect value as id, {{ var('v', 1) }} as v from generate_series(1, {{ var('n', 10) }})",
        ),
    ]);
    let p = dir.path();
    ok(&run_s3(p, &ep, &bucket, &["run"]));
    let o = run_s3(p, &ep, &bucket, &["run", "--vars", "{n: 5, v: 2}"]);
    ok(&o);
    assert!(stderr(&o).contains("OK created sql incremental model main.m"), "{}", stderr(&o));
    assert!(stderr(&o).contains("[MERGE 5 rows"), "{}", stderr(&o));
    let by_v = "select v, count(*) as n, sum(id) as s from main.m group by v order by v";
    let out = show(run_s3(p, &ep, &bucket, &["show", "--inline", by_v, "--format", "csv"]));
    assert_eq!(out, "v,n,s\n1,5,40\n2,5,15\n");
    let out = show(run_s3(p, &ep, &bucket, &["sql", "-e", "\\history main.m", "--format", "csv"]));
    // Version 0 is the table's creation (its files written in parallel, then
    // created with them in one commit), version 1 turns deletion vectors on,
    // version 2 the merge: five old rows are marked deleted in a vector file
    // beside the data, and the five new ones added in a file of their own.
    for (v, op) in [(0, "CREATE TABLE"), (1, "SET TBLPROPERTIES"), (2, "MERGE")] {
        assert!(out.lines().any(|l| l.starts_with(&format!("{v},")) && l.contains(&format!(",{op},"))), "version {v} is not {op}: {out}");
    }
    let store = client(&ep, &bucket);
    let vectors = || list(&store, "").into_iter().filter(|k| k.contains("/deletion_vector_") && k.ends_with(".bin")).count();
    assert_eq!(vectors(), 1, "{:?}", list(&store, ""));
    // The next merge reads that vector from the bucket and adds id 6 to it;
    // the second file, all of whose rows it replaces, leaves the table.
    let o = run_s3(p, &ep, &bucket, &["run", "--vars", "{n: 6, v: 3}"]);
    ok(&o);
    assert!(stderr(&o).contains("[MERGE 6 rows"), "{}", stderr(&o));
    let out = show(run_s3(p, &ep, &bucket, &["show", "--inline", by_v, "--format", "csv"]));
    assert_eq!(out, "v,n,s\n1,4,34\n3,6,21\n");
    assert_eq!(vectors(), 2);
}

#[test]
#[ignore = "needs the S3 test server: run by scripts/test.sh"]
fn shell_writes_persist_on_s3() {
    let ep = endpoint();
    let bucket = new_bucket(&ep);
    let dir = writers_project(S3_TARGET);
    let p = dir.path();
    let w = |q: &str| run_s3(p, &ep, &bucket, &["sql", "--allow-writes", "--format", "csv", "-e", q]);
    let o = w("create table main.st as select value as id from generate_series(1, 3) as t(value)");
    ok(&o);
    assert_eq!(stderr(&o), "CREATE TABLE main.st (3 rows, Delta version 0)\n");
    ok(&w("insert into main.st values (4)"));
    ok(&w("create view main.sv as select count(*) as n from st"));
    let store = client(&ep, &bucket);
    assert_eq!(log_versions(&store, "st"), vec![0, 1]);
    assert_eq!(list(&store, "warehouse/main/sv"), vec!["warehouse/main/sv/_dp_view.sql".to_string()]);
    // A new process sees both.
    let out = show(run_s3(p, &ep, &bucket, &["sql", "-e", "select n from main.sv", "--format", "csv"]));
    assert_eq!(out, "n\n4\n");
    ok(&w("drop view main.sv; drop table main.st"));
    assert!(list(&store, "warehouse/main/st").is_empty());
    assert!(list(&store, "warehouse/main/sv").is_empty());
    let o = run_s3(p, &ep, &bucket, &["sql", "-e", "select * from main.st"]);
    assert_eq!(o.status.code(), Some(1));
    assert!(stderr(&o).contains("table 'main.st' not found"), "{}", stderr(&o));
}

/// The image the compose `scheduler` service builds: the Rust toolchain of
/// Cargo.toml's rust-version, a locked release build of the `dp` binary,
/// dp as the entrypoint under an init; the service's command is a real dp
/// command line. (Building the image needs a Docker daemon; this checks
/// what can be checked without one.)
#[test]
fn dockerfile_and_scheduler_service_match_dp() {
    let dockerfile = std::fs::read_to_string(repo().join("Dockerfile")).unwrap();
    let cargo = std::fs::read_to_string(repo().join("Cargo.toml")).unwrap();
    let rust_version = cargo.lines().find_map(|l| l.strip_prefix("rust-version = ")).unwrap().trim_matches('"');
    assert!(dockerfile.contains(&format!("FROM rust:{rust_version}-bookworm AS build")), "the build image is Rust {rust_version}");
    assert!(dockerfile.contains("FROM debian:bookworm-slim"), "the runtime image has the build image's glibc");
    assert!(dockerfile.contains("cargo build --release --locked --bin dp && cp target/release/dp /usr/local/bin/dp"));
    assert!(dockerfile.contains(r#"ENTRYPOINT ["/usr/bin/tini", "--", "dp"]"#) && dockerfile.contains(" tini "));
    let ignore = std::fs::read_to_string(repo().join(".dockerignore")).unwrap();
    for p in ["target", "warehouse", "bronze", ".git"] {
        assert!(ignore.lines().any(|l| l.trim() == p), ".dockerignore leaves out {p}");
    }

    let text = std::fs::read_to_string(repo().join("docker-compose.yml")).unwrap();
    let doc: serde_json::Value = serde_yaml_ng::from_str(&text).unwrap();
    let s = &doc["services"]["scheduler"];
    assert_eq!(s["build"], ".");
    assert_eq!(s["environment"]["DP_TARGET"], "docker");
    assert_eq!(s["environment"]["DP_S3_ENDPOINT"], "http://minio:9000");
    assert_eq!(s["environment"]["PGHOST"], "postgres");
    assert_eq!(s["volumes"][0], ".:/project");
    let mut args: Vec<String> = s["command"].as_array().unwrap().iter().map(|v| v.as_str().unwrap().to_string()).collect();
    assert!(args.contains(&"scheduler".to_string()), "{args:?}");
    // The entrypoint is dp: the command parses as dp's arguments.
    args.push("--help".into());
    let o = dp().args(&args).output().unwrap();
    ok(&o);
    assert!(stdout(&o).contains("Usage: dp scheduler"), "{}", stdout(&o));
}

/// Platform health on an S3 warehouse: the newest bronze object's age,
/// the mart's last commit, and the warehouse's size per schema as the
/// bucket lists it.
#[test]
#[ignore = "needs the S3 test server: run by scripts/test.sh"]
fn health_metrics_on_s3() {
    let ep = endpoint();
    let bucket = new_bucket(&ep);
    let store = client(&ep, &bucket);
    let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
    rt.block_on(store.put(&ObjPath::from("bronze/ev/2024-01-01/ev.csv"), PutPayload::from_static(b"id\n1\n2\n"))).unwrap();
    let dir = project(&[
        ("warehouse.toml", &format!("default_target = \"s3\"\n[project]\nname = \"h\"\n{S3_TARGET}")),
        (
            "models/sources.yml",
            "version: 2\nsources:\n  - name: src\n    tables:\n      - name: ev\n        meta:\n          external_location: \"bronze/ev/*/ev.csv\"\n",
        ),
        ("models/marts/m.sql", "{{ config(materialized='table') }}\nselect count(*) as n from {{ source('src', 'ev') }}"),
        ("pipelines/p.yml", "pipelines:\n  - name: health\n    tasks:\n      - name: metrics\n        health:\n"),
    ]);
    let p = dir.path();
    ok(&run_s3(p, &ep, &bucket, &["run"]));
    let o = run_s3(p, &ep, &bucket, &["pipeline", "health", "--dry-run"]);
    ok(&o);
    assert_no_secret(&o);
    let o = run_s3(p, &ep, &bucket, &["pipeline", "run", "health"]);
    ok(&o);
    let o = run_s3(
        p,
        &ep,
        &bucket,
        &["sql", "--format", "csv", "-e", "select metric_name, subject, value, status from marts.platform_health_metrics order by metric_name, subject"],
    );
    let out = show(o);
    let rows: Vec<Vec<String>> = out.lines().skip(1).map(|l| l.split(',').map(String::from).collect()).collect();
    let get = |name: &str, subject: &str| rows.iter().find(|r| r[0] == name && r[1] == subject).unwrap_or_else(|| panic!("{name} {subject}: {out}")).clone();
    let fresh = get("source_freshness_seconds", "src.ev");
    assert!(fresh[2].parse::<f64>().unwrap() >= 0.0 && fresh[3] == "ok", "{fresh:?}");
    let mart = get("mart_freshness_seconds", "main.m");
    assert!(mart[2].parse::<f64>().unwrap() >= 0.0 && mart[3] == "ok", "{mart:?}");
    // The sizes are what the bucket held under warehouse/<schema>/ when measured
    // (before the snapshot's own table was written).
    use futures::TryStreamExt;
    let size = |prefix: &str| -> u64 { rt.block_on(store.list(Some(&ObjPath::from(prefix))).map_ok(|m| m.size).try_collect::<Vec<_>>()).unwrap().iter().sum() };
    let main = get("warehouse_size_bytes", "main");
    assert_eq!(main[2].parse::<f64>().unwrap() as u64, size("warehouse/main"), "{main:?}");
    let total = get("warehouse_size_bytes", "total")[2].parse::<f64>().unwrap() as u64;
    let schemas: u64 = rows.iter().filter(|r| r[0] == "warehouse_size_bytes" && r[1] != "total").map(|r| r[2].parse::<f64>().unwrap() as u64).sum();
    assert_eq!(total, schemas, "{out}");
    assert!(rows.iter().any(|r| r[0] == "warehouse_size_bytes" && r[1] == "dp_meta"), "{out}");
}
