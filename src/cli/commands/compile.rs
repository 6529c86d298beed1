//! `dp compile`: render selected nodes into target/compiled/ (ephemeral
//! models inlined as CTEs) and write the manifest.

use indexmap::IndexSet;
use std::process::ExitCode;

use crate::cli::Printer;
use crate::cli::args::{GlobalArgs, SelectArgs};
use crate::cli::context::{LoadArgs, load, render_cache, select, write_compiled_and_manifest};
use crate::compile::{CompileOptions, compile_prepared};
use crate::project::nodes::ResourceType;

pub fn run(g: &GlobalArgs, s: &SelectArgs, inline: Option<&str>, empty: bool, printer: &Printer) -> anyhow::Result<ExitCode> {
    let t = std::time::Instant::now();
    // Phase timings: `DP_LOG=dp::cli::commands::compile=debug`.
    let mut clock = crate::project::load::Phases::start();
    let l = load(g, LoadArgs { which: "compile", ..Default::default() }, printer)?;
    clock.lap("load");
    let existing = crate::engine::existing_tables(&l.project);
    clock.lap("existing relations");
    let mut opts = CompileOptions { existing, full_refresh: false, cache: render_cache(&l, g), empty, ..Default::default() };
    clock.lap("render cache");
    if let Some(sql) = inline {
        if let Some(d) = crate::cli::defer::plan(&l, s, &Default::default(), &Default::default())? {
            opts.deferred = d.relations;
        }
        let out = crate::engine::compile_inline_with(&l.project, sql, &opts)?;
        printer.data(out);
        return Ok(ExitCode::SUCCESS);
    }
    // What refs resolve to is found while the selection is computed.
    let (prepared, selected) = crate::util::beside(|| crate::compile::prepare(&l.project), || select(&l, s, vec![], printer));
    let ids: IndexSet<String> = selected?
        .into_iter()
        .filter(|u| {
            l.project
                .nodes
                .get(u)
                .is_some_and(|n| matches!(n.resource_type, ResourceType::Model | ResourceType::Test | ResourceType::Snapshot | ResourceType::Analysis))
        })
        .collect();
    clock.lap("select");
    // (the selection is copied into a set only under --defer)
    let deferral = if s.defer { crate::cli::defer::plan(&l, s, &ids.iter().cloned().collect(), &Default::default())? } else { None };
    // Jinja may query the warehouse while compiling, as dbt compile does
    // (with --defer, the state's warehouse too).
    if let Ok(engine) = crate::engine::Engine::new(&l.project, None) {
        if let Some(d) = &deferral {
            d.attach(&engine, &l)?;
        }
        if let Some(db) = crate::engine::introspect::EngineDb::new(std::sync::Arc::new(engine)) {
            l.project.jinja.set_database(std::sync::Arc::new(db));
        }
    }
    l.project.jinja.set_selected(ids.iter().cloned().collect());
    if let Some(d) = deferral {
        opts.deferred = d.relations;
    }
    clock.lap("warehouse");
    let compiled = compile_prepared(&l.project, &ids, &opts, prepared)?;
    clock.lap("render");
    write_compiled_and_manifest(&l, &compiled, opts.cache.as_ref())?;
    clock.lap("write compiled files and manifest");
    if let Some(report) = compiled.error_report() {
        anyhow::bail!("{report}");
    }
    if ids.len() == 1 {
        let uid = ids.first().unwrap();
        printer.data(&compiled.sql[uid]);
    }
    printer.info(format!("Compiled {} nodes in {:.2}s", compiled.sql.len(), t.elapsed().as_secs_f64()));
    // 40,000 nodes' SQL, freed off the command's path as the project is
    crate::util::drop_in_background(compiled);
    l.leave_for_exit();
    Ok(ExitCode::SUCCESS)
}
