//! `dp sql`: the SQL shell (see `crate::shell`).

use std::process::ExitCode;

use crate::cli::Printer;
use crate::cli::args::{GlobalArgs, SqlArgs};

pub async fn run(_g: &GlobalArgs, _a: &SqlArgs, _printer: &Printer) -> anyhow::Result<ExitCode> {
    anyhow::bail!("dp sql is not implemented yet")
}
