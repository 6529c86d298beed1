//! The `dp` command line: argument parsing, logging set-up and dispatch to
//! one module per subcommand. Commands return an exit code; errors carry
//! their own hints.

pub(crate) mod args;
pub(crate) mod commands;
pub(crate) mod context;
pub(crate) mod defer;
pub(crate) mod printer;
pub(crate) mod reporter;

use clap::Parser;
use std::process::ExitCode;

pub(crate) use args::Cli;
pub(crate) use printer::Printer;

/// Whether `word` names one of dp's subcommands (or an alias of one).
pub fn is_command(word: &str) -> bool {
    use clap::CommandFactory;
    args::Cli::command().get_subcommands().any(|c| c.get_name() == word || c.get_all_aliases().any(|a| a == word))
}

/// Entry point used by `main`.
pub fn main() -> ExitCode {
    let cli = Cli::parse();
    init_tracing(&cli.global);
    let printer = Printer::new(cli.global.quiet, cli.global.log_format);
    let runtime = match tokio::runtime::Builder::new_multi_thread().enable_all().build() {
        Ok(r) => r,
        Err(e) => {
            printer.error(format!("could not start the async runtime: {e}"));
            return ExitCode::from(1);
        }
    };
    let code = match runtime.block_on(commands::dispatch(cli, &printer)) {
        Ok(code) => code,
        Err(e) => {
            printer.finish_progress();
            printer.error(format!("{e:#}"));
            ExitCode::from(1)
        }
    };
    // Exit without waiting for tasks still inside a poll (a query cancelled
    // with Ctrl-C may compute until its next yield point).
    runtime.shutdown_background();
    code
}

fn init_tracing(g: &args::GlobalArgs) {
    use tracing_subscriber::EnvFilter;
    let default = match g.verbose {
        // deltalake logs expected conditions (e.g. a new table) at error level.
        0 => "dp=warn",
        1 => "info,dp=debug",
        _ => "debug",
    };
    let filter = EnvFilter::try_from_env("DP_LOG").unwrap_or_else(|_| EnvFilter::new(default));
    let builder = tracing_subscriber::fmt().with_env_filter(filter).with_writer(std::io::stderr).with_target(false);
    let _ = match g.log_format {
        args::LogFormat::Json => builder.json().try_init(),
        args::LogFormat::Text => builder.with_ansi(std::env::var_os("NO_COLOR").is_none()).try_init(),
    };
}
