//! `dp maintain`: compaction, vacuum and checkpoints of the selected models'
//! and seeds' Delta tables (all by default, then dp's own `dp_meta` and
//! `data_platform` tables), with the bytes reclaimed.

use std::process::ExitCode;
use std::time::{Duration, Instant};

use crate::cli::Printer;
use crate::cli::args::{GlobalArgs, MaintainArgs};
use crate::cli::context::{LoadArgs, load, select};
use crate::cli::printer::Tone;
use crate::orchestrate::maintain::{MaintainPlan, human_bytes, maintain_table};
use crate::project::nodes::{Materialization, ResourceType};
use crate::storage::Warehouse;

const DEFAULT_RETENTION: Duration = Duration::from_secs(7 * 86400);

/// dp's own append-only tables, always compacted.
const OWN_TABLES: &[(&str, &str)] =
    &[("dp_meta", "pipeline_runs"), ("dp_meta", "task_runs"), ("data_platform", "alert_history"), crate::orchestrate::health::TABLE];

pub async fn run(g: &GlobalArgs, a: &MaintainArgs, printer: &Printer) -> anyhow::Result<ExitCode> {
    let t0 = Instant::now();
    let l = load(g, LoadArgs { which: "maintain", ..Default::default() }, printer)?;
    let retention = a.retention.as_deref().map(super::pipeline::duration_arg).transpose()?;
    let selected = select(&l, &a.select, vec![ResourceType::Model, ResourceType::Seed], printer)?;
    let mut plans: Vec<MaintainPlan> = vec![];
    for u in &selected {
        let n = &l.project.nodes[u];
        if !matches!(n.resource_type, ResourceType::Model | ResourceType::Seed)
            || matches!(n.materialized(), Materialization::Ephemeral | Materialization::View)
        {
            continue;
        }
        let own =
            n.config_str("retention").map(|r| super::pipeline::duration_arg(r).map_err(|e| anyhow::anyhow!("model {}: retention: {e}", n.name))).transpose()?;
        plans.push(MaintainPlan {
            schema: n.schema.clone(),
            table: n.alias.clone(),
            compact: n.materialized() == Materialization::Incremental,
            retention: retention.or(own).unwrap_or(DEFAULT_RETENTION),
            dry_run: a.dry_run,
        });
    }
    if a.select.select.is_empty() && a.select.selector.is_none() {
        for (s, t) in OWN_TABLES {
            plans.push(MaintainPlan {
                schema: s.to_string(),
                table: t.to_string(),
                compact: true,
                retention: retention.unwrap_or(DEFAULT_RETENTION),
                dry_run: a.dry_run,
            });
        }
    }
    let warehouse = Warehouse::open(&l.project.settings)?;
    let total = plans.len();
    let (mut failed, mut bytes, mut files) = (0, 0u64, 0usize);
    for (i, p) in plans.iter().enumerate() {
        let t = Instant::now();
        let what = format!("{}.{}", p.schema, p.table);
        let fields = |s: &str| serde_json::json!({"relation": what, "status": s});
        match maintain_table(&warehouse, p).await {
            Ok(None) => {}
            Ok(Some(r)) => {
                bytes += r.bytes_reclaimed.unwrap_or(0);
                files += r.files_vacuumed;
                let verb = if a.dry_run { "DRY RUN" } else { "OK maintained" };
                printer.node_line(i + 1, total, verb, &what, &r.to_string(), Tone::Good, Some(t.elapsed()), fields("success"));
            }
            Err(e) => {
                failed += 1;
                printer.node_line(i + 1, total, "ERROR maintaining", &what, "ERROR", Tone::Bad, Some(t.elapsed()), fields("error"));
                printer.error(e);
            }
        }
    }
    let verb = if a.dry_run { "would reclaim" } else { "reclaimed" };
    printer.info(format!("Done in {:.2}s: {verb} {} in {files} files; ERROR={failed}", t0.elapsed().as_secs_f64(), human_bytes(bytes)));
    Ok(if failed == 0 { ExitCode::SUCCESS } else { ExitCode::from(1) })
}
