//! Large landing files, streamed in constant memory: Parquet files, and
//! CSV and JSON files over [`stream_threshold`]. CSV goes through
//! arrow-csv and JSON (NDJSON, or an array read as a stream of its
//! elements) through arrow-json's decoder, with types from a sample of the
//! first rows ([`prefix_bytes`]); Parquet a row group at a time. Batches of
//! [`batch_rows`] go to the bronze writer through a bounded channel, so
//! memory stays flat whatever the file's size. A file is hashed in a pass of
//! its own ([`local_copy`], which also copies a remote file to local disk)
//! or as it streams ([`LocalCopy::teed`]).

use datafusion::arrow::array::RecordBatch;
use datafusion::arrow::datatypes::SchemaRef;
use futures::StreamExt;
use object_store::ObjectStoreExt;
use std::sync::Arc;

use super::files::{BAD_LINES_KEPT, Landing, LandingFile, csv, json, json_msg, json_schema, latin1};
use super::spec::{Encoding, FilesSpec, OnError};

/// Files larger than this are streamed (`DP_INGEST_STREAM_MB`, default 64):
/// CSV and JSON types come from the first [`prefix_bytes`] (Parquet's from
/// its footer) and the rest is parsed batch by batch.
pub fn stream_threshold() -> u64 {
    std::env::var("DP_INGEST_STREAM_MB").ok().and_then(|v| v.parse::<u64>().ok()).unwrap_or(64) << 20
}

/// How much of a streamed file its types are inferred from by default: 2 MB,
/// some 20,000 rows of a typical CSV (DuckDB's `read_csv` samples 20,480).
const SAMPLE_BYTES: usize = 2 << 20;

/// How much of a streamed file its types are inferred from
/// (`DP_INGEST_SAMPLE_KB`, default [`SAMPLE_BYTES`]).
fn prefix_bytes() -> usize {
    std::env::var("DP_INGEST_SAMPLE_KB").ok().and_then(|v| v.parse::<usize>().ok()).filter(|&n| n > 0).map(|kb| kb << 10).unwrap_or(SAMPLE_BYTES)
}

/// A landing file on local disk (a temporary copy for remote ones), its
/// sha256 and whether it is valid UTF-8.
pub struct LocalCopy {
    pub path: std::path::PathBuf,
    temp: bool,
    pub sha256: String,
    pub utf8: bool,
    /// A file read in place without a hashing pass: the stream hashes and
    /// checks it as it reads (`sha256` and `utf8` then come from [`LocalCopy::teed`]'s
    /// state once the stream ends; `utf8` is a guess from the file's first rows).
    pub tee: Option<Arc<std::sync::Mutex<TeeState>>>,
}

/// What a [`Tee`] saw. The bytes are hashed and checked on a thread of
/// their own (started on the first read), beside the parser that reads
/// them: SHA-256 was a tenth of the CSV parsing thread's time.
#[derive(Default)]
pub struct TeeState {
    hasher: sha2::Sha256,
    utf8: Utf8Check,
    /// The hashing thread's inbox and handle, while it runs.
    worker: Option<(std::sync::mpsc::SyncSender<Vec<u8>>, std::thread::JoinHandle<Hashed>)>,
}

/// What the hashing thread hands back.
type Hashed = (sha2::Sha256, Utf8Check);

impl TeeState {
    /// The sha256 (hex) and UTF-8 validity of everything read.
    pub fn finish(&mut self) -> (String, bool) {
        use sha2::Digest;
        self.settle();
        (hex::encode(std::mem::take(&mut self.hasher).finalize()), self.utf8.ok())
    }

    /// Hands `bytes` to the hashing thread (started on the first call).
    fn feed(&mut self, bytes: &[u8]) {
        if self.worker.is_none() {
            let (tx, rx) = std::sync::mpsc::sync_channel::<Vec<u8>>(8);
            let (mut hasher, mut utf8) = (std::mem::take(&mut self.hasher), std::mem::take(&mut self.utf8));
            let handle = std::thread::spawn(move || {
                use sha2::Digest;
                for chunk in rx {
                    hasher.update(&chunk);
                    utf8.feed(&chunk);
                }
                (hasher, utf8)
            });
            self.worker = Some((tx, handle));
        }
        if let Some((tx, _)) = &self.worker
            && tx.send(bytes.to_vec()).is_err()
        {
            // the thread is gone (it panicked): settle() reports it
            self.utf8.bad = true;
        }
    }

    /// Waits for the hashing thread to have seen every byte read so far.
    fn settle(&mut self) {
        if let Some((tx, handle)) = self.worker.take() {
            drop(tx);
            match handle.join() {
                Ok((hasher, utf8)) => {
                    self.hasher = hasher;
                    self.utf8 = utf8;
                }
                Err(_) => self.utf8.bad = true,
            }
        }
    }
}

/// Hashes and checks UTF-8 of what is read through it (the file is read
/// once: no separate hashing pass).
struct Tee<R> {
    inner: R,
    state: Arc<std::sync::Mutex<TeeState>>,
}

impl<R: std::io::Read> std::io::Read for Tee<R> {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        let n = self.inner.read(buf)?;
        if n > 0 {
            self.state.lock().expect("tee state").feed(&buf[..n]);
        }
        Ok(n)
    }
}

impl LocalCopy {
    /// A local landing file read in place and hashed as it streams; whether
    /// it is UTF-8 is guessed from its first rows (the sample).
    pub fn teed(path: std::path::PathBuf, name: &str) -> Result<LocalCopy, String> {
        let head = prefix(name, &path)?;
        let utf8 = match std::str::from_utf8(&head) {
            Ok(_) => true,
            Err(e) => e.error_len().is_none() && head.len() - e.valid_up_to() < 4,
        };
        Ok(LocalCopy { path, temp: false, sha256: String::new(), utf8, tee: Some(Default::default()) })
    }

    /// The file, read through the tee when there is one.
    fn open(&self, name: &str) -> Result<Box<dyn std::io::Read + Send>, String> {
        let f = std::fs::File::open(&self.path).map_err(|e| format!("{name}: {e}"))?;
        Ok(match &self.tee {
            Some(t) => Box::new(Tee { inner: f, state: t.clone() }),
            None => Box::new(f),
        })
    }

    /// Whether the stream found bytes that are not UTF-8 in a file guessed to be.
    pub fn utf8_broken(&self) -> bool {
        self.utf8
            && self.tee.as_ref().is_some_and(|t| {
                let mut t = t.lock().expect("tee state");
                t.settle();
                t.utf8.bad
            })
    }
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
        None => (std::env::temp_dir().join(format!("dp-ingest-{}.landing", uuid::Uuid::new_v4().simple())), true),
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
    Ok(LocalCopy { path, temp, sha256: hex::encode(hasher.finalize()), utf8: utf8.ok(), tee: None })
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
        let mut chunk = chunk;
        if !self.carry.is_empty() {
            // Complete the character cut at the previous chunk's end.
            let take = chunk.len().min(4 - self.carry.len());
            let mut head = std::mem::take(&mut self.carry);
            head.extend_from_slice(&chunk[..take]);
            match std::str::from_utf8(&head) {
                Ok(_) => chunk = &chunk[take..],
                Err(e) if e.valid_up_to() > 0 => chunk = &chunk[e.valid_up_to() - (head.len() - take)..],
                Err(e) if e.error_len().is_none() && take == chunk.len() => {
                    self.carry = head;
                    return;
                }
                Err(_) => {
                    self.bad = true;
                    return;
                }
            }
        }
        // The chunk itself, without a copy.
        match std::str::from_utf8(chunk) {
            Ok(_) => {}
            Err(e) if e.error_len().is_none() => self.carry = chunk[e.valid_up_to()..].to_vec(),
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
    let mut buf = vec![0u8; prefix_bytes()];
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
    static UTF8: std::sync::LazyLock<regex::Regex> =
        std::sync::LazyLock::new(|| regex::Regex::new(r"Encountered invalid UTF-8 data for line (\d+) and field (\d+)").expect("valid regex"));
    if let Some(c) = UTF8.captures(e) {
        let line = &c[1];
        let col = c[2].parse::<usize>().ok().and_then(|i| fields.get(i.saturating_sub(1))).cloned().unwrap_or_default();
        return format!("{name}:{line}: invalid UTF-8 in column \"{col}\"\n  hint: save the file as UTF-8, or set encoding: latin-1 in the ingest block");
    }
    if let Some(c) = VALUE.captures(e) {
        let line = c[4].parse::<u64>().map(|l| l + 1).unwrap_or(0);
        let col = c[3].parse::<usize>().ok().and_then(|i| fields.get(i)).cloned().unwrap_or_default();
        return format!(
            "{name}:{line}: column \"{col}\": cannot read \"{}\" as {}\n  hint: the types of a large file come from its first {}; set column_types: {{{col}: ...}} in the ingest block",
            &c[1],
            &c[2],
            sample_label()
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
    let mut input: Box<dyn Read + Send> = Box::new(BufReader::with_capacity(1 << 20, copy.open(name)?));
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
        .with_batch_size(batch_rows())
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

/// Rows per streamed batch (`DP_INGEST_BATCH_ROWS`, default 65,536).
pub fn batch_rows() -> usize {
    std::env::var("DP_INGEST_BATCH_ROWS").ok().and_then(|v| v.parse::<usize>().ok()).filter(|&n| n > 0).unwrap_or(65_536)
}

/// The sample's size for messages: `2 MB`, `64 KB`.
fn sample_label() -> String {
    let b = prefix_bytes();
    if b.is_multiple_of(1 << 20) { format!("{} MB", b >> 20) } else { format!("{} KB", b >> 10) }
}

/// The first [`prefix_bytes`] of a file.
fn prefix(name: &str, path: &std::path::Path) -> Result<Vec<u8>, String> {
    use std::io::Read;
    let f = std::fs::File::open(path).map_err(|e| format!("{name}: {e}"))?;
    let mut buf = Vec::with_capacity(prefix_bytes().min(1 << 20));
    f.take(prefix_bytes() as u64).read_to_end(&mut buf).map_err(|e| format!("{name}: {e}"))?;
    Ok(buf)
}

/// The line of a file's first byte that is not UTF-8 (read in chunks).
fn first_bad_utf8_line(path: &std::path::Path) -> usize {
    use std::io::Read;
    let Ok(mut f) = std::fs::File::open(path) else { return 0 };
    let (mut buf, mut carry, mut lines) = (vec![0u8; 1 << 20], Vec::new(), 1usize);
    loop {
        let n = match f.read(&mut buf) {
            Ok(0) | Err(_) => return lines,
            Ok(n) => n,
        };
        let mut data = std::mem::take(&mut carry);
        data.extend_from_slice(&buf[..n]);
        match std::str::from_utf8(&data) {
            Ok(_) => lines += data.iter().filter(|&&b| b == b'\n').count(),
            Err(e) => {
                lines += data[..e.valid_up_to()].iter().filter(|&&b| b == b'\n').count();
                if e.error_len().is_some() {
                    return lines;
                }
                carry = data[e.valid_up_to()..].to_vec();
            }
        }
    }
}

/// Turns a top-level JSON array into a stream of its elements, in place and
/// byte for byte (the brackets and the commas between elements become
/// spaces), so arrow-json's streaming decoder reads it as it reads NDJSON and
/// line numbers stay right.
#[derive(Default)]
struct ArrayToStream {
    /// 0: before the array, 1: inside it, 2: after it.
    state: u8,
    depth: u32,
    in_str: bool,
    esc: bool,
}

impl ArrayToStream {
    fn apply(&mut self, buf: &mut [u8]) -> Result<(), &'static str> {
        for b in buf.iter_mut() {
            match self.state {
                0 if *b == b'[' => {
                    *b = b' ';
                    self.state = 1;
                }
                0 | 2 if b.is_ascii_whitespace() => {}
                0 => return Err("the file does not start with an array"),
                2 => return Err("trailing characters after the array"),
                _ if self.in_str => {
                    if self.esc {
                        self.esc = false;
                    } else if *b == b'\\' {
                        self.esc = true;
                    } else if *b == b'"' {
                        self.in_str = false;
                    }
                }
                _ => match *b {
                    b'"' => self.in_str = true,
                    b'{' | b'[' => self.depth += 1,
                    b'}' | b']' if self.depth > 0 => self.depth -= 1,
                    b']' => {
                        *b = b' ';
                        self.state = 2;
                    }
                    b',' if self.depth == 0 => *b = b' ',
                    _ => {}
                },
            }
        }
        Ok(())
    }
}

/// Whether a JSON file holds one array (else NDJSON).
fn json_is_array(bytes: &[u8]) -> bool {
    bytes.strip_prefix(b"\xEF\xBB\xBF").unwrap_or(bytes).iter().find(|b| !b.is_ascii_whitespace()) == Some(&b'[')
}

/// The error for a JSON file found not to be UTF-8 while it streamed.
pub fn not_utf8(name: &str, copy: &LocalCopy) -> String {
    format!("{name}:{}: invalid UTF-8 (JSON files must be UTF-8)\n  hint: save the file as UTF-8", first_bad_utf8_line(&copy.path))
}

/// The schema of a large JSON / NDJSON file, inferred from the objects in
/// its first [`prefix_bytes`] (arrow-json's widening: integer → float →
/// string).
pub fn json_prefix_schema(spec: &FilesSpec, name: &str, copy: &LocalCopy) -> Result<SchemaRef, String> {
    use serde_json::Value;
    if !copy.utf8 {
        return Err(format!("{name}:{}: invalid UTF-8 (JSON files must be UTF-8)\n  hint: save the file as UTF-8", first_bad_utf8_line(&copy.path)));
    }
    let mut buf = prefix(name, &copy.path)?;
    let mut values: Vec<Value> = vec![];
    if json_is_array(&buf) {
        let _ = ArrayToStream::default().apply(&mut buf);
        for v in serde_json::Deserializer::from_slice(&buf).into_iter::<Value>() {
            match v {
                Ok(v @ Value::Object(_)) => values.push(v),
                _ => break,
            }
        }
    } else {
        let whole = buf.len() < prefix_bytes();
        let lines: Vec<&[u8]> = buf.split(|&b| b == b'\n').collect();
        let complete = if whole { lines.len() } else { lines.len().saturating_sub(1) };
        for l in &lines[..complete] {
            if let Ok(v @ Value::Object(_)) = serde_json::from_slice::<Value>(l) {
                values.push(v);
            }
        }
    }
    if values.is_empty() {
        // The whole-file reader's words for what is wrong with the start.
        return Err(json(spec, name, &buf).err().unwrap_or_else(|| format!("{name}: no JSON object in the file's first {}", sample_label())));
    }
    json_schema(name, &values)
}

/// What a streamed JSON file's decoding error means, with its line when
/// the line is malformed.
fn json_stream_error(name: &str, e: &str, chunk: &[u8], first_line: u64, array: bool) -> String {
    if !array {
        for (i, l) in chunk.split(|&b| b == b'\n').enumerate() {
            let line = first_line + i as u64;
            let t = l.trim_ascii();
            if t.is_empty() {
                continue;
            }
            if let Err(e) = serde_json::from_slice::<serde::de::IgnoredAny>(t) {
                return format!(
                    "{name}:{line}:{}: malformed JSON: {}\n  hint: fix the line, or set on_error: skip to drop malformed lines",
                    e.column(),
                    json_msg(&e)
                );
            }
            if t[0] != b'{' {
                return format!("{name}:{line}: the line is not a JSON object\n  hint: NDJSON files hold one object per line");
            }
        }
    }
    json_value_error(name, e, first_line, last_line(chunk, first_line))
}

/// The last line of a chunk that starts at `first_line`.
fn last_line(chunk: &[u8], first_line: u64) -> u64 {
    let newlines = chunk.iter().filter(|&&b| b == b'\n').count() as u64;
    (first_line + newlines).saturating_sub(u64::from(chunk.ends_with(b"\n"))).max(first_line)
}

/// A value that does not fit its sampled column, somewhere in lines `from..=to`.
fn json_value_error(name: &str, e: &str, from: u64, to: u64) -> String {
    let hint = if e.contains("missing from schema") {
        format!("a large file's columns come from its first {}: put a row with every field early in the file", sample_label())
    } else {
        format!("a large file's types come from its first {}: fix the value, or give the column one type throughout the file", sample_label())
    };
    format!("{name}: lines {from}-{to}: {e}\n  hint: {hint}")
}

/// Streams a large JSON array or NDJSON file as batches of `schema` into
/// `tx` (arrow-json's decoder over 1 MB chunks); returns the lines skipped
/// under `on_error: skip` (NDJSON) and the first bad lines.
pub fn stream_json(
    spec: &FilesSpec,
    name: &str,
    copy: &LocalCopy,
    schema: SchemaRef,
    tx: tokio::sync::mpsc::Sender<RecordBatch>,
) -> Result<(u64, Vec<String>), String> {
    use std::io::{BufRead, Read};
    const CHUNK: usize = 1 << 20;
    let io = |e: std::io::Error| format!("{name}: {e}");
    let array = json_is_array(&prefix(name, &copy.path)?[..]);
    let batch = batch_rows();
    let mut decoder = datafusion::arrow::json::ReaderBuilder::new(schema)
        .with_batch_size(batch)
        .with_strict_mode(true)
        .with_coerce_primitive(true)
        .build_decoder()
        .map_err(|e| format!("{name}: {e}"))?;
    let send = |b: RecordBatch| tx.blocking_send(b).map_err(|_| format!("{name}: the Parquet writer stopped"));
    // Decodes one chunk (lines first_line..), flushing full batches.
    // The first line of the rows not flushed yet (values are checked at flush).
    let pending = std::cell::Cell::new(0u64);
    let mut feed = |chunk: &[u8], first_line: u64| -> Result<(), String> {
        if pending.get() == 0 {
            pending.set(first_line);
        }
        let mut off = 0;
        while off < chunk.len() {
            let n = decoder.decode(&chunk[off..]).map_err(|e| json_stream_error(name, &e.to_string(), chunk, first_line, array))?;
            off += n;
            if decoder.len() >= batch && !decoder.has_partial_record() {
                let b = decoder.flush().map_err(|e| json_value_error(name, &e.to_string(), pending.get(), last_line(chunk, first_line)))?;
                pending.set(first_line);
                if let Some(b) = b {
                    send(b)?;
                }
            } else if n == 0 {
                break;
            }
        }
        Ok(())
    };
    let mut r = std::io::BufReader::with_capacity(CHUNK, copy.open(name)?);
    let (mut skipped, mut bad_lines) = (0u64, vec![]);
    let mut line_no = 0u64;
    if array {
        // One array may be one line: raw chunks, not lines.
        let mut filter = ArrayToStream::default();
        let mut buf = vec![0u8; CHUNK];
        let mut first_line = 1;
        loop {
            let n = r.read(&mut buf).map_err(io)?;
            if n == 0 {
                break;
            }
            let chunk = &mut buf[..n];
            filter.apply(chunk).map_err(|e| format!("{name}: malformed JSON: {e}\n  hint: a JSON file holds one array of objects, or one object per line"))?;
            feed(chunk, first_line)?;
            line_no = last_line(chunk, first_line);
            first_line += chunk.iter().filter(|&&b| b == b'\n').count() as u64;
        }
        if filter.state != 2 {
            return Err(format!("{name}: malformed JSON: the array is not closed\n  hint: check the file is complete (not still being written)"));
        }
    } else {
        let skip = spec.on_error == OnError::Skip;
        let (mut chunk, mut line) = (Vec::with_capacity(CHUNK + 4096), Vec::new());
        let mut first_line = 1;
        loop {
            line.clear();
            let n = r.read_until(b'\n', &mut line).map_err(io)?;
            if n > 0 {
                line_no += 1;
                let t = line.trim_ascii();
                let bad = skip && !t.is_empty() && (t[0] != b'{' || serde_json::from_slice::<serde::de::IgnoredAny>(t).is_err());
                if bad {
                    skipped += 1;
                    if bad_lines.len() < BAD_LINES_KEPT {
                        bad_lines.push(format!("line {line_no}: not a JSON object"));
                    }
                    line.clear();
                    line.push(b'\n');
                }
                chunk.extend_from_slice(&line);
            }
            if chunk.len() >= CHUNK || (n == 0 && !chunk.is_empty()) {
                feed(&chunk, first_line)?;
                chunk.clear();
                first_line = line_no + 1;
            }
            if n == 0 {
                break;
            }
        }
    }
    if decoder.has_partial_record() {
        return Err(format!("{name}: malformed JSON: the file ends inside an object\n  hint: check the file is complete (not still being written)"));
    }
    let end = line_no.max(1);
    if let Some(b) = decoder.flush().map_err(|e| json_value_error(name, &e.to_string(), pending.get().max(1), end))? {
        send(b)?;
    }
    Ok((skipped, bad_lines))
}

/// A large Parquet file's schema, from its footer.
pub fn parquet_schema(name: &str, copy: &LocalCopy) -> Result<SchemaRef, String> {
    use datafusion::parquet::arrow::arrow_reader::ParquetRecordBatchReaderBuilder;
    let f = std::fs::File::open(&copy.path).map_err(|e| format!("{name}: {e}"))?;
    let b = ParquetRecordBatchReaderBuilder::try_new(f)
        .map_err(|e| format!("{name}: not a readable Parquet file: {e}\n  hint: check the file is complete (not still being written)"))?;
    Ok(b.schema().clone())
}

/// Streams a Parquet file into `tx`, a row group at a time in batches of
/// [`batch_rows`], cast to `schema` where it widens a column's type.
pub fn stream_parquet(name: &str, copy: &LocalCopy, schema: SchemaRef, tx: tokio::sync::mpsc::Sender<RecordBatch>) -> Result<(u64, Vec<String>), String> {
    use datafusion::parquet::arrow::arrow_reader::ParquetRecordBatchReaderBuilder;
    let f = std::fs::File::open(&copy.path).map_err(|e| format!("{name}: {e}"))?;
    let reader = ParquetRecordBatchReaderBuilder::try_new(f)
        .map_err(|e| format!("{name}: not a readable Parquet file: {e}\n  hint: check the file is complete (not still being written)"))?
        .with_batch_size(batch_rows())
        .build()
        .map_err(|e| format!("{name}: {e}"))?;
    for b in reader {
        let mut b = b.map_err(|e| format!("{name}: {e}"))?;
        if b.schema().fields() != schema.fields() {
            b = crate::util::cast_batch(&b, &schema).map_err(|e| format!("{name}: {e}"))?;
        }
        tx.blocking_send(b).map_err(|_| format!("{name}: the Parquet writer stopped"))?;
    }
    Ok((0, vec![]))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn utf8_is_checked_across_chunk_boundaries() {
        let text = "aé€😀".repeat(3).into_bytes();
        for cut in 1..=4 {
            let mut u = Utf8Check::default();
            for c in text.chunks(cut) {
                u.feed(c);
            }
            assert!(u.ok(), "chunks of {cut}");
        }
        let mut bad = text.clone();
        bad.insert(5, 0xE9);
        for cut in 1..=4 {
            let mut u = Utf8Check::default();
            for c in bad.chunks(cut) {
                u.feed(c);
            }
            assert!(!u.ok(), "chunks of {cut}");
        }
        let mut u = Utf8Check::default();
        u.feed(&text[..text.len() - 1]);
        assert!(!u.ok(), "a cut character at the end");
    }
}
