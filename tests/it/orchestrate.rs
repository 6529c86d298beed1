//! Pipelines: definitions and their errors, `dp pipeline run` with retries
//! and alerts (a local HTTP server for Slack, aiosmtpd for email), run
//! history in `dp_meta`, and `dp scheduler` (short crons, dependencies,
//! the lock, kill -9 and restart).

use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpListener;
use std::path::Path;
use std::process::{Child, Stdio};
use std::time::{Duration, Instant};

use super::common::{dp, ok, project, run, stderr, stdout};

const WH: &str = "default_target = \"dev\"\n[project]\nname = \"p\"\n[targets.dev]\nwarehouse = \"./warehouse\"\nschema = \"main\"\n";

/// Rows of a query over the warehouse, as CSV lines (header dropped).
fn rows(dir: &Path, sql: &str) -> Vec<String> {
    let o = run(dir, &["sql", "--format", "csv", "-e", sql]);
    ok(&o);
    stdout(&o).lines().skip(1).map(String::from).collect()
}

fn pipelines(yaml: &str) -> tempfile::TempDir {
    project(&[("warehouse.toml", WH), ("pipelines/p.yml", yaml)])
}

#[test]
fn definitions_are_validated_at_parse_with_file_and_line() {
    let d = pipelines("pipelines:\n  - name: a\n    schedule: \"99 * * * *\"\n    tasks:\n      - name: t\n        shell: echo\n");
    let o = run(d.path(), &["parse"]);
    assert!(!o.status.success());
    assert!(stderr(&o).contains("error: pipelines/p.yml:3: pipeline 'a': invalid cron pattern '99 * * * *'"), "{}", stderr(&o));

    let d = pipelines("pipelines:\n  - name: a\n    tasks:\n      - name: t\n        sead: x\n");
    let o = run(d.path(), &["pipeline", "list"]);
    assert!(stderr(&o).contains("pipelines/p.yml:5: task 't' of pipeline 'a' has unknown kind or key 'sead'\n  hint: did you mean 'seed'?"), "{}", stderr(&o));

    let d = pipelines(
        "pipelines:\n  - name: a\n    after: [b]\n    tasks:\n      - name: t\n        shell: echo\n  - name: b\n    after: [a]\n    tasks:\n      - name: t\n        shell: echo\n",
    );
    let o = run(d.path(), &["parse"]);
    assert!(stderr(&o).contains("pipelines/p.yml:3: pipelines form a cycle through `after`: a -> b -> a"), "{}", stderr(&o));

    let d = pipelines("pipelines:\n  - name: nightly\n    tasks:\n      - name: t\n        shell: echo\n");
    let o = run(d.path(), &["pipeline", "run", "nighty"]);
    assert!(stderr(&o).contains("unknown pipeline 'nighty' (did you mean 'nightly'?)"), "{}", stderr(&o));

    // A missing SMTP password variable stops a run before anything runs.
    let d = pipelines(
        "alerts:\n  email:\n    smtp_host: localhost\n    username: u\n    password_env: DP_TEST_NO_SUCH_VAR\n    from: a@example.com\n    to: b@example.com\npipelines:\n  - name: a\n    tasks:\n      - name: t\n        shell: touch ran\n",
    );
    let o = run(d.path(), &["pipeline", "run", "a"]);
    assert!(stderr(&o).contains("pipelines/p.yml:5: the SMTP password variable DP_TEST_NO_SUCH_VAR is not set"), "{}", stderr(&o));
    assert!(!d.path().join("ran").exists());
}

#[test]
fn list_shows_next_fire_times() {
    let d = pipelines(
        "pipelines:\n  - name: nightly\n    schedule: \"30 2 * * *\"\n    timezone: Europe/Paris\n    tasks:\n      - name: t\n        shell: echo\n  - name: after_it\n    after: nightly\n    tasks:\n      - name: t\n        shell: echo\n",
    );
    let o = run(d.path(), &["pipeline", "list", "--next", "2"]);
    ok(&o);
    let out = stdout(&o);
    assert!(out.contains("30 2 * * * (Europe/Paris)"), "{out}");
    assert!(out.contains("after upstream"), "{out}");
    assert!(out.contains(":30:00") && out.contains("pipelines/p.yml:2"), "{out}");
}

/// Transient failures are retried with Airflow's back-off; every try is recorded.
#[test]
fn transient_failures_retry_with_backoff() {
    let d = pipelines(
        "pipelines:\n  - name: flaky\n    retries: 3\n    retry_delay: 300ms\n    retry_exponential_backoff: true\n    max_retry_delay: 10s\n    tasks:\n      - name: fetch\n        shell: 'if [ $DP_TRY_NUMBER -lt 3 ]; then echo \"could not connect: Connection refused\" >&2; exit 1; fi; echo fetched'\n      - name: after\n        shell: echo done\n        depends_on: fetch\n",
    );
    let o = run(d.path(), &["pipeline", "run", "flaky"]);
    ok(&o);
    let err = stderr(&o);
    assert!(err.contains("RETRY task flaky.fetch") && err.contains("[RETRY 1/3 in 0.3s"), "{err}");
    assert!(err.contains("[RETRY 2/3 in 0.6s"), "{err}");
    let tries = rows(
        d.path(),
        "select try_number, state, retry_delay_ms, cast(started_at as bigint), cast(ended_at as bigint) from dp_meta.task_runs where task = 'fetch' and state <> 'running' order by try_number",
    );
    let parsed: Vec<Vec<String>> = tries.iter().map(|l| l.split(',').map(String::from).collect()).collect();
    assert_eq!(
        parsed.iter().map(|r| (r[0].as_str(), r[1].as_str(), r[2].as_str())).collect::<Vec<_>>(),
        vec![("1", "up_for_retry", "300"), ("2", "up_for_retry", "600"), ("3", "success", "")]
    );
    // The waits between tries follow the formula (300 ms, then 600 ms).
    let us = |r: &Vec<String>, i: usize| r[i].parse::<i64>().unwrap();
    let gap1 = us(&parsed[1], 3) - us(&parsed[0], 4);
    let gap2 = us(&parsed[2], 3) - us(&parsed[1], 4);
    assert!((300_000..2_000_000).contains(&gap1), "gap1 {gap1}µs");
    assert!((600_000..2_300_000).contains(&gap2), "gap2 {gap2}µs");
    let run_rows = rows(d.path(), "select state, trigger from dp_meta.pipeline_runs order by recorded_at");
    assert_eq!(run_rows, vec!["running,manual", "success,manual"]);
    let o = run(d.path(), &["pipeline", "status"]);
    ok(&o);
    assert!(stdout(&o).contains("fetch") && stdout(&o).contains("┆ 3 "), "{}", stdout(&o));
}

/// A minimal HTTP server: answers `status` to each request and hands the
/// bodies back.
fn http_server(status: u16) -> (u16, std::sync::mpsc::Receiver<String>) {
    let l = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = l.local_addr().unwrap().port();
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        for s in l.incoming() {
            let Ok(mut s) = s else { continue };
            let mut r = BufReader::new(s.try_clone().unwrap());
            let mut len = 0usize;
            let mut head = String::new();
            loop {
                let mut line = String::new();
                if r.read_line(&mut line).unwrap_or(0) == 0 || line == "\r\n" {
                    break;
                }
                if let Some(v) = line.to_ascii_lowercase().strip_prefix("content-length:") {
                    len = v.trim().parse().unwrap_or(0);
                }
                head.push_str(&line);
            }
            let mut body = vec![0; len];
            let _ = r.read_exact(&mut body);
            let _ = tx.send(format!("{head}\n{}", String::from_utf8_lossy(&body)));
            let _ = write!(s, "HTTP/1.1 {status} X\r\ncontent-length: 2\r\nconnection: close\r\n\r\nok");
        }
    });
    (port, rx)
}

#[test]
fn failure_alerts_slack_and_alert_history_without_retrying_a_sql_like_error() {
    let (port, rx) = http_server(200);
    let d = pipelines(&format!(
        "alerts:\n  slack:\n    webhook_url: http://127.0.0.1:{port}/services/T/B/secret\npipelines:\n  - name: nightly\n    retries: 3\n    retry_delay: 1s\n    tasks:\n      - name: broken\n        shell: \"echo 'SQL error: column amount2 not found' >&2; exit 1\"\n      - name: downstream\n        shell: echo never\n        depends_on: broken\n"
    ));
    let o = run(d.path(), &["pipeline", "run", "nightly"]);
    assert_eq!(o.status.code(), Some(1));
    let err = stderr(&o);
    assert!(err.contains("ERROR task nightly.broken") && !err.contains("RETRY"), "{err}");
    assert!(err.contains("SKIP task nightly.downstream"), "{err}");
    assert!(err.contains("Alert for nightly sent via slack"), "{err}");
    let req = rx.recv_timeout(Duration::from_secs(5)).unwrap();
    assert!(req.starts_with("POST /services/T/B/secret HTTP/1.1"), "{req}");
    let body: serde_json::Value = serde_json::from_str(req.split_once("\r\n\n").map(|x| x.1).unwrap_or_else(|| req.split_once("\n\n").unwrap().1)).unwrap();
    let text = body["text"].as_str().unwrap();
    assert!(text.starts_with("dp: task nightly.broken failed\n"), "{text}");
    assert!(text.contains("SQL error: column amount2 not found") && text.contains("not retried"), "{text}");
    let context = body["blocks"][1]["elements"][0]["text"].as_str().unwrap();
    assert!(
        context.contains("pipeline `nightly`") && context.contains("task `broken`") && context.contains("tries: 1") && context.contains("broken.1.log"),
        "{context}"
    );
    assert_eq!(
        rows(d.path(), "select pipeline, task, severity, channels, delivered, error from data_platform.alert_history"),
        vec!["nightly,broken,error,slack,true,"]
    );
    assert_eq!(
        rows(d.path(), "select task, try_number, state from dp_meta.task_runs where state <> 'running' order by task"),
        vec!["broken,1,failed", "downstream,0,upstream_failed"]
    );
}

#[test]
fn an_unreachable_webhook_is_recorded_as_undelivered() {
    let port = TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port(); // closed again at once
    let d = pipelines(&format!(
        "alerts:\n  slack:\n    webhook_url: http://127.0.0.1:{port}/hook\npipelines:\n  - name: p\n    tasks:\n      - name: t\n        shell: exit 3\n"
    ));
    let o = run(d.path(), &["pipeline", "run", "p"]);
    assert_eq!(o.status.code(), Some(1));
    assert!(stderr(&o).contains("alert for p not delivered via slack: posting to http://127.0.0.1/…"), "{}", stderr(&o));
    let r = rows(d.path(), "select channels, delivered, error like 'slack: posting to http://127.0.0.1/%' from data_platform.alert_history");
    assert_eq!(r, vec!["slack,false,true"]);
    // The webhook's secret path is never printed or stored.
    assert!(!stderr(&o).contains("/hook"));
    // dp alert test reports the undelivered channel and fails.
    let o = run(d.path(), &["alert", "test"]);
    assert_eq!(o.status.code(), Some(1));
    assert!(stderr(&o).contains("slack: not delivered"), "{}", stderr(&o));
}

fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port()
}

#[test]
#[ignore = "needs aiosmtpd: run by scripts/test.sh"]
fn email_alerts_reach_a_real_smtp_server() {
    let Ok(python) = std::env::var("DP_TEST_AIOSMTPD_PYTHON") else {
        panic!("DP_TEST_AIOSMTPD_PYTHON is not set: run the suite with scripts/test.sh, which installs aiosmtpd");
    };
    let port = free_port();
    let mailbox = tempfile::tempdir().unwrap();
    let mut server = std::process::Command::new(python)
        .args(["-m", "aiosmtpd", "-n", "-l", &format!("127.0.0.1:{port}"), "-c", "aiosmtpd.handlers.Mailbox", mailbox.path().join("mail").to_str().unwrap()])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let t = Instant::now();
    while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
        assert!(t.elapsed() < Duration::from_secs(20), "aiosmtpd did not start");
        std::thread::sleep(Duration::from_millis(100));
    }
    let d = pipelines(&format!(
        "alerts:\n  email:\n    smtp_host: 127.0.0.1\n    smtp_port: {port}\n    tls: none\n    from: dp <dp@example.com>\n    to: [oncall@example.com]\npipelines:\n  - name: nightly\n    tasks:\n      - name: load\n        shell: \"echo 'relation raw.orders does not exist' >&2; exit 2\"\n"
    ));
    let o = run(d.path(), &["pipeline", "run", "nightly"]);
    let _ = server.kill();
    let _ = server.wait();
    assert_eq!(o.status.code(), Some(1));
    assert!(stderr(&o).contains("Alert for nightly sent via email"), "{}", stderr(&o));
    let new = mailbox.path().join("mail/new");
    let files: Vec<_> = std::fs::read_dir(&new).unwrap().flatten().collect();
    assert_eq!(files.len(), 1);
    let mail = std::fs::read_to_string(files[0].path()).unwrap();
    assert!(mail.contains("Subject: dp: task nightly.load failed"), "{mail}");
    assert!(mail.contains("To: oncall@example.com"), "{mail}");
    assert!(mail.contains("relation raw.orders does not exist"), "{mail}");
    assert_eq!(rows(d.path(), "select channels, delivered from data_platform.alert_history"), vec!["email,true"]);
}

struct Scheduler(Child);

impl Drop for Scheduler {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn scheduler(dir: &Path) -> Scheduler {
    Scheduler(dp().current_dir(dir).args(["scheduler", "--grace", "2s"]).stderr(Stdio::piped()).stdout(Stdio::null()).spawn().unwrap())
}

fn wait_for(what: &str, secs: u64, mut f: impl FnMut() -> bool) {
    let t = Instant::now();
    while !f() {
        assert!(t.elapsed() < Duration::from_secs(secs), "timed out waiting for {what}");
        std::thread::sleep(Duration::from_millis(200));
    }
}

fn lines(dir: &Path, name: &str) -> Vec<String> {
    std::fs::read_to_string(dir.join(name)).unwrap_or_default().lines().map(String::from).collect()
}

fn sigterm(c: &Child) {
    let _ = std::process::Command::new("kill").args(["-TERM", &c.id().to_string()]).status();
}

/// A one-second cron fires several times; pipelines after it fire on its
/// completion, in order; a second scheduler on the warehouse refuses;
/// SIGTERM stops it cleanly.
#[test]
fn scheduler_fires_schedules_and_upstream_completions() {
    let d = pipelines(
        "pipelines:\n  - name: tick\n    schedule: \"* * * * * *\"\n    tasks:\n      - name: t\n        shell: echo tick >> order.log\n  - name: then\n    after: tick\n    tasks:\n      - name: t\n        shell: echo then >> order.log\n",
    );
    let mut s = scheduler(d.path());
    wait_for("4 ticks", 40, || lines(d.path(), "order.log").iter().filter(|l| *l == "tick").count() >= 4);
    let second = run(d.path(), &["scheduler"]);
    assert_eq!(second.status.code(), Some(1));
    assert!(stderr(&second).contains("another dp scheduler is already running for this warehouse"), "{}", stderr(&second));
    assert!(stderr(&second).contains(&format!("held by pid {}", s.0.id())), "{}", stderr(&second));
    sigterm(&s.0);
    let status = s.0.wait().unwrap();
    assert!(status.success(), "{status:?}");
    let mut err = String::new();
    s.0.stderr.take().unwrap().read_to_string(&mut err).unwrap();
    assert!(err.contains("scheduler stopped"), "{err}");
    let log = lines(d.path(), "order.log");
    // `then` only ever follows a `tick`.
    assert_eq!(log.first().map(String::as_str), Some("tick"), "{log:?}");
    assert!(log.iter().any(|l| l == "then"), "{log:?}");
    let runs =
        rows(d.path(), "select pipeline, trigger, count(distinct scheduled_for), count(distinct run_id) from dp_meta.pipeline_runs group by 1, 2 order by 1");
    let tick: Vec<&str> = runs.iter().find(|r| r.starts_with("tick,")).unwrap().split(',').collect();
    assert_eq!(tick[1], "schedule");
    assert_eq!(tick[2], tick[3], "each tick runs once: {runs:?}");
    assert!(runs.iter().any(|r| r.starts_with("then,upstream,0,")), "{runs:?}");
}

/// kill -9 during a task, then a restart: the interrupted try is recorded
/// as failed and its tick is not run again.
#[test]
fn scheduler_restart_after_kill_records_the_interrupted_task() {
    let d = pipelines(
        "pipelines:\n  - name: slow\n    schedule: \"*/3 * * * * *\"\n    tasks:\n      - name: t\n        shell: echo start >> runs.log; sleep 20\n",
    );
    let mut s = scheduler(d.path());
    wait_for("the task to start", 30, || !lines(d.path(), "runs.log").is_empty());
    let _ = s.0.kill(); // SIGKILL
    let _ = s.0.wait();
    // The shell child is orphaned; it must not count as the scheduler.
    let before = rows(d.path(), "select run_id, scheduled_for from dp_meta.pipeline_runs where state = 'running'");
    assert_eq!(before.len(), 1, "{before:?}");
    let s2 = scheduler(d.path());
    wait_for("the interrupted try to be recorded", 30, || {
        rows(d.path(), "select count(*) from dp_meta.task_runs where state = 'failed' and error like 'interrupted:%'") == vec!["1"]
    });
    wait_for("a new run", 30, || lines(d.path(), "runs.log").len() >= 2);
    sigterm(&s2.0);
    drop(s2);
    let first_tick = before[0].split(',').nth(1).unwrap().to_string();
    let same_tick = rows(d.path(), &format!("select count(distinct run_id) from dp_meta.pipeline_runs where cast(scheduled_for as varchar) = '{first_tick}'"));
    assert_eq!(same_tick, vec!["1"], "the interrupted tick ran again");
    let r = rows(
        d.path(),
        &format!("select state from dp_meta.pipeline_runs where cast(scheduled_for as varchar) = '{first_tick}' order by recorded_at desc limit 1"),
    );
    assert_eq!(r, vec!["failed"]);
}

fn parquet_files(dir: &Path) -> usize {
    std::fs::read_dir(dir).map(|r| r.flatten().filter(|e| e.file_name().to_string_lossy().ends_with(".parquet")).count()).unwrap_or(0)
}

/// 20 scheduled-style rebuilds with a `maintain` task: a table with
/// `retention: 0s` keeps only its current files; one with a 1-hour
/// retention still reads its first version.
#[test]
fn maintain_keeps_storage_bounded_and_time_travel_inside_retention() {
    let d = project(&[
        ("warehouse.toml", WH),
        ("models/t.sql", "{{ config(materialized='table', retention='0s') }}\nselect 1 as id union all select 2"),
        ("models/u.sql", "{{ config(materialized='table', retention='1h') }}\nselect 1 as id"),
        (
            "pipelines/p.yml",
            "pipelines:\n  - name: rebuild\n    tasks:\n      - name: models\n        run:\n      - name: tidy\n        maintain:\n        depends_on: models\n",
        ),
    ]);
    for _ in 0..20 {
        ok(&run(d.path(), &["pipeline", "run", "rebuild"]));
    }
    assert_eq!(parquet_files(&d.path().join("warehouse/main/t")), 1, "only the current version's file is left");
    assert_eq!(parquet_files(&d.path().join("warehouse/main/u")), 20, "inside the retention nothing is removed");
    assert_eq!(rows(d.path(), "select count(*) from delta_version('main.u', 0)"), vec!["1"]);
    assert_eq!(rows(d.path(), "select count(*) from main.t"), vec!["2"]);
    let o = run(d.path(), &["maintain", "-s", "t", "--dry-run"]);
    ok(&o);
    assert!(stderr(&o).contains("DRY RUN main.t") && stderr(&o).contains("vacuumed 0 files"), "{}", stderr(&o));
    // Checkpoints are written.
    assert!(
        std::fs::read_dir(d.path().join("warehouse/main/t/_delta_log"))
            .unwrap()
            .flatten()
            .any(|e| e.file_name().to_string_lossy().ends_with(".checkpoint.parquet"))
    );
}

/// A write killed before its commit leaves data files no version names:
/// `dp maintain` deletes them once older than the retention (a write still
/// in flight is younger), and the table's rows stay.
#[test]
fn maintain_deletes_the_files_of_a_write_that_never_committed() {
    let d = project(&[("warehouse.toml", WH), ("models/t.sql", "{{ config(materialized='table') }}\nselect 1 as id union all select 2")]);
    ok(&run(d.path(), &["run"]));
    let t = d.path().join("warehouse/main/t");
    let data = std::fs::read_dir(&t).unwrap().flatten().map(|e| e.path()).find(|p| p.extension().is_some_and(|e| e == "parquet")).unwrap();
    // What a killed merge leaves: a data file and a vector file beside the table's.
    std::fs::copy(&data, t.join("part-00000-0b5e3c2e-killed-c000.zstd.parquet")).unwrap();
    std::fs::write(t.join("deletion_vector_0b5e3c2e-0000-0000-0000-000000000000.bin"), b"\x01").unwrap();
    let o = run(d.path(), &["maintain", "-s", "t", "--retention", "1h"]);
    ok(&o);
    assert_eq!(parquet_files(&t), 2, "a file younger than the retention stays: {}", stderr(&o));
    std::thread::sleep(std::time::Duration::from_millis(20));
    let o = run(d.path(), &["maintain", "-s", "t", "--retention", "0s", "--dry-run"]);
    ok(&o);
    assert!(stderr(&o).contains("vacuumed 2 files"), "{}", stderr(&o));
    ok(&run(d.path(), &["maintain", "-s", "t", "--retention", "0s"]));
    assert_eq!(parquet_files(&t), 1, "the orphan is gone");
    assert!(!t.join("deletion_vector_0b5e3c2e-0000-0000-0000-000000000000.bin").exists());
    assert_eq!(rows(d.path(), "select count(*) from main.t"), vec!["2"]);
}

/// A file whose deletion vector deletes a twentieth of its rows or more is
/// rewritten without them, even a table's only file, which deltalake's
/// compaction never rewrites; a file with fewer deleted rows keeps its vector.
#[test]
fn maintain_purges_the_rows_deletion_vectors_delete() {
    // Every row on one day; a later run of that day with no rows deletes
    // those its predicate matches (ids past `cut`), by a deletion vector.
    let model = "{{ config(materialized='incremental', incremental_strategy='microbatch', event_time='ts', batch_size='day', begin='2024-01-01', incremental_predicates=['id > ' ~ var('cut', 100)]) }}
select value as id, cast('2024-01-01 10:00:00' as timestamp) as ts from range(1, 101) where {{ var('keep', 'true') }}
";
    let d = project(&[("warehouse.toml", WH), ("models/m.sql", model)]);
    let p = d.path();
    let dp_run = |vars: &str| {
        let o = dp()
            .current_dir(p)
            .env("DP_MICROBATCH_NOW", "2024-01-02T12:00:00")
            .args(["run", "--vars", vars, "--event-time-start", "2024-01-01", "--event-time-end", "2024-01-02"])
            .output()
            .unwrap();
        ok(&o);
    };
    let t = p.join("warehouse/main/m");
    let vectors = || std::fs::read_dir(&t).unwrap().flatten().filter(|e| e.file_name().to_string_lossy().starts_with("deletion_vector_")).count();
    dp_run("{}");
    dp_run("{keep: 'false', cut: 90}");
    assert_eq!((parquet_files(&t), vectors()), (1, 1));
    let o = run(p, &["maintain", "-s", "m", "--dry-run"]);
    ok(&o);
    assert!(stderr(&o).contains("purged 10 deleted rows from 1 files"), "{}", stderr(&o));
    let o = run(p, &["maintain", "-s", "m", "--retention", "0s"]);
    ok(&o);
    assert!(stderr(&o).contains("purged 10 deleted rows from 1 files"), "{}", stderr(&o));
    assert_eq!((parquet_files(&t), vectors()), (1, 0), "one file without the deleted rows, no vector");
    assert_eq!(rows(p, "select count(*), max(id) from main.m"), vec!["90,90"]);
    // 2 of 90 rows: under a twentieth, the vector stays.
    dp_run("{keep: 'false', cut: 88}");
    let o = run(p, &["maintain", "-s", "m", "--retention", "0s"]);
    ok(&o);
    assert!(!stderr(&o).contains("purged"), "{}", stderr(&o));
    assert_eq!(vectors(), 1);
    assert_eq!(rows(p, "select count(*), max(id) from main.m"), vec!["88,88"]);
}

/// Runs `dp <args>` in `p` paused before its commit (a debug-build hook),
/// meanwhile compacts model `m`'s two files into one with `dp maintain`,
/// then lets the write commit; its output (with materialize's debug log).
fn race_with_a_compaction(p: &Path, args: &[&str]) -> std::process::Output {
    race(p, args, &[], || {
        let o = run(p, &["maintain", "-s", "m"]);
        ok(&o);
        assert!(stderr(&o).contains("compacted 2 files into 1"), "{}", stderr(&o));
    })
}

/// Runs `dp <args>` in `p` (with `env`) paused before its commit, runs
/// `meanwhile`, then lets the write commit; its output, which must be a
/// success (with materialize's debug log).
fn race(p: &Path, args: &[&str], env: &[(&str, &str)], meanwhile: impl FnOnce()) -> std::process::Output {
    let hold = tempfile::tempdir().unwrap();
    let write = dp()
        .current_dir(p)
        .envs(env.iter().copied())
        .env("DP_TEST_PAUSE_COMMIT", hold.path())
        .env("DP_LOG", "dp::materialize=debug")
        .args(args)
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let waited = std::time::Instant::now();
    while !hold.path().join("paused").exists() {
        assert!(waited.elapsed().as_secs() < 60, "the write never reached its commit");
        std::thread::sleep(std::time::Duration::from_millis(20));
    }
    meanwhile();
    std::fs::write(hold.path().join("go"), b"").unwrap();
    let o = write.wait_with_output().unwrap();
    ok(&o);
    o
}

/// An incremental model `m` (ids `from`..`to`, with `v`) built in two runs: two files.
fn two_files() -> tempfile::TempDir {
    let model = "{{ config(materialized='incremental', unique_key='id', incremental_strategy='merge') }}
select value as id, '{{ var('v', 'a') }}' as v from range({{ var('from', 1) }}, {{ var('to', 101) }})
";
    let d = project(&[("warehouse.toml", WH), ("models/m.sql", model)]);
    ok(&run(d.path(), &["run"]));
    ok(&run(d.path(), &["run", "--vars", "{from: 101, to: 111}"]));
    assert_eq!(parquet_files(&d.path().join("warehouse/main/m")), 2);
    d
}

/// A compaction committed while a merge by deletion vectors matches its
/// rows: deltalake refuses the merge's commit, and the merge matches its
/// rows again on the newest version (before, the run failed).
#[test]
fn a_merge_that_loses_a_race_to_a_compaction_matches_again() {
    let d = two_files();
    let o = race_with_a_compaction(d.path(), &["run", "--vars", "{from: 5, to: 6, v: b}"]);
    assert!(stderr(&o).contains("another writer committed meanwhile: matching again on the newest version"), "{}", stderr(&o));
    assert_eq!(rows(d.path(), "select count(*), count(distinct id), sum(case when v = 'b' then 1 else 0 end) from main.m"), vec!["110,110,1"]);
}

/// The same race for a rebuild (`--full-refresh`, the parallel overwrite):
/// rebased by deltalake, its commit removed the two files it read and left
/// the compacted copy of their rows beside its own (220 rows); it removes
/// the newest version's files instead.
#[test]
fn a_rebuild_that_loses_a_race_to_a_compaction_replaces_the_newest_files() {
    let d = two_files();
    let o = race_with_a_compaction(d.path(), &["run", "--full-refresh", "--vars", "{from: 1, to: 111}"]);
    assert!(stderr(&o).contains("another writer committed meanwhile: replacing the newest version's files"), "{}", stderr(&o));
    assert_eq!(rows(d.path(), "select count(*), count(distinct id) from main.m"), vec!["110,110"]);
}

/// The same race for a microbatch batch (deltalake's replaceWhere write):
/// deltalake refused its commit (the compacted file holds rows of the
/// window it replaces), so the batch failed; it is written again on the
/// newest version.
#[test]
fn a_batch_that_loses_a_race_to_a_compaction_is_written_again() {
    let csv: String = std::iter::once("id,ts\n".to_string()).chain((1..=100).map(|i| format!("{i},2024-01-0{} 10:00:00\n", 1 + i % 2))).collect();
    let model = "{{ config(materialized='incremental', incremental_strategy='microbatch', event_time='ts', batch_size='day', begin='2024-01-01') }}
select id, ts, '{{ var('v', 'a') }}' as v from {{ ref('events') }}
";
    let d = project(&[
        ("warehouse.toml", WH),
        ("dbt_project.yml", "name: p\nprofile: p\nseeds:\n  p:\n    events:\n      +event_time: ts\n"),
        ("seeds/events.csv", &csv),
        ("models/m.sql", model),
    ]);
    // two batches, two files: 2024-01-01's rows, then 2024-01-02's
    let o = dp().current_dir(d.path()).env("DP_MICROBATCH_NOW", "2024-01-02T12:00:00").args(["build"]).output().unwrap();
    ok(&o);
    assert_eq!(parquet_files(&d.path().join("warehouse/main/m")), 2);
    let o = race_with_a_compaction(d.path(), &["run", "--vars", "{v: b}", "--event-time-start", "2024-01-02", "--event-time-end", "2024-01-03"]);
    assert!(stderr(&o).contains("another writer committed meanwhile: writing the batch again on the newest version"), "{}", stderr(&o));
    assert_eq!(
        rows(d.path(), "select count(*), count(distinct id), sum(case when v = 'b' then 1 else 0 end), min(case when v = 'b' then ts end) from main.m"),
        vec!["100,100,50,2024-01-02 10:00:00"]
    );
}

/// A rewrite that keeps the table's other rows (`delete+insert` without
/// deletion vectors) while another run adds rows: the rewrite used to
/// replace the newest version with the rows it had read before, and the
/// other run's rows were lost; it reads the table again and keeps them.
#[test]
fn a_rewrite_that_loses_a_race_keeps_the_other_writers_rows() {
    let model = "{{ config(materialized='incremental', unique_key='id', incremental_strategy='delete+insert') }}
select value as id, '{{ var('v', 'a') }}' as v from range({{ var('from', 1) }}, {{ var('to', 101) }})
";
    let d = project(&[("warehouse.toml", WH), ("models/m.sql", model)]);
    let p = d.path();
    let off = [("DP_DELETION_VECTORS", "off")];
    ok(&run(p, &["run"]));
    let o = race(p, &["run", "--vars", "{from: 5, to: 7, v: b}"], &off, || {
        let o = dp().current_dir(p).envs(off).args(["run", "--vars", "{from: 200, to: 210, v: c}"]).output().unwrap();
        ok(&o);
    });
    assert_eq!(
        rows(p, "select v, count(*), count(distinct id), min(id), max(id) from main.m group by v order by v"),
        vec!["a,98,98,1,100", "b,2,2,5,6", "c,10,10,200,209"]
    );
    assert!(stderr(&o).contains("another writer committed meanwhile: reading the table again"), "{}", stderr(&o));
}

/// On a target with [postgres], alert_history is also a PostgreSQL table.
#[test]
#[ignore = "needs PostgreSQL: run by scripts/test.sh"]
fn alert_history_is_published_to_postgres() {
    let pg = super::postgres::pg();
    let d = project(&[
        ("warehouse.toml", &format!("{WH}[targets.dev.postgres]\n")),
        ("pipelines/p.yml", "pipelines:\n  - name: nightly\n    tasks:\n      - name: t\n        shell: exit 4\n"),
    ]);
    let o = pg.dp(d.path(), &["pipeline", "run", "nightly"]);
    assert_eq!(o.status.code(), Some(1), "{}", stderr(&o));
    assert!(stderr(&o).contains("Alert for nightly recorded in data_platform.alert_history (no channels configured)"), "{}", stderr(&o));
    let r = pg.rows("select pipeline, task, severity, channels, delivered::text, error from data_platform.alert_history");
    assert_eq!(
        r,
        vec![vec![
            Some("nightly".into()),
            Some("t".into()),
            Some("error".into()),
            Some(String::new()),
            Some("false".into()),
            Some("no alert channels configured".into())
        ]]
    );
}

/// Independent tasks run side by side: `a` and `b` each wait for the
/// other to have started, so they only succeed when they overlap; `c`,
/// which depends on both, starts after both finished. With
/// `max_active_tasks: 1` they cannot overlap.
#[test]
fn independent_tasks_run_concurrently_and_dependents_wait() {
    let wait_for = |me: &str, other: &str| {
        format!("'touch {me}.started; i=0; while [ ! -f {other}.started ]; do i=$((i+1)); [ $i -gt 60 ] && exit 1; sleep 0.05; done; touch {me}.done'")
    };
    let yaml = |limit: &str| {
        format!(
            "pipelines:\n  - name: par\n{limit}    tasks:\n      - name: a\n        shell: {}\n      - name: b\n        shell: {}\n      - name: c\n        shell: 'test -f a.done && test -f b.done && touch c.done'\n        depends_on: [a, b]\n",
            wait_for("a", "b"),
            wait_for("b", "a")
        )
    };
    let d = pipelines(&yaml(""));
    let o = run(d.path(), &["pipeline", "run", "par"]);
    ok(&o);
    assert!(d.path().join("c.done").exists(), "{}", stderr(&o));
    // The history shows the overlap, and c starting after both ended.
    let t = rows(d.path(), "select task, cast(started_at as bigint), cast(ended_at as bigint) from dp_meta.task_runs where state = 'success' order by task");
    let t: Vec<Vec<i64>> = t.iter().map(|l| l.split(',').skip(1).map(|v| v.parse().unwrap()).collect()).collect();
    let (a, b, c) = (&t[0], &t[1], &t[2]);
    assert!(a[0] < b[1] && b[0] < a[1], "a and b overlap: {t:?}");
    assert!(c[0] >= a[1] && c[0] >= b[1], "c starts after a and b: {t:?}");

    // One task at a time: a waits for b in vain and fails; c is skipped.
    let d = pipelines(&yaml("    max_active_tasks: 1\n"));
    let o = run(d.path(), &["pipeline", "run", "par"]);
    assert_eq!(o.status.code(), Some(1), "{}", stderr(&o));
    assert!(stderr(&o).contains("ERROR task par.a") && stderr(&o).contains("SKIP task par.c"), "{}", stderr(&o));
    assert!(!d.path().join("a.done").exists() && d.path().join("b.done").exists());
}
