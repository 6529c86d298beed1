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
//! - Parquet: read as is (re-written as zstd).
//!
//! Malformed rows fail the file with its name, line (and column), or with
//! `on_error: skip` are dropped, counted, and the first few reported.

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
const BAD_LINES_KEPT: usize = 5;

/// A landing folder (or glob, or prefix).
pub struct Landing {
    store: Arc<dyn ObjectStore>,
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

fn latin1(bytes: &[u8]) -> Vec<u8> {
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

fn csv(spec: &FilesSpec, name: &str, bytes: &[u8]) -> Result<Parsed, String> {
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
    let opts = crate::seed::infer::SeedOptions { delimiter: spec.delimiter, column_types: spec.column_types.clone() };
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
fn json_msg(e: &serde_json::Error) -> String {
    let m = e.to_string();
    m.rsplit_once(" at line ").map(|(a, _)| a.to_string()).unwrap_or(m)
}

fn json(spec: &FilesSpec, name: &str, bytes: &[u8]) -> Result<Parsed, String> {
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
    let inferred = datafusion::arrow::json::reader::infer_json_schema_from_iterator(values.iter().map(Ok)).map_err(|e| format!("{name}: {e}"))?;
    // Columns in the order keys first appear (inference returns them unordered).
    let mut order: indexmap::IndexSet<&str> = indexmap::IndexSet::new();
    for v in &values {
        if let Value::Object(m) = v {
            order.extend(m.keys().map(String::as_str));
        }
    }
    let fields: Vec<datafusion::arrow::datatypes::FieldRef> =
        order.iter().filter_map(|k| inferred.field_with_name(k).ok().map(|f| Arc::new(f.clone()))).collect();
    let schema = Arc::new(datafusion::arrow::datatypes::Schema::new(fields));
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

// ---------------------------------------------------------------------------
// Large CSV files: streamed in constant memory
// ---------------------------------------------------------------------------

/// CSV files larger than this are streamed (`DP_INGEST_STREAM_MB`, default
/// 64): their types come from the first [`PREFIX_BYTES`] and the rest is
/// parsed batch by batch.
pub fn stream_threshold() -> u64 {
    std::env::var("DP_INGEST_STREAM_MB").ok().and_then(|v| v.parse::<u64>().ok()).unwrap_or(64) << 20
}

/// How much of a streamed file its types are inferred from.
const PREFIX_BYTES: usize = 8 << 20;

/// A landing file on local disk (a temporary copy for remote ones), its
/// sha256 and whether it is valid UTF-8.
pub struct LocalCopy {
    pub path: std::path::PathBuf,
    temp: bool,
    pub sha256: String,
    pub utf8: bool,
}

impl Drop for LocalCopy {
    fn drop(&mut self) {
        if self.temp {
            let _ = std::fs::remove_file(&self.path);
        }
    }
}

/// Streams a landing file to local disk if remote, hashing it and checking
/// its UTF-8 on the way (constant memory).
pub async fn local_copy(landing: &Landing, f: &LandingFile) -> anyhow::Result<LocalCopy> {
    use sha2::Digest;
    use tokio::io::AsyncWriteExt;
    let mut hasher = sha2::Sha256::new();
    let mut utf8 = Utf8Check::default();
    let local = landing.local_path(f);
    let (path, temp) = match &local {
        Some(p) => (p.clone(), false),
        None => (std::env::temp_dir().join(format!("dp-ingest-{}.csv", uuid::Uuid::new_v4().simple())), true),
    };
    if temp {
        let r = landing.store.get(&f.path).await.map_err(|e| crate::storage::StorageError::remote(&f.name, e))?;
        let mut s = r.into_stream();
        let mut out = tokio::fs::File::create(&path).await?;
        while let Some(chunk) = s.next().await {
            let chunk = chunk.map_err(|e| crate::storage::StorageError::remote(&f.name, e))?;
            hasher.update(&chunk);
            utf8.feed(&chunk);
            out.write_all(&chunk).await?;
        }
        out.flush().await?;
    } else {
        let p = path.clone();
        let (h, u) = tokio::task::spawn_blocking(move || -> std::io::Result<_> {
            use std::io::Read;
            let mut file = std::fs::File::open(&p)?;
            let mut buf = vec![0u8; 1 << 20];
            loop {
                let n = file.read(&mut buf)?;
                if n == 0 {
                    break;
                }
                hasher.update(&buf[..n]);
                utf8.feed(&buf[..n]);
            }
            Ok((hasher, utf8))
        })
        .await??;
        hasher = h;
        utf8 = u;
    }
    Ok(LocalCopy { path, temp, sha256: hex::encode(hasher.finalize()), utf8: utf8.ok() })
}

/// UTF-8 validation across chunk boundaries.
#[derive(Default)]
struct Utf8Check {
    carry: Vec<u8>,
    bad: bool,
}

impl Utf8Check {
    fn feed(&mut self, chunk: &[u8]) {
        if self.bad {
            return;
        }
        let mut data = std::mem::take(&mut self.carry);
        data.extend_from_slice(chunk);
        match std::str::from_utf8(&data) {
            Ok(_) => {}
            Err(e) if e.error_len().is_none() => self.carry = data[e.valid_up_to()..].to_vec(),
            Err(_) => self.bad = true,
        }
    }

    fn ok(&self) -> bool {
        !self.bad && self.carry.is_empty()
    }
}

/// Reads Latin-1 bytes as UTF-8.
struct Latin1<R>(R, Vec<u8>);

impl<R: std::io::Read> std::io::Read for Latin1<R> {
    fn read(&mut self, out: &mut [u8]) -> std::io::Result<usize> {
        if self.1.is_empty() {
            let mut raw = vec![0u8; out.len().max(2) / 2];
            let n = self.0.read(&mut raw)?;
            if n == 0 {
                return Ok(0);
            }
            self.1 = latin1(&raw[..n]);
        }
        let n = out.len().min(self.1.len());
        out[..n].copy_from_slice(&self.1[..n]);
        self.1.drain(..n);
        Ok(n)
    }
}

/// Drops records whose field count differs from the header's (`on_error:
/// skip`), counting them and keeping the first few as `line N: ...`.
struct DropRagged<R: std::io::Read> {
    rdr: ::csv::Reader<R>,
    out: Vec<u8>,
    pos: usize,
    delimiter: u8,
    expected: Option<usize>,
    skipped: Arc<std::sync::Mutex<(u64, Vec<String>)>>,
}

impl<R: std::io::Read> std::io::Read for DropRagged<R> {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        while self.pos >= self.out.len() {
            self.out.clear();
            self.pos = 0;
            let mut rec = ::csv::ByteRecord::new();
            let mut w = ::csv::WriterBuilder::new().delimiter(self.delimiter).from_writer(std::mem::take(&mut self.out));
            let mut any = false;
            while w.get_ref().len() < 1 << 20 {
                if !self.rdr.read_byte_record(&mut rec).map_err(std::io::Error::other)? {
                    break;
                }
                any = true;
                let want = *self.expected.get_or_insert(rec.len());
                if rec.len() == want {
                    w.write_byte_record(&rec).map_err(std::io::Error::other)?;
                } else {
                    let mut s = self.skipped.lock().expect("skipped rows");
                    s.0 += 1;
                    if s.1.len() < BAD_LINES_KEPT {
                        let line = rec.position().map(|p| p.line()).unwrap_or(0);
                        s.1.push(format!("line {line}: {} fields, header has {want}", rec.len()));
                    }
                }
            }
            self.out = w.into_inner().map_err(|e| std::io::Error::other(e.to_string()))?;
            if !any {
                return Ok(0);
            }
        }
        let n = buf.len().min(self.out.len() - self.pos);
        buf[..n].copy_from_slice(&self.out[self.pos..self.pos + n]);
        self.pos += n;
        Ok(n)
    }
}

/// The schema of a large CSV file, from its first rows (the seed reader's
/// inference on a prefix cut at a line end).
pub fn csv_prefix_schema(spec: &FilesSpec, name: &str, copy: &LocalCopy) -> Result<SchemaRef, String> {
    use std::io::Read;
    let mut f = std::fs::File::open(&copy.path).map_err(|e| format!("{name}: {e}"))?;
    let mut buf = vec![0u8; PREFIX_BYTES];
    let mut n = 0;
    while n < buf.len() {
        let k = f.read(&mut buf[n..]).map_err(|e| format!("{name}: {e}"))?;
        if k == 0 {
            break;
        }
        n += k;
    }
    buf.truncate(n);
    if let Some(end) = buf.iter().rposition(|&b| b == b'\n') {
        buf.truncate(end + 1);
    }
    let sample = FilesSpec { encoding: if copy.utf8 { Encoding::Utf8 } else { spec.encoding }, ..spec.clone() };
    Ok(csv(&sample, name, &buf)?.schema)
}

/// arrow-csv's errors in the seed reader's words: file, line, column.
fn stream_error(name: &str, fields: &[String], e: &str) -> String {
    static RAGGED: std::sync::LazyLock<regex::Regex> =
        std::sync::LazyLock::new(|| regex::Regex::new(r"incorrect number of fields for line (\d+), expected (\d+) got (\d+)").expect("valid regex"));
    static VALUE: std::sync::LazyLock<regex::Regex> =
        std::sync::LazyLock::new(|| regex::Regex::new(r"Error while parsing value '(.*)' as type '(.*)' for column (\d+) at line (\d+)").expect("valid regex"));
    if let Some(c) = RAGGED.captures(e) {
        let (line, want, got) = (&c[1], &c[2], &c[3]);
        let fewer = got.parse::<u64>().unwrap_or(0) < want.parse::<u64>().unwrap_or(0);
        let hint = if fewer { "add the missing fields (leave a field empty for NULL)" } else { "fix the row or quote the field containing the delimiter" };
        return format!("{name}:{line}: row has {got} fields, header has {want}\n  hint: {hint}, or set on_error: skip");
    }
    if let Some(c) = VALUE.captures(e) {
        let line = c[4].parse::<u64>().map(|l| l + 1).unwrap_or(0);
        let col = c[3].parse::<usize>().ok().and_then(|i| fields.get(i)).cloned().unwrap_or_default();
        return format!(
            "{name}:{line}: column \"{col}\": cannot read \"{}\" as {}\n  hint: the types of a large file come from its first 8 MB; set column_types: {{{col}: ...}} in the ingest block",
            &c[1], &c[2]
        );
    }
    format!("{name}: {e}")
}

/// Streams a large CSV file as batches of `schema` into `tx`; returns the
/// rows skipped under `on_error: skip` and the first bad lines.
pub fn stream_csv(
    spec: &FilesSpec,
    name: &str,
    copy: &LocalCopy,
    schema: SchemaRef,
    tx: tokio::sync::mpsc::Sender<RecordBatch>,
) -> Result<(u64, Vec<String>), String> {
    use std::io::{BufReader, Read};
    let file = std::fs::File::open(&copy.path).map_err(|e| format!("{name}: {e}"))?;
    let mut input: Box<dyn Read + Send> = Box::new(BufReader::with_capacity(1 << 20, file));
    let latin = match spec.encoding {
        Encoding::Latin1 => true,
        Encoding::Auto => !copy.utf8,
        Encoding::Utf8 => false,
    };
    if latin {
        input = Box::new(Latin1(input, vec![]));
    }
    let skipped = Arc::new(std::sync::Mutex::new((0u64, vec![])));
    // A file without a header gets the inferred names as its first line.
    let mut first = vec![];
    if !spec.header {
        let names: Vec<String> = schema.fields().iter().map(|f| f.name().clone()).collect();
        first = names.join(&(spec.delimiter as char).to_string()).into_bytes();
        first.push(b'\n');
    }
    if spec.on_error == OnError::Skip {
        let rdr = ::csv::ReaderBuilder::new().has_headers(false).flexible(true).delimiter(spec.delimiter).from_reader(input);
        input = Box::new(DropRagged { rdr, out: first, pos: 0, delimiter: spec.delimiter, expected: None, skipped: skipped.clone() });
    } else if !first.is_empty() {
        input = Box::new(std::io::Cursor::new(first).chain(input));
    }
    let reader = datafusion::arrow::csv::ReaderBuilder::new(schema)
        .with_header(true)
        .with_delimiter(spec.delimiter)
        .with_batch_size(65_536)
        .build(input)
        .map_err(|e| format!("{name}: {e}"))?;
    let fields: Vec<String> = reader.schema().fields().iter().map(|f| f.name().clone()).collect();
    for b in reader {
        let b = b.map_err(|e| stream_error(name, &fields, &e.to_string()))?;
        if tx.blocking_send(b).is_err() {
            return Err(format!("{name}: the Parquet writer stopped"));
        }
    }
    let s = skipped.lock().expect("skipped rows");
    Ok((s.0, s.1.clone()))
}
