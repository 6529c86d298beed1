//! Query memory: an optional limit on what DataFusion's operators hold
//! (`--memory-limit`, else `DP_MEMORY_LIMIT`, else the target's
//! `memory_limit`). Under a limit the pool is shared fairly between the
//! operators that can spill (sorts, aggregations, sort-merge joins, and
//! repartitions), which write Arrow IPC files to the spill directory
//! (`DP_SPILL_DIR`, else the target's `spill_dir`, else the OS temp dir) and
//! read them back; joins are planned as sort-merge joins, which spill,
//! instead of hash joins, whose build side must fit in memory. Without a
//! limit nothing changes: an unbounded pool and hash joins.
//!
//! [`SpillStats`] counts the spill files and bytes written by one session,
//! so a run can say that it spilled.

use bytes::Bytes;
use datafusion::error::Result;
use datafusion::execution::disk_manager::{DiskManagerBuilder, DiskManagerMode};
use datafusion::execution::memory_pool::{FairSpillPool, TrackConsumersPool};
use datafusion::execution::runtime_env::RuntimeEnvBuilder;
use datafusion::execution::{DiskManager, SpillFile, SpillWriter, TempFileFactory};
use datafusion::prelude::SessionConfig;
use futures::Stream;
use std::num::NonZeroUsize;
use std::path::{Path, PathBuf};
use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use crate::config::Settings;

/// DataFusion's default reservation per spillable sort (10 MB) is larger
/// than a small limit; under a limit each sort reserves at most this
/// fraction of it.
const SORT_RESERVATION_SHARE: usize = 64;

/// Under a limit, batches shrink from DataFusion's 8,192 rows (about 1 MB
/// of a wide table) so that one batch fits the fair share of each of the
/// dozen or so operators that spill in a query: one row per this many
/// bytes of limit, between 1,024 and 8,192 rows.
const LIMIT_BYTES_PER_BATCH_ROW: usize = 32 << 10;

/// Where the limit and the spill directory come from.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct MemorySettings {
    /// Bytes the operators of one session may hold; `None`: unbounded.
    pub limit: Option<usize>,
    /// Where spill files go; `None`: the OS temp dir.
    pub spill_dir: Option<PathBuf>,
}

impl MemorySettings {
    /// `explicit` (the `--memory-limit` flag) wins over `DP_MEMORY_LIMIT`,
    /// which wins over the target's `memory_limit` (`"2GB"` or a number of
    /// bytes). The spill directory: `DP_SPILL_DIR`, else the target's
    /// `spill_dir` (relative to the project root).
    pub fn resolve(settings: &Settings, explicit: Option<usize>) -> anyhow::Result<MemorySettings> {
        let limit = match explicit {
            Some(l) => Some(l),
            None => match std::env::var("DP_MEMORY_LIMIT").ok().filter(|s| !s.trim().is_empty()) {
                Some(s) => Some(super::parse_size(&s).map_err(|e| anyhow::anyhow!("DP_MEMORY_LIMIT: {e}"))?),
                None => match settings.target.memory_limit.as_ref() {
                    Some(serde_json::Value::Number(n)) => Some(
                        n.as_u64().ok_or_else(|| anyhow::anyhow!("target '{}': memory_limit must be a positive size, e.g. \"2GB\"", settings.target.name))?
                            as usize,
                    ),
                    Some(serde_json::Value::String(s)) => {
                        Some(super::parse_size(s).map_err(|e| anyhow::anyhow!("target '{}': memory_limit: {e}", settings.target.name))?)
                    }
                    Some(other) => anyhow::bail!("target '{}': memory_limit must be a size such as \"2GB\", not {other}", settings.target.name),
                    None => None,
                },
            },
        };
        if limit == Some(0) {
            anyhow::bail!("the memory limit must be more than 0 bytes\n  hint: use e.g. --memory-limit 2GB, or leave it out for no limit");
        }
        let spill_dir = match std::env::var_os("DP_SPILL_DIR").filter(|s| !s.is_empty()) {
            Some(d) => Some(PathBuf::from(d)),
            None => settings.target.spill_dir.as_ref().map(|s| settings.root.join(s)),
        };
        Ok(MemorySettings { limit, spill_dir })
    }

    /// Session options that depend on the limit.
    pub fn configure(&self, config: &mut SessionConfig) {
        let Some(limit) = self.limit else { return };
        let opts = config.options_mut();
        opts.optimizer.prefer_hash_join = false;
        let default = opts.execution.sort_spill_reservation_bytes;
        opts.execution.sort_spill_reservation_bytes = default.min(limit / SORT_RESERVATION_SHARE);
        let rows = opts.execution.batch_size.get().min((limit / LIMIT_BYTES_PER_BATCH_ROW).max(1024));
        if let Ok(rows) = datafusion::common::config::ConfigNonZeroUsize::try_new(rows) {
            opts.execution.batch_size = rows;
        }
    }

    /// The runtime: a fair spilling pool under a limit, and a disk manager
    /// whose files are counted in `stats`.
    pub fn runtime(&self, stats: Arc<SpillStats>) -> anyhow::Result<RuntimeEnvBuilder> {
        let mode = match &self.spill_dir {
            Some(dir) => {
                std::fs::create_dir_all(dir).map_err(|e| anyhow::anyhow!("creating the spill directory {}: {e}", dir.display()))?;
                DiskManagerMode::Directories(vec![dir.clone()])
            }
            None => DiskManagerMode::OsTmpDirectory,
        };
        let disk = Arc::new(DiskManagerBuilder::default().with_mode(mode).build()?);
        let counting = Arc::new(CountingFactory { disk, stats });
        let mut rt = RuntimeEnvBuilder::new().with_disk_manager_builder(DiskManagerBuilder::default().with_temp_file_factory(counting));
        if let Some(limit) = self.limit {
            // The tracking wrapper names the largest consumers when a
            // reservation fails.
            rt = rt.with_memory_pool(Arc::new(TrackConsumersPool::new(FairSpillPool::new(limit), NonZeroUsize::new(5).expect("5 > 0"))));
        }
        Ok(rt)
    }
}

/// Spill files and bytes written by one session.
#[derive(Debug, Default)]
pub struct SpillStats {
    files: AtomicU64,
    bytes: AtomicU64,
}

impl SpillStats {
    pub fn files(&self) -> u64 {
        self.files.load(Ordering::Relaxed)
    }

    pub fn bytes(&self) -> u64 {
        self.bytes.load(Ordering::Relaxed)
    }

    /// `spilled 12.3 MB to disk in 8 files (memory limit 4.0 MB)`, or
    /// `None` when nothing spilled.
    pub fn summary(&self, limit: Option<usize>) -> Option<String> {
        let files = self.files();
        if files == 0 {
            return None;
        }
        let limit = limit.map(|l| format!(" (memory limit {})", human_size(l as u64))).unwrap_or_default();
        Some(format!("spilled {} to disk in {files} file{}{limit}", human_size(self.bytes()), if files == 1 { "" } else { "s" }))
    }
}

/// `512 B`, `4.0 KB`, `12.3 MB`, `1.5 GB` (binary units, as `--memory-limit`).
pub fn human_size(b: u64) -> String {
    let units = [("GB", 1u64 << 30), ("MB", 1 << 20), ("KB", 1 << 10)];
    for (u, m) in units {
        if b >= m {
            return format!("{:.1} {u}", b as f64 / m as f64);
        }
    }
    format!("{b} B")
}

/// Creates spill files through a [`DiskManager`] and counts them.
struct CountingFactory {
    disk: Arc<DiskManager>,
    stats: Arc<SpillStats>,
}

impl TempFileFactory for CountingFactory {
    fn create_temp_file(&self, description: &str) -> Result<Arc<dyn SpillFile>> {
        let inner = self.disk.create_tmp_file(description)?;
        self.stats.files.fetch_add(1, Ordering::Relaxed);
        Ok(Arc::new(CountingFile { inner, stats: self.stats.clone() }))
    }
}

struct CountingFile {
    inner: Arc<dyn SpillFile>,
    stats: Arc<SpillStats>,
}

impl SpillFile for CountingFile {
    fn path(&self) -> Option<&Path> {
        self.inner.path()
    }

    fn size(&self) -> Option<u64> {
        self.inner.size()
    }

    fn read_stream(&self) -> Result<Pin<Box<dyn Stream<Item = Result<Bytes>> + Send>>> {
        self.inner.read_stream()
    }

    fn open_writer(&self) -> Result<Box<dyn SpillWriter>> {
        Ok(Box::new(CountingWriter { inner: self.inner.open_writer()?, stats: self.stats.clone() }))
    }
}

struct CountingWriter {
    inner: Box<dyn SpillWriter>,
    stats: Arc<SpillStats>,
}

impl std::io::Write for CountingWriter {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        let n = self.inner.write(buf)?;
        self.stats.bytes.fetch_add(n as u64, Ordering::Relaxed);
        Ok(n)
    }

    fn flush(&mut self) -> std::io::Result<()> {
        self.inner.flush()
    }
}

impl SpillWriter for CountingWriter {
    fn finish(&mut self) -> Result<()> {
        self.inner.finish()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use datafusion::arrow::array::{Int64Array, RecordBatch, StringArray};
    use datafusion::arrow::datatypes::{DataType, Field, Schema};
    use datafusion::datasource::MemTable;
    use datafusion::execution::SessionStateBuilder;
    use datafusion::physical_plan::{ExecutionPlan, collect};
    use datafusion::prelude::SessionContext;

    fn session(m: &MemorySettings, stats: Arc<SpillStats>) -> SessionContext {
        let mut config = SessionConfig::new().with_target_partitions(2);
        m.configure(&mut config);
        let rt = m.runtime(stats).unwrap().build_arc().unwrap();
        let ctx = SessionContext::new_with_state(SessionStateBuilder::new().with_default_features().with_config(config).with_runtime_env(rt).build());
        // 400k rows, 100k groups, about 12 MB: more than the 4 MB limit.
        let schema = Arc::new(Schema::new(vec![
            Field::new("k", DataType::Int64, false),
            Field::new("v", DataType::Int64, false),
            Field::new("s", DataType::Utf8, false),
        ]));
        let batches: Vec<RecordBatch> = (0..40)
            .map(|b| {
                let ids: Vec<i64> = (0..10_000).map(|i| (b * 10_000 + i) * 7919 % 400_000).collect();
                RecordBatch::try_new(
                    schema.clone(),
                    vec![
                        Arc::new(Int64Array::from(ids.iter().map(|i| i % 100_000).collect::<Vec<_>>())),
                        Arc::new(Int64Array::from(ids.clone())),
                        Arc::new(StringArray::from(ids.iter().map(|i| format!("row-{i:08}")).collect::<Vec<_>>())),
                    ],
                )
                .unwrap()
            })
            .collect();
        ctx.register_table("t", Arc::new(MemTable::try_new(schema, vec![batches]).unwrap())).unwrap();
        ctx
    }

    fn spilled_bytes(plan: &Arc<dyn ExecutionPlan>) -> usize {
        plan.metrics().and_then(|m| m.spilled_bytes()).unwrap_or(0) + plan.children().into_iter().map(spilled_bytes).sum::<usize>()
    }

    async fn run(ctx: &SessionContext, sql: &str) -> (Vec<RecordBatch>, usize) {
        let plan = ctx.sql(sql).await.unwrap().create_physical_plan().await.unwrap();
        let rows = collect(plan.clone(), ctx.task_ctx()).await.unwrap();
        (rows, spilled_bytes(&plan))
    }

    #[tokio::test]
    async fn a_tiny_limit_spills_and_the_results_do_not_change() {
        let queries = [
            "select k, count(*) as n, sum(v) as total, max(s) as last from t group by k order by k",
            "select a.v, b.s from t a join t b on a.v = b.v order by a.v",
            "select s from t order by s desc",
        ];
        let free = session(&MemorySettings::default(), Arc::new(SpillStats::default()));
        let stats = Arc::new(SpillStats::default());
        let limited = session(&MemorySettings { limit: Some(4 << 20), spill_dir: None }, stats.clone());
        for q in queries {
            let (want, none) = run(&free, q).await;
            assert_eq!(none, 0, "no limit, yet {q} spilled");
            let (got, spilled) = run(&limited, q).await;
            assert!(spilled > 0, "{q} did not spill under a 4 MB limit");
            let pretty = |b: &[RecordBatch]| datafusion::arrow::util::pretty::pretty_format_batches(b).unwrap().to_string();
            assert!(pretty(&got) == pretty(&want), "{q}: results changed under the limit");
        }
        assert!(stats.files() > 0 && stats.bytes() > 0, "{stats:?}");
        assert!(stats.summary(Some(4 << 20)).unwrap().ends_with("(memory limit 4.0 MB)"));
    }

    #[test]
    fn no_limit_keeps_hash_joins() {
        let mut c = SessionConfig::new();
        MemorySettings::default().configure(&mut c);
        assert!(c.options().optimizer.prefer_hash_join);
        MemorySettings { limit: Some(1 << 30), spill_dir: None }.configure(&mut c);
        assert!(!c.options().optimizer.prefer_hash_join);
    }

    #[test]
    fn sizes_read_back() {
        assert_eq!(human_size(512), "512 B");
        assert_eq!(human_size(3 << 19), "1.5 MB");
    }
}
