//! Connecting to PostgreSQL: settings resolved from the target's
//! `[postgres]` table and libpq's `PG*` variables, TLS per `sslmode`, a small
//! connection pool, and retries with exponential back-off for transient
//! errors (connection failures, serialization failures, deadlocks, server
//! start-up or shutdown, too many connections).
//!
//! `sslmode` follows libpq: `disable`; `prefer` (TLS when the server offers
//! it, the default); `require` (TLS, certificate not checked); `verify-ca` and
//! `verify-full` (TLS, certificate checked against the system's roots and the
//! host name; rustls always checks the name, so both behave as
//! `verify-full`). The password never appears in messages: connections are
//! described as `postgres://user@host:port/dbname`.

use anyhow::{Context as _, anyhow, bail};
use std::future::Future;
use std::sync::Arc;
use std::time::Duration;
use tokio_postgres::config::SslMode;

use crate::config::PostgresConfig;

/// Resolved connection settings (no secret inside: the password is read
/// from the environment when connecting).
#[derive(Debug, Clone)]
pub struct PgSettings {
    pub host: String,
    pub port: u16,
    pub dbname: String,
    pub user: String,
    pub password_env: String,
    pub sslmode: String,
    pub retries: u32,
    pub backoff: Duration,
    pub connect_timeout: Duration,
}

fn env(name: &str) -> Option<String> {
    std::env::var(name).ok().filter(|v| !v.is_empty())
}

impl PgSettings {
    pub fn resolve(c: &PostgresConfig) -> anyhow::Result<PgSettings> {
        let port = match c.port {
            Some(p) => p,
            None => match env("PGPORT") {
                Some(p) => p.parse().map_err(|_| anyhow!("PGPORT={p} is not a port number"))?,
                None => 5432,
            },
        };
        let user = c.user.clone().or_else(|| env("PGUSER")).or_else(|| env("USER")).unwrap_or_else(|| "postgres".into());
        let sslmode = c.sslmode.clone().or_else(|| env("PGSSLMODE")).unwrap_or_else(|| "prefer".into());
        if !["disable", "allow", "prefer", "require", "verify-ca", "verify-full"].contains(&sslmode.as_str()) {
            bail!("postgres sslmode '{sslmode}' is not known\n  hint: use disable, prefer, require, verify-ca or verify-full");
        }
        Ok(PgSettings {
            host: c.host.clone().or_else(|| env("PGHOST")).unwrap_or_else(|| "localhost".into()),
            port,
            dbname: c.dbname.clone().or_else(|| env("PGDATABASE")).unwrap_or_else(|| user.clone()),
            user,
            password_env: c.password_env.clone().unwrap_or_else(|| "PGPASSWORD".into()),
            sslmode,
            retries: c.retries.unwrap_or(3),
            backoff: Duration::from_millis(c.retry_backoff_ms.unwrap_or(500)),
            connect_timeout: Duration::from_secs(c.connect_timeout_s.unwrap_or(10)),
        })
    }

    /// `postgres://user@host:port/dbname`: safe to print.
    pub fn describe(&self) -> String {
        format!("postgres://{}@{}:{}/{}", self.user, self.host, self.port, self.dbname)
    }

    fn pg_config(&self) -> tokio_postgres::Config {
        let mut cfg = tokio_postgres::Config::new();
        cfg.host(&self.host).port(self.port).dbname(&self.dbname).user(&self.user).application_name("dp").connect_timeout(self.connect_timeout).ssl_mode(
            match self.sslmode.as_str() {
                "disable" => SslMode::Disable,
                "allow" | "prefer" => SslMode::Prefer,
                _ => SslMode::Require,
            },
        );
        if let Some(pw) = env(&self.password_env) {
            cfg.password(pw);
        }
        cfg
    }
}

/// A pool of connections to one database.
#[derive(Clone)]
pub struct PgPool {
    pub settings: Arc<PgSettings>,
    pool: deadpool_postgres::Pool,
}

pub type PgClient = deadpool_postgres::Object;

impl PgPool {
    pub fn new(settings: PgSettings, size: usize) -> anyhow::Result<PgPool> {
        let tls = tls(&settings.sslmode)?;
        let mgr = deadpool_postgres::Manager::from_config(
            settings.pg_config(),
            tls,
            deadpool_postgres::ManagerConfig { recycling_method: deadpool_postgres::RecyclingMethod::Fast },
        );
        let pool = deadpool_postgres::Pool::builder(mgr)
            .max_size(size.max(1))
            .runtime(deadpool_postgres::Runtime::Tokio1)
            .create_timeout(Some(settings.connect_timeout))
            .build()
            .context("could not set up the PostgreSQL connection pool")?;
        Ok(PgPool { settings: Arc::new(settings), pool })
    }

    /// One connection from the pool (opened if needed).
    pub async fn get(&self) -> anyhow::Result<PgClient> {
        self.pool.get().await.map_err(|e| {
            let detail = match &e {
                deadpool_postgres::PoolError::Backend(b) => pg_error_text(b),
                deadpool_postgres::PoolError::Timeout(_) => "timed out".to_string(),
                other => other.to_string(),
            };
            anyhow::Error::new(ConnectError(format!(
                "could not connect to {}: {detail}\n  hint: check the target's [postgres] settings (or PGHOST/PGPORT/PGUSER/PGDATABASE) and that the server is running; `dp debug` tests the connection",
                self.settings.describe()
            )))
        })
    }

    /// Runs `op` until it succeeds, fails with a permanent error, or the
    /// configured retries are spent; waits `backoff * 2^n` between attempts.
    pub async fn retry<T, F, Fut>(&self, mut op: F) -> anyhow::Result<T>
    where
        F: FnMut() -> Fut,
        Fut: Future<Output = anyhow::Result<T>>,
    {
        let mut attempt = 0u32;
        loop {
            match op().await {
                Ok(v) => return Ok(v),
                Err(e) if attempt < self.settings.retries && is_transient(&e) => {
                    let wait = self.settings.backoff * 2u32.saturating_pow(attempt);
                    tracing::warn!("postgres: transient error, retrying in {wait:?} (attempt {} of {}): {e:#}", attempt + 2, self.settings.retries + 1);
                    tokio::time::sleep(wait).await;
                    attempt += 1;
                }
                Err(e) => {
                    return Err(if attempt > 0 { e.context(format!("gave up after {} attempts", attempt + 1)) } else { e });
                }
            }
        }
    }
}

/// No connection could be opened (retried: the server may be starting).
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
struct ConnectError(String);

/// Whether an error is worth retrying: connection trouble and the SQLSTATE
/// classes PostgreSQL documents as retryable.
pub fn is_transient(e: &anyhow::Error) -> bool {
    for cause in e.chain() {
        if cause.downcast_ref::<ConnectError>().is_some() {
            return true;
        }
        if let Some(pg) = cause.downcast_ref::<tokio_postgres::Error>() {
            if pg.is_closed() {
                return true;
            }
            if let Some(db) = pg.as_db_error() {
                let code = db.code().code();
                return code.starts_with("08") || ["40001", "40P01", "57P01", "57P02", "57P03", "53300"].contains(&code);
            }
            // No SQLSTATE: an I/O or protocol failure on the connection.
            return std::error::Error::source(pg).is_some_and(|s| s.downcast_ref::<std::io::Error>().is_some());
        }
        if cause.downcast_ref::<std::io::Error>().is_some() {
            return true;
        }
    }
    false
}

/// A server error as PostgreSQL phrases it (message, detail, hint).
pub fn pg_error_text(e: &tokio_postgres::Error) -> String {
    match e.as_db_error() {
        Some(db) => {
            let mut s = format!("{}: {}", db.severity(), db.message());
            if let Some(d) = db.detail() {
                s.push_str(&format!("\n  detail: {d}"));
            }
            if let Some(h) = db.hint() {
                s.push_str(&format!("\n  hint: {h}"));
            }
            s
        }
        None => {
            let mut s = e.to_string();
            let mut src = std::error::Error::source(e);
            while let Some(c) = src {
                s.push_str(&format!(": {c}"));
                src = c.source();
            }
            s
        }
    }
}

/// Wraps a tokio-postgres error with what was being done, keeping the
/// original in the chain (for `is_transient`).
pub fn pg_err(what: impl std::fmt::Display) -> impl FnOnce(tokio_postgres::Error) -> anyhow::Error {
    move |e| {
        let text = pg_error_text(&e);
        anyhow::Error::new(e).context(format!("{what}: {text}"))
    }
}

fn tls(sslmode: &str) -> anyhow::Result<tokio_postgres_rustls::MakeRustlsConnect> {
    let provider = Arc::new(rustls::crypto::aws_lc_rs::default_provider());
    let builder = rustls::ClientConfig::builder_with_provider(provider.clone()).with_safe_default_protocol_versions().context("TLS set-up failed")?;
    let config = if sslmode.starts_with("verify") {
        let mut roots = rustls::RootCertStore::empty();
        for cert in rustls_native_certs::load_native_certs().certs {
            let _ = roots.add(cert);
        }
        builder.with_root_certificates(roots).with_no_client_auth()
    } else {
        builder.dangerous().with_custom_certificate_verifier(Arc::new(NoVerify(provider))).with_no_client_auth()
    };
    Ok(tokio_postgres_rustls::MakeRustlsConnect::new(config))
}

/// libpq's `require`/`prefer`: encrypt, but do not check the certificate.
#[derive(Debug)]
struct NoVerify(Arc<rustls::crypto::CryptoProvider>);

impl rustls::client::danger::ServerCertVerifier for NoVerify {
    fn verify_server_cert(
        &self,
        _end_entity: &rustls::pki_types::CertificateDer<'_>,
        _intermediates: &[rustls::pki_types::CertificateDer<'_>],
        _server_name: &rustls::pki_types::ServerName<'_>,
        _ocsp: &[u8],
        _now: rustls::pki_types::UnixTime,
    ) -> Result<rustls::client::danger::ServerCertVerified, rustls::Error> {
        Ok(rustls::client::danger::ServerCertVerified::assertion())
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &rustls::pki_types::CertificateDer<'_>,
        dss: &rustls::DigitallySignedStruct,
    ) -> Result<rustls::client::danger::HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls12_signature(message, cert, dss, &self.0.signature_verification_algorithms)
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &rustls::pki_types::CertificateDer<'_>,
        dss: &rustls::DigitallySignedStruct,
    ) -> Result<rustls::client::danger::HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls13_signature(message, cert, dss, &self.0.signature_verification_algorithms)
    }

    fn supported_verify_schemes(&self) -> Vec<rustls::SignatureScheme> {
        self.0.signature_verification_algorithms.supported_schemes()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn describe_never_holds_the_password() {
        let s = PgSettings::resolve(&PostgresConfig {
            host: Some("db".into()),
            port: Some(6543),
            dbname: Some("analytics".into()),
            user: Some("dp".into()),
            ..Default::default()
        })
        .unwrap();
        assert_eq!(s.describe(), "postgres://dp@db:6543/analytics");
    }

    #[test]
    fn bad_sslmode_is_refused_with_the_choices() {
        let e = PgSettings::resolve(&PostgresConfig { sslmode: Some("sometimes".into()), ..Default::default() }).unwrap_err();
        assert_eq!(e.to_string(), "postgres sslmode 'sometimes' is not known\n  hint: use disable, prefer, require, verify-ca or verify-full");
    }
}
