//! `dp docs generate`: target/catalog.json (dbt's catalog v1), the
//! manifest with compiled SQL, target/lineage.json and the static site in
//! target/docs/. `dp docs serve [--port]`: serves that site on loopback.

use anyhow::Context as _;
use std::process::ExitCode;

use crate::cli::Printer;
use crate::cli::args::{DocsAction, GlobalArgs};
use crate::cli::context::{LoadArgs, load, write_compiled, write_manifest};
use crate::engine::{Engine, existing_relations};

pub async fn run(g: &GlobalArgs, action: DocsAction, printer: &Printer) -> anyhow::Result<ExitCode> {
    match action {
        DocsAction::Generate { no_lineage } => generate(g, no_lineage, printer).await,
        DocsAction::Serve { port } => serve(g, port, printer).await,
    }
}

async fn generate(g: &GlobalArgs, no_lineage: bool, printer: &Printer) -> anyhow::Result<ExitCode> {
    let t = std::time::Instant::now();
    // Phase timings (`DP_LOG=dp::docs=debug`; benches/docs.rs prints them).
    let mut lap = std::time::Instant::now();
    let mut phase = |name: &str| {
        tracing::debug!(target: "dp::docs", phase = name, seconds = lap.elapsed().as_secs_f64(), "docs generate phase");
        lap = std::time::Instant::now();
    };
    let l = load(g, LoadArgs { which: "generate", ..Default::default() }, printer)?;
    phase("load");
    let compiled = super::lineage::compile_models(&l)?;
    phase("compile");
    write_compiled(&l, &compiled)?;
    phase("write_compiled");
    write_manifest(&l, Some(&compiled))?;
    phase("manifest");
    let engine = Engine::new(&l.project, None)?;
    let existing = existing_relations(&l.project);
    let generated_at = crate::compile::manifest::now_stamp();
    let catalog = crate::docs::catalog::catalog(&l.project, &engine, &existing, &l.invocation_id, &generated_at).await;
    phase("catalog");
    let target = l.project.settings.target_dir();
    let path = target.join("catalog.json");
    crate::docs::write_atomic(&path, &serde_json::to_vec(&catalog)?).with_context(|| format!("writing {}", path.display()))?;
    phase("catalog_json");
    if let Some(errors) = catalog["errors"].as_array() {
        for e in errors {
            printer.warn(format!("catalog: {}", e.as_str().unwrap_or("")));
        }
    }
    // After the catalog: lineage registers planned schemas in the session.
    let lineage = if no_lineage { None } else { Some(super::lineage::build_and_write(&l, &compiled, &engine, printer).await?) };
    phase("lineage");
    let dir = target.join("docs");
    let pages = crate::docs::site::write_site(&dir, &l.project, Some(&compiled), &catalog, lineage.as_ref(), &generated_at)
        .with_context(|| format!("writing the docs site into {}", dir.display()))?;
    phase("site");
    let count = |k: &str| catalog[k].as_object().map(|m| m.len()).unwrap_or(0);
    let rel = |p: &std::path::Path| p.strip_prefix(&l.project.settings.root).unwrap_or(p).display().to_string();
    printer.info(format!("Catalog: {} relations and {} sources with columns and stats; wrote {}", count("nodes"), count("sources"), rel(&path)));
    if let Some(lin) = &lineage {
        let unavailable = lin.nodes.values().filter(|n| n.unavailable.is_some() && n.resource_type == "model").count();
        let note = if unavailable > 0 { format!(" ({unavailable} models without column lineage: see `dp lineage`)") } else { String::new() };
        printer.info(format!(
            "Lineage of {} models{note}; wrote {}",
            lin.nodes.values().filter(|n| n.resource_type == "model").count(),
            rel(&target.join("lineage.json"))
        ));
    }
    printer.info(format!("Docs site: {pages} pages in {}/ (open index.html, or `dp docs serve`) in {:.2}s", rel(&dir), t.elapsed().as_secs_f64()));
    Ok(ExitCode::SUCCESS)
}

async fn serve(g: &GlobalArgs, port: u16, printer: &Printer) -> anyhow::Result<ExitCode> {
    let settings = crate::cli::context::settings(g, None)?;
    let dir = settings.target_dir().join("docs");
    if !dir.join("index.html").exists() {
        anyhow::bail!("{} has no docs site\n  hint: run `dp docs generate` first", dir.display());
    }
    let listener = tokio::net::TcpListener::bind(("127.0.0.1", port))
        .await
        .map_err(|e| anyhow::anyhow!("cannot listen on 127.0.0.1:{port}: {e}\n  hint: pick another port with --port (0: any free one)"))?;
    let addr = listener.local_addr()?;
    printer.info(format!("Serving {} on http://{addr}/ (Ctrl-C to stop)", dir.display()));
    tokio::select! {
        r = crate::docs::serve::serve(listener, dir) => r?,
        _ = tokio::signal::ctrl_c() => printer.info("Stopped."),
    }
    Ok(ExitCode::SUCCESS)
}
