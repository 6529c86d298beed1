//! dbt's file checksums (`FileHash`): the sha256 of a file's contents with
//! surrounding whitespace stripped, or, for seeds over 1 MiB, the path.

use serde_json::{Value, json};
use sha2::{Digest, Sha256};

/// Seeds larger than this are checksummed by path, as dbt does.
pub const MAXIMUM_SEED_SIZE: usize = 1024 * 1024;

/// `{"name": "sha256", "checksum": <hex>}` of `contents`, stripped.
pub fn file_checksum(contents: &str) -> Value {
    let digest = Sha256::digest(contents.trim().as_bytes());
    let hex: String = digest.iter().map(|b| format!("{b:02x}")).collect();
    json!({"name": "sha256", "checksum": hex})
}

/// A seed's checksum: its contents', or `{"name": "path"}` when it is
/// larger than [`MAXIMUM_SEED_SIZE`].
pub fn seed_checksum(contents: &str, absolute_path: &str) -> Value {
    if contents.len() > MAXIMUM_SEED_SIZE { json!({"name": "path", "checksum": absolute_path}) } else { file_checksum(contents) }
}

#[cfg(test)]
mod tests {
    #[test]
    fn checksums_match_dbts() {
        // dbt-core 1.11's checksum of a model file "select 4 as z\n" preceded by a config() line
        let sum = super::file_checksum("{{ config(materialized='view') }}\nselect 4 as z\n");
        assert_eq!(sum["checksum"], "b1d2c0f1d508aaff343fe58b4313d85d17aa57c664d9fbdf2cd3c3e4f6313ae7");
        assert_eq!(super::seed_checksum("k,v\n1,a\n", "/x/lookup.csv")["checksum"], "76f3405b760b0cf62f8026f043096144fd4a3a6c4fd8bd75a651baa8127ed9fd");
    }
}
