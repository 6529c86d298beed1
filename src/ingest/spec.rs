//! The `ingest:` declaration of a source table and its validation.
//!
//! Ingestion is declared next to the dbt source that reads the bronze data,
//! in the table's `meta` (or `config`):
//!
//! ```yaml
//! sources:
//!   - name: raw
//!     tables:
//!       - name: orders
//!         meta:
//!           external_location: "bronze/postgres/orders/*/orders.parquet"
//!           ingest:
//!             from: postgres          # or: files
//!             table: public.orders    # or: query: "select ..."
//!             mode: incremental       # full (default) | incremental
//!             watermark_column: updated_at
//!             lookback: 10 minutes    # optional (an integer for integer watermarks)
//!             schema_policy: evolve   # evolve (default) | freeze
//! ```
//!
//! The bronze file an extract writes is the source's `external_location`
//! with its `*` folder replaced by the extract date, so `dp ingest` followed
//! by `dp build` reads what was ingested. [`validate_project`] runs when the
//! project loads (`dp parse` and every other command) and names the YAML
//! file and line of a bad key.

use serde_json::Value;

use crate::config::PostgresConfig;
use crate::fs::FileSystem;
use crate::project::load::Project;
use crate::project::nodes::{Node, ResourceType};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mode {
    Full,
    Incremental,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SchemaPolicy {
    Evolve,
    Freeze,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum OnError {
    Fail,
    Skip,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Encoding {
    Auto,
    Utf8,
    Latin1,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FileFormat {
    Csv,
    Json,
    Parquet,
}

/// Where a PostgreSQL extract reads.
#[derive(Debug, Clone)]
pub enum PgRelation {
    /// `schema.table` or `table`.
    Table(Option<String>, String),
    Query(String),
}

#[derive(Debug, Clone)]
pub struct PgSpec {
    pub relation: PgRelation,
    pub watermark_column: Option<String>,
    /// An interval (`10 minutes`) or an integer, subtracted from the stored watermark.
    pub lookback: Option<String>,
    /// Overrides of the target's `[postgres]` settings (same keys).
    pub connection: Option<PostgresConfig>,
}

#[derive(Debug, Clone)]
pub struct FilesSpec {
    /// A local folder, a glob, or an `s3://bucket/prefix` (relative paths
    /// resolve against the project's source root).
    pub path: String,
    /// `None`: from each file's extension.
    pub format: Option<FileFormat>,
    pub delimiter: u8,
    pub header: bool,
    pub encoding: Encoding,
    pub on_error: OnError,
    pub column_types: indexmap::IndexMap<String, String>,
}

#[derive(Debug, Clone)]
pub enum Origin {
    Postgres(PgSpec),
    Files(FilesSpec),
}

/// One source table's ingestion.
#[derive(Debug, Clone)]
pub struct IngestSpec {
    /// `raw.orders`.
    pub source_name: String,
    pub unique_id: String,
    pub from: Origin,
    pub mode: Mode,
    pub schema_policy: SchemaPolicy,
    /// The source's location as written (`bronze/postgres/orders/*/orders.parquet`).
    pub location: String,
}

/// A bad `ingest:` block, with the YAML file and line.
#[derive(Debug, thiserror::Error)]
#[error("{file}:{line}: source {source_name}: ingest: {message}\n  hint: {hint}")]
pub struct SpecError {
    pub file: String,
    pub line: usize,
    pub source_name: String,
    pub message: String,
    pub hint: String,
}

const POSTGRES_KEYS: &[&str] = &["from", "table", "query", "mode", "watermark_column", "lookback", "schema_policy", "connection"];
const FILES_KEYS: &[&str] = &["from", "path", "format", "delimiter", "header", "encoding", "on_error", "column_types", "schema_policy"];
const CONNECTION_KEYS: &[&str] = &["host", "port", "dbname", "user", "password_env", "sslmode", "retries", "retry_backoff_ms", "connect_timeout_s"];

/// The raw `ingest:` block of a source node (`config.ingest`, else `meta.ingest`).
pub fn block(node: &Node) -> Option<&Value> {
    node.config.get("ingest").or_else(|| node.source.as_ref().and_then(|s| s.meta.get("ingest")))
}

/// The ingestion declared on every source of the project; the first bad
/// block is an error naming its file and line.
pub fn validate_project(project: &Project, fs: &dyn FileSystem) -> Result<Vec<IngestSpec>, SpecError> {
    let mut out = vec![];
    let mut texts: std::collections::HashMap<&str, String> = Default::default();
    for node in project.nodes.values().filter(|n| n.resource_type == ResourceType::Source) {
        if block(node).is_some() {
            let text = texts.entry(node.original_file_path.as_str()).or_insert_with(|| fs.read_to_string(&node.original_file_path).unwrap_or_default());
            out.push(parse(node, text)?);
        }
    }
    Ok(out)
}

/// Reads one source's block; `yaml` is the text of its file (for lines).
pub fn parse(node: &Node, yaml: &str) -> Result<IngestSpec, SpecError> {
    let source_name = node.source.as_ref().map(|s| format!("{}.{}", s.source_name, node.name)).unwrap_or_else(|| node.name.clone());
    let err = |key: Option<&str>, message: String, hint: &str| SpecError {
        file: node.original_file_path.clone(),
        line: line_of(yaml, node.line.unwrap_or(1), key),
        source_name: source_name.clone(),
        message,
        hint: hint.to_string(),
    };
    let Some(Value::Object(b)) = block(node) else {
        return Err(err(None, "must be a mapping (from: postgres or from: files, ...)".into(), "see the README's \"Ingestion\" section for an example"));
    };
    let from = match b.get("from").and_then(Value::as_str) {
        Some("postgres") => "postgres",
        Some("files") => "files",
        Some(other) => return Err(err(Some("from"), format!("from '{other}' is not postgres or files"), "write from: postgres or from: files")),
        None => return Err(err(None, "the block has no `from:` key".into(), "write from: postgres or from: files")),
    };
    let keys = if from == "postgres" { POSTGRES_KEYS } else { FILES_KEYS };
    for k in b.keys() {
        if !keys.contains(&k.as_str()) {
            let near =
                keys.iter().max_by(|a, b| strsim::jaro_winkler(k, a).total_cmp(&strsim::jaro_winkler(k, b))).filter(|c| strsim::jaro_winkler(k, c) > 0.8);
            let hint = match near {
                Some(c) => format!("did you mean `{c}`? keys for from: {from} are {}", keys.join(", ")),
                None => format!("keys for from: {from} are {}", keys.join(", ")),
            };
            return Err(err(Some(k), format!("unknown key `{k}`"), &hint));
        }
    }
    let s = |k: &str| -> Result<Option<String>, SpecError> {
        match b.get(k) {
            None | Some(Value::Null) => Ok(None),
            Some(Value::String(v)) => Ok(Some(v.clone())),
            Some(Value::Number(n)) => Ok(Some(n.to_string())),
            Some(_) => Err(err(Some(k), format!("`{k}` must be a string"), "quote the value")),
        }
    };
    let mode = match s("mode")?.as_deref() {
        None | Some("full") => Mode::Full,
        Some("incremental") => Mode::Incremental,
        Some(other) => return Err(err(Some("mode"), format!("mode '{other}' is not full or incremental"), "write mode: full or mode: incremental")),
    };
    let schema_policy = match s("schema_policy")?.as_deref() {
        None | Some("evolve") => SchemaPolicy::Evolve,
        Some("freeze") => SchemaPolicy::Freeze,
        Some(other) => {
            return Err(err(Some("schema_policy"), format!("schema_policy '{other}' is not evolve or freeze"), "write schema_policy: evolve or freeze"));
        }
    };
    let Some(location) = node.source.as_ref().and_then(|s| s.location.clone()) else {
        return Err(err(
            None,
            "the source has no external_location, so there is nowhere to write".into(),
            "add meta.external_location, e.g. bronze/postgres/orders/*/orders.parquet",
        ));
    };
    check_location(&location)
        .map_err(|m| err(Some("external_location"), m, "ingestion writes zstd Parquet into a dated folder: write the location as <prefix>/*/<name>.parquet"))?;
    let from = if from == "postgres" {
        let relation = match (s("table")?, s("query")?) {
            (Some(t), None) => match t.split_once('.') {
                Some((schema, table)) => PgRelation::Table(Some(schema.to_string()), table.to_string()),
                None => PgRelation::Table(None, t),
            },
            (None, Some(q)) => PgRelation::Query(q),
            (Some(_), Some(_)) => return Err(err(Some("query"), "give `table` or `query`, not both".into(), "keep one of them")),
            (None, None) => return Err(err(None, "from: postgres needs `table` (schema.table) or `query`".into(), "add table: public.orders")),
        };
        let watermark_column = s("watermark_column")?;
        if mode == Mode::Incremental && watermark_column.is_none() {
            return Err(err(
                Some("mode"),
                "mode: incremental needs a watermark_column".into(),
                "add watermark_column: <a timestamp, date or integer column that grows when rows change>",
            ));
        }
        if mode == Mode::Full && b.contains_key("lookback") {
            return Err(err(Some("lookback"), "lookback applies to mode: incremental only".into(), "remove lookback or set mode: incremental"));
        }
        let connection = match b.get("connection") {
            None | Some(Value::Null) => None,
            Some(Value::Object(c)) => {
                if let Some(k) = c.keys().find(|k| !CONNECTION_KEYS.contains(&k.as_str())) {
                    let hint = if k == "password" {
                        "passwords never go in YAML: set password_env to the name of the variable holding it".to_string()
                    } else {
                        format!("connection keys are {}", CONNECTION_KEYS.join(", "))
                    };
                    return Err(err(Some(k), format!("unknown connection key `{k}`"), &hint));
                }
                Some(
                    serde_json::from_value::<PostgresConfig>(Value::Object(c.clone()))
                        .map_err(|e| err(Some("connection"), format!("connection: {e}"), "see [postgres] in the README"))?,
                )
            }
            Some(_) => return Err(err(Some("connection"), "`connection` must be a mapping".into(), "write connection: {host: ..., dbname: ...}")),
        };
        Origin::Postgres(PgSpec { relation, watermark_column, lookback: s("lookback")?, connection })
    } else {
        if b.contains_key("mode") && mode == Mode::Incremental {
            return Err(err(Some("mode"), "mode does not apply to from: files (each new file lands once, by name, size and checksum)".into(), "remove mode"));
        }
        let Some(path) = s("path")? else {
            return Err(err(None, "from: files needs `path` (a folder, a glob or an s3:// prefix)".into(), "add path: landing/sales/"));
        };
        let format = match s("format")?.map(|f| f.to_ascii_lowercase()).as_deref() {
            None => None,
            Some("csv") => Some(FileFormat::Csv),
            Some("json" | "ndjson" | "jsonl") => Some(FileFormat::Json),
            Some("parquet") => Some(FileFormat::Parquet),
            Some(other) => {
                return Err(err(Some("format"), format!("format '{other}' is not csv, json, ndjson or parquet"), "write one of csv, json, ndjson, parquet"));
            }
        };
        let delimiter = match s("delimiter")?.as_deref() {
            None => b',',
            Some("\\t") | Some("\t") => b'\t',
            Some(d) if d.len() == 1 => d.as_bytes()[0],
            Some(d) => return Err(err(Some("delimiter"), format!("delimiter '{d}' is not one ASCII character"), "write delimiter: \";\" (or \"\\t\")")),
        };
        let header = match b.get("header") {
            None => true,
            Some(Value::Bool(h)) => *h,
            Some(_) => return Err(err(Some("header"), "`header` must be true or false".into(), "write header: false for files without a header row")),
        };
        let encoding = match s("encoding")?.map(|e| e.to_ascii_lowercase()).as_deref() {
            None | Some("auto") => Encoding::Auto,
            Some("utf-8" | "utf8") => Encoding::Utf8,
            Some("latin-1" | "latin1" | "iso-8859-1") => Encoding::Latin1,
            Some(other) => return Err(err(Some("encoding"), format!("encoding '{other}' is not auto, utf-8 or latin-1"), "write encoding: auto")),
        };
        let on_error = match s("on_error")?.as_deref() {
            None | Some("fail") => OnError::Fail,
            Some("skip") => OnError::Skip,
            Some(other) => return Err(err(Some("on_error"), format!("on_error '{other}' is not fail or skip"), "write on_error: fail or on_error: skip")),
        };
        let mut column_types = indexmap::IndexMap::new();
        match b.get("column_types") {
            None | Some(Value::Null) => {}
            Some(Value::Object(m)) => {
                for (k, v) in m {
                    let Some(t) = v.as_str() else {
                        return Err(err(Some("column_types"), format!("column_types.{k} must be a type name"), "e.g. column_types: {amount: decimal(12,2)}"));
                    };
                    if let Err(e) = crate::seed::infer::sql_type_to_arrow(t) {
                        return Err(err(Some(k), format!("column_types.{k}: {e}"), "use varchar, bigint, double, decimal(p,s), boolean, date, timestamp"));
                    }
                    column_types.insert(k.clone(), t.to_string());
                }
            }
            Some(_) => return Err(err(Some("column_types"), "`column_types` must be a mapping".into(), "e.g. column_types: {amount: decimal(12,2)}")),
        }
        Origin::Files(FilesSpec { path, format, delimiter, header, encoding, on_error, column_types })
    };
    Ok(IngestSpec { source_name, unique_id: node.unique_id.clone(), from, mode, schema_policy, location })
}

/// The location must end in `<folder glob>/<name>.parquet`: one `*` folder
/// (where the extract date goes) and a Parquet file name.
fn check_location(loc: &str) -> Result<(), String> {
    let parts: Vec<&str> = loc.split('/').collect();
    let Some((file, dirs)) = parts.split_last() else { return Err("external_location is empty".into()) };
    if !file.to_ascii_lowercase().ends_with(".parquet") {
        return Err(format!("external_location '{loc}' does not read Parquet files"));
    }
    let globbed: Vec<&&str> = dirs.iter().filter(|d| d.contains(['*', '?', '['])).collect();
    if globbed.len() != 1 || *globbed[0] != "*" || dirs.last() != Some(&"*") {
        return Err(format!("external_location '{loc}' must have exactly one `*` folder, right before the file name"));
    }
    if file.contains(['?', '[']) || file.matches('*').count() > 1 {
        return Err(format!("external_location '{loc}': the file name may hold at most one `*`"));
    }
    Ok(())
}

/// The line of `key` inside the `ingest:` block that follows the table's
/// line (falls back to the block's line, then the table's).
fn line_of(yaml: &str, table_line: usize, key: Option<&str>) -> usize {
    let lines: Vec<&str> = yaml.lines().collect();
    let start = table_line.saturating_sub(1);
    let Some(block) = (start..lines.len()).find(|&i| lines[i].trim_start().starts_with("ingest:")) else { return table_line };
    if key == Some("external_location") {
        return (start..lines.len()).find(|&i| lines[i].contains("external_location")).map(|i| i + 1).unwrap_or(table_line);
    }
    let Some(key) = key else { return block + 1 };
    let indent = |l: &str| l.len() - l.trim_start().len();
    let base = indent(lines[block]);
    let inline = lines[block].trim_start().trim_start_matches("ingest:").trim();
    if !inline.is_empty() {
        return block + 1;
    }
    for (i, l) in lines.iter().enumerate().skip(block + 1) {
        if !l.trim().is_empty() && indent(l) <= base {
            break;
        }
        let t = l.trim_start();
        if t.starts_with(&format!("{key}:")) || t.contains(&format!(" {key}:")) || t.contains(&format!("{{{key}:")) {
            return i + 1;
        }
    }
    block + 1
}

/// `meta`/`config` helper for tests that build nodes by hand.
#[cfg(test)]
pub fn ingest_meta(block: Value) -> serde_json::Map<String, Value> {
    let mut m = serde_json::Map::new();
    m.insert("ingest".into(), block);
    m
}

#[cfg(test)]
mod tests {
    use super::*;

    const YAML: &str = "version: 2\nsources:\n  - name: raw\n    tables:\n      - name: orders\n        meta:\n          external_location: \"bronze/pg/orders/*/orders.parquet\"\n          ingest:\n            from: postgres\n            table: public.orders\n            mode: sometimes\n";

    fn node(block: Value, loc: &str) -> Node {
        let mut n = Node::new(ResourceType::Source, "p", "raw.orders", "models/_sources.yml");
        n.name = "orders".into();
        n.line = Some(5);
        n.source =
            Some(crate::project::nodes::SourceInfo { source_name: "raw".into(), meta: ingest_meta(block), location: Some(loc.into()), ..Default::default() });
        n
    }

    #[test]
    fn bad_mode_names_file_and_line() {
        let n = node(serde_json::json!({"from": "postgres", "table": "public.orders", "mode": "sometimes"}), "bronze/pg/orders/*/orders.parquet");
        let e = parse(&n, YAML).unwrap_err();
        assert_eq!(
            e.to_string(),
            "models/_sources.yml:11: source raw.orders: ingest: mode 'sometimes' is not full or incremental\n  hint: write mode: full or mode: incremental"
        );
    }

    #[test]
    fn unknown_key_suggests_the_near_one() {
        let n = node(serde_json::json!({"from": "postgres", "table": "t", "watermark_colum": "x"}), "bronze/pg/orders/*/orders.parquet");
        let e = parse(&n, YAML).unwrap_err();
        assert!(e.to_string().contains("unknown key `watermark_colum`\n  hint: did you mean `watermark_column`?"), "{e}");
    }

    #[test]
    fn incremental_needs_a_watermark_column() {
        let n = node(serde_json::json!({"from": "postgres", "table": "t", "mode": "incremental"}), "bronze/pg/orders/*/orders.parquet");
        assert!(parse(&n, YAML).unwrap_err().to_string().contains("mode: incremental needs a watermark_column"));
    }

    #[test]
    fn locations_need_one_date_folder_and_parquet() {
        assert!(check_location("bronze/pg/orders/*/orders.parquet").is_ok());
        assert!(check_location("bronze/pg/orders/*/orders-*.parquet").is_ok());
        assert!(check_location("bronze/files/sales/*/transactions.csv").is_err());
        assert!(check_location("bronze/pg/orders/orders.parquet").is_err());
        assert!(check_location("bronze/*/orders/*/orders.parquet").is_err());
    }
}
