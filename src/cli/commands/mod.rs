//! One module per subcommand; each returns the process exit code.

mod compile;
mod debug;
mod demo;
mod load;
mod ls;
mod parse;
mod publish;
mod run;
mod show;
mod sql;

use std::process::ExitCode;

use super::Printer;
use super::args::{Cli, Command};

pub async fn dispatch(cli: Cli, printer: &Printer) -> anyhow::Result<ExitCode> {
    let g = &cli.global;
    match cli.command {
        Command::Parse => parse::run(g, printer),
        Command::Compile { select, inline } => compile::run(g, &select, inline.as_deref(), printer),
        Command::Ls { select, output, output_keys, resource_type } => ls::run(g, &select, output, &output_keys, &resource_type, printer),
        Command::Debug => debug::run(g, printer).await,
        Command::Run(a) => run::run(g, &a, run::Kind::Run, printer).await,
        Command::Seed(a) => run::run(g, &a, run::Kind::Seed, printer).await,
        Command::Test(a) => run::run(g, &a, run::Kind::Test, printer).await,
        Command::Build(a) => run::run(g, &a, run::Kind::Build, printer).await,
        Command::Show { select, inline, limit, format } => show::run(g, &select, inline.as_deref(), limit, &format, printer).await,
        Command::Publish(a) => publish::run(g, &a, printer).await,
        Command::Load(a) => load::run(g, &a, printer).await,
        Command::Sql(a) => sql::run(g, &a, printer).await,
        Command::Demo { action, scale, threads } => demo::run(g, action, scale, threads, printer).await,
    }
}
