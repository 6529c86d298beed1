//! Result formats of `dp sql` (`--format`, `\pset format`): each writes
//! batches as they arrive, so csv/tsv/json/ndjson stream; `table` and
//! `markdown` keep at most `max_rows` rows for display.

use comfy_table::{Cell, ContentArrangement, Table};
use datafusion::arrow::array::RecordBatch;
use datafusion::arrow::datatypes::SchemaRef;
use datafusion::arrow::error::ArrowError;
use datafusion::arrow::util::display::{ArrayFormatter, FormatOptions};
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

/// Display limits (the REPL on a terminal sets them; scripts print everything).
#[derive(Clone, Copy, Debug, Default)]
pub struct Limits {
    pub max_rows: Option<usize>,
    pub max_cell_chars: Option<usize>,
}

/// Writes one result set.
pub struct ResultWriter<'w> {
    format: Format,
    limits: Limits,
    out: &'w mut dyn Write,
    schema: SchemaRef,
    rows: usize,
    kept: Vec<RecordBatch>,
    kept_rows: usize,
}

impl<'w> ResultWriter<'w> {
    pub fn new(format: Format, limits: Limits, schema: SchemaRef, out: &'w mut dyn Write) -> Result<ResultWriter<'w>, ArrowError> {
        let mut w = ResultWriter { format, limits, out, schema, rows: 0, kept: Vec::new(), kept_rows: 0 };
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
        w.write(batch)
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
            Format::Table | Format::Markdown => {
                let room = self.limits.max_rows.map_or(usize::MAX, |m| m.saturating_sub(self.kept_rows));
                if room > 0 {
                    let take = room.min(batch.num_rows());
                    self.kept.push(batch.slice(0, take));
                    self.kept_rows += take;
                }
            }
        }
        Ok(())
    }

    /// Finishes the output; returns (rows, rows shown).
    pub fn finish(self) -> Result<(usize, usize), ArrowError> {
        let shown = match self.format {
            Format::Table | Format::Markdown => self.kept_rows,
            _ => self.rows,
        };
        match self.format {
            Format::Json => self.out.write_all(b"]\n")?,
            Format::Table | Format::Markdown if !self.schema.fields().is_empty() => {
                let table = render_table(self.format, &self.schema, &self.kept, self.limits.max_cell_chars)?;
                writeln!(self.out, "{table}")?;
            }
            _ => {}
        }
        self.out.flush()?;
        Ok((self.rows, shown))
    }
}

fn render_table(format: Format, schema: &SchemaRef, batches: &[RecordBatch], max_cell: Option<usize>) -> Result<String, ArrowError> {
    let mut table = Table::new();
    if format == Format::Markdown {
        table.load_preset(comfy_table::presets::ASCII_MARKDOWN);
    } else {
        // The frame of arrow's pretty printer (and datafusion-cli).
        table.load_preset("||--+-++|    ++++++");
    }
    table.set_content_arrangement(ContentArrangement::Disabled);
    let clip = |s: String| -> String {
        let s = if format == Format::Markdown { s.replace('|', "\\|").replace('\n', " ") } else { s };
        match max_cell {
            Some(m) if s.chars().count() > m => format!("{}…", s.chars().take(m.saturating_sub(1)).collect::<String>()),
            _ => s,
        }
    };
    table.set_header(schema.fields().iter().map(|f| Cell::new(clip(f.name().clone()))));
    let null = if format == Format::Markdown { "" } else { "NULL" };
    let opts = FormatOptions::default().with_display_error(true).with_null(null);
    for batch in batches {
        let formatters = batch.columns().iter().map(|c| ArrayFormatter::try_new(c.as_ref(), &opts)).collect::<Result<Vec<_>, _>>()?;
        for row in 0..batch.num_rows() {
            table.add_row(formatters.iter().map(|f| Cell::new(clip(f.value(row).to_string()))));
        }
    }
    Ok(table.to_string())
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
        let b = batch();
        let mut out = Vec::new();
        let mut w = ResultWriter::new(format, limits, b.schema(), &mut out).unwrap();
        w.write(&b).unwrap();
        w.finish().unwrap();
        String::from_utf8(out).unwrap()
    }

    #[test]
    fn every_format() {
        assert_eq!(render(Format::Csv, Limits::default()), "id,v\n1,a|b\n2,\n");
        assert_eq!(render(Format::Tsv, Limits::default()), "id\tv\n1\ta|b\n2\t\n");
        assert_eq!(render(Format::Ndjson, Limits::default()), "{\"id\":1,\"v\":\"a|b\"}\n{\"id\":2,\"v\":null}\n");
        assert_eq!(render(Format::Json, Limits::default()), "[{\"id\":1,\"v\":\"a|b\"},{\"id\":2,\"v\":null}]\n");
        assert_eq!(render(Format::Table, Limits::default()), "+----+------+\n| id | v    |\n+----+------+\n| 1  | a|b  |\n| 2  | NULL |\n+----+------+\n");
        assert_eq!(render(Format::Markdown, Limits::default()), "| id | v    |\n|----|------|\n| 1  | a\\|b |\n| 2  |      |\n");
        assert_eq!(
            render(Format::Table, Limits { max_rows: Some(1), max_cell_chars: Some(2) }),
            "+----+----+\n| id | v  |\n+----+----+\n| 1  | a… |\n+----+----+\n"
        );
    }
}
