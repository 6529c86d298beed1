//! Deterministic, streaming generator for the demo project's bronze layer.
//!
//! Reproduces the seed platform's bronze bucket layout (see `docs/demo.md`):
//!
//! ```text
//! bronze/postgres/customers/<d0>/customers.parquet
//! bronze/postgres/products/<d0>/products.parquet
//! bronze/postgres/orders/<d0>/orders.parquet        full extract
//! bronze/postgres/orders/<d0+1>/orders.parquet      incremental extract (late updates + new orders)
//! landing/sales/<d0>/transactions.csv               lines of the orders in the full extract
//! landing/sales/<d0+1>/transactions.csv             lines of the new orders
//! ```
//!
//! The sales files are a file drop, not bronze: they go to a landing folder
//! (`landing/` beside `bronze/` for `dp demo`), from which `dp ingest` lands
//! them in bronze as Parquet (`bronze/files/sales/<date>/transactions.parquet`,
//! the `raw.transactions` source's `ingest:` block).
//!
//! Every row is a pure function of `(seed, table, id)`: each row gets its own
//! `SmallRng::seed_from_u64` stream, so nothing but a 65k-row batch and the
//! product price list is held in memory, and the same seed always yields
//! byte-identical files.
//!
//! The data is deliberately dirty (invalid / NULL emails, exact duplicate
//! customer rows, mixed-case categories and statuses with stray spaces, late
//! order updates, orders of nonexistent customers, non-positive quantities,
//! NULL discounts) so that the staging models have something to clean.

use std::fs::{self, File};
use std::io::{BufWriter, Write};
use std::path::{Path, PathBuf};
use std::sync::Arc;

use chrono::{DateTime, NaiveDate};
use datafusion::arrow::array::{ArrayRef, Decimal128Builder, Int64Builder, StringBuilder, TimestampMicrosecondBuilder};
use datafusion::arrow::datatypes::{DataType, Field, Schema, SchemaRef, TimeUnit};
use datafusion::arrow::error::ArrowError;
use datafusion::arrow::record_batch::RecordBatch;
use datafusion::parquet::arrow::ArrowWriter;
use datafusion::parquet::basic::{Compression, ZstdLevel};
use datafusion::parquet::errors::ParquetError;
use datafusion::parquet::file::properties::WriterProperties;
use rand::rngs::SmallRng;
use rand::{Rng, SeedableRng};

/// Rows per Arrow batch / CSV flush unit.
const BATCH_ROWS: usize = 65_536;
const MICROS_PER_SEC: i64 = 1_000_000;
const MICROS_PER_DAY: i64 = 86_400 * MICROS_PER_SEC;
/// Orders of the full extract span the year before the first extraction date.
const ORDER_HISTORY_DAYS: i64 = 365;
/// Customers sign up over the two years before the first extraction date.
const CUSTOMER_HISTORY_DAYS: i64 = 730;
/// Share of customers who stop ordering at some point (they end up `at_risk`).
const CHURN_SHARE: f64 = 0.35;

// Independent random streams, one per kind of row.
const STREAM_CUSTOMERS: u64 = 1;
const STREAM_PRODUCTS: u64 = 2;
const STREAM_ORDERS: u64 = 3;
const STREAM_ORDER_UPDATES: u64 = 4;
const STREAM_CHURN: u64 = 5;

/// What to generate.
#[derive(Debug, Clone, PartialEq)]
pub struct GenerateOptions {
    /// 1.0 ≈ 10k customers, 1k products, 100k orders, 300k transactions (linear in scale;
    /// products grow with the square root).
    pub scale: f64,
    /// Same seed → byte-identical files.
    pub seed: u64,
    /// Extraction date of the first folder; the incremental orders extract lands in the next day's folder.
    pub date: NaiveDate,
}

impl Default for GenerateOptions {
    fn default() -> Self {
        Self { scale: 1.0, seed: 42, date: NaiveDate::from_ymd_opt(2024, 1, 15).expect("valid date") }
    }
}

/// Files written, with their row counts (data rows, CSV header excluded), in write order.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct GenerateReport {
    pub files: Vec<(PathBuf, u64)>,
}

#[derive(Debug, thiserror::Error)]
pub enum GenerateError {
    #[error(
        "invalid demo scale {scale}: use a finite number greater than 0 and at most 10000 \
         (0.1 ≈ 10k orders, 1 ≈ 100k orders, 100 ≈ 10M orders)"
    )]
    InvalidScale { scale: f64 },
    #[error("invalid demo date {date}: the day after it does not exist; pick an earlier --date")]
    InvalidDate { date: NaiveDate },
    #[error(
        "cannot create directory {}: {source}; check that the bronze root is writable and that no file \
         sits where a directory is expected",
        path.display()
    )]
    CreateDir { path: PathBuf, source: std::io::Error },
    #[error("cannot write {}: {source}; check free disk space and write permissions", path.display())]
    Io { path: PathBuf, source: std::io::Error },
    #[error("cannot write CSV file {}: {source}; check free disk space and write permissions", path.display())]
    Csv { path: PathBuf, source: csv::Error },
    #[error(
        "cannot encode Parquet file {}: {source}; if the disk is not full this is a bug in the demo \
         generator, please report it",
        path.display()
    )]
    Parquet { path: PathBuf, source: ParquetError },
    #[error("cannot build an Arrow batch for {}: {source}; this is a bug in the demo generator, please report it", path.display())]
    Arrow { path: PathBuf, source: ArrowError },
}

type Result<T> = std::result::Result<T, GenerateError>;

/// Generate the demo's operational extracts under `bronze_root` (the directory that will
/// contain `postgres/`, conventionally `<project>/bronze`) and its sales file drops under
/// `landing_root` (`sales/<date>/transactions.csv`, conventionally `<project>/landing`).
/// Existing files at the same paths are replaced; other date folders are left alone.
pub fn generate(bronze_root: &Path, landing_root: &Path, opts: &GenerateOptions) -> Result<GenerateReport> {
    let sizes = Sizes::for_scale(opts.scale)?;
    let d0 = opts.date;
    let d1 = d0.succ_opt().filter(|d| d.succ_opt().is_some()).ok_or(GenerateError::InvalidDate { date: d0 })?;
    let d0_us = d0.and_hms_opt(0, 0, 0).expect("midnight exists").and_utc().timestamp_micros();
    let prices: Vec<(i64, i64)> = (1..=sizes.products)
        .map(|id| {
            let p = make_product(opts.seed, id, d0_us);
            (p.price_cents, p.cost_cents)
        })
        .collect();
    let ctx = Ctx { seed: opts.seed, sizes, d0_us, prices };

    let mut report = GenerateReport::default();
    let folder = |parts: &[&str], date: NaiveDate| {
        let mut p = if parts[0] == "sales" { landing_root.to_path_buf() } else { bronze_root.to_path_buf() };
        for part in parts {
            p.push(part);
        }
        p.push(date.format("%Y-%m-%d").to_string());
        p
    };

    report.files.push(write_customers(&folder(&["postgres", "customers"], d0).join("customers.parquet"), &ctx)?);
    report.files.push(write_products(&folder(&["postgres", "products"], d0).join("products.parquet"), &ctx)?);
    let (orders_full, tx_full) =
        write_orders_full(&folder(&["postgres", "orders"], d0).join("orders.parquet"), &folder(&["sales"], d0).join("transactions.csv"), &ctx)?;
    let (orders_incr, tx_incr) = write_orders_incremental(
        &folder(&["postgres", "orders"], d1).join("orders.parquet"),
        &folder(&["sales"], d1).join("transactions.csv"),
        &ctx,
        tx_full.2,
    )?;
    report.files.push(orders_full);
    report.files.push(orders_incr);
    report.files.push((tx_full.0, tx_full.1));
    report.files.push((tx_incr.0, tx_incr.1));
    Ok(report)
}

// ---------------------------------------------------------------------------------------------
// Sizes and randomness
// ---------------------------------------------------------------------------------------------

#[derive(Debug, Clone, Copy)]
struct Sizes {
    customers: u64,
    products: u64,
    /// Orders in the full extract (ids `1..=full_orders`).
    full_orders: u64,
    /// All distinct orders (new ones are ids `full_orders+1..=orders`).
    orders: u64,
}

impl Sizes {
    fn for_scale(scale: f64) -> Result<Self> {
        if !scale.is_finite() || scale <= 0.0 || scale > 10_000.0 {
            return Err(GenerateError::InvalidScale { scale });
        }
        let customers = ((10_000.0 * scale).round() as u64).max(20);
        let products = ((1_000.0 * scale.sqrt()).round() as u64).max(50);
        let orders = ((100_000.0 * scale).round() as u64).max(50);
        // The incremental extract holds one more day of orders than the year in the full one.
        let new_orders = ((orders as f64 / (ORDER_HISTORY_DAYS + 1) as f64).round() as u64).max(1);
        let full_orders = orders - new_orders;
        Ok(Self { customers, products, full_orders, orders })
    }
}

fn splitmix64(x: u64) -> u64 {
    let mut z = x.wrapping_add(0x9E37_79B9_7F4A_7C15);
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^ (z >> 31)
}

/// The random stream of one row: a pure function of (seed, stream, id).
fn row_rng(seed: u64, stream: u64, id: u64) -> SmallRng {
    SmallRng::seed_from_u64(splitmix64(seed ^ splitmix64(stream.wrapping_mul(0x0100_0000_01B3) ^ splitmix64(id))))
}

/// Pick from `(item, weight)` pairs.
fn weighted<'a, T>(rng: &mut SmallRng, items: &'a [(T, u32)]) -> &'a T {
    let total: u32 = items.iter().map(|(_, w)| w).sum();
    let mut x = rng.random_range(0..total);
    for (item, w) in items {
        if x < *w {
            return item;
        }
        x -= w;
    }
    &items[items.len() - 1].0
}

fn pick<'a, T>(rng: &mut SmallRng, items: &'a [T]) -> &'a T {
    &items[rng.random_range(0..items.len())]
}

/// Render a clean lowercase/Title value with the casing and whitespace dirt of hand-typed data.
fn dirty_case(rng: &mut SmallRng, value: &str) -> String {
    match rng.random_range(0..100u32) {
        0..=79 => value.to_string(),
        80..=89 => {
            let mut c = value.chars();
            match c.next() {
                Some(f) => f.to_uppercase().chain(c).collect(),
                None => String::new(),
            }
        }
        90..=94 => value.to_uppercase(),
        95..=97 => format!(" {value} "),
        _ => format!("{value} "),
    }
}

fn money(cents: i64) -> String {
    let sign = if cents < 0 { "-" } else { "" };
    let c = cents.unsigned_abs();
    format!("{sign}{}.{:02}", c / 100, c % 100)
}

fn iso_ts(us: i64) -> String {
    DateTime::from_timestamp_micros(us).expect("generated timestamps are in range").naive_utc().format("%Y-%m-%dT%H:%M:%S").to_string()
}

struct Ctx {
    seed: u64,
    sizes: Sizes,
    d0_us: i64,
    /// (price, cost) in cents per product id - 1.
    prices: Vec<(i64, i64)>,
}

// ---------------------------------------------------------------------------------------------
// Output sinks
// ---------------------------------------------------------------------------------------------

fn create_parent(path: &Path) -> Result<()> {
    if let Some(dir) = path.parent() {
        fs::create_dir_all(dir).map_err(|source| GenerateError::CreateDir { path: dir.to_path_buf(), source })?;
    }
    Ok(())
}

fn tmp_path(path: &Path) -> PathBuf {
    let mut name = path.file_name().unwrap_or_default().to_os_string();
    name.push(".tmp");
    path.with_file_name(name)
}

/// Writes to `<file>.tmp` and renames on success, so a crash never leaves a truncated file
/// that the source globs would pick up.
struct ParquetSink {
    path: PathBuf,
    tmp: PathBuf,
    schema: SchemaRef,
    writer: ArrowWriter<BufWriter<File>>,
    rows: u64,
}

impl ParquetSink {
    fn create(path: &Path, schema: SchemaRef) -> Result<Self> {
        create_parent(path)?;
        let tmp = tmp_path(path);
        let file = File::create(&tmp).map_err(|source| GenerateError::Io { path: tmp.clone(), source })?;
        let props =
            WriterProperties::builder().set_compression(Compression::ZSTD(ZstdLevel::default())).set_created_by("dp demo generator".to_string()).build();
        let writer = ArrowWriter::try_new(BufWriter::with_capacity(1 << 20, file), schema.clone(), Some(props))
            .map_err(|source| GenerateError::Parquet { path: path.to_path_buf(), source })?;
        Ok(Self { path: path.to_path_buf(), tmp, schema, writer, rows: 0 })
    }

    fn write(&mut self, columns: Vec<ArrayRef>) -> Result<()> {
        let batch = RecordBatch::try_new(self.schema.clone(), columns).map_err(|source| GenerateError::Arrow { path: self.path.clone(), source })?;
        if batch.num_rows() == 0 {
            return Ok(());
        }
        self.rows += batch.num_rows() as u64;
        self.writer.write(&batch).map_err(|source| GenerateError::Parquet { path: self.path.clone(), source })
    }

    fn finish(self) -> Result<(PathBuf, u64)> {
        let buf = self.writer.into_inner().map_err(|source| GenerateError::Parquet { path: self.path.clone(), source })?;
        let file = buf.into_inner().map_err(|e| GenerateError::Io { path: self.tmp.clone(), source: e.into_error() })?;
        drop(file);
        fs::rename(&self.tmp, &self.path).map_err(|source| GenerateError::Io { path: self.path.clone(), source })?;
        Ok((self.path, self.rows))
    }
}

struct CsvSink {
    path: PathBuf,
    tmp: PathBuf,
    writer: csv::Writer<BufWriter<File>>,
    rows: u64,
    next_transaction_id: u64,
}

impl CsvSink {
    fn create(path: &Path, header: &[&str], first_transaction_id: u64) -> Result<Self> {
        create_parent(path)?;
        let tmp = tmp_path(path);
        let file = File::create(&tmp).map_err(|source| GenerateError::Io { path: tmp.clone(), source })?;
        let mut writer = csv::WriterBuilder::new().buffer_capacity(1 << 20).from_writer(BufWriter::with_capacity(1 << 20, file));
        writer.write_record(header).map_err(|source| GenerateError::Csv { path: path.to_path_buf(), source })?;
        Ok(Self { path: path.to_path_buf(), tmp, writer, rows: 0, next_transaction_id: first_transaction_id })
    }

    fn write_order_lines(&mut self, order: &Order) -> Result<()> {
        for (i, line) in order.lines.iter().enumerate() {
            let id = self.next_transaction_id;
            self.next_transaction_id += 1;
            let discount = line.discount_cents.map(money).unwrap_or_default();
            let ts = iso_ts(order.order_date_us + (i as i64 + 1) * 7 * MICROS_PER_SEC);
            self.writer
                .write_record([
                    id.to_string().as_str(),
                    order.id.to_string().as_str(),
                    line.product_id.to_string().as_str(),
                    line.quantity.to_string().as_str(),
                    money(line.unit_price_cents).as_str(),
                    discount.as_str(),
                    ts.as_str(),
                    order.payment_method.as_str(),
                ])
                .map_err(|source| GenerateError::Csv { path: self.path.clone(), source })?;
            self.rows += 1;
        }
        Ok(())
    }

    /// Returns (path, rows, next transaction id).
    fn finish(self) -> Result<(PathBuf, u64, u64)> {
        let buf = self.writer.into_inner().map_err(|e| GenerateError::Io { path: self.tmp.clone(), source: e.into_error() })?;
        let mut file = buf.into_inner().map_err(|e| GenerateError::Io { path: self.tmp.clone(), source: e.into_error() })?;
        file.flush().map_err(|source| GenerateError::Io { path: self.tmp.clone(), source })?;
        drop(file);
        fs::rename(&self.tmp, &self.path).map_err(|source| GenerateError::Io { path: self.path.clone(), source })?;
        Ok((self.path, self.rows, self.next_transaction_id))
    }
}

fn ts_field(name: &str) -> Field {
    Field::new(name, DataType::Timestamp(TimeUnit::Microsecond, None), true)
}

fn ts_builder(cap: usize) -> TimestampMicrosecondBuilder {
    TimestampMicrosecondBuilder::with_capacity(cap)
}

fn decimal_builder(cap: usize, precision: u8) -> Decimal128Builder {
    Decimal128Builder::with_capacity(cap).with_data_type(DataType::Decimal128(precision, 2))
}

// ---------------------------------------------------------------------------------------------
// Customers
// ---------------------------------------------------------------------------------------------

const FIRST_NAMES: &[&str] = &[
    "james",
    "mary",
    "john",
    "patricia",
    "robert",
    "jennifer",
    "michael",
    "linda",
    "william",
    "elizabeth",
    "david",
    "barbara",
    "richard",
    "susan",
    "joseph",
    "jessica",
    "thomas",
    "sarah",
    "charles",
    "karen",
    "daniel",
    "nancy",
    "matthew",
    "lisa",
    "anthony",
    "betty",
    "mark",
    "sandra",
    "paul",
    "ashley",
    "steven",
    "emily",
    "andrew",
    "donna",
    "joshua",
    "michelle",
    "kenji",
    "yuki",
    "lucas",
    "sofia",
    "mateo",
    "emma",
    "noah",
    "olivia",
    "liam",
    "amelia",
    "hugo",
    "lea",
    "jonas",
    "mia",
    "arjun",
    "priya",
    "carlos",
    "ana",
    "lars",
    "ingrid",
    "chen",
    "wei",
    "fatima",
    "omar",
];

const LAST_NAMES: &[&str] = &[
    "smith",
    "johnson",
    "williams",
    "brown",
    "jones",
    "garcia",
    "miller",
    "davis",
    "rodriguez",
    "martinez",
    "hernandez",
    "lopez",
    "gonzalez",
    "wilson",
    "anderson",
    "thomas",
    "taylor",
    "moore",
    "jackson",
    "martin",
    "lee",
    "perez",
    "thompson",
    "white",
    "harris",
    "sanchez",
    "clark",
    "lewis",
    "robinson",
    "walker",
    "young",
    "allen",
    "king",
    "wright",
    "scott",
    "müller",
    "schmidt",
    "dubois",
    "moreau",
    "rossi",
    "bianchi",
    "tanaka",
    "sato",
    "kumar",
    "sharma",
    "silva",
    "santos",
    "andersson",
    "nilsson",
    "jansen",
    "devries",
    "novak",
    "kowalski",
    "wang",
];

const EMAIL_DOMAINS: &[&str] = &["gmail.com", "yahoo.com", "outlook.com", "example.com", "proton.me", "icloud.com", "mail.de"];

/// Weights roughly follow an international web shop; codes match `seeds/country_codes.csv`.
const COUNTRIES: &[(&str, u32)] = &[
    ("US", 30),
    ("GB", 10),
    ("DE", 10),
    ("FR", 8),
    ("CA", 7),
    ("AU", 5),
    ("NL", 4),
    ("ES", 4),
    ("IT", 4),
    ("SE", 3),
    ("BR", 4),
    ("MX", 3),
    ("JP", 4),
    ("IN", 4),
];

struct Customer {
    id: i64,
    email: Option<String>,
    first_name: Option<String>,
    last_name: Option<String>,
    country_code: Option<String>,
    created_at: i64,
    updated_at: i64,
    duplicated: bool,
}

/// Customer `id` signs up at a time that grows with `id` over the two years before d0.
fn customer_created_at(id: u64, n: u64, d0_us: i64, jitter: f64) -> i64 {
    let span = CUSTOMER_HISTORY_DAYS * MICROS_PER_DAY;
    let start = d0_us - span;
    let slot = span as f64 / n as f64;
    start + (((id - 1) as f64 + jitter) * slot) as i64
}

/// When customer `id` stops ordering (`i64::MAX` for customers who never churn).
fn customer_churn_at(seed: u64, id: u64, n: u64, d0_us: i64) -> i64 {
    let mut r = row_rng(seed, STREAM_CHURN, id);
    if r.random_bool(CHURN_SHARE) { customer_created_at(id, n, d0_us, 0.0) + r.random_range(30..400) * MICROS_PER_DAY } else { i64::MAX }
}

fn dirty_name(rng: &mut SmallRng, name: &str) -> Option<String> {
    let title: String = {
        let mut c = name.chars();
        match c.next() {
            Some(f) => f.to_uppercase().chain(c).collect(),
            None => String::new(),
        }
    };
    Some(match rng.random_range(0..1000u32) {
        0..=9 => return None,
        10..=159 => name.to_string(),
        160..=259 => name.to_uppercase(),
        260..=309 => format!(" {title} "),
        _ => title,
    })
}

fn make_customer(seed: u64, id: u64, n: u64, d0_us: i64) -> Customer {
    let mut r = row_rng(seed, STREAM_CUSTOMERS, id);
    let first = *pick(&mut r, FIRST_NAMES);
    let last = *pick(&mut r, LAST_NAMES);
    let domain = *pick(&mut r, EMAIL_DOMAINS);
    let local = format!("{first}.{last}{id}");
    let email = match r.random_range(0..1000u32) {
        0..=11 => None,                              // 1.2% NULL
        12..=26 => Some(format!("{local}{domain}")), // 1.5% missing '@'
        27..=41 => {
            // 1.5% no dot in the domain
            let host = domain.split('.').next().unwrap_or(domain);
            Some(format!("{local}@{host}"))
        }
        42..=101 => Some(format!("  {local}@{domain}")),               // stray spaces
        102..=181 => Some(format!("{local}@{domain}").to_uppercase()), // shouting
        182..=261 => {
            let mut s = format!("{local}@{domain}");
            if let Some(c) = s.get_mut(0..1) {
                c.make_ascii_uppercase();
            }
            Some(s)
        }
        _ => Some(format!("{local}@{domain}")),
    };
    let first_name = dirty_name(&mut r, first);
    let last_name = dirty_name(&mut r, last);
    let country = *weighted(&mut r, COUNTRIES);
    let country_code = match r.random_range(0..1000u32) {
        0..=4 => None,
        5..=24 => Some(country.to_lowercase()),
        25..=34 => Some(format!(" {country}")),
        _ => Some(country.to_string()),
    };
    let created_at = customer_created_at(id, n, d0_us, r.random::<f64>());
    let max_update = (d0_us - MICROS_PER_SEC - created_at).max(0);
    let updated_at = if r.random_bool(0.3) { created_at + r.random_range(0..=max_update) } else { created_at };
    let duplicated = r.random_bool(0.01);
    Customer { id: id as i64, email, first_name, last_name, country_code, created_at, updated_at, duplicated }
}

fn write_customers(path: &Path, ctx: &Ctx) -> Result<(PathBuf, u64)> {
    let schema = Arc::new(Schema::new(vec![
        Field::new("id", DataType::Int64, false),
        Field::new("email", DataType::Utf8, true),
        Field::new("first_name", DataType::Utf8, true),
        Field::new("last_name", DataType::Utf8, true),
        Field::new("country_code", DataType::Utf8, true),
        ts_field("created_at"),
        ts_field("updated_at"),
    ]));
    let mut sink = ParquetSink::create(path, schema)?;
    let cap = BATCH_ROWS + 1;
    let new_builders = || {
        (
            Int64Builder::with_capacity(cap),
            StringBuilder::with_capacity(cap, cap * 32),
            StringBuilder::with_capacity(cap, cap * 8),
            StringBuilder::with_capacity(cap, cap * 8),
            StringBuilder::with_capacity(cap, cap * 2),
            ts_builder(cap),
            ts_builder(cap),
        )
    };
    let mut b = new_builders();
    let mut len = 0usize;
    let n = ctx.sizes.customers;
    for id in 1..=n {
        let c = make_customer(ctx.seed, id, n, ctx.d0_us);
        let copies = if c.duplicated { 2 } else { 1 };
        for _ in 0..copies {
            b.0.append_value(c.id);
            b.1.append_option(c.email.as_deref());
            b.2.append_option(c.first_name.as_deref());
            b.3.append_option(c.last_name.as_deref());
            b.4.append_option(c.country_code.as_deref());
            b.5.append_value(c.created_at);
            b.6.append_value(c.updated_at);
            len += 1;
        }
        if len >= BATCH_ROWS || id == n {
            let mut full = std::mem::replace(&mut b, new_builders());
            sink.write(vec![
                Arc::new(full.0.finish()),
                Arc::new(full.1.finish()),
                Arc::new(full.2.finish()),
                Arc::new(full.3.finish()),
                Arc::new(full.4.finish()),
                Arc::new(full.5.finish()),
                Arc::new(full.6.finish()),
            ])?;
            len = 0;
        }
    }
    sink.finish()
}

// ---------------------------------------------------------------------------------------------
// Products
// ---------------------------------------------------------------------------------------------

struct CategorySpec {
    /// Raw spellings as typed in the source system; `seeds/category_mapping.csv` maps
    /// `lower(trim(spelling))` to the canonical name.
    spellings: &'static [&'static str],
    items: &'static [&'static str],
    price_cents: (i64, i64),
    weight: u32,
}

const CATEGORIES: &[CategorySpec] = &[
    CategorySpec {
        spellings: &["Electronics", "electronics", " Electronics", "ELECTRONICS", "Electronic "],
        items: &[
            "Wireless Mouse",
            "Bluetooth Speaker",
            "USB-C Hub",
            "Noise-Cancelling Headphones",
            "4K Monitor",
            "Mechanical Keyboard",
            "Smartwatch",
            "Webcam",
            "Portable SSD",
        ],
        price_cents: (1_999, 89_999),
        weight: 20,
    },
    CategorySpec {
        spellings: &["Home & Garden", "home & garden", "home_garden", "Home and Garden", "HOME & GARDEN"],
        items: &["Ceramic Planter", "Garden Hose", "LED Desk Lamp", "Throw Pillow", "Cast Iron Skillet", "Scented Candle", "Pruning Shears", "Bath Towel Set"],
        price_cents: (999, 24_999),
        weight: 16,
    },
    CategorySpec {
        spellings: &["Clothing", "clothing", "CLOTHING", "Apparel", " apparel"],
        items: &["Denim Jacket", "Wool Sweater", "Running Socks", "Linen Shirt", "Rain Coat", "Chinos", "Beanie"],
        price_cents: (999, 19_999),
        weight: 16,
    },
    CategorySpec {
        spellings: &["Sports & Outdoors", "sports", "Sports", "sports_outdoors", "SPORTS & OUTDOORS "],
        items: &["Yoga Mat", "Camping Tent", "Trail Backpack", "Water Bottle", "Dumbbell Set", "Cycling Helmet"],
        price_cents: (1_499, 39_999),
        weight: 12,
    },
    CategorySpec {
        spellings: &["Books", "books", "BOOKS", " Books "],
        items: &["Cookbook", "Mystery Novel", "Travel Guide", "Sci-Fi Anthology", "Biography"],
        price_cents: (499, 5_999),
        weight: 12,
    },
    CategorySpec {
        spellings: &["Toys & Games", "toys", "Toys and Games", "toys_games"],
        items: &["Board Game", "Puzzle 1000pc", "Building Blocks", "Plush Bear", "RC Car"],
        price_cents: (799, 14_999),
        weight: 8,
    },
    CategorySpec {
        spellings: &["Beauty", "beauty", "Health & Beauty", "BEAUTY"],
        items: &["Face Serum", "Shampoo", "Lip Balm", "Sunscreen SPF50", "Hair Dryer"],
        price_cents: (499, 9_999),
        weight: 8,
    },
    CategorySpec {
        spellings: &["Grocery", "grocery", "Food & Grocery", "GROCERY "],
        items: &["Espresso Beans", "Olive Oil", "Green Tea", "Dark Chocolate", "Maple Syrup"],
        price_cents: (199, 3_999),
        weight: 8,
    },
];

/// Spellings that are in no mapping: staging falls back to 'Other'.
const UNMAPPED_CATEGORIES: &[&str] = &["Misc", "misc.", "N/A"];

const PRODUCT_ADJECTIVES: &[&str] = &["Classic", "Pro", "Eco", "Deluxe", "Compact", "Ultra", "Essential", "Premium", "Smart", "Lite"];

struct Product {
    id: i64,
    name: String,
    category: Option<String>,
    price_cents: i64,
    cost_cents: i64,
    created_at: i64,
    updated_at: i64,
}

fn make_product(seed: u64, id: u64, d0_us: i64) -> Product {
    let mut r = row_rng(seed, STREAM_PRODUCTS, id);
    let total: u32 = CATEGORIES.iter().map(|c| c.weight).sum();
    let mut x = r.random_range(0..total);
    let mut spec = &CATEGORIES[0];
    for c in CATEGORIES {
        if x < c.weight {
            spec = c;
            break;
        }
        x -= c.weight;
    }
    let adjective = *pick(&mut r, PRODUCT_ADJECTIVES);
    let item = *pick(&mut r, spec.items);
    let name = format!("{adjective} {item} {id}");
    let category = match r.random_range(0..1000u32) {
        0..=4 => None,
        5..=14 => Some(pick(&mut r, UNMAPPED_CATEGORIES).to_string()),
        _ => Some(pick(&mut r, spec.spellings).to_string()),
    };
    // Skewed towards the cheap end; exact IEEE arithmetic only, so portable.
    let u: f64 = r.random();
    let (lo, hi) = spec.price_cents;
    let price_cents = ((lo + ((hi - lo) as f64 * u * u) as i64) / 100) * 100 + 99;
    let cost_pct = r.random_range(35..=75i64);
    let cost_cents = price_cents * cost_pct / 100;
    let created_at = d0_us - r.random_range(400..1_500i64) * MICROS_PER_DAY + r.random_range(0..MICROS_PER_DAY);
    let updated_at = if r.random_bool(0.4) { created_at + r.random_range(0..(d0_us - MICROS_PER_SEC - created_at)) } else { created_at };
    Product { id: id as i64, name, category, price_cents, cost_cents, created_at, updated_at }
}

fn write_products(path: &Path, ctx: &Ctx) -> Result<(PathBuf, u64)> {
    let schema = Arc::new(Schema::new(vec![
        Field::new("id", DataType::Int64, false),
        Field::new("name", DataType::Utf8, true),
        Field::new("category", DataType::Utf8, true),
        Field::new("price", DataType::Decimal128(10, 2), true),
        Field::new("cost", DataType::Decimal128(10, 2), true),
        ts_field("created_at"),
        ts_field("updated_at"),
    ]));
    let mut sink = ParquetSink::create(path, schema)?;
    let n = ctx.sizes.products;
    let mut start = 1u64;
    while start <= n {
        let end = (start + BATCH_ROWS as u64 - 1).min(n);
        let cap = (end - start + 1) as usize;
        let mut id_b = Int64Builder::with_capacity(cap);
        let mut name_b = StringBuilder::with_capacity(cap, cap * 24);
        let mut cat_b = StringBuilder::with_capacity(cap, cap * 12);
        let mut price_b = decimal_builder(cap, 10);
        let mut cost_b = decimal_builder(cap, 10);
        let mut created_b = ts_builder(cap);
        let mut updated_b = ts_builder(cap);
        for id in start..=end {
            let p = make_product(ctx.seed, id, ctx.d0_us);
            id_b.append_value(p.id);
            name_b.append_value(&p.name);
            cat_b.append_option(p.category.as_deref());
            price_b.append_value(p.price_cents as i128);
            cost_b.append_value(p.cost_cents as i128);
            created_b.append_value(p.created_at);
            updated_b.append_value(p.updated_at);
        }
        sink.write(vec![
            Arc::new(id_b.finish()),
            Arc::new(name_b.finish()),
            Arc::new(cat_b.finish()),
            Arc::new(price_b.finish()),
            Arc::new(cost_b.finish()),
            Arc::new(created_b.finish()),
            Arc::new(updated_b.finish()),
        ])?;
        start = end + 1;
    }
    sink.finish()
}

// ---------------------------------------------------------------------------------------------
// Orders and transactions
// ---------------------------------------------------------------------------------------------

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Status {
    Pending,
    Shipped,
    Delivered,
    Cancelled,
    Returned,
}

impl Status {
    fn as_str(self) -> &'static str {
        match self {
            Status::Pending => "pending",
            Status::Shipped => "shipped",
            Status::Delivered => "delivered",
            Status::Cancelled => "cancelled",
            Status::Returned => "returned",
        }
    }
}

const PAYMENT_METHODS: &[(&str, u32)] = &[("credit_card", 45), ("debit_card", 20), ("paypal", 20), ("bank_transfer", 10), ("gift_card", 5)];

struct Line {
    product_id: u64,
    quantity: i64,
    unit_price_cents: i64,
    discount_cents: Option<i64>,
}

struct Order {
    id: u64,
    customer_id: i64,
    order_date_us: i64,
    status: Status,
    status_text: String,
    total_cents: i64,
    updated_us: i64,
    payment_method: String,
    lines: Vec<Line>,
}

/// The order as of the full extract (or, for new orders, as first seen in the incremental one).
fn make_order(ctx: &Ctx, id: u64) -> Order {
    let s = ctx.sizes;
    let mut r = row_rng(ctx.seed, STREAM_ORDERS, id);
    let d0 = ctx.d0_us;
    let is_new = id > s.full_orders;

    // Order dates grow with the id: the full extract spans the year before d0, new orders
    // fall on d0 itself (extracted into the next day's folder).
    let order_date_us = (if is_new {
        let n_new = s.orders - s.full_orders;
        let slot = MICROS_PER_DAY as f64 / n_new as f64;
        d0 + (((id - s.full_orders - 1) as f64 + r.random::<f64>()) * slot) as i64
    } else {
        let span = ORDER_HISTORY_DAYS * MICROS_PER_DAY;
        let slot = span as f64 / s.full_orders as f64;
        d0 - span + (((id - 1) as f64 + r.random::<f64>()) * slot) as i64
    })
    .min(if is_new { d0 + MICROS_PER_DAY - MICROS_PER_SEC } else { d0 - MICROS_PER_SEC });

    // Only customers who signed up before the order can place it; earlier customers order more.
    let customer_id = if r.random_bool(0.004) {
        (s.customers + r.random_range(1..=25u64)) as i64 // dangling reference
    } else {
        let span = CUSTOMER_HISTORY_DAYS * MICROS_PER_DAY;
        let start = d0 - span;
        let eligible = ((((order_date_us - start) as f64 / span as f64) * s.customers as f64) as u64).clamp(1, s.customers);
        // Churned customers place no more orders: re-draw a few times.
        let mut candidate = 1;
        for _ in 0..6 {
            let u: f64 = r.random();
            candidate = (1 + ((eligible as f64) * u * u.sqrt()) as u64).min(eligible);
            if customer_churn_at(ctx.seed, candidate, s.customers, d0) > order_date_us {
                break;
            }
        }
        candidate as i64
    };

    let age_days = (d0 - order_date_us) / MICROS_PER_DAY;
    let status = if is_new {
        *weighted(&mut r, &[(Status::Pending, 85), (Status::Shipped, 10), (Status::Cancelled, 5)])
    } else if age_days < 2 {
        *weighted(&mut r, &[(Status::Pending, 60), (Status::Shipped, 35), (Status::Cancelled, 5)])
    } else if age_days < 8 {
        *weighted(&mut r, &[(Status::Pending, 10), (Status::Shipped, 50), (Status::Delivered, 35), (Status::Cancelled, 5)])
    } else {
        *weighted(&mut r, &[(Status::Delivered, 85), (Status::Cancelled, 6), (Status::Returned, 6), (Status::Shipped, 3)])
    };
    let status_text = dirty_case(&mut r, status.as_str());
    let delay_us = match status {
        Status::Pending => r.random_range(0..600) * MICROS_PER_SEC,
        Status::Shipped => r.random_range(MICROS_PER_DAY / 2..2 * MICROS_PER_DAY),
        Status::Delivered => r.random_range(3 * MICROS_PER_DAY..7 * MICROS_PER_DAY),
        Status::Cancelled => r.random_range(0..MICROS_PER_DAY),
        Status::Returned => r.random_range(10 * MICROS_PER_DAY..30 * MICROS_PER_DAY),
    };
    let horizon = if is_new { d0 + MICROS_PER_DAY } else { d0 } - MICROS_PER_SEC;
    let updated_us = (order_date_us + delay_us).min(horizon).max(order_date_us);

    let payment = *weighted(&mut r, PAYMENT_METHODS);
    let payment_method = if r.random_bool(0.03) { payment.to_uppercase() } else { payment.to_string() };

    let n_lines = r.random_range(1..=5usize);
    let mut lines = Vec::with_capacity(n_lines);
    let mut total_cents = 0i64;
    for _ in 0..n_lines {
        let u: f64 = r.random();
        let product_id = (1 + ((s.products as f64) * u * u) as u64).min(s.products);
        let quantity = if r.random_bool(0.006) {
            r.random_range(-2..=0i64) // data-entry errors
        } else {
            *weighted(&mut r, &[(1i64, 60), (2, 25), (3, 10), (4, 3), (6, 2)])
        };
        let unit_price_cents = ctx.prices[(product_id - 1) as usize].0;
        let gross = quantity * unit_price_cents;
        let discount_cents = match r.random_range(0..100u32) {
            0..=59 => None,
            60..=69 => Some(0),
            _ if quantity > 0 => Some(gross * r.random_range(5..=25i64) / 100),
            _ => None,
        };
        if quantity > 0 {
            total_cents += gross - discount_cents.unwrap_or(0);
        }
        lines.push(Line { product_id, quantity, unit_price_cents, discount_cents });
    }

    Order { id, customer_id, order_date_us, status, status_text, total_cents, updated_us, payment_method, lines }
}

/// A late update seen by the incremental extract of day d0+1, if any.
fn order_update(ctx: &Ctx, order: &Order) -> Option<(Status, i64)> {
    let mut r = row_rng(ctx.seed, STREAM_ORDER_UPDATES, order.id);
    let next = match order.status {
        Status::Pending if r.random_bool(0.6) => {
            if r.random_bool(0.9) {
                Status::Shipped
            } else {
                Status::Cancelled
            }
        }
        Status::Shipped if r.random_bool(0.35) => Status::Delivered,
        Status::Delivered if r.random_bool(0.004) => Status::Returned,
        _ => return None,
    };
    Some((next, ctx.d0_us + r.random_range(0..MICROS_PER_DAY - MICROS_PER_SEC)))
}

struct OrderCols {
    id: Int64Builder,
    customer_id: Int64Builder,
    order_date: TimestampMicrosecondBuilder,
    status: StringBuilder,
    total_amount: Decimal128Builder,
    updated_at: TimestampMicrosecondBuilder,
    len: usize,
}

impl OrderCols {
    fn new() -> Self {
        let cap = BATCH_ROWS;
        Self {
            id: Int64Builder::with_capacity(cap),
            customer_id: Int64Builder::with_capacity(cap),
            order_date: ts_builder(cap),
            status: StringBuilder::with_capacity(cap, cap * 10),
            total_amount: decimal_builder(cap, 12),
            updated_at: ts_builder(cap),
            len: 0,
        }
    }

    fn push(&mut self, o: &Order, status_text: &str, updated_us: i64) {
        self.id.append_value(o.id as i64);
        self.customer_id.append_value(o.customer_id);
        self.order_date.append_value(o.order_date_us);
        self.status.append_value(status_text);
        self.total_amount.append_value(o.total_cents as i128);
        self.updated_at.append_value(updated_us);
        self.len += 1;
    }

    fn flush_into(&mut self, sink: &mut ParquetSink) -> Result<()> {
        let mut b = std::mem::replace(self, Self::new());
        sink.write(vec![
            Arc::new(b.id.finish()),
            Arc::new(b.customer_id.finish()),
            Arc::new(b.order_date.finish()),
            Arc::new(b.status.finish()),
            Arc::new(b.total_amount.finish()),
            Arc::new(b.updated_at.finish()),
        ])
    }
}

fn orders_schema() -> SchemaRef {
    Arc::new(Schema::new(vec![
        Field::new("id", DataType::Int64, false),
        Field::new("customer_id", DataType::Int64, true),
        ts_field("order_date"),
        Field::new("status", DataType::Utf8, true),
        Field::new("total_amount", DataType::Decimal128(12, 2), true),
        ts_field("updated_at"),
    ]))
}

const TRANSACTION_HEADER: &[&str] = &["transaction_id", "order_id", "product_id", "quantity", "unit_price", "discount", "transaction_ts", "payment_method"];

type OrdersOut = ((PathBuf, u64), (PathBuf, u64, u64));

fn write_orders_full(orders_path: &Path, tx_path: &Path, ctx: &Ctx) -> Result<OrdersOut> {
    let mut sink = ParquetSink::create(orders_path, orders_schema())?;
    let mut tx = CsvSink::create(tx_path, TRANSACTION_HEADER, 1)?;
    let mut cols = OrderCols::new();
    for id in 1..=ctx.sizes.full_orders {
        let o = make_order(ctx, id);
        cols.push(&o, &o.status_text, o.updated_us);
        tx.write_order_lines(&o)?;
        if cols.len >= BATCH_ROWS {
            cols.flush_into(&mut sink)?;
        }
    }
    cols.flush_into(&mut sink)?;
    Ok((sink.finish()?, tx.finish()?))
}

fn write_orders_incremental(orders_path: &Path, tx_path: &Path, ctx: &Ctx, first_transaction_id: u64) -> Result<OrdersOut> {
    let mut sink = ParquetSink::create(orders_path, orders_schema())?;
    let mut tx = CsvSink::create(tx_path, TRANSACTION_HEADER, first_transaction_id)?;
    let mut cols = OrderCols::new();
    // Late updates of already-extracted orders (same id, newer updated_at, new status).
    for id in 1..=ctx.sizes.full_orders {
        let o = make_order(ctx, id);
        if let Some((status, updated_us)) = order_update(ctx, &o) {
            let mut r = row_rng(ctx.seed, STREAM_ORDER_UPDATES, id ^ (1 << 63));
            let text = dirty_case(&mut r, status.as_str());
            cols.push(&o, &text, updated_us);
            if cols.len >= BATCH_ROWS {
                cols.flush_into(&mut sink)?;
            }
        }
    }
    // Orders placed on d0 itself.
    for id in ctx.sizes.full_orders + 1..=ctx.sizes.orders {
        let o = make_order(ctx, id);
        cols.push(&o, &o.status_text, o.updated_us);
        tx.write_order_lines(&o)?;
        if cols.len >= BATCH_ROWS {
            cols.flush_into(&mut sink)?;
        }
    }
    cols.flush_into(&mut sink)?;
    Ok((sink.finish()?, tx.finish()?))
}

#[cfg(test)]
mod tests {
    use super::*;
    use datafusion::arrow::array::{Array, AsArray};
    use datafusion::arrow::datatypes::Int64Type;
    use datafusion::parquet::arrow::arrow_reader::ParquetRecordBatchReaderBuilder;
    use std::collections::HashSet;

    fn opts(scale: f64, seed: u64) -> GenerateOptions {
        GenerateOptions { scale, seed, ..Default::default() }
    }

    fn read_parquet(path: &Path) -> Vec<RecordBatch> {
        let file = File::open(path).unwrap();
        ParquetRecordBatchReaderBuilder::try_new(file).unwrap().build().unwrap().map(|b| b.unwrap()).collect()
    }

    fn strings(batches: &[RecordBatch], col: &str) -> Vec<Option<String>> {
        batches
            .iter()
            .flat_map(|b| {
                let a = b.column_by_name(col).unwrap().as_string::<i32>().clone();
                (0..a.len()).map(|i| (!a.is_null(i)).then(|| a.value(i).to_string())).collect::<Vec<_>>()
            })
            .collect()
    }

    fn ints(batches: &[RecordBatch], col: &str) -> Vec<i64> {
        batches.iter().flat_map(|b| b.column_by_name(col).unwrap().as_primitive::<Int64Type>().values().to_vec()).collect()
    }

    fn csv_rows(path: &Path) -> Vec<csv::StringRecord> {
        csv::Reader::from_path(path).unwrap().records().map(|r| r.unwrap()).collect()
    }

    #[test]
    fn same_seed_gives_identical_bytes() {
        let a = tempfile::tempdir().unwrap();
        let b = tempfile::tempdir().unwrap();
        let ra = generate(a.path(), &a.path().join("files"), &opts(0.02, 7)).unwrap();
        let rb = generate(b.path(), &b.path().join("files"), &opts(0.02, 7)).unwrap();
        assert_eq!(ra.files.len(), rb.files.len());
        for ((pa, na), (pb, nb)) in ra.files.iter().zip(&rb.files) {
            assert_eq!(pa.strip_prefix(a.path()).unwrap(), pb.strip_prefix(b.path()).unwrap());
            assert_eq!(na, nb);
            assert_eq!(fs::read(pa).unwrap(), fs::read(pb).unwrap(), "{}", pa.display());
        }
        // A different seed gives different data.
        let c = tempfile::tempdir().unwrap();
        let rc = generate(c.path(), &c.path().join("files"), &opts(0.02, 8)).unwrap();
        assert_ne!(fs::read(&ra.files[0].0).unwrap(), fs::read(&rc.files[0].0).unwrap());
    }

    #[test]
    fn files_land_at_documented_paths() {
        let dir = tempfile::tempdir().unwrap();
        let report = generate(dir.path(), &dir.path().join("files"), &opts(0.01, 42)).unwrap();
        let rel: Vec<String> = report.files.iter().map(|(p, _)| p.strip_prefix(dir.path()).unwrap().to_string_lossy().replace('\\', "/")).collect();
        assert_eq!(
            rel,
            vec![
                "postgres/customers/2024-01-15/customers.parquet",
                "postgres/products/2024-01-15/products.parquet",
                "postgres/orders/2024-01-15/orders.parquet",
                "postgres/orders/2024-01-16/orders.parquet",
                "files/sales/2024-01-15/transactions.csv",
                "files/sales/2024-01-16/transactions.csv",
            ]
        );
        for (p, _) in &report.files {
            assert!(p.is_file(), "{}", p.display());
            assert!(!tmp_path(p).exists());
        }
        // Custom date moves the folders.
        let dir2 = tempfile::tempdir().unwrap();
        let o = GenerateOptions { date: NaiveDate::from_ymd_opt(2025, 3, 31).unwrap(), ..opts(0.01, 1) };
        generate(dir2.path(), &dir2.path().join("files"), &o).unwrap();
        assert!(dir2.path().join("postgres/orders/2025-04-01/orders.parquet").is_file());
        assert!(dir2.path().join("files/sales/2025-03-31/transactions.csv").is_file());
    }

    #[test]
    fn row_counts_at_small_scale() {
        let dir = tempfile::tempdir().unwrap();
        let report = generate(dir.path(), &dir.path().join("files"), &opts(0.01, 42)).unwrap();
        let n = |i: usize| report.files[i].1;
        // customers: 100 + ~1% exact duplicates
        assert!((100..=110).contains(&n(0)), "customers {}", n(0));
        assert_eq!(n(1), 100, "products: 1000 * sqrt(0.01)");
        assert_eq!(n(2), 997, "full orders extract: 1000 - 1000/366");
        // incremental: 3 new orders + late updates
        assert!(n(3) > 3 && n(3) < 100, "incremental orders {}", n(3));
        let tx = n(4) + n(5);
        assert!((2_500..=3_500).contains(&tx), "transactions {tx}");
        // Reported counts match the files.
        let customers = read_parquet(&report.files[0].0);
        assert_eq!(customers.iter().map(|b| b.num_rows() as u64).sum::<u64>(), n(0));
        assert_eq!(csv_rows(&report.files[4].0).len() as u64, n(4));
        // Distinct orders across both extracts == 1000.
        let mut ids: HashSet<i64> = ints(&read_parquet(&report.files[2].0), "id").into_iter().collect();
        ids.extend(ints(&read_parquet(&report.files[3].0), "id"));
        assert_eq!(ids.len(), 1000);
        // Transaction ids are unique across folders.
        let mut tids = HashSet::new();
        for f in [&report.files[4].0, &report.files[5].0] {
            for r in csv_rows(f) {
                assert!(tids.insert(r[0].to_string()));
            }
        }
    }

    #[test]
    fn larger_scale_streams_in_several_batches() {
        let dir = tempfile::tempdir().unwrap();
        let report = generate(dir.path(), &dir.path().join("files"), &opts(0.7, 3)).unwrap();
        let orders = read_parquet(&report.files[2].0);
        assert_eq!(orders.iter().map(|b| b.num_rows()).sum::<usize>(), 69_809);
        assert_eq!(report.files[2].1, 69_809);
        assert!(report.files.iter().map(|(_, n)| n).sum::<u64>() > 250_000);
    }

    #[test]
    fn the_data_is_dirty() {
        let dir = tempfile::tempdir().unwrap();
        let report = generate(dir.path(), &dir.path().join("files"), &opts(0.1, 42)).unwrap();
        let customers = read_parquet(&report.files[0].0);
        let emails = strings(&customers, "email");
        let invalid = emails
            .iter()
            .flatten()
            .filter(|e| {
                let e = e.trim();
                match e.find('@') {
                    None => true,
                    Some(at) => !e[at..].contains('.'),
                }
            })
            .count();
        let nulls = emails.iter().filter(|e| e.is_none()).count();
        assert!(invalid > 0 && invalid < emails.len() / 10, "invalid emails {invalid}");
        assert!(nulls > 0, "null emails");
        assert!(strings(&customers, "first_name").iter().any(|n| n.is_none()));
        let ids = ints(&customers, "id");
        let distinct: HashSet<_> = ids.iter().collect();
        assert!(distinct.len() < ids.len(), "exact duplicate customers");

        let products = read_parquet(&report.files[1].0);
        let cats: HashSet<String> = strings(&products, "category").into_iter().flatten().collect();
        assert!(cats.contains("electronics") || cats.contains("ELECTRONICS"));
        assert!(cats.iter().any(|c| c != c.trim()), "stray spaces in categories");

        let full = read_parquet(&report.files[2].0);
        let statuses: HashSet<String> = strings(&full, "status").into_iter().flatten().collect();
        assert!(statuses.iter().any(|s| s.chars().any(|c| c.is_uppercase())));
        let max_customer = 1_000;
        assert!(ints(&full, "customer_id").iter().any(|&c| c > max_customer));

        // Late updates: same id in both extracts with a newer updated_at.
        let incr = read_parquet(&report.files[3].0);
        let full_ids: HashSet<i64> = ints(&full, "id").into_iter().collect();
        let updated = ints(&incr, "id").into_iter().filter(|i| full_ids.contains(i)).count();
        assert!(updated > 0, "late updates");

        let tx = csv_rows(&report.files[4].0);
        assert!(tx.iter().any(|r| r[3].parse::<i64>().unwrap() <= 0), "non-positive quantity");
        assert!(tx.iter().any(|r| r[5].is_empty()), "NULL discount");
        assert!(tx.iter().any(|r| !r[5].is_empty()), "some discounts");
    }

    #[test]
    fn rejects_bad_scale() {
        let dir = tempfile::tempdir().unwrap();
        for s in [0.0, -1.0, f64::NAN, f64::INFINITY] {
            let err = generate(dir.path(), &dir.path().join("files"), &opts(s, 1)).unwrap_err();
            assert!(matches!(err, GenerateError::InvalidScale { .. }));
            assert!(err.to_string().contains("greater than 0"));
        }
    }

    #[test]
    fn reports_unwritable_root() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("not-a-dir");
        fs::write(&file, b"x").unwrap();
        let err = generate(&file, &file.join("files"), &opts(0.01, 1)).unwrap_err();
        let msg = err.to_string();
        assert!(msg.contains("not-a-dir"), "{msg}");
        assert!(msg.contains("writable"), "{msg}");
    }
}
