//! `dp load`: bronze files of the selected sources (all by default) into
//! PostgreSQL, `--mode replace` (atomic swap) or `append`, into the
//! source's schema or `--schema`. Prints the rows loaded per table.

use std::process::ExitCode;
use std::time::Instant;

use crate::cli::Printer;
use crate::cli::args::{GlobalArgs, LoadCmdArgs};
use crate::cli::context::{LoadArgs, load, select};
use crate::cli::printer::Tone;
use crate::engine::Engine;
use crate::project::nodes::ResourceType;

pub async fn run(g: &GlobalArgs, a: &LoadCmdArgs, printer: &Printer) -> anyhow::Result<ExitCode> {
    let t = Instant::now();
    let l = load(g, LoadArgs { which: "load", ..Default::default() }, printer)?;
    let publisher = crate::postgres::require_publisher(&l.project.settings)?;
    let mut s = a.select.clone();
    if s.select.is_empty() {
        s.select = vec!["resource_type:source".into()];
    }
    let ids: Vec<String> =
        select(&l, &s, vec![ResourceType::Source], printer)?.into_iter().filter(|u| l.project.nodes[u].resource_type == ResourceType::Source).collect();
    let sources: Vec<_> = ids.iter().map(|u| &l.project.nodes[u]).filter(|n| n.source.as_ref().is_some_and(|s| s.location.is_some())).collect();
    if sources.is_empty() {
        anyhow::bail!("dp load: no selected source has files to load\n  hint: sources name their files with meta.external_location (see README)");
    }
    let engine = Engine::new(&l.project, None)?;
    let total = sources.len();
    let mut failed = 0;
    let mut loaded = 0u64;
    for (i, node) in sources.iter().enumerate() {
        let schema = a.schema.clone().unwrap_or_else(|| node.schema.clone());
        let name = &node.source.as_ref().map(|s| s.identifier.clone()).unwrap_or_default();
        let what = format!("{schema}.{name}");
        let started = Instant::now();
        let fields = |status: &str| serde_json::json!({"unique_id": node.unique_id, "status": status});
        match crate::postgres::load::load_source(&publisher.pool, &engine, node, &schema, a.mode.into()).await {
            Ok(rows) => {
                loaded += rows;
                let verb = match a.mode {
                    crate::cli::args::LoadModeArg::Replace => "REPLACE",
                    crate::cli::args::LoadModeArg::Append => "APPEND",
                };
                let tag = format!("{verb} {} rows", crate::util::fmt_thousands(rows));
                printer.node_line(i + 1, total, "OK loaded", &what, &tag, Tone::Good, Some(started.elapsed()), fields("success"));
            }
            Err(e) => {
                failed += 1;
                printer.node_line(i + 1, total, "ERROR loading", &what, "ERROR", Tone::Bad, Some(started.elapsed()), fields("error"));
                printer.error(format!("{e:#}"));
            }
        }
    }
    printer.info("");
    printer.info(format!(
        "Done in {:.2}s. Loaded {} rows into {} tables on {}; ERROR={failed}",
        t.elapsed().as_secs_f64(),
        crate::util::fmt_thousands(loaded),
        total - failed,
        publisher.describe()
    ));
    Ok(if failed == 0 { ExitCode::SUCCESS } else { ExitCode::from(1) })
}
