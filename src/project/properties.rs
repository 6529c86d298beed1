//! YAML property files (`version: 2`): models, seeds, snapshots and
//! analyses patches, sources, macros docs, unit tests, exposures, groups,
//! metrics, semantic models and saved queries.

use serde::Deserialize;
use serde_json::{Map, Value};

#[derive(Debug, Deserialize, Default)]
pub struct PropertiesFile {
    #[serde(default)]
    pub models: Vec<NodePatch>,
    #[serde(default)]
    pub seeds: Vec<NodePatch>,
    #[serde(default)]
    pub snapshots: Vec<NodePatch>,
    #[serde(default)]
    pub analyses: Vec<NodePatch>,
    #[serde(default)]
    pub sources: Vec<SourceDef>,
    #[serde(default)]
    pub macros: Vec<MacroPatch>,
    #[serde(default)]
    pub unit_tests: Vec<Map<String, Value>>,
    #[serde(default)]
    pub exposures: Vec<Map<String, Value>>,
    #[serde(default)]
    pub groups: Vec<Map<String, Value>>,
    #[serde(default)]
    pub metrics: Vec<Map<String, Value>>,
    #[serde(default)]
    pub semantic_models: Vec<Map<String, Value>>,
    #[serde(default)]
    pub saved_queries: Vec<Map<String, Value>>,
}

#[derive(Debug, Deserialize, Default, Clone)]
pub struct NodePatch {
    pub name: String,
    #[serde(default)]
    pub description: Option<String>,
    #[serde(default)]
    pub config: Map<String, Value>,
    #[serde(default)]
    pub columns: Vec<ColumnDef>,
    #[serde(default)]
    pub data_tests: Vec<Value>,
    #[serde(default)]
    pub tests: Vec<Value>,
    #[serde(default)]
    pub meta: Map<String, Value>,
    /// Model versions (`versions: [{v: 1}, ...]`) and which one `ref` picks.
    #[serde(default)]
    pub versions: Vec<VersionDef>,
    #[serde(default)]
    pub latest_version: Option<Value>,
    /// A MetricFlow time spine (`time_spine: {standard_granularity_column: ...}`).
    #[serde(default)]
    pub time_spine: Option<Value>,
    /// A YAML-defined snapshot (dbt 1.9+): `ref('m')` or `source('s', 't')`.
    #[serde(default)]
    pub relation: Option<String>,
    /// When the model is to be retired (a date or timestamp).
    #[serde(default)]
    pub deprecation_date: Option<Value>,
}

/// One version of a versioned model: its file is `defined_in`, else
/// `<name>_v<v>`; its properties are the model's, overridden by its own.
#[derive(Debug, Deserialize, Default, Clone)]
pub struct VersionDef {
    pub v: Value,
    #[serde(default)]
    pub defined_in: Option<String>,
    #[serde(default)]
    pub description: Option<String>,
    /// This version's retirement date; the model's when unset.
    #[serde(default)]
    pub deprecation_date: Option<Value>,
    #[serde(default)]
    pub config: Map<String, Value>,
    /// The version's columns; `include`/`exclude` entries are not columns.
    #[serde(default)]
    pub columns: Vec<Value>,
    #[serde(default)]
    pub data_tests: Vec<Value>,
    #[serde(default)]
    pub tests: Vec<Value>,
}

impl VersionDef {
    /// `v` as text (`2`, `2.1`, `"beta"`).
    pub fn v_str(&self) -> String {
        match &self.v {
            Value::String(s) => s.clone(),
            other => other.to_string(),
        }
    }
}

#[derive(Debug, Deserialize, Default, Clone)]
pub struct ColumnDef {
    pub name: String,
    #[serde(default)]
    pub description: Option<String>,
    #[serde(default)]
    pub data_type: Option<String>,
    #[serde(default)]
    pub data_tests: Vec<Value>,
    #[serde(default)]
    pub tests: Vec<Value>,
    #[serde(default)]
    pub meta: Map<String, Value>,
    #[serde(default)]
    pub tags: Vec<String>,
    #[serde(default)]
    pub quote: Option<bool>,
    /// Column constraints (`not_null`, `unique`, `check`, ...), for contracts.
    #[serde(default)]
    pub constraints: Vec<Map<String, Value>>,
    /// A time spine column's granularity (`day`, ...).
    #[serde(default)]
    pub granularity: Option<String>,
}

impl ColumnDef {
    pub fn all_tests(&self) -> Vec<Value> {
        self.data_tests.iter().chain(self.tests.iter()).cloned().collect()
    }
}

impl NodePatch {
    pub fn all_tests(&self) -> Vec<Value> {
        self.data_tests.iter().chain(self.tests.iter()).cloned().collect()
    }
}

#[derive(Debug, Deserialize, Default, Clone)]
pub struct SourceDef {
    pub name: String,
    #[serde(default)]
    pub description: Option<String>,
    #[serde(default)]
    pub schema: Option<String>,
    #[serde(default)]
    pub database: Option<String>,
    #[serde(default)]
    pub loaded_at_field: Option<String>,
    /// `Some(Null)` for an explicit `freshness: null` (it turns freshness off).
    #[serde(default, deserialize_with = "explicit_null")]
    pub freshness: Option<Value>,
    #[serde(default)]
    pub meta: Map<String, Value>,
    #[serde(default)]
    pub config: Map<String, Value>,
    #[serde(default)]
    pub tags: Vec<String>,
    /// `quoting:` of the source's relations (`identifier: false`, ...).
    #[serde(default)]
    pub quoting: Option<Value>,
    #[serde(default)]
    pub tables: Vec<SourceTableDef>,
}

/// An optional value that keeps an explicit `null` (as `Some(Null)`).
fn explicit_null<'de, D: serde::Deserializer<'de>>(d: D) -> Result<Option<Value>, D::Error> {
    <Value as serde::Deserialize>::deserialize(d).map(Some)
}

#[derive(Debug, Deserialize, Default, Clone)]
pub struct SourceTableDef {
    pub name: String,
    #[serde(default)]
    pub description: Option<String>,
    #[serde(default)]
    pub identifier: Option<String>,
    #[serde(default)]
    pub loaded_at_field: Option<String>,
    /// `Some(Null)` for an explicit `freshness: null` (it turns freshness off).
    #[serde(default, deserialize_with = "explicit_null")]
    pub freshness: Option<Value>,
    #[serde(default)]
    pub meta: Map<String, Value>,
    #[serde(default)]
    pub config: Map<String, Value>,
    #[serde(default)]
    pub external: Option<Map<String, Value>>,
    #[serde(default)]
    pub tags: Vec<String>,
    /// `quoting:` of this table, over its source's.
    #[serde(default)]
    pub quoting: Option<Value>,
    #[serde(default)]
    pub columns: Vec<ColumnDef>,
    #[serde(default)]
    pub data_tests: Vec<Value>,
    #[serde(default)]
    pub tests: Vec<Value>,
}

#[derive(Debug, Deserialize, Default, Clone)]
pub struct MacroPatch {
    pub name: String,
    #[serde(default)]
    pub description: Option<String>,
    #[serde(default)]
    pub arguments: Vec<Value>,
}
