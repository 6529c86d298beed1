//! `dp parse` / `dp compile` on synthetic dbt projects of N models.
//!
//!     cargo bench --bench compile                 # N = 2000 and 10000
//!     cargo bench --bench compile -- 500 2000 10000 --repeat 5
//!
//! Options (after `--`): N values; `--repeat R` (dp runs per measurement, median by wall
//! time, default 3); `--dbt-n N` (the N at which real dbt runs, default 2000); `--no-dbt`;
//! `--dbt-compile` (also time `dbt compile` at that N: slow); `--keep` (keep the generated
//! projects and print where). `DP_BIN` overrides the dp binary, `DBT_BIN` the dbt one
//! (default /work/venv-dbt/bin/dbt, used only when present).
//!
//! The generated project is a plain dbt project (dbt_project.yml + profiles.yml for
//! dbt-duckdb) that dp loads unchanged: N models in three layers (30% staging views over
//! 5 sources, 40% intermediate tables joining two staging models, 30% marts joining two
//! intermediates, every 5th mart incremental with `is_incremental()`), one YAML entry per
//! model with columns and unique / not_null / accepted_values tests, macros called from
//! every model, vars, `{% if %}` / `{% for %}` / `{% set %}` blocks.
//!
//! Baselines: dbt-core 1.11's published figures for N = 10,000 on this 2-core machine
//! (reference numbers, not measured here) and, when dbt is installed, `dbt parse` measured
//! in the same run on the same project. No timing assertion: the target is printed as
//! PASS/MISS only.

mod common;
mod synthetic;

use common::*;
use std::path::{Path, PathBuf};
use synthetic::generate;

/// dbt-core 1.11 published figures on this machine at N = 10,000 (reference, not measured).
const REF_N: usize = 10_000;
const REF_PARSE_S: f64 = 77.0;
const REF_PARSE_MB: f64 = 850.0;
const REF_COMPILE_S: f64 = 300.0;
const REF_COMPILE_MB: f64 = 1024.0; // "1 GB"
/// The target for `dp compile` at N = 10,000.
const TARGET_COMPILE_S: f64 = 1.0;
const TARGET_COMPILE_MB: f64 = 300.0;
/// The targets for `dp parse` (cold) and a warm `dp compile` after one edit.
const TARGET_PARSE_S: f64 = 0.5;
const TARGET_WARM_S: f64 = 0.2;

struct Opts {
    ns: Vec<usize>,
    repeat: usize,
    dbt_n: usize,
    dbt: bool,
    dbt_compile: bool,
    keep: bool,
}

fn parse_opts() -> Opts {
    let mut o = Opts { ns: vec![], repeat: 3, dbt_n: 2000, dbt: true, dbt_compile: false, keep: false };
    let args = bench_args();
    let mut it = args.iter();
    while let Some(a) = it.next() {
        match a.as_str() {
            "--repeat" => o.repeat = it.next().and_then(|v| v.parse().ok()).expect("--repeat R"),
            "--dbt-n" => o.dbt_n = it.next().and_then(|v| v.parse().ok()).expect("--dbt-n N"),
            "--no-dbt" => o.dbt = false,
            "--dbt-compile" => o.dbt_compile = true,
            "--keep" => o.keep = true,
            s if s.starts_with("--") => eprintln!("compile bench: ignoring unknown option {s}"),
            s => o.ns.push(s.replace(['_', ','], "").parse().unwrap_or_else(|_| panic!("not a model count: {s}"))),
        }
    }
    if o.ns.is_empty() {
        o.ns = vec![2000, 10_000];
    }
    o.repeat = o.repeat.max(1);
    o
}

// ---------------------------------------------------------------------------------------------
// Running
// ---------------------------------------------------------------------------------------------

/// Moves `target/` (and `logs/`) aside, into `<root>/trash/`, deleted with
/// the temp root at the end. Not deleted now: on ext4, creating thousands of
/// files right after deleting thousands costs seconds of kernel time
/// (`recently_deleted` inode scans; 8,000 files: 0.8 s → 11 s), which would
/// measure the file system's recovery from `rm -rf`, not dp.
fn clean_target(dir: &Path) {
    let trash = dir.parent().unwrap().join("trash");
    let _ = std::fs::create_dir_all(&trash);
    for d in ["target", "logs"] {
        let from = dir.join(d);
        if from.exists() {
            let to = trash.join(format!("{d}-{}", TRASH.fetch_add(1, std::sync::atomic::Ordering::Relaxed)));
            if std::fs::rename(&from, &to).is_err() {
                let _ = std::fs::remove_dir_all(&from);
            }
        }
    }
}

static TRASH: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(0);

fn dp_once(dp: &Path, dir: &Path, cmd: &str) -> Measured {
    let m = measure(dp, &["--quiet", "--project-dir", dir.to_str().unwrap(), cmd], dir, &[]);
    m.expect_ok(&format!("dp {cmd}"));
    m
}

/// Cold: no target/ (so no partial-parse cache).
fn run_dp(dp: &Path, dir: &Path, cmd: &str, repeat: usize) -> Measured {
    let runs = (0..repeat)
        .map(|_| {
            clean_target(dir);
            dp_once(dp, dir, cmd)
        })
        .collect();
    median(runs)
}

/// Warm: `dp compile` again with nothing changed, and after editing one
/// model (a new comment in the first model file), each after a cold compile.
fn run_warm(dp: &Path, dir: &Path, repeat: usize) -> (Measured, Measured) {
    let model = first_sql(&dir.join("models")).expect("a model file");
    let original = std::fs::read_to_string(&model).unwrap();
    let (mut same, mut edit) = (vec![], vec![]);
    for i in 0..repeat {
        clean_target(dir);
        dp_once(dp, dir, "compile");
        same.push(dp_once(dp, dir, "compile"));
        std::fs::write(&model, format!("{original}\n-- edit {i}\n")).unwrap();
        edit.push(dp_once(dp, dir, "compile"));
        std::fs::write(&model, &original).unwrap();
    }
    (median(same), median(edit))
}

fn first_sql(dir: &Path) -> Option<PathBuf> {
    let mut entries: Vec<PathBuf> = std::fs::read_dir(dir).ok()?.flatten().map(|e| e.path()).collect();
    entries.sort();
    entries.into_iter().find_map(|p| if p.is_dir() { first_sql(&p) } else { (p.extension()? == "sql").then_some(p) })
}

fn dbt_bin() -> Option<PathBuf> {
    let p = std::env::var_os("DBT_BIN").map(PathBuf::from).unwrap_or_else(|| "/work/venv-dbt/bin/dbt".into());
    p.is_file().then_some(p)
}

fn run_dbt(dbt: &Path, dir: &Path, cmd: &str) -> Measured {
    clean_target(dir);
    let d = dir.to_str().unwrap();
    let m = measure(
        dbt,
        &[cmd, "--project-dir", d, "--profiles-dir", d, "--no-partial-parse", "--no-send-anonymous-usage-stats", "--quiet"],
        dir,
        &[("DO_NOT_TRACK", "1"), ("DBT_SEND_ANONYMOUS_USAGE_STATS", "false")],
    );
    m.expect_ok(&format!("dbt {cmd}"));
    m
}

/// "dp/base = 0.096 (10.4x faster)" for times, "dp/base = 1.60 (1.60x more)" for memory.
fn ratio(base: f64, x: f64, faster: &str, slower: &str) -> String {
    if !(x > 0.0 && base > 0.0) {
        return "-".into();
    }
    let r = x / base;
    if r <= 1.0 { format!("dp/base = {r:.3} ({:.1}x {faster})", base / x) } else { format!("dp/base = {r:.3} ({r:.2}x {slower})") }
}

fn time_ratio(base: f64, x: f64) -> String {
    ratio(base, x, "faster", "slower")
}

fn mem_ratio(base: f64, x: Option<f64>) -> String {
    x.map(|x| ratio(base, x, "less", "more")).unwrap_or_else(|| "?".into())
}

fn main() {
    if !common::invoked_by_cargo_bench() {
        return;
    }
    let o = parse_opts();
    let dp = dp_binary();
    let root = tempfile::Builder::new().prefix("dp-bench-compile-").tempdir().expect("tempdir");
    let dbt = if o.dbt { dbt_bin() } else { None };
    let mut ns = o.ns.clone();
    if dbt.is_some() && !ns.contains(&o.dbt_n) {
        ns.push(o.dbt_n);
        ns.sort();
    }

    println!("dp compile benchmark");
    println!("  dp binary : {}", dp.display());
    println!("  projects  : {}", root.path().display());
    println!("  machine   : {} CPUs, load average {} (1/5/15 min) at start", cpus(), loadavg());
    println!("  runs      : median of {} per dp measurement (wall time; peak RSS of that run)", o.repeat);
    println!();

    struct Row {
        n: usize,
        tests: usize,
        parse: Measured,
        compile: Measured,
        warm: Measured,
        edit: Measured,
    }
    let mut rows = vec![];
    let mut dbt_rows: Vec<(usize, Measured, &str, Measured)> = vec![];
    for &n in &ns {
        let dir = root.path().join(format!("n{n}"));
        let t = std::time::Instant::now();
        let (models, tests) = generate(&dir, n);
        eprintln!("generated N={models} ({tests} data tests) in {:.2}s", t.elapsed().as_secs_f64());
        let parse = run_dp(&dp, &dir, "parse", o.repeat);
        let compile = run_dp(&dp, &dir, "compile", o.repeat);
        let compiled = walk_count(&dir.join("target/compiled"));
        let (warm, edit) = run_warm(&dp, &dir, o.repeat);
        eprintln!(
            "N={n}: warm dp compile {:.3}s {} MB unchanged, {:.3}s {} MB after editing one model",
            warm.wall_s,
            fmt_mb(warm.peak_mb),
            edit.wall_s,
            fmt_mb(edit.peak_mb)
        );
        eprintln!(
            "N={n}: dp parse {:.3}s {} MB, dp compile {:.3}s {} MB ({} compiled files)",
            parse.wall_s,
            fmt_mb(parse.peak_mb),
            compile.wall_s,
            fmt_mb(compile.peak_mb),
            compiled
        );
        if let Some(dbt) = &dbt
            && n == o.dbt_n
        {
            eprintln!("N={n}: running dbt parse (dbt-core, same project)...");
            let p = run_dbt(dbt, &dir, "parse");
            eprintln!("N={n}: dbt parse {:.1}s {} MB", p.wall_s, fmt_mb(p.peak_mb));
            let c = if o.dbt_compile {
                eprintln!("N={n}: running dbt compile...");
                let c = run_dbt(dbt, &dir, "compile");
                eprintln!("N={n}: dbt compile {:.1}s {} MB", c.wall_s, fmt_mb(c.peak_mb));
                Some(c)
            } else {
                None
            };
            dbt_rows.push((n, p, "parse", parse.clone()));
            if let Some(c) = c {
                dbt_rows.push((n, c, "compile", compile.clone()));
            }
        }
        rows.push(Row { n, tests, parse, compile, warm, edit });
        if o.keep {
            eprintln!("kept {}", dir.display());
        } else {
            let _ = std::fs::remove_dir_all(&dir);
        }
    }

    println!();
    println!(
        "{:>7} {:>7} | {:>9} {:>9} | {:>10} {:>10} | {:>7} {:>7} {:>7} | {:>9}",
        "N", "tests", "parse s", "parse MB", "compile s", "compile MB", "warm s", "edit s", "edit MB", "cold/edit"
    );
    println!("{}", "-".repeat(104));
    for r in &rows {
        println!(
            "{:>7} {:>7} | {:>9.3} {:>9} | {:>10.3} {:>10} | {:>7.3} {:>7.3} {:>7} | {:>8.1}x",
            r.n,
            r.tests,
            r.parse.wall_s,
            fmt_mb(r.parse.peak_mb),
            r.compile.wall_s,
            fmt_mb(r.compile.peak_mb),
            r.warm.wall_s,
            r.edit.wall_s,
            fmt_mb(r.edit.peak_mb),
            r.compile.wall_s / r.edit.wall_s.max(1e-9)
        );
    }
    println!("(compile and parse cold: no target/; warm: compile again unchanged; edit: compile after editing one model)");

    println!();
    println!(
        "Baseline: dbt-core 1.11 published figures on this 2-core machine at N = {REF_N} \
         (reference figures, NOT measured in this run):"
    );
    println!("  parse {REF_PARSE_S:.0} s / {REF_PARSE_MB:.0} MB, compile {REF_COMPILE_S:.0} s / 1 GB ({REF_COMPILE_MB:.0} MB)");
    match rows.iter().find(|r| r.n == REF_N) {
        Some(r) => {
            println!("  N={REF_N}: parse   time {}, peak RSS {}", time_ratio(REF_PARSE_S, r.parse.wall_s), mem_ratio(REF_PARSE_MB, r.parse.peak_mb));
            println!("  N={REF_N}: compile time {}, peak RSS {}", time_ratio(REF_COMPILE_S, r.compile.wall_s), mem_ratio(REF_COMPILE_MB, r.compile.peak_mb));
        }
        None => println!("  (no N = {REF_N} in this run: no ratio against the reference figures)"),
    }

    println!();
    if dbt_rows.is_empty() {
        match (&dbt, o.dbt) {
            (_, false) => println!("In-run dbt baseline: skipped (--no-dbt)."),
            (None, true) => println!("In-run dbt baseline: skipped (no dbt at /work/venv-dbt/bin/dbt; set DBT_BIN)."),
            _ => {}
        }
    } else {
        println!("In-run baseline: real dbt on the same generated project ({}):", dbt_version(dbt.as_ref().unwrap()));
        for (n, d, what, mine) in &dbt_rows {
            println!("  N={n}: dbt {what} {:.2} s / {} MB vs dp {what} {:.3} s / {} MB", d.wall_s, fmt_mb(d.peak_mb), mine.wall_s, fmt_mb(mine.peak_mb));
            println!(
                "  N={n}: {what} time {}, peak RSS {}",
                time_ratio(d.wall_s, mine.wall_s),
                match d.peak_mb {
                    Some(a) => mem_ratio(a, mine.peak_mb),
                    None => "?".into(),
                }
            );
        }
    }

    println!();
    match rows.iter().find(|r| r.n == REF_N) {
        Some(r) => {
            let ok_t = r.compile.wall_s < TARGET_COMPILE_S;
            let ok_m = r.compile.peak_mb.is_some_and(|m| m < TARGET_COMPILE_MB);
            println!(
                "Target: dp compile of {REF_N} models under {TARGET_COMPILE_S:.0} s wall and under {TARGET_COMPILE_MB:.0} MB peak: {} \
                 (wall {:.3} s: {}, peak {} MB: {})",
                if ok_t && ok_m { "PASS" } else { "MISS" },
                r.compile.wall_s,
                if ok_t { "ok" } else { "over" },
                fmt_mb(r.compile.peak_mb),
                if ok_m { "ok" } else { "over" },
            );
            let pass = |ok: bool| if ok { "PASS" } else { "MISS" };
            println!("Target: dp parse of {REF_N} models under {TARGET_PARSE_S} s: {} (wall {:.3} s)", pass(r.parse.wall_s < TARGET_PARSE_S), r.parse.wall_s);
            println!(
                "Target: warm dp compile of {REF_N} models after editing one model under {TARGET_WARM_S} s: {} (wall {:.3} s; unchanged {:.3} s)",
                pass(r.edit.wall_s < TARGET_WARM_S),
                r.edit.wall_s,
                r.warm.wall_s
            );
        }
        None => println!("Target (dp compile of {REF_N} models < 1 s, < 300 MB): not evaluated (no N = {REF_N} in this run)"),
    }
    if rows.iter().any(|r| r.parse.rss_method == "proc") {
        println!("(peak RSS from /proc VmHWM polling: /usr/bin/time not found)");
    }
    println!("load average at end: {}", loadavg());
    if o.keep {
        let p = root.keep();
        println!("projects kept in {}", p.display());
    }
}

fn walk_count(dir: &Path) -> usize {
    let Ok(rd) = std::fs::read_dir(dir) else { return 0 };
    rd.flatten().map(|e| if e.path().is_dir() { walk_count(&e.path()) } else { 1 }).sum()
}

fn dbt_version(dbt: &Path) -> String {
    std::process::Command::new(dbt)
        .arg("--version")
        .output()
        .ok()
        .and_then(|o| {
            let s = String::from_utf8_lossy(&o.stdout).to_string();
            s.lines().find(|l| l.contains("installed")).map(|l| format!("dbt-core {}", l.split(':').nth(1).unwrap_or("").trim()))
        })
        .unwrap_or_else(|| dbt.display().to_string())
}
