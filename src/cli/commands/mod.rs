//! One module per subcommand; each returns the process exit code.

mod alert;
mod check;
mod clean;
mod clone;
mod compile;
mod debug;
mod demo;
mod deps;
mod docs;
mod health;
mod ingest;
mod init;
mod lineage;
mod load;
mod ls;
mod maintain;
mod parse;
mod pipeline;
mod publish;
mod run;
mod run_operation;
mod scheduler;
mod show;
mod source;
mod sql;
mod superset;

use std::process::ExitCode;

use super::Printer;
use super::args::{Cli, Command, SourceAction};

pub async fn dispatch(cli: Cli, printer: &Printer) -> anyhow::Result<ExitCode> {
    let g = &cli.global;
    match cli.command {
        Command::Parse => parse::run(g, printer),
        Command::Compile { select, inline, empty } => compile::run(g, &select, inline.as_deref(), empty, printer),
        Command::Ls { select, output, output_keys, resource_type } => ls::run(g, &select, output, &output_keys, &resource_type, printer),
        Command::Debug => debug::run(g, printer).await,
        Command::Deps => deps::run(g, printer),
        Command::Clean => clean::run(g, printer),
        Command::Init { name } => init::run(&g.project_dir.join(name), printer),
        Command::Run(a) => run::run(g, &a, run::Kind::Run, printer).await,
        Command::Seed(a) => run::run(g, &a, run::Kind::Seed, printer).await,
        Command::Test(a) => run::run(g, &a, run::Kind::Test, printer).await,
        Command::Build(a) => run::run(g, &a, run::Kind::Build, printer).await,
        Command::Snapshot(a) => run::run(g, &a, run::Kind::Snapshot, printer).await,
        Command::RunOperation { macro_name, args } => run_operation::run(g, &macro_name, args.as_deref(), printer).await,
        Command::Retry { threads } => run::retry(g, threads, printer).await,
        Command::Source { action: SourceAction::Freshness { select, output } } => source::freshness(g, &select, output, printer).await,
        Command::Clone { select, full_refresh } => clone::run(g, &select, full_refresh, printer).await,
        Command::Show { select, inline, limit, format } => show::run(g, &select, inline.as_deref(), limit, format, printer).await,
        Command::Check(a) => check::run(g, &a, printer).await,
        Command::Publish(a) => publish::run(g, &a, printer).await,
        Command::Load(a) => load::run(g, &a, printer).await,
        Command::Ingest(a) => ingest::run(g, &a, printer).await,
        Command::Sql(a) => sql::run(g, &a, printer).await,
        Command::Demo { action, scale, threads } => demo::run(g, action, scale, threads, printer).await,
        Command::Docs { action } => docs::run(g, action, printer).await,
        Command::Lineage(a) => lineage::run(g, &a, printer).await,
        Command::Pipeline { action } => pipeline::run(g, action, printer).await,
        Command::Scheduler(a) => scheduler::run(g, &a, printer).await,
        Command::Maintain(a) => maintain::run(g, &a, printer).await,
        Command::Alert { action } => alert::run(g, action, printer).await,
        Command::Superset { action } => superset::run(g, action, printer).await,
    }
}
