//! SQL text → statements: splitting on top-level `;` with sqlparser's
//! tokenizer (so `;` inside strings and comments does not count), parsing
//! with DataFusion's parser, syntax errors with their position in the
//! original input.

use datafusion::sql::parser::{DFParserBuilder, Statement as DFStatement};
use datafusion::sql::sqlparser::dialect::{Dialect, GenericDialect, dialect_from_str};
use datafusion::sql::sqlparser::tokenizer::{Token, TokenWithSpan, Tokenizer};
use std::sync::LazyLock;

use super::ShellError;

/// Where a piece of text starts in its input (1-based line and column).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Origin {
    pub line: u64,
    pub column: u64,
}

impl Origin {
    pub const START: Origin = Origin { line: 1, column: 1 };

    /// The absolute position of `(line, column)` relative to this origin.
    pub fn offset(self, line: u64, column: u64) -> (u64, u64) {
        if line <= 1 { (self.line, self.column + column.max(1) - 1) } else { (self.line + line - 1, column) }
    }
}

pub fn dialect(name: &str) -> Box<dyn Dialect> {
    dialect_from_str(name).unwrap_or_else(|| Box::new(GenericDialect {}))
}

fn tokens(sql: &str, dialect: &dyn Dialect) -> Option<Vec<TokenWithSpan>> {
    Tokenizer::new(dialect, sql).tokenize_with_location().ok()
}

fn significant(t: &Token) -> bool {
    !matches!(t, Token::Whitespace(_) | Token::EOF)
}

#[derive(Debug, PartialEq, Eq)]
pub enum Completeness {
    /// Only whitespace and comments.
    Empty,
    /// Ends with `;` outside strings and comments.
    Complete,
    /// Needs more input (no final `;`, or an unterminated string/comment).
    Incomplete,
}

pub fn completeness(sql: &str, dialect: &dyn Dialect) -> Completeness {
    let Some(toks) = tokens(sql, dialect) else { return Completeness::Incomplete };
    match toks.iter().rev().find(|t| significant(&t.token)) {
        None => Completeness::Empty,
        Some(t) if t.token == Token::SemiColon => Completeness::Complete,
        Some(_) => Completeness::Incomplete,
    }
}

/// One statement's text and where it starts in the text it came from.
#[derive(Debug, PartialEq, Eq)]
pub struct Piece {
    pub sql: String,
    pub origin: Origin,
}

/// Splits SQL text into statements at top-level `;`. Text that does not
/// tokenize (an unterminated string) is returned whole, for the parser to
/// report.
pub fn split(sql: &str, dialect: &dyn Dialect) -> Vec<Piece> {
    let Some(toks) = tokens(sql, dialect) else {
        return if sql.trim().is_empty() { vec![] } else { vec![Piece { sql: sql.to_string(), origin: Origin::START }] };
    };
    let index = LineIndex::new(sql);
    let mut out = Vec::new();
    let mut start: Option<&TokenWithSpan> = None;
    let mut last: Option<&TokenWithSpan> = None;
    let push = |s: &TokenWithSpan, e: &TokenWithSpan, out: &mut Vec<Piece>| {
        let a = index.byte(s.span.start.line, s.span.start.column);
        let b = index.byte(e.span.end.line, e.span.end.column);
        out.push(Piece { sql: sql[a..b].to_string(), origin: Origin { line: s.span.start.line, column: s.span.start.column } });
    };
    for t in &toks {
        if t.token == Token::SemiColon {
            if let (Some(s), Some(e)) = (start, last) {
                push(s, e, &mut out);
            }
            start = None;
            last = None;
        } else if significant(&t.token) {
            start.get_or_insert(t);
            last = Some(t);
        }
    }
    if let (Some(s), Some(e)) = (start, last) {
        push(s, e, &mut out);
    }
    out
}

/// The byte offset of a backslash command that starts a statement after a
/// `;` (as in `select 1; \\dt`), if any.
pub fn command_start(sql: &str, dialect: &dyn Dialect) -> Option<usize> {
    let toks = tokens(sql, dialect)?;
    let mut after_semicolon = false;
    for t in &toks {
        match &t.token {
            Token::Backslash if after_semicolon => return Some(LineIndex::new(sql).byte(t.span.start.line, t.span.start.column)),
            Token::SemiColon => after_semicolon = true,
            tok if significant(tok) => after_semicolon = false,
            _ => {}
        }
    }
    None
}

/// Byte offsets of (line, column) positions, columns counted in characters.
struct LineIndex<'a> {
    text: &'a str,
    starts: Vec<usize>,
}

impl<'a> LineIndex<'a> {
    fn new(text: &'a str) -> LineIndex<'a> {
        let mut starts = vec![0];
        starts.extend(text.match_indices('\n').map(|(i, _)| i + 1));
        LineIndex { text, starts }
    }

    fn byte(&self, line: u64, column: u64) -> usize {
        let Some(&start) = self.starts.get((line as usize).saturating_sub(1)) else { return self.text.len() };
        let rest = &self.text[start..];
        rest.char_indices().nth((column as usize).saturating_sub(1)).map_or(self.text.len(), |(i, _)| start + i)
    }
}

static POSITION: LazyLock<regex::Regex> = LazyLock::new(|| regex::Regex::new(r"^(?s)(.*?),? at Line: (\d+), Column: (\d+)\s*$").unwrap());

/// Parses one statement; a syntax error carries its absolute position and
/// the offending line of `full` (the whole input) with a caret.
pub fn parse(piece: &Piece, dialect: &dyn Dialect, full: &str, base: Origin) -> Result<DFStatement, ShellError> {
    let parsed = DFParserBuilder::new(piece.sql.as_str()).with_dialect(dialect).build().and_then(|mut p| p.parse_statements());
    let mut stmts = match parsed {
        Ok(s) => s,
        Err(e) => {
            let raw = match e.find_root() {
                datafusion::error::DataFusionError::SQL(pe, _) => match pe.as_ref() {
                    datafusion::sql::sqlparser::parser::ParserError::ParserError(m) | datafusion::sql::sqlparser::parser::ParserError::TokenizerError(m) => {
                        m.clone()
                    }
                    other => other.to_string(),
                },
                other => other.to_string(),
            };
            return Err(syntax_error(&raw, full, base, piece.origin));
        }
    };
    match stmts.len() {
        1 => Ok(stmts.pop_front().unwrap()),
        0 => Err(ShellError::Other("empty statement".into())),
        _ => Err(ShellError::Other("several statements in one piece (missing ';'?)".into())),
    }
}

fn syntax_error(raw: &str, full: &str, base: Origin, piece: Origin) -> ShellError {
    let Some(c) = POSITION.captures(raw) else {
        return ShellError::Syntax { message: raw.to_string(), line: None, column: None, snippet: String::new() };
    };
    let message = c[1].to_string();
    let (l, col): (u64, u64) = (c[2].parse().unwrap_or(1), c[3].parse().unwrap_or(1));
    let (l, col, snippet) = place(full, base, piece, l, col);
    ShellError::Syntax { message, line: Some(l), column: Some(col), snippet }
}

/// A piece-relative position as (line, column) of the file, with the
/// offending line of `full` and a caret under the column.
pub fn place(full: &str, base: Origin, piece: Origin, line: u64, column: u64) -> (u64, u64, String) {
    // Piece-relative → input-relative → file-relative.
    let (l, col) = piece.offset(line, column);
    let (l, col) = base.offset(l, col);
    let snippet = match full.lines().nth(l.saturating_sub(base.line) as usize) {
        Some(text) => {
            let gutter = format!("{l} | ");
            format!("\n  {gutter}{text}\n  {}^", " ".repeat(gutter.len() + (col as usize).saturating_sub(1)))
        }
        None => String::new(),
    };
    (l, col, snippet)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn splits_on_top_level_semicolons() {
        let d = GenericDialect {};
        let p = split("select 1;\n  select ';' -- ; x\n;select 3", &d);
        let texts: Vec<_> = p.iter().map(|p| (p.sql.as_str(), p.origin.line, p.origin.column)).collect();
        assert_eq!(texts, vec![("select 1", 1, 1), ("select ';'", 2, 3), ("select 3", 3, 2)]);
        assert_eq!(completeness("select 1 -- ;", &d), Completeness::Incomplete);
        assert_eq!(completeness("select ';", &d), Completeness::Incomplete);
        assert_eq!(completeness("select 1; -- done", &d), Completeness::Complete);
        assert_eq!(completeness(" -- nothing\n", &d), Completeness::Empty);
    }

    #[test]
    fn syntax_error_is_positioned_in_the_input() {
        let d = GenericDialect {};
        let full = "select 1;\nselect a\n  frm t";
        let pieces = split(full, &d);
        let e = parse(&pieces[1], &d, full, Origin::START).unwrap_err().to_string();
        assert!(e.starts_with("syntax error at line 3, column 7: Expected: end of statement, found: t"), "{e}");
        assert!(e.ends_with("\n  3 |   frm t\n            ^"), "{e:?}");
        // Positions are relative to the input's first line (a statement at line 10 of a file).
        let e = parse(&pieces[1], &d, full, Origin { line: 10, column: 1 }).unwrap_err().to_string();
        assert!(e.starts_with("syntax error at line 12, column 7"), "{e}");
    }
}
