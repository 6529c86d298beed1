//! The fixed cost of one model: N small `table` models that each select 10 rows from a
//! 10,000-row table, run by `dp run`, against DuckDB doing the same (`COPY (select ...) TO
//! 'm.parquet'`, ZSTD) in the same run.
//!
//!     cargo bench --bench model_overhead
//!     cargo bench --bench model_overhead -- --models 200 --repeat 5
//!
//! Options (after `--`): `--models N` (default 100); `--rows R` (rows of the base table,
//! default 10,000); `--repeat R` (median of R `dp run`s, default 3); `--threads T` (default 1,
//! so models run one after another and the wall per model is the cost of one model);
//! `--no-duckdb`; `--keep`. `DP_BIN` overrides the dp binary, `DP_BENCH_VENV` the Python venv
//! (as in the `pipeline` bench).
//!
//! Prints dp's per-model `execution_time` (median and p90 from the JSON node lines: planning,
//! the query, the Delta write and commit, reading the table back), the process wall divided by
//! N (start-up and compilation included), DuckDB's per-model time, and the target: a model that
//! selects 10 rows from a small table costs under 20 ms.

mod common;

use common::*;
use serde_json::Value;
use std::path::{Path, PathBuf};

struct Opts {
    models: usize,
    rows: usize,
    repeat: usize,
    threads: usize,
    duckdb: bool,
    keep: bool,
}

fn parse_opts() -> Opts {
    let mut o = Opts { models: 100, rows: 10_000, repeat: 3, threads: 1, duckdb: true, keep: false };
    let args = bench_args();
    let mut it = args.iter();
    while let Some(a) = it.next() {
        let mut val = |k: &str| it.next().cloned().unwrap_or_else(|| panic!("{k} needs a value"));
        match a.as_str() {
            "--models" => o.models = val(a).parse().expect("--models N"),
            "--rows" => o.rows = val(a).parse().expect("--rows R"),
            "--repeat" => o.repeat = val(a).parse().expect("--repeat R"),
            "--threads" => o.threads = val(a).parse().expect("--threads T"),
            "--no-duckdb" => o.duckdb = false,
            "--keep" => o.keep = true,
            s => eprintln!("model_overhead bench: ignoring unknown argument {s}"),
        }
    }
    o
}

/// The project: a seed `base` (id, k, name, amount) and N models under models/small/.
fn write_project(dir: &Path, o: &Opts) {
    let w = |p: &str, s: String| {
        let p = dir.join(p);
        std::fs::create_dir_all(p.parent().unwrap()).unwrap();
        std::fs::write(p, s).unwrap();
    };
    w("warehouse.toml", "[project]\nname = \"overhead\"\n[models]\nmaterialized = \"table\"\n[targets.dev]\nschema = \"main\"\n".into());
    let mut csv = String::from("id,k,name,amount\n");
    for i in 0..o.rows {
        csv.push_str(&format!("{i},{},name-{i},{}.{:02}\n", i % 97, i * 7 % 1000, i % 100));
    }
    w("seeds/base.csv", csv);
    for i in 0..o.models {
        w(&format!("models/small/m_{i:04}.sql"), format!("select id, k, name, amount from {{{{ ref('base') }}}} where k = {} limit 10\n", i % 97));
    }
}

fn percentile(sorted: &[f64], p: f64) -> f64 {
    if sorted.is_empty() {
        return f64::NAN;
    }
    sorted[((sorted.len() - 1) as f64 * p).round() as usize]
}

/// Per-model execution times (s) from `dp --log-format json`'s node lines, sorted.
fn node_times(stderr: &str) -> Vec<f64> {
    let mut v: Vec<f64> = stderr
        .lines()
        .filter_map(|l| serde_json::from_str::<Value>(l).ok())
        .filter(|v| v.get("unique_id").and_then(Value::as_str).is_some_and(|u| u.starts_with("model.")))
        .filter_map(|v| v.get("execution_time")?.as_f64())
        .collect();
    v.sort_by(f64::total_cmp);
    v
}

const DUCKDB_SCRIPT: &str = r#"
import duckdb, json, sys, time
proj, n = sys.argv[1], int(sys.argv[2])
con = duckdb.connect()
con.execute(f"create table base as select * from read_csv('{proj}/seeds/base.csv')")
times = []
for i in range(n):
    t = time.perf_counter()
    con.execute(f"copy (select id, k, name, amount from base where k = {i % 97} limit 10) to '{proj}/duck_m_{i:04}.parquet' (format parquet, compression zstd)")
    times.append(time.perf_counter() - t)
print(json.dumps({"version": duckdb.__version__, "times": times}))
"#;

fn duckdb_python() -> Option<PathBuf> {
    let venv = std::env::var_os("DP_BENCH_VENV").map(PathBuf::from).unwrap_or_else(|| "/work/venv-bench".into());
    let py = venv.join("bin/python");
    let ok = std::process::Command::new(&py).args(["-c", "import duckdb"]).output().map(|o| o.status.success()).unwrap_or(false);
    ok.then_some(py)
}

fn main() {
    if !common::invoked_by_cargo_bench() {
        return;
    }
    let o = parse_opts();
    let dp = dp_binary();
    let tmp = tempfile::Builder::new().prefix("dp-bench-overhead-").tempdir().unwrap();
    let proj = tmp.path().to_path_buf();
    let pd = proj.to_str().unwrap().to_string();
    write_project(&proj, &o);
    println!("dp per-model overhead benchmark ({} models, each 10 rows from a {}-row table, --threads {})", o.models, o.rows, o.threads);
    println!("  dp binary : {}", dp.display());
    println!("  machine   : {} CPUs, load average {} (1/5/15 min) at start", cpus(), loadavg());
    measure(&dp, &["--project-dir", &pd, "seed"], &proj, &[]).expect_ok("dp seed");

    let threads = o.threads.to_string();
    let args = ["--project-dir", &pd, "--log-format", "json", "run", "-s", "path:models/small", "--threads", &threads];
    // The first run creates the tables; the measured ones replace them (the steady state).
    measure(&dp, &args, &proj, &[]).expect_ok("dp run (first)");
    let runs: Vec<Measured> = (0..o.repeat.max(1))
        .map(|_| {
            let m = measure(&dp, &args, &proj, &[]);
            m.expect_ok("dp run");
            m
        })
        .collect();
    let run = median(runs);
    let times = node_times(&run.stderr);
    assert_eq!(times.len(), o.models, "one JSON node line per model");
    let med = percentile(&times, 0.5);
    println!(
        "  dp run    : {:.3}s wall, {} MB peak; per model: median {:.1} ms, p90 {:.1} ms, max {:.1} ms; wall / models {:.1} ms",
        run.wall_s,
        fmt_mb(run.peak_mb),
        med * 1e3,
        percentile(&times, 0.9) * 1e3,
        times.last().unwrap() * 1e3,
        run.wall_s / o.models as f64 * 1e3
    );

    if o.duckdb {
        match duckdb_python() {
            Some(py) => {
                let out = std::process::Command::new(py).args(["-c", DUCKDB_SCRIPT, &pd, &o.models.to_string()]).output().expect("python");
                let v: Option<Value> = serde_json::from_slice(&out.stdout).ok();
                match v {
                    Some(v) => {
                        let mut d: Vec<f64> = v["times"].as_array().unwrap().iter().filter_map(Value::as_f64).collect();
                        d.sort_by(f64::total_cmp);
                        let dmed = percentile(&d, 0.5);
                        println!(
                            "  DuckDB {}: per model: median {:.1} ms, p90 {:.1} ms (COPY (select ...) TO parquet, in one process)",
                            v["version"].as_str().unwrap_or("?"),
                            dmed * 1e3,
                            percentile(&d, 0.9) * 1e3
                        );
                        println!("Ratio dp/DuckDB per model (median): {:.1} ms / {:.1} ms = {:.1}x", med * 1e3, dmed * 1e3, med / dmed);
                    }
                    None => println!("  DuckDB baseline failed: {}", tail(&String::from_utf8_lossy(&out.stderr), 2000)),
                }
            }
            None => println!("  DuckDB baseline skipped: no python with duckdb (see the pipeline bench's DP_BENCH_VENV)"),
        }
    }
    println!("Target: a model selecting 10 rows from a small table under 20 ms: {} ({:.1} ms median)", if med < 0.020 { "PASS" } else { "MISS" }, med * 1e3);
    println!("  load average {} at end", loadavg());
    if o.keep {
        println!("  kept project: {}", tmp.keep().display());
    }
}
