//! S3-compatible object storage (AWS, MinIO, moto) through object_store's
//! `AmazonS3`, shared by DataFusion (registered in the session's runtime for
//! sources) and deltalake (an object-store and log-store factory for the
//! `s3://` scheme).
//!
//! - Credentials come from the `AWS_*` environment variables only and never
//!   appear in messages; the endpoint, region and addressing style come from
//!   the target's `[s3]` table ([`S3Config`]).
//! - Delta commits use deltalake's default log store, which writes each
//!   `_delta_log/<version>.json` with put-if-absent (`PutMode::Create`):
//!   object_store sends `If-None-Match: *` (its default `conditional_put =
//!   etag`), so of two writers racing for one version the server accepts
//!   exactly one; the other gets `AlreadyExists`, and deltalake re-reads the
//!   log and retries or reports a conflict. No DynamoDB lock is needed.
//! - Transient failures (5xx, timeouts, connection resets) are retried a few
//!   times with backoff, bounded so an unreachable endpoint fails in seconds.

use deltalake::logstore::{LogStore, LogStoreFactory, ObjectStoreFactory, ObjectStoreRef, StorageConfig};
use deltalake::{DeltaResult, DeltaTableError};
use object_store::aws::AmazonS3Builder;
use object_store::{BackoffConfig, ClientOptions, ObjectStore, RetryConfig};
use std::collections::HashMap;
use std::sync::{Arc, Mutex, OnceLock};
use std::time::Duration;
use url::Url;

use crate::config::S3Config;

/// One client per bucket, built from the target's settings and the `AWS_*`
/// environment.
#[derive(Debug, Default)]
struct Registry {
    config: Option<S3Config>,
    stores: HashMap<String, Arc<dyn ObjectStore>>,
}

fn registry() -> &'static Mutex<Registry> {
    static R: OnceLock<Mutex<Registry>> = OnceLock::new();
    R.get_or_init(Default::default)
}

/// Makes `s3://` URLs usable by deltalake with these settings (idempotent;
/// the last configuration wins for buckets not opened yet).
pub fn configure(config: &S3Config) {
    {
        let mut r = registry().lock().unwrap();
        if r.config.as_ref() != Some(config) {
            r.config = Some(config.clone());
            r.stores.clear();
        }
    }
    static FACTORIES: OnceLock<()> = OnceLock::new();
    FACTORIES.get_or_init(|| {
        let scheme = Url::parse("s3://").expect("static URL");
        deltalake::logstore::object_store_factories().insert(scheme.clone(), Arc::new(S3Factory));
        deltalake::logstore::logstore_factories().insert(scheme, Arc::new(S3Factory));
    });
}

/// The client of one bucket (cached).
pub fn store(bucket: &str) -> Result<Arc<dyn ObjectStore>, object_store::Error> {
    let mut r = registry().lock().unwrap();
    if let Some(s) = r.stores.get(bucket) {
        return Ok(s.clone());
    }
    let config = r.config.clone().unwrap_or_default();
    let s: Arc<dyn ObjectStore> = Arc::new(build(bucket, &config)?);
    r.stores.insert(bucket.to_string(), s.clone());
    Ok(s)
}

fn build(bucket: &str, c: &S3Config) -> Result<object_store::aws::AmazonS3, object_store::Error> {
    // AWS_ACCESS_KEY_ID, AWS_SECRET_ACCESS_KEY, AWS_SESSION_TOKEN, AWS_REGION, ...
    let mut b = AmazonS3Builder::from_env().with_bucket_name(bucket);
    if let Some(e) = &c.endpoint {
        b = b.with_endpoint(e.trim_end_matches('/'));
    }
    let region = c.region.clone().or_else(|| std::env::var("AWS_REGION").ok()).or_else(|| std::env::var("AWS_DEFAULT_REGION").ok());
    b = b.with_region(region.unwrap_or_else(|| "us-east-1".into()));
    b = b.with_virtual_hosted_style_request(!c.path_style).with_allow_http(c.allow_http);
    let retry = RetryConfig {
        backoff: BackoffConfig { init_backoff: Duration::from_millis(100), max_backoff: Duration::from_secs(2), base: 2.0 },
        max_retries: 3,
        retry_timeout: Duration::from_secs(30),
    };
    let client = ClientOptions::new().with_allow_http(c.allow_http).with_connect_timeout(Duration::from_secs(5)).with_timeout(Duration::from_secs(120));
    b.with_retry(retry).with_client_options(client).build()
}

/// deltalake's hook for `s3://` table locations.
#[derive(Debug)]
struct S3Factory;

impl ObjectStoreFactory for S3Factory {
    fn parse_url_opts(&self, url: &Url, _config: &StorageConfig) -> DeltaResult<(ObjectStoreRef, object_store::path::Path)> {
        let bucket = url.host_str().ok_or_else(|| DeltaTableError::InvalidTableLocation(format!("{url}: no bucket name")))?;
        let s = store(bucket).map_err(|e| DeltaTableError::InvalidTableLocation(format!("{url}: {e}")))?;
        let path = object_store::path::Path::from_url_path(url.path()).map_err(|e| DeltaTableError::InvalidTableLocation(format!("{url}: {e}")))?;
        Ok((s, path))
    }
}

impl LogStoreFactory for S3Factory {
    fn with_options(&self, prefixed: ObjectStoreRef, root: ObjectStoreRef, location: &Url, options: &StorageConfig) -> DeltaResult<Arc<dyn LogStore>> {
        Ok(deltalake::logstore::default_logstore(prefixed, root, location, options))
    }
}

/// Shortens an object_store error for people: the S3 error code and message
/// instead of the XML body, the request without its query string. Secrets
/// never appear in these messages (requests are signed in headers).
pub fn summarize(message: &str) -> String {
    let tag = |t: &str| -> Option<&str> {
        let open = format!("<{t}>");
        let start = message.find(&open)? + open.len();
        let end = message[start..].find(&format!("</{t}>"))?;
        Some(&message[start..start + end])
    };
    let request = message.match_indices("Error performing ").find_map(|(i, _)| {
        let rest = &message[i + "Error performing ".len()..];
        let mut parts = rest.split_whitespace();
        let method = parts.next()?;
        let url = parts.next()?;
        if !url.contains("://") {
            return None;
        }
        Some(format!("{method} {}", url.split('?').next().unwrap_or(url)))
    });
    let status = message.find("status code: ").map(|i| {
        let rest = &message[i + "status code: ".len()..];
        rest.split(':').next().unwrap_or(rest).trim().to_string()
    });
    let retries = message.find("after ").and_then(|i| message[i..].split(',').next()).filter(|s| s.contains("retries"));
    match (tag("Code"), request) {
        (Some(code), Some(req)) => {
            let msg = tag("Message").map(|m| format!(": {m}")).unwrap_or_default();
            format!("{code}{msg} (HTTP {}, {req})", status.unwrap_or_default())
        }
        (None, Some(req)) if message.contains("error sending request") || message.contains("HTTP error") => {
            format!("no answer from the endpoint ({req}{})", retries.map(|r| format!(", {r}")).unwrap_or_default())
        }
        (None, Some(req)) if status.is_some() => format!("HTTP {} ({req})", status.unwrap_or_default()),
        _ => message.to_string(),
    }
}

/// What to do about an S3 failure, from its message: a hint line naming the
/// likely cause, or `None` when nothing specific is recognised.
pub fn hint(message: &str) -> Option<&'static str> {
    let m = message;
    if m.contains("169.254.169.254") {
        Some("no credentials were found: export AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY")
    } else if m.contains("InvalidAccessKeyId") || m.contains("SignatureDoesNotMatch") || m.contains("403 Forbidden") || m.contains("AccessDenied") {
        Some("the server refused the credentials: check AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY (and AWS_SESSION_TOKEN)")
    } else if m.contains("NoSuchBucket") {
        Some("the bucket does not exist: create it (e.g. `docker compose up` creates the demo's) or fix the bucket in the target's location")
    } else if m.contains("Missing bucket") {
        Some("the location has no bucket: write it as s3://bucket/prefix")
    } else if m.contains("error sending request") || m.contains("connect") || m.contains("timed out") || m.contains("dns error") {
        Some("the endpoint did not answer: check the target's s3.endpoint (or DP_S3_ENDPOINT) and that the server is running")
    } else {
        None
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn summaries_keep_the_code_and_request_and_drop_the_xml() {
        let e = "Generic S3 error: Error performing list request: Error performing GET http://127.0.0.1:9/b?delimiter=%2F&list-type=2 in 4ms - Server returned non-2xx status code: 404 Not Found: <?xml version=\"1.0\"?><Error><Code>NoSuchBucket</Code><Message>The specified bucket does not exist</Message><RequestId>x</RequestId></Error>";
        assert_eq!(summarize(e), "NoSuchBucket: The specified bucket does not exist (HTTP 404 Not Found, GET http://127.0.0.1:9/b)");
        assert_eq!(
            hint(e),
            Some("the bucket does not exist: create it (e.g. `docker compose up` creates the demo's) or fix the bucket in the target's location")
        );
        let e = "Generic S3 error: Error performing list request: Error performing GET http://127.0.0.1:1/b?x=1 in 391ms, after 3 retries, max_retries: 3, retry_timeout: 30s  - HTTP error: error sending request";
        assert_eq!(summarize(e), "no answer from the endpoint (GET http://127.0.0.1:1/b, after 3 retries)");
        assert_eq!(summarize("something else"), "something else");
        assert_eq!(hint("something else"), None);
    }
}
