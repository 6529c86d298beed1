//! The demo pipeline end to end: `dp seed` + `dp run` at a data scale, against DuckDB running
//! the same compiled SQL over the same files, in the same run.
//!
//!     cargo bench --bench pipeline -- --scale 10
//!
//! Options (after `--`): `--scale S` (default 1; 1 ≈ 100k orders / 300k order lines);
//! `--threads N` (dp run's `--threads`, default the target's); `--duckdb-threads N` (default
//! DuckDB's: all cores); `--no-duckdb`; `--keep` (keep the temp project and print where);
//! `--rounds R` (default 1: after the first round, R − 1 more, each dp's `seed` + `run` into
//! an emptied warehouse and then DuckDB into an emptied output folder, so each side runs
//! right after the other; prints every round's ratios and their medians, and the target
//! is judged on the median).
//! `DP_BIN` overrides the dp binary; `DP_BENCH_VENV` the Python venv (default /work/venv-bench,
//! created with `pip install duckdb` when missing).
//!
//! Steps: copy the demo project (models/, seeds/, macros/, warehouse.toml) into a temp dir,
//! `dp demo generate --scale S` into its bronze/, then `dp seed` and `dp --log-format json run`
//! (wall time and peak RSS of each process; per-model rows and execution_time from the JSON
//! node lines). Then `benches/duckdb_baseline.py` replays target/compiled/**.sql of that run on
//! DuckDB in DAG order, writing each model to Parquet. Prints a table per model and the
//! dp/DuckDB ratios. No timing assertion: the target (dp total ≤ DuckDB's) is printed as
//! PASS/MISS.

mod common;

use common::*;
use serde_json::Value;
use std::collections::HashMap;
use std::path::{Path, PathBuf};

struct Opts {
    scale: f64,
    threads: Option<usize>,
    duckdb_threads: Option<usize>,
    duckdb: bool,
    keep: bool,
    rounds: usize,
}

fn parse_opts() -> Opts {
    let mut o = Opts { scale: 1.0, threads: None, duckdb_threads: None, duckdb: true, keep: false, rounds: 1 };
    each_option(|k, val| match k {
        "--scale" => o.scale = val().parse().expect("--scale S"),
        "--threads" => o.threads = Some(val().parse().expect("--threads N")),
        "--duckdb-threads" => o.duckdb_threads = Some(val().parse().expect("--duckdb-threads N")),
        "--no-duckdb" => o.duckdb = false,
        "--keep" => o.keep = true,
        "--rounds" => o.rounds = val().parse::<usize>().expect("--rounds R").max(1),
        s => eprintln!("pipeline bench: ignoring unknown argument {s}"),
    });
    o
}

/// One model's figures from dp's JSON node line or DuckDB's result file.
#[derive(Debug, Clone, Default)]
struct NodeStat {
    rows: Option<u64>,
    secs: f64,
}

/// `{"unique_id": .., "rows": .., "execution_time": ..}` lines of `dp --log-format json`.
fn dp_node_stats(stderr: &str) -> Vec<(String, NodeStat)> {
    stderr
        .lines()
        .filter_map(|l| serde_json::from_str::<Value>(l).ok())
        .filter_map(|v| {
            let uid = v.get("unique_id")?.as_str()?.to_string();
            let secs = v.get("execution_time")?.as_f64()?;
            Some((uid, NodeStat { rows: v.get("rows").and_then(Value::as_u64), secs }))
        })
        .collect()
}

fn venv_dir() -> PathBuf {
    std::env::var_os("DP_BENCH_VENV").map(PathBuf::from).unwrap_or_else(|| "/work/venv-bench".into())
}

/// The venv's python with `duckdb` importable, creating the venv / installing duckdb if needed.
fn ensure_duckdb_python() -> Result<PathBuf, String> {
    let venv = venv_dir();
    let py = venv.join("bin/python");
    let has_duckdb = |py: &Path| std::process::Command::new(py).args(["-c", "import duckdb"]).output().map(|o| o.status.success()).unwrap_or(false);
    if py.is_file() && has_duckdb(&py) {
        return Ok(py);
    }
    if !py.is_file() {
        eprintln!("creating venv {} ...", venv.display());
        let st = std::process::Command::new("python3").args(["-m", "venv"]).arg(&venv).status().map_err(|e| format!("python3 -m venv: {e}"))?;
        if !st.success() {
            return Err(format!("python3 -m venv {} failed", venv.display()));
        }
    }
    eprintln!("pip install duckdb into {} ...", venv.display());
    let st = std::process::Command::new(venv.join("bin/pip")).args(["install", "--quiet", "duckdb"]).status().map_err(|e| format!("pip: {e}"))?;
    if !st.success() || !has_duckdb(&py) {
        return Err("pip install duckdb failed".into());
    }
    Ok(py)
}

/// User + system seconds summed over processes, or "-" when GNU time was not there to count them.
fn cpu(parts: &[Option<f64>]) -> String {
    parts.iter().copied().sum::<Option<f64>>().map(|s| format!("{s:.2}s")).unwrap_or("-".into())
}

fn refs(v: &[String]) -> Vec<&str> {
    v.iter().map(String::as_str).collect()
}

fn rate(rows: Option<u64>, secs: f64) -> String {
    match rows {
        Some(r) if secs > 0.0 => thousands((r as f64 / secs) as u64),
        _ => "-".into(),
    }
}

fn main() {
    if !common::invoked_by_cargo_bench() {
        return;
    }
    let o = parse_opts();
    let dp = dp_binary();
    let repo = repo_root();
    let (tmp, proj) = demo_copy("dp-bench-pipeline-");
    let pd = proj.to_str().unwrap().to_string();

    println!("dp pipeline benchmark (demo project, scale {})", o.scale);
    println!("  dp binary : {}", dp.display());
    println!("  machine   : {} CPUs, load average {} (1/5/15 min) at start", cpus(), loadavg());
    println!("  project   : {}", proj.display());

    // Bronze data (not part of the comparison).
    let scale = o.scale.to_string();
    let bronze = proj.join("bronze");
    let generate = measure(&dp, &["--project-dir", &pd, "demo", "generate", "--scale", &scale, "--out", bronze.to_str().unwrap()], &proj, &[]);
    generate.expect_ok("dp demo generate");
    // The sales file drops (landing/) into bronze, as `dp demo` does.
    measure(&dp, &["--project-dir", &pd, "ingest", "-s", "source:raw.transactions"], &proj, &[]).expect_ok("dp ingest");
    println!("  bronze    : generated in {:.2}s ({})", generate.wall_s, generate.stderr.trim().lines().last().unwrap_or("").trim());

    // dp seed + dp run.
    let mut run_args: Vec<String> = vec!["--project-dir".into(), pd.clone(), "--log-format".into(), "json".into()];
    let seed_args: Vec<String> = run_args.iter().cloned().chain(["seed".to_string()]).collect();
    run_args.push("run".into());
    if let Some(t) = o.threads {
        run_args.extend(["--threads".into(), t.to_string()]);
    }
    let seed = measure(&dp, &refs(&seed_args), &proj, &[]);
    seed.expect_ok("dp seed");
    let run = measure(&dp, &refs(&run_args), &proj, &[]);
    run.expect_ok("dp run");
    let dp_seeds = dp_node_stats(&seed.stderr);
    let dp_models = dp_node_stats(&run.stderr);
    if dp_models.is_empty() {
        eprintln!("{}", tail(&run.stderr, 4000));
        panic!("no JSON node lines (unique_id/rows/execution_time) in dp run's stderr");
    }
    let dp_sum: f64 = dp_models.iter().map(|(_, s)| s.secs).sum();
    let dp_rows: u64 = dp_models.iter().filter_map(|(_, s)| s.rows).sum();

    // DuckDB on the same compiled SQL.
    let mut duck: Option<(Measured, Value)> = None;
    let mut duck_skip = String::new();
    // How to run DuckDB again (python, arguments, output folder), for --rounds.
    let mut duck_cmd: Option<(PathBuf, Vec<String>, PathBuf)> = None;
    if o.duckdb {
        match ensure_duckdb_python() {
            Ok(py) => {
                let script = repo.join("benches/duckdb_baseline.py");
                let out = proj.join("duckdb_out");
                let json = proj.join("duckdb_results.json");
                let mut args = vec![
                    script.to_str().unwrap().to_string(),
                    "--project".into(),
                    pd.clone(),
                    "--out".into(),
                    out.to_str().unwrap().into(),
                    "--json".into(),
                    json.to_str().unwrap().into(),
                ];
                if let Some(t) = o.duckdb_threads {
                    args.extend(["--threads".into(), t.to_string()]);
                }
                let m = measure(&py, &refs(&args), &proj, &[]);
                duck_cmd = Some((py.clone(), args.clone(), out.clone()));
                let v: Option<Value> = std::fs::read_to_string(&json).ok().and_then(|s| serde_json::from_str(&s).ok());
                match v {
                    Some(v) => {
                        if !m.ok() {
                            eprintln!("duckdb baseline reported failures:\n{}", tail(&m.stderr, 4000));
                        }
                        duck = Some((m, v));
                    }
                    None => {
                        eprintln!("{}", tail(&m.stderr, 4000));
                        duck_skip = format!("duckdb_baseline.py failed ({})", m.status);
                    }
                }
            }
            Err(e) => duck_skip = e,
        }
    } else {
        duck_skip = "--no-duckdb".into();
    }

    let duck_models: HashMap<String, (String, NodeStat)> = duck
        .as_ref()
        .and_then(|(_, v)| v.get("models")?.as_array().cloned())
        .unwrap_or_default()
        .into_iter()
        .filter_map(|m| {
            let uid = m.get("unique_id")?.as_str()?.to_string();
            let rel = m.get("relation").and_then(Value::as_str).unwrap_or("").to_string();
            let st = NodeStat { rows: m.get("rows").and_then(Value::as_u64), secs: m.get("seconds")?.as_f64()? };
            Some((uid, (rel, st)))
        })
        .collect();
    let dget = |k: &str| duck.as_ref().and_then(|(_, v)| v.get(k)).and_then(Value::as_f64);

    // Per-model table, in dp's completion order.
    println!();
    println!("{:<36} {:>11} {:>8} {:>12} | {:>8} {:>12} | {:>7}", "model", "rows", "dp s", "dp rows/s", "duck s", "duck rows/s", "dp/duck");
    println!("{}", "-".repeat(104));
    let mut mismatches = vec![];
    for (uid, st) in &dp_models {
        let name = uid.splitn(3, '.').nth(2).unwrap_or(uid);
        let d = duck_models.get(uid);
        let label = d.map(|(rel, _)| rel.as_str()).filter(|r| !r.is_empty()).unwrap_or(name);
        if let Some((_, ds)) = d
            && ds.rows.is_some()
            && ds.rows != st.rows
        {
            mismatches.push(format!("{label}: dp {:?} rows, duckdb {:?}", st.rows, ds.rows));
        }
        println!(
            "{:<36} {:>11} {:>8.3} {:>12} | {:>8} {:>12} | {:>7}",
            label,
            st.rows.map(thousands).unwrap_or("-".into()),
            st.secs,
            rate(st.rows, st.secs),
            d.map(|(_, s)| format!("{:.3}", s.secs)).unwrap_or("-".into()),
            d.map(|(_, s)| rate(s.rows, s.secs)).unwrap_or("-".into()),
            d.map(|(_, s)| if s.secs > 0.0 { format!("{:.2}", st.secs / s.secs) } else { "-".into() }).unwrap_or("-".into()),
        );
    }
    println!("{}", "-".repeat(104));
    let duck_sum: f64 = duck_models.values().map(|(_, s)| s.secs).sum();
    println!(
        "{:<36} {:>11} {:>8.3} {:>12} | {:>8} {:>12} | {:>7}",
        "sum over models",
        thousands(dp_rows),
        dp_sum,
        rate(Some(dp_rows), dp_sum),
        if duck.is_some() { format!("{duck_sum:.3}") } else { "-".into() },
        if duck.is_some() { rate(Some(dp_rows), duck_sum) } else { "-".into() },
        if duck.is_some() && duck_sum > 0.0 { format!("{:.2}", dp_sum / duck_sum) } else { "-".into() },
    );
    println!("(dp runs independent models concurrently, so its sum exceeds its run's wall time.)");

    println!();
    println!(
        "dp   : seed {:.3}s / {} MB peak ({} seeds), run {:.3}s / {} MB peak ({} models) -- process wall, incl. startup",
        seed.wall_s,
        fmt_mb(seed.peak_mb),
        dp_seeds.len(),
        run.wall_s,
        fmt_mb(run.peak_mb),
        dp_models.len()
    );
    let dp_total = seed.wall_s + run.wall_s;
    println!("dp   : total (seed + run) {dp_total:.3}s, CPU {}", cpu(&[seed.cpu_s, run.cpu_s]));
    if let Some((m, v)) = &duck {
        println!(
            "duck : DuckDB {} ({} threads): sources {:.3}s, seeds {:.3}s, models {:.3}s, in-process total {:.3}s; \
             python process {:.3}s / {} MB peak, CPU {}",
            v.get("duckdb_version").and_then(Value::as_str).unwrap_or("?"),
            v.get("threads").map(|t| t.to_string().trim_matches('"').to_string()).unwrap_or("?".into()),
            dget("setup_s").unwrap_or(0.0),
            dget("seeds_s").unwrap_or(0.0),
            dget("models_s").unwrap_or(0.0),
            dget("total_s").unwrap_or(0.0),
            m.wall_s,
            fmt_mb(m.peak_mb),
            cpu(&[m.cpu_s]),
        );
        let duck_total = m.wall_s;
        println!();
        println!("Ratios dp/DuckDB (< 1 means dp is faster):");
        println!("  end to end (dp seed+run processes vs DuckDB python process): {dp_total:.3}s / {duck_total:.3}s = {:.2}", dp_total / duck_total);
        if let (Some(setup), Some(models)) = (dget("setup_s"), dget("models_s")) {
            let dm = setup + models;
            println!("  run only (dp run process vs DuckDB sources + model loop)   : {:.3}s / {dm:.3}s = {:.2}", run.wall_s, run.wall_s / dm);
        }
        if let (Some(a), Some(b)) = (seed.cpu_s.zip(run.cpu_s).map(|(x, y)| x + y), m.cpu_s) {
            println!("  CPU, user + system (dp seed+run vs DuckDB process)         : {a:.2}s / {b:.2}s = {:.2}", a / b);
        }
        if let (Some(a), Some(b)) = (seed.sys_s.zip(run.sys_s).map(|(x, y)| x + y), m.sys_s) {
            println!("  of which system (kernel: page faults, writes, madvise)     : {a:.2}s / {b:.2}s = {:.2}", a / b);
        }
        if let (Some(a), Some(b)) = (run.peak_mb, m.peak_mb) {
            println!("  peak RSS (dp run vs DuckDB process)                        : {a:.0} MB / {b:.0} MB = {:.2}", a / b);
        }
        let failed = v.get("models").and_then(Value::as_array).map(|ms| ms.iter().filter(|m| m.get("error").is_some()).count()).unwrap_or(0);
        if failed > 0 {
            // DuckDB ran only part of the pipeline: its time is no baseline
            println!("Target: dp total <= DuckDB's: NOT MEASURED (DuckDB failed on {failed} model(s), below)");
        } else {
            println!("Target: dp total <= DuckDB's: {} ({:.2})", if dp_total <= duck_total { "PASS" } else { "MISS" }, dp_total / duck_total);
        }
        if failed > 0 {
            println!("Row counts: compared on the models DuckDB built only.");
        } else if mismatches.is_empty() {
            println!("Row counts: dp and DuckDB agree on every model.");
        } else {
            println!("Row counts differ on {} model(s):", mismatches.len());
            for m in &mismatches {
                println!("  {m}");
            }
        }
        if let Some(errs) = v.get("models").and_then(Value::as_array) {
            for e in errs.iter().filter(|m| m.get("error").is_some()) {
                println!("DuckDB failed on {}: {}", e["unique_id"], e["error"]);
            }
        }
    } else {
        println!();
        println!("DuckDB baseline skipped: {duck_skip}");
    }
    if o.rounds > 1
        && let (Some((m, _)), Some((py, args, out))) = (&duck, &duck_cmd)
    {
        let mut rounds = vec![Round::of(&seed, &run, m)];
        for r in 2..=o.rounds {
            let _ = std::fs::remove_dir_all(proj.join("warehouse"));
            let seed = measure(&dp, &refs(&seed_args), &proj, &[]);
            seed.expect_ok("dp seed");
            let run = measure(&dp, &refs(&run_args), &proj, &[]);
            run.expect_ok("dp run");
            let _ = std::fs::remove_dir_all(out);
            let m = measure(py, &refs(args), &proj, &[]);
            if !m.ok() {
                eprintln!("{}", tail(&m.stderr, 4000));
                panic!("duckdb_baseline.py failed in round {r}");
            }
            rounds.push(Round::of(&seed, &run, &m));
        }
        print_rounds(&rounds);
    }
    if run.rss_method == "proc" {
        println!("(peak RSS from /proc VmHWM polling: /usr/bin/time not found)");
    }
    println!("load average at end: {}", loadavg());
    if o.keep {
        let p = tmp.keep();
        println!("project kept in {}", p.display());
    }
}

/// One round's end-to-end figures for each side.
struct Round {
    dp_s: f64,
    dp_cpu: Option<f64>,
    dp_mb: Option<f64>,
    duck_s: f64,
    duck_cpu: Option<f64>,
    duck_mb: Option<f64>,
}

impl Round {
    /// dp's `seed` + `run` processes against DuckDB's one.
    fn of(seed: &Measured, run: &Measured, duck: &Measured) -> Round {
        Round {
            dp_s: seed.wall_s + run.wall_s,
            dp_cpu: seed.cpu_s.zip(run.cpu_s).map(|(a, b)| a + b),
            dp_mb: run.peak_mb,
            duck_s: duck.wall_s,
            duck_cpu: duck.cpu_s,
            duck_mb: duck.peak_mb,
        }
    }
}

fn median_of(mut v: Vec<f64>) -> Option<f64> {
    v.sort_by(f64::total_cmp);
    match v.len() {
        0 => None,
        n if n % 2 == 1 => Some(v[n / 2]),
        n => Some((v[n / 2 - 1] + v[n / 2]) / 2.0),
    }
}

/// Every round's ratios, their medians and the target judged on the median time ratio.
fn print_rounds(rounds: &[Round]) {
    let ratio = |a: Option<f64>, b: Option<f64>| a.zip(b).map(|(a, b)| a / b);
    let show = |r: Option<f64>| r.map(|r| format!("{r:.2}")).unwrap_or("-".into());
    println!();
    println!("Rounds (dp seed + run into an emptied warehouse, then DuckDB into an emptied folder):");
    println!(
        "{:>5} | {:>8} {:>8} {:>6} | {:>8} {:>8} {:>6} | {:>8} {:>8} {:>6}",
        "round", "dp s", "duck s", "time", "dp CPU", "duck CPU", "CPU", "dp MB", "duck MB", "memory"
    );
    for (i, r) in rounds.iter().enumerate() {
        let f = |x: Option<f64>, d: usize| x.map(|x| format!("{x:.d$}")).unwrap_or("-".into());
        println!(
            "{:>5} | {:>8.3} {:>8.3} {:>6.2} | {:>8} {:>8} {:>6} | {:>8} {:>8} {:>6}",
            i + 1,
            r.dp_s,
            r.duck_s,
            r.dp_s / r.duck_s,
            f(r.dp_cpu, 2),
            f(r.duck_cpu, 2),
            show(ratio(r.dp_cpu, r.duck_cpu)),
            f(r.dp_mb, 0),
            f(r.duck_mb, 0),
            show(ratio(r.dp_mb, r.duck_mb)),
        );
    }
    let time = median_of(rounds.iter().map(|r| r.dp_s / r.duck_s).collect()).unwrap_or(f64::NAN);
    let cpu = median_of(rounds.iter().filter_map(|r| ratio(r.dp_cpu, r.duck_cpu)).collect());
    let mem = median_of(rounds.iter().filter_map(|r| ratio(r.dp_mb, r.duck_mb)).collect());
    println!("median ratios over {} rounds: time {time:.2}, CPU {}, peak memory {}", rounds.len(), show(cpu), show(mem));
    println!(
        "Target (median of rounds): dp total <= DuckDB's: {} ({time:.2}); peak memory <= DuckDB's: {}",
        if time <= 1.0 { "PASS" } else { "MISS" },
        match mem {
            Some(m) if m <= 1.0 => format!("PASS ({m:.2})"),
            Some(m) => format!("MISS ({m:.2})"),
            None => "not measured".into(),
        }
    );
}
