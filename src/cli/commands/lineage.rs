//! `dp lineage [<column>] [--upstream|--downstream] [--depth N] [--format text|json|dot]`:
//! rebuilds column lineage into target/lineage.json (unless `--cached`),
//! then prints a column's upstream or downstream columns.

use anyhow::Context as _;
use indexmap::IndexSet;
use std::process::ExitCode;

use crate::cli::Printer;
use crate::cli::args::{GlobalArgs, LineageAction, LineageArgs};
use crate::cli::context::{LoadArgs, Loaded, load};
use crate::compile::{CompileOptions, Compiled, compile};
use crate::engine::Engine;
use crate::lineage::query::{self, Direction};
use crate::lineage::{Lineage, build};
use crate::project::nodes::ResourceType;

/// Every model and snapshot compiled as for a full refresh (what lineage
/// plans, and what the docs site shows).
pub fn compile_models(l: &Loaded) -> anyhow::Result<Compiled> {
    let ids: IndexSet<String> = l
        .project
        .nodes
        .iter()
        .filter(|(_, n)| matches!(n.resource_type, ResourceType::Model | ResourceType::Snapshot | ResourceType::Analysis))
        .map(|(u, _)| u.clone())
        .collect();
    Ok(compile(&l.project, &ids, &CompileOptions::default())?)
}

/// Builds lineage (the models', then across systems: ingestion, publishing,
/// Superset) and writes target/lineage.json.
pub async fn build_and_write(l: &Loaded, compiled: &Compiled, engine: &Engine, printer: &Printer) -> anyhow::Result<Lineage> {
    let mut lineage = build::build(&l.project, &l.dag, compiled, engine, l.parse_cache != crate::project::cache::Outcome::Disabled).await;
    for w in crate::lineage::systems::extend(&mut lineage, &l.project, &l.fs, engine).await {
        printer.warn(w);
    }
    let dir = l.project.settings.target_dir();
    std::fs::create_dir_all(&dir).with_context(|| format!("creating {}", dir.display()))?;
    let path = dir.join("lineage.json");
    crate::docs::write_atomic(&path, &serde_json::to_vec(&lineage)?).with_context(|| format!("writing {}", path.display()))?;
    Ok(lineage)
}

pub async fn run(g: &GlobalArgs, a: &LineageArgs, printer: &Printer) -> anyhow::Result<ExitCode> {
    let t = std::time::Instant::now();
    let format = a.format.as_str();
    if !["text", "json", "dot"].contains(&format) {
        anyhow::bail!("--format must be text, json or dot, not '{format}'");
    }
    let cached = a.cached || matches!(a.action, Some(LineageAction::Push { cached: true, .. }));
    let mut loaded = None;
    let lineage = if cached {
        let settings = crate::cli::context::settings(g, None)?;
        Lineage::read(&settings.target_dir().join("lineage.json"))?
    } else {
        let l = load(g, LoadArgs { which: "lineage", ..Default::default() }, printer)?;
        let compiled = compile_models(&l)?;
        tracing::debug!(seconds = t.elapsed().as_secs_f64(), "loaded and compiled");
        let engine = Engine::new(&l.project, None)?;
        let lineage = build_and_write(&l, &compiled, &engine, printer).await?;
        let models = lineage.nodes.values().filter(|n| n.resource_type == "model").count();
        let unavailable: Vec<(&String, &String)> = lineage.nodes.iter().filter_map(|(u, n)| n.unavailable.as_ref().map(|w| (u, w))).collect();
        printer.info(format!(
            "Column lineage of {models} models ({} columns) in {:.2}s; wrote target/lineage.json",
            lineage.nodes.values().filter(|n| n.resource_type == "model").map(|n| n.columns.len()).sum::<usize>(),
            t.elapsed().as_secs_f64()
        ));
        let systems = crate::lineage::systems::summary(&lineage);
        if !systems.is_empty() {
            printer.info(format!("Across systems: {systems}"));
        }
        for (u, why) in unavailable {
            printer.warn(format!("{}: {why}", crate::graph::short_name(u)));
        }
        loaded = Some(l);
        lineage
    };
    if let Some(LineageAction::Push { openmetadata, .. }) = &a.action {
        let l = match loaded {
            Some(l) => l,
            None => load(g, LoadArgs { which: "lineage", ..Default::default() }, printer)?,
        };
        let token = std::env::var("OPENMETADATA_JWT_TOKEN").ok().filter(|t| !t.is_empty());
        let p = crate::lineage::openmetadata::push(&lineage, &l.project, openmetadata, token).await?;
        printer.info(format!(
            "OpenMetadata ({openmetadata}): {} tables, {} dashboards and {} lineage edges ({} column mappings) created or updated under service '{}'",
            p.tables, p.dashboards, p.edges, p.column_pairs, l.project.settings.project_name
        ));
        return Ok(ExitCode::SUCCESS);
    }
    let Some(column) = &a.column else { return Ok(ExitCode::SUCCESS) };
    let start = query::resolve(&lineage, column)?;
    let dir = if a.downstream { Direction::Downstream } else { Direction::Upstream };
    let edges = query::walk(&lineage, &start, dir, a.depth);
    match format {
        "json" => printer.data(serde_json::to_string_pretty(&query::json(&lineage, &start, dir, &edges))?),
        "dot" => printer.data(query::dot(&lineage, &start, &edges).trim_end()),
        _ => printer.data(query::text(&lineage, &start, dir, &edges).trim_end()),
    }
    Ok(ExitCode::SUCCESS)
}
