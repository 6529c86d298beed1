//! File drops: CSV, JSON / NDJSON and Parquet files from a local folder,
//! a glob or an `s3://` prefix, read into Arrow.
//!
//! - CSV: header row (or `header: false`: columns `column_1`, ...), any
//!   one-byte delimiter, double-quote quoting, UTF-8 or Latin-1 (`encoding:
//!   auto` takes a file that is not valid UTF-8 as Latin-1). Types are
//!   inferred over every row with the seed reader's widening (integer →
//!   number → text, dates, timestamps, booleans); `column_types` overrides.
//! - JSON: an array of objects, or one object per line (NDJSON); types are
//!   inferred by arrow-json (nested objects become structs, arrays lists).
//! - Parquet: read as is, a row group at a time (re-written as zstd).
//!
//! Malformed rows fail the file with its name, line (and column), or with
//! `on_error: skip` are dropped, counted, and the first few reported.
//!
//! Parquet files, and CSV and JSON files over a threshold, stream in
//! constant memory instead ([`super::stream`]).

use bytes::Bytes;
use datafusion::arrow::array::RecordBatch;
use datafusion::arrow::datatypes::SchemaRef;
use futures::StreamExt;
use object_store::path::Path as ObjPath;
use object_store::{ObjectStore, ObjectStoreExt};
use std::sync::Arc;

use super::spec::{Encoding, FileFormat, FilesSpec, OnError};
use crate::config::Settings;

/// How many bad lines the log keeps.
pub(super) const BAD_LINES_KEPT: usize = 5;

/// A landing folder (or glob, or prefix).
pub struct Landing {
    pub(super) store: Arc<dyn ObjectStore>,
    remote: bool,
    base: ObjPath,
    pattern: Option<glob::Pattern>,
    /// The resolved folder (path or URL) for names in messages.
    pub label: String,
    single: bool,
}

/// One landing file.
#[derive(Debug, Clone)]
pub struct LandingFile {
    pub path: ObjPath,
    /// Path or URL, for messages and the log.
    pub name: String,
    pub size: u64,
}

/// A file read into Arrow.
pub struct Parsed {
    pub schema: SchemaRef,
    pub batches: Vec<RecordBatch>,
    pub skipped: u64,
    pub bad_lines: Vec<String>,
}

impl Landing {
    pub fn open(settings: &Settings, path: &str) -> anyhow::Result<Landing> {
        let resolved = crate::engine::resolve_source_location(settings, path);
        let (base_s, glob_s) = match resolved.find(['*', '?', '[']) {
            Some(g) => {
                let cut = resolved[..g].rfind('/').map(|i| i + 1).unwrap_or(0);
                (resolved[..cut].to_string(), Some(resolved[cut..].to_string()))
            }
            None => (resolved.clone(), None),
        };
        let pattern = glob_s.as_deref().map(glob::Pattern::new).transpose().map_err(|e| anyhow::anyhow!("path '{path}': bad glob: {e}"))?;
        if resolved.contains("://") && !resolved.starts_with("file://") {
            let url = url::Url::parse(&format!("{}/", base_s.trim_end_matches('/')))?;
            let store = crate::storage::store_for(&url, settings)?;
            let base = ObjPath::from_url_path(url.path())?;
            return Ok(Landing { store, remote: true, base, pattern, label: base_s.trim_end_matches('/').to_string(), single: false });
        }
        let p = std::path::PathBuf::from(base_s.strip_prefix("file://").unwrap_or(&base_s));
        if !p.exists() {
            anyhow::bail!("landing folder {} does not exist\n  hint: create it, or fix `path` in the source's ingest block", p.display());
        }
        let single = p.is_file();
        let base = ObjPath::from_absolute_path(&p)?;
        Ok(Landing { store: Arc::new(object_store::local::LocalFileSystem::new()), remote: false, base, pattern, label: p.display().to_string(), single })
    }

    /// The files to consider, sorted by name (hidden files left out).
    pub async fn list(&self) -> anyhow::Result<Vec<LandingFile>> {
        if self.single {
            let m = self.store.head(&self.base).await?;
            return Ok(vec![LandingFile { path: self.base.clone(), name: self.label.clone(), size: m.size }]);
        }
        let mut out = vec![];
        let mut s = self.store.list(Some(&self.base));
        while let Some(m) = s.next().await {
            let m = m.map_err(|e| crate::storage::StorageError::remote(&self.label, e))?;
            let Some(rel) = m.location.prefix_match(&self.base) else { continue };
            let rel: Vec<String> = rel.map(|p| p.as_ref().to_string()).collect();
            if rel.iter().any(|p| p.starts_with('.') || p.starts_with('_')) {
                continue;
            }
            let rel = rel.join("/");
            if let Some(p) = &self.pattern
                && !p.matches(&rel)
            {
                continue;
            }
            out.push(LandingFile { path: m.location.clone(), name: format!("{}/{rel}", self.label.trim_end_matches('/')), size: m.size });
        }
        out.sort_by(|a, b| a.name.cmp(&b.name));
        Ok(out)
    }

    /// The file's path when the landing folder is on local disk.
    pub fn local_path(&self, f: &LandingFile) -> Option<std::path::PathBuf> {
        (!self.remote).then(|| std::path::PathBuf::from(&f.name))
    }

    pub async fn read(&self, f: &LandingFile) -> anyhow::Result<Bytes> {
        let r = self.store.get(&f.path).await.map_err(|e| crate::storage::StorageError::remote(&f.name, e))?;
        Ok(r.bytes().await.map_err(|e| crate::storage::StorageError::remote(&f.name, e))?)
    }
}

/// The format of a file: declared, else from its extension.
pub fn format_of(spec: &FilesSpec, name: &str) -> Result<FileFormat, String> {
    if let Some(f) = spec.format {
        return Ok(f);
    }
    let l = name.to_ascii_lowercase();
    if l.ends_with(".csv") || l.ends_with(".tsv") || l.ends_with(".txt") {
        Ok(FileFormat::Csv)
    } else if l.ends_with(".json") || l.ends_with(".ndjson") || l.ends_with(".jsonl") {
        Ok(FileFormat::Json)
    } else if l.ends_with(".parquet") {
        Ok(FileFormat::Parquet)
    } else {
        Err(format!("{name}: cannot tell the format from the file name\n  hint: set `format:` (csv, json or parquet) in the ingest block"))
    }
}

/// Reads one file into Arrow; errors name the file and line.
pub fn parse(spec: &FilesSpec, name: &str, bytes: &[u8]) -> Result<Parsed, String> {
    if bytes.iter().all(|b| b.is_ascii_whitespace()) {
        return Err(format!("{name}: the file is empty\n  hint: remove it from the landing folder (or let the producer write it again)"));
    }
    match format_of(spec, name)? {
        FileFormat::Csv => csv(spec, name, bytes),
        FileFormat::Json => json(spec, name, bytes),
        FileFormat::Parquet => parquet(name, bytes),
    }
}

pub(super) fn latin1(bytes: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(bytes.len() + bytes.len() / 16);
    for &b in bytes {
        if b < 0x80 {
            out.push(b);
        } else {
            out.push(0xC0 | (b >> 6));
            out.push(0x80 | (b & 0x3F));
        }
    }
    out
}

pub(super) fn csv(spec: &FilesSpec, name: &str, bytes: &[u8]) -> Result<Parsed, String> {
    let bytes = bytes.strip_prefix(b"\xEF\xBB\xBF").unwrap_or(bytes);
    let mut text: std::borrow::Cow<[u8]> = match spec.encoding {
        Encoding::Latin1 => latin1(bytes).into(),
        Encoding::Auto if std::str::from_utf8(bytes).is_err() => latin1(bytes).into(),
        _ => bytes.into(),
    };
    if !spec.header {
        let mut r = ::csv::ReaderBuilder::new().has_headers(false).flexible(true).delimiter(spec.delimiter).from_reader(&text[..]);
        let n = r.byte_records().next().and_then(Result::ok).map(|r| r.len()).unwrap_or(0);
        let header: Vec<String> = (1..=n).map(|i| format!("column_{i}")).collect();
        let mut t = header.join(&(spec.delimiter as char).to_string()).into_bytes();
        t.push(b'\n');
        t.extend_from_slice(&text);
        text = t.into();
    }
    let (mut skipped, mut bad_lines) = (0u64, vec![]);
    if spec.on_error == OnError::Skip {
        let (kept, n, lines) = drop_ragged(&text, spec.delimiter);
        if n > 0 {
            text = kept.into();
            skipped = n;
            bad_lines = lines;
        }
    }
    let opts = crate::seed::infer::SeedOptions { delimiter: spec.delimiter, column_types: spec.column_types.clone(), int32_when_fits: false };
    let data = crate::seed::infer::read_seed(name, &text, &opts).map_err(|e| e.to_string().replace(" — ", "\n  hint: "))?;
    if data.rows == 0 && skipped == 0 {
        return Err(format!(
            "{name}: the file has a header row but no data rows\n  hint: remove it from the landing folder (or let the producer write it again)"
        ));
    }
    Ok(Parsed { schema: data.schema, batches: data.batches, skipped, bad_lines })
}

/// Removes records whose field count differs from the header's; returns the
/// kept bytes, how many were dropped and the first few as `line N: ...`.
fn drop_ragged(text: &[u8], delimiter: u8) -> (Vec<u8>, u64, Vec<String>) {
    let mut r = ::csv::ReaderBuilder::new().has_headers(false).flexible(true).delimiter(delimiter).from_reader(text);
    let mut rec = ::csv::ByteRecord::new();
    let mut kept = Vec::with_capacity(text.len());
    let (mut expected, mut dropped, mut lines) = (None, 0u64, vec![]);
    loop {
        let start = r.position().byte() as usize;
        match r.read_byte_record(&mut rec) {
            Ok(false) => break,
            Ok(true) => {}
            Err(_) => break,
        }
        let end = r.position().byte() as usize;
        let line = rec.position().map(|p| p.line()).unwrap_or(0);
        let n = rec.len();
        let want = *expected.get_or_insert(n);
        if n == want {
            kept.extend_from_slice(&text[start..end.min(text.len())]);
        } else {
            dropped += 1;
            if lines.len() < BAD_LINES_KEPT {
                lines.push(format!("line {line}: {n} fields, header has {want}"));
            }
        }
    }
    (kept, dropped, lines)
}

/// serde_json's message without its `at line L column C` (the caller names the position).
pub(super) fn json_msg(e: &serde_json::Error) -> String {
    let m = e.to_string();
    m.rsplit_once(" at line ").map(|(a, _)| a.to_string()).unwrap_or(m)
}

pub(super) fn json(spec: &FilesSpec, name: &str, bytes: &[u8]) -> Result<Parsed, String> {
    use serde_json::Value;
    let text = std::str::from_utf8(bytes).map_err(|e| {
        let line = bytes[..e.valid_up_to()].iter().filter(|&&b| b == b'\n').count() + 1;
        format!("{name}:{line}: invalid UTF-8 (JSON files must be UTF-8)\n  hint: save the file as UTF-8")
    })?;
    let (mut skipped, mut bad_lines) = (0u64, vec![]);
    let mut values: Vec<Value> = vec![];
    let trimmed = text.trim_start();
    if trimmed.starts_with('[') {
        values = serde_json::from_str(text).map_err(|e| {
            format!(
                "{name}:{}:{}: malformed JSON: {}\n  hint: fix the file; a JSON file holds one array of objects, or one object per line",
                e.line(),
                e.column(),
                json_msg(&e)
            )
        })?;
    } else {
        for (i, line) in text.lines().enumerate() {
            if line.trim().is_empty() {
                continue;
            }
            match serde_json::from_str::<Value>(line) {
                Ok(v @ Value::Object(_)) => values.push(v),
                Ok(_) | Err(_) if spec.on_error == OnError::Skip => {
                    skipped += 1;
                    if bad_lines.len() < BAD_LINES_KEPT {
                        bad_lines.push(format!("line {}: not a JSON object", i + 1));
                    }
                }
                Ok(_) => return Err(format!("{name}:{}: the line is not a JSON object\n  hint: NDJSON files hold one object per line", i + 1)),
                Err(e) => {
                    return Err(format!(
                        "{name}:{}:{}: malformed JSON: {}\n  hint: fix the line, or set on_error: skip to drop malformed lines",
                        i + 1,
                        e.column(),
                        json_msg(&e)
                    ));
                }
            }
        }
    }
    if let Some(i) = values.iter().position(|v| !v.is_object()) {
        return Err(format!("{name}: element {} of the array is not a JSON object\n  hint: a JSON file holds an array of objects", i + 1));
    }
    if values.is_empty() {
        return Err(format!("{name}: the file holds no rows\n  hint: remove it from the landing folder"));
    }
    let schema = json_schema(name, &values)?;
    let mut batches = vec![];
    for chunk in values.chunks(crate::seed::infer::BATCH_ROWS) {
        let mut d = datafusion::arrow::json::ReaderBuilder::new(schema.clone()).build_decoder().map_err(|e| format!("{name}: {e}"))?;
        d.serialize(chunk).map_err(|e| format!("{name}: {e}"))?;
        if let Some(b) = d.flush().map_err(|e| format!("{name}: {e}"))? {
            batches.push(b);
        }
    }
    Ok(Parsed { schema, batches, skipped, bad_lines })
}

/// The schema of JSON objects: arrow-json's inference (integers widen to
/// floats, mixed scalars to strings), columns in the order keys first appear.
pub(super) fn json_schema(name: &str, values: &[serde_json::Value]) -> Result<SchemaRef, String> {
    let inferred = datafusion::arrow::json::reader::infer_json_schema_from_iterator(values.iter().map(Ok)).map_err(|e| format!("{name}: {e}"))?;
    // Columns in the order keys first appear (inference returns them unordered).
    let mut order: indexmap::IndexSet<&str> = indexmap::IndexSet::new();
    for v in values {
        if let serde_json::Value::Object(m) = v {
            order.extend(m.keys().map(String::as_str));
        }
    }
    let fields: Vec<datafusion::arrow::datatypes::FieldRef> =
        order.iter().filter_map(|k| inferred.field_with_name(k).ok().map(|f| Arc::new(f.clone()))).collect();
    Ok(Arc::new(datafusion::arrow::datatypes::Schema::new(fields)))
}

fn parquet(name: &str, bytes: &[u8]) -> Result<Parsed, String> {
    use datafusion::parquet::arrow::arrow_reader::ParquetRecordBatchReaderBuilder;
    let b = ParquetRecordBatchReaderBuilder::try_new(Bytes::copy_from_slice(bytes))
        .map_err(|e| format!("{name}: not a readable Parquet file: {e}\n  hint: check the file is complete (not still being written)"))?;
    let schema = b.schema().clone();
    let reader = b.build().map_err(|e| format!("{name}: {e}"))?;
    let batches: Vec<RecordBatch> = reader.collect::<Result<_, _>>().map_err(|e| format!("{name}: {e}"))?;
    Ok(Parsed { schema, batches, skipped: 0, bad_lines: vec![] })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn spec() -> FilesSpec {
        FilesSpec {
            path: "x".into(),
            format: None,
            delimiter: b',',
            header: true,
            encoding: Encoding::Auto,
            on_error: OnError::Fail,
            column_types: Default::default(),
        }
    }

    #[test]
    fn latin1_files_are_read_as_latin1() {
        let p = parse(&spec(), "a.csv", b"id,name\n1,Jos\xe9\n").unwrap();
        let col = p.batches[0].column(1);
        let s = datafusion::arrow::array::AsArray::as_string::<i32>(col);
        assert_eq!(s.value(0), "José");
    }

    #[test]
    fn ragged_rows_fail_with_file_and_line_or_are_skipped() {
        let e = parse(&spec(), "a.csv", b"id,name\n1,a\n2\n3,c\n").err().unwrap();
        assert_eq!(e, "a.csv:3: row has 1 fields, header has 2\n  hint: add the missing fields (leave a field empty for NULL)");
        let s = FilesSpec { on_error: OnError::Skip, ..spec() };
        let p = parse(&s, "a.csv", b"id,name\n1,a\n2\n3,c\n").unwrap();
        assert_eq!((p.batches.iter().map(|b| b.num_rows()).sum::<usize>(), p.skipped), (2, 1));
        assert_eq!(p.bad_lines, vec!["line 3: 1 fields, header has 2"]);
    }

    #[test]
    fn empty_and_header_only_files_are_errors() {
        assert_eq!(parse(&spec(), "a.csv", b"").err().unwrap().lines().next().unwrap(), "a.csv: the file is empty");
        assert_eq!(parse(&spec(), "a.csv", b"id,name\n").err().unwrap().lines().next().unwrap(), "a.csv: the file has a header row but no data rows");
    }

    #[test]
    fn malformed_ndjson_names_line_and_column() {
        let e = parse(&spec(), "a.json", b"{\"a\": 1}\n{\"a\": }\n").err().unwrap();
        assert!(e.starts_with("a.json:2:7: malformed JSON: "), "{e}");
        let p = parse(&spec(), "b.json", b"[{\"a\": 1, \"b\": \"x\"}, {\"a\": 2}]").unwrap();
        assert_eq!(p.batches.iter().map(|b| b.num_rows()).sum::<usize>(), 2);
    }
}
