//! dp: an embedded lakehouse. Parse → graph → compile stages are I/O-free
//! behind [`fs::FileSystem`]; the engine, materializations and runner
//! execute on DataFusion and Delta Lake.
pub mod cli;
pub mod compile;
pub mod config;
pub mod demo;
pub mod docs;
pub mod engine;
pub mod fs;
pub mod graph;
pub mod jinja;
pub mod lineage;
pub mod materialize;
pub mod postgres;
pub mod project;
pub mod runner;
pub mod seed;
pub mod shell;
pub mod storage;
