//! Lineage: column-level lineage of every model from DataFusion's logical
//! plans ([`plan`], [`build`]), stored as `target/lineage.json` and queried
//! by `dp lineage` ([`query`]); OpenLineage run events ([`openlineage`]);
//! tables and lineage pushed to OpenMetadata ([`openmetadata`]); the chain
//! past the models, across systems: ingestion sources, bronze objects,
//! published PostgreSQL tables and Superset datasets, charts and dashboards
//! ([`systems`]).

pub mod build;
pub mod cache;
pub mod openlineage;
pub mod openmetadata;
pub mod plan;
pub mod query;
pub mod systems;

use indexmap::IndexMap;
use serde::ser::SerializeStruct;
use serde::{Deserialize, Serialize};

/// OpenLineage's transformation subtypes; the first three are DIRECT, the
/// rest INDIRECT.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum Subtype {
    Identity,
    Transformation,
    Aggregation,
    Join,
    Filter,
    GroupBy,
    Sort,
    Window,
    Conditional,
}

impl Subtype {
    pub fn is_direct(self) -> bool {
        matches!(self, Subtype::Identity | Subtype::Transformation | Subtype::Aggregation)
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Subtype::Identity => "IDENTITY",
            Subtype::Transformation => "TRANSFORMATION",
            Subtype::Aggregation => "AGGREGATION",
            Subtype::Join => "JOIN",
            Subtype::Filter => "FILTER",
            Subtype::GroupBy => "GROUP_BY",
            Subtype::Sort => "SORT",
            Subtype::Window => "WINDOW",
            Subtype::Conditional => "CONDITIONAL",
        }
    }

    /// How an input reaches the output when `self` is how it reaches an
    /// intermediate column and `inner` how the input reaches that column:
    /// an indirect use at this level wins, then an indirect one below, else
    /// the stronger direct one (IDENTITY < TRANSFORMATION < AGGREGATION).
    pub fn compose(self, inner: Subtype) -> Subtype {
        if !self.is_direct() {
            self
        } else if !inner.is_direct() {
            inner
        } else {
            self.max(inner)
        }
    }

    /// A direct context strengthened to at least `to` (indirect stays).
    pub fn up(self, to: Subtype) -> Subtype {
        if self.is_direct() { self.max(to) } else { self }
    }

    /// An indirect use (`to`) unless the context is already indirect.
    pub fn indirect(self, to: Subtype) -> Subtype {
        if self.is_direct() { to } else { self }
    }
}

/// One upstream column of a column (or of the whole dataset).
#[derive(Clone, Debug, PartialEq, Eq, Deserialize)]
pub struct Input {
    /// The unique id of the model, seed or source.
    pub node: String,
    pub column: String,
    pub transformations: Vec<Transformation>,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Deserialize)]
pub struct Transformation {
    #[serde(rename = "type")]
    pub kind: Kind,
    pub subtype: Subtype,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "UPPERCASE")]
pub enum Kind {
    Direct,
    Indirect,
}

impl From<Subtype> for Transformation {
    fn from(s: Subtype) -> Transformation {
        Transformation { kind: if s.is_direct() { Kind::Direct } else { Kind::Indirect }, subtype: s }
    }
}

impl Serialize for Transformation {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        let mut st = s.serialize_struct("Transformation", 2)?;
        st.serialize_field("type", &self.kind)?;
        st.serialize_field("subtype", &self.subtype)?;
        st.end()
    }
}

impl Serialize for Input {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        let mut st = s.serialize_struct("Input", 3)?;
        st.serialize_field("node", &self.node)?;
        st.serialize_field("column", &self.column)?;
        st.serialize_field("transformations", &self.transformations)?;
        st.end()
    }
}

#[derive(Clone, Debug, Default, Serialize, Deserialize)]
pub struct ColumnLineage {
    /// The Arrow type DataFusion plans for it.
    #[serde(rename = "type")]
    pub data_type: String,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub inputs: Vec<Input>,
    /// Set when (part of) the column cannot be traced: says why.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub unknown: Option<String>,
}

/// The lineage of one node (model, seed or source).
#[derive(Clone, Debug, Default, Serialize, Deserialize)]
pub struct NodeLineage {
    pub resource_type: String,
    /// `schema.table` (empty for ephemeral models).
    pub relation: String,
    /// Table-level parents (always known, from ref/source).
    pub depends_on: Vec<String>,
    pub columns: IndexMap<String, ColumnLineage>,
    /// Columns that affect the whole output (joins, filters, grouping...).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub dataset: Vec<Input>,
    /// Set when the model's SQL could not be planned: "column lineage unavailable: <reason>".
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub unavailable: Option<String>,
    /// Sources: where the bronze files are.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub location: Option<String>,
    /// Where `dp run` / `dp publish` copies the table beyond the warehouse:
    /// `postgres:<schema>.<table>` (models with `publish = ["postgres"]`
    /// on a target with a `[postgres]` server).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub published: Option<String>,
    /// Nodes outside the warehouse (resource types `postgres_table`,
    /// `landing`, `bronze`, `superset_dataset`, `superset_chart`,
    /// `superset_dashboard`): which system and what it is called there.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub external: Option<External>,
}

/// A node of another system in the lineage graph (see [`systems`]).
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct External {
    /// `postgres`, `files`, `bronze` or `superset`.
    pub system: String,
    /// Its name in `dp lineage` and the docs: `postgres://host:port/db.schema.table`,
    /// `bronze:<location>`, `landing:<path>`, `dataset:<schema.table>`,
    /// `chart:<dashboard>/<chart>`, `dashboard:<title>`.
    pub name: String,
    /// Other names it answers to in `dp lineage` (e.g. `dashboard:<slug>`).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub aliases: Vec<String>,
    /// Where it lives, as a URI (`postgres://host:port/db.schema.table`,
    /// `file:///abs/path`, `s3://bucket/key`), for OpenLineage/OpenMetadata.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub uri: Option<String>,
    /// What it does: `ingest: incremental on updated_at`, `chart: line`, ...
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub detail: Option<String>,
    /// Bronze: the objects `dp ingest` wrote (from `dp_meta.ingestion_log`).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub objects: Vec<BronzeObject>,
}

/// One bronze object an ingestion run wrote.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct BronzeObject {
    pub key: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rows: Option<i64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub bytes: Option<i64>,
    pub ingested_at: String,
    pub run_id: String,
    /// Files: the landing file it came from.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub from: Option<String>,
}

/// `target/lineage.json`.
#[derive(Clone, Debug, Default, Serialize, Deserialize)]
pub struct Lineage {
    pub generated_at: String,
    pub nodes: IndexMap<String, NodeLineage>,
}

#[derive(Debug, thiserror::Error)]
pub enum LineageError {
    #[error("{path}: {message}\n  hint: run `dp docs generate` (or `dp lineage` without a column) to rebuild it")]
    Read { path: String, message: String },
    #[error("{0}")]
    NotFound(String),
    #[error("'{0}' is not a column name\n  hint: name a column as schema.model.column (e.g. marts.fct_orders.order_id), model.column or source.table.column")]
    BadName(String),
}

impl Lineage {
    pub fn read(path: &std::path::Path) -> Result<Lineage, LineageError> {
        let bytes = std::fs::read(path).map_err(|e| LineageError::Read { path: path.display().to_string(), message: e.to_string() })?;
        serde_json::from_slice(&bytes).map_err(|e| LineageError::Read { path: path.display().to_string(), message: e.to_string() })
    }
}

#[cfg(test)]
mod tests;
