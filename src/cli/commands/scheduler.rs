//! `dp scheduler`: the foreground daemon. Logs go to stderr (JSON with
//! `--log-format json`); SIGTERM or Ctrl-C stops firing, lets running
//! pipelines finish for `--grace`, then cancels their tasks (recorded as
//! failed).

use std::process::ExitCode;

use crate::cli::Printer;
use crate::cli::args::{GlobalArgs, SchedulerArgs};
use crate::orchestrate::run::PipelineEvent;

pub async fn run(g: &GlobalArgs, a: &SchedulerArgs, printer: &Printer) -> anyhow::Result<ExitCode> {
    let grace = super::pipeline::duration_arg(&a.grace)?;
    let s = super::pipeline::setup(g)?;
    let path = crate::orchestrate::scheduler::lock_path(&s.warehouse, &s.settings.target_dir());
    let _lock = crate::orchestrate::scheduler::lock(&path)?;
    printer.info(format!("Warehouse {}; lock {}", s.warehouse, path.display()));
    let stop = async {
        let mut term = match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(t) => t,
            Err(_) => return std::future::pending().await,
        };
        tokio::select! {
            _ = term.recv() => {}
            _ = tokio::signal::ctrl_c() => {}
        }
    };
    let sink = |e: &PipelineEvent<'_>| super::pipeline::print_event(printer, e);
    crate::orchestrate::scheduler::run_scheduler(&s.ctx, &s.pipelines, s.cancel.clone(), stop, grace, &sink).await?;
    Ok(ExitCode::SUCCESS)
}
