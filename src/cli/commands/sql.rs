//! `dp sql`: the SQL shell (see `crate::shell`). `-e` and `-f` run
//! statements and exit (in that order when both are given); SQL on a
//! non-terminal stdin runs as a script; otherwise the REPL opens.

use anyhow::Context as _;
use std::io::{IsTerminal, Read};
use std::process::ExitCode;

use crate::cli::Printer;
use crate::cli::args::{GlobalArgs, SqlArgs};
use crate::cli::context::{LoadArgs, load};
use crate::shell::{Options, Shell};

pub async fn run(g: &GlobalArgs, a: &SqlArgs, printer: &Printer) -> anyhow::Result<ExitCode> {
    let format = a.format;
    let l = load(g, LoadArgs { which: "sql", ..Default::default() }, printer)?;
    let history = l.project.settings.target_dir().join(".dp_sql_history");
    let mut shell = Shell::new(l.project, Options { format, allow_writes: a.allow_writes, quiet: g.quiet, timing: true })?;
    shell.engine.preflight().await?;

    let mut scripts: Vec<(String, String)> = Vec::new();
    if let Some(e) = &a.execute {
        scripts.push(("-e".to_string(), e.clone()));
    }
    if let Some(f) = &a.file {
        let text = std::fs::read_to_string(f).with_context(|| format!("reading {}", f.display()))?;
        scripts.push((f.display().to_string(), text));
    }
    if scripts.is_empty() && !std::io::stdin().is_terminal() {
        let mut text = String::new();
        std::io::stdin().read_to_string(&mut text).context("reading SQL from stdin")?;
        scripts.push(("stdin".to_string(), text));
    }
    if scripts.is_empty() {
        printer.info(crate::shell::repl::greeting(&shell));
        crate::shell::repl::run(&mut shell, &history, &|e| printer.error(e.to_string())).await?;
        return Ok(ExitCode::SUCCESS);
    }
    for (label, text) in scripts {
        if let Err(e) = shell.run_script(&text).await {
            let prefix = if label == "-e" || label == "stdin" { String::new() } else { format!("{label}: ") };
            printer.error(format!("{prefix}{e}"));
            return Ok(ExitCode::from(1));
        }
    }
    Ok(ExitCode::SUCCESS)
}
