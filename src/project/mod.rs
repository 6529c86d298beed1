//! Loading a project: settings, files, YAML properties and Jinja discovery
//! of dependencies, into typed [`nodes`]. No I/O beyond the [`FileSystem`]
//! seam.
//!
//! [`FileSystem`]: crate::fs::FileSystem

pub mod cache;
pub mod generic_tests;
pub mod load;
pub mod microbatch;
pub mod nodes;
pub mod properties;
pub mod refs;
pub mod shared_map;
pub mod snapshot;
