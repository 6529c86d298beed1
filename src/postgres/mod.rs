//! PostgreSQL as a serving layer: models (and seeds) whose config has
//! `publish = ["postgres"]` are copied into a PostgreSQL schema of the same
//! name after their Delta commit, and `dp load` copies bronze source files
//! into PostgreSQL tables.
//!
//! - `connect`: settings, TLS, the pool, retries with back-off.
//! - `types`: the Arrow → PostgreSQL type mapping.
//! - `copy`: Arrow batches streamed through binary `COPY`.
//! - `publish`: atomic table swaps, incremental apply, indexes, grants,
//!   comments, and the `dp_meta.published` bookkeeping.
//!
//! Every identifier is double-quoted (`order`, `Mixed Case` and `x"y` are
//! all valid names); data values only travel through COPY or bind
//! parameters. Comments, which PostgreSQL cannot bind, are written as
//! standard-conforming string literals with quotes doubled.

pub mod connect;
pub mod copy;
pub mod load;
pub mod publish;
pub mod types;

pub use connect::{PgPool, PgSettings};
pub use publish::Publisher;

/// The target's PostgreSQL publisher, when the target has a `[postgres]`
/// table (a pool of up to `threads` connections, opened lazily).
pub fn publisher(settings: &crate::config::Settings) -> anyhow::Result<Option<std::sync::Arc<Publisher>>> {
    let Some(pg) = &settings.target.postgres else { return Ok(None) };
    let pool = PgPool::new(PgSettings::resolve(pg)?, settings.target.threads)?;
    Ok(Some(std::sync::Arc::new(Publisher::new(pool))))
}

/// The publisher, for commands that cannot work without one.
pub fn require_publisher(settings: &crate::config::Settings) -> anyhow::Result<std::sync::Arc<Publisher>> {
    publisher(settings)?.ok_or_else(|| {
        let t = &settings.target.name;
        anyhow::anyhow!(
            "target '{t}' has no [postgres] settings\n  hint: add [targets.{t}.postgres] to warehouse.toml (host, port, dbname, user; empty to use PGHOST, PGPORT, ...) or pick a target that has them, e.g. --target pg"
        )
    })
}

/// A double-quoted identifier.
pub fn ident(name: &str) -> String {
    format!("\"{}\"", name.replace('"', "\"\""))
}

/// `"schema"."name"`.
pub fn qualified(schema: &str, name: &str) -> String {
    format!("{}.{}", ident(schema), ident(name))
}

/// A string literal for statements that take no parameters (COMMENT ON).
pub fn literal(text: &str) -> String {
    format!("'{}'", text.replace('\0', "").replace('\'', "''"))
}

/// PostgreSQL truncates identifiers longer than 63 bytes; dp refuses them
/// instead, so two models never collide on a truncated name.
pub fn check_identifier(what: &str, name: &str) -> anyhow::Result<()> {
    if name.len() > 63 {
        anyhow::bail!("{what} name '{name}' is {} bytes long; PostgreSQL allows 63\n  hint: set a shorter `alias` (or schema) for it", name.len());
    }
    if name.contains('\0') {
        anyhow::bail!("{what} name {name:?} contains a NUL character, which PostgreSQL does not allow");
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn identifiers_are_always_quoted() {
        assert_eq!(qualified("marts", "order"), r#""marts"."order""#);
        assert_eq!(ident("Mixed Case"), r#""Mixed Case""#);
        assert_eq!(ident(r#"x"y"#), r#""x""y""#);
        assert_eq!(literal("it's"), "'it''s'");
    }
}
