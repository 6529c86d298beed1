//! The typed nodes of a loaded project: what the graph, the compiler, the
//! runner and the manifest all work on.

use indexmap::IndexMap;
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ResourceType {
    Model,
    Seed,
    Source,
    Snapshot,
    Test,
    UnitTest,
    Analysis,
    Exposure,
    Metric,
    SemanticModel,
    SavedQuery,
}

impl ResourceType {
    pub fn as_str(self) -> &'static str {
        match self {
            ResourceType::Model => "model",
            ResourceType::Seed => "seed",
            ResourceType::Source => "source",
            ResourceType::Snapshot => "snapshot",
            ResourceType::Test => "test",
            ResourceType::UnitTest => "unit_test",
            ResourceType::Analysis => "analysis",
            ResourceType::Exposure => "exposure",
            ResourceType::Metric => "metric",
            ResourceType::SemanticModel => "semantic_model",
            ResourceType::SavedQuery => "saved_query",
        }
    }

    pub fn parse(s: &str) -> Option<ResourceType> {
        Some(match s {
            "model" => ResourceType::Model,
            "seed" => ResourceType::Seed,
            "source" => ResourceType::Source,
            "snapshot" => ResourceType::Snapshot,
            "test" | "data_test" => ResourceType::Test,
            "unit_test" => ResourceType::UnitTest,
            "analysis" => ResourceType::Analysis,
            "exposure" => ResourceType::Exposure,
            "metric" => ResourceType::Metric,
            "semantic_model" => ResourceType::SemanticModel,
            "saved_query" => ResourceType::SavedQuery,
            _ => return None,
        })
    }

    /// Resources that run SQL and produce (or check) a relation.
    pub fn is_executable(self) -> bool {
        matches!(self, ResourceType::Model | ResourceType::Seed | ResourceType::Snapshot | ResourceType::Test | ResourceType::UnitTest)
    }
}

impl std::fmt::Display for ResourceType {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

pub use super::shared_map::SharedMap;
pub use crate::jinja::refs::RefCall;

/// How a node is built (its `materialized` config).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Materialization {
    Table,
    View,
    Incremental,
    Ephemeral,
    Seed,
    Test,
    Snapshot,
    /// A value dp does not know; the loader rejects it on enabled nodes.
    Unknown,
}

impl Materialization {
    /// The materializations a model may have.
    pub const FOR_MODELS: [Materialization; 4] = [Materialization::Table, Materialization::View, Materialization::Incremental, Materialization::Ephemeral];

    pub fn parse(s: &str) -> Materialization {
        match s.to_ascii_lowercase().as_str() {
            "table" => Materialization::Table,
            "view" => Materialization::View,
            "incremental" => Materialization::Incremental,
            "ephemeral" => Materialization::Ephemeral,
            "seed" => Materialization::Seed,
            "test" | "unit" => Materialization::Test,
            "snapshot" => Materialization::Snapshot,
            _ => Materialization::Unknown,
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Materialization::Table => "table",
            Materialization::View => "view",
            Materialization::Incremental => "incremental",
            Materialization::Ephemeral => "ephemeral",
            Materialization::Seed => "seed",
            Materialization::Test => "test",
            Materialization::Snapshot => "snapshot",
            Materialization::Unknown => "unknown",
        }
    }
}

impl std::fmt::Display for Materialization {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A column documented in YAML.
#[derive(Clone, Debug, Default, Serialize, Deserialize)]
pub struct Column {
    pub name: String,
    pub description: String,
    pub data_type: Option<String>,
    #[serde(with = "crate::util::binval::map")]
    pub meta: Map<String, Value>,
    pub tags: Vec<String>,
    pub quote: Option<bool>,
    /// As dbt writes them: every field present (`name`, `expression`, ...).
    #[serde(with = "crate::util::binval")]
    pub constraints: Vec<Value>,
    /// A time spine column's granularity (`day`, ...).
    #[serde(default)]
    pub granularity: Option<String>,
}

/// What a generic test was generated from.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct TestMetadata {
    pub name: String,
    #[serde(with = "crate::util::binval::map")]
    pub kwargs: Map<String, Value>,
    pub namespace: Option<String>,
}

/// Source-only fields.
#[derive(Clone, Debug, Default, Serialize, Deserialize)]
pub struct SourceInfo {
    pub source_name: String,
    pub source_description: String,
    pub identifier: String,
    pub loaded_at_field: Option<String>,
    #[serde(with = "crate::util::binval")]
    pub freshness: Option<Value>,
    #[serde(with = "crate::util::binval::map")]
    pub meta: Map<String, Value>,
    #[serde(with = "crate::util::binval::map")]
    pub source_meta: Map<String, Value>,
    /// Where the source's files are (project-relative path, glob or URL).
    pub location: Option<String>,
    /// `parquet`, `csv` or `json` (inferred from the location when absent).
    pub format: Option<String>,
    /// Extra reader options (`delimiter`, `has_header`, ...).
    #[serde(with = "crate::util::binval::map")]
    pub options: Map<String, Value>,
}

/// The project's nodes by unique id, in project order.
pub type NodeMap = crate::util::FastIndexMap<String, Node>;

/// A node of the project: model, seed, source, snapshot, test, unit test,
/// analysis, exposure, ... (one shape, optional parts by kind).
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct Node {
    pub unique_id: String,
    pub resource_type: ResourceType,
    pub package_name: String,
    pub name: String,
    /// Path relative to the resource folder, e.g. `staging/stg_orders.sql`.
    pub path: String,
    /// Path relative to the project root, e.g. `models/staging/stg_orders.sql`.
    pub original_file_path: String,
    /// The YAML file that described this node, if any.
    pub patch_path: Option<String>,
    pub fqn: Vec<String>,
    pub raw_code: String,
    pub description: String,
    pub columns: IndexMap<String, Column>,
    /// Resolved config (tree < YAML < in-file `config()`), shared between
    /// nodes that hold the same one.
    pub config: SharedMap,
    pub refs: Vec<RefCall>,
    pub sources: Vec<(String, String)>,
    /// Unique ids this node depends on (filled by the graph stage).
    pub depends_on: Vec<String>,
    pub database: String,
    pub schema: String,
    pub alias: String,
    pub version: Option<String>,
    pub test_metadata: Option<TestMetadata>,
    pub column_name: Option<String>,
    /// The node a generic test is attached to.
    pub attached_node: Option<String>,
    pub source: Option<SourceInfo>,
    /// Anything else kept verbatim for the manifest (exposures, unit
    /// tests...), shared like `config`.
    pub extra: SharedMap,
    /// 1-based line in `patch_path` (or the file) where the node is defined.
    pub line: Option<usize>,
}

impl Node {
    pub fn new(resource_type: ResourceType, package: &str, name: &str, file: &str) -> Node {
        Node {
            unique_id: format!("{}.{}.{}", resource_type.as_str(), package, name),
            resource_type,
            package_name: package.to_string(),
            name: name.to_string(),
            path: String::new(),
            original_file_path: file.to_string(),
            patch_path: None,
            fqn: vec![],
            raw_code: String::new(),
            description: String::new(),
            columns: IndexMap::new(),
            config: SharedMap::new(),
            refs: vec![],
            sources: vec![],
            depends_on: vec![],
            database: String::new(),
            schema: String::new(),
            alias: name.to_string(),
            version: None,
            test_metadata: None,
            column_name: None,
            attached_node: None,
            source: None,
            extra: SharedMap::new(),
            line: None,
        }
    }

    pub fn config_str(&self, key: &str) -> Option<&str> {
        self.config.get(key).and_then(Value::as_str)
    }

    /// The `materialized` config (dbt's default for the resource type when
    /// unset). The loader rejects unknown values on enabled nodes.
    pub fn materialized(&self) -> Materialization {
        match self.config_str("materialized") {
            Some(m) => Materialization::parse(m),
            None => match self.resource_type {
                ResourceType::Seed => Materialization::Seed,
                ResourceType::Test | ResourceType::UnitTest => Materialization::Test,
                ResourceType::Snapshot => Materialization::Snapshot,
                _ => Materialization::View,
            },
        }
    }

    pub fn enabled(&self) -> bool {
        match self.config.get("enabled") {
            Some(Value::Bool(b)) => *b,
            Some(Value::String(s)) => !matches!(s.trim().to_ascii_lowercase().as_str(), "false" | "0" | "no" | ""),
            _ => true,
        }
    }

    pub fn tags(&self) -> Vec<String> {
        match self.config.get("tags") {
            Some(Value::Array(a)) => a.iter().filter_map(|v| v.as_str().map(String::from)).collect(),
            Some(Value::String(s)) => vec![s.clone()],
            _ => vec![],
        }
    }

    /// `schema.alias`, quoted where needed: the name DataFusion resolves
    /// (and dbt prints in its log lines).
    pub fn relation_name(&self) -> String {
        crate::util::ident::relation_name(&self.schema, &self.alias)
    }

    /// The node's relation as Jinja sees it (`this`, `ref()`, `source()`):
    /// a source quoted as its own `quoting:` says (over dbt-duckdb's
    /// default, not the project's, as in dbt 1.11), any other node as the
    /// project's `quoting:` says; the database rendered when it is the
    /// target's.
    pub fn jinja_relation(&self, settings: &crate::config::Settings) -> crate::jinja::Relation {
        let quoting = match self.resource_type {
            ResourceType::Source => crate::util::ident::Quoting::default().merged(self.extra.get("quoting")),
            _ => settings.quoting,
        };
        crate::jinja::Relation::for_node(&self.database, &self.schema, &self.alias, &settings.target.database, quoting)
    }

    /// The manifest's `relation_name`, as dbt renders it (`"dp"."main"."orders"`).
    pub fn dbt_relation_name(&self, settings: &crate::config::Settings) -> String {
        self.jinja_relation(settings).render_name()
    }
}

/// A macro (or generic test definition, stored as `test_<name>`).
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct Macro {
    pub unique_id: String,
    pub name: String,
    pub package_name: String,
    pub path: String,
    pub original_file_path: String,
    pub macro_sql: String,
    /// Argument names in order (defaults kept out).
    pub arguments: Vec<String>,
    pub description: String,
    /// 1-based line of the `{% macro %}` tag in its file.
    pub line: usize,
    /// The properties file that describes it, and the arguments it
    /// documents (`{name, type, description}`), if any.
    #[serde(default, with = "crate::util::binval")]
    pub patch: Option<(String, Vec<Value>)>,
}

/// A `{% docs name %}` block.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct DocBlock {
    pub unique_id: String,
    pub name: String,
    pub package_name: String,
    pub path: String,
    pub original_file_path: String,
    pub block_contents: String,
}

/// Orders model versions numerically where both are numbers, else as text.
pub fn compare_versions(a: &str, b: &str) -> std::cmp::Ordering {
    match (a.parse::<f64>(), b.parse::<f64>()) {
        (Ok(x), Ok(y)) => x.partial_cmp(&y).unwrap_or(std::cmp::Ordering::Equal),
        _ => a.cmp(b),
    }
}
