//! Publishing a node's Delta table into PostgreSQL, atomically.
//!
//! Which path a publish takes:
//! - **up to date**: `dp_meta.published` already records this Delta version
//!   for the table, and the table exists: nothing to do.
//! - **incremental**: the model is `incremental` (append, or merge or
//!   delete+insert with a unique key, without incremental predicates), the
//!   run was incremental, the table is not partitioned,
//!   PostgreSQL holds an earlier version of it with the same columns, and the
//!   new version kept some of that version's files. The rows of the files
//!   added since the published version go through COPY into a temporary
//!   table and are applied with `INSERT`, `MERGE` on the unique key, or
//!   `DELETE` of the new rows' keys and `INSERT`, in one transaction.
//!   (Files rewritten by deltalake's MERGE carry unchanged rows too;
//!   merging them again changes nothing. A rewrite of every file is
//!   published by a swap.)
//! - **swap** (everything else, including `table` models, seeds and views,
//!   which are published as tables): the whole table is copied into a new
//!   table, indexes are built on it, and inside the same transaction the old
//!   table is dropped (`CASCADE`, as dbt-postgres does) and the new one
//!   renamed into place. Readers see the old rows or the new ones, never an
//!   empty or partial table; a failure or a kill rolls everything back.
//!
//! After a swap, grants from the `grants` config (`{select: [reporter]}`)
//! are applied and the model's and columns' descriptions become comments.
//! `dp_meta.published` (schema, table, Delta version, rows, time) is updated
//! in the same transaction, which is how a later `dp run` or `dp publish`
//! knows what PostgreSQL is missing after a failed publish.

use anyhow::{Context as _, bail};
use datafusion::arrow::datatypes::{Schema, SchemaRef};
use datafusion::prelude::DataFrame;
use std::collections::HashSet;
use std::sync::Arc;
use tokio::sync::OnceCell;

use super::connect::{PgClient, PgPool, pg_err};
use super::{check_identifier, copy, ident, literal, qualified, types};
use crate::engine::Engine;
use crate::project::nodes::{Materialization, Node};

/// What a publish did, for the node's output line.
#[derive(Debug, Clone)]
pub enum Published {
    /// PostgreSQL already held this Delta version.
    UpToDate,
    /// Rows copied: `verb` is replaced, appended, merged or upserted (delete+insert).
    Copied { verb: &'static str, rows: u64 },
}

impl std::fmt::Display for Published {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Published::UpToDate => write!(f, "postgres up to date"),
            Published::Copied { verb, rows } => write!(f, "postgres {verb} {} rows", crate::util::fmt_thousands(*rows)),
        }
    }
}

/// Publishes nodes into one PostgreSQL database.
pub struct Publisher {
    pub pool: PgPool,
    meta: OnceCell<()>,
}

/// Whether a node's config asks for publishing to PostgreSQL.
pub fn wants_postgres(node: &Node) -> bool {
    match node.config.get("publish") {
        Some(serde_json::Value::Array(a)) => a.iter().any(|v| v.as_str() == Some("postgres")),
        Some(serde_json::Value::String(s)) => s == "postgres",
        _ => false,
    }
}

impl Publisher {
    pub fn new(pool: PgPool) -> Publisher {
        Publisher { pool, meta: OnceCell::new() }
    }

    /// `postgres://user@host:port/db` for messages.
    pub fn describe(&self) -> String {
        self.pool.settings.describe()
    }

    /// Creates `dp_meta.published` once per process.
    async fn ensure_meta(&self) -> anyhow::Result<()> {
        self.meta
            .get_or_try_init(|| async {
                let c = self.pool.get().await?;
                // Concurrent `dp` processes may race on IF NOT EXISTS; the
                // loser's duplicate-object error means the work is done.
                for stmt in [
                    "CREATE SCHEMA IF NOT EXISTS dp_meta",
                    "CREATE TABLE IF NOT EXISTS dp_meta.published (schema_name text NOT NULL, table_name text NOT NULL, delta_version bigint, row_count bigint, published_at timestamptz NOT NULL DEFAULT now(), PRIMARY KEY (schema_name, table_name))",
                ] {
                    if let Err(e) = c.batch_execute(stmt).await
                        && !is_duplicate(&e) {
                            return Err(pg_err("creating dp_meta.published")(e));
                        }
                }
                Ok(())
            })
            .await
            .map(|_| ())
    }

    /// Publishes `node`'s current relation. `version` is the Delta version
    /// the run just committed (None for views); `incremental` says whether
    /// that commit was an incremental update; `force` copies the whole table
    /// even when PostgreSQL already has this version.
    pub async fn publish(&self, engine: &Engine, node: &Node, version: Option<i64>, incremental: bool, force: bool) -> anyhow::Result<Published> {
        check_identifier("schema", &node.schema)?;
        check_identifier("table", &node.alias)?;
        self.pool
            .retry(|| async {
                self.ensure_meta().await?;
                let mut c = self.pool.get().await?;
                let r = publish_once(&mut c, engine, node, version, incremental, force).await;
                if r.is_err() {
                    // Never hand a connection with an open transaction back.
                    let _ = c.batch_execute("ROLLBACK").await;
                }
                r
            })
            .await
            .with_context(|| format!("publishing {} to {}", qualified(&node.schema, &node.alias), self.describe()))
    }
}

pub(crate) fn is_duplicate(e: &tokio_postgres::Error) -> bool {
    e.as_db_error().is_some_and(|d| ["23505", "42P06", "42P07", "42710"].contains(&d.code().code()))
}

async fn publish_once(c: &mut PgClient, engine: &Engine, node: &Node, version: Option<i64>, incremental: bool, force: bool) -> anyhow::Result<Published> {
    if force {
        return swap(c, engine, node, version).await;
    }
    let state = published_state(c, node).await?;
    if let (Some(v), Some(st)) = (version, &state)
        && st.version == Some(v)
    {
        return Ok(Published::UpToDate);
    }
    if incremental
        && node.materialized() == Materialization::Incremental
        && let Some(p) = incremental_plan(engine, node, version, state.as_ref()).await?
    {
        return apply_incremental(c, node, version, p).await;
    }
    swap(c, engine, node, version).await
}

struct State {
    version: Option<i64>,
    rows: Option<i64>,
    /// The table's columns, in order (empty when the table is missing).
    columns: Vec<String>,
}

async fn published_state(c: &PgClient, node: &Node) -> anyhow::Result<Option<State>> {
    let row = c
        .query_opt("SELECT delta_version, row_count FROM dp_meta.published WHERE schema_name = $1 AND table_name = $2", &[&node.schema, &node.alias])
        .await
        .map_err(pg_err("reading dp_meta.published"))?;
    let Some(row) = row else { return Ok(None) };
    let columns = table_columns(c, &node.schema, &node.alias).await?;
    if columns.is_empty() {
        return Ok(None);
    }
    Ok(Some(State { version: row.get(0), rows: row.get(1), columns }))
}

/// A table's column names in order (empty when there is no such table).
pub(crate) async fn table_columns(c: &PgClient, schema: &str, name: &str) -> anyhow::Result<Vec<String>> {
    Ok(c.query(
        "SELECT a.attname::text FROM pg_attribute a JOIN pg_class t ON t.oid = a.attrelid JOIN pg_namespace n ON n.oid = t.relnamespace \
             WHERE n.nspname = $1 AND t.relname = $2 AND t.relkind IN ('r', 'p') AND a.attnum > 0 AND NOT a.attisdropped ORDER BY a.attnum",
        &[&schema, &name],
    )
    .await
    .map_err(pg_err(format!("reading the columns of {}", qualified(schema, name))))?
    .iter()
    .map(|r| r.get(0))
    .collect())
}

async fn record(c: &PgClient, node: &Node, version: Option<i64>, rows: Option<i64>) -> anyhow::Result<()> {
    c.execute(
        "INSERT INTO dp_meta.published (schema_name, table_name, delta_version, row_count, published_at) VALUES ($1, $2, $3, $4, now()) \
         ON CONFLICT (schema_name, table_name) DO UPDATE SET delta_version = EXCLUDED.delta_version, row_count = EXCLUDED.row_count, published_at = now()",
        &[&node.schema, &node.alias, &version, &rows],
    )
    .await
    .map_err(pg_err("updating dp_meta.published"))?;
    Ok(())
}

pub(crate) async fn create_schema(c: &PgClient, schema: &str) -> anyhow::Result<()> {
    let exists = c.query_opt("SELECT 1 FROM pg_namespace WHERE nspname = $1", &[&schema]).await.map_err(pg_err("looking up the schema"))?.is_some();
    if !exists
        && let Err(e) = c.batch_execute(&format!("CREATE SCHEMA IF NOT EXISTS {}", ident(schema))).await
        && !is_duplicate(&e)
    {
        return Err(pg_err(format!("creating schema {}", ident(schema)))(e));
    }
    Ok(())
}

/// The current Delta version of a node's table (None for views and tables
/// that do not exist).
pub async fn current_version(engine: &Engine, node: &Node) -> Option<i64> {
    if node.materialized() == Materialization::View {
        return None;
    }
    let url = engine.warehouse.table(&node.schema, &node.alias).url;
    let t = deltalake::open_table(url).await.ok()?;
    t.version().map(|v| v as i64)
}

/// The whole relation as committed (the Delta table, or the view's query).
async fn read_relation(engine: &Engine, node: &Node) -> anyhow::Result<DataFrame> {
    let sql = format!("SELECT * FROM {}", qualified(&node.schema, &node.alias));
    engine.ctx.sql(&sql).await.with_context(|| format!("reading {} from the warehouse", node.relation_name()))
}

/// Full copy into a new table, then the swap, in one transaction.
async fn swap(c: &mut PgClient, engine: &Engine, node: &Node, version: Option<i64>) -> anyhow::Result<Published> {
    let df = read_relation(engine, node).await?;
    let rows = replace_table(c, df, &node.schema, &node.alias, node, Some(version)).await?;
    Ok(Published::Copied { verb: "replaced", rows })
}

/// Copies `df` into a new table and swaps it in as `schema.name` in one
/// transaction, with `node`'s indexes, comments and grants. `record_version` is the
/// Delta version to note in `dp_meta.published` (`None`: do not note).
pub(crate) async fn replace_table(
    c: &mut PgClient,
    df: DataFrame,
    schema_name: &str,
    name: &str,
    node: &Node,
    record_version: Option<Option<i64>>,
) -> anyhow::Result<u64> {
    let target = qualified(schema_name, name);
    let schema: SchemaRef = Arc::new(df.schema().as_arrow().clone());
    let columns = types::column_defs(&schema).with_context(|| format!("{} {}", node.resource_type, node.name))?;
    create_schema(c, schema_name).await?;
    let staging_name = staging_name(name);
    let staging = qualified(schema_name, &staging_name);
    c.batch_execute("BEGIN").await.map_err(pg_err("BEGIN"))?;
    c.batch_execute(&format!("CREATE TABLE {staging} ({columns})")).await.map_err(pg_err(format!("creating {staging}")))?;
    let stream = df.execute_stream().await.with_context(|| format!("reading {}", node.relation_name()))?;
    let rows = copy::copy_in(c, &staging, stream).await?;
    create_indexes(c, node, &staging).await?;
    let kind: Option<String> = c
        .query_opt(
            "SELECT t.relkind::text FROM pg_class t JOIN pg_namespace n ON n.oid = t.relnamespace WHERE n.nspname = $1 AND t.relname = $2",
            &[&schema_name, &name],
        )
        .await
        .map_err(pg_err("looking up the published table"))?
        .map(|r| r.get(0));
    let drop = match kind.as_deref() {
        None => None,
        Some("r") | Some("p") => Some("TABLE"),
        Some("v") => Some("VIEW"),
        Some("m") => Some("MATERIALIZED VIEW"),
        Some("f") => Some("FOREIGN TABLE"),
        Some(other) => bail!("{target} exists in PostgreSQL as a relation of kind '{other}', which dp will not replace\n  hint: drop or rename it"),
    };
    if let Some(what) = drop {
        c.batch_execute(&format!("DROP {what} {target} CASCADE")).await.map_err(pg_err(format!("dropping the old {target}")))?;
    }
    c.batch_execute(&format!("ALTER TABLE {staging} RENAME TO {}", ident(name))).await.map_err(pg_err(format!("renaming {staging}")))?;
    apply_comments(c, node, &target, &schema).await?;
    apply_grants(c, node, &target).await?;
    if let Some(version) = record_version {
        record(c, node, version, Some(rows as i64)).await?;
    }
    c.batch_execute("COMMIT").await.map_err(pg_err("COMMIT"))?;
    Ok(rows)
}

/// `<alias>__dp_<random>`, within PostgreSQL's 63 bytes.
fn staging_name(alias: &str) -> String {
    let tag = &uuid::Uuid::new_v4().simple().to_string()[..8];
    let mut base = alias.to_string();
    while base.len() > 63 - 13 {
        base.pop();
    }
    format!("{base}__dp_{tag}")
}

/// dbt-postgres's `indexes` config: `[{columns: [a, b], unique: true, type: btree}]`.
async fn create_indexes(c: &PgClient, node: &Node, table: &str) -> anyhow::Result<()> {
    let Some(list) = node.config.get("indexes") else { return Ok(()) };
    let list = list.as_array().cloned().unwrap_or_default();
    for (i, ix) in list.iter().enumerate() {
        let bad = || anyhow::anyhow!("model {}: indexes[{i}] must look like {{columns: [a, b], unique: true, type: btree}}", node.name);
        let cols: Vec<String> = match ix.get("columns") {
            Some(serde_json::Value::Array(a)) => a.iter().map(|v| v.as_str().map(ident).ok_or_else(bad)).collect::<anyhow::Result<_>>()?,
            Some(serde_json::Value::String(s)) => vec![ident(s)],
            _ => return Err(bad()),
        };
        let unique = ix.get("unique").and_then(|v| v.as_bool()).unwrap_or(false);
        let method = ix.get("type").and_then(|v| v.as_str()).unwrap_or("btree");
        if !method.chars().all(|ch| ch.is_ascii_alphanumeric() || ch == '_') {
            bail!("model {}: indexes[{i}].type '{method}' is not an index method (btree, hash, gist, gin, brin)", node.name);
        }
        let name = {
            let digest = format!("{:x}", md5::compute(format!("{cols:?}{unique}{method}{}", uuid::Uuid::new_v4())));
            ident(&digest)
        };
        let sql = format!("CREATE {}INDEX {name} ON {table} USING {method} ({})", if unique { "UNIQUE " } else { "" }, cols.join(", "));
        c.batch_execute(&sql).await.map_err(pg_err(format!("model {}: creating index {i} ({})", node.name, cols.join(", "))))?;
    }
    Ok(())
}

/// dbt's `grants` config: `{select: [reporter, "Superset RO"]}`.
async fn apply_grants(c: &PgClient, node: &Node, table: &str) -> anyhow::Result<()> {
    let Some(serde_json::Value::Object(grants)) = node.config.get("grants") else { return Ok(()) };
    const PRIVILEGES: [&str; 8] = ["select", "insert", "update", "delete", "truncate", "references", "trigger", "all"];
    for (privilege, grantees) in grants {
        let p = privilege.trim_start_matches('+').to_ascii_lowercase();
        if !PRIVILEGES.contains(&p.as_str()) {
            bail!("model {}: grants key '{privilege}' is not a table privilege\n  hint: use one of {}", node.name, PRIVILEGES.join(", "));
        }
        let roles: Vec<String> = match grantees {
            serde_json::Value::Array(a) => a.iter().filter_map(|v| v.as_str().map(String::from)).collect(),
            serde_json::Value::String(s) => vec![s.clone()],
            _ => vec![],
        };
        for role in roles {
            let to = if role.eq_ignore_ascii_case("public") { "PUBLIC".to_string() } else { ident(&role) };
            c.batch_execute(&format!("GRANT {} ON {table} TO {to}", p.to_ascii_uppercase()))
                .await
                .map_err(pg_err(format!("model {}: granting {p} to {role}", node.name)))?;
        }
    }
    Ok(())
}

/// Descriptions from the YAML become table and column comments.
async fn apply_comments(c: &PgClient, node: &Node, table: &str, schema: &Schema) -> anyhow::Result<()> {
    let mut sql = String::new();
    if !node.description.is_empty() {
        sql.push_str(&format!("COMMENT ON TABLE {table} IS {};\n", literal(&node.description)));
    }
    for f in schema.fields() {
        if let Some(col) = node.columns.get(f.name()).or_else(|| node.columns.values().find(|c| c.name.eq_ignore_ascii_case(f.name())))
            && !col.description.is_empty()
        {
            sql.push_str(&format!("COMMENT ON COLUMN {table}.{} IS {};\n", ident(f.name()), literal(&col.description)));
        }
    }
    if !sql.is_empty() {
        c.batch_execute(&format!("SET LOCAL standard_conforming_strings = on;\n{sql}")).await.map_err(pg_err("writing column comments"))?;
    }
    Ok(())
}

/// The rows to apply incrementally: those of the files added since the
/// published version.
struct IncrementalPlan {
    rows: DataFrame,
    schema: SchemaRef,
    strategy: String,
    keys: Vec<String>,
    /// Rows PostgreSQL held before, when known.
    before: Option<i64>,
}

async fn incremental_plan(engine: &Engine, node: &Node, version: Option<i64>, state: Option<&State>) -> anyhow::Result<Option<IncrementalPlan>> {
    let (Some(v), Some(st)) = (version, state) else { return Ok(None) };
    let Some(p) = st.version else { return Ok(None) };
    if p >= v || !crate::materialize::partition_by(node).is_empty() {
        return Ok(None);
    }
    let keys = crate::materialize::unique_key(node);
    let strategy = crate::materialize::default_strategy(node).to_string();
    if !(strategy == "append" || (matches!(strategy.as_str(), "merge" | "delete+insert") && !keys.is_empty())) {
        return Ok(None);
    }
    // Incremental predicates keep some of a key's rows (a merge's may leave
    // two rows with one key): statements on the key cannot mirror that.
    if strategy != "append" && !crate::materialize::predicates::of(node).is_empty() {
        return Ok(None);
    }
    let url = engine.warehouse.table(&node.schema, &node.alias).url;
    let Ok(old) = deltalake::open_table_with_version(url.clone(), p as u64).await else { return Ok(None) };
    let new = deltalake::open_table_with_version(url, v as u64).await?;
    let schema: SchemaRef = new.snapshot()?.snapshot().arrow_schema();
    let names: Vec<String> = schema.fields().iter().map(|f| f.name().clone()).collect();
    if names != st.columns {
        return Ok(None);
    }
    let old_files: HashSet<String> = old.get_file_uris()?.collect();
    let new_files: Vec<String> = new.get_file_uris()?.collect();
    let added: Vec<String> = new_files.iter().filter(|f| !old_files.contains(*f)).cloned().collect();
    let kept = new_files.len() - added.len();
    if kept == 0 && !old_files.is_empty() {
        // Every file was rewritten: a swap is cheaper and simpler.
        return Ok(None);
    }
    let rows = if added.is_empty() {
        engine.ctx.read_empty()?
    } else {
        let df = engine.ctx.read_parquet(added, datafusion::prelude::ParquetReadOptions::default()).await?;
        let exprs: Vec<datafusion::prelude::Expr> = schema
            .fields()
            .iter()
            .map(|f| {
                datafusion::prelude::cast(datafusion::prelude::col(datafusion::common::Column::from_name(f.name())), f.data_type().clone()).alias(f.name())
            })
            .collect();
        df.select(exprs)?
    };
    Ok(Some(IncrementalPlan { rows, schema, strategy, keys, before: st.rows }))
}

async fn apply_incremental(c: &mut PgClient, node: &Node, version: Option<i64>, p: IncrementalPlan) -> anyhow::Result<Published> {
    let target = &qualified(&node.schema, &node.alias);
    let columns = types::column_defs(&p.schema)?;
    let names: Vec<String> = p.schema.fields().iter().map(|f| ident(f.name())).collect();
    let list = names.join(", ");
    let tmp = ident(&format!("dp_incoming_{}", &uuid::Uuid::new_v4().simple().to_string()[..8]));
    c.batch_execute("BEGIN").await.map_err(pg_err("BEGIN"))?;
    c.batch_execute(&format!("CREATE TEMP TABLE {tmp} ({columns}) ON COMMIT DROP")).await.map_err(pg_err("creating the temporary table"))?;
    let rows = if p.schema.fields().is_empty() || p.rows.schema().fields().is_empty() {
        0
    } else {
        let stream = p.rows.execute_stream().await?;
        copy::copy_in(c, &tmp, stream).await?
    };
    let on: Vec<String> = p.keys.iter().map(|k| format!("t.{k} = s.{k}", k = ident(k))).collect();
    let stmts: Vec<String> = match p.strategy.as_str() {
        "append" => vec![format!("INSERT INTO {target} ({list}) SELECT {list} FROM {tmp}")],
        "merge" => {
            let set: Vec<String> = names.iter().map(|n| format!("{n} = s.{n}")).collect();
            let vals: Vec<String> = names.iter().map(|n| format!("s.{n}")).collect();
            vec![format!(
                "MERGE INTO {target} t USING {tmp} s ON {} WHEN MATCHED THEN UPDATE SET {} WHEN NOT MATCHED THEN INSERT ({list}) VALUES ({})",
                on.join(" AND "),
                set.join(", "),
                vals.join(", ")
            )]
        }
        // Every row with a new row's key goes, then every new row comes
        // (repeated keys included), as the Delta commit did.
        "delete+insert" => {
            let keys: Vec<String> = p.keys.iter().map(|k| ident(k)).collect();
            vec![
                format!("DELETE FROM {target} t USING (SELECT DISTINCT {} FROM {tmp}) s WHERE {}", keys.join(", "), on.join(" AND ")),
                format!("INSERT INTO {target} ({list}) SELECT {list} FROM {tmp}"),
            ]
        }
        other => bail!("incremental publishing does not handle strategy '{other}'"),
    };
    let mut affected = vec![];
    for s in &stmts {
        affected.push(c.execute(s.as_str(), &[]).await.map_err(pg_err(format!("model {}: applying {} to {target}", node.name, p.strategy)))? as i64);
    }
    // The table's row count, where the statements tell it (MERGE does not
    // say how many of its rows were inserts).
    let total = match p.strategy.as_str() {
        "append" => p.before.map(|b| b + affected[0]),
        "delete+insert" => p.before.map(|b| b - affected[0] + affected[1]),
        _ => None,
    };
    record(c, node, version, total).await?;
    c.batch_execute("COMMIT").await.map_err(pg_err("COMMIT"))?;
    let verb = match p.strategy.as_str() {
        "append" => "appended",
        "delete+insert" => "upserted",
        _ => "merged",
    };
    Ok(Published::Copied { verb, rows })
}
