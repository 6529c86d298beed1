//! The `dp` command line: argument parsing, logging set-up and dispatch to
//! one module per subcommand. Commands return an exit code; errors carry
//! their own hints.

pub(crate) mod args;
pub(crate) mod commands;
pub(crate) mod context;
pub(crate) mod defer;
pub(crate) mod printer;
pub(crate) mod reporter;

use std::process::ExitCode;

pub(crate) use args::Cli;
pub(crate) use printer::Printer;

/// Entry point used by `main`: `on_command` gets the subcommand's name
/// (aliases resolved) once the arguments parse, before it runs.
///
/// Not generic (a function pointer, not `impl FnOnce`): a generic entry
/// point is compiled in the binary's crate, and with it every future it
/// polls, which is the whole command tree. The release build then
/// generated dp's async code a second time, in the `dp` binary (137 s of a
/// 7-minute rebuild of the crate on 2 cores).
pub fn main(on_command: fn(&str)) -> ExitCode {
    use clap::{CommandFactory, FromArgMatches};
    let mut matches = Cli::command().get_matches();
    if let Some(name) = matches.subcommand_name() {
        on_command(name);
    }
    let cli = Cli::from_arg_matches_mut(&mut matches).unwrap_or_else(|e| e.format(&mut Cli::command()).exit());
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
