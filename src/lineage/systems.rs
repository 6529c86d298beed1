//! Lineage across systems: the chain past the warehouse's models, from the
//! seed's "Source DB → Bronze → Raw → Staging → Intermediate → Marts →
//! Superset".
//!
//! - **Ingestion** (from each source's `ingest:` block and, when it exists,
//!   `dp_meta.ingestion_log`): a PostgreSQL table
//!   (`postgres://host:port/db.schema.table`, no password) or a landing
//!   folder/glob (`landing:<path>`) → the bronze prefix the source reads
//!   (`bronze:<location>`, with the objects each run wrote, their rows,
//!   bytes and times) → the source. Column by column: ingestion keeps names
//!   and values (IDENTITY).
//! - **Publishing**: a model with `publish = ["postgres"]` on a target with a
//!   `[postgres]` server → its PostgreSQL table (IDENTITY per column).
//! - **Superset** (`dashboards/*.yml`): the published table (else the model,
//!   when the target publishes nowhere) → the dataset (`dataset:<schema.table>`:
//!   its columns, IDENTITY, and its saved metrics, AGGREGATION of the columns
//!   their SQL names) → each chart (`chart:<dashboard>/<chart>`: its metrics
//!   and dimensions; filters and ordering as dataset-level FILTER / SORT) →
//!   the dashboard (`dashboard:<title>`: one column per chart, fed by every
//!   column of the chart; its select filters as FILTER).
//!
//! Nothing here connects to a server: names come from the settings (as
//! `dp ingest` / `dp publish` would connect) and the dashboard files.

use std::collections::HashMap;
use std::ops::ControlFlow;

use indexmap::IndexMap;
use serde::Deserialize;

use super::{BronzeObject, ColumnLineage, External, Input, Lineage, NodeLineage, Subtype};
use crate::config::PostgresConfig;
use crate::engine::Engine;
use crate::fs::FileSystem;
use crate::ingest::spec::{IngestSpec, Mode, Origin, PgRelation};
use crate::project::load::Project;
use crate::superset::spec::{Dashboard, NativeFilter};

/// Resource types of the nodes this module adds.
pub const POSTGRES_TABLE: &str = "postgres_table";
pub const LANDING: &str = "landing";
pub const BRONZE: &str = "bronze";
pub const DATASET: &str = "superset_dataset";
pub const CHART: &str = "superset_chart";
pub const DASHBOARD: &str = "superset_dashboard";

/// One successful run of a source in `dp_meta.ingestion_log`.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(default)]
pub struct LogEntry {
    pub source_name: String,
    pub run_id: String,
    pub object_key: Option<String>,
    pub row_count: Option<i64>,
    pub bytes: Option<i64>,
    pub finished_at: String,
    pub source_file: Option<String>,
}

/// Adds every cross-system node and edge to `lineage`; returns warnings
/// (what could not be traced and why), never fails.
pub async fn extend(lineage: &mut Lineage, project: &Project, fs: &dyn FileSystem, engine: &Engine) -> Vec<String> {
    let started = std::time::Instant::now();
    let mut warnings = vec![];
    let specs = crate::ingest::spec::validate_project(project, fs).unwrap_or_else(|e| {
        warnings.push(format!("ingestion not in the lineage: {}", first_line(&e.to_string())));
        vec![]
    });
    let log = if specs.is_empty() {
        vec![]
    } else {
        read_log(engine).await.unwrap_or_else(|e| {
            warnings.push(format!("dp_meta.ingestion_log not read (bronze objects not listed): {}", first_line(&e.to_string())));
            vec![]
        })
    };
    ingestion(lineage, project, &specs, &log);
    publishing(lineage, project);
    match crate::superset::spec::load(fs, &crate::superset::spec::project_tables(project)) {
        Ok(dashboards) => superset(lineage, project, &dashboards),
        Err(e) => warnings.push(format!("Superset dashboards not in the lineage: {}", first_line(&e.to_string()))),
    }
    tracing::debug!(target: "dp::docs", seconds = started.elapsed().as_secs_f64(), "lineage across systems");
    warnings
}

/// How many nodes of each other system the lineage holds, in the chain's
/// order: `10 PostgreSQL tables, 3 bronze prefixes, ...` (empty when none).
pub fn summary(lineage: &Lineage) -> String {
    let kinds = [
        (POSTGRES_TABLE, "PostgreSQL table", "PostgreSQL tables"),
        (LANDING, "landing folder", "landing folders"),
        (BRONZE, "bronze prefix", "bronze prefixes"),
        (DATASET, "Superset dataset", "Superset datasets"),
        (CHART, "chart", "charts"),
        (DASHBOARD, "dashboard", "dashboards"),
    ];
    kinds
        .iter()
        .map(|(k, one, many)| (lineage.nodes.values().filter(|n| n.resource_type == *k).count(), one, many))
        .filter(|(n, _, _)| *n > 0)
        .map(|(n, one, many)| format!("{n} {}", if n == 1 { one } else { many }))
        .collect::<Vec<_>>()
        .join(", ")
}

fn first_line(s: &str) -> &str {
    s.lines().next().unwrap_or("")
}

/// The successful runs of `dp_meta.ingestion_log` that wrote an object,
/// oldest first (none when the table does not exist yet).
pub async fn read_log(engine: &Engine) -> anyhow::Result<Vec<LogEntry>> {
    if engine.warehouse.kind("dp_meta", "ingestion_log").await? != Some(crate::storage::RelKind::Table) {
        return Ok(vec![]);
    }
    engine.catalog.invalidate("dp_meta", "ingestion_log");
    let sql = "SELECT source_name, run_id, object_key, row_count, bytes, CAST(finished_at AS VARCHAR) AS finished_at, source_file \
               FROM dp_meta.ingestion_log WHERE status = 'success' AND object_key IS NOT NULL ORDER BY finished_at, object_key";
    let batches = engine.ctx.sql(sql).await?.collect().await?;
    let mut out = vec![];
    for b in batches {
        let mut w = datafusion::arrow::json::ArrayWriter::new(Vec::new());
        w.write_batches(&[&b])?;
        w.finish()?;
        let buf = w.into_inner();
        if !buf.is_empty() {
            out.extend(serde_json::from_slice::<Vec<LogEntry>>(&buf)?);
        }
    }
    Ok(out)
}

/// `postgres://host:port/dbname` of the target's `[postgres]` settings with
/// `over`'s keys on top (as `dp ingest` connects); libpq's `PG*` variables
/// fill the gaps. Never a user or password.
pub fn pg_address(base: Option<&PostgresConfig>, over: Option<&PostgresConfig>) -> String {
    let mut cfg = base.cloned().unwrap_or_default();
    if let Some(o) = over {
        cfg.host = o.host.clone().or(cfg.host);
        cfg.port = o.port.or(cfg.port);
        cfg.dbname = o.dbname.clone().or(cfg.dbname);
        cfg.user = o.user.clone().or(cfg.user);
        cfg.sslmode = o.sslmode.clone().or(cfg.sslmode);
    }
    match crate::postgres::PgSettings::resolve(&cfg) {
        Ok(s) => format!("postgres://{}:{}/{}", s.host, s.port, s.dbname),
        Err(_) => format!("postgres://{}:{}/{}", cfg.host.unwrap_or_else(|| "localhost".into()), cfg.port.unwrap_or(5432), cfg.dbname.unwrap_or_default()),
    }
}

/// A location as a URI: URLs as they are, paths as `file://<absolute path>`.
fn uri(project: &Project, loc: &str) -> String {
    let resolved = crate::engine::resolve_source_location(&project.settings, loc);
    if resolved.contains("://") { resolved } else { format!("file://{resolved}") }
}

fn input(node: &str, column: &str, how: Subtype) -> Input {
    Input { node: node.to_string(), column: column.to_string(), transformations: vec![how.into()] }
}

/// The columns of `from`, each fed by the same column of `from` (IDENTITY).
fn identity(from: &str, cols: &IndexMap<String, ColumnLineage>) -> IndexMap<String, ColumnLineage> {
    cols.iter()
        .map(|(c, cl)| (c.clone(), ColumnLineage { data_type: cl.data_type.clone(), inputs: vec![input(from, c, Subtype::Identity)], unknown: None }))
        .collect()
}

fn external_node(resource_type: &str, external: External, depends_on: Vec<String>, columns: IndexMap<String, ColumnLineage>) -> NodeLineage {
    NodeLineage { resource_type: resource_type.to_string(), depends_on, columns, external: Some(external), ..Default::default() }
}

/// Ingestion sources and bronze prefixes, linked to their dbt sources.
pub fn ingestion(lineage: &mut Lineage, project: &Project, specs: &[IngestSpec], log: &[LogEntry]) {
    for spec in specs {
        let Some(source) = lineage.nodes.get(&spec.unique_id) else { continue };
        let source_cols = source.columns.clone();
        let leaf: IndexMap<String, ColumnLineage> =
            source_cols.iter().map(|(c, cl)| (c.clone(), ColumnLineage { data_type: cl.data_type.clone(), ..Default::default() })).collect();
        let (origin_type, origin) = match &spec.from {
            Origin::Postgres(p) => {
                let addr = pg_address(project.settings.target.postgres.as_ref(), p.connection.as_ref());
                match &p.relation {
                    PgRelation::Table(schema, table) => {
                        let name = format!("{addr}.{}.{table}", schema.as_deref().unwrap_or("public"));
                        (POSTGRES_TABLE, External { system: "postgres".into(), name: name.clone(), uri: Some(name), ..Default::default() })
                    }
                    PgRelation::Query(q) => (
                        POSTGRES_TABLE,
                        External {
                            system: "postgres".into(),
                            name: format!("{addr} (query of {})", spec.source_name),
                            uri: Some(addr),
                            detail: Some(format!("query: {}", q.split_whitespace().collect::<Vec<_>>().join(" "))),
                            ..Default::default()
                        },
                    ),
                }
            }
            Origin::Files(f) => {
                (LANDING, External { system: "files".into(), name: format!("landing:{}", f.path), uri: Some(uri(project, &f.path)), ..Default::default() })
            }
        };
        let origin_uid = origin.name.clone();
        lineage.nodes.entry(origin_uid.clone()).or_insert_with(|| external_node(origin_type, origin, vec![], leaf));

        let mode = match (&spec.from, spec.mode) {
            (Origin::Files(_), _) => "files".to_string(),
            (Origin::Postgres(p), Mode::Incremental) => format!("incremental on {}", p.watermark_column.as_deref().unwrap_or("?")),
            (Origin::Postgres(_), Mode::Full) => "full".to_string(),
        };
        let objects: Vec<BronzeObject> = log
            .iter()
            .filter(|r| r.source_name == spec.source_name)
            .filter_map(|r| {
                Some(BronzeObject {
                    key: r.object_key.clone()?,
                    rows: r.row_count,
                    bytes: r.bytes,
                    ingested_at: r.finished_at.clone(),
                    run_id: r.run_id.clone(),
                    from: r.source_file.clone(),
                })
            })
            .collect();
        let bronze_uid = format!("bronze:{}", spec.location);
        let bronze = External {
            system: "bronze".into(),
            name: bronze_uid.clone(),
            uri: Some(uri(project, &spec.location)),
            detail: Some(format!("dp ingest ({mode}) of {}", spec.source_name)),
            objects,
            ..Default::default()
        };
        let columns = identity(&origin_uid, &source_cols);
        lineage.nodes.insert(bronze_uid.clone(), external_node(BRONZE, bronze, vec![origin_uid], columns));

        let source = lineage.nodes.get_mut(&spec.unique_id).expect("checked above");
        for (c, cl) in source.columns.iter_mut() {
            if cl.inputs.is_empty() {
                cl.inputs.push(input(&bronze_uid, c, Subtype::Identity));
            }
        }
        if !source.depends_on.contains(&bronze_uid) {
            source.depends_on.push(bronze_uid);
        }
    }
}

/// Published models → their PostgreSQL tables.
pub fn publishing(lineage: &mut Lineage, project: &Project) {
    let Some(pg) = &project.settings.target.postgres else { return };
    let addr = pg_address(Some(pg), None);
    let published: Vec<(String, String, IndexMap<String, ColumnLineage>)> = lineage
        .nodes
        .iter()
        .filter_map(|(u, n)| Some((u.clone(), n.published.as_deref()?.strip_prefix("postgres:")?.to_string(), n.columns.clone())))
        .collect();
    for (uid, relation, cols) in published {
        let name = format!("{addr}.{relation}");
        let ext = External {
            system: "postgres".into(),
            name: name.clone(),
            uri: Some(name.clone()),
            detail: Some(format!("published by dp from {}", crate::graph::short_name(&uid))),
            ..Default::default()
        };
        lineage.nodes.insert(name, external_node(POSTGRES_TABLE, ext, vec![uid.clone()], identity(&uid, &cols)));
    }
}

/// The columns a metric's SQL names (sqlparser's visitor; none when it
/// does not parse).
pub fn referenced_columns(sql: &str) -> Vec<String> {
    use datafusion::sql::sqlparser::ast::{Expr, visit_expressions};
    use datafusion::sql::sqlparser::dialect::GenericDialect;
    use datafusion::sql::sqlparser::parser::Parser;
    let Ok(expr) = Parser::new(&GenericDialect {}).try_with_sql(sql).and_then(|mut p| p.parse_expr()) else { return vec![] };
    let mut out: Vec<String> = vec![];
    let _ = visit_expressions(&expr, |e| {
        let name = match e {
            Expr::Identifier(i) => Some(i.value.clone()),
            Expr::CompoundIdentifier(v) => v.last().map(|i| i.value.clone()),
            _ => None,
        };
        if let Some(n) = name.filter(|n| !out.contains(n)) {
            out.push(n);
        }
        ControlFlow::<()>::Continue(())
    });
    out
}

/// The node a dataset on `schema.table` reads: the published PostgreSQL
/// table, else the model with that relation, else (a table declared in the
/// dashboard file, on a target with PostgreSQL) a PostgreSQL node of its own.
fn dataset_upstream(lineage: &mut Lineage, pg_addr: Option<&str>, ds: &crate::superset::spec::Dataset, file: &str) -> Option<String> {
    let key = ds.key();
    if let Some(u) = pg_addr.map(|a| format!("{a}.{key}")).filter(|u| lineage.nodes.contains_key(u)) {
        return Some(u);
    }
    if let Some((u, _)) = lineage.nodes.iter().find(|(_, n)| n.relation == key && n.external.is_none() && n.resource_type != "source") {
        return Some(u.clone());
    }
    let name = format!("{}.{key}", pg_addr?);
    let columns = ds
        .table
        .columns
        .iter()
        .map(|(c, (_, ty))| (c.clone(), ColumnLineage { data_type: ty.clone().unwrap_or_else(|| "unknown".into()), ..Default::default() }))
        .collect();
    let ext = External {
        system: "postgres".into(),
        name: name.clone(),
        uri: Some(name.clone()),
        detail: Some(format!("not a dp model: declared in {file}")),
        ..Default::default()
    };
    lineage.nodes.insert(name.clone(), external_node(POSTGRES_TABLE, ext, vec![], columns));
    Some(name)
}

/// A saved metric's column in its dataset's node: its name, or
/// `metric:<name>` when the table has a column of that name.
fn metric_key(ds: &crate::superset::spec::Dataset, name: &str) -> String {
    if ds.table.columns.contains_key(name) { format!("metric:{name}") } else { name.to_string() }
}

/// Datasets, charts and dashboards of `dashboards/*.yml`.
pub fn superset(lineage: &mut Lineage, project: &Project, dashboards: &[Dashboard]) {
    let pg_addr = project.settings.target.postgres.as_ref().map(|pg| pg_address(Some(pg), None));
    for d in dashboards {
        let file = d.file.display().to_string();
        let mut ds_uids: Vec<String> = vec![];
        for ds in &d.datasets {
            let key = ds.key();
            let uid = format!("dataset:{key}");
            let upstream = dataset_upstream(lineage, pg_addr.as_deref(), ds, &file);
            let up_cols: HashMap<String, (String, String)> = upstream
                .as_ref()
                .and_then(|u| lineage.nodes.get(u))
                .map(|n| n.columns.iter().map(|(c, cl)| (c.to_lowercase(), (c.clone(), cl.data_type.clone()))).collect())
                .unwrap_or_default();
            let node = lineage.nodes.entry(uid.clone()).or_insert_with(|| {
                let ext = External {
                    system: "superset".into(),
                    name: uid.clone(),
                    detail: Some(format!("Superset dataset on {key}{}", if pg_addr.is_some() { " (PostgreSQL)" } else { "" })),
                    ..Default::default()
                };
                external_node(DATASET, ext, upstream.clone().into_iter().collect(), IndexMap::new())
            });
            for (c, (_, declared)) in &ds.table.columns {
                if node.columns.contains_key(c) {
                    continue;
                }
                let up = up_cols.get(&c.to_lowercase());
                let data_type = up.map(|(_, t)| t.clone()).or_else(|| declared.clone()).unwrap_or_else(|| "unknown".into());
                let inputs = match (&upstream, up) {
                    (Some(u), Some((col, _))) => vec![input(u, col, Subtype::Identity)],
                    _ => vec![],
                };
                node.columns.insert(c.clone(), ColumnLineage { data_type, inputs, unknown: None });
            }
            for m in ds.metrics.values() {
                let m_key = metric_key(ds, &m.name);
                if node.columns.contains_key(&m_key) {
                    continue;
                }
                let inputs: Vec<Input> = referenced_columns(&m.expression)
                    .iter()
                    .filter(|c| ds.table.columns.contains_key(*c))
                    .map(|c| input(&uid, c, Subtype::Aggregation))
                    .collect();
                node.columns.insert(m_key, ColumnLineage { data_type: format!("metric: {}", m.expression), inputs, unknown: None });
            }
            ds_uids.push(uid);
        }
        let mut chart_uids: Vec<(String, String)> = vec![];
        for c in &d.charts {
            let ds_uid = &ds_uids[c.dataset];
            let ds_node = &lineage.nodes[ds_uid];
            let uid = format!("chart:{}/{}", d.title, c.name);
            let mut columns: IndexMap<String, ColumnLineage> = IndexMap::new();
            for m in &c.metrics {
                let m_key = metric_key(&d.datasets[c.dataset], m);
                let data_type = ds_node.columns.get(&m_key).map(|x| x.data_type.clone()).unwrap_or_else(|| "metric".into());
                columns.insert(m.clone(), ColumnLineage { data_type, inputs: vec![input(ds_uid, &m_key, Subtype::Identity)], unknown: None });
            }
            for dim in c.x.iter().chain(&c.group_by).chain(&c.columns) {
                if columns.contains_key(dim) {
                    continue;
                }
                let data_type = ds_node.columns.get(dim).map(|x| x.data_type.clone()).unwrap_or_else(|| "unknown".into());
                columns.insert(dim.clone(), ColumnLineage { data_type, inputs: vec![input(ds_uid, dim, Subtype::Identity)], unknown: None });
            }
            let mut dataset: Vec<Input> = c.filters.iter().map(|f| input(ds_uid, &f.column, Subtype::Filter)).collect();
            if let Some((col, _)) = &c.order_by {
                dataset.push(input(ds_uid, col, Subtype::Sort));
            }
            let ext = External {
                system: "superset".into(),
                name: uid.clone(),
                aliases: vec![format!("chart:{}/{}", d.slug, c.name)],
                detail: Some(format!("Superset chart ({}) on {}", c.kind.viz_type(), ds_uid.trim_start_matches("dataset:"))),
                ..Default::default()
            };
            let mut node = external_node(CHART, ext, vec![ds_uid.clone()], columns);
            node.dataset = dataset;
            chart_uids.push((c.name.clone(), uid.clone()));
            lineage.nodes.insert(uid, node);
        }
        let uid = format!("dashboard:{}", d.title);
        let mut columns: IndexMap<String, ColumnLineage> = IndexMap::new();
        for (name, chart) in &chart_uids {
            let inputs = lineage.nodes[chart].columns.keys().map(|c| input(chart, c, Subtype::Identity)).collect();
            columns.insert(name.clone(), ColumnLineage { data_type: "chart".into(), inputs, unknown: None });
        }
        let dataset = d
            .filters
            .iter()
            .filter_map(|f| match f {
                NativeFilter::Select { dataset, column, .. } => Some(input(&ds_uids[*dataset], column, Subtype::Filter)),
                NativeFilter::Time { .. } => None,
            })
            .collect();
        let ext = External {
            system: "superset".into(),
            name: uid.clone(),
            aliases: vec![format!("dashboard:{}", d.slug)],
            uri: None,
            detail: Some(format!("Superset dashboard from {file} (slug {})", d.slug)),
            objects: vec![],
        };
        let mut node = external_node(DASHBOARD, ext, chart_uids.into_iter().map(|(_, u)| u).collect(), columns);
        node.dataset = dataset;
        lineage.nodes.insert(uid, node);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn metric_sql_names_its_columns() {
        assert_eq!(referenced_columns("SUM(revenue) / NULLIF(SUM(revenue_order_count), 0)"), ["revenue", "revenue_order_count"]);
        assert_eq!(referenced_columns("COUNT(*)"), Vec::<String>::new());
        assert_eq!(referenced_columns("100.0 * SUM(t.cancelled) / NULLIF(SUM(order_count), 0)"), ["cancelled", "order_count"]);
        assert!(referenced_columns("SUM(").is_empty());
    }

    #[test]
    fn pg_address_never_has_a_password_and_takes_overrides() {
        let base = PostgresConfig { host: Some("db1".into()), port: Some(5433), dbname: Some("analytics".into()), ..Default::default() };
        let over = PostgresConfig { dbname: Some("shop".into()), password_env: Some("SHOP_PW".into()), ..Default::default() };
        assert_eq!(pg_address(Some(&base), Some(&over)), "postgres://db1:5433/shop");
        assert_eq!(pg_address(Some(&base), None), "postgres://db1:5433/analytics");
    }
}
