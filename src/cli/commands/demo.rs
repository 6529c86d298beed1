//! `dp demo`: the main job on the embedded default. Generates the demo data
//! if it is absent (the operational extracts in `bronze/`, the sales file
//! drops in `landing/sales/`), ingests the file drops into bronze (`dp
//! ingest -s source:raw.transactions`: new files only), then builds the
//! demo project (seeds, models and their data tests, in DAG order).
//! `dp demo generate` only writes the data (`--out DIR`: bronze in DIR,
//! the file drops in `landing/` beside it).
//!
//! The data lives under `<source_root>/bronze` and `<source_root>/landing`
//! (the project root when the target sets no `source_root`). When that is
//! an object store (`--target s3`), the files are generated in a local
//! scratch folder and uploaded (multipart for large files), then a marker
//! object (`bronze/_dp_demo_uploaded`) is written: with the marker present
//! the data is reused; without it an interrupted upload is redone.
//!
//! With a PostgreSQL server (a target with `[postgres]`, e.g. `--target pg`)
//! the whole seed flow runs for real: the generated operational tables are
//! loaded into the server's `shop` schema and the sales files dropped into
//! `landing/sales`, `dp ingest` extracts the tables and lands the files (customers and products in full,
//! orders incrementally on `updated_at`), the next day's order changes are
//! applied in PostgreSQL and ingested incrementally, then `dp build`
//! builds and publishes the marts.

use std::process::ExitCode;

use crate::cli::Printer;
use crate::cli::args::{DemoAction, GlobalArgs, RunArgs};
use crate::cli::context::{project_root, settings};
use crate::demo::generate::{GenerateOptions, generate};

use super::run::{Kind, run as run_cmd};

pub async fn run(g: &GlobalArgs, action: Option<DemoAction>, scale: f64, threads: Option<usize>, printer: &Printer) -> anyhow::Result<ExitCode> {
    let root = project_root(g)?;
    match action {
        Some(DemoAction::Generate { scale, seed, out }) => {
            let landing = match &out {
                Some(o) => o.parent().unwrap_or(std::path::Path::new(".")).join("landing"),
                None => root.join("landing"),
            };
            let dir = out.unwrap_or_else(|| root.join("bronze"));
            write_demo_data(&dir, &landing, scale, seed, printer)?;
            Ok(ExitCode::SUCCESS)
        }
        None => {
            let s = settings(g, threads)?;
            let bronze_loc = crate::engine::resolve_source_location(&s, "bronze");
            if bronze_loc.contains("://") {
                upload_demo_data(&s, &bronze_loc, scale, printer).await?;
            } else if s.target.postgres.is_some() {
                return pg_flow(g, &s, scale, threads, printer).await;
            } else {
                let bronze = std::path::PathBuf::from(&bronze_loc);
                let landing = std::path::PathBuf::from(crate::engine::resolve_source_location(&s, "landing"));
                if !bronze.join("postgres").exists() || !landing.join("sales").exists() {
                    write_demo_data(&bronze, &landing, scale, 42, printer)?;
                } else {
                    printer.info(format!("Using existing demo data in {} and {} (delete them to regenerate)", bronze.display(), landing.display()));
                }
            }
            let code = ingest(g, "source:raw.transactions", threads, printer).await?;
            if code != ExitCode::SUCCESS {
                return Ok(code);
            }
            printer.info("");
            let args = RunArgs { threads, ..Default::default() };
            run_cmd(g, &args, Kind::Build, printer).await
        }
    }
}

/// `dp ingest -s <select>`, as part of the demo.
async fn ingest(g: &GlobalArgs, select: &str, threads: Option<usize>, printer: &Printer) -> anyhow::Result<ExitCode> {
    let mut a = crate::cli::args::IngestArgs { threads, ..Default::default() };
    a.select.select = vec![select.to_string()];
    super::ingest::run(g, &a, printer).await
}

/// The object written after the last generated file: without it an upload
/// was interrupted and is done again (same seed, same keys).
const UPLOADED_MARKER: &str = "_dp_demo_uploaded";

async fn upload_demo_data(s: &crate::config::Settings, bronze_loc: &str, scale: f64, printer: &Printer) -> anyhow::Result<()> {
    let dest = url::Url::parse(&format!("{bronze_loc}/"))?;
    let landing_loc = crate::engine::resolve_source_location(s, "landing");
    let landing_dest = url::Url::parse(&format!("{}/", landing_loc.trim_end_matches('/')))?;
    let marker = dest.join(UPLOADED_MARKER)?;
    if crate::storage::object_exists(&marker, s).await? {
        printer.info(format!("Using existing bronze data in {bronze_loc} (delete it to regenerate)"));
        return Ok(());
    }
    if crate::storage::has_objects(&dest.join("postgres/")?, s).await? {
        printer.warn(format!("{bronze_loc} holds an incomplete upload (no {UPLOADED_MARKER}); uploading it again"));
    }
    let scratch = s.target_dir().join("demo-data");
    let _ = std::fs::remove_dir_all(&scratch);
    write_demo_data(&scratch.join("bronze"), &scratch.join("landing"), scale, 42, printer)?;
    let t = std::time::Instant::now();
    let n = crate::storage::upload_dir(&scratch.join("bronze"), &dest, s).await;
    let m = crate::storage::upload_dir(&scratch.join("landing"), &landing_dest, s).await;
    let _ = std::fs::remove_dir_all(&scratch);
    let (n, m) = (n?, m?);
    crate::storage::put_bytes(&marker, s, format!("scale {scale}\n").into_bytes()).await?;
    printer.info(format!("Uploaded {n} files to {bronze_loc} and {m} to {} in {:.2}s", landing_loc.trim_end_matches('/'), t.elapsed().as_secs_f64()));
    Ok(())
}

fn write_demo_data(bronze: &std::path::Path, landing: &std::path::Path, scale: f64, seed: u64, printer: &Printer) -> anyhow::Result<()> {
    let t = std::time::Instant::now();
    printer.info(format!("Generating demo data (scale {scale}) in {} and {}", bronze.display(), landing.display()));
    let opts = GenerateOptions { scale, seed, ..GenerateOptions::default() };
    let report = generate(bronze, landing, &opts)?;
    let rows: u64 = report.files.iter().map(|(_, r)| *r).sum();
    printer.info(format!("Wrote {} files, {} rows in {:.2}s", report.files.len(), crate::util::fmt_thousands(rows), t.elapsed().as_secs_f64()));
    Ok(())
}

/// The seed flow against a real server: source DB → bronze → build → publish.
async fn pg_flow(g: &GlobalArgs, s: &crate::config::Settings, scale: f64, threads: Option<usize>, printer: &Printer) -> anyhow::Result<ExitCode> {
    let publisher = crate::postgres::require_publisher(s)?;
    let pool = &publisher.pool;
    let c = pool.get().await?;
    let seeded: bool = c.query_one("SELECT to_regclass('shop.orders') IS NOT NULL", &[]).await?.get(0);
    // `only`: a selection (later runs extract the incremental orders only:
    // another full extract of customers and products would add a second
    // copy of every row to bronze).
    let ingest = |phase: &'static str, only: &'static [&'static str]| async move {
        printer.info(phase);
        let mut a = crate::cli::args::IngestArgs { threads, ..Default::default() };
        a.select.select = only.iter().map(|s| s.to_string()).collect();
        super::ingest::run(g, &a, printer).await
    };
    let landing = std::path::PathBuf::from(crate::engine::resolve_source_location(s, "landing"));
    if seeded {
        printer.info(format!("Using the existing shop.* tables on {} (drop schema shop to regenerate)", pool.settings.describe()));
        let code = ingest("Ingesting changes since the last run", &["source:raw.orders", "source:raw.transactions"]).await?;
        if code != ExitCode::SUCCESS {
            return Ok(code);
        }
    } else {
        let scratch = s.target_dir().join("demo-source");
        let _ = std::fs::remove_dir_all(&scratch);
        write_demo_data(&scratch, &scratch.join("landing"), scale, 42, printer)?;
        let days: Vec<String> = {
            let d0 = GenerateOptions::default().date;
            vec![d0.to_string(), d0.succ_opt().expect("next day").to_string()]
        };
        c.batch_execute("CREATE SCHEMA IF NOT EXISTS shop").await?;
        for t in ["customers", "products", "orders"] {
            let n = load_parquet(&c, &scratch.join(format!("postgres/{t}/{}/{t}.parquet", days[0])), t).await?;
            printer.info(format!("Loaded {} rows into shop.{t} on {}", crate::util::fmt_thousands(n), pool.settings.describe()));
        }
        drop_files(&scratch, &landing, &days[0])?;
        let code = ingest("Ingesting the operational tables and the sales files into bronze", &[]).await?;
        if code != ExitCode::SUCCESS {
            return Ok(code);
        }
        // The next day: changed and new orders in the source, a new sales file.
        let n = load_parquet(&c, &scratch.join(format!("postgres/orders/{}/orders.parquet", days[1])), "orders_changes").await?;
        c.batch_execute(
            "BEGIN; DELETE FROM shop.orders o USING shop.orders_changes c WHERE o.id = c.id; \
             INSERT INTO shop.orders SELECT * FROM shop.orders_changes; DROP TABLE shop.orders_changes; COMMIT",
        )
        .await?;
        printer.info(format!("Applied {} changed or new orders to shop.orders", crate::util::fmt_thousands(n)));
        drop_files(&scratch, &landing, &days[1])?;
        let code = ingest("Ingesting the next day's changes", &["source:raw.orders", "source:raw.transactions"]).await?;
        if code != ExitCode::SUCCESS {
            return Ok(code);
        }
        let _ = std::fs::remove_dir_all(&scratch);
    }
    let args = RunArgs { threads, ..Default::default() };
    run_cmd(g, &args, Kind::Build, printer).await
}

/// Copies a generated Parquet file into a new table `shop.<table>`.
async fn load_parquet(c: &tokio_postgres::Client, file: &std::path::Path, table: &str) -> anyhow::Result<u64> {
    use datafusion::prelude::{ParquetReadOptions, SessionContext};
    let ctx = SessionContext::new();
    let df = ctx.read_parquet(file.display().to_string(), ParquetReadOptions::default()).await?;
    let schema = df.schema().as_arrow().clone();
    let target = crate::postgres::qualified("shop", table);
    c.batch_execute(&format!("DROP TABLE IF EXISTS {target}; CREATE TABLE {target} ({})", crate::postgres::types::column_defs(&schema)?)).await?;
    crate::postgres::copy::copy_in(c, &target, df.execute_stream().await?).await
}

/// The sales file drop of one day, from the generated data into the landing folder.
fn drop_files(scratch: &std::path::Path, landing: &std::path::Path, day: &str) -> anyhow::Result<()> {
    let from = scratch.join(format!("landing/sales/{day}/transactions.csv"));
    let to = landing.join(format!("sales/{day}"));
    std::fs::create_dir_all(&to)?;
    std::fs::copy(&from, to.join("transactions.csv")).map_err(|e| anyhow::anyhow!("copying {}: {e}", from.display()))?;
    Ok(())
}
