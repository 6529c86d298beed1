//! `dp ingest`: extracts the selected sources' `ingest:` declarations
//! (all by default) into bronze, in parallel up to `threads`, printing one
//! line per table; exit 1 when any table failed (the others still land).

use std::process::ExitCode;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Instant;

use crate::cli::Printer;
use crate::cli::args::{GlobalArgs, IngestArgs};
use crate::cli::context::{LoadArgs, load, select};
use crate::ingest::{Options, Outcome, human_bytes};
use crate::project::nodes::ResourceType;
use crate::util::fmt_thousands;

pub async fn run(g: &GlobalArgs, a: &IngestArgs, printer: &Printer) -> anyhow::Result<ExitCode> {
    let t = Instant::now();
    let l = load(g, LoadArgs { which: "ingest", threads: a.threads, ..Default::default() }, printer)?;
    let mut s = a.select.clone();
    if s.select.is_empty() {
        s.select = vec!["resource_type:source".into()];
    }
    let ids = select(&l, &s, vec![ResourceType::Source], printer)?;
    let specs: Vec<_> = crate::ingest::spec::validate_project(&l.project, &l.fs)?.into_iter().filter(|sp| ids.contains(&sp.unique_id)).collect();
    if specs.is_empty() {
        anyhow::bail!(
            "dp ingest: no selected source declares an ingest block\n  hint: add meta.ingest to a source table (see the README's \"Ingestion\" section)"
        );
    }
    let total = specs.len();
    printer.info(format!("Ingesting {total} source table{} into bronze", if total == 1 { "" } else { "s" }));
    printer.progress(total as u64, "ingesting");
    let done = AtomicUsize::new(0);
    let threads = a.threads.unwrap_or(l.project.settings.target.threads);
    // OpenLineage (when the environment configures it): START and COMPLETE/FAIL per table.
    let by_source: std::collections::HashMap<String, crate::ingest::spec::IngestSpec> = specs.iter().map(|s| (s.source_name.clone(), s.clone())).collect();
    let (settings, invocation_id) = (l.project.settings.clone(), l.invocation_id.clone());
    let openlineage = crate::lineage::openlineage::Config::from_env(&|k| std::env::var(k).ok())
        .map(|c| crate::lineage::openlineage::Emitter::start(c, std::sync::Arc::new(l.project), None, &invocation_id, "ingest"));
    let on_done = |o: &Outcome| {
        let i = done.fetch_add(1, Ordering::SeqCst) + 1;
        printer.tick();
        line(printer, i, total, o);
        if let (Some(ol), Some(spec)) = (&openlineage, by_source.get(&o.source_name)) {
            ol.ingestion(spec, o);
        }
    };
    let outcomes = crate::ingest::run(&settings, specs, Options { full_refresh: a.full_refresh, threads }, &on_done).await?;
    printer.finish_progress();
    if let Some(ol) = &openlineage {
        let s = ol.finish(std::time::Duration::from_secs(5)).await;
        printer.info(format!("OpenLineage: {} events sent", s.sent));
        if s.dropped + s.failed > 0 {
            printer.warn(format!("OpenLineage: {} events dropped (queue full), {} failed to send", s.dropped, s.failed));
        }
    }
    let failed = outcomes.iter().filter(|o| !o.ok).count();
    let rows: u64 = outcomes.iter().map(|o| o.rows).sum();
    let bytes: u64 = outcomes.iter().map(|o| o.bytes).sum();
    printer.info("");
    printer.info(format!(
        "Done in {:.2}s. Ingested {} rows ({}) from {} table{}; ERROR={failed}",
        t.elapsed().as_secs_f64(),
        fmt_thousands(rows),
        human_bytes(bytes),
        total - failed,
        if total - failed == 1 { "" } else { "s" }
    ));
    Ok(if failed == 0 { ExitCode::SUCCESS } else { ExitCode::from(1) })
}

fn line(printer: &Printer, i: usize, total: usize, o: &Outcome) {
    let secs = o.elapsed.as_secs_f64();
    if !o.ok {
        printer.error(format!("{i} of {total} ERROR ingesting {} in {secs:.2}s", o.source_name));
        printer.error(o.error.clone().unwrap_or_default());
        return;
    }
    let mut detail = vec![];
    match o.mode.as_str() {
        "files" => {
            detail.push(format!("{} new file{}", o.files, if o.files == 1 { "" } else { "s" }));
            if o.already > 0 {
                detail.push(format!("{} already landed", o.already));
            }
            if o.skipped_rows > 0 {
                detail.push(format!("{} malformed rows skipped", fmt_thousands(o.skipped_rows)));
            }
        }
        m => {
            let mut d = m.to_string();
            match (&o.watermark_from, &o.watermark_to) {
                (_, Some(to)) if o.rows > 0 || o.objects.len() == 1 => {
                    d.push_str(&format!(", watermark {} → {to}", o.watermark_from.as_deref().unwrap_or("∅")));
                }
                (Some(from), _) => d.push_str(&format!(", no rows after watermark {from}")),
                _ => {}
            }
            detail.push(d);
        }
    }
    if let Some(c) = &o.schema_change {
        detail.push(format!("schema {c}"));
    }
    if o.recovered > 0 {
        detail.push(format!("{} file(s) of an interrupted run logged", o.recovered));
    }
    printer.info(format!(
        "{i} of {total} {} ingested {}: {} rows, {} in {secs:.2}s ({})",
        printer.good("OK"),
        o.source_name,
        fmt_thousands(o.rows),
        human_bytes(o.bytes),
        detail.join("; ")
    ));
}
