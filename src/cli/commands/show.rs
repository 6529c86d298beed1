//! `dp show`: preview the rows of a model's query or of `--inline` SQL, in
//! the result formats of `dp sql` (the same writer).

use std::process::ExitCode;

use crate::cli::Printer;
use crate::cli::args::{GlobalArgs, SelectArgs};
use crate::cli::context::{LoadArgs, load, select};
use crate::compile::{CompileOptions, compile};
use crate::engine::{Engine, existing_tables};
use crate::project::nodes::ResourceType;
use crate::shell::format::{Format, Limits, ResultWriter};

pub async fn run(g: &GlobalArgs, s: &SelectArgs, inline: Option<&str>, limit: i64, format: Format, printer: &Printer) -> anyhow::Result<ExitCode> {
    let l = load(g, LoadArgs { which: "show", ..Default::default() }, printer)?;
    let mut opts = CompileOptions { existing: existing_tables(&l.project), full_refresh: false, ..Default::default() };
    let mut deferral = None;
    let (label, sql) = match inline {
        Some(q) => {
            deferral = crate::cli::defer::plan(&l, s, &Default::default(), &Default::default())?;
            opts.deferred = deferral.as_ref().map(|d| d.relations.clone()).unwrap_or_default();
            ("inline query".to_string(), crate::engine::compile_inline_with(&l.project, q, &opts)?)
        }
        None => {
            let ids: Vec<String> = select(&l, s, vec![ResourceType::Model, ResourceType::Seed], printer)?
                .into_iter()
                .filter(|u| matches!(l.project.nodes[u].resource_type, ResourceType::Model | ResourceType::Seed))
                .collect();
            let uid = match ids.as_slice() {
                [one] => one.clone(),
                [] => anyhow::bail!("dp show: --select matched no model\n  hint: pass --select <model> or --inline \"select ...\""),
                many => anyhow::bail!("dp show: --select matched {} nodes; select exactly one", many.len()),
            };
            let n = &l.project.nodes[&uid];
            if n.resource_type == ResourceType::Seed {
                (format!("seed {}", n.name), format!("select * from {}", n.relation_name()))
            } else {
                deferral = crate::cli::defer::plan(&l, s, &[uid.clone()].into_iter().collect(), &Default::default())?;
                opts.deferred = deferral.as_ref().map(|d| d.relations.clone()).unwrap_or_default();
                let c = compile(&l.project, &[uid.clone()].into_iter().collect(), &opts)?;
                if let Some(report) = c.error_report() {
                    anyhow::bail!("{report}");
                }
                (format!("model {}", n.name), crate::materialize::delta::with_sql_header(n, &c.sql[&uid]))
            }
        }
    };
    let engine = Engine::new(&l.project, None)?;
    engine.preflight().await?;
    if let Some(d) = &deferral {
        d.attach(&engine, &l)?;
    }
    let df = engine.sql(&sql).await.map_err(|e| anyhow::anyhow!("{label}: {e}"))?;
    let df = df.limit(0, usize::try_from(limit).ok())?;
    let df_schema = std::sync::Arc::new(df.schema().as_arrow().clone());
    let batches = df.collect().await.map_err(|e| anyhow::anyhow!("{label}: {e}"))?;
    printer.info(format!("Previewing {label}:"));
    let mut out = std::io::stdout().lock();
    let mut w = ResultWriter::new(format, Limits::default(), df_schema, &mut out)?;
    for b in &batches {
        w.write(b)?;
    }
    w.finish()?;
    Ok(ExitCode::SUCCESS)
}
