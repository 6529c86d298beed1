//! The demo's incremental run: a new extraction date lands in bronze, and `dp run` brings the
//! warehouse up to date. Measured against `dp run --full-refresh` of the same data in the
//! same run, and checked against it table by table.
//!
//!     cargo bench --bench incremental -- --scale 10
//!
//! Options (after `--`): `--scale S` (default 10); `--threads N` (dp run's `--threads`);
//! `--keep` (keep the temp project and print where). `DP_BIN` overrides the dp binary.
//!
//! Steps, in a temp copy of the demo project:
//! 1. `dp demo generate --scale S`, then the newest extraction date's folders (bronze's
//!    `<source>/<table>/<date>/` and landing's `<drop>/<date>/`) are moved aside.
//! 2. Full build of the older data: `dp ingest` (the sales drops), `dp seed`, `dp run`.
//! 3. The newest date's folders come back (the "new bronze data"; its share of bronze rows
//!    and bytes is printed), then the timed incremental step: `dp ingest` + `dp run`.
//! 4. Baseline: `dp run --full-refresh` over the same data (timed).
//! 5. Check: every model's table after the incremental run (read back with
//!    `delta_version(table, v)`) holds exactly the rows of its full-refresh build, compared
//!    with `EXCEPT` both ways and row counts.
//!
//! Prints per-model times of both runs and the ratio incremental / full refresh against the
//! target (≤ 5 %) as PASS/MISS. No timing assertion.

mod common;

use common::*;
use serde_json::Value;
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

struct Opts {
    scale: f64,
    threads: Option<usize>,
    keep: bool,
}

fn parse_opts() -> Opts {
    let mut o = Opts { scale: 10.0, threads: None, keep: false };
    each_option(|k, val| match k {
        "--scale" => o.scale = val().parse().expect("--scale S"),
        "--threads" => o.threads = Some(val().parse().expect("--threads N")),
        "--keep" => o.keep = true,
        s => eprintln!("incremental bench: ignoring unknown argument {s}"),
    });
    o
}

/// Per model: relation (`schema.table`), the node line's message, execution time.
fn models_of(stderr: &str) -> BTreeMap<String, (String, f64)> {
    stderr
        .lines()
        .filter_map(|l| serde_json::from_str::<Value>(l).ok())
        .filter_map(|v| {
            let uid = v.get("unique_id")?.as_str()?;
            if !uid.starts_with("model.") {
                return None;
            }
            let msg = v.get("msg")?.as_str()?;
            let rel = msg.split(" model ").nth(1)?.split_whitespace().next()?.to_string();
            let what = msg.rsplit_once('[').map(|(_, w)| w.trim_end_matches(']').to_string()).unwrap_or_default();
            Some((rel, (what, v.get("execution_time")?.as_f64()?)))
        })
        .collect()
}

/// Date-named folders (`YYYY-MM-DD`) directly under `root/*/*` (bronze) or `root/*` (landing).
fn date_dirs(root: &Path, depth: usize) -> Vec<PathBuf> {
    let mut level = vec![root.to_path_buf()];
    for _ in 0..depth {
        level = level.iter().flat_map(|d| std::fs::read_dir(d).into_iter().flatten().flatten().map(|e| e.path()).filter(|p| p.is_dir())).collect();
    }
    level
        .into_iter()
        .flat_map(|d| std::fs::read_dir(d).into_iter().flatten().flatten().map(|e| e.path()))
        .filter(|p| p.is_dir() && p.file_name().and_then(|n| n.to_str()).is_some_and(|n| n.len() == 10 && n.as_bytes()[4] == b'-'))
        .collect()
}

/// Rows and bytes of the data files under `dir` (Parquet from its footer, CSV lines - 1).
fn rows_bytes(dir: &Path) -> (u64, u64) {
    let (mut rows, mut bytes) = (0, 0);
    for e in std::fs::read_dir(dir).into_iter().flatten().flatten() {
        let p = e.path();
        if p.is_dir() {
            let (r, b) = rows_bytes(&p);
            rows += r;
            bytes += b;
            continue;
        }
        bytes += e.metadata().map(|m| m.len()).unwrap_or(0);
        match p.extension().and_then(|x| x.to_str()) {
            Some("parquet") => {
                use datafusion::parquet::file::reader::{FileReader, SerializedFileReader};
                let f = std::fs::File::open(&p).expect("open parquet");
                rows += SerializedFileReader::new(f).map(|r| r.metadata().file_metadata().num_rows() as u64).unwrap_or(0);
            }
            Some("csv") => rows += std::fs::read(&p).map(|b| b.iter().filter(|&&c| c == b'\n').count() as u64).unwrap_or(1).saturating_sub(1),
            _ => {}
        }
    }
    (rows, bytes)
}

/// The newest version of the Delta table at `dir` (its highest `_delta_log/N.json`).
fn delta_version(dir: &Path) -> Option<u64> {
    std::fs::read_dir(dir.join("_delta_log")).ok()?.flatten().filter_map(|e| e.file_name().to_str()?.strip_suffix(".json")?.parse().ok()).max()
}

fn pct(a: f64, b: f64) -> String {
    format!("{:.1} %", 100.0 * a / b)
}

fn main() {
    if !common::invoked_by_cargo_bench() {
        return;
    }
    let o = parse_opts();
    let dp = dp_binary();
    let (tmp, proj) = demo_copy("dp-bench-incremental-");
    let pd = proj.to_str().unwrap().to_string();
    let dp_run = |extra: &[&str]| {
        let mut args = vec!["--project-dir", &pd, "--log-format", "json"];
        args.extend_from_slice(extra);
        measure(&dp, &args, &proj, &[])
    };
    let threads = o.threads.map(|t| t.to_string());
    let run_args = |full: bool| {
        let mut a = vec!["run"];
        if full {
            a.push("--full-refresh");
        }
        if let Some(t) = &threads {
            a.extend(["--threads", t]);
        }
        a
    };

    println!("dp incremental benchmark (demo project, scale {})", o.scale);
    println!("  dp binary : {}", dp.display());
    println!("  machine   : {} CPUs, load average {} (1/5/15 min) at start", cpus(), loadavg());
    println!("  project   : {}", proj.display());

    // 1. Bronze and landing, with the newest extraction date held back.
    let bronze = proj.join("bronze");
    let landing = proj.join("landing");
    dp_run(&["demo", "generate", "--scale", &o.scale.to_string(), "--out", bronze.to_str().unwrap()]).expect_ok("dp demo generate");
    let mut dated: Vec<PathBuf> = date_dirs(&bronze, 2);
    dated.extend(date_dirs(&landing, 1));
    let newest = dated.iter().filter_map(|p| p.file_name()?.to_str().map(String::from)).max().expect("no date folders in bronze/ or landing/");
    let held = tmp.path().join("held-back");
    let new_dirs: Vec<PathBuf> = dated.into_iter().filter(|p| p.file_name().and_then(|n| n.to_str()) == Some(newest.as_str())).collect();
    let (all_rows, all_bytes) = {
        let (a, b) = rows_bytes(&bronze);
        let (c, d) = rows_bytes(&landing);
        (a + c, b + d)
    };
    let (mut new_rows, mut new_bytes) = (0, 0);
    let mut moved = vec![];
    for (i, d) in new_dirs.iter().enumerate() {
        let (r, b) = rows_bytes(d);
        new_rows += r;
        new_bytes += b;
        let aside = held.join(i.to_string());
        std::fs::create_dir_all(&held).unwrap();
        std::fs::rename(d, &aside).unwrap();
        moved.push((aside, d.clone()));
    }

    // 2. Full build of the older data.
    dp_run(&["ingest", "-s", "source:raw.transactions"]).expect_ok("dp ingest (older data)");
    dp_run(&["seed"]).expect_ok("dp seed");
    let first = dp_run(&run_args(false));
    first.expect_ok("dp run (older data)");

    // 3. The new extraction date lands; the incremental step.
    for (aside, back) in &moved {
        std::fs::rename(aside, back).unwrap();
    }
    println!(
        "  new data  : extraction date {newest}, {} folders: {} of {} rows ({}), {} of {} bytes ({})",
        new_dirs.len(),
        thousands(new_rows),
        thousands(all_rows),
        pct(new_rows as f64, all_rows as f64),
        thousands(new_bytes),
        thousands(all_bytes),
        pct(new_bytes as f64, all_bytes as f64)
    );
    let ingest = dp_run(&["ingest", "-s", "source:raw.transactions"]);
    ingest.expect_ok("dp ingest (new date)");
    let inc = dp_run(&run_args(false));
    inc.expect_ok("dp run (incremental)");
    let inc_models = models_of(&inc.stderr);
    let table_dir = |rel: &str| {
        let (s, t) = rel.split_once('.').expect("schema.table");
        proj.join("warehouse").join(s).join(t)
    };
    let versions: BTreeMap<String, Option<u64>> = inc_models.keys().map(|r| (r.clone(), delta_version(&table_dir(r)))).collect();

    // 4. Baseline: full refresh of the same data.
    let full = dp_run(&run_args(true));
    full.expect_ok("dp run --full-refresh");
    let full_models = models_of(&full.stderr);

    // 5. The incremental tables hold the full refresh's rows.
    let mut checks = String::new();
    for (rel, v) in &versions {
        match v {
            Some(v) => {
                let old = format!("delta_version('{rel}', {v})");
                checks.push_str(&format!(
                    "select '{rel}' as model, (select count(*) from {old}) as incremental_rows, (select count(*) from {rel}) as full_refresh_rows, \
                     (select count(*) from (select * from {old} except select * from {rel})) as only_incremental, \
                     (select count(*) from (select * from {rel} except select * from {old})) as only_full_refresh;\n"
                ));
            }
            None => checks.push_str(&format!(
                "select '{rel}' as model, -1 as incremental_rows, -1 as full_refresh_rows, -1 as only_incremental, -1 as only_full_refresh;\n"
            )),
        }
    }
    let check = dp_run(&["sql", "--format", "ndjson", "-e", &checks]);
    check.expect_ok("dp sql (comparison)");
    let mut differ = vec![];
    let mut compared = 0;
    for l in check.stdout.lines() {
        let Ok(v) = serde_json::from_str::<Value>(l) else { continue };
        compared += 1;
        let n = |k: &str| v.get(k).and_then(Value::as_i64).unwrap_or(-1);
        if n("incremental_rows") != n("full_refresh_rows") || n("only_incremental") != 0 || n("only_full_refresh") != 0 {
            differ.push(l.to_string());
        }
    }

    println!();
    println!("{:<36} {:>34} {:>8} | {:>30} {:>8}", "model", "incremental run", "s", "full refresh", "s");
    println!("{}", "-".repeat(124));
    for (rel, (what, secs)) in &inc_models {
        let (fwhat, fsecs) = full_models.get(rel).cloned().unwrap_or_default();
        println!("{rel:<36} {what:>34} {secs:>8.3} | {fwhat:>30} {fsecs:>8.3}");
    }
    println!("{}", "-".repeat(124));
    println!("full build of the older data: dp run {:.3}s / {} MB (ingest and seed not counted)", first.wall_s, fmt_mb(first.peak_mb));
    println!("incremental: dp ingest {:.3}s / {} MB, dp run {:.3}s / {} MB", ingest.wall_s, fmt_mb(ingest.peak_mb), inc.wall_s, fmt_mb(inc.peak_mb));
    println!("full refresh of the same data: dp run --full-refresh {:.3}s / {} MB", full.wall_s, fmt_mb(full.peak_mb));
    let ratio = (ingest.wall_s + inc.wall_s) / full.wall_s;
    println!();
    println!(
        "Ratio incremental (ingest + run) / full refresh: {:.3}s / {:.3}s = {} (run alone: {})",
        ingest.wall_s + inc.wall_s,
        full.wall_s,
        pct(ingest.wall_s + inc.wall_s, full.wall_s),
        pct(inc.wall_s, full.wall_s)
    );
    println!("Target: ≤ 5 % of the full build: {}", if ratio <= 0.05 { "PASS" } else { "MISS" });
    if differ.is_empty() && compared == versions.len() {
        println!("Results: all {compared} models hold the same rows after the incremental run as after the full refresh.");
    } else {
        println!("Results: DIFFER ({} of {} models compared):", differ.len(), compared);
        for d in &differ {
            println!("  {d}");
        }
        if compared != versions.len() {
            eprintln!("{}", tail(&check.stderr, 4000));
        }
    }
    println!("load average at end: {}", loadavg());
    if o.keep {
        let p = tmp.keep();
        println!("project kept in {}", p.display());
    }
}
