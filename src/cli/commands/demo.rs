//! `dp demo`: the main job on the embedded default. Generates the bronze
//! data if it is absent, then builds the demo project (seeds, models and
//! their data tests, in DAG order).
//! `dp demo generate` only writes the bronze files.
//!
//! The bronze data lives under `<source_root>/bronze` (the project root when
//! the target sets no `source_root`). When that is an object store
//! (`--target s3`), the files are generated in a local scratch folder and
//! uploaded (multipart for large files), then a marker object
//! (`bronze/_dp_demo_uploaded`) is written: with the marker present the
//! bronze data is reused; without it an interrupted upload is redone.

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
            let dir = out.unwrap_or_else(|| root.join("bronze"));
            write_bronze(&dir, scale, seed, printer)?;
            Ok(ExitCode::SUCCESS)
        }
        None => {
            let s = settings(g, threads)?;
            let bronze_loc = crate::engine::resolve_source_location(&s, "bronze");
            if bronze_loc.contains("://") {
                upload_bronze(&s, &bronze_loc, scale, printer).await?;
                let args = RunArgs { threads, ..Default::default() };
                return run_cmd(g, &args, Kind::Build, printer).await;
            }
            let bronze = std::path::PathBuf::from(bronze_loc);
            if !bronze.join("postgres").exists() {
                write_bronze(&bronze, scale, 42, printer)?;
            } else {
                printer.info(format!("Using existing bronze data in {} (delete it to regenerate)", bronze.display()));
            }
            let args = RunArgs { threads, ..Default::default() };
            run_cmd(g, &args, Kind::Build, printer).await
        }
    }
}

/// The object written after the last bronze file: without it an upload
/// was interrupted and is done again (same seed, same keys).
const UPLOADED_MARKER: &str = "_dp_demo_uploaded";

async fn upload_bronze(s: &crate::config::Settings, bronze_loc: &str, scale: f64, printer: &Printer) -> anyhow::Result<()> {
    let dest = url::Url::parse(&format!("{bronze_loc}/"))?;
    let marker = dest.join(UPLOADED_MARKER)?;
    if crate::storage::object_exists(&marker, s).await? {
        printer.info(format!("Using existing bronze data in {bronze_loc} (delete it to regenerate)"));
        return Ok(());
    }
    if crate::storage::has_objects(&dest.join("postgres/")?, s).await? {
        printer.warn(format!("{bronze_loc} holds an incomplete upload (no {UPLOADED_MARKER}); uploading it again"));
    }
    let scratch = s.target_dir().join("demo-bronze");
    let _ = std::fs::remove_dir_all(&scratch);
    write_bronze(&scratch, scale, 42, printer)?;
    let t = std::time::Instant::now();
    let n = crate::storage::upload_dir(&scratch, &dest, s).await;
    let _ = std::fs::remove_dir_all(&scratch);
    let n = n?;
    crate::storage::put_bytes(&marker, s, format!("scale {scale}\n").into_bytes()).await?;
    printer.info(format!("Uploaded {n} files to {bronze_loc} in {:.2}s", t.elapsed().as_secs_f64()));
    Ok(())
}

fn write_bronze(dir: &std::path::Path, scale: f64, seed: u64, printer: &Printer) -> anyhow::Result<()> {
    let t = std::time::Instant::now();
    printer.info(format!("Generating demo bronze data (scale {scale}) in {}", dir.display()));
    let opts = GenerateOptions { scale, seed, ..GenerateOptions::default() };
    let report = generate(dir, &opts)?;
    let rows: u64 = report.files.iter().map(|(_, r)| *r).sum();
    printer.info(format!("Wrote {} files, {} rows in {:.2}s", report.files.len(), crate::util::fmt_thousands(rows), t.elapsed().as_secs_f64()));
    Ok(())
}
