//! `dp source freshness`: the age of each selected source table's newest
//! row against its `freshness` criteria (see [`crate::runner::freshness`]),
//! dbt-style lines, `target/sources.json`; exit 1 on an error.

use futures::StreamExt;
use std::path::PathBuf;
use std::process::ExitCode;

use crate::cli::Printer;
use crate::cli::args::{GlobalArgs, SelectArgs};
use crate::cli::context::{LoadArgs, load, select};
use crate::cli::printer::Tone;
use crate::engine::Engine;
use crate::project::nodes::ResourceType;
use crate::runner::freshness::{check, criteria, sources_json};

pub async fn freshness(g: &GlobalArgs, s: &SelectArgs, output: Option<PathBuf>, printer: &Printer) -> anyhow::Result<ExitCode> {
    let t = std::time::Instant::now();
    let l = load(g, LoadArgs { which: "freshness", ..Default::default() }, printer)?;
    let ids = select(&l, s, vec![ResourceType::Source], printer)?;
    let checks: Vec<_> = ids.iter().filter_map(|u| l.project.nodes.get(u)).filter_map(|n| criteria(n).map(|(field, c)| (n, field, c))).collect();
    if checks.is_empty() {
        printer.warn("nothing to do: no selected source has both loaded_at_field and freshness");
        return Ok(ExitCode::SUCCESS);
    }
    let engine = Engine::new(&l.project, None)?;
    engine.preflight().await?;
    let total = checks.len();
    let label = |n: &crate::project::nodes::Node| format!("{}.{}", n.source.as_ref().map(|s| s.source_name.as_str()).unwrap_or(""), n.name);
    for (i, (n, ..)) in checks.iter().enumerate() {
        printer.info(format!("{} of {total} START freshness of {}", i + 1, label(n)));
    }
    let threads = l.project.settings.target.threads.max(1);
    let results: Vec<_> = futures::stream::iter(checks.iter().map(|(n, field, c)| check(&engine, n, field, c.clone()))).buffered(threads).collect().await;
    let mut errors = 0;
    for (i, ((n, ..), f)) in checks.iter().zip(&results).enumerate() {
        let (tag, tone) = match f.status {
            "pass" => ("PASS", Tone::Good),
            "warn" => ("WARN", Tone::Warn),
            "error" => ("ERROR STALE", Tone::Bad),
            _ => ("ERROR", Tone::Bad),
        };
        errors += usize::from(tone == Tone::Bad);
        let fields = serde_json::json!({"unique_id": f.unique_id, "status": f.status, "max_loaded_at_time_ago_in_s": f.age_s});
        printer.node_line(i + 1, total, tag, &format!("freshness of {}", label(n)), tag, tone, Some(f.execution_time), fields);
        if let Some(m) = &f.message {
            match tone {
                Tone::Bad => printer.error(format!("source {}: {m}", label(n))),
                _ => printer.warn(format!("source {}: {m}", label(n))),
            }
        }
    }
    let path = output.unwrap_or_else(|| l.project.settings.target_dir().join("sources.json"));
    if let Some(dir) = path.parent() {
        std::fs::create_dir_all(dir)?;
    }
    std::fs::write(&path, serde_json::to_vec_pretty(&sources_json(&results, t.elapsed().as_secs_f64(), &l.invocation_id))?)?;
    let count = |s: &str| results.iter().filter(|f| f.status == s).count();
    printer.info("");
    printer.info(format!(
        "Done. PASS={} WARN={} ERROR={} TOTAL={total} ({})",
        count("pass"),
        count("warn"),
        count("error") + count("runtime error"),
        path.strip_prefix(&l.project.settings.root).unwrap_or(&path).display()
    ));
    Ok(if errors > 0 { ExitCode::from(1) } else { ExitCode::SUCCESS })
}
