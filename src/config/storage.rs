//! Object-storage settings of a target: the `[targets.<name>.s3]` table
//! (endpoint, region, addressing style, plain HTTP for local servers) and
//! `${VAR}` expansion in location values.
//!
//! ```toml
//! [targets.s3]
//! warehouse = "s3://${DP_S3_BUCKET}/warehouse"
//! source_root = "s3://${DP_S3_BUCKET}"      # relative source locations resolve here
//! [targets.s3.s3]
//! endpoint = "${DP_S3_ENDPOINT}"
//! region = "us-east-1"
//! path_style = true
//! allow_http = true
//! ```
//!
//! Credentials are never read from files: the S3 client takes them from the
//! standard `AWS_ACCESS_KEY_ID`, `AWS_SECRET_ACCESS_KEY` and
//! `AWS_SESSION_TOKEN` environment variables. A key such as
//! `secret_access_key` in the file is refused with that hint.

use serde::Deserialize;

use super::ConfigError;

/// `[targets.<name>.s3]` as written in warehouse.toml.
#[derive(Debug, Clone, Deserialize, Default)]
#[serde(deny_unknown_fields)]
pub(super) struct S3Section {
    endpoint: Option<String>,
    region: Option<String>,
    /// `true`: `http://endpoint/bucket/key` (MinIO, moto); `false`:
    /// virtual-hosted `http://bucket.endpoint/key` (AWS's default).
    path_style: Option<bool>,
    allow_http: Option<bool>,
    // Secrets are refused with a hint rather than "unknown field".
    access_key_id: Option<toml::Value>,
    secret_access_key: Option<toml::Value>,
    session_token: Option<toml::Value>,
}

/// Resolved S3 settings of the target (no secrets).
#[derive(Debug, Clone, serde::Serialize, Default, PartialEq)]
pub struct S3Config {
    /// e.g. `http://127.0.0.1:9000`; `None` means AWS (or `AWS_ENDPOINT_URL`).
    pub endpoint: Option<String>,
    pub region: Option<String>,
    pub path_style: bool,
    pub allow_http: bool,
}

impl S3Section {
    pub(super) fn resolve(self, target: &str, env: &dyn Fn(&str) -> Option<String>) -> Result<S3Config, ConfigError> {
        for (key, set, var) in [
            ("access_key_id", self.access_key_id.is_some(), "AWS_ACCESS_KEY_ID"),
            ("secret_access_key", self.secret_access_key.is_some(), "AWS_SECRET_ACCESS_KEY"),
            ("session_token", self.session_token.is_some(), "AWS_SESSION_TOKEN"),
        ] {
            if set {
                return Err(ConfigError::Invalid {
                    what: format!("target '{target}' s3.{key}"),
                    message: format!("credentials are never read from warehouse.toml\n  hint: remove the key and export {var} instead"),
                });
            }
        }
        let what = |k: &str| format!("target '{target}' s3.{k}");
        let endpoint = match self.endpoint {
            Some(e) => Some(expand_env(&e, &what("endpoint"), env)?),
            None => None,
        }
        .filter(|e| !e.is_empty());
        let region = match self.region {
            Some(r) => Some(expand_env(&r, &what("region"), env)?),
            None => None,
        };
        let allow_http = self.allow_http.unwrap_or(false);
        if let Some(e) = &endpoint {
            if !e.starts_with("http://") && !e.starts_with("https://") {
                return Err(ConfigError::Invalid {
                    what: what("endpoint"),
                    message: format!("'{e}' is not an http(s) URL\n  hint: write it like http://127.0.0.1:9000"),
                });
            }
            if e.starts_with("http://") && !allow_http {
                return Err(ConfigError::Invalid {
                    what: what("endpoint"),
                    message: format!("'{e}' is plain HTTP but allow_http is not set\n  hint: add `allow_http = true` for a local server, or use https://"),
                });
            }
        }
        // A custom endpoint (MinIO, moto) defaults to path-style addressing.
        let path_style = self.path_style.unwrap_or(endpoint.is_some());
        Ok(S3Config { endpoint, region, path_style, allow_http })
    }
}

/// Expands `${VAR}` and `${VAR:-default}` in a setting's value.
pub fn expand_env(value: &str, what: &str, env: &dyn Fn(&str) -> Option<String>) -> Result<String, ConfigError> {
    let mut out = String::new();
    let mut rest = value;
    while let Some(start) = rest.find("${") {
        out.push_str(&rest[..start]);
        let after = &rest[start + 2..];
        let Some(end) = after.find('}') else {
            return Err(ConfigError::Invalid { what: what.into(), message: format!("'{value}' has an unclosed ${{") });
        };
        let expr = &after[..end];
        let (name, default) = match expr.split_once(":-") {
            Some((n, d)) => (n, Some(d)),
            None => (expr, None),
        };
        match env(name).filter(|v| !v.is_empty()).or(default.map(str::to_string)) {
            Some(v) => out.push_str(&v),
            None => {
                return Err(ConfigError::Invalid {
                    what: what.into(),
                    message: format!("'{value}' uses ${{{name}}}, which is not set\n  hint: export {name}=... (or write ${{{name}:-default}})"),
                });
            }
        }
        rest = &after[end + 1..];
    }
    out.push_str(rest);
    Ok(out)
}
