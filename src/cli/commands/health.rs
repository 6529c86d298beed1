//! `dp pipeline health` (and the pipelines' `health` task): one platform
//! health snapshot into `marts.platform_health_metrics`, published to
//! PostgreSQL's `marts` when the target has `[postgres]`, and shown as a
//! table on stdout.

use std::process::ExitCode;
use std::sync::Arc;

use crate::cli::Printer;
use crate::cli::args::GlobalArgs;
use crate::cli::context::{LoadArgs, load};
use crate::engine::Engine;
use crate::engine::sources::SourceTable;
use crate::orchestrate::health::{Inputs, Metric, SourceInput, TABLE, collect, node, write};
use crate::orchestrate::history::History;
use crate::project::nodes::{Materialization, ResourceType};

/// What a snapshot did.
pub struct Snapshot {
    pub rows: Vec<Metric>,
    /// The Delta version written (None: `--dry-run`).
    pub version: Option<i64>,
    /// What PostgreSQL received (None: no `[postgres]`, or not written).
    pub published: Option<String>,
}

/// Takes a snapshot; writes and publishes it unless `dry_run`.
pub async fn snapshot(g: &GlobalArgs, dry_run: bool, printer: &Printer) -> anyhow::Result<Snapshot> {
    let l = load(g, LoadArgs { which: "health", ..Default::default() }, printer)?;
    let settings = &l.project.settings;
    let pipelines = crate::orchestrate::spec::load(&l.fs)?;
    let engine = Arc::new(Engine::new(&l.project, None)?);
    engine.preflight().await?;
    let history = History::new(engine.warehouse.clone());
    let mut sources = vec![];
    let mut marts = vec![];
    for n in l.project.nodes.values() {
        if let Some(s) = &n.source
            && let Some(loc) = &s.location
        {
            let label = format!("{}.{}", s.source_name, n.name);
            let abs = crate::engine::resolve_source_location(settings, loc);
            let freshness = n.config.get("freshness").filter(|v| v.is_object()).or(s.freshness.as_ref()).filter(|v| v.is_object()).cloned();
            sources.push(SourceInput { table: SourceTable::new(&label, loc, abs, s.format.as_deref(), &s.options), label, freshness });
        }
        let is_mart = n.fqn.get(1).is_some_and(|f| f == "marts") || n.schema == TABLE.0;
        if n.resource_type == ResourceType::Model
            && is_mart
            && !matches!(n.materialized(), Materialization::Ephemeral | Materialization::View)
            && (n.schema.as_str(), n.alias.as_str()) != TABLE
        {
            marts.push((n.schema.clone(), n.alias.clone()));
        }
    }
    sources.sort_by(|a, b| a.label.cmp(&b.label));
    marts.sort();
    let inputs = Inputs { engine: &engine, history: &history, pipelines: &pipelines, sources, marts, now: chrono::Utc::now() };
    let rows = collect(&inputs).await?;
    if dry_run {
        return Ok(Snapshot { rows, version: None, published: None });
    }
    let version = write(&engine, &rows).await?;
    let published = match crate::postgres::publisher(settings)? {
        Some(p) => Some(p.publish(&engine, &node(&settings.project_name), Some(version), true, false).await?.to_string()),
        None => None,
    };
    Ok(Snapshot { rows, version: Some(version), published })
}

/// `dp pipeline health [--dry-run]`.
pub async fn run(g: &GlobalArgs, dry_run: bool, printer: &Printer) -> anyhow::Result<ExitCode> {
    let s = snapshot(g, dry_run, printer).await?;
    let mut t = comfy_table::Table::new();
    t.load_preset(comfy_table::presets::UTF8_FULL_CONDENSED);
    t.set_header(vec!["metric_name", "subject", "value", "unit", "status"]);
    for m in &s.rows {
        let v = m.value.map(|v| if v.fract() == 0.0 && v.abs() < 1e15 { format!("{v:.0}") } else { format!("{v:.3}") }).unwrap_or_default();
        t.add_row(vec![m.metric_name.clone(), m.subject.clone(), v, m.unit.clone(), m.status.clone()]);
    }
    printer.data(t.to_string());
    printer.info(summary(&s));
    Ok(ExitCode::SUCCESS)
}

/// `37 metrics (3 fail, 1 warn) → marts.platform_health_metrics v4; postgres appended 37 rows`.
pub fn summary(s: &Snapshot) -> String {
    let count = |st: &str| s.rows.iter().filter(|m| m.status == st).count();
    let mut line = format!("{} metrics ({} fail, {} warn)", s.rows.len(), count("fail"), count("warn"));
    match s.version {
        Some(v) => line.push_str(&format!(" written to {}.{} (version {v})", TABLE.0, TABLE.1)),
        None => line.push_str(" (dry run: nothing written)"),
    }
    if let Some(p) = &s.published {
        line.push_str(&format!("; {p}"));
    }
    line
}
