//! Run history as Delta tables in the warehouse: `dp_meta.pipeline_runs`
//! (one row per state change of a pipeline run) and `dp_meta.task_runs`
//! (one row per state change of a task try). Rows are only appended; the
//! latest row of a run (or try) is its state. A try still `running` whose
//! process is gone was interrupted: [`History::reap_interrupted`] records it
//! as failed.

use chrono::{DateTime, Utc};
use datafusion::arrow::array::{Array, ArrayRef, BooleanArray, Int64Array, RecordBatch, StringArray, TimestampMicrosecondArray};
use datafusion::arrow::datatypes::{DataType, Field, Schema, TimeUnit};
use datafusion::prelude::SessionContext;
use deltalake::DeltaTable;
use deltalake::protocol::SaveMode;
use std::collections::HashMap;
use std::sync::Arc;

use super::OrchestrateError;
use crate::storage::Warehouse;

pub const PIPELINE_RUNS: (&str, &str) = ("dp_meta", "pipeline_runs");
pub const TASK_RUNS: (&str, &str) = ("dp_meta", "task_runs");

/// One state of a pipeline run.
#[derive(Debug, Clone)]
pub struct RunRow {
    pub run_id: String,
    pub pipeline: String,
    /// `manual`, `schedule` or `upstream`.
    pub trigger: String,
    /// The schedule tick this run is for (scheduled runs).
    pub scheduled_for: Option<DateTime<Utc>>,
    /// `running`, `success` or `failed`.
    pub state: String,
    pub started_at: DateTime<Utc>,
    pub ended_at: Option<DateTime<Utc>>,
    pub error: Option<String>,
    pub pid: i64,
    pub recorded_at: DateTime<Utc>,
}

/// One state of a task try.
#[derive(Debug, Clone)]
pub struct TaskRow {
    pub run_id: String,
    pub pipeline: String,
    pub task: String,
    pub kind: String,
    pub try_number: i64,
    /// `running`, `success`, `up_for_retry` or `failed`.
    pub state: String,
    pub started_at: DateTime<Utc>,
    pub ended_at: Option<DateTime<Utc>>,
    pub error: Option<String>,
    pub transient: bool,
    /// The wait before the next try (`up_for_retry`).
    pub retry_delay_ms: Option<i64>,
    pub pid: i64,
    pub recorded_at: DateTime<Utc>,
}

/// The history tables of one warehouse. Writes from one process are
/// serialised; concurrent processes append without conflicts.
pub struct History {
    warehouse: Warehouse,
    write: tokio::sync::Mutex<()>,
}

fn ts(v: Vec<Option<DateTime<Utc>>>) -> ArrayRef {
    Arc::new(TimestampMicrosecondArray::from(v.into_iter().map(|t| t.map(|t| t.timestamp_micros())).collect::<Vec<_>>()).with_timezone("UTC"))
}

/// Milliseconds between two instants as they are stored (microseconds):
/// the same figure anything reading the stored `started_at` / `ended_at`
/// computes (`pipeline health`), not one a microsecond's rounding apart.
fn duration_ms(started: DateTime<Utc>, ended: Option<DateTime<Utc>>) -> Option<i64> {
    ended.map(|e| (e.timestamp_micros() - started.timestamp_micros()).div_euclid(1000))
}

fn strs(v: Vec<Option<String>>) -> ArrayRef {
    Arc::new(StringArray::from(v))
}

fn tsf(name: &str, nullable: bool) -> Field {
    Field::new(name, DataType::Timestamp(TimeUnit::Microsecond, Some("UTC".into())), nullable)
}

impl History {
    pub fn new(warehouse: Warehouse) -> History {
        History { warehouse, write: tokio::sync::Mutex::new(()) }
    }

    async fn append(&self, (schema, table): (&str, &str), batch: RecordBatch) -> Result<(), OrchestrateError> {
        let name = format!("{schema}.{table}");
        let _guard = self.write.lock().await;
        let loc = self.warehouse.table(schema, table);
        self.warehouse.prepare_table(&loc).await.map_err(|e| OrchestrateError::history(&name, e))?;
        let t = DeltaTable::try_from_url(loc.url.clone()).await.map_err(|e| OrchestrateError::history(&name, e))?;
        let t = t.write(vec![batch]).with_save_mode(SaveMode::Append).await.map_err(|e| OrchestrateError::history(&name, e))?;
        crate::materialize::delta::checkpoint_if_due(&t).await;
        Ok(())
    }

    pub async fn record_run(&self, r: &RunRow) -> Result<(), OrchestrateError> {
        let schema = Arc::new(Schema::new(vec![
            Field::new("run_id", DataType::Utf8, false),
            Field::new("pipeline", DataType::Utf8, false),
            Field::new("trigger", DataType::Utf8, false),
            tsf("scheduled_for", true),
            Field::new("state", DataType::Utf8, false),
            tsf("started_at", false),
            tsf("ended_at", true),
            Field::new("duration_ms", DataType::Int64, true),
            Field::new("error", DataType::Utf8, true),
            Field::new("pid", DataType::Int64, false),
            tsf("recorded_at", false),
        ]));
        let cols: Vec<ArrayRef> = vec![
            strs(vec![Some(r.run_id.clone())]),
            strs(vec![Some(r.pipeline.clone())]),
            strs(vec![Some(r.trigger.clone())]),
            ts(vec![r.scheduled_for]),
            strs(vec![Some(r.state.clone())]),
            ts(vec![Some(r.started_at)]),
            ts(vec![r.ended_at]),
            Arc::new(Int64Array::from(vec![duration_ms(r.started_at, r.ended_at)])),
            strs(vec![r.error.clone()]),
            Arc::new(Int64Array::from(vec![r.pid])),
            ts(vec![Some(r.recorded_at)]),
        ];
        let batch = RecordBatch::try_new(schema, cols).map_err(|e| OrchestrateError::history("dp_meta.pipeline_runs", e))?;
        self.append(PIPELINE_RUNS, batch).await
    }

    pub async fn record_task(&self, r: &TaskRow) -> Result<(), OrchestrateError> {
        let schema = Arc::new(Schema::new(vec![
            Field::new("run_id", DataType::Utf8, false),
            Field::new("pipeline", DataType::Utf8, false),
            Field::new("task", DataType::Utf8, false),
            Field::new("kind", DataType::Utf8, false),
            Field::new("try_number", DataType::Int64, false),
            Field::new("state", DataType::Utf8, false),
            tsf("started_at", false),
            tsf("ended_at", true),
            Field::new("duration_ms", DataType::Int64, true),
            Field::new("error", DataType::Utf8, true),
            Field::new("transient", DataType::Boolean, false),
            Field::new("retry_delay_ms", DataType::Int64, true),
            Field::new("pid", DataType::Int64, false),
            tsf("recorded_at", false),
        ]));
        let cols: Vec<ArrayRef> = vec![
            strs(vec![Some(r.run_id.clone())]),
            strs(vec![Some(r.pipeline.clone())]),
            strs(vec![Some(r.task.clone())]),
            strs(vec![Some(r.kind.clone())]),
            Arc::new(Int64Array::from(vec![r.try_number])),
            strs(vec![Some(r.state.clone())]),
            ts(vec![Some(r.started_at)]),
            ts(vec![r.ended_at]),
            Arc::new(Int64Array::from(vec![duration_ms(r.started_at, r.ended_at)])),
            strs(vec![r.error.clone()]),
            Arc::new(BooleanArray::from(vec![r.transient])),
            Arc::new(Int64Array::from(vec![r.retry_delay_ms])),
            Arc::new(Int64Array::from(vec![r.pid])),
            ts(vec![Some(r.recorded_at)]),
        ];
        let batch = RecordBatch::try_new(schema, cols).map_err(|e| OrchestrateError::history("dp_meta.task_runs", e))?;
        self.append(TASK_RUNS, batch).await
    }

    /// Every row of a history table (none when it does not exist yet).
    async fn read(&self, (schema, table): (&str, &str)) -> Result<Vec<RecordBatch>, OrchestrateError> {
        let name = format!("{schema}.{table}");
        if self.warehouse.kind(schema, table).await.map_err(|e| OrchestrateError::history(&name, e))?.is_none() {
            return Ok(vec![]);
        }
        let ctx = SessionContext::new();
        if let Some((url, store)) = self.warehouse.remote_store() {
            ctx.runtime_env().register_object_store(&url, store);
        }
        let loc = self.warehouse.table(schema, table);
        let provider = crate::engine::open_delta_provider(&loc.url, &ctx).await.map_err(|e| OrchestrateError::history(&name, format!("{e:#}")))?;
        let df = ctx.read_table(provider).map_err(|e| OrchestrateError::history(&name, e))?;
        df.collect().await.map_err(|e| OrchestrateError::history(&name, e))
    }

    /// The latest state of every pipeline run, oldest run first.
    pub async fn runs(&self) -> Result<Vec<RunRow>, OrchestrateError> {
        let mut latest: HashMap<String, RunRow> = HashMap::new();
        for b in self.read(PIPELINE_RUNS).await? {
            let c = Cols::new(&b);
            for i in 0..b.num_rows() {
                let r = RunRow {
                    run_id: c.s("run_id", i).unwrap_or_default(),
                    pipeline: c.s("pipeline", i).unwrap_or_default(),
                    trigger: c.s("trigger", i).unwrap_or_default(),
                    scheduled_for: c.t("scheduled_for", i),
                    state: c.s("state", i).unwrap_or_default(),
                    started_at: c.t("started_at", i).unwrap_or_default(),
                    ended_at: c.t("ended_at", i),
                    error: c.s("error", i),
                    pid: c.i("pid", i).unwrap_or_default(),
                    recorded_at: c.t("recorded_at", i).unwrap_or_default(),
                };
                keep_latest(&mut latest, r.run_id.clone(), r, |r| (r.recorded_at, rank(&r.state)));
            }
        }
        let mut v: Vec<RunRow> = latest.into_values().collect();
        v.sort_by_key(|r| (r.started_at, r.run_id.clone()));
        Ok(v)
    }

    /// The latest state of every task try, oldest first.
    pub async fn tasks(&self) -> Result<Vec<TaskRow>, OrchestrateError> {
        let mut latest: HashMap<String, TaskRow> = HashMap::new();
        for b in self.read(TASK_RUNS).await? {
            let c = Cols::new(&b);
            for i in 0..b.num_rows() {
                let r = TaskRow {
                    run_id: c.s("run_id", i).unwrap_or_default(),
                    pipeline: c.s("pipeline", i).unwrap_or_default(),
                    task: c.s("task", i).unwrap_or_default(),
                    kind: c.s("kind", i).unwrap_or_default(),
                    try_number: c.i("try_number", i).unwrap_or_default(),
                    state: c.s("state", i).unwrap_or_default(),
                    started_at: c.t("started_at", i).unwrap_or_default(),
                    ended_at: c.t("ended_at", i),
                    error: c.s("error", i),
                    transient: c.b("transient", i),
                    retry_delay_ms: c.i("retry_delay_ms", i),
                    pid: c.i("pid", i).unwrap_or_default(),
                    recorded_at: c.t("recorded_at", i).unwrap_or_default(),
                };
                let key = format!("{}\u{1}{}\u{1}{}", r.run_id, r.task, r.try_number);
                keep_latest(&mut latest, key, r, |r| (r.recorded_at, rank(&r.state)));
            }
        }
        let mut v: Vec<TaskRow> = latest.into_values().collect();
        v.sort_by_key(|r| (r.started_at, r.try_number));
        Ok(v)
    }

    /// Records runs and tries left `running` by a process that no longer
    /// exists (a scheduler killed with -9, a crashed `dp pipeline run`) as
    /// failed. Returns how many tries were closed.
    pub async fn reap_interrupted(&self) -> Result<usize, OrchestrateError> {
        let now = Utc::now();
        let mut n = 0;
        for mut t in self.tasks().await?.into_iter().filter(|t| t.state == "running" && !alive(t.pid, t.started_at)) {
            t.state = "failed".into();
            t.error = Some(format!("interrupted: the process running this task (pid {}) stopped before it finished", t.pid));
            t.ended_at = Some(now);
            t.recorded_at = now;
            self.record_task(&t).await?;
            n += 1;
        }
        for mut r in self.runs().await?.into_iter().filter(|r| r.state == "running" && !alive(r.pid, r.started_at)) {
            r.state = "failed".into();
            r.error = Some(format!("interrupted: the process running this pipeline (pid {}) stopped before it finished", r.pid));
            r.ended_at = Some(now);
            r.recorded_at = now;
            self.record_run(&r).await?;
        }
        Ok(n)
    }
}

/// Final states win over `running` recorded in the same microsecond.
fn rank(state: &str) -> u8 {
    if state == "running" { 0 } else { 1 }
}

fn keep_latest<T, K: Ord>(m: &mut HashMap<String, T>, key: String, row: T, order: impl Fn(&T) -> K) {
    match m.get(&key) {
        Some(old) if order(old) > order(&row) => {}
        _ => {
            m.insert(key, row);
        }
    }
}

/// Whether the process with this id that recorded a row at `since` is
/// still running on this machine. A process with the same id that started
/// after `since` is another one: ids are reused, and a restarted container
/// gives its scheduler the same low id every time.
pub fn alive(pid: i64, since: DateTime<Utc>) -> bool {
    if pid <= 0 || !std::path::Path::new(&format!("/proc/{pid}")).exists() || zombie(pid) {
        return false;
    }
    process_start(pid).is_none_or(|started| started <= since + chrono::TimeDelta::seconds(2))
}

/// When a process started (Linux: `/proc/<pid>/stat` field 22, in clock
/// ticks of 1/100 s since boot, plus the boot time from `/proc/stat`).
fn process_start(pid: i64) -> Option<DateTime<Utc>> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    let (_, rest) = stat.rsplit_once(')')?;
    // Fields after the command name start at field 3 (state).
    let ticks: i64 = rest.split_whitespace().nth(22 - 3)?.parse().ok()?;
    let btime: i64 = std::fs::read_to_string("/proc/stat").ok()?.lines().find_map(|l| l.strip_prefix("btime ")).and_then(|v| v.trim().parse().ok())?;
    DateTime::from_timestamp_millis(btime * 1000 + ticks * 10)
}

fn zombie(pid: i64) -> bool {
    std::fs::read_to_string(format!("/proc/{pid}/stat")).is_ok_and(|s| s.rsplit_once(')').is_some_and(|(_, rest)| rest.trim_start().starts_with('Z')))
}

/// A batch's columns cast once to the types rows are read in.
struct Cols(HashMap<String, ArrayRef>);

impl Cols {
    fn new(b: &RecordBatch) -> Cols {
        use datafusion::arrow::compute::cast;
        let mut m = HashMap::new();
        for (f, c) in b.schema().fields().iter().zip(b.columns()) {
            let c = match f.data_type() {
                DataType::Timestamp(..) => {
                    cast(c, &DataType::Timestamp(TimeUnit::Microsecond, None)).and_then(|c| cast(&c, &DataType::Int64)).unwrap_or_else(|_| c.clone())
                }
                DataType::Boolean | DataType::Int64 => c.clone(),
                DataType::Int8 | DataType::Int16 | DataType::Int32 => cast(c, &DataType::Int64).unwrap_or_else(|_| c.clone()),
                _ => cast(c, &DataType::Utf8).unwrap_or_else(|_| c.clone()),
            };
            m.insert(f.name().clone(), c);
        }
        Cols(m)
    }
    fn s(&self, name: &str, i: usize) -> Option<String> {
        let a = self.0.get(name)?.as_any().downcast_ref::<StringArray>()?;
        (!a.is_null(i)).then(|| a.value(i).to_string())
    }
    fn i(&self, name: &str, i: usize) -> Option<i64> {
        let a = self.0.get(name)?.as_any().downcast_ref::<Int64Array>()?;
        (!a.is_null(i)).then(|| a.value(i))
    }
    fn b(&self, name: &str, i: usize) -> bool {
        self.0.get(name).and_then(|c| c.as_any().downcast_ref::<BooleanArray>().map(|a| !a.is_null(i) && a.value(i))).unwrap_or(false)
    }
    fn t(&self, name: &str, i: usize) -> Option<DateTime<Utc>> {
        self.i(name, i).and_then(DateTime::from_timestamp_micros)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_reused_process_id_is_not_the_process_that_wrote_the_row() {
        let me = std::process::id() as i64;
        assert!(alive(me, Utc::now()), "this process wrote a row just now");
        let long_ago = DateTime::from_timestamp(1_000_000_000, 0).unwrap();
        assert!(!alive(me, long_ago), "a row from 2001 was written by an earlier process with this id");
        assert!(!alive(-1, Utc::now()) && !alive(0, Utc::now()));
    }

    #[test]
    fn a_duration_is_that_of_the_stored_microsecond_timestamps() {
        // 807.9999 ms apart in nanoseconds, 808 ms apart once each is stored
        // in microseconds: `pipeline health` reads the stored ones and must agree
        let started = DateTime::from_timestamp(1_700_000_000, 123_456_700).unwrap();
        let ended = DateTime::from_timestamp(1_700_000_000, 931_456_600).unwrap();
        assert_eq!((ended - started).num_milliseconds(), 807);
        assert_eq!(duration_ms(started, Some(ended)), Some(808));
        assert_eq!(duration_ms(started, None), None);
    }
}
