//! The rustyline helper: input stays incomplete until a top-level `;`
//! (backslash commands end at the line), and Tab completes keywords,
//! backslash commands, schemas, tables and the columns of tables the
//! statement names.

use datafusion::catalog::{CatalogProvider, SchemaProvider};
use datafusion::sql::sqlparser::keywords::ALL_KEYWORDS;
use rustyline::completion::{Completer, Pair};
use rustyline::highlight::Highlighter;
use rustyline::hint::Hinter;
use rustyline::validate::{ValidationContext, ValidationResult, Validator};
use rustyline::{Context, Helper};
use std::collections::{BTreeSet, HashMap};
use std::sync::{Arc, Mutex};

use super::command::Command;
use super::statement::{Completeness, command_start, completeness, dialect};
use crate::engine::catalog::WarehouseCatalog;

pub struct SqlHelper {
    catalog: Arc<WarehouseCatalog>,
    default_schema: String,
    dialect: String,
    columns: Mutex<HashMap<(String, String), Vec<String>>>,
}

impl SqlHelper {
    pub fn new(catalog: Arc<WarehouseCatalog>, default_schema: &str, dialect: &str) -> SqlHelper {
        SqlHelper { catalog, default_schema: default_schema.to_string(), dialect: dialect.to_string(), columns: Mutex::new(HashMap::new()) }
    }

    fn schemas(&self) -> Vec<String> {
        self.catalog.schema_names().into_iter().filter(|s| !s.starts_with('.') && !s.starts_with('_')).collect()
    }

    fn tables(&self) -> Vec<(String, String)> {
        super::resolve::Names { catalog: &self.catalog, default_schema: &self.default_schema }.all_tables()
    }

    /// Column names of a table (opened once, then cached).
    fn columns_of(&self, schema: &str, table: &str) -> Vec<String> {
        let key = (schema.to_string(), table.to_string());
        if let Some(c) = self.columns.lock().unwrap().get(&key) {
            return c.clone();
        }
        let provider = self.catalog.schema_provider(schema);
        let t = table.to_string();
        let cols = match super::run_blocking(async move { provider.table(&t).await }) {
            Ok(Some(p)) => p.schema().fields().iter().map(|f| f.name().clone()).collect(),
            _ => Vec::new(),
        };
        self.columns.lock().unwrap().insert(key, cols.clone());
        cols
    }

    /// Candidates for the word before the cursor, given the whole input.
    pub fn candidates(&self, input: &str, word: &str) -> Vec<String> {
        let at_start = input.trim_start().len() == word.len();
        if word.starts_with('\\') || (at_start && input.trim_start().starts_with('\\')) {
            return Command::ALL.iter().map(|c| c.usage().0.split_whitespace().next().unwrap_or("").to_string()).filter(|c| c.starts_with(word)).collect();
        }
        let tables = self.tables();
        let mut out = BTreeSet::new();
        if let Some((prefix, part)) = word.rsplit_once('.') {
            let lower = part.to_lowercase();
            if self.schemas().iter().any(|s| s == prefix) {
                for (s, t) in &tables {
                    if s == prefix && t.starts_with(&lower) {
                        out.insert(format!("{s}.{t}"));
                    }
                }
            }
            let target = match prefix.split_once('.') {
                Some((s, t)) => Some((s.to_string(), t.to_string())),
                None => self.resolve(prefix, &tables),
            };
            if let Some((s, t)) = target {
                for c in self.columns_of(&s, &t) {
                    if c.to_lowercase().starts_with(&lower) {
                        out.insert(format!("{prefix}.{c}"));
                    }
                }
            }
            return out.into_iter().collect();
        }
        let lower = word.to_lowercase();
        let upper = word.chars().next().is_some_and(|c| c.is_ascii_uppercase());
        if !word.is_empty() {
            for k in ALL_KEYWORDS {
                if k.to_lowercase().starts_with(&lower) {
                    out.insert(if upper { k.to_string() } else { k.to_lowercase() });
                }
            }
        }
        for s in self.schemas() {
            if s.starts_with(&lower) {
                out.insert(s);
            }
        }
        for (_, t) in &tables {
            if t.starts_with(&lower) {
                out.insert(t.clone());
            }
        }
        for (s, t) in self.referenced(input, &tables) {
            for c in self.columns_of(&s, &t) {
                if c.to_lowercase().starts_with(&lower) {
                    out.insert(c);
                }
            }
        }
        out.into_iter().collect()
    }

    fn resolve(&self, name: &str, tables: &[(String, String)]) -> Option<(String, String)> {
        let here: Vec<&(String, String)> = tables.iter().filter(|(_, t)| t == name).collect();
        here.iter().find(|(s, _)| *s == self.default_schema).or(if here.len() == 1 { here.first() } else { None }).map(|p| (*p).clone())
    }

    /// Tables the input names (`schema.table` or a bare name that resolves).
    fn referenced(&self, input: &str, tables: &[(String, String)]) -> Vec<(String, String)> {
        let mut out = Vec::new();
        for w in input.split(|c: char| !(c.is_alphanumeric() || c == '_' || c == '.')) {
            let w = w.to_lowercase();
            let hit = match w.split_once('.') {
                Some((s, t)) => tables.iter().find(|(a, b)| *a == s && *b == t).cloned(),
                None => self.resolve(&w, tables),
            };
            if let Some(h) = hit
                && !out.contains(&h)
            {
                out.push(h);
            }
        }
        out
    }
}

/// Start of the word ending at `pos`.
pub fn word_start(line: &str, pos: usize) -> usize {
    line[..pos].char_indices().rev().take_while(|(_, c)| c.is_alphanumeric() || *c == '_' || *c == '.' || *c == '\\').last().map_or(pos, |(i, _)| i)
}

impl Completer for SqlHelper {
    type Candidate = Pair;

    fn complete(&self, line: &str, pos: usize, _ctx: &Context<'_>) -> rustyline::Result<(usize, Vec<Pair>)> {
        let start = word_start(line, pos);
        let word = &line[start..pos];
        let pairs = self.candidates(line, word).into_iter().map(|c| Pair { display: c.clone(), replacement: c }).collect();
        Ok((start, pairs))
    }
}

impl Validator for SqlHelper {
    fn validate(&self, ctx: &mut ValidationContext) -> rustyline::Result<ValidationResult> {
        let input = ctx.input();
        let t = input.trim();
        if t.is_empty() || t.starts_with('\\') || matches!(t.to_lowercase().as_str(), "quit" | "exit") {
            return Ok(ValidationResult::Valid(None));
        }
        let d = dialect(&self.dialect);
        if command_start(input, d.as_ref()).is_some() {
            return Ok(ValidationResult::Valid(None));
        }
        Ok(match completeness(input, d.as_ref()) {
            Completeness::Complete | Completeness::Empty => ValidationResult::Valid(None),
            Completeness::Incomplete => ValidationResult::Incomplete,
        })
    }
}

impl Hinter for SqlHelper {
    type Hint = String;
}

impl Highlighter for SqlHelper {}

impl Helper for SqlHelper {}
