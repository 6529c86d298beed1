//! Helpers shared by the `compile` and `pipeline` benches: finding the `dp` binary, running a
//! child process while measuring its wall time and peak RSS, small formatting helpers.
//!
//! Peak RSS comes from `/usr/bin/time -f %M` when that program exists (GNU time: the child's
//! `ru_maxrss` from wait4), else from polling the child's `VmHWM` in `/proc/<pid>/status`
//! every few milliseconds (a high-water mark, so only a peak reached in the last poll interval
//! before exit can be missed). No extra crates.

#![allow(dead_code)]

pub mod pg;

use std::ffi::OsStr;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

/// The repository root (the crate's manifest dir, baked in at compile time).
pub fn repo_root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

/// The `dp` binary to benchmark, in order of preference:
/// 1. `$DP_BIN` (relative to the current directory);
/// 2. the binary cargo built for this bench (`CARGO_BIN_EXE_dp`, set for bench targets; under
///    `cargo bench` that is the release-profile `target/release/dp`);
/// 3. `<target>/release/dp` found from this executable's path (`target/release/deps/<bench>`).
pub fn dp_binary() -> PathBuf {
    if let Some(p) = std::env::var_os("DP_BIN") {
        // Benches run dp from temporary projects: a relative path is the
        // caller's, so it is made absolute here.
        let p = PathBuf::from(p);
        return std::path::absolute(&p).unwrap_or(p);
    }
    if let Some(p) = option_env!("CARGO_BIN_EXE_dp") {
        let p = PathBuf::from(p);
        if p.exists() {
            return p;
        }
    }
    if let Ok(exe) = std::env::current_exe() {
        for dir in exe.ancestors().skip(1) {
            let cand = dir.join("release").join("dp");
            if cand.is_file() {
                return cand;
            }
            if dir.file_name() == Some(OsStr::new("release")) && dir.join("dp").is_file() {
                return dir.join("dp");
            }
        }
    }
    let cand = repo_root().join("target/release/dp");
    if cand.is_file() {
        return cand;
    }
    panic!("no dp binary found: run `cargo build --release` first or set DP_BIN=/path/to/dp");
}

/// What one measured child run gave.
#[derive(Debug, Clone)]
pub struct Measured {
    pub wall_s: f64,
    /// Peak resident set size in MiB (None if it could not be measured).
    pub peak_mb: Option<f64>,
    /// User + system CPU seconds of the child and its waited-for children (GNU time only).
    pub cpu_s: Option<f64>,
    /// The system (kernel) part of `cpu_s`: page faults, file writes, returning memory.
    pub sys_s: Option<f64>,
    pub status: std::process::ExitStatus,
    pub stdout: String,
    pub stderr: String,
    /// "time" (GNU time's ru_maxrss) or "proc" (VmHWM polling).
    pub rss_method: &'static str,
}

impl Measured {
    pub fn ok(&self) -> bool {
        self.status.success()
    }
    /// Panics with the child's output when it failed.
    pub fn expect_ok(&self, what: &str) -> &Self {
        if !self.ok() {
            eprintln!("---- {what}: stdout ----\n{}", tail(&self.stdout, 4000));
            eprintln!("---- {what}: stderr ----\n{}", tail(&self.stderr, 8000));
            panic!("{what} failed with {}", self.status);
        }
        self
    }
}

pub fn tail(s: &str, n: usize) -> &str {
    if s.len() <= n {
        return s;
    }
    let mut i = s.len() - n;
    while !s.is_char_boundary(i) {
        i += 1;
    }
    &s[i..]
}

fn gnu_time() -> Option<PathBuf> {
    if std::env::var_os("BENCH_NO_GNU_TIME").is_some() {
        return None;
    }
    let p = PathBuf::from("/usr/bin/time");
    p.is_file().then_some(p)
}

/// Runs `program args` in `cwd` with extra `envs`, capturing stdout/stderr (to temp files, so
/// big outputs never block a pipe), and measures wall time and peak RSS.
pub fn measure(program: &Path, args: &[&str], cwd: &Path, envs: &[(&str, &str)]) -> Measured {
    let scratch = tempfile::tempdir().expect("tempdir");
    let out_p = scratch.path().join("stdout");
    let err_p = scratch.path().join("stderr");
    let time_p = scratch.path().join("time");
    let out_f = std::fs::File::create(&out_p).unwrap();
    let err_f = std::fs::File::create(&err_p).unwrap();

    let time = gnu_time();
    let mut cmd = match &time {
        Some(t) => {
            let mut c = Command::new(t);
            c.arg("-f").arg("%M %U %S").arg("-o").arg(&time_p).arg(program);
            c
        }
        None => Command::new(program),
    };
    cmd.args(args).current_dir(cwd).stdin(Stdio::null()).stdout(Stdio::from(out_f)).stderr(Stdio::from(err_f));
    for (k, v) in envs {
        cmd.env(k, v);
    }
    let start = Instant::now();
    let mut child = cmd.spawn().unwrap_or_else(|e| panic!("cannot start {}: {e}", program.display()));
    let pid = child.id();
    let mut hwm_kb: u64 = 0;
    let status = loop {
        if let Some(st) = child.try_wait().expect("wait") {
            break st;
        }
        if time.is_none()
            && let Some(kb) = vm_hwm_kb(pid)
        {
            hwm_kb = hwm_kb.max(kb);
        }
        std::thread::sleep(Duration::from_millis(if time.is_some() { 2 } else { 5 }));
    };
    let wall_s = start.elapsed().as_secs_f64();
    let stdout = std::fs::read_to_string(&out_p).unwrap_or_default();
    let stderr = std::fs::read_to_string(&err_p).unwrap_or_default();
    let (peak_mb, cpu_s, sys_s, rss_method) = match &time {
        Some(_) => {
            let txt = std::fs::read_to_string(&time_p).unwrap_or_default();
            // GNU time writes "Command exited with non-zero status N" before the format line.
            let fields = txt.lines().rev().find_map(|l| {
                let f: Vec<f64> = l.split_whitespace().map(str::parse).collect::<Result<_, _>>().ok()?;
                (f.len() == 3).then_some(f)
            });
            match fields {
                Some(f) => (Some(f[0] / 1024.0), Some(f[1] + f[2]), Some(f[2]), "time"),
                None => (None, None, None, "time"),
            }
        }
        None => ((hwm_kb > 0).then(|| hwm_kb as f64 / 1024.0), None, None, "proc"),
    };
    Measured { wall_s, peak_mb, cpu_s, sys_s, status, stdout, stderr, rss_method }
}

fn vm_hwm_kb(pid: u32) -> Option<u64> {
    let s = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    let line = s.lines().find(|l| l.starts_with("VmHWM:"))?;
    line.split_whitespace().nth(1)?.parse().ok()
}

/// Median by wall time of several runs (the run itself, so its RSS goes with it).
pub fn median(mut runs: Vec<Measured>) -> Measured {
    runs.sort_by(|a, b| a.wall_s.total_cmp(&b.wall_s));
    runs.swap_remove(runs.len() / 2)
}

pub fn fmt_mb(mb: Option<f64>) -> String {
    mb.map(|m| format!("{m:.0}")).unwrap_or_else(|| "?".into())
}

/// `12,345,678` (the runner's own formatting).
#[allow(unused_imports)]
pub use dp::util::fmt_thousands as thousands;

/// Copies a directory tree (files and folders only).
pub fn copy_tree(from: &Path, to: &Path) -> std::io::Result<()> {
    std::fs::create_dir_all(to)?;
    for e in std::fs::read_dir(from)? {
        let e = e?;
        let ft = e.file_type()?;
        let dst = to.join(e.file_name());
        if ft.is_dir() {
            copy_tree(&e.path(), &dst)?;
        } else if ft.is_file() {
            std::fs::copy(e.path(), &dst)?;
        }
    }
    Ok(())
}

/// Command-line args after cargo's own: drops the `--bench` flag that `cargo bench` appends.
/// True when `cargo bench` started us (it passes `--bench`); under
/// `cargo test --all-targets` the benches are only built and checked, so
/// `main` returns at once.
pub fn invoked_by_cargo_bench() -> bool {
    std::env::args().any(|a| a == "--bench")
}

pub fn bench_args() -> Vec<String> {
    std::env::args().skip(1).filter(|a| a != "--bench").collect()
}

/// Walks the bench's `--key value` / `--key=value` arguments, calling `f`
/// with each key and a function that takes its value (the text after `=`,
/// else the next argument; panics naming the key when there is none).
pub fn each_option(mut f: impl FnMut(&str, &mut dyn FnMut() -> String)) {
    let args = bench_args();
    let mut it = args.iter();
    while let Some(a) = it.next() {
        let (k, inline) = match a.split_once('=') {
            Some((k, v)) => (k, Some(v.to_string())),
            None => (a.as_str(), None),
        };
        let mut val = || inline.clone().or_else(|| it.next().cloned()).unwrap_or_else(|| panic!("{k} needs a value"));
        f(k, &mut val);
    }
}

/// The 1/5/15-minute load averages, to show whether other work shared the machine.
pub fn loadavg() -> String {
    std::fs::read_to_string("/proc/loadavg").map(|s| s.split_whitespace().take(3).collect::<Vec<_>>().join(" ")).unwrap_or_else(|_| "?".into())
}

/// Logical CPUs.
pub fn cpus() -> usize {
    std::thread::available_parallelism().map(|n| n.get()).unwrap_or(1)
}

/// A temp copy of the demo project at the repository root (models/,
/// seeds/, macros/, warehouse.toml), in a folder named `<prefix>...`.
#[allow(dead_code)]
pub fn demo_copy(prefix: &str) -> (tempfile::TempDir, PathBuf) {
    let repo = repo_root();
    let tmp = tempfile::Builder::new().prefix(prefix).tempdir().expect("tempdir");
    let proj = tmp.path().to_path_buf();
    for d in ["models", "seeds", "macros"] {
        copy_tree(&repo.join(d), &proj.join(d)).unwrap_or_else(|e| panic!("copy {d}: {e}"));
    }
    std::fs::copy(repo.join("warehouse.toml"), proj.join("warehouse.toml")).expect("copy warehouse.toml");
    (tmp, proj)
}
