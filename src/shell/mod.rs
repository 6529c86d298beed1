//! `dp sql`: a DataFusion SQL shell over every layer of the warehouse.
//!
//! Split like datafusion-cli: [`statement`] (splitting, parsing, syntax
//! errors), [`guard`] (read-only mode), [`resolve`] (bare model names,
//! close-name suggestions), [`command`] (backslash commands), [`format`]
//! (result formats), [`delta`] (time travel), [`helper`] and [`repl`] (the
//! interactive loop). This file holds the session and runs scripts.
//!
//! Output: data (and the output of backslash commands) goes to stdout, or
//! to the `\o` file; errors go to stderr. In `table` format a footer with
//! the row count, rows shown and elapsed time goes to stderr (not in other
//! formats, so they stay machine-readable; `--quiet` drops it); a persisted
//! write reports one line on stderr instead. In the REPL, results taller
//! than the terminal go through the [`pager`].
//!
//! Ctrl-C in the REPL cancels the statement (parsing, planning, opening
//! Delta tables, executing, printing) and keeps the shell: the REPL drops
//! the statement's future, and the synchronous hooks that wait on I/O
//! (`delta_version()`) give up through [`cancel::run_cancellable`].

pub mod cancel;
pub mod command;
pub mod delta;
pub mod describe;
pub mod format;
pub mod guard;
pub mod helper;
pub mod pager;
pub mod repl;
pub mod resolve;
pub mod statement;
pub mod write;

use datafusion::arrow::array::RecordBatch;
use datafusion::arrow::datatypes::SchemaRef;
use datafusion::catalog::{CatalogProvider, SchemaProvider};
use datafusion::error::DataFusionError;
use datafusion::sql::parser::Statement as DFStatement;
use datafusion::sql::sqlparser::ast::Statement;
use futures::StreamExt;
use std::collections::BTreeSet;
use std::io::Write;
use std::path::PathBuf;
use std::sync::{Arc, LazyLock};
use std::time::Instant;

use crate::engine::Engine;
use crate::project::load::Project;
pub use cancel::{cancel_requested, clear_cancel, request_cancel, run_blocking, run_cancellable};
use command::Command;
use describe::string_batch;
use format::{Format, Limits, ResultWriter};
use statement::{Completeness, Origin, Piece};

#[derive(Debug, thiserror::Error)]
pub enum ShellError {
    #[error("syntax error{}: {message}{snippet}", position(*line, *column))]
    Syntax { message: String, line: Option<u64>, column: Option<u64>, snippet: String },
    #[error(
        "dp sql is read-only: {0} would write to the warehouse\n  hint: pass --allow-writes to run it; CREATE TEMP VIEW and COPY (query) TO 'file.parquet' are allowed"
    )]
    ReadOnly(String),
    #[error("table '{name}' not found{}", hint(suggestions))]
    UnknownTable { name: String, suggestions: Vec<String> },
    #[error("{0}")]
    Engine(String),
    #[error("{0}")]
    Usage(String),
    #[error("query cancelled")]
    Cancelled,
    #[error("{0}")]
    Other(String),
    #[error("writing output: {0}")]
    Io(#[from] std::io::Error),
}

fn position(line: Option<u64>, column: Option<u64>) -> String {
    match (line, column) {
        (Some(l), Some(c)) => format!(" at line {l}, column {c}"),
        _ => String::new(),
    }
}

fn hint(s: &[String]) -> String {
    if s.is_empty() { "\n  hint: \\dt lists the tables".to_string() } else { format!("\n  hint: did you mean {}?", s.join(", ")) }
}

#[derive(Debug, Clone)]
pub struct Options {
    pub format: Format,
    pub allow_writes: bool,
    /// No footer.
    pub quiet: bool,
    /// Elapsed time in the footer.
    pub timing: bool,
}

/// What to do after a command.
#[derive(Debug, PartialEq, Eq)]
pub enum Flow {
    Continue,
    Quit,
}

/// A piece of a script: a backslash command line or SQL text.
#[derive(Debug, PartialEq, Eq)]
pub enum Item {
    Command(String),
    Sql(String, Origin),
}

/// Splits a script into backslash-command lines (at the start of a
/// statement) and SQL text (complete statements, or the tail).
pub fn script_items(text: &str, dialect: &dyn datafusion::sql::sqlparser::dialect::Dialect) -> Vec<Item> {
    let mut items = Vec::new();
    let mut buf = String::new();
    let mut buf_line = 1;
    for (i, line) in text.lines().enumerate() {
        let blank = statement::completeness(&buf, dialect) == Completeness::Empty;
        if blank && line.trim_start().starts_with('\\') {
            items.push(Item::Command(line.trim().to_string()));
            buf.clear();
            continue;
        }
        if blank {
            buf.clear();
            buf_line = i as u64 + 1;
        }
        buf.push_str(line);
        buf.push('\n');
        if line.contains('\\')
            && let Some(at) = statement::command_start(&buf, dialect)
        {
            let command = buf.split_off(at);
            items.push(Item::Sql(std::mem::take(&mut buf), Origin { line: buf_line, column: 1 }));
            items.push(Item::Command(command.trim().to_string()));
            continue;
        }
        if statement::completeness(&buf, dialect) == Completeness::Complete {
            items.push(Item::Sql(std::mem::take(&mut buf), Origin { line: buf_line, column: 1 }));
        }
    }
    if statement::completeness(&buf, dialect) != Completeness::Empty {
        items.push(Item::Sql(buf, Origin { line: buf_line, column: 1 }));
    }
    items
}

pub struct Shell {
    pub engine: Engine,
    project: Project,
    default_schema: String,
    pub options: Options,
    pub limits: Limits,
    out: Box<dyn Write + Send>,
    out_path: Option<PathBuf>,
    temp_views: BTreeSet<String>,
    tables: delta::TableLocator,
    depth: usize,
    /// The REPL: results may go through the pager.
    pub interactive: bool,
    /// `\pset pager on|off`.
    pub pager: bool,
}

impl Shell {
    pub fn new(project: Project, options: Options) -> anyhow::Result<Shell> {
        let engine = Engine::new(&project, None)?;
        // Spans let planning errors (unknown column, ...) point into the SQL.
        engine.ctx.state_ref().write().config_mut().options_mut().sql_parser.collect_spans = true;
        let default_schema = project.settings.target.schema.clone();
        let tables = delta::TableLocator { warehouse: engine.warehouse.clone(), default_schema: default_schema.clone(), catalog: engine.catalog.clone() };
        engine.ctx.register_udtf("delta_version", Arc::new(delta::DeltaVersion { tables: tables.clone() }));
        Ok(Shell {
            engine,
            project,
            default_schema,
            options,
            limits: Limits::default(),
            out: Box::new(std::io::stdout()),
            out_path: None,
            temp_views: BTreeSet::new(),
            tables,
            depth: 0,
            interactive: false,
            pager: true,
        })
    }

    pub fn project(&self) -> &Project {
        &self.project
    }

    pub fn default_schema(&self) -> &str {
        &self.default_schema
    }

    fn dialect_name(&self) -> String {
        self.engine.ctx.state().config().options().sql_parser.dialect.to_string()
    }

    pub fn dialect(&self) -> Box<dyn datafusion::sql::sqlparser::dialect::Dialect> {
        statement::dialect(&self.dialect_name())
    }

    fn names(&self) -> resolve::Names<'_> {
        resolve::Names { catalog: &self.engine.catalog, default_schema: &self.default_schema }
    }

    /// Runs a script (backslash commands and SQL). Stops at the first error.
    pub async fn run_script(&mut self, text: &str) -> Result<Flow, ShellError> {
        let dialect = self.dialect();
        for item in script_items(text, dialect.as_ref()) {
            match item {
                Item::Command(line) => {
                    if self.run_command(Command::parse(&line)?).await? == Flow::Quit {
                        return Ok(Flow::Quit);
                    }
                }
                Item::Sql(sql, origin) => self.run_sql(&sql, origin).await?,
            }
        }
        Ok(Flow::Continue)
    }

    /// Runs the statements of `sql`, whose first line is line `base.line` of its input.
    pub async fn run_sql(&mut self, sql: &str, base: Origin) -> Result<(), ShellError> {
        let dialect = self.dialect();
        for piece in statement::split(sql, dialect.as_ref()) {
            self.run_piece(piece, sql, base, dialect.as_ref()).await?;
        }
        Ok(())
    }

    async fn run_piece(
        &mut self,
        piece: Piece,
        full: &str,
        base: Origin,
        dialect: &dyn datafusion::sql::sqlparser::dialect::Dialect,
    ) -> Result<(), ShellError> {
        let started = Instant::now();
        let piece = if piece.sql.contains("{{") || piece.sql.contains("{%") {
            let sql = crate::engine::compile_inline(&self.project, &piece.sql).map_err(|e| ShellError::Other(format!("{e:#}")))?;
            Piece { sql, origin: piece.origin }
        } else {
            piece
        };
        let mut stmt = statement::parse(&piece, dialect, full, base)?;
        let refused = guard::refusal(&stmt, &self.engine.warehouse.to_string(), &self.temp_views);
        if let Some(what) = &refused
            && !self.options.allow_writes
        {
            return Err(ShellError::ReadOnly(what.clone()));
        }
        resolve::qualify_bare_names(&mut stmt, &self.names());
        let temp_view = created_temp_view(&stmt);
        let session_only = temp_view.is_some() || drops_only_temp(&stmt, &self.temp_views);
        let mut view = None;
        // DataFusion refuses TEMP views and tables; what DataFusion itself
        // creates in the dp catalog lives only in this session, so plan them
        // as plain ones. Persisted views keep their SQL (see `write`).
        if let DFStatement::Statement(s) = &mut stmt {
            match s.as_mut() {
                Statement::CreateView(v) => {
                    if !v.temporary && self.options.allow_writes {
                        view = Some(write::view_def(v, &self.default_schema, &self.temp_views)?);
                    }
                    v.temporary = false;
                }
                Statement::CreateTable(t) => t.temporary = false,
                _ => {}
            }
        }
        let rows = match &stmt {
            DFStatement::Statement(s) if self.options.allow_writes => write::row_change(s),
            _ => None,
        };
        if self.options.allow_writes
            && let DFStatement::Statement(s) = &stmt
            && let Statement::AlterTable(alter) = s.as_ref()
        {
            let line = self.alter_table(alter).await?;
            if !self.options.quiet {
                eprintln!("{line}");
            }
            return Ok(());
        }
        let dropped = dropped_views(&stmt);
        let written = if refused.is_some() { relations(&stmt) } else { Vec::new() };
        let state = self.engine.ctx.state();
        let plan = match state.statement_to_plan(stmt).await.and_then(crate::engine::rewrite::duckdb_plan) {
            Ok(p) => p,
            Err(e) => {
                let span = e.diagnostic().and_then(|d| d.span).filter(|s| s.start.line > 0);
                return Err(match (self.engine_error(e), span) {
                    (ShellError::Engine(text), Some(span)) => {
                        let (l, c, snippet) = statement::place(full, base, piece.origin, span.start.line, span.start.column);
                        ShellError::Engine(format!("{text}\n  at line {l}, column {c}:{snippet}"))
                    }
                    (other, _) => other,
                });
            }
        };
        if self.options.allow_writes
            && !session_only
            && let Some(line) = self.persist(&plan, view.as_ref(), rows.as_ref()).await?
        {
            if !self.options.quiet {
                eprintln!("{line}");
            }
            return Ok(());
        }
        let df = self.engine.ctx.execute_logical_plan(plan).await.map_err(|e| self.engine_error(e))?;
        let schema: SchemaRef = Arc::new(df.schema().as_arrow().clone());
        let mut stream = df.execute_stream().await.map_err(|e| self.engine_error(e))?;
        let format = self.options.format;
        let limits = self.limits;
        let page_rows = self.page_rows();
        let mut buf = Vec::new();
        let summary = {
            let out: &mut dyn Write = if page_rows.is_some() { &mut buf } else { &mut *self.out };
            let mut w = ResultWriter::new(format, limits, schema.clone(), out).map_err(|e| ShellError::Other(e.to_string()))?;
            while let Some(b) = stream.next().await {
                let b = b.map_err(|e| if cancel_requested() { ShellError::Cancelled } else { ShellError::Engine(strip(&e)) })?;
                w.write(&b).map_err(|e| ShellError::Other(e.to_string()))?;
            }
            w.finish().map_err(|e| ShellError::Other(e.to_string()))?
        };
        if let Some(rows) = page_rows {
            self.show_paged(&buf, rows)?;
        }
        if let Some(v) = temp_view {
            self.temp_views.insert(v);
        }
        for v in dropped {
            self.temp_views.remove(&v);
        }
        for (s, t) in written {
            self.engine.catalog.invalidate(s.as_deref().unwrap_or(&self.default_schema), &t);
        }
        self.footer(summary, schema.fields().is_empty(), started);
        Ok(())
    }

    fn footer(&self, summary: format::Summary, no_columns: bool, started: Instant) {
        if self.options.format != Format::Table || self.options.quiet {
            return;
        }
        let time = self.options.timing.then(|| started.elapsed().as_secs_f64());
        eprintln!("{}", format::footer(summary, self.limits, no_columns, time));
    }

    /// The terminal's height when results should be buffered for the
    /// pager (the REPL, `table` format, stdout a terminal, pager on).
    fn page_rows(&self) -> Option<usize> {
        if !self.interactive || !self.pager || self.out_path.is_some() || self.options.format != Format::Table {
            return None;
        }
        pager::terminal_rows()
    }

    /// Prints a buffered result, through the pager if it is too tall.
    fn show_paged(&mut self, text: &[u8], rows: usize) -> Result<(), ShellError> {
        if pager::too_tall(text, rows)
            && let Some(cmd) = pager::command()
        {
            self.out.flush()?;
            match pager::page(text, &cmd) {
                Ok(()) => return Ok(()),
                Err(e) => eprintln!("warning: pager '{cmd}' failed ({e}); printing directly\n  hint: set PAGER, or \\pset pager off"),
            }
        }
        self.out.write_all(text)?;
        self.out.flush()?;
        Ok(())
    }

    fn engine_error(&self, e: DataFusionError) -> ShellError {
        if cancel_requested() {
            return ShellError::Cancelled;
        }
        static NOT_FOUND: LazyLock<regex::Regex> = LazyLock::new(|| regex::Regex::new(r"table '([^']+)' not found").unwrap());
        let text = strip(&e);
        if let Some(c) = NOT_FOUND.captures(&text) {
            let name = c[1].strip_prefix(&format!("{}.", crate::engine::CATALOG)).unwrap_or(&c[1]).to_string();
            let suggestions = self.names().close_names(&name);
            return ShellError::UnknownTable { name, suggestions };
        }
        ShellError::Engine(text)
    }

    /// Writes a batch through the current format (for backslash commands).
    fn print_batch(&mut self, batch: &RecordBatch) -> Result<(), ShellError> {
        let page_rows = self.page_rows();
        let mut buf = Vec::new();
        {
            let out: &mut dyn Write = if page_rows.is_some() { &mut buf } else { &mut *self.out };
            let mut w = ResultWriter::new(self.options.format, self.limits, batch.schema(), out).map_err(|e| ShellError::Other(e.to_string()))?;
            w.write(batch).map_err(|e| ShellError::Other(e.to_string()))?;
            w.finish().map_err(|e| ShellError::Other(e.to_string()))?;
        }
        if let Some(rows) = page_rows {
            self.show_paged(&buf, rows)?;
        }
        Ok(())
    }

    pub async fn run_command(&mut self, cmd: Command) -> Result<Flow, ShellError> {
        match cmd {
            Command::Quit => return Ok(Flow::Quit),
            Command::Help => {
                self.out.write_all(Command::help().as_bytes())?;
                self.out.flush()?;
            }
            Command::Describe(None) => {
                let b = self.relations(None)?;
                self.print_batch(&b)?;
            }
            Command::Describe(Some(name)) => {
                let b = self.columns(&name).await?;
                self.print_batch(&b)?;
            }
            Command::ListTables(pattern) => {
                let b = self.relations(pattern.as_deref())?;
                self.print_batch(&b)?;
            }
            Command::ListSchemas => {
                let mut names = Vec::new();
                let mut counts = Vec::new();
                for s in self.engine.catalog.schema_names() {
                    if s.starts_with('.') || s.starts_with('_') {
                        continue;
                    }
                    counts.push(self.engine.catalog.schema_provider(&s).table_names().len().to_string());
                    names.push(s);
                }
                let b = string_batch(&["schema", "tables"], vec![names, counts])?;
                self.print_batch(&b)?;
            }
            Command::Timing(v) => {
                self.options.timing = v.unwrap_or(!self.options.timing);
                eprintln!("Timing is {}.", if self.options.timing { "on" } else { "off" });
            }
            Command::PSet(None, _) => {
                let all = |n: Option<usize>| n.map_or("0 (all)".to_string(), |n| n.to_string());
                eprintln!(
                    "format   {}\nmaxrows  {}\nmaxwidth {}\npager    {}",
                    self.options.format.name(),
                    all(self.limits.max_rows),
                    all(self.limits.max_cell_chars),
                    if self.pager { "on" } else { "off" }
                );
            }
            Command::PSet(Some(key), value) => match key.as_str() {
                "format" => {
                    self.options.format = command::pset_format(value.as_deref())?;
                    eprintln!("Output format is {}.", self.options.format.name());
                }
                "maxrows" => {
                    self.limits.max_rows = command::pset_count("maxrows", value.as_deref())?;
                    match self.limits.max_rows {
                        Some(n) => eprintln!("Table rows shown: {n} (the first {} and the last {}).", n - n / 2, n / 2),
                        None => eprintln!("Table rows shown: all."),
                    }
                }
                "maxwidth" => {
                    self.limits.max_cell_chars = command::pset_count("maxwidth", value.as_deref())?;
                    match self.limits.max_cell_chars {
                        Some(n) => eprintln!("Table values cut at {n} characters."),
                        None => eprintln!("Table values shown whole."),
                    }
                }
                "pager" => {
                    self.pager = command::pset_switch("pager", value.as_deref(), self.pager)?;
                    eprintln!("Pager is {}.", if self.pager { "on" } else { "off" });
                }
                other => return Err(ShellError::Usage(format!("\\pset {other}: use \\pset format NAME, maxrows N, maxwidth N or pager on|off"))),
            },
            Command::Output(None) => {
                self.out.flush()?;
                self.out = Box::new(std::io::stdout());
                self.out_path = None;
            }
            Command::Output(Some(path)) => {
                let file = std::fs::File::create(&path).map_err(|e| ShellError::Usage(format!("\\o {path}: {e}")))?;
                self.out.flush()?;
                self.out = Box::new(std::io::BufWriter::new(file));
                self.out_path = Some(PathBuf::from(path));
            }
            Command::Include(path) => {
                let text = std::fs::read_to_string(&path).map_err(|e| ShellError::Usage(format!("\\i {path}: {e}")))?;
                if self.depth >= 16 {
                    return Err(ShellError::Usage(format!("\\i {path}: files include each other too deeply")));
                }
                self.depth += 1;
                let r = Box::pin(self.run_script(&text)).await;
                self.depth -= 1;
                return r.map_err(|e| ShellError::Other(format!("{path}: {e}")));
            }
            Command::History(name) => {
                let b = delta::history(&self.tables, &name).await.map_err(ShellError::Other)?;
                self.print_batch(&b)?;
            }
        }
        Ok(Flow::Continue)
    }
}

/// DataFusion's message without its backtrace.
fn strip(e: &DataFusionError) -> String {
    e.strip_backtrace()
}

/// The name of a session-only relation a statement creates (TEMP view or table).
fn created_temp_view(stmt: &DFStatement) -> Option<String> {
    match stmt {
        DFStatement::Statement(s) => match s.as_ref() {
            Statement::CreateView(v) if v.temporary => Some(v.name.to_string().to_lowercase()),
            Statement::CreateTable(t) if t.temporary => Some(t.name.to_string().to_lowercase()),
            _ => None,
        },
        _ => None,
    }
}

/// A DROP of session-only relations only.
fn drops_only_temp(stmt: &DFStatement, temp: &BTreeSet<String>) -> bool {
    match stmt {
        DFStatement::Statement(s) => match s.as_ref() {
            Statement::Drop { names, .. } => !names.is_empty() && names.iter().all(|n| write::is_temp(n, temp)),
            _ => false,
        },
        _ => false,
    }
}

fn dropped_views(stmt: &DFStatement) -> Vec<String> {
    match stmt {
        DFStatement::Statement(s) => match s.as_ref() {
            Statement::Drop { names, .. } => names.iter().map(|n| n.to_string().to_lowercase()).collect(),
            _ => Vec::new(),
        },
        _ => Vec::new(),
    }
}

/// Relations a statement names, as (schema, table): to forget cached
/// providers after a write.
fn relations(stmt: &DFStatement) -> Vec<(Option<String>, String)> {
    let mut out = Vec::new();
    if let DFStatement::Statement(s) = stmt {
        let _ = datafusion::sql::sqlparser::ast::visit_relations(s.as_ref(), |n| {
            let parts: Vec<String> = n.0.iter().filter_map(|p| p.as_ident().map(|i| i.value.clone())).collect();
            match parts.as_slice() {
                [t] => out.push((None, t.clone())),
                [.., s, t] => out.push((Some(s.clone()), t.clone())),
                [] => {}
            }
            std::ops::ControlFlow::<()>::Continue(())
        });
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use datafusion::sql::sqlparser::dialect::GenericDialect;

    #[test]
    fn scripts_mix_commands_and_statements() {
        let items = script_items("\\timing off\nselect 0; \\dn\nselect 1;\n\n-- c\nselect\n  2; select 3;\n\\dt\nselect 4", &GenericDialect {});
        assert_eq!(
            items,
            vec![
                Item::Command("\\timing off".into()),
                Item::Sql("select 0; ".into(), Origin { line: 2, column: 1 }),
                Item::Command("\\dn".into()),
                Item::Sql("select 1;\n".into(), Origin { line: 3, column: 1 }),
                Item::Sql("select\n  2; select 3;\n".into(), Origin { line: 6, column: 1 }),
                Item::Command("\\dt".into()),
                Item::Sql("select 4\n".into(), Origin { line: 9, column: 1 }),
            ]
        );
    }
}
