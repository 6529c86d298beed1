//! Materializations: how a compiled model becomes a relation in the
//! warehouse. Every write is one Delta commit (or one atomic file rename
//! for views), so a failed or killed run leaves the previous version.

pub mod clone;
pub mod delta;
mod dictionary;
pub mod dv_merge;
mod file_stats;
mod local_file;
pub mod microbatch;
mod parallel;
pub mod predicates;
pub mod purge;
pub mod snapshot;
pub mod statements;

pub use delta::{Materialized, default_strategy, materialize, partition_by, unique_key};
