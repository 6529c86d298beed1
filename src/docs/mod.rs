//! Documentation artifacts: `target/catalog.json` in dbt's catalog v1 shape
//! ([`catalog`]), the static docs site under `target/docs/` ([`site`]) and
//! the small loopback HTTP server of `dp docs serve` ([`serve`]).

pub mod catalog;
pub mod serve;
pub mod site;

/// Writes `bytes` to `path` through a per-process temporary file, so
/// readers never see half a file.
pub fn write_atomic(path: &std::path::Path, bytes: &[u8]) -> std::io::Result<()> {
    let tmp = path.with_extension(format!("{}.tmp", std::process::id()));
    std::fs::write(&tmp, bytes)?;
    std::fs::rename(&tmp, path)
}
