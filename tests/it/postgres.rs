//! Publishing to a real PostgreSQL server (started by scripts/test.sh, which
//! exports DP_TEST_PG_HOST/PORT/USER). Each test gets its own database.
//! They are `#[ignore]`d: scripts/test.sh starts the server and runs them
//! with `--include-ignored`; without the server they fail.

use crate::common::*;
use std::path::Path;
use std::process::Command;

pub struct Pg {
    host: String,
    port: String,
    user: String,
    pub db: String,
}

/// A fresh database on the test server (started by scripts/test.sh).
pub fn pg() -> Pg {
    let Ok(port) = std::env::var("DP_TEST_PG_PORT") else {
        panic!("DP_TEST_PG_PORT is not set: run the suite with scripts/test.sh, which starts PostgreSQL");
    };
    let host = std::env::var("DP_TEST_PG_HOST").unwrap_or_else(|_| "127.0.0.1".into());
    let user = std::env::var("DP_TEST_PG_USER").unwrap_or_else(|_| "postgres".into());
    let db = format!("dp_test_{}", uuid_like());
    let admin = Pg { host: host.clone(), port: port.clone(), user: user.clone(), db: "postgres".into() };
    admin.exec(&format!("CREATE DATABASE {db}"));
    Pg { host, port, user, db }
}

fn uuid_like() -> String {
    use std::sync::atomic::{AtomicUsize, Ordering};
    static N: AtomicUsize = AtomicUsize::new(0);
    format!(
        "{}_{}_{}",
        std::process::id(),
        N.fetch_add(1, Ordering::SeqCst),
        std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().subsec_nanos()
    )
}

impl Pg {
    /// Points a dp command at this database through libpq's variables.
    pub fn env<'a>(&self, c: &'a mut Command) -> &'a mut Command {
        c.env("PGHOST", &self.host).env("PGPORT", &self.port).env("PGUSER", &self.user).env("PGDATABASE", &self.db).env_remove("PGPASSWORD")
    }

    pub fn dp(&self, dir: &Path, args: &[&str]) -> std::process::Output {
        let mut c = dp();
        self.env(&mut c).current_dir(dir).args(args).output().unwrap()
    }

    fn rt() -> tokio::runtime::Runtime {
        tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap()
    }

    pub async fn connect(&self) -> tokio_postgres::Client {
        let conn = format!("host={} port={} user={} dbname={}", self.host, self.port, self.user, self.db);
        let (client, connection) = tokio_postgres::connect(&conn, tokio_postgres::NoTls).await.unwrap();
        tokio::spawn(connection);
        client
    }

    pub fn exec(&self, sql: &str) {
        Self::rt().block_on(async { self.connect().await.batch_execute(sql).await.unwrap_or_else(|e| panic!("{sql}: {e:?}")) })
    }

    /// Rows as text (PostgreSQL's output format), NULL as None.
    pub fn rows(&self, sql: &str) -> Vec<Vec<Option<String>>> {
        Self::rt().block_on(async {
            let c = self.connect().await;
            let msgs = c.simple_query(sql).await.unwrap_or_else(|e| panic!("{sql}: {e:?}"));
            msgs.into_iter()
                .filter_map(|m| match m {
                    tokio_postgres::SimpleQueryMessage::Row(r) => Some((0..r.len()).map(|i| r.get(i).map(String::from)).collect()),
                    _ => None,
                })
                .collect()
        })
    }

    pub fn one(&self, sql: &str) -> String {
        self.rows(sql)[0][0].clone().unwrap_or_default()
    }
}

/// JSON rows with timestamps' trailing fractional zeros trimmed (PostgreSQL
/// prints `.40599`, Arrow `.405990`) and numbers compared as floats.
fn normalize(line: &str) -> String {
    let mut v: serde_json::Value = serde_json::from_str(line).unwrap();
    if let serde_json::Value::Object(m) = &mut v {
        for (_, x) in m.iter_mut() {
            match x {
                serde_json::Value::String(s) if s.len() >= 19 && s.as_bytes()[10] == b'T' && s.contains('.') => {
                    *s = s.trim_end_matches('0').trim_end_matches('.').to_string();
                }
                serde_json::Value::Number(n) => *x = serde_json::json!(n.as_f64().unwrap()),
                _ => {}
            }
        }
    }
    v.to_string()
}

/// Asserts PostgreSQL's `schema.table` holds exactly the warehouse's rows.
fn assert_same_rows(pg: &Pg, dir: &Path, schema: &str, table: &str) -> usize {
    let o = pg.dp(dir, &["sql", "--format", "ndjson", "-e", &format!("select * from \"{schema}\".\"{table}\"")]);
    ok(&o);
    let mut lake: Vec<String> = stdout(&o).lines().filter(|l| !l.is_empty()).map(normalize).collect();
    let mut pgrows: Vec<String> =
        pg.rows(&format!("select row_to_json(t)::text from \"{schema}\".\"{table}\" t")).into_iter().map(|r| normalize(r[0].as_deref().unwrap())).collect();
    lake.sort();
    pgrows.sort();
    assert_eq!(lake.len(), pgrows.len(), "{schema}.{table}: row counts differ");
    assert!(lake == pgrows, "{schema}.{table}: rows differ; first lake row {:?}, first pg row {:?}", lake.first(), pgrows.first());
    lake.len()
}

#[test]
#[ignore = "needs PostgreSQL: run by scripts/test.sh"]
fn demo_marts_are_published_with_the_warehouse_rows() {
    let pg = pg();
    let dir = demo_project();
    let p = dir.path();
    demo_generate(p, "0.03");
    let o = pg.dp(p, &["build", "--target", "pg"]);
    ok(&o);
    let err = stderr(&o);
    assert!(err.contains("OK created sql incremental model marts.fct_orders"), "{err}");
    assert!(err.contains("; postgres replaced "), "{err}");
    let published: Vec<String> = pg.rows("select table_name from dp_meta.published order by 1").into_iter().map(|r| r[0].clone().unwrap()).collect();
    assert_eq!(published, ["dim_customers", "dim_products", "fct_orders", "mart_customer_analytics", "mart_daily_summary", "mart_product_analytics"]);
    for t in &published {
        assert!(assert_same_rows(&pg, p, "marts", t) > 0, "{t} is empty");
    }
    // Types follow the table; YAML descriptions become comments.
    let types = pg.rows(
        "select column_name, data_type, coalesce(numeric_precision::text, ''), coalesce(numeric_scale::text, '') from information_schema.columns \
         where table_schema = 'marts' and table_name = 'fct_orders' and column_name in ('order_id', 'order_date', 'order_day', 'is_revenue', 'total_amount') order by column_name",
    );
    let types: Vec<String> = types.iter().map(|r| r.iter().map(|c| c.clone().unwrap_or_default()).collect::<Vec<_>>().join(" ")).collect();
    assert_eq!(
        types,
        ["is_revenue boolean  ", "order_date timestamp without time zone  ", "order_day date  ", "order_id bigint 64 0", "total_amount numeric 12 2"]
    );
    assert_eq!(pg.one("select col_description('marts.fct_orders'::regclass, 1)"), "Order id.");
    // A second build publishes nothing new for the unchanged incremental model.
    let o = pg.dp(p, &["run", "--target", "pg", "-s", "fct_orders"]);
    ok(&o);
    assert!(stderr(&o).contains("; postgres up to date"), "{}", stderr(&o));
}

const PG_PROJECT: &str = r#"
[project]
name = "pgt"

[targets.dev]
warehouse = "./warehouse"
schema = "main"
threads = 2

[targets.dev.postgres]
retries = 1
retry_backoff_ms = 10
connect_timeout_s = 2

[models]
publish = ["postgres"]
"#;

#[test]
#[ignore = "needs PostgreSQL: run by scripts/test.sh"]
fn every_arrow_type_arrives_with_its_value() {
    // A view, published as a table: its query keeps types Delta cannot
    // store (unsigned, interval, time).
    let pg = pg();
    let dir = project(&[
        ("warehouse.toml", PG_PROJECT),
        (
            "models/all_types.sql",
            r#"{{ config(materialized='view') }}
select
  cast(1 as tinyint) as i8, cast(-2 as smallint) as i16, cast(3 as int) as i32, cast(-9007199254740993 as bigint) as i64,
  cast(18446744073709551615 as bigint unsigned) as u64,
  cast(1.5 as real) as f32, cast(-0.1 as double) as f64,
  cast(-12345.6789 as decimal(12,4)) as dec_neg, cast(0.0005 as decimal(9,4)) as dec_small, cast('12345678901234567890.12' as decimal(38,2)) as dec_big,
  'it''s "quoted" — ünïcode' as txt, true as flag,
  cast('2024-02-29' as date) as d,
  cast('2024-02-29 23:59:59.123456' as timestamp) as ts,
  arrow_cast('2024-02-29T23:59:59.5Z', 'Timestamp(Microsecond, Some("UTC"))') as tstz,
  interval '1 month 2 days 3 hours' as iv, cast('13:45:30.5' as time) as t,
  arrow_cast('abc', 'Binary') as bin,
  make_array(1, 2, 3) as list,
  named_struct('a', 1, 'b', 'x') as obj,
  cast(null as int) as nothing"#,
        ),
    ]);
    let p = dir.path();
    let o = pg.dp(p, &["run"]);
    ok(&o);
    pg.exec("SET TIME ZONE 'UTC'");
    let row = &pg.rows("SET TIME ZONE 'UTC'; select * from main.all_types")[0];
    let got: Vec<String> = row.iter().map(|v| v.clone().unwrap_or_else(|| "NULL".into())).collect();
    assert_eq!(
        got,
        [
            "1",
            "-2",
            "3",
            "-9007199254740993",
            "18446744073709551615",
            "1.5",
            "-0.1",
            "-12345.6789",
            "0.0005",
            "12345678901234567890.12",
            "it's \"quoted\" — ünïcode",
            "t",
            "2024-02-29",
            "2024-02-29 23:59:59.123456",
            "2024-02-29 23:59:59.5+00",
            "1 mon 2 days 03:00:00",
            "13:45:30.5",
            "\\x616263",
            "[1, 2, 3]",
            "{\"a\": 1, \"b\": \"x\"}",
            "NULL"
        ]
    );
    let types: Vec<String> = pg
        .rows("select data_type from information_schema.columns where table_schema = 'main' and table_name = 'all_types' order by ordinal_position")
        .into_iter()
        .map(|r| r[0].clone().unwrap())
        .collect();
    assert_eq!(
        types,
        [
            "smallint",
            "smallint",
            "integer",
            "bigint",
            "numeric",
            "real",
            "double precision",
            "numeric",
            "numeric",
            "numeric",
            "text",
            "boolean",
            "date",
            "timestamp without time zone",
            "timestamp with time zone",
            "interval",
            "time without time zone",
            "bytea",
            "jsonb",
            "jsonb",
            "integer"
        ]
    );
}

#[test]
#[ignore = "needs PostgreSQL: run by scripts/test.sh"]
fn hostile_identifiers_publish_correctly() {
    let pg = pg();
    let dir = project(&[
        ("warehouse.toml", PG_PROJECT),
        ("models/order.sql", "select 1 as \"order\", 'a' as \"Mixed Case\", 2 as \"x\"\"y\""),
        ("models/mixed.sql", "{{ config(alias='Mixed Case', schema='Sales Team') }}\nselect 'o''brien' as \"select\""),
        ("models/quoted.sql", "{{ config(alias='x\"y') }}\nselect * from {{ ref('order') }}"),
    ]);
    let p = dir.path();
    let o = pg.dp(p, &["run"]);
    ok(&o);
    assert_eq!(pg.rows(r#"select "order", "Mixed Case", "x""y" from main."order""#), [[Some("1".into()), Some("a".into()), Some("2".into())]]);
    assert_eq!(pg.one(r#"select "select" from "main_Sales Team"."Mixed Case""#), "o'brien");
    assert_eq!(pg.one(r#"select count(*) from main."x""y""#), "1");
    // Republishing replaces them in place.
    ok(&pg.dp(p, &["run"]));
    assert_eq!(pg.one(r#"select count(*) from main."x""y""#), "1");
}

#[test]
#[ignore = "needs PostgreSQL: run by scripts/test.sh"]
fn unreachable_postgres_keeps_the_lake_and_a_later_publish_catches_up() {
    let pg = pg();
    let dir = project(&[
        ("warehouse.toml", PG_PROJECT),
        ("models/base.sql", "{{ config(materialized='table') }}\nselect 1 as id union all select 2"),
        ("models/child.sql", "{{ config(publish=[]) }}\nselect count(*) as n from {{ ref('base') }}"),
    ]);
    let p = dir.path();
    // A closed port: every attempt is refused.
    let closed = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port().to_string();
    let o = dp()
        .current_dir(p)
        .env("PGHOST", "127.0.0.1")
        .env("PGPORT", &closed)
        .env("PGUSER", "postgres")
        .env("PGDATABASE", &pg.db)
        .args(["run"])
        .output()
        .unwrap();
    assert_eq!(o.status.code(), Some(1));
    let err = stderr(&o);
    assert!(err.contains("ERROR creating sql table model main.base"), "{err}");
    assert!(
        err.contains(&format!(
            "model base: the warehouse table is built (version 0), but publishing to PostgreSQL failed: publishing \"main\".\"base\" to postgres://postgres@127.0.0.1:{closed}/{}: gave up after 2 attempts: could not connect to postgres://postgres@127.0.0.1:{closed}/{}:",
            pg.db, pg.db
        )),
        "{err}"
    );
    assert!(err.contains("hint: once PostgreSQL is reachable, `dp publish -s base` (or the next `dp run`) brings it up to date"), "{err}");
    // The lake side is committed and the child still built.
    assert!(err.contains("OK created sql view model main.child"), "{err}");
    let o = run(p, &["sql", "--format", "csv", "-e", "select n from main.child"]);
    assert_eq!(stdout(&o), "n\n2\n");
    // Once reachable, dp publish brings PostgreSQL up to date, then has nothing to do.
    let o = pg.dp(p, &["publish"]);
    ok(&o);
    assert!(stderr(&o).contains("OK published main.base"), "{}", stderr(&o));
    assert_eq!(pg.one("select count(*) from main.base"), "2");
    let o = pg.dp(p, &["publish"]);
    ok(&o);
    assert!(stderr(&o).contains("[postgres up to date"), "{}", stderr(&o));
}

#[test]
#[ignore = "needs PostgreSQL: run by scripts/test.sh"]
fn incremental_models_apply_only_new_rows() {
    let pg = pg();
    // (strategy, unique_key, more config, what the 2nd and 3rd publishes do, final rows)
    let cases = [
        ("merge", "id", "", ["merged 50 rows", "merged 20 rows"], "160"),
        ("append", "", "", ["appended 50 rows", "appended 20 rows"], "170"),
        ("delete+insert", "id", "", ["upserted 50 rows", "upserted 20 rows"], "160"),
        // The predicates leave 141..145 unmatched: their new rows join the
        // old ones, two rows per key, which a MERGE on the key cannot mirror: a swap.
        ("merge", "id", ", incremental_predicates=['DBT_INTERNAL_DEST.id > 145']", ["replaced 150 rows", "replaced 165 rows"], "165"),
    ];
    for (strategy, key, more, verbs, total) in cases {
        let key_cfg = if key.is_empty() { String::new() } else { format!(", unique_key='{key}'{more}") };
        let dir = project(&[
            ("warehouse.toml", PG_PROJECT),
            (
                "models/events.sql",
                &format!(
                    "{{{{ config(materialized='incremental', incremental_strategy='{strategy}'{key_cfg}) }}}}\n\
                     select value as id, value * {{{{ var('mult', 1) }}}} as amount from generate_series(1, {{{{ var('n', 100) }}}})\n\
                     {{% if is_incremental() %}} where value > (select max(id) from {{{{ this }}}}) - {{{{ var('lookback', 0) }}}} {{% endif %}}"
                ),
            ),
        ]);
        let p = dir.path();
        let o = pg.dp(p, &["run"]);
        ok(&o);
        assert!(stderr(&o).contains("; postgres replaced 100 rows"), "{strategy}: {}", stderr(&o));
        // New rows only, in a new file; then new rows plus updates of the
        // last 10: the merge marks their old rows deleted (a deletion
        // vector) and adds the 20 rows in a new file, all PostgreSQL gets.
        for (vars, verb) in ["{n: 150}", "{n: 160, lookback: 10, mult: 2}"].iter().zip(verbs) {
            let o = pg.dp(p, &["run", "--vars", vars]);
            ok(&o);
            assert!(stderr(&o).contains(&format!("; postgres {verb} in ")), "{strategy}{more} {vars}: {}", stderr(&o));
            assert_same_rows(&pg, p, "main", "events");
        }
        assert_eq!(pg.one("select count(*) from main.events"), total, "{strategy}{more}");
        pg.exec("DROP SCHEMA main CASCADE; DELETE FROM dp_meta.published");
    }
}

#[test]
#[ignore = "needs PostgreSQL: run by scripts/test.sh"]
fn indexes_grants_and_comments_follow_the_config() {
    let pg = pg();
    pg.exec("DO $$ BEGIN CREATE ROLE dp_test_reader; EXCEPTION WHEN duplicate_object THEN NULL; END $$");
    let dir = project(&[
        ("warehouse.toml", PG_PROJECT),
        (
            "models/customers.sql",
            "{{ config(indexes=[{'columns': ['id'], 'unique': true}, {'columns': ['email', 'id'], 'type': 'hash'}], grants={'select': ['dp_test_reader']}) }}\nselect 1 as id, 'a@b.c' as email",
        ),
        (
            "models/schema.yml",
            "version: 2\nmodels:\n  - name: customers\n    description: \"One row per customer; it's the spine.\"\n    columns:\n      - name: email\n        description: Lower-cased e-mail.\n",
        ),
    ]);
    let p = dir.path();
    let o = pg.dp(p, &["run"]);
    assert!(!o.status.success(), "a hash index on two columns must fail");
    assert!(
        stderr(&o).contains("model customers: creating index 1 (\"email\", \"id\"): ERROR: access method \"hash\" does not support multicolumn indexes"),
        "{}",
        stderr(&o)
    );
    // Nothing half-published: no table, no staging table left behind.
    assert_eq!(pg.one("select count(*) from pg_tables where schemaname = 'main'"), "0");
    std::fs::write(
        p.join("models/customers.sql"),
        "{{ config(indexes=[{'columns': ['id'], 'unique': true}, {'columns': ['email'], 'type': 'hash'}], grants={'select': ['dp_test_reader']}) }}\nselect 1 as id, 'a@b.c' as email",
    )
    .unwrap();
    ok(&pg.dp(p, &["run"]));
    ok(&pg.dp(p, &["run"]));
    let idx: Vec<String> = pg
        .rows("select regexp_replace(indexdef, 'INDEX \\S+ ON', 'INDEX ON') from pg_indexes where schemaname = 'main' order by 1")
        .into_iter()
        .map(|r| r[0].clone().unwrap())
        .collect();
    assert_eq!(idx, ["CREATE INDEX ON main.customers USING hash (email)", "CREATE UNIQUE INDEX ON main.customers USING btree (id)"]);
    assert_eq!(pg.one("select has_table_privilege('dp_test_reader', 'main.customers', 'SELECT')::text"), "true");
    assert_eq!(pg.one("select obj_description('main.customers'::regclass)"), "One row per customer; it's the spine.");
    assert_eq!(pg.one("select col_description('main.customers'::regclass, 2)"), "Lower-cased e-mail.");
}

#[test]
#[ignore = "needs PostgreSQL: run by scripts/test.sh"]
fn readers_never_see_an_empty_or_partial_table_during_a_republish() {
    let pg = pg();
    let dir =
        project(&[("warehouse.toml", PG_PROJECT), ("models/big.sql", "select value as id, value % 7 as k from generate_series(1, {{ var('n', 200000) }})")]);
    let p = dir.path();
    ok(&pg.dp(p, &["run"]));
    let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    let reader = {
        let stop = stop.clone();
        let conn = format!("host={} port={} user={} dbname={}", pg.host, pg.port, pg.user, pg.db);
        std::thread::spawn(move || {
            let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
            rt.block_on(async {
                let (c, connection) = tokio_postgres::connect(&conn, tokio_postgres::NoTls).await.unwrap();
                tokio::spawn(connection);
                let mut seen = std::collections::BTreeMap::<i64, usize>::new();
                while !stop.load(std::sync::atomic::Ordering::SeqCst) {
                    let row = c.query_one("select count(*) from main.big", &[]).await.expect("reading during a republish");
                    *seen.entry(row.get::<_, i64>(0)).or_default() += 1;
                }
                seen
            })
        })
    };
    for n in ["150000", "250000", "200000"] {
        ok(&pg.dp(p, &["run", "--vars", &format!("{{n: {n}}}")]));
    }
    stop.store(true, std::sync::atomic::Ordering::SeqCst);
    let seen = reader.join().unwrap();
    let counts: Vec<i64> = seen.keys().copied().collect();
    assert!(counts.iter().all(|c| [150000, 200000, 250000].contains(c)), "a reader saw a partial table: {seen:?}");
    assert!(seen.values().sum::<usize>() > 3, "the reader ran too few queries: {seen:?}");
}

#[test]
#[ignore = "needs PostgreSQL: run by scripts/test.sh"]
fn load_copies_bronze_files_into_raw() {
    let pg = pg();
    let dir = project(&[
        ("warehouse.toml", PG_PROJECT),
        ("bronze/orders/2024-01-01/orders.csv", "id,amount\n1,10.5\n2,20\n"),
        ("bronze/orders/2024-01-02/orders.csv", "id,amount\n3,30.0\n"),
        (
            "models/sources.yml",
            "version: 2\nsources:\n  - name: raw\n    tables:\n      - name: orders\n        meta: { external_location: \"bronze/orders/*/orders.csv\" }\n",
        ),
    ]);
    let p = dir.path();
    let o = pg.dp(p, &["load"]);
    ok(&o);
    assert!(stderr(&o).contains("OK loaded raw.orders"), "{}", stderr(&o));
    assert!(stderr(&o).contains("[REPLACE 3 rows"), "{}", stderr(&o));
    assert_eq!(pg.one("select sum(amount)::text from raw.orders"), "60.5");
    let o = pg.dp(p, &["load", "-s", "source:raw.orders", "--mode", "append"]);
    ok(&o);
    assert!(stderr(&o).contains("[APPEND 3 rows"), "{}", stderr(&o));
    assert_eq!(pg.one("select count(*) from raw.orders"), "6");
    // A table whose columns differ refuses the append and keeps its rows.
    pg.exec("ALTER TABLE raw.orders RENAME COLUMN amount TO total");
    let o = pg.dp(p, &["load", "--mode", "append"]);
    assert_eq!(o.status.code(), Some(1));
    assert!(
        stderr(&o)
            .contains("\"raw\".\"orders\" has columns (id, total) but the source has (id, amount)\n  hint: load with --mode replace to recreate the table"),
        "{}",
        stderr(&o)
    );
    assert_eq!(pg.one("select count(*) from raw.orders"), "6");
}

#[test]
#[ignore = "needs PostgreSQL: run by scripts/test.sh"]
fn debug_checks_the_connection_and_masks_the_password() {
    let pg = pg();
    let dir = project(&[("warehouse.toml", PG_PROJECT)]);
    let p = dir.path();
    let mut c = dp();
    let o = pg.env(&mut c).env("PGPASSWORD", "s3cret-pw").current_dir(p).arg("debug").output().unwrap();
    ok(&o);
    let out = stdout(&o);
    assert!(out.contains(&format!("postgres:        postgres://postgres@{}:{}/{} password=$PGPASSWORD **** sslmode=prefer", pg.host, pg.port, pg.db)), "{out}");
    assert!(out.contains("postgres check:  OK PostgreSQL 15."), "{out}");
    assert!(!out.contains("s3cret-pw") && !stderr(&o).contains("s3cret-pw"));
    // The test server has no TLS: sslmode=require must say so, not fall back.
    let mut c = dp();
    let o = pg.env(&mut c).env("PGSSLMODE", "require").current_dir(p).arg("debug").output().unwrap();
    assert_eq!(o.status.code(), Some(1));
    let out = stdout(&o);
    assert!(
        out.contains(&format!(
            "postgres check:  ERROR could not connect to postgres://postgres@{}:{}/{}: error performing TLS handshake: server does not support TLS",
            pg.host, pg.port, pg.db
        )),
        "{out}"
    );
}

#[test]
#[ignore = "needs PostgreSQL: run by scripts/test.sh"]
fn a_killed_publish_leaves_the_previous_table() {
    let pg = pg();
    let dir = project(&[
        ("warehouse.toml", PG_PROJECT),
        ("models/big.sql", "{{ config(materialized='table') }}\nselect value as id from generate_series(1, 3000000)"),
    ]);
    let p = dir.path();
    ok(&pg.dp(p, &["run"]));
    // What readers had before: 1,000 rows.
    pg.exec("TRUNCATE main.big; INSERT INTO main.big SELECT generate_series(1, 1000)");
    let mut c = dp();
    let mut child = pg.env(&mut c).current_dir(p).args(["publish", "--full-refresh"]).stderr(std::process::Stdio::null()).spawn().unwrap();
    // Kill dp once its COPY is under way.
    let started = std::time::Instant::now();
    while pg.one("select count(*) from pg_stat_activity where query like 'COPY %'") == "0" {
        assert!(started.elapsed().as_secs() < 60, "the COPY never started");
        std::thread::sleep(std::time::Duration::from_millis(10));
    }
    child.kill().unwrap();
    child.wait().unwrap();
    // PostgreSQL rolls the transaction back: the old rows, no staging table.
    while pg.one("select count(*) from pg_stat_activity where query like 'COPY %'") != "0" {
        std::thread::sleep(std::time::Duration::from_millis(10));
    }
    assert_eq!(pg.one("select count(*) from main.big"), "1000");
    assert_eq!(pg.one("select string_agg(tablename, ',') from pg_tables where schemaname = 'main'"), "big");
}
