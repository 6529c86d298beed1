//! Result formats of `dp sql` (`--format`, `\pset format`): each writes
//! batches as they arrive, so csv/tsv/json/ndjson stream; `table` and
//! `markdown` render once all rows are in. Only `table` has display
//! [`Limits`]: with `max_rows` it keeps the first and the last rows
//! (memory bounded by the limit) and prints a `…` row between them, as
//! DuckDB does; with `max_cell_chars` long values end in `…`.

use comfy_table::{Cell, ContentArrangement, Table};
use datafusion::arrow::array::RecordBatch;
use datafusion::arrow::datatypes::SchemaRef;
use datafusion::arrow::error::ArrowError;
use datafusion::arrow::util::display::{ArrayFormatter, FormatOptions};
use std::collections::VecDeque;
use std::io::Write;
use std::str::FromStr;

#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub enum Format {
    #[default]
    Table,
    Csv,
    Tsv,
    Json,
    Ndjson,
    Markdown,
}

impl Format {
    pub const NAMES: &'static str = "table, csv, tsv, json, ndjson or markdown";

    pub fn name(self) -> &'static str {
        match self {
            Format::Table => "table",
            Format::Csv => "csv",
            Format::Tsv => "tsv",
            Format::Json => "json",
            Format::Ndjson => "ndjson",
            Format::Markdown => "markdown",
        }
    }
}

impl FromStr for Format {
    type Err = String;
    fn from_str(s: &str) -> Result<Format, String> {
        Ok(match s.to_ascii_lowercase().as_str() {
            "table" => Format::Table,
            "csv" => Format::Csv,
            "tsv" => Format::Tsv,
            "json" => Format::Json,
            "ndjson" | "jsonl" => Format::Ndjson,
            "markdown" | "md" => Format::Markdown,
            other => return Err(format!("unknown format '{other}': use {}", Format::NAMES)),
        })
    }
}

/// Display limits of the `table` format (`\pset maxrows`, `\pset
/// maxwidth`): the REPL sets them, scripts print everything unless they
/// set them. Other formats are data and never truncate.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Limits {
    /// Rows printed: the first half and the last half, with a `…` row
    /// between them when rows were left out.
    pub max_rows: Option<usize>,
    /// Characters of a cell; a longer value ends in `…`.
    pub max_cell_chars: Option<usize>,
}

/// What one result set printed.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Summary {
    pub rows: usize,
    pub shown: usize,
    /// Some cell was cut at `max_cell_chars`.
    pub clipped: bool,
}

/// Writes one result set.
pub struct ResultWriter<'w> {
    format: Format,
    limits: Limits,
    out: &'w mut dyn Write,
    schema: SchemaRef,
    rows: usize,
    head: Vec<RecordBatch>,
    head_rows: usize,
    tail: VecDeque<RecordBatch>,
    tail_rows: usize,
}

/// CSV has no nested values: lists, structs and maps are written as their
/// display text (`[a, b]`, `{k: v}`), as DuckDB's CSV writer does.
fn nested_as_text(batch: &RecordBatch) -> Result<RecordBatch, ArrowError> {
    use datafusion::arrow::array::{Array, ArrayRef, StringArray};
    use datafusion::arrow::datatypes::{DataType, Field, Schema};
    if !batch.schema().fields().iter().any(|f| f.data_type().is_nested()) {
        return Ok(batch.clone());
    }
    let options = FormatOptions::default().with_null("");
    let mut fields = Vec::with_capacity(batch.num_columns());
    let mut columns: Vec<ArrayRef> = Vec::with_capacity(batch.num_columns());
    for (f, c) in batch.schema().fields().iter().zip(batch.columns()) {
        if !f.data_type().is_nested() {
            fields.push(f.as_ref().clone());
            columns.push(c.clone());
            continue;
        }
        let fmt = ArrayFormatter::try_new(c.as_ref(), &options)?;
        let text: StringArray = (0..c.len()).map(|i| (!c.is_null(i)).then(|| fmt.value(i).to_string())).collect();
        fields.push(Field::new(f.name(), DataType::Utf8, true));
        columns.push(std::sync::Arc::new(text));
    }
    RecordBatch::try_new(std::sync::Arc::new(Schema::new(fields)), columns)
}

impl<'w> ResultWriter<'w> {
    pub fn new(format: Format, limits: Limits, schema: SchemaRef, out: &'w mut dyn Write) -> Result<ResultWriter<'w>, ArrowError> {
        let limits = if format == Format::Table { limits } else { Limits::default() };
        let mut w = ResultWriter { format, limits, out, schema, rows: 0, head: Vec::new(), head_rows: 0, tail: VecDeque::new(), tail_rows: 0 };
        match format {
            Format::Csv | Format::Tsv if !w.schema.fields().is_empty() => {
                let empty = RecordBatch::new_empty(w.schema.clone());
                w.write_delimited(&empty, true)?;
            }
            Format::Json => w.out.write_all(b"[")?,
            _ => {}
        }
        Ok(w)
    }

    fn write_delimited(&mut self, batch: &RecordBatch, header: bool) -> Result<(), ArrowError> {
        let delim = if self.format == Format::Tsv { b'\t' } else { b',' };
        let mut w = datafusion::arrow::csv::WriterBuilder::new()
            .with_header(header)
            .with_delimiter(delim)
            .with_timestamp_format("%Y-%m-%d %H:%M:%S%.f".into())
            .build(&mut *self.out);
        w.write(&nested_as_text(batch)?)
    }

    /// (rows kept from the start, rows kept from the end).
    fn split(&self) -> (usize, usize) {
        match self.limits.max_rows {
            Some(m) => (m - m / 2, m / 2),
            None => (usize::MAX, 0),
        }
    }

    /// Keeps the first and last rows for display.
    fn keep(&mut self, batch: &RecordBatch) {
        let (head_max, tail_max) = self.split();
        let n = batch.num_rows();
        let take = head_max.saturating_sub(self.head_rows).min(n);
        if take > 0 {
            self.head.push(batch.slice(0, take));
            self.head_rows += take;
        }
        let rest = (n - take).min(tail_max);
        if rest == 0 {
            return;
        }
        self.tail.push_back(batch.slice(n - rest, rest));
        self.tail_rows += rest;
        while self.tail_rows > tail_max {
            let Some(front) = self.tail.pop_front() else { break };
            let excess = self.tail_rows - tail_max;
            if front.num_rows() > excess {
                self.tail.push_front(front.slice(excess, front.num_rows() - excess));
                self.tail_rows -= excess;
            } else {
                self.tail_rows -= front.num_rows();
            }
        }
    }

    pub fn write(&mut self, batch: &RecordBatch) -> Result<(), ArrowError> {
        if batch.num_rows() == 0 {
            return Ok(());
        }
        let first = self.rows == 0;
        self.rows += batch.num_rows();
        match self.format {
            Format::Csv | Format::Tsv => self.write_delimited(batch, false)?,
            Format::Ndjson | Format::Json => {
                let mut buf = Vec::new();
                {
                    let mut w = datafusion::arrow::json::WriterBuilder::new()
                        .with_explicit_nulls(true)
                        .build::<_, datafusion::arrow::json::writer::LineDelimited>(&mut buf);
                    w.write(batch)?;
                    w.finish()?;
                }
                if self.format == Format::Ndjson {
                    self.out.write_all(&buf)?;
                } else {
                    let text = String::from_utf8_lossy(&buf);
                    for (i, line) in text.lines().enumerate() {
                        if !(first && i == 0) {
                            self.out.write_all(b",")?;
                        }
                        self.out.write_all(line.as_bytes())?;
                    }
                }
            }
            Format::Table | Format::Markdown => self.keep(batch),
        }
        Ok(())
    }

    /// Finishes the output.
    pub fn finish(self) -> Result<Summary, ArrowError> {
        let mut summary = Summary { rows: self.rows, shown: self.rows, clipped: false };
        match self.format {
            Format::Json => self.out.write_all(b"]\n")?,
            Format::Table | Format::Markdown if !self.schema.fields().is_empty() => {
                summary.shown = self.head_rows + self.tail_rows;
                let elided = summary.shown < self.rows;
                let tail: Vec<RecordBatch> = self.tail.into_iter().collect();
                let (table, clipped) = render_table(self.format, &self.schema, &self.head, elided, &tail, self.limits.max_cell_chars)?;
                summary.clipped = clipped;
                writeln!(self.out, "{table}")?;
            }
            _ => {}
        }
        self.out.flush()?;
        Ok(summary)
    }
}

/// The footer of a result (the REPL and `table` format print it on
/// stderr): the row count, rows shown, the elapsed time and how to see
/// what was cut.
pub fn footer(s: Summary, limits: Limits, no_columns: bool, seconds: Option<f64>) -> String {
    let time = seconds.map(|t| format!(" in {t:.3}s")).unwrap_or_default();
    let plural = |n: usize| if n == 1 { "" } else { "s" };
    let what = if no_columns {
        "OK".to_string()
    } else if s.shown < s.rows {
        format!("{} rows, {} shown", s.rows, s.shown)
    } else {
        format!("{} row{}", s.rows, plural(s.rows))
    };
    let mut hints = Vec::new();
    if s.shown < s.rows {
        hints.push("\\pset maxrows 0 shows all rows".to_string());
    }
    if s.clipped {
        let w = limits.max_cell_chars.unwrap_or(0);
        hints.push(format!("values cut at {w} characters: \\pset maxwidth 0 shows them whole"));
    }
    let hints = if hints.is_empty() { String::new() } else { format!("; {}", hints.join("; ")) };
    format!("({what}{time}{hints})")
}

fn render_table(
    format: Format,
    schema: &SchemaRef,
    head: &[RecordBatch],
    elided: bool,
    tail: &[RecordBatch],
    max_cell: Option<usize>,
) -> Result<(String, bool), ArrowError> {
    let mut table = Table::new();
    if format == Format::Markdown {
        table.load_preset(comfy_table::presets::ASCII_MARKDOWN);
    } else {
        // The frame of arrow's pretty printer (and datafusion-cli).
        table.load_preset("||--+-++|    ++++++");
    }
    table.set_content_arrangement(ContentArrangement::Disabled);
    let mut clipped = false;
    let mut clip = |s: String| -> String {
        let s = if format == Format::Markdown { s.replace('|', "\\|").replace('\n', " ") } else { s };
        match max_cell {
            Some(m) if m > 0 && s.chars().count() > m => {
                clipped = true;
                format!("{}…", s.chars().take(m.saturating_sub(1)).collect::<String>())
            }
            _ => s,
        }
    };
    table.set_header(schema.fields().iter().map(|f| Cell::new(clip(f.name().clone()))));
    let null = if format == Format::Markdown { "" } else { "NULL" };
    let opts = FormatOptions::default().with_display_error(true).with_null(null);
    let add = |table: &mut Table, batches: &[RecordBatch], clip: &mut dyn FnMut(String) -> String| -> Result<(), ArrowError> {
        for batch in batches {
            let formatters = batch.columns().iter().map(|c| ArrayFormatter::try_new(c.as_ref(), &opts)).collect::<Result<Vec<_>, _>>()?;
            for row in 0..batch.num_rows() {
                table.add_row(formatters.iter().map(|f| Cell::new(clip(f.value(row).to_string()))));
            }
        }
        Ok(())
    };
    add(&mut table, head, &mut clip)?;
    if elided {
        table.add_row(schema.fields().iter().map(|_| Cell::new("…")));
    }
    add(&mut table, tail, &mut clip)?;
    Ok((table.to_string(), clipped))
}

#[cfg(test)]
mod tests {
    use super::*;
    use datafusion::arrow::array::{Int64Array, StringArray};
    use datafusion::arrow::datatypes::{DataType, Field, Schema};
    use std::sync::Arc;

    fn batch() -> RecordBatch {
        let schema = Arc::new(Schema::new(vec![Field::new("id", DataType::Int64, false), Field::new("v", DataType::Utf8, true)]));
        RecordBatch::try_new(schema, vec![Arc::new(Int64Array::from(vec![1, 2])), Arc::new(StringArray::from(vec![Some("a|b"), None]))]).unwrap()
    }

    fn render(format: Format, limits: Limits) -> String {
        render_batches(format, limits, &[batch()]).0
    }

    fn render_batches(format: Format, limits: Limits, batches: &[RecordBatch]) -> (String, Summary) {
        let mut out = Vec::new();
        let mut w = ResultWriter::new(format, limits, batches[0].schema(), &mut out).unwrap();
        for b in batches {
            w.write(b).unwrap();
        }
        let summary = w.finish().unwrap();
        (String::from_utf8(out).unwrap(), summary)
    }

    #[test]
    fn every_format() {
        assert_eq!(render(Format::Csv, Limits::default()), "id,v\n1,a|b\n2,\n");
        assert_eq!(render(Format::Tsv, Limits::default()), "id\tv\n1\ta|b\n2\t\n");
        assert_eq!(render(Format::Ndjson, Limits::default()), "{\"id\":1,\"v\":\"a|b\"}\n{\"id\":2,\"v\":null}\n");
        assert_eq!(render(Format::Json, Limits::default()), "[{\"id\":1,\"v\":\"a|b\"},{\"id\":2,\"v\":null}]\n");
        assert_eq!(render(Format::Table, Limits::default()), "+----+------+\n| id | v    |\n+----+------+\n| 1  | a|b  |\n| 2  | NULL |\n+----+------+\n");
        assert_eq!(render(Format::Markdown, Limits::default()), "| id | v    |\n|----|------|\n| 1  | a\\|b |\n| 2  |      |\n");
    }

    /// Rows 1..=n with a value of `width` characters, in batches of 7.
    fn numbered(n: i64, width: usize) -> Vec<RecordBatch> {
        let schema = Arc::new(Schema::new(vec![Field::new("id", DataType::Int64, false), Field::new("text", DataType::Utf8, false)]));
        (1..=n)
            .collect::<Vec<_>>()
            .chunks(7)
            .map(|c| {
                let text: Vec<String> = c.iter().map(|i| format!("{i}:{}", "x".repeat(width))).collect();
                RecordBatch::try_new(schema.clone(), vec![Arc::new(Int64Array::from(c.to_vec())), Arc::new(StringArray::from(text))]).unwrap()
            })
            .collect()
    }

    #[test]
    fn long_results_show_first_and_last_rows() {
        let limits = Limits { max_rows: Some(5), max_cell_chars: Some(8) };
        let (text, summary) = render_batches(Format::Table, limits, &numbered(23, 3));
        assert_eq!(summary, Summary { rows: 23, shown: 5, clipped: false });
        insta::assert_snapshot!("first_and_last_rows", text);
        insta::assert_snapshot!("footer_rows_cut", footer(summary, limits, false, Some(0.0123)));
        // Fewer rows than the limit: all of them, no `…` row.
        let (text, summary) = render_batches(Format::Table, limits, &numbered(5, 1));
        assert_eq!(summary, Summary { rows: 5, shown: 5, clipped: false });
        assert!(!text.contains('…'), "{text}");
    }

    #[test]
    fn wide_values_are_cut_in_table_format_only() {
        let limits = Limits { max_rows: Some(40), max_cell_chars: Some(10) };
        let (text, summary) = render_batches(Format::Table, limits, &numbered(3, 20));
        assert_eq!(summary, Summary { rows: 3, shown: 3, clipped: true });
        insta::assert_snapshot!("wide_values_cut", text);
        insta::assert_snapshot!("footer_values_cut", footer(summary, limits, false, None));
        // maxwidth 0: whole values.
        let (text, summary) = render_batches(Format::Table, Limits { max_rows: None, max_cell_chars: Some(0) }, &numbered(1, 50));
        assert!(!summary.clipped && text.contains(&"x".repeat(50)), "{text}");
        // Data formats never cut, whatever the limits.
        for format in [Format::Csv, Format::Tsv, Format::Json, Format::Ndjson, Format::Markdown] {
            let (text, summary) = render_batches(format, limits, &numbered(100, 60));
            assert_eq!(summary, Summary { rows: 100, shown: 100, clipped: false }, "{format:?}");
            assert!(text.contains(&format!("100:{}", "x".repeat(60))), "{format:?}");
        }
    }

    #[test]
    fn footers() {
        let l = Limits::default();
        assert_eq!(footer(Summary { rows: 1, shown: 1, clipped: false }, l, false, Some(0.5)), "(1 row in 0.500s)");
        assert_eq!(footer(Summary { rows: 2, shown: 2, clipped: false }, l, false, None), "(2 rows)");
        assert_eq!(footer(Summary::default(), l, true, None), "(OK)");
    }
}
