//! The demo on an S3 warehouse against the same demo on local disk, in the same run.
//!
//!     cargo bench --bench s3 -- --scale 10
//!
//! Options (after `--`): `--scale S` (default 10); `--repeat R` (build runs per target, the
//! median is reported; default 1); `--keep`. `DP_BIN` overrides the dp binary.
//! The S3 server is `DP_BENCH_S3_ENDPOINT` (a bucket is created in it through the S3 API;
//! `AWS_ACCESS_KEY_ID`/`AWS_SECRET_ACCESS_KEY` from the env), else moto's server started on
//! loopback (`moto_server` from `DP_TEST_MOTO_SERVER`, `~/.cache/dp-test/moto` or `PATH`, as
//! scripts/services/s3.sh installs it).
//!
//! Steps, in two temp copies of the demo project:
//! 1. `dp demo --scale S` (local disk: generate bronze/ + build) and
//!    `dp demo --target s3 --scale S` (generate in a scratch folder, upload to the bucket,
//!    build with the warehouse in the bucket): wall times, the baseline being local disk;
//! 2. `dp build --full-refresh` on each (seeds, 13 models, 104 data tests: every table
//!    rewritten from bronze), R times each: the ratio S3 / local disk.
//!
//! Also checks both gave the same rows for fct_orders. No timed assertion.

mod common;

use common::*;
use std::io::{Read, Write};
use std::path::Path;
use std::process::{Child, Command, Stdio};

struct Opts {
    scale: f64,
    repeat: usize,
    keep: bool,
}

fn parse_opts() -> Opts {
    let mut o = Opts { scale: 10.0, repeat: 1, keep: false };
    let args = bench_args();
    let mut it = args.iter();
    while let Some(a) = it.next() {
        match a.as_str() {
            "--scale" => o.scale = it.next().and_then(|v| v.parse().ok()).expect("--scale S"),
            "--repeat" => o.repeat = it.next().and_then(|v| v.parse().ok()).expect("--repeat R"),
            "--keep" => o.keep = true,
            s => eprintln!("s3 bench: ignoring unknown argument {s}"),
        }
    }
    o
}

struct Moto(Child);

impl Drop for Moto {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn moto_binary() -> Option<String> {
    if let Ok(b) = std::env::var("DP_TEST_MOTO_SERVER") {
        return Some(b);
    }
    let home = std::env::var("HOME").unwrap_or_default();
    let cached = format!("{home}/.cache/dp-test/moto/bin/moto_server");
    if Path::new(&cached).is_file() {
        return Some(cached);
    }
    Command::new("moto_server").arg("--help").output().ok().filter(|o| o.status.success()).map(|_| "moto_server".into())
}

fn start_moto() -> (Moto, String) {
    let bin = moto_binary().expect("no S3 server: set DP_BENCH_S3_ENDPOINT or install moto[server] (scripts/test.sh does)");
    let port = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
    // Owned by the guard at once: killed and reaped on every path.
    let moto = Moto(Command::new(bin).args(["-H", "127.0.0.1", "-p", &port.to_string()]).stdout(Stdio::null()).stderr(Stdio::null()).spawn().unwrap());
    for _ in 0..150 {
        if std::net::TcpStream::connect(("127.0.0.1", port)).is_ok() {
            return (moto, format!("http://127.0.0.1:{port}"));
        }
        std::thread::sleep(std::time::Duration::from_millis(100));
    }
    panic!("moto_server did not start on port {port}");
}

fn create_bucket(endpoint: &str, name: &str) {
    let host = endpoint.trim_start_matches("http://").trim_end_matches('/');
    let mut s = std::net::TcpStream::connect(host).expect("connect to the S3 server");
    write!(s, "PUT /{name} HTTP/1.1\r\nHost: {host}\r\nContent-Length: 0\r\nConnection: close\r\n\r\n").unwrap();
    let mut out = String::new();
    s.read_to_string(&mut out).unwrap();
    assert!(out.starts_with("HTTP/1.1 200"), "creating bucket {name}: {out}");
}

fn demo_copy(dir: &Path) {
    let repo = repo_root();
    for d in ["models", "seeds", "macros"] {
        copy_tree(&repo.join(d), &dir.join(d)).unwrap();
    }
    std::fs::copy(repo.join("warehouse.toml"), dir.join("warehouse.toml")).unwrap();
}

fn main() {
    if !common::invoked_by_cargo_bench() {
        return;
    }
    let o = parse_opts();
    let dp = dp_binary();
    let (_moto, endpoint) = match std::env::var("DP_BENCH_S3_ENDPOINT") {
        Ok(e) => (None, e),
        Err(_) => {
            let (m, e) = start_moto();
            (Some(m), e)
        }
    };
    let bucket = format!("dp-bench-{}", std::process::id());
    create_bucket(&endpoint, &bucket);
    let key = std::env::var("AWS_ACCESS_KEY_ID").unwrap_or_else(|_| "dp-bench".into());
    let secret = std::env::var("AWS_SECRET_ACCESS_KEY").unwrap_or_else(|_| "dp-bench-secret".into());
    let s3_env: Vec<(&str, &str)> = vec![
        ("DP_S3_BUCKET", &bucket),
        ("DP_S3_ENDPOINT", &endpoint),
        ("AWS_ACCESS_KEY_ID", &key),
        ("AWS_SECRET_ACCESS_KEY", &secret),
        ("AWS_REGION", "us-east-1"),
    ];

    let tmp = tempfile::Builder::new().prefix("dp-bench-s3-").tempdir().unwrap();
    let local = tmp.path().join("local");
    let remote = tmp.path().join("s3");
    demo_copy(&local);
    demo_copy(&remote);
    let scale = o.scale.to_string();

    println!("dp demo on S3 vs local disk (scale {})", o.scale);
    println!("  dp binary : {}", dp.display());
    println!("  S3 server : {endpoint} (bucket {bucket})");
    println!("  machine   : {} CPUs, load average {} at start", cpus(), loadavg());

    let demo_local = measure(&dp, &["demo", "--scale", &scale], &local, &[]);
    demo_local.expect_ok("dp demo (local)");
    let demo_s3 = measure(&dp, &["--target", "s3", "demo", "--scale", &scale], &remote, &s3_env);
    demo_s3.expect_ok("dp demo --target s3");

    let builds = |dir: &Path, target: &str, env: &[(&str, &str)]| {
        median(
            (0..o.repeat.max(1))
                .map(|_| {
                    let m = measure(&dp, &["--target", target, "build", "--full-refresh"], dir, env);
                    m.expect_ok(&format!("dp build ({target})"));
                    m
                })
                .collect(),
        )
    };
    let build_local = builds(&local, "dev", &[]);
    let build_s3 = builds(&remote, "s3", &s3_env);

    let check = "select count(*) as n, count(distinct order_id) as d, sum(total_amount) as s from {{ ref('fct_orders') }}";
    let rows_local = measure(&dp, &["show", "--inline", check, "--format", "csv"], &local, &[]);
    let rows_s3 = measure(&dp, &["--target", "s3", "show", "--inline", check, "--format", "csv"], &remote, &s3_env);

    println!();
    println!("{:<44} {:>10} {:>10} {:>10}", "", "local s", "S3 s", "S3/local");
    for (what, l, s) in [("dp demo (generate [+ upload] + build)", &demo_local, &demo_s3), ("dp build --full-refresh (median)", &build_local, &build_s3)] {
        println!("{what:<44} {:>10.2} {:>10.2} {:>9.2}x", l.wall_s, s.wall_s, s.wall_s / l.wall_s);
    }
    println!("peak RSS of the build: local {} MB, S3 {} MB", fmt_mb(build_local.peak_mb), fmt_mb(build_s3.peak_mb));
    let same = rows_local.ok() && rows_s3.ok() && rows_local.stdout == rows_s3.stdout;
    println!("fct_orders rows identical on both: {}", if same { "yes" } else { "NO" });
    println!("load average at end: {}", loadavg());
    if o.keep {
        println!("kept: {}", tmp.keep().display());
    }
}
