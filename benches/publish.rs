//! Publishing to PostgreSQL: `dp publish` of a 10M-row, 16-column table
//! (the shape of the demo's `fct_orders`) against `psql \copy ... (FORMAT
//! binary)` of the same rows from a file, and against pandas `to_sql` (the
//! seed platform's loader) on 1M rows, all in the same run.
//!
//!     cargo bench --bench publish
//!     cargo bench --bench publish -- --rows 2000000 --pandas-rows 200000
//!
//! Options (after `--`): `--rows N` (default 10,000,000); `--pandas-rows N`
//! (default 1,000,000); `--repeat R` (dp and psql runs, alternating, each
//! after a CHECKPOINT; medians; default 3); `--no-pandas`; `--keep`. The server: the one named by
//! `DP_TEST_PG_HOST/PORT/USER` when set, else a throwaway PostgreSQL 15
//! cluster started here (initdb under /tmp, fsync off, as `postgres` when
//! run as root) and stopped at the end. pandas, SQLAlchemy and psycopg2 come
//! from the venv `DP_BENCH_VENV` (default /work/venv-bench), installed with
//! pip when missing.
//!
//! Steps: `dp run` builds the table as Delta (not timed), then
//! - `dp publish --full-refresh`: Delta → binary COPY into a new table →
//!   swap, one transaction (wall time and peak RSS of the process);
//! - psql: the same rows exported once with `\copy ... TO (FORMAT binary)`,
//!   then timed: `BEGIN; CREATE TABLE ...; \copy ... FROM (FORMAT binary);
//!   COMMIT` (psql only pipes the file: the server's COPY is the limit);
//! - pandas: the first N rows as Parquet, `read_parquet` (not timed) and
//!   `DataFrame.to_sql(if_exists="replace", index=False, chunksize=10000)`.
//!
//! Target: dp ≥ 0.9× psql's rows/s with bounded memory, printed PASS/MISS.

mod common;

use common::pg::server;
use common::*;
use std::path::{Path, PathBuf};
use std::process::Command;

const MODEL: &str = "{{ config(materialized='table') }}
select
  value as order_id,
  value % 50000 as customer_id,
  to_timestamp_micros(1672531200000000 + value * 3000000) as order_date,
  cast(to_timestamp_micros(1672531200000000 + value * 3000000) as date) as order_day,
  case value % 5 when 0 then 'delivered' when 1 then 'shipped' when 2 then 'processing' when 3 then 'cancelled' else 'returned' end as status,
  value % 5 <> 3 as is_revenue,
  cast((value % 100000) / 100.0 as decimal(12,2)) as total_amount,
  value % 7 + 1 as line_count,
  value % 13 + 1 as item_count,
  cast((value % 120000) / 100.0 as decimal(18,2)) as gross_line_amount,
  cast((value % 2000) / 100.0 as decimal(18,2)) as discount_amount,
  cast((value % 100000) / 100.0 as decimal(18,2)) as net_line_amount,
  value % 20 + 1 as customer_order_number,
  value % 20 = 0 as is_first_order,
  cast(value % 365 as double) / 3.0 as days_since_previous_order,
  to_timestamp_micros(1672531200000000 + value * 3000000 + 86400000000) as updated_at
from generate_series(1, {{ var('rows') }})";

fn main() {
    if !invoked_by_cargo_bench() {
        return;
    }
    let mut rows: u64 = 10_000_000;
    let mut pandas_rows: u64 = 1_000_000;
    let mut pandas = true;
    let mut keep = false;
    let mut repeat = 3usize;
    let args = bench_args();
    let mut it = args.iter();
    while let Some(a) = it.next() {
        match a.as_str() {
            "--rows" => rows = it.next().and_then(|v| v.parse().ok()).expect("--rows N"),
            "--pandas-rows" => pandas_rows = it.next().and_then(|v| v.parse().ok()).expect("--pandas-rows N"),
            "--no-pandas" => pandas = false,
            "--keep" => keep = true,
            "--repeat" => repeat = it.next().and_then(|v| v.parse().ok()).expect("--repeat R"),
            other => eprintln!("publish bench: ignoring unknown argument {other}"),
        }
    }
    let dp = dp_binary();
    println!("publish bench: {} rows, dp = {}, load {} on {} cpus", thousands(rows), dp.display(), loadavg(), cpus());
    let srv = server("publish");
    let db = format!("dp_bench_{}", std::process::id());
    srv.sql("postgres", &format!("CREATE DATABASE {db}"));
    let tmp = tempfile::tempdir().unwrap();
    let p = tmp.path();
    std::fs::create_dir_all(p.join("models")).unwrap();
    std::fs::write(
        p.join("warehouse.toml"),
        "[project]\nname = \"bench\"\n\n[targets.dev]\nwarehouse = \"./warehouse\"\nschema = \"main\"\n\n[targets.dev.postgres]\n\n[models]\npublish = [\"postgres\"]\n",
    )
    .unwrap();
    std::fs::write(p.join("models/wide.sql"), MODEL).unwrap();
    let env = srv.env(&db);
    let vars = format!("{{rows: {rows}}}");

    // Build the Delta table (dp run also publishes it once: a warm-up).
    let m = measure(&dp, &["run", "--vars", &vars], p, &env);
    m.expect_ok("dp run");
    println!("dp run (Delta build + first publish): {:.2} s", m.wall_s);

    // The binary file psql loads: the same rows, exported once.
    let file = p.join("wide.bin");
    let o = srv.psql(&db).args(["-c", &format!("\\copy main.wide TO '{}' (FORMAT binary)", file.display())]).output().unwrap();
    assert!(o.status.success(), "export: {}", String::from_utf8_lossy(&o.stderr));
    let script = p.join("copy.sql");
    std::fs::write(
        &script,
        format!("BEGIN;\nCREATE TABLE public.wide_psql (LIKE main.wide);\n\\copy public.wide_psql FROM '{}' (FORMAT binary)\nCOMMIT;\n", file.display()),
    )
    .unwrap();
    let which = Command::new("which").arg("psql").output().unwrap();
    let psql = PathBuf::from(String::from_utf8_lossy(&which.stdout).trim());
    let script_s = script.display().to_string();
    let psql_args = ["-h", &srv.host, "-p", &srv.port, "-U", &srv.user, "-d", &db, "-v", "ON_ERROR_STOP=1", "-q", "-f", &script_s];

    // Alternate the two, each after a CHECKPOINT (so neither pays for the
    // other's dirty buffers), `repeat` times; medians.
    let (mut dp_runs, mut psql_runs) = (vec![], vec![]);
    for _ in 0..repeat {
        srv.sql(&db, "CHECKPOINT");
        let m = measure(&dp, &["publish", "--full-refresh", "--vars", &vars], p, &env);
        m.expect_ok("dp publish");
        let count: u64 = srv.sql(&db, "select count(*) from main.wide").parse().unwrap();
        assert_eq!(count, rows, "published row count");
        dp_runs.push(m);
        srv.sql(&db, "DROP TABLE IF EXISTS public.wide_psql");
        srv.sql(&db, "CHECKPOINT");
        let m = measure(&psql, &psql_args, p, &[]);
        m.expect_ok("psql \\copy");
        psql_runs.push(m);
    }
    let m = median(dp_runs);
    let dp_rate = rows as f64 / m.wall_s;
    println!("dp publish:   {:>7.2} s  {:>12} rows/s  peak {} MB  (median of {repeat})", m.wall_s, thousands(dp_rate as u64), fmt_mb(m.peak_mb));
    let mp = median(psql_runs);
    let psql_rate = rows as f64 / mp.wall_s;
    println!(
        "psql \\copy:   {:>7.2} s  {:>12} rows/s  (binary file of {} MB; median of {repeat})",
        mp.wall_s,
        thousands(psql_rate as u64),
        std::fs::metadata(&file).map(|m| m.len() >> 20).unwrap_or(0)
    );
    let ratio = dp_rate / psql_rate;
    println!("dp / psql rows/s = {ratio:.2}  (target >= 0.90: {})", if ratio >= 0.9 { "PASS" } else { "MISS" });
    let _ = std::fs::remove_file(&file);

    if pandas {
        match pandas_python() {
            Ok(py) => {
                let parquet = p.join("sample.parquet");
                let o = measure(
                    &dp,
                    &[
                        "sql",
                        "--vars",
                        &vars,
                        "-e",
                        &format!("COPY (select * from main.wide order by order_id limit {pandas_rows}) TO '{}'", parquet.display()),
                    ],
                    p,
                    &env,
                );
                o.expect_ok("export sample");
                let script = p.join("pandas_load.py");
                std::fs::write(
                    &script,
                    format!(
                        "import time, pandas as pd, sqlalchemy as sa\n\
                         df = pd.read_parquet({parquet:?})\n\
                         eng = sa.create_engine('postgresql+psycopg2://{user}@{host}:{port}/{db}')\n\
                         t = time.perf_counter()\n\
                         df.to_sql('wide_pandas', eng, schema='public', if_exists='replace', index=False, chunksize=10000)\n\
                         print(f'{{len(df)}} {{time.perf_counter() - t:.3f}}')\n",
                        parquet = parquet.display().to_string(),
                        user = srv.user,
                        host = srv.host,
                        port = srv.port,
                    ),
                )
                .unwrap();
                let m = measure(&py, &[script.to_str().unwrap()], p, &[]);
                m.expect_ok("pandas to_sql");
                let parts: Vec<&str> = m.stdout.split_whitespace().collect();
                let n: f64 = parts[0].parse().unwrap();
                let secs: f64 = parts[1].parse().unwrap();
                let pandas_rate = n / secs;
                println!("pandas to_sql: {:>7.2} s  {:>12} rows/s  ({} rows, to_sql only)", secs, thousands(pandas_rate as u64), thousands(n as u64));
                println!("dp / pandas rows/s = {:.1}", dp_rate / pandas_rate);
            }
            Err(e) => println!("pandas: skipped ({e})"),
        }
    }
    println!("load at end: {}", loadavg());
    if keep {
        println!("kept {}", tmp.keep().display());
    } else {
        srv.sql("postgres", &format!("DROP DATABASE {db}"));
    }
}

fn pandas_python() -> Result<PathBuf, String> {
    let venv = std::env::var_os("DP_BENCH_VENV").map(PathBuf::from).unwrap_or_else(|| "/work/venv-bench".into());
    let py = venv.join("bin/python");
    let ready = |py: &Path| Command::new(py).args(["-c", "import pandas, sqlalchemy, psycopg2, pyarrow"]).output().map(|o| o.status.success()).unwrap_or(false);
    if py.is_file() && ready(&py) {
        return Ok(py);
    }
    if !py.is_file() {
        let st = Command::new("python3").args(["-m", "venv"]).arg(&venv).status().map_err(|e| e.to_string())?;
        if !st.success() {
            return Err("python3 -m venv failed".into());
        }
    }
    eprintln!("pip install pandas sqlalchemy psycopg2-binary pyarrow into {} ...", venv.display());
    let st = Command::new(venv.join("bin/pip"))
        .args(["install", "--quiet", "pandas", "sqlalchemy", "psycopg2-binary", "pyarrow"])
        .status()
        .map_err(|e| e.to_string())?;
    if st.success() && ready(&py) { Ok(py) } else { Err("pip install failed".into()) }
}
