//! Bronze files: where an extract lands and how it becomes visible.
//!
//! A source's `external_location` (`bronze/postgres/orders/*/orders.parquet`)
//! names the prefix, the date folder (`*`) and the file name. An extract is
//! written to `<prefix>/<YYYY-MM-DD>/<name>.parquet` (`<YYYY-MM-DD>_2`, `_3`,
//! ... when that day already has one; a `*` in the file name becomes the
//! run id), as zstd Parquet, through object_store on local disk and S3
//! alike. The object only appears when the writer completes: a single PUT
//! for small files, a multipart upload completed at the end for large ones
//! (a staged file renamed into place on local disk). A killed extract never
//! leaves a partial file where the source's glob reads.
//!
//! Each file's footer carries the run's bookkeeping (`dp.ingest.*` keys:
//! run id, watermark range, row count, landing file checksum), so a file
//! published by a run that was killed before it logged is recognised and
//! logged by the next run ([`super::state`]).

use bytes::Bytes;
use datafusion::arrow::array::RecordBatch;
use datafusion::arrow::datatypes::SchemaRef;
use datafusion::parquet::arrow::AsyncArrowWriter;
use datafusion::parquet::arrow::async_writer::AsyncFileWriter;
use datafusion::parquet::basic::{Compression, ZstdLevel};
use datafusion::parquet::file::metadata::KeyValue;
use datafusion::parquet::file::properties::WriterProperties;
use futures::StreamExt;
use futures::future::BoxFuture;
use object_store::path::Path as ObjPath;
use object_store::{ObjectStore, ObjectStoreExt};
use sha2::{Digest, Sha256};
use std::collections::BTreeMap;
use std::sync::Arc;

use crate::config::Settings;

/// Rows per Parquet row group (DataFusion scans row groups in parallel).
pub const ROW_GROUP_ROWS: usize = 512 * 1024;

/// A source's bronze folder.
#[derive(Clone)]
pub struct Bronze {
    store: Arc<dyn ObjectStore>,
    /// The prefix before the `*` folder.
    base: ObjPath,
    /// The file name (may hold one `*`).
    file: String,
    /// The location's prefix as declared (`bronze/postgres/orders`), for object keys.
    declared_base: String,
    /// Where the prefix resolved (a path or URL), for messages.
    pub resolved_base: String,
    /// The folder, when bronze is on local disk.
    local: Option<std::path::PathBuf>,
}

impl std::fmt::Debug for Bronze {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Bronze({})", self.resolved_base)
    }
}

/// A bronze object: its store path and the key as the source declares it.
#[derive(Debug, Clone)]
pub struct BronzeObject {
    pub path: ObjPath,
    /// `bronze/postgres/orders/2024-01-15/orders.parquet`.
    pub key: String,
    pub size: u64,
}

impl Bronze {
    /// The bronze folder of a (validated) location.
    pub fn open(settings: &Settings, location: &str) -> anyhow::Result<Bronze> {
        let (prefix, file) = location.rsplit_once('/').ok_or_else(|| anyhow::anyhow!("'{location}' has no folder"))?;
        let declared_base = prefix.strip_suffix("/*").unwrap_or(prefix).to_string();
        let resolved = crate::engine::resolve_source_location(settings, &declared_base);
        let mut local = None;
        let (store, base): (Arc<dyn ObjectStore>, ObjPath) = if resolved.contains("://") && !resolved.starts_with("file://") {
            let url = url::Url::parse(&format!("{}/", resolved.trim_end_matches('/')))?;
            let store = crate::storage::store_for(&url, settings)?;
            (store, ObjPath::from_url_path(url.path())?)
        } else {
            let p = std::path::PathBuf::from(resolved.strip_prefix("file://").unwrap_or(&resolved));
            std::fs::create_dir_all(&p).map_err(|e| anyhow::anyhow!("cannot create the bronze folder {}: {e}", p.display()))?;
            local = Some(p.clone());
            (Arc::new(object_store::local::LocalFileSystem::new()), ObjPath::from_absolute_path(&p)?)
        };
        Ok(Bronze { store, base, file: file.to_string(), declared_base, resolved_base: resolved, local })
    }

    fn file_name(&self, run: &str) -> String {
        self.file.replacen('*', run, 1)
    }

    fn matches(&self, name: &str) -> bool {
        match self.file.split_once('*') {
            Some((a, b)) => name.len() >= a.len() + b.len() && name.starts_with(a) && name.ends_with(b),
            None => name == self.file,
        }
    }

    /// Every published bronze file of the source (`<prefix>/*/<name>`), sorted by key.
    pub async fn list(&self) -> anyhow::Result<Vec<BronzeObject>> {
        let mut out = vec![];
        let mut s = self.store.list(Some(&self.base));
        while let Some(m) = s.next().await {
            let m = m.map_err(|e| anyhow::anyhow!("listing {}: {}", self.resolved_base, crate::storage::StorageError::remote(&self.resolved_base, e)))?;
            let Some(rel) = m.location.prefix_match(&self.base) else { continue };
            let parts: Vec<String> = rel.map(|p| p.as_ref().to_string()).collect();
            if let [dir, name] = parts.as_slice()
                && self.matches(name)
            {
                out.push(BronzeObject { key: format!("{}/{dir}/{name}", self.declared_base), path: m.location.clone(), size: m.size });
            }
        }
        out.sort_by(|a, b| a.key.cmp(&b.key));
        Ok(out)
    }

    /// Removes staged uploads (`<name>#<n>`, never visible to readers) that a
    /// killed run left on local disk more than an hour ago; returns how many.
    /// (On S3 an unfinished multipart upload is not an object at all.)
    pub fn sweep_staged(&self) -> usize {
        let Some(dir) = &self.local else { return 0 };
        let old = std::time::SystemTime::now() - std::time::Duration::from_secs(3600);
        let mut n = 0;
        for e in walkdir::WalkDir::new(dir).max_depth(2).into_iter().flatten() {
            let name = e.file_name().to_string_lossy();
            let staged = name.split_once('#').is_some_and(|(f, d)| self.matches(f) && !d.is_empty() && d.bytes().all(|b| b.is_ascii_digit()));
            if staged && e.metadata().ok().and_then(|m| m.modified().ok()).is_some_and(|t| t < old) && std::fs::remove_file(e.path()).is_ok() {
                n += 1;
            }
        }
        n
    }

    /// A new object for this run: today's folder, or `<date>_<n>` when
    /// today's already holds the file.
    pub async fn next_object(&self, date: &str, run: &str) -> anyhow::Result<BronzeObject> {
        let name = self.file_name(run);
        for n in 1.. {
            let dir = if n == 1 { date.to_string() } else { format!("{date}_{n}") };
            let path = self.base.clone().join(dir.as_str()).join(name.as_str());
            match self.store.head(&path).await {
                Err(object_store::Error::NotFound { .. }) => {
                    return Ok(BronzeObject { path, key: format!("{}/{dir}/{name}", self.declared_base), size: 0 });
                }
                Ok(_) => continue,
                Err(e) => return Err(crate::storage::StorageError::remote(&self.resolved_base, e).into()),
            }
        }
        unreachable!("an unbounded range ends only by returning")
    }

    /// The `dp.ingest.*` footer keys of a published file (empty when the
    /// file was not written by `dp ingest`).
    pub async fn footer(&self, obj: &BronzeObject) -> anyhow::Result<BTreeMap<String, String>> {
        use datafusion::parquet::file::metadata::ParquetMetaDataReader;
        let get =
            |r: std::ops::Range<u64>| async move { self.store.get_range(&obj.path, r).await.map_err(|e| crate::storage::StorageError::remote(&obj.key, e)) };
        if obj.size < 12 {
            anyhow::bail!("{}: too small for a Parquet file", obj.key);
        }
        let tail = get(obj.size - 8..obj.size).await?;
        if &tail[4..] != b"PAR1" {
            anyhow::bail!("{}: not a Parquet file", obj.key);
        }
        let len = u32::from_le_bytes(tail[..4].try_into().expect("4 bytes")) as u64;
        let start = obj.size.checked_sub(8 + len).ok_or_else(|| anyhow::anyhow!("{}: bad Parquet footer", obj.key))?;
        let meta = ParquetMetaDataReader::decode_metadata(&get(start..obj.size - 8).await?)?;
        let kv = meta.file_metadata().key_value_metadata().cloned().unwrap_or_default();
        Ok(kv.into_iter().filter(|k| k.key.starts_with("dp.ingest.")).filter_map(|k| Some((k.key, k.value?))).collect())
    }

    /// Starts writing `obj` (invisible until [`BronzeWriter::finish`]).
    pub fn writer(&self, obj: &BronzeObject, schema: SchemaRef) -> anyhow::Result<BronzeWriter> {
        let state = Arc::new(std::sync::Mutex::new((0u64, String::new())));
        let sink = HashingSink {
            w: object_store::buffered::BufWriter::new(self.store.clone(), obj.path.clone()),
            hasher: Sha256::new(),
            bytes: 0,
            state: state.clone(),
        };
        let props = WriterProperties::builder()
            .set_compression(Compression::ZSTD(ZstdLevel::try_new(3)?))
            .set_max_row_group_row_count(Some(ROW_GROUP_ROWS))
            .set_created_by("dp ingest".into())
            .build();
        let w = AsyncArrowWriter::try_new(sink, schema, Some(props))?;
        Ok(BronzeWriter { w, key: obj.key.clone(), rows: 0, state })
    }
}

/// Streams batches into one bronze Parquet file.
pub struct BronzeWriter {
    w: AsyncArrowWriter<HashingSink>,
    pub key: String,
    pub rows: u64,
    state: Arc<std::sync::Mutex<(u64, String)>>,
}

/// What a finished file is.
#[derive(Debug, Clone)]
pub struct Published {
    pub key: String,
    pub rows: u64,
    pub bytes: u64,
    /// sha256 of the Parquet file, hex.
    pub sha256: String,
}

impl BronzeWriter {
    pub async fn write(&mut self, batch: &RecordBatch) -> anyhow::Result<()> {
        self.rows += batch.num_rows() as u64;
        self.w.write(batch).await.map_err(|e| anyhow::anyhow!("writing {}: {e}", self.key))
    }

    /// Footer bookkeeping (`dp.ingest.<key>`).
    pub fn note(&mut self, key: &str, value: impl Into<String>) {
        self.w.append_key_value_metadata(KeyValue::new(format!("dp.ingest.{key}"), Some(value.into())));
    }

    /// Completes the file: from here on the source's glob reads it.
    pub async fn finish(mut self) -> anyhow::Result<Published> {
        let rows = self.rows;
        self.note("rows", rows.to_string());
        let key = self.key.clone();
        self.w.close().await.map_err(|e| anyhow::anyhow!("publishing {key}: {e}"))?;
        let (bytes, sha256) = self.state.lock().expect("sink state").clone();
        Ok(Published { key, rows, bytes, sha256 })
    }
}

/// An object-store writer that hashes what passes through.
struct HashingSink {
    w: object_store::buffered::BufWriter,
    hasher: Sha256,
    bytes: u64,
    /// Size and hex sha256, set on completion.
    state: Arc<std::sync::Mutex<(u64, String)>>,
}

impl AsyncFileWriter for HashingSink {
    fn write(&mut self, bs: Bytes) -> BoxFuture<'_, datafusion::parquet::errors::Result<()>> {
        self.hasher.update(&bs);
        self.bytes += bs.len() as u64;
        Box::pin(async move { self.w.put(bs).await.map_err(|e| datafusion::parquet::errors::ParquetError::External(Box::new(e))) })
    }

    fn complete(&mut self) -> BoxFuture<'_, datafusion::parquet::errors::Result<()>> {
        let sha = hex::encode(std::mem::take(&mut self.hasher).finalize());
        *self.state.lock().expect("sink state") = (self.bytes, sha);
        Box::pin(async move {
            use tokio::io::AsyncWriteExt;
            self.w.shutdown().await.map_err(|e| datafusion::parquet::errors::ParquetError::External(Box::new(e)))
        })
    }
}

/// Hex sha256 of bytes.
pub fn sha256_hex(data: &[u8]) -> String {
    hex::encode(Sha256::digest(data))
}
