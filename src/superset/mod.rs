//! Superset dashboards as code: `dashboards/*.yml` (datasets named by dp
//! model, charts with their metrics, dimensions and filters, a layout) are
//! validated against the project's models ([`spec`]), turned into
//! Superset's native import bundle ([`bundle`]: a ZIP of `metadata.yaml`,
//! `databases/`, `datasets/`, `charts/`, `dashboards/`, with UUIDs derived
//! from names so a re-import updates in place) and pushed through
//! Superset's REST API ([`push`]).

pub mod bundle;
pub mod push;
pub mod spec;

use std::path::PathBuf;

/// What can go wrong defining, exporting or pushing dashboards.
#[derive(Debug, thiserror::Error)]
pub enum SupersetError {
    /// A definition error, located in its dashboard file.
    #[error("{}:{line}: {message}\n  hint: {hint}", file.display())]
    Definition { file: PathBuf, line: usize, message: String, hint: String },
    #[error("Superset at {url} is unreachable: {message}\n  hint: check --url (e.g. http://localhost:8088) and that Superset is up")]
    Unreachable { url: String, message: String },
    #[error(
        "Superset at {url} refused the login of '{user}': {message}\n  hint: set SUPERSET_USERNAME and SUPERSET_PASSWORD to the credentials of a Superset admin"
    )]
    Login { url: String, user: String, message: String },
    #[error("Superset refused {what}: HTTP {status}: {body}\n  hint: {hint}")]
    Refused { what: String, status: u16, body: String, hint: String },
    #[error(
        "the dashboards read {} table(s) missing in PostgreSQL ({pg}): {}; nothing was imported\n  hint: publish them first (`dp run --target <target>` or `dp publish`); platform_health_metrics comes from the platform_health pipeline",
        tables.len(), tables.join(", ")
    )]
    MissingTables { pg: String, tables: Vec<String> },
    #[error("{0}")]
    Other(String),
}

/// dp's namespace for name-based (version 5) UUIDs: the same name gives the
/// same UUID on every machine, so importing again updates in place.
const NAMESPACE: uuid::Uuid = uuid::uuid!("6d1c2f0e-4b7a-5d8e-9a41-0f3c2b7e5a19");

/// The version-5 UUID of `kind:name` in dp's namespace (RFC 9562, SHA-1).
pub fn stable_uuid(kind: &str, name: &str) -> uuid::Uuid {
    use sha1::Digest;
    let mut h = sha1::Sha1::new();
    h.update(NAMESPACE.as_bytes());
    h.update(kind.as_bytes());
    h.update(b":");
    h.update(name.as_bytes());
    let digest = h.finalize();
    let mut bytes = [0u8; 16];
    bytes.copy_from_slice(&digest[..16]);
    uuid::Builder::from_sha1_bytes(bytes).into_uuid()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn uuids_are_stable_version_5_and_differ_by_kind() {
        let a = stable_uuid("chart", "Customer Insights/Customers");
        assert_eq!(a, stable_uuid("chart", "Customer Insights/Customers"));
        assert_eq!(a.get_version_num(), 5);
        assert_ne!(a, stable_uuid("dataset", "Customer Insights/Customers"));
    }
}
