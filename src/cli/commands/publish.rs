//! `dp publish`: copies the selected models' and seeds' current warehouse
//! tables into PostgreSQL (those configured with `publish = ["postgres"]`,
//! or every selected one with `--all`), skipping tables PostgreSQL already
//! holds at the current Delta version unless `--full-refresh`. This is how
//! PostgreSQL catches up after a publish failed during `dp run`.

use futures::StreamExt;
use std::process::ExitCode;
use std::sync::Arc;
use std::time::Instant;

use crate::cli::Printer;
use crate::cli::args::{GlobalArgs, PublishArgs};
use crate::cli::context::{LoadArgs, load, select};
use crate::cli::printer::Tone;
use crate::engine::Engine;
use crate::postgres::publish::wants_postgres;
use crate::project::nodes::{Materialization, ResourceType};

pub async fn run(g: &GlobalArgs, a: &PublishArgs, printer: &Printer) -> anyhow::Result<ExitCode> {
    let t = Instant::now();
    let l = load(g, LoadArgs { which: "publish", ..Default::default() }, printer)?;
    let publisher = crate::postgres::require_publisher(&l.project.settings)?;
    let ids: Vec<String> = select(&l, &a.select, vec![ResourceType::Model, ResourceType::Seed], printer)?
        .into_iter()
        .filter(|u| {
            let n = &l.project.nodes[u];
            matches!(n.resource_type, ResourceType::Model | ResourceType::Seed)
                && n.materialized() != Materialization::Ephemeral
                && (a.all || wants_postgres(n))
        })
        .collect();
    if ids.is_empty() {
        printer.warn("nothing to publish: no selected model or seed has publish = [\"postgres\"] (pass --all to publish them anyway)");
        return Ok(ExitCode::SUCCESS);
    }
    printer.info(format!("Publishing {} relations to {}", ids.len(), publisher.describe()));
    let engine = Arc::new(Engine::new(&l.project, None)?);
    let total = ids.len();
    let threads = l.project.settings.target.threads.max(1);
    let project = Arc::new(l.project);
    // OpenLineage (when the environment configures it): a run per table.
    let openlineage = crate::lineage::openlineage::Config::from_env(&|k| std::env::var(k).ok())
        .map(|c| crate::lineage::openlineage::Emitter::start(c, project.clone(), None, &l.invocation_id, "publish"));
    let project = &*project;
    let mut results = futures::stream::iter(ids.iter().enumerate().map(|(i, u)| {
        let node = &project.nodes[u];
        let engine = engine.clone();
        let publisher = publisher.clone();
        let full = a.full_refresh;
        async move {
            let t = Instant::now();
            let version = crate::postgres::publish::current_version(&engine, node).await;
            let r = publisher.publish(&engine, node, version, false, full).await;
            (i + 1, node, r, t.elapsed())
        }
    }))
    .buffer_unordered(threads);
    let mut failed = 0;
    while let Some((i, node, r, elapsed)) = results.next().await {
        let what = format!("{}.{}", node.schema, node.alias);
        let fields = serde_json::json!({"unique_id": node.unique_id, "status": if r.is_ok() { "success" } else { "error" }});
        if let Some(ol) = &openlineage {
            let rows = match &r {
                Ok(crate::postgres::publish::Published::Copied { rows, .. }) => Some(*rows),
                _ => None,
            };
            ol.publication(node, elapsed, rows, r.as_ref().err().map(|e| format!("{e:#}")).as_deref());
        }
        match r {
            Ok(p) => printer.node_line(i, total, "OK published", &what, &p.to_string(), Tone::Good, Some(elapsed), fields),
            Err(e) => {
                failed += 1;
                printer.node_line(i, total, "ERROR publishing", &what, "ERROR", Tone::Bad, Some(elapsed), fields);
                printer.error(format!("{e:#}"));
            }
        }
    }
    drop(results);
    if let Some(ol) = &openlineage {
        let s = ol.finish(std::time::Duration::from_secs(5)).await;
        printer.info(format!("OpenLineage: {} events sent", s.sent));
        if s.dropped + s.failed > 0 {
            printer.warn(format!("OpenLineage: {} events dropped (queue full), {} failed to send", s.dropped, s.failed));
        }
    }
    printer.info("");
    printer.info(format!("Done in {:.2}s. PUBLISHED={} ERROR={failed}", t.elapsed().as_secs_f64(), total - failed));
    Ok(if failed == 0 { ExitCode::SUCCESS } else { ExitCode::from(1) })
}
