//! Pipelines that run themselves: definitions (`pipelines/*.yml`), runs with
//! Airflow-style retries, run history in the warehouse (`dp_meta`), alerts
//! (Slack, email, `data_platform.alert_history`) and the scheduler daemon.
//!
//! Layer: above the runner, below the CLI. Tasks that run dp commands
//! (seed, run, test, build, publish, load) go through a [`run::TaskExecutor`]
//! the CLI provides, so they run in-process through the same code as the
//! commands; shell tasks run here. Nothing in this module prints: runs and
//! the scheduler report [`run::PipelineEvent`]s to a callback.

pub(crate) mod alert;
pub(crate) mod health;
pub(crate) mod history;
pub(crate) mod maintain;
pub(crate) mod retry;
pub(crate) mod run;
pub(crate) mod scheduler;
pub(crate) mod smtp;
pub(crate) mod spec;

use std::path::PathBuf;

/// What can go wrong defining, running or scheduling pipelines.
#[derive(Debug, thiserror::Error)]
pub enum OrchestrateError {
    /// A definition error, located in its file.
    #[error("{}:{line}: {message}\n  hint: {hint}", file.display())]
    Definition { file: PathBuf, line: usize, message: String, hint: String },
    #[error("unknown pipeline '{name}'{}\n  hint: `dp pipeline list` shows the pipelines defined under pipelines/", suggestion.as_ref().map(|s| format!(" (did you mean '{s}'?)")).unwrap_or_default())]
    UnknownPipeline { name: String, suggestion: Option<String> },
    #[error("reading or writing {table}: {message}")]
    History { table: String, message: String },
    #[error(
        "another dp scheduler is already running for this warehouse (lock {} held by pid {pid})\n  hint: stop it first (SIGTERM), or point this one at another warehouse",
        path.display()
    )]
    Locked { path: PathBuf, pid: String },
    #[error("{0}")]
    Io(String),
}

impl OrchestrateError {
    pub(crate) fn history(table: &str, e: impl std::fmt::Display) -> OrchestrateError {
        OrchestrateError::History { table: table.to_string(), message: e.to_string() }
    }
}
