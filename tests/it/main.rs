//! The one integration test binary: drives the real `dp` binary on
//! fixture projects and the demo.

mod atomicity;
mod checkpoints;
mod common;
mod compile_parity;
mod corpus;
mod data_tests;
mod defer;
mod demo;
mod docs;
mod errors;
mod graph_context;
mod health;
mod ingest;
mod lineage;
mod lineage_systems;
mod macro_deps;
mod manifest;
mod materializations;
mod memory;
mod microbatch;
mod orchestrate;
mod packages;
mod parity_tables;
mod parse_manifest;
mod partial_parse;
mod postgres;
mod predicates;
mod run_operation;
mod s3;
mod scd_snapshots;
mod shell;
mod state;
mod superset;
mod test_suite;
mod unit_tests;
