//! The interactive loop: rustyline with the SQL helper, a history file,
//! Ctrl-C cancelling the running query (not the shell), Ctrl-D quitting.

use rustyline::config::{CompletionType, Config};
use rustyline::error::ReadlineError;
use rustyline::history::FileHistory;
use rustyline::{Editor, Result as RlResult};
use std::path::Path;

use super::format::Limits;
use super::helper::SqlHelper;
use super::{Flow, Shell, ShellError};

/// Rows and cell width shown on a terminal, as DuckDB's defaults: the
/// first 20 and last 20 rows, values cut at 40 characters (`\pset maxrows
/// 0`, `\pset maxwidth 0` show everything).
pub const TERMINAL_LIMITS: Limits = Limits { max_rows: Some(40), max_cell_chars: Some(40) };

fn editor(shell: &Shell) -> RlResult<Editor<SqlHelper, FileHistory>> {
    let config = Config::builder()
        .auto_add_history(false)
        .max_history_size(10_000)?
        .history_ignore_dups(true)?
        .history_ignore_space(true)
        .completion_type(CompletionType::List)
        .build();
    let mut rl: Editor<SqlHelper, FileHistory> = Editor::with_config(config)?;
    rl.set_helper(Some(SqlHelper::new(shell.engine.catalog.clone(), shell.default_schema(), &shell.dialect_name())));
    Ok(rl)
}

/// Ctrl-C while a statement runs sets the cancel flag: the REPL's select
/// then drops the statement's future, and synchronous hooks blocked on I/O
/// give up. The listener has its own thread and runtime, so a worker thread
/// blocked in such a hook (or in the line editor) cannot delay it; this
/// returns once the handler is installed, so Ctrl-C never kills the shell.
fn listen_for_ctrl_c() -> std::io::Result<()> {
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::Builder::new().name("dp-sql-ctrl-c".into()).spawn(move || {
        let rt = match tokio::runtime::Builder::new_current_thread().enable_all().build() {
            Ok(rt) => rt,
            Err(e) => {
                let _ = tx.send(Err(e));
                return;
            }
        };
        rt.block_on(async move {
            #[cfg(unix)]
            {
                use tokio::signal::unix::{SignalKind, signal};
                match signal(SignalKind::interrupt()) {
                    Ok(mut sigint) => {
                        let _ = tx.send(Ok(()));
                        while sigint.recv().await.is_some() {
                            super::request_cancel();
                        }
                    }
                    Err(e) => {
                        let _ = tx.send(Err(e));
                    }
                }
            }
            #[cfg(not(unix))]
            {
                let _ = tx.send(Ok(()));
                while tokio::signal::ctrl_c().await.is_ok() {
                    super::request_cancel();
                }
            }
        });
    })?;
    rx.recv().unwrap_or_else(|_| Err(std::io::Error::other("the Ctrl-C listener thread stopped")))
}

/// The line the REPL greets with.
pub fn greeting(shell: &Shell) -> String {
    format!("dp sql: project {}, default schema {}. Type \\? for help, \\q or Ctrl-D to quit.", shell.project().settings.project_name, shell.default_schema())
}

/// Runs the REPL until `\q` or Ctrl-D. `history` is the history file; a
/// statement's error goes to `report` and the loop goes on.
pub async fn run(shell: &mut Shell, history: &Path, report: &dyn Fn(&ShellError)) -> anyhow::Result<()> {
    shell.limits = TERMINAL_LIMITS;
    shell.interactive = true;
    listen_for_ctrl_c()?;
    let mut rl = editor(shell)?;
    if let Some(dir) = history.parent() {
        let _ = std::fs::create_dir_all(dir);
    }
    let _ = rl.load_history(history);
    let prompt = format!("{}> ", shell.project().settings.project_name);
    loop {
        match rl.readline(&prompt) {
            Ok(line) => {
                let text = line.trim();
                if text.is_empty() {
                    continue;
                }
                let _ = rl.add_history_entry(text);
                let _ = rl.save_history(history);
                if matches!(text.to_lowercase().as_str(), "quit" | "exit") {
                    break;
                }
                super::clear_cancel();
                // Polls the flag rather than a new ctrl_c() future, which
                // would miss a Ctrl-C pressed before it is first polled.
                let cancelled = async {
                    while !super::cancel_requested() {
                        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
                    }
                };
                let result = tokio::select! {
                    // A finished statement wins over a late Ctrl-C (pressed in the pager).
                    biased;
                    r = shell.run_script(text) => r,
                    _ = cancelled => Err(ShellError::Cancelled),
                };
                match result {
                    Ok(Flow::Quit) => break,
                    Ok(Flow::Continue) => {}
                    Err(e) => report(&e),
                }
            }
            Err(ReadlineError::Interrupted) => {
                // Ctrl-C at the prompt drops the line being typed.
                continue;
            }
            Err(ReadlineError::Eof) => break,
            Err(e) => return Err(e.into()),
        }
    }
    let _ = rl.save_history(history);
    Ok(())
}
