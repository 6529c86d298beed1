//! Where the warehouse lives: a folder on local disk or a prefix in an
//! S3-compatible bucket (`s3://bucket/prefix`), behind one [`Warehouse`].
//!
//! Layout, the same on both: `<warehouse>/<schema>/<table>/` holds a Delta
//! table (`_delta_log/`) or a stored view (`_dp_view.sql`). A schema is a
//! first-level folder (prefix); a relation exists when its folder has a
//! Delta log or a view file, so leftovers of a failed first write (data
//! files without a log) are not a table.
//!
//! Local warehouses use `std::fs` (fast, as before); remote ones go through
//! object_store. Catalog listings are synchronous in DataFusion, so remote
//! listings run on the current runtime with `block_in_place`.
//!
//! Data moves the same way on both: deltalake writes Parquet through
//! object_store's buffered writer (multipart uploads of 5 MB parts for large
//! files) and commits with put-if-absent ([`s3`]); scans (deltalake's and
//! DataFusion's listing tables for sources) read with ranged GETs and keep
//! Parquet footers in the session runtime's file-metadata cache, so a file's
//! metadata is fetched once per process.

pub mod s3;
mod transfer;

pub use transfer::{has_objects, object_exists, put_bytes, upload_dir};

use object_store::path::Path as ObjPath;
use object_store::{ObjectStore, ObjectStoreExt, PutPayload};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use url::Url;

use crate::config::Settings;

pub const VIEW_FILE: &str = "_dp_view.sql";
const LOG_DIR: &str = "_delta_log";

#[derive(Debug, thiserror::Error)]
pub enum StorageError {
    #[error("{location}: {message}{}", hint_line(.hint))]
    Remote { location: String, message: String, hint: Option<&'static str> },
    #[error("{location}: {source}")]
    Local { location: String, source: std::io::Error },
    #[error("warehouse '{0}': only local paths, file:// and s3://bucket/prefix URLs are supported\n  hint: use ./warehouse or s3://bucket/warehouse")]
    Unsupported(String),
}

fn hint_line(h: &Option<&'static str>) -> String {
    h.map(|h| format!("\n  hint: {h}")).unwrap_or_default()
}

impl StorageError {
    /// An object-store failure at `location` (a URL without secrets).
    pub fn remote(location: impl std::fmt::Display, e: impl std::fmt::Display) -> StorageError {
        let full = e.to_string();
        StorageError::Remote { location: location.to_string(), hint: s3::hint(&full), message: s3::summarize(&full) }
    }
}

/// What a warehouse folder holds.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RelKind {
    Table,
    View,
}

/// A relation's location in the warehouse.
#[derive(Debug, Clone)]
pub struct TableLoc {
    pub schema: String,
    pub table: String,
    /// The folder as a URL (`file:///.../` or `s3://bucket/prefix/...`).
    pub url: Url,
}

impl std::fmt::Display for TableLoc {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self.url.to_file_path() {
            Ok(p) if self.url.scheme() == "file" => write!(f, "{}", p.display()),
            _ => write!(f, "{}", self.url),
        }
    }
}

#[derive(Clone)]
enum Place {
    Local(PathBuf),
    /// `url` ends with `/`; `prefix` is its path inside the bucket.
    Remote {
        url: Url,
        store: Arc<dyn ObjectStore>,
        prefix: ObjPath,
    },
}

/// The warehouse of a target.
#[derive(Clone)]
pub struct Warehouse {
    place: Place,
}

impl std::fmt::Debug for Warehouse {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Warehouse({self})")
    }
}

impl std::fmt::Display for Warehouse {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match &self.place {
            Place::Local(p) => write!(f, "{}", p.display()),
            Place::Remote { url, .. } => write!(f, "{}", url.as_str().trim_end_matches('/')),
        }
    }
}

/// Parses `s3://bucket/prefix` into a URL ending in `/`.
fn dir_url(s: &str) -> Result<Url, StorageError> {
    let with_slash = if s.ends_with('/') { s.to_string() } else { format!("{s}/") };
    Url::parse(&with_slash).map_err(|e| StorageError::Remote { location: s.into(), message: format!("not a valid URL: {e}"), hint: None })
}

/// The object-store client for a remote URL (configuring S3 from the target).
pub fn store_for(url: &Url, settings: &Settings) -> Result<Arc<dyn ObjectStore>, StorageError> {
    match url.scheme() {
        "s3" => {
            s3::configure(&settings.target.s3.clone().unwrap_or_default());
            let bucket = url.host_str().filter(|b| !b.is_empty()).ok_or_else(|| StorageError::Remote {
                location: url.to_string(),
                message: "no bucket name".into(),
                hint: Some("write the location as s3://bucket/prefix"),
            })?;
            s3::store(bucket).map_err(|e| StorageError::remote(url, e))
        }
        _ => Err(StorageError::Unsupported(url.as_str().trim_end_matches('/').to_string())),
    }
}

impl Warehouse {
    /// The target's warehouse (no I/O: a remote one is checked by [`Warehouse::check`]).
    pub fn open(settings: &Settings) -> Result<Warehouse, StorageError> {
        let loc = settings.warehouse_url();
        if let Some(rest) = loc.strip_prefix("file://") {
            return Ok(Warehouse { place: Place::Local(PathBuf::from(rest)) });
        }
        if !loc.contains("://") {
            return Ok(Warehouse { place: Place::Local(PathBuf::from(loc)) });
        }
        let url = dir_url(&loc)?;
        let store = store_for(&url, settings)?;
        let prefix = ObjPath::from_url_path(url.path()).map_err(|e| StorageError::remote(&url, e))?;
        Ok(Warehouse { place: Place::Remote { url, store, prefix } })
    }

    pub fn local_dir(&self) -> Option<&Path> {
        match &self.place {
            Place::Local(p) => Some(p),
            Place::Remote { .. } => None,
        }
    }

    /// The bucket-level URL and client of a remote warehouse, for
    /// registering in DataFusion's runtime.
    pub fn remote_store(&self) -> Option<(Url, Arc<dyn ObjectStore>)> {
        match &self.place {
            Place::Remote { url, store, .. } => {
                let mut root = url.clone();
                root.set_path("/");
                Some((root, store.clone()))
            }
            Place::Local(_) => None,
        }
    }

    pub fn table(&self, schema: &str, table: &str) -> TableLoc {
        let url = match &self.place {
            Place::Local(p) => Url::from_directory_path(p.join(schema).join(table)).expect("warehouse paths are absolute"),
            Place::Remote { url, .. } => url.join(&format!("{}/{}/", enc(schema), enc(table))).expect("valid segment"),
        };
        TableLoc { schema: schema.into(), table: table.into(), url }
    }

    fn obj(&self, prefix: &ObjPath, parts: &[&str]) -> ObjPath {
        let mut p = prefix.clone();
        for s in parts {
            p = p.join(*s);
        }
        p
    }

    fn url_of(&self, parts: &[&str]) -> String {
        let mut s = self.to_string();
        for p in parts {
            s.push('/');
            s.push_str(p);
        }
        s
    }

    /// Whether `<schema>/<table>` is a Delta table, a view, or nothing.
    pub async fn kind(&self, schema: &str, table: &str) -> Result<Option<RelKind>, StorageError> {
        match &self.place {
            Place::Local(p) => Ok(local_kind(&p.join(schema).join(table))),
            Place::Remote { store, prefix, .. } => {
                let dir = self.obj(prefix, &[schema, table]);
                let l = store.list_with_delimiter(Some(&dir)).await.map_err(|e| StorageError::remote(self.url_of(&[schema, table]), e))?;
                Ok(if l.common_prefixes.iter().any(|p| p.filename() == Some(LOG_DIR)) {
                    Some(RelKind::Table)
                } else if l.objects.iter().any(|o| o.location.filename() == Some(VIEW_FILE)) {
                    Some(RelKind::View)
                } else {
                    None
                })
            }
        }
    }

    pub fn kind_blocking(&self, schema: &str, table: &str) -> Option<RelKind> {
        match &self.place {
            Place::Local(p) => local_kind(&p.join(schema).join(table)),
            Place::Remote { .. } => block_on(self.kind(schema, table)).ok().flatten(),
        }
    }

    /// Bytes of every file under the warehouse, per schema (first-level
    /// folder), sorted by schema.
    pub async fn size_by_schema(&self) -> Result<Vec<(String, u64)>, StorageError> {
        let mut sizes: std::collections::BTreeMap<String, u64> = Default::default();
        match &self.place {
            Place::Local(p) => {
                fn walk(dir: &Path) -> u64 {
                    std::fs::read_dir(dir)
                        .map(|rd| {
                            rd.flatten()
                                .map(|e| match e.file_type() {
                                    Ok(t) if t.is_dir() => walk(&e.path()),
                                    Ok(_) => e.metadata().map(|m| m.len()).unwrap_or(0),
                                    Err(_) => 0,
                                })
                                .sum()
                        })
                        .unwrap_or(0)
                }
                for e in std::fs::read_dir(p).into_iter().flatten().flatten() {
                    if e.path().is_dir() {
                        sizes.insert(e.file_name().to_string_lossy().into_owned(), walk(&e.path()));
                    }
                }
            }
            Place::Remote { store, prefix, .. } => {
                use futures::TryStreamExt;
                let depth = prefix.parts().count();
                let mut l = store.list(Some(prefix));
                while let Some(o) = l.try_next().await.map_err(|e| StorageError::remote(self, e))? {
                    let parts: Vec<_> = o.location.parts().collect();
                    if parts.len() > depth + 1 {
                        *sizes.entry(parts[depth].as_ref().to_string()).or_default() += o.size;
                    }
                }
            }
        }
        Ok(sizes.into_iter().collect())
    }

    /// The schemas (first-level folders).
    pub async fn schemas(&self) -> Result<Vec<String>, StorageError> {
        match &self.place {
            Place::Local(p) => Ok(std::fs::read_dir(p)
                .map(|rd| rd.flatten().filter(|e| e.path().is_dir()).map(|e| e.file_name().to_string_lossy().into_owned()).collect())
                .unwrap_or_default()),
            Place::Remote { store, prefix, .. } => {
                let l = store.list_with_delimiter(Some(prefix)).await.map_err(|e| StorageError::remote(self, e))?;
                Ok(l.common_prefixes.iter().filter_map(|p| p.filename().map(str::to_string)).collect())
            }
        }
    }

    /// The relations of a schema.
    pub async fn relations(&self, schema: &str) -> Result<Vec<(String, RelKind)>, StorageError> {
        match &self.place {
            Place::Local(p) => Ok(std::fs::read_dir(p.join(schema))
                .map(|rd| rd.flatten().filter_map(|e| local_kind(&e.path()).map(|k| (e.file_name().to_string_lossy().into_owned(), k))).collect())
                .unwrap_or_default()),
            Place::Remote { store, prefix, .. } => {
                let l = store.list_with_delimiter(Some(&self.obj(prefix, &[schema]))).await.map_err(|e| StorageError::remote(self.url_of(&[schema]), e))?;
                let names: Vec<String> = l.common_prefixes.iter().filter_map(|p| p.filename().map(str::to_string)).collect();
                let kinds = futures::future::join_all(names.iter().map(|t| self.kind(schema, t))).await;
                Ok(names.into_iter().zip(kinds).filter_map(|(n, k)| k.ok().flatten().map(|k| (n, k))).collect())
            }
        }
    }

    pub fn schemas_blocking(&self) -> Vec<String> {
        match &self.place {
            Place::Local(_) => futures::executor::block_on(self.schemas()).unwrap_or_default(),
            Place::Remote { .. } => block_on(self.schemas()).unwrap_or_default(),
        }
    }

    pub fn relations_blocking(&self, schema: &str) -> Vec<(String, RelKind)> {
        match &self.place {
            Place::Local(_) => futures::executor::block_on(self.relations(schema)).unwrap_or_default(),
            Place::Remote { .. } => block_on(self.relations(schema)).unwrap_or_default(),
        }
    }

    pub async fn read_view(&self, schema: &str, table: &str) -> Result<String, StorageError> {
        match &self.place {
            Place::Local(p) => {
                let f = p.join(schema).join(table).join(VIEW_FILE);
                std::fs::read_to_string(&f).map_err(|source| StorageError::Local { location: f.display().to_string(), source })
            }
            Place::Remote { store, prefix, .. } => {
                let loc = self.url_of(&[schema, table, VIEW_FILE]);
                let r = store.get(&self.obj(prefix, &[schema, table, VIEW_FILE])).await.map_err(|e| StorageError::remote(&loc, e))?;
                let b = r.bytes().await.map_err(|e| StorageError::remote(&loc, e))?;
                String::from_utf8(b.to_vec()).map_err(|e| StorageError::remote(&loc, e))
            }
        }
    }

    /// Makes the folder ready for a Delta write: creates it on local disk,
    /// removes a view stored there (the relation changes type).
    pub async fn prepare_table(&self, loc: &TableLoc) -> Result<(), StorageError> {
        match &self.place {
            Place::Local(p) => {
                let dir = p.join(&loc.schema).join(&loc.table);
                std::fs::create_dir_all(&dir).map_err(|source| StorageError::Local { location: dir.display().to_string(), source })?;
                let v = dir.join(VIEW_FILE);
                if v.exists() {
                    std::fs::remove_file(&v).map_err(|source| StorageError::Local { location: v.display().to_string(), source })?;
                }
                Ok(())
            }
            Place::Remote { store, prefix, .. } => {
                let v = self.obj(prefix, &[&loc.schema, &loc.table, VIEW_FILE]);
                match store.delete(&v).await {
                    Ok(()) | Err(object_store::Error::NotFound { .. }) => Ok(()),
                    Err(e) => Err(StorageError::remote(self.url_of(&[&loc.schema, &loc.table, VIEW_FILE]), e)),
                }
            }
        }
    }

    /// Stores a view's SQL in one atomic write (rename on disk, a single PUT
    /// on S3); a Delta table in the folder is dropped first, as dbt does.
    pub async fn write_view(&self, loc: &TableLoc, sql: &str) -> Result<(), StorageError> {
        match &self.place {
            Place::Local(p) => {
                let dir = p.join(&loc.schema).join(&loc.table);
                let io = |source| StorageError::Local { location: dir.display().to_string(), source };
                std::fs::create_dir_all(&dir).map_err(io)?;
                if dir.join(LOG_DIR).exists() {
                    for e in std::fs::read_dir(&dir).map_err(io)?.flatten() {
                        let p = e.path();
                        let r = if p.is_dir() { std::fs::remove_dir_all(&p) } else { std::fs::remove_file(&p) };
                        r.map_err(io)?;
                    }
                }
                let tmp = dir.join(format!(".{VIEW_FILE}.tmp"));
                std::fs::write(&tmp, sql).map_err(io)?;
                std::fs::rename(&tmp, dir.join(VIEW_FILE)).map_err(io)
            }
            Place::Remote { store, prefix, .. } => {
                let dir = self.obj(prefix, &[&loc.schema, &loc.table]);
                if self.kind(&loc.schema, &loc.table).await? == Some(RelKind::Table) {
                    self.delete_prefix(store, &dir, &loc.to_string()).await?;
                }
                store
                    .put(&self.obj(prefix, &[&loc.schema, &loc.table, VIEW_FILE]), PutPayload::from(sql.to_string()))
                    .await
                    .map_err(|e| StorageError::remote(loc, e))?;
                Ok(())
            }
        }
    }

    /// Removes a relation (Delta table or view) and everything in its
    /// folder (and the schema's folder if that leaves it empty). Readers never see a table with missing data: on disk the
    /// folder is first renamed out of the schema (`.dp_trash/`, hidden from
    /// the catalog); on S3 the Delta log goes before the data files, so
    /// leftovers of an interrupted drop are not a table.
    pub async fn drop_relation(&self, loc: &TableLoc) -> Result<(), StorageError> {
        match &self.place {
            Place::Local(p) => {
                let dir = p.join(&loc.schema).join(&loc.table);
                let trash = p.join(".dp_trash");
                let io = |at: &Path| {
                    let location = at.display().to_string();
                    move |source| StorageError::Local { location, source }
                };
                std::fs::create_dir_all(&trash).map_err(io(&trash))?;
                let gone = trash.join(format!("{}.{}.{}", loc.schema, loc.table, uuid::Uuid::new_v4()));
                std::fs::rename(&dir, &gone).map_err(io(&dir))?;
                std::fs::remove_dir_all(&gone).map_err(io(&gone))?;
                // Empty unless another drop is under way; an empty schema
                // folder goes too, as an S3 prefix does with its last object.
                let _ = std::fs::remove_dir(&trash);
                let _ = std::fs::remove_dir(p.join(&loc.schema));
                Ok(())
            }
            Place::Remote { store, prefix, .. } => {
                let label = loc.to_string();
                self.delete_prefix(store, &self.obj(prefix, &[&loc.schema, &loc.table, LOG_DIR]), &label).await?;
                self.delete_prefix(store, &self.obj(prefix, &[&loc.schema, &loc.table]), &label).await
            }
        }
    }

    async fn delete_prefix(&self, store: &Arc<dyn ObjectStore>, dir: &ObjPath, label: &str) -> Result<(), StorageError> {
        use futures::{StreamExt, TryStreamExt};
        let locations = store.list(Some(dir)).map_ok(|m| m.location).boxed();
        store.delete_stream(locations).try_collect::<Vec<_>>().await.map_err(|e| StorageError::remote(label, e))?;
        Ok(())
    }

    /// Checks the warehouse is reachable and writable (creating a local
    /// folder); returns a one-line summary.
    pub async fn check(&self) -> Result<String, StorageError> {
        match &self.place {
            Place::Local(dir) => {
                let io = |source| StorageError::Local { location: dir.display().to_string(), source };
                std::fs::create_dir_all(dir).map_err(io)?;
                let probe = dir.join(format!(".dp_probe_{}", std::process::id()));
                std::fs::write(&probe, b"ok").map_err(io)?;
                let _ = std::fs::remove_file(&probe);
            }
            Place::Remote { store, prefix, .. } => {
                let probe = prefix.clone().join(format!(".dp_probe_{}", uuid::Uuid::new_v4()));
                store.put(&probe, PutPayload::from_static(b"ok")).await.map_err(|e| StorageError::remote(self, e))?;
                let _ = store.delete(&probe).await;
            }
        }
        let mut n = 0;
        for s in self.schemas().await? {
            n += self.relations(&s).await?.len();
        }
        Ok(format!("{self} is writable ({n} tables)"))
    }
}

fn local_kind(dir: &Path) -> Option<RelKind> {
    if dir.join(LOG_DIR).is_dir() {
        Some(RelKind::Table)
    } else if dir.join(VIEW_FILE).is_file() {
        Some(RelKind::View)
    } else {
        None
    }
}

/// Percent-encodes a path segment for a URL.
fn enc(s: &str) -> String {
    url::form_urlencoded::byte_serialize(s.as_bytes()).collect::<String>().replace('+', "%20")
}

/// Runs a future to completion from synchronous code inside or outside a
/// tokio runtime (catalog listings are synchronous in DataFusion).
pub fn block_on<F: std::future::Future + Send>(f: F) -> F::Output
where
    F::Output: Send,
{
    use tokio::runtime::{Handle, RuntimeFlavor};
    match Handle::try_current() {
        Ok(h) if h.runtime_flavor() == RuntimeFlavor::MultiThread => tokio::task::block_in_place(|| h.block_on(f)),
        _ => std::thread::scope(|s| {
            s.spawn(|| tokio::runtime::Builder::new_current_thread().enable_all().build().expect("a tokio runtime").block_on(f))
                .join()
                .expect("storage listing thread")
        }),
    }
}
