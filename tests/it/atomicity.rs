//! A killed run leaves every table at its previous version.
//!
//! Both tests drive a real `dp` child process over a model that streams many
//! rows from `range(0, n)` into a Delta table, and break the write midway:
//! once with SIGKILL, once with a runtime error raised by a row near the end
//! of the stream. Either way the table must still read as its previous
//! version: the uncommitted parquet files are not referenced by the log.

use crate::common::{dp, ok, project, run, stderr, stdout};
use std::collections::BTreeSet;
use std::path::Path;
use std::process::{Child, ExitStatus, Stdio};
use std::time::{Duration, Instant};

const WAREHOUSE_TOML: &str = "[project]\nname = \"p\"\n[models]\nmaterialized = \"table\"\n";

/// `n` rows streamed by DataFusion's `range` table function (no big array is
/// materialized first, so the parquet write starts at once). The row with
/// `id = fail_at` takes an integer modulo zero at execution time (`/` is a
/// DOUBLE division, as in DuckDB, which gives infinity); the default never fails.
const BIG_SQL: &str = "select value as id, \
     case when value = {{ var('fail_at', -1) }} then value % (value - value) else value * 2 end as x, \
     repeat('y', 50) as pad \
     from range(0, {{ var('n', 1000) }})";

const SMALL_N: u64 = 1000;
/// Rows of the run that gets killed: ~3 s per 30M rows in a debug build on an
/// idle machine (~250 MB of parquet), so this takes ~10 s; it is killed
/// ~1 s in.
const KILL_N: u64 = 100_000_000;
/// Rows of the run that fails; the error fires 10 rows before the end.
const FAIL_N: u64 = 20_000_000;

const STATS_SQL: &str = "select count(*) as n, sum(x) as s from main.big";

/// Kills the child if the test panics before it was reaped.
struct Reap(Option<Child>);

impl Drop for Reap {
    fn drop(&mut self) {
        if let Some(c) = self.0.as_mut() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }
}

fn big_project() -> tempfile::TempDir {
    project(&[("warehouse.toml", WAREHOUSE_TOML), ("models/big.sql", BIG_SQL), ("models/other.sql", "select 1 as id, 'o' as tag")])
}

/// The `_delta_log/*.json` commit files of a table (its versions).
fn commits(table: &Path) -> BTreeSet<String> {
    std::fs::read_dir(table.join("_delta_log"))
        .unwrap()
        .flatten()
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .filter(|n| n.ends_with(".json"))
        .collect()
}

/// Everything in a table directory but its log: data files and in-flight
/// uploads (object_store stages a multipart upload as `<file>#<n>`).
fn data_files(table: &Path) -> BTreeSet<String> {
    std::fs::read_dir(table).unwrap().flatten().map(|e| e.file_name().to_string_lossy().into_owned()).filter(|n| n != "_delta_log").collect()
}

fn total_size(table: &Path, names: &BTreeSet<String>) -> u64 {
    names.iter().filter_map(|n| std::fs::metadata(table.join(n)).ok()).map(|m| m.len()).sum()
}

/// `dp show` of the row count and sum of `main.big`: must succeed.
#[track_caller]
fn stats(p: &Path) -> String {
    let o = run(p, &["show", "--inline", STATS_SQL]);
    ok(&o);
    stdout(&o)
}

/// The stats table `dp show` prints for `SMALL_N` rows: n = 1000 and
/// sum(2v for v < 1000) = 999000.
#[track_caller]
fn assert_small_stats(out: &str) {
    let n = SMALL_N;
    let s = n * (n - 1);
    assert!(out.contains(&format!("| {n} ")) && out.contains(&format!("| {s} ")), "expected n={n}, s={s}:\n{out}");
}

#[track_caller]
fn assert_other_readable(p: &Path) {
    let o = run(p, &["show", "--inline", "select count(*) as c, min(tag) as t from main.other"]);
    ok(&o);
    let out = stdout(&o);
    assert!(out.contains("| 1 ") && out.contains("| o "), "main.other:\n{out}");
}

/// Waits for the child with a deadline; kills it and panics on timeout.
fn wait_deadline(reap: &mut Reap, limit: Duration, what: &str) -> ExitStatus {
    let start = Instant::now();
    loop {
        if let Some(s) = reap.0.as_mut().unwrap().try_wait().unwrap() {
            reap.0 = None;
            return s;
        }
        if start.elapsed() > limit {
            panic!("{what}: dp did not exit within {limit:?}");
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}

#[test]
fn sigkill_mid_write_keeps_previous_version() {
    let dir = big_project();
    let p = dir.path();
    let big = p.join("warehouse/main/big");

    // 1. A full run with the small n: the version we expect to survive.
    ok(&run(p, &["run"]));
    let before_stats = stats(p);
    assert_small_stats(&before_stats);
    let before_commits = commits(&big);
    let before_files = data_files(&big);
    assert!(!before_commits.is_empty());

    // 2. The big run, as a child we can SIGKILL. Its output goes to files so
    //    a full pipe can never stall it.
    let log_out = std::fs::File::create(p.join("child.out")).unwrap();
    let log_err = std::fs::File::create(p.join("child.err")).unwrap();
    let started = Instant::now();
    let child =
        dp().current_dir(p).args(["run", "--vars", &format!("{{n: {KILL_N}}}")]).stdout(Stdio::from(log_out)).stderr(Stdio::from(log_err)).spawn().unwrap();
    let mut reap = Reap(Some(child));
    let child_log = || {
        format!(
            "child stdout:\n{}\nchild stderr:\n{}",
            std::fs::read_to_string(p.join("child.out")).unwrap_or_default(),
            std::fs::read_to_string(p.join("child.err")).unwrap_or_default()
        )
    };

    // 3. Wait until the new data file is being written and has grown past
    //    16 MiB (of ~250 MB), so the kill lands mid-stream.
    let deadline = Duration::from_secs(120);
    let (first_seen, new_files) = loop {
        if let Some(s) = reap.0.as_mut().unwrap().try_wait().unwrap() {
            reap.0 = None;
            panic!(
                "dp exited ({s}) after {:?}, before its write could be interrupted: \
                 the test proves nothing; raise KILL_N\n{}",
                started.elapsed(),
                child_log()
            );
        }
        let new: BTreeSet<String> = data_files(&big).difference(&before_files).cloned().collect();
        if total_size(&big, &new) >= 16 << 20 {
            break (started.elapsed(), new);
        }
        assert!(started.elapsed() < deadline, "no new data in {} after {deadline:?}\n{}", big.display(), child_log());
        std::thread::sleep(Duration::from_millis(10));
    };
    // Still running right before the kill? (Otherwise the kill is vacuous.)
    if let Some(s) = reap.0.as_mut().unwrap().try_wait().unwrap() {
        reap.0 = None;
        panic!("dp finished ({s}) before it could be killed; raise KILL_N\n{}", child_log());
    }
    reap.0.as_mut().unwrap().kill().unwrap();
    let status = wait_deadline(&mut reap, Duration::from_secs(30), "after SIGKILL");
    let killed_at = started.elapsed();
    assert!(!status.success(), "killed dp reported success: {status}");
    #[cfg(unix)]
    {
        use std::os::unix::process::ExitStatusExt;
        assert_eq!(status.signal(), Some(9), "dp was not ended by SIGKILL: {status}");
    }
    let left = data_files(&big);
    let orphans: Vec<&String> = left.difference(&before_files).collect();
    eprintln!(
        "atomicity: new data seen after {first_seen:?} ({:?}), killed at {killed_at:?}; \
         left behind: {orphans:?} ({} bytes)",
        new_files,
        total_size(&big, &left.difference(&before_files).cloned().collect())
    );

    // 4. No new commit; the table reads exactly as before; `other` reads.
    assert_eq!(commits(&big), before_commits, "a killed write added a commit to {}", big.display());
    let after_stats = stats(p);
    assert_eq!(after_stats, before_stats, "main.big changed after the killed run");
    assert_other_readable(p);

    // 5. Recovery: a fresh run over the leftovers succeeds and adds a version.
    let o = run(p, &["run"]);
    ok(&o);
    assert_small_stats(&stats(p));
    let after = commits(&big);
    assert_eq!(after.len(), before_commits.len() + 1, "recovery run: {after:?}\n{}", stderr(&o));
    assert!(after.is_superset(&before_commits));
    assert_other_readable(p);
    let stale: Vec<String> = data_files(&big).difference(&before_files).cloned().collect();
    eprintln!("atomicity: files beside the log after recovery: {stale:?}");
}

#[test]
fn runtime_error_mid_stream_keeps_previous_version() {
    let dir = big_project();
    let p = dir.path();
    let big = p.join("warehouse/main/big");

    ok(&run(p, &["run"]));
    let before_stats = stats(p);
    assert_small_stats(&before_stats);
    let before_commits = commits(&big);
    let before_files = data_files(&big);

    // The row `FAIL_N - 10` divides by zero: by then ~FAIL_N rows of output
    // have streamed into a new data file, which we watch for.
    let child = dp()
        .current_dir(p)
        .args(["run", "--vars", &format!("{{n: {FAIL_N}, fail_at: {}}}", FAIL_N - 10)])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut reap = Reap(Some(child));
    // Drain the pipes on threads so a chatty child never blocks.
    let (so, se) = {
        let c = reap.0.as_mut().unwrap();
        let mut so = c.stdout.take().unwrap();
        let mut se = c.stderr.take().unwrap();
        (
            std::thread::spawn(move || {
                let mut s = String::new();
                std::io::Read::read_to_string(&mut so, &mut s).ok();
                s
            }),
            std::thread::spawn(move || {
                let mut s = String::new();
                std::io::Read::read_to_string(&mut se, &mut s).ok();
                s
            }),
        )
    };
    let started = Instant::now();
    let mut max_partial = 0u64;
    let status = loop {
        if let Some(s) = reap.0.as_mut().unwrap().try_wait().unwrap() {
            reap.0 = None;
            break s;
        }
        let new: BTreeSet<String> = data_files(&big).difference(&before_files).cloned().collect();
        max_partial = max_partial.max(total_size(&big, &new));
        assert!(started.elapsed() < Duration::from_secs(180), "dp did not exit within 180 s");
        std::thread::sleep(Duration::from_millis(10));
    };
    let (out, err) = (so.join().unwrap(), se.join().unwrap());
    let elapsed = started.elapsed();
    eprintln!("atomicity: failing run took {elapsed:?}; largest uncommitted data seen: {max_partial} bytes");
    assert_eq!(status.code(), Some(1), "stdout:\n{out}\nstderr:\n{err}");
    assert!(err.contains("Divide by zero"), "{err}");
    assert!(err.contains("ERROR=1"), "{err}");
    // The error really fired midway: output had been streaming to disk.
    assert!(max_partial >= 1 << 20, "no partial output was observed before the error ({max_partial} bytes); the failure was not mid-stream\n{err}");

    assert_eq!(commits(&big), before_commits, "a failed write added a commit");
    assert_eq!(stats(p), before_stats, "main.big changed after the failed run");
    assert_other_readable(p);
    let orphans: Vec<String> = data_files(&big).difference(&before_files).cloned().collect();
    eprintln!("atomicity: files left after the failed run: {orphans:?}");
}
