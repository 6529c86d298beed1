//! `dp scheduler`: fires pipelines on their cron schedules and when their
//! upstream pipelines succeed, one scheduler per warehouse (an exclusive
//! file lock). It sleeps until the next fire time (no polling), so idle CPU
//! is nil. History makes restarts safe: a tick already run is never run
//! again, a missed interval runs once (`catchup = false`; `catchup = true`
//! runs every missed tick, oldest first), and tries left `running` by a
//! killed process are recorded as failed.

use chrono::{DateTime, Utc};
use futures::StreamExt;
use futures::stream::FuturesUnordered;
use std::collections::{HashMap, HashSet};
use std::fs::File;
use std::io::{Read, Seek, Write};
use std::path::{Path, PathBuf};
use std::time::Duration;

use super::OrchestrateError;
use super::run::{PipelineEvent, RunContext, RunSummary, Sink, run_pipeline};
use super::spec::{Pipeline, Pipelines};

/// The scheduler's exclusive lock; released when dropped (or when the
/// process dies, however it dies).
pub struct SchedulerLock {
    _file: File,
}

/// Takes the lock at `path`, or says who holds it.
pub fn lock(path: &Path) -> Result<SchedulerLock, OrchestrateError> {
    if let Some(dir) = path.parent() {
        std::fs::create_dir_all(dir).map_err(|e| OrchestrateError::Io(format!("creating {}: {e}", dir.display())))?;
    }
    let mut file = std::fs::OpenOptions::new()
        .read(true)
        .write(true)
        .create(true)
        .truncate(false)
        .open(path)
        .map_err(|e| OrchestrateError::Io(format!("opening {}: {e}", path.display())))?;
    match file.try_lock() {
        Ok(()) => {}
        Err(std::fs::TryLockError::WouldBlock) => {
            let mut pid = String::new();
            let _ = file.read_to_string(&mut pid);
            let pid = pid.trim();
            return Err(OrchestrateError::Locked { path: path.to_path_buf(), pid: if pid.is_empty() { "unknown".into() } else { pid.to_string() } });
        }
        Err(std::fs::TryLockError::Error(e)) => return Err(OrchestrateError::Io(format!("locking {}: {e}", path.display()))),
    }
    let _ = file.set_len(0);
    let _ = file.rewind();
    let _ = write!(file, "{}", std::process::id());
    let _ = file.flush();
    Ok(SchedulerLock { _file: file })
}

/// Why a pipeline fires.
struct Fire<'p> {
    pipeline: &'p Pipeline,
    trigger: &'static str,
    tick: Option<DateTime<Utc>>,
}

/// The scheduler's memory of each pipeline, rebuilt from history at start.
#[derive(Default)]
struct State {
    /// The last schedule tick fired.
    last_tick: HashMap<String, DateTime<Utc>>,
    last_start: HashMap<String, DateTime<Utc>>,
    last_success: HashMap<String, DateTime<Utc>>,
    running: HashSet<String>,
    /// Downstream pipelines whose upstreams succeeded while they ran.
    pending: HashSet<String>,
}

/// The next time `p` is due on its schedule, given the last tick fired.
fn next_due(p: &Pipeline, st: &State, since: DateTime<Utc>) -> Option<DateTime<Utc>> {
    let s = p.schedule.as_ref()?;
    s.next_after(st.last_tick.get(&p.name).copied().unwrap_or(since))
}

/// Starts a run, noting it in the scheduler's state.
fn launch<'a>(
    ctx: &'a RunContext,
    f: Fire<'a>,
    st: &mut State,
    sink: Sink<'a>,
) -> impl std::future::Future<Output = (&'a Pipeline, Result<RunSummary, OrchestrateError>)> + 'a {
    st.running.insert(f.pipeline.name.clone());
    st.last_start.insert(f.pipeline.name.clone(), Utc::now());
    if let Some(t) = f.tick {
        st.last_tick.insert(f.pipeline.name.clone(), t);
    }
    let p = f.pipeline;
    async move {
        let r = run_pipeline(ctx, p, f.trigger, f.tick, sink).await;
        (p, r)
    }
}

/// Runs until `stop` resolves; then lets running pipelines finish for up to
/// `grace`, cancels what is left (recorded as failed) and returns.
pub async fn run_scheduler(
    ctx: &RunContext,
    pipelines: &Pipelines,
    cancel: tokio::sync::watch::Sender<bool>,
    stop: impl std::future::Future<Output = ()>,
    grace: Duration,
    sink: Sink<'_>,
) -> Result<(), OrchestrateError> {
    let started = Utc::now();
    let reaped = ctx.history.reap_interrupted().await?;
    if reaped > 0 {
        sink(&PipelineEvent::Scheduler { message: format!("recorded {reaped} task tries interrupted by a previous process as failed") });
    }
    let mut st = State::default();
    for r in ctx.history.runs().await? {
        if let Some(t) = r.scheduled_for {
            let e = st.last_tick.entry(r.pipeline.clone()).or_insert(t);
            *e = (*e).max(t);
        }
        st.last_start.insert(r.pipeline.clone(), r.started_at);
        if r.state == "success"
            && let Some(end) = r.ended_at
        {
            st.last_success.insert(r.pipeline.clone(), end);
        }
    }
    let scheduled = pipelines.pipelines.values().filter(|p| p.schedule.is_some()).count();
    sink(&PipelineEvent::Scheduler {
        message: format!("scheduler started: {} pipelines ({scheduled} on a schedule), pid {}", pipelines.pipelines.len(), std::process::id()),
    });
    let mut futs = FuturesUnordered::new();
    tokio::pin!(stop);
    loop {
        let now = Utc::now();
        // Fire what is due.
        let mut wake: Option<DateTime<Utc>> = None;
        for p in pipelines.pipelines.values() {
            if st.running.contains(&p.name) {
                continue;
            }
            let Some(next) = next_due(p, &st, started) else { continue };
            if next <= now {
                let s = p.schedule.as_ref().expect("scheduled");
                // catchup = false: one run, for the latest tick missed.
                let tick = if p.catchup { next } else { s.last_at_or_before(now).unwrap_or(next) };
                futs.push(launch(ctx, Fire { pipeline: p, trigger: "schedule", tick: Some(tick) }, &mut st, sink));
            } else {
                wake = Some(wake.map_or(next, |w| w.min(next)));
            }
        }
        let sleep_for = wake.map(|w| (w - Utc::now()).to_std().unwrap_or_default()).unwrap_or(Duration::from_secs(3600));
        tokio::select! {
            Some((p, r)) = futs.next() => {
                st.running.remove(&p.name);
                match r {
                    Ok(RunSummary { state }) if state == "success" => {
                        st.last_success.insert(p.name.clone(), Utc::now());
                    }
                    Ok(_) => {}
                    Err(e) => sink(&PipelineEvent::Scheduler { message: format!("pipeline {}: {e}", p.name) }),
                }
                // Upstream completion: downstream pipelines whose every
                // upstream succeeded since their own last start.
                let mut candidates: Vec<&Pipeline> = pipelines.downstream(&p.name);
                candidates.extend(st.pending.iter().filter_map(|n| pipelines.pipelines.get(n)));
                for d in candidates {
                    let ready = d.after.iter().all(|u| match (st.last_success.get(u), st.last_start.get(&d.name)) {
                        (Some(ok), Some(start)) => ok > start,
                        (Some(_), None) => true,
                        (None, _) => false,
                    });
                    if !ready {
                        continue;
                    }
                    if st.running.contains(&d.name) {
                        st.pending.insert(d.name.clone());
                        continue;
                    }
                    st.pending.remove(&d.name);
                    futs.push(launch(ctx, Fire { pipeline: d, trigger: "upstream", tick: None }, &mut st, sink));
                }
            }
            _ = tokio::time::sleep(sleep_for) => {}
            _ = &mut stop => break,
        }
    }
    if !futs.is_empty() {
        sink(&PipelineEvent::Scheduler { message: format!("stopping: waiting up to {}s for {} running pipelines", grace.as_secs(), futs.len()) });
        let drain = async { while futs.next().await.is_some() {} };
        if tokio::time::timeout(grace, drain).await.is_err() {
            sink(&PipelineEvent::Scheduler { message: "stopping: cancelling the tasks still running".into() });
            let _ = cancel.send(true);
            while futs.next().await.is_some() {}
        }
    }
    sink(&PipelineEvent::Scheduler { message: "scheduler stopped".into() });
    Ok(())
}

/// Where the lock lives: beside a local warehouse, else in the project's
/// target folder (a remote warehouse's scheduler is one per machine).
pub fn lock_path(warehouse: &crate::storage::Warehouse, target_dir: &Path) -> PathBuf {
    match warehouse.local_dir() {
        Some(d) => d.join(".dp-scheduler.lock"),
        None => target_dir.join("scheduler.lock"),
    }
}

/// The next `n` fire times of a pipeline after `t`.
pub fn next_fires(p: &Pipeline, t: DateTime<Utc>, n: usize) -> Vec<DateTime<Utc>> {
    let Some(s) = &p.schedule else { return vec![] };
    let mut out = vec![];
    let mut cur = t;
    while out.len() < n {
        match s.next_after(cur) {
            Some(x) => {
                out.push(x);
                cur = x;
            }
            None => break,
        }
    }
    out
}
