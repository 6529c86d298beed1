//! The demo medallion project: deterministic bronze data generator.
pub mod generate;
