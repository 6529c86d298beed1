//! `dp parse`: load the project, check the DAG, write target/manifest.json.

use std::process::ExitCode;

use crate::cli::Printer;
use crate::cli::args::GlobalArgs;
use crate::cli::context::{LoadArgs, load, write_manifest};

pub fn run(g: &GlobalArgs, printer: &Printer) -> anyhow::Result<ExitCode> {
    let t = std::time::Instant::now();
    // Phase timings: `DP_LOG=dp::cli::commands::parse=debug`.
    let mut clock = crate::project::load::Phases::start();
    let l = load(g, LoadArgs { which: "parse", ..Default::default() }, printer)?;
    clock.lap("load");
    tracing::debug!(outcome = ?l.parse_cache, "partial parse");
    let path = write_manifest(&l, None)?;
    clock.lap("write manifest");
    // Pipelines (pipelines/*.yml) are validated too: bad cron, unknown task
    // kind or pipeline, cycles; errors name the file and line.
    let pipelines = crate::orchestrate::spec::load(&l.fs)?;
    // Dashboards (dashboards/*.yml) too: unknown models, columns, metrics or
    // chart types; errors name the file and line.
    let dashboards = crate::superset::spec::load(&l.fs, &crate::superset::spec::project_tables(&l.project))?;
    let count = |rt: crate::project::nodes::ResourceType| l.project.nodes.values().filter(|n| n.resource_type == rt).count();
    use crate::project::nodes::ResourceType as R;
    printer.info(format!(
        "Found {} models, {} seeds, {} data tests, {} sources, {} snapshots, {} unit tests, {} macros in {:.2}s",
        count(R::Model),
        count(R::Seed),
        count(R::Test),
        count(R::Source),
        count(R::Snapshot),
        count(R::UnitTest),
        l.project.macros.len(),
        t.elapsed().as_secs_f64()
    ));
    if !pipelines.pipelines.is_empty() {
        printer.info(format!("Found {} pipelines", pipelines.pipelines.len()));
    }
    if !dashboards.is_empty() {
        printer.info(format!("Found {} dashboards ({} charts)", dashboards.len(), dashboards.iter().map(|d| d.charts.len()).sum::<usize>()));
    }
    printer.info(format!("Wrote {}", path.strip_prefix(&l.project.settings.root).unwrap_or(&path).display()));
    l.leave_for_exit();
    Ok(ExitCode::SUCCESS)
}
