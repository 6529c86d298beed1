//! A new Parquet file of a table on local disk, written straight to its
//! file.
//!
//! deltalake's writer encodes each row group into a buffer of its own
//! (parquet's `AsyncArrowWriter`: a `Vec` grown by doubling from empty for
//! every row group), hands it to object_store's multipart upload, which on
//! a local file system writes it out from a pool thread. For a table on
//! local disk that is a copy of every byte through fresh memory: `perf`
//! put a fifth of the demo pipeline's page faults there. [`LocalFile`]
//! instead gives parquet's `ArrowWriter` the file itself, so each row
//! group's pages go from the encoder to the page cache.
//!
//! The file is written where deltalake would put it (the table's folder,
//! `part-00000-<uuid>-c000.<codec>.parquet`) and described by the same
//! `add` action: path, size, modification time and the statistics
//! deltalake computes ([`super::file_stats`]). Batches are conformed to the
//! writer's schema as deltalake's writer conforms them: by name, types
//! equal up to nullability, nulls refused in a non-nullable column.
//!
//! Used by [`super::parallel`] for tables whose location is a `file://`
//! URL and whose columns are all flat (no struct, list or map; those keep
//! deltalake's writer). `DP_LOCAL_WRITE=off` sends every file through
//! deltalake's writer (benchmarks compare the two).
//!
//! A file is not part of the table until a commit adds it: a failed or
//! killed write leaves it unreferenced in the folder, as a failed
//! deltalake write leaves its files, for `VACUUM` to remove.

use datafusion::arrow::array::RecordBatch;
use datafusion::arrow::compute::cast;
use datafusion::arrow::datatypes::SchemaRef;
use datafusion::parquet::arrow::ArrowWriter;
use datafusion::parquet::basic::Compression;
use datafusion::parquet::file::properties::WriterProperties;
use datafusion::parquet::schema::types::ColumnPath;
use deltalake::kernel::Add;
use deltalake::kernel::schema::cast::normalize_for_delta;
use std::fs::File;
use std::path::PathBuf;

/// One file being written: its name in the table's folder and the writer.
struct Open {
    name: String,
    writer: ArrowWriter<File>,
}

/// Writes one Parquet file into a local table's folder (see the module docs).
pub struct LocalFile {
    dir: PathBuf,
    schema: SchemaRef,
    props: WriterProperties,
    open: Option<Open>,
}

impl LocalFile {
    /// A writer for the table at `url` with columns `schema`; `None` when the
    /// table is not on local disk, a column is nested, or `DP_LOCAL_WRITE=off`.
    pub fn new(url: &url::Url, schema: SchemaRef) -> Option<LocalFile> {
        if crate::util::switched_off("DP_LOCAL_WRITE") || url.scheme() != "file" || schema.fields().iter().any(|f| f.data_type().is_nested()) {
            return None;
        }
        let dir = url.to_file_path().ok()?;
        Some(LocalFile { dir, schema, props: WriterProperties::default(), open: None })
    }

    /// The properties of the file (set before the first batch).
    pub fn with_writer_properties(mut self, props: WriterProperties) -> LocalFile {
        self.props = props;
        self
    }

    /// Encodes `batch` into the file (created at the first rows).
    pub fn write(&mut self, batch: RecordBatch) -> anyhow::Result<()> {
        if batch.num_rows() == 0 {
            return Ok(());
        }
        let batch = self.conform(batch)?;
        let open = match &mut self.open {
            Some(open) => open,
            None => {
                let name = file_name(&self.props);
                let path = self.dir.join(&name);
                std::fs::create_dir_all(&self.dir).map_err(|e| anyhow::anyhow!("creating {}: {e}", self.dir.display()))?;
                let file = File::create_new(&path).map_err(|e| anyhow::anyhow!("creating {}: {e}", path.display()))?;
                let writer = ArrowWriter::try_new(file, self.schema.clone(), Some(self.props.clone()))?;
                self.open.insert(Open { name, writer })
            }
        };
        open.writer.write(&batch)?;
        Ok(())
    }

    /// Finishes the file and returns its `add` action (none if no rows came).
    pub fn flush(&mut self) -> anyhow::Result<Vec<Add>> {
        let Some(Open { name, writer }) = self.open.take() else { return Ok(vec![]) };
        let meta = writer.close()?;
        let path = self.dir.join(&name);
        let size = std::fs::metadata(&path).map_err(|e| anyhow::anyhow!("reading {}: {e}", path.display()))?.len() as i64;
        let modification_time = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map_or(0, |d| d.as_millis() as i64);
        Ok(vec![Add {
            path: name,
            partition_values: Default::default(),
            size,
            modification_time,
            data_change: true,
            stats: Some(super::file_stats::stats_json(&meta)),
            tags: None,
            deletion_vector: None,
            base_row_id: None,
            default_row_commit_version: None,
            clustering_provider: None,
        }])
    }

    /// `batch` with the writer's schema, as deltalake's writer conforms it:
    /// columns taken by name; a type Delta cannot store (nanosecond
    /// timestamps) cast to the one it can; any other difference an error.
    fn conform(&self, batch: RecordBatch) -> anyhow::Result<RecordBatch> {
        if batch.schema() == self.schema {
            return Ok(batch);
        }
        let mismatch = || anyhow::anyhow!("the rows' schema {:?} does not match the table's {:?}", batch.schema(), self.schema);
        if batch.num_columns() != self.schema.fields().len() {
            return Err(mismatch());
        }
        let normalized = normalize_for_delta(&batch.schema());
        let mut columns = Vec::with_capacity(batch.num_columns());
        for field in self.schema.fields() {
            let (i, _) = batch.schema().column_with_name(field.name()).ok_or_else(mismatch)?;
            let column = batch.column(i);
            if column.data_type() == field.data_type() {
                columns.push(column.clone());
            } else if normalized.field(i).data_type() == field.data_type() {
                columns.push(cast(column, field.data_type())?);
            } else {
                return Err(mismatch());
            }
        }
        // Refuses nulls in a non-nullable column, naming it.
        Ok(RecordBatch::try_new(self.schema.clone(), columns)?)
    }
}

/// deltalake's name for a writer's first file: a new id, the codec as Hadoop
/// names it.
fn file_name(props: &WriterProperties) -> String {
    let codec = match props.compression(&ColumnPath::new(vec![])) {
        Compression::UNCOMPRESSED => "",
        Compression::SNAPPY => ".snappy",
        Compression::GZIP(_) => ".gz",
        Compression::LZO => ".lzo",
        Compression::BROTLI(_) => ".br",
        Compression::LZ4 => ".lz4",
        Compression::ZSTD(_) => ".zstd",
        Compression::LZ4_RAW => ".lz4raw",
    };
    format!("part-00000-{}-c000{codec}.parquet", uuid::Uuid::new_v4())
}
