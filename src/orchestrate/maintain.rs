//! Table maintenance (`dp maintain`, and the `maintain` task): compaction of
//! small files (incremental and append tables), vacuum of files (and
//! deletion vector files, see `materialize::dv_merge`) no longer
//! referenced and older than the retention (time travel keeps working
//! inside it), including files no version ever named (a killed write's),
//! and a Delta checkpoint. Before compacting, files whose deletion vectors
//! delete a twentieth of their rows or more are rewritten without them
//! (`materialize::purge`). deltalake's own operations do the
//! work; this module picks the tables and measures what was reclaimed.

use std::time::Duration;

use deltalake::operations::vacuum::VacuumMode;
use object_store::ObjectStoreExt as _;

use crate::storage::Warehouse;

/// What to do to one table.
#[derive(Debug, Clone)]
pub struct MaintainPlan {
    pub schema: String,
    pub table: String,
    /// Rewrite small files into larger ones (incremental and append tables).
    pub compact: bool,
    pub retention: Duration,
    pub dry_run: bool,
}

/// What maintenance did to one table.
#[derive(Debug, Clone, Default)]
pub struct MaintainReport {
    /// Files rewritten without the rows their deletion vectors delete, and those rows.
    pub files_purged: usize,
    pub rows_purged: u64,
    pub files_compacted: u64,
    pub files_written: u64,
    pub files_vacuumed: usize,
    /// Bytes of the vacuumed files (known on a local warehouse).
    pub bytes_reclaimed: Option<u64>,
    pub checkpoint_version: Option<i64>,
}

impl std::fmt::Display for MaintainReport {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let mut parts = vec![];
        if self.files_purged > 0 {
            parts.push(format!("purged {} deleted rows from {} files", self.rows_purged, self.files_purged));
        }
        if self.files_compacted > 0 {
            parts.push(format!("compacted {} files into {}", self.files_compacted, self.files_written));
        }
        let bytes = self.bytes_reclaimed.map(|b| format!(", {}", human_bytes(b))).unwrap_or_default();
        parts.push(format!("vacuumed {} files{bytes}", self.files_vacuumed));
        if let Some(v) = self.checkpoint_version {
            parts.push(format!("checkpoint v{v}"));
        }
        write!(f, "{}", parts.join("; "))
    }
}

pub fn human_bytes(b: u64) -> String {
    const U: [&str; 5] = ["B", "KB", "MB", "GB", "TB"];
    let mut v = b as f64;
    let mut i = 0;
    while v >= 1024.0 && i < U.len() - 1 {
        v /= 1024.0;
        i += 1;
    }
    if i == 0 { format!("{b} B") } else { format!("{v:.1} {}", U[i]) }
}

/// Maintains one Delta table; `Ok(None)` when it is not a Delta table.
pub async fn maintain_table(warehouse: &Warehouse, plan: &MaintainPlan) -> Result<Option<MaintainReport>, String> {
    let name = format!("{}.{}", plan.schema, plan.table);
    if warehouse.kind(&plan.schema, &plan.table).await.map_err(|e| e.to_string())? != Some(crate::storage::RelKind::Table) {
        return Ok(None);
    }
    let loc = warehouse.table(&plan.schema, &plan.table);
    let open = || async { deltalake::open_table(loc.url.clone()).await.map_err(|e| format!("opening {name}: {e}")) };
    let mut report = MaintainReport::default();
    let mut table = open().await?;
    if plan.compact {
        // Deleted rows first: the files they leave may be small enough to compact.
        let props = crate::materialize::delta::default_writer_properties();
        let p = crate::materialize::purge::purge(&mut table, &props, plan.dry_run).await.map_err(|e| format!("purging {name}'s deleted rows: {e:#}"))?;
        (report.files_purged, report.rows_purged) = (p.files, p.rows_dropped);
    }
    if plan.compact && !plan.dry_run {
        let (t, m) = table.optimize().await.map_err(|e| format!("compacting {name}: {e}"))?;
        report.files_compacted = m.num_files_removed;
        report.files_written = m.num_files_added;
        table = t;
    }
    let retention = chrono::Duration::from_std(plan.retention).unwrap_or(chrono::Duration::days(7));
    // Full mode: also the files no version names (a killed write's, which
    // never reached the log), once older than the retention, so a write
    // still in flight keeps its files.
    let vacuum = |t: deltalake::DeltaTable| t.vacuum().with_mode(VacuumMode::Full).with_retention_period(retention).with_enforce_retention_duration(false);
    let (t, dry) = vacuum(table).with_dry_run(true).await.map_err(|e| format!("vacuuming {name}: {e}"))?;
    // The log keeps tombstones of files a past vacuum already deleted: on
    // a local warehouse only files still on disk count.
    let sizes: Option<Vec<u64>> = warehouse.local_dir().map(|d| {
        let base = d.join(&plan.schema).join(&plan.table);
        dry.files_deleted.iter().filter_map(|f| std::fs::metadata(base.join(strip_url(f, &loc.url))).ok()).map(|m| m.len()).collect()
    });
    let data_files = sizes.as_ref().map_or(dry.files_deleted.len(), Vec::len);
    report.bytes_reclaimed = sizes.map(|s| s.iter().sum());
    // Deletion vector files no version within the retention reads.
    let vectors = crate::materialize::dv_merge::stale_vectors(&t, retention).await.map_err(|e| format!("vacuuming {name}'s deletion vectors: {e:#}"))?;
    report.files_vacuumed = data_files + vectors.len();
    report.bytes_reclaimed = report.bytes_reclaimed.map(|b| b + vectors.iter().map(|(_, s)| s).sum::<u64>());
    if plan.dry_run {
        return Ok(Some(report));
    }
    let store = t.log_store().object_store(None);
    for (path, _) in &vectors {
        store.delete(path).await.map_err(|e| format!("vacuuming {name}: deleting {path}: {e}"))?;
    }
    let t = if data_files == 0 { t } else { vacuum(t).await.map_err(|e| format!("vacuuming {name}: {e}"))?.0 };
    deltalake::checkpoints::create_checkpoint(&t, None).await.map_err(|e| format!("checkpointing {name}: {e}"))?;
    report.checkpoint_version = t.version().map(|v| v as i64);
    Ok(Some(report))
}

/// A vacuumed file's path relative to its table folder.
fn strip_url<'a>(f: &'a str, table: &url::Url) -> &'a str {
    let t = table.as_str();
    f.strip_prefix(t).or_else(|| table.to_file_path().ok().and_then(|p| f.strip_prefix(p.to_str()?)).map(|s| s.trim_start_matches('/'))).unwrap_or(f)
}

#[cfg(test)]
mod tests {
    #[test]
    fn bytes() {
        assert_eq!(super::human_bytes(512), "512 B");
        assert_eq!(super::human_bytes(745 * 1024 * 1024), "745.0 MB");
    }
}
