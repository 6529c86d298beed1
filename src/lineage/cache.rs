//! `target/lineage_cache.json`: each model's traced columns from the last
//! lineage build, so a second `dp docs generate` (or `dp lineage`) plans
//! only the models whose inputs changed.
//!
//! An entry is reused only when its key matches: a hash of the dp version,
//! the model's compiled SQL, its relation name and materialization, and for
//! every parent (`depends_on`) the parent's own key if it is a model, else
//! (seeds, sources) its relation, its columns with their types and whether
//! it has column lineage. Keys chain like a Merkle tree: a model whose SQL
//! changed is planned again, and so is everything downstream of it. What the key cannot see: a table the SQL names without `ref` or
//! `source` (not in `depends_on`) whose columns changed; `--no-partial-parse`
//! turns the cache off for such projects.
//!
//! A missing, unreadable or foreign-version file is an empty cache. The file
//! is rewritten (atomically) only when some model was planned.

use std::collections::HashMap;
use std::hash::{Hash, Hasher};
use std::path::{Path, PathBuf};

use datafusion::arrow::datatypes::{DataType, Field, Schema};
use indexmap::IndexMap;
use serde::{Deserialize, Serialize};

use super::{ColumnLineage, Input, NodeLineage};

/// A planned column as stored: name, Arrow type as displayed, nullable.
pub type StoredField = (String, String, bool);

/// What planning one model gave, as read back from the cache.
#[derive(Debug, Deserialize)]
pub struct Entry {
    pub key: String,
    /// The planned output schema; empty when the model did not plan.
    #[serde(default)]
    pub schema: Vec<StoredField>,
    pub columns: IndexMap<String, ColumnLineage>,
    #[serde(default)]
    pub dataset: Vec<Input>,
    #[serde(default)]
    pub unavailable: Option<String>,
}

/// An entry as written: the key and schema, the rest borrowed from the
/// build's lineage (nothing is held twice).
#[derive(Serialize)]
struct EntryRef<'a> {
    key: &'a str,
    schema: &'a [StoredField],
    columns: &'a IndexMap<String, ColumnLineage>,
    #[serde(skip_serializing_if = "<[Input]>::is_empty")]
    dataset: &'a [Input],
    #[serde(skip_serializing_if = "Option::is_none")]
    unavailable: &'a Option<String>,
}

/// A planned schema as the cache stores it.
pub fn schema_of(s: &Schema) -> Vec<StoredField> {
    s.fields().iter().map(|f| (f.name().clone(), f.data_type().to_string(), f.is_nullable())).collect()
}

/// A stored schema back as Arrow's, if every type reads back exactly as
/// written (else the model is planned again).
pub fn arrow_schema(schema: &[StoredField]) -> Option<Schema> {
    let fields = schema
        .iter()
        .map(|(name, ty, nullable)| {
            let t: DataType = ty.parse().ok()?;
            (t.to_string() == *ty).then(|| Field::new(name, t, *nullable))
        })
        .collect::<Option<Vec<Field>>>()?;
    Some(Schema::new(fields))
}

#[derive(Deserialize)]
struct File {
    version: String,
    entries: HashMap<String, Entry>,
}

#[derive(Serialize)]
struct FileRef<'a> {
    version: &'a str,
    entries: IndexMap<&'a str, EntryRef<'a>>,
}

pub struct Cache {
    path: Option<PathBuf>,
    old: HashMap<String, Entry>,
    /// Per model of this build: its key and planned schema.
    new: HashMap<String, (String, Vec<StoredField>)>,
    planned: usize,
}

impl Cache {
    /// The cache in `target_dir` (`None`: no cache, every model is planned).
    pub fn open(target_dir: Option<&Path>) -> Cache {
        let path = target_dir.map(|d| d.join("lineage_cache.json"));
        let old = path
            .as_deref()
            .and_then(|p| std::fs::read(p).ok())
            .and_then(|b| serde_json::from_slice::<File>(&b).ok())
            .filter(|f| f.version == env!("CARGO_PKG_VERSION"))
            .map(|f| f.entries)
            .unwrap_or_default();
        Cache { path, old, new: HashMap::new(), planned: 0 }
    }

    /// Takes the cached entry of `uid` out if its key is `key`.
    pub fn take(&mut self, uid: &str, key: &str) -> Option<Entry> {
        if self.old.get(uid).is_some_and(|e| e.key == key) { self.old.remove(uid) } else { None }
    }

    /// Records `uid`'s key and planned schema; `planned`: not a cache hit.
    pub fn put(&mut self, uid: String, key: String, schema: Vec<StoredField>, planned: bool) {
        self.planned += usize::from(planned);
        self.new.insert(uid, (key, schema));
    }

    pub fn planned(&self) -> usize {
        self.planned
    }

    /// Writes the entries of this build, their lineage from `nodes`; only
    /// if some model was planned or some entry went away.
    pub fn save(self, nodes: &IndexMap<String, NodeLineage>) {
        let Some(path) = self.path else { return };
        if self.planned == 0 && self.old.is_empty() {
            return;
        }
        let entries = nodes
            .iter()
            .filter_map(|(uid, nl)| {
                let (key, schema) = self.new.get(uid)?;
                Some((uid.as_str(), EntryRef { key, schema, columns: &nl.columns, dataset: &nl.dataset, unavailable: &nl.unavailable }))
            })
            .collect();
        let file = FileRef { version: env!("CARGO_PKG_VERSION"), entries };
        // A cache that cannot be written only costs the next build time.
        let written = serde_json::to_vec(&file).map_err(std::io::Error::other).and_then(|bytes| {
            if let Some(dir) = path.parent() {
                std::fs::create_dir_all(dir)?;
            }
            crate::docs::write_atomic(&path, &bytes)
        });
        if let Err(e) = written {
            tracing::debug!(path = %path.display(), error = %e, "lineage cache not written");
        }
    }
}

/// What a model's key hashes of one parent.
pub enum Parent<'a> {
    /// A model parent: its own key (which covers its SQL and its parents).
    Key(&'a str),
    /// A seed or source (or a model without a key): its lineage.
    Lineage(&'a NodeLineage),
    /// Not in the lineage (disabled, or not a relation).
    Missing,
}

/// The key of a model: see the module docs.
pub fn key<'a>(sql: &str, relation: &str, ephemeral: bool, parents: impl Iterator<Item = (&'a str, Parent<'a>)>) -> String {
    let mut h = std::collections::hash_map::DefaultHasher::new();
    env!("CARGO_PKG_VERSION").hash(&mut h);
    sql.hash(&mut h);
    relation.hash(&mut h);
    ephemeral.hash(&mut h);
    for (uid, p) in parents {
        uid.hash(&mut h);
        match p {
            Parent::Key(k) => (0u8, k).hash(&mut h),
            Parent::Lineage(p) => {
                1u8.hash(&mut h);
                p.relation.hash(&mut h);
                p.unavailable.is_some().hash(&mut h);
                for (name, c) in &p.columns {
                    (name, &c.data_type).hash(&mut h);
                }
            }
            Parent::Missing => 2u8.hash(&mut h),
        }
    }
    format!("{:016x}", h.finish())
}
