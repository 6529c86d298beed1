//! `dp clone`: a Delta shallow clone. The new table's first commit holds
//! the source table's schema and partitioning and one `add` action per data
//! file of its current version, each naming the source's file by absolute
//! URL (as Delta's `SHALLOW CLONE` does), so nothing is copied. Later writes
//! to the clone add files under its own folder; the source's files stay the
//! source's (vacuuming the clone lists only its own folder). Vacuuming the
//! source past its retention breaks the clone, as in Delta. A file's
//! deletion vector (see [`super::dv_merge`]) is named by absolute URL too,
//! and the clone gets the `deletionVectors` feature.

use anyhow::Context as _;
use deltalake::DeltaTable;
use deltalake::kernel::Action;

use super::Materialized;
use crate::storage::TableLoc;

/// Creates `dest` as a shallow clone of the Delta table at `source`
/// (`dest` must not exist: drop it first).
pub async fn shallow_clone(source: &TableLoc, dest: &TableLoc, warehouse: &crate::storage::Warehouse) -> anyhow::Result<Materialized> {
    let src = DeltaTable::try_from_url(source.url.clone()).await.with_context(|| format!("opening Delta table {source}"))?;
    let snapshot = src.snapshot().map_err(|e| anyhow::anyhow!("{source} is not a Delta table: {e}"))?;
    let schema = snapshot.schema();
    let partitions = snapshot.metadata().partition_columns().to_vec();
    let mut adds = vec![];
    let mut vectors = false;
    for f in snapshot.log_data().iter() {
        #[allow(deprecated)] // the Add of a file view is what a clone commits
        let mut add = f.add_action();
        if url::Url::parse(&add.path).is_err() {
            add.path = source.url.join(&add.path).with_context(|| format!("{source}: data file {}", add.path))?.to_string();
        }
        if let Some(dv) = add.deletion_vector.take() {
            add.deletion_vector = Some(super::dv_merge::absolute(dv, &source.url).with_context(|| format!("{source}: the deletion vector of {}", add.path))?);
            vectors = true;
        }
        adds.push(Action::Add(add));
    }
    let files = adds.len();
    warehouse.prepare_table(dest).await?;
    let table = DeltaTable::try_from_url(dest.url.clone()).await.with_context(|| format!("opening {dest}"))?;
    let mut b = table.create().with_columns(schema.fields().cloned()).with_table_name(dest.table.clone()).with_actions(adds);
    if !partitions.is_empty() {
        b = b.with_partition_columns(partitions);
    }
    if vectors {
        // Rows the source's merges deleted stay deleted in the clone.
        b = b.with_configuration_property(deltalake::TableProperty::EnableDeletionVectors, Some("true"));
    }
    let table = b.await.map_err(|e| super::delta::write_error(dest, e))?;
    Ok(Materialized { rows: None, message: format!("CLONE {files} file{}", if files == 1 { "" } else { "s" }), version: table.version().map(|v| v as i64) })
}
