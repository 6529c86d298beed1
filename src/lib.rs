//! dp: an embedded lakehouse. Parse → graph → compile stages are I/O-free
//! behind [`fs::FileSystem`]; the engine, materializations and runner
//! execute on DataFusion and Delta Lake.
//!
//! Only [`cli::main`] (the binary) and [`util`] (used by the benchmarks)
//! are public: every other module is crate-private, so code nothing uses is
//! reported as dead.
pub mod cli;
pub(crate) mod compile;
pub(crate) mod config;
pub(crate) mod demo;
pub(crate) mod deps;
pub(crate) mod docs;
pub(crate) mod engine;
pub(crate) mod fs;
pub(crate) mod graph;
pub(crate) mod ingest;
pub(crate) mod jinja;
pub(crate) mod lineage;
pub(crate) mod materialize;
pub(crate) mod orchestrate;
pub(crate) mod postgres;
pub(crate) mod project;
pub(crate) mod quality;
pub(crate) mod runner;
pub(crate) mod seed;
pub(crate) mod shell;
pub(crate) mod storage;
pub(crate) mod superset;
pub mod util;
