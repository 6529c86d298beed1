//! `dp superset push`: the bundle into a running Superset through its REST
//! API, in one import call (Superset imports a bundle in one transaction:
//! all of it or nothing).
//!
//! 1. Every dataset's table must exist in PostgreSQL ([`missing_tables`]);
//!    the caller reports the missing ones by name and stops.
//! 2. `POST /api/v1/security/login` (database auth) → a bearer token;
//!    `GET /api/v1/security/csrf_token/` → the CSRF token and its session
//!    cookie, both sent with the import.
//! 3. `POST /api/v1/assets/import/` with the bundle (metadata type
//!    `assets`: databases, datasets, charts and dashboards are all
//!    overwritten, matched by UUID) and the database password in the
//!    `passwords` field. The same bundle again changes nothing.
//! 4. `GET /api/v1/dashboard/<slug>/charts` per dashboard, to report what
//!    Superset now shows.

use std::time::Duration;

use serde_json::{Value, json};

use super::SupersetError;
use super::bundle::{Bundle, BundleType, Database};

/// The tables of `tables` (`schema.table`) that PostgreSQL does not hold.
pub async fn missing_tables(pool: &crate::postgres::PgPool, tables: &[String]) -> anyhow::Result<Vec<String>> {
    let client = pool.get().await?;
    let rows = client
        .query("SELECT table_schema || '.' || table_name FROM information_schema.tables", &[])
        .await
        .map_err(crate::postgres::connect::pg_err("listing PostgreSQL's tables"))?;
    let have: std::collections::HashSet<String> = rows.iter().map(|r| r.get::<_, String>(0)).collect();
    Ok(tables.iter().filter(|t| !have.contains(*t)).cloned().collect())
}

/// Where to push, and as whom.
pub struct Target<'a> {
    pub url: &'a str,
    pub username: &'a str,
    pub password: &'a str,
    /// The PostgreSQL password Superset connects with (None: no password).
    pub db_password: Option<String>,
}

/// What Superset shows after a push.
#[derive(Debug, Clone)]
pub struct Pushed {
    /// Title, link and number of charts of each dashboard.
    pub dashboards: Vec<(String, String, usize)>,
}

struct Session {
    http: reqwest::Client,
    url: String,
    token: String,
}

fn unreachable(url: &str, e: &reqwest::Error) -> SupersetError {
    let mut msg = e.to_string();
    let mut src = std::error::Error::source(e);
    while let Some(s) = src {
        msg = format!("{msg}: {s}");
        src = s.source();
    }
    SupersetError::Unreachable { url: url.to_string(), message: msg }
}

/// A response body for an error message: Superset's JSON `message` or
/// `errors[].message`, not its HTML error page, at most 1500 characters.
fn short(body: &str) -> String {
    let b = body.trim();
    if b.starts_with('<') {
        return "an HTML error page (Superset's log has the cause)".into();
    }
    if let Ok(v) = serde_json::from_str::<Value>(b) {
        let mut msgs: Vec<String> = v["errors"].as_array().into_iter().flatten().filter_map(|e| e["message"].as_str().map(String::from)).collect();
        if let Some(m) = v["message"].as_str() {
            msgs.insert(0, m.to_string());
        }
        if !msgs.is_empty() {
            let extra = v["errors"][0]["extra"].to_string();
            let detail = if extra.len() > 2 && extra != "null" { format!(" {extra}") } else { String::new() };
            let text = msgs.join("; ") + &detail;
            return if text.chars().count() > 1500 { format!("{}…", text.chars().take(1500).collect::<String>()) } else { text };
        }
    }
    if b.chars().count() > 1500 { format!("{}…", b.chars().take(1500).collect::<String>()) } else { b.to_string() }
}

async fn login(t: &Target<'_>) -> Result<Session, SupersetError> {
    let url = t.url.trim_end_matches('/').to_string();
    let http = reqwest::Client::builder()
        .timeout(Duration::from_secs(300))
        .connect_timeout(Duration::from_secs(10))
        .build()
        .map_err(|e| SupersetError::Other(format!("HTTP client: {e}")))?;
    let body = json!({"username": t.username, "password": t.password, "provider": "db", "refresh": false});
    let r = http
        .post(format!("{url}/api/v1/security/login"))
        .header("Content-Type", "application/json")
        .body(body.to_string())
        .send()
        .await
        .map_err(|e| unreachable(&url, &e))?;
    let status = r.status().as_u16();
    let text = r.text().await.map_err(|e| unreachable(&url, &e))?;
    match status {
        200 => {}
        400 | 401 | 403 => {
            let message = serde_json::from_str::<Value>(&text).ok().and_then(|v| v["message"].as_str().map(String::from)).unwrap_or_else(|| short(&text));
            return Err(SupersetError::Login { url, user: t.username.to_string(), message });
        }
        _ => {
            return Err(SupersetError::Refused {
                what: format!("the login at {url}/api/v1/security/login"),
                status,
                body: short(&text),
                hint: "is --url the address of Superset's web server (e.g. http://localhost:8088)?".into(),
            });
        }
    }
    let token = serde_json::from_str::<Value>(&text).ok().and_then(|v| v["access_token"].as_str().map(String::from)).ok_or_else(|| SupersetError::Refused {
        what: "the login".into(),
        status,
        body: short(&text),
        hint: "Superset's login answered without an access_token: is --url a Superset?".into(),
    })?;
    Ok(Session { http, url, token })
}

impl Session {
    async fn get(&self, path: &str) -> Result<(u16, Vec<String>, String), SupersetError> {
        let r = self.http.get(format!("{}{path}", self.url)).bearer_auth(&self.token).send().await.map_err(|e| unreachable(&self.url, &e))?;
        let status = r.status().as_u16();
        let cookies =
            r.headers().get_all("set-cookie").iter().filter_map(|v| v.to_str().ok()).filter_map(|c| c.split(';').next()).map(str::to_string).collect();
        let text = r.text().await.map_err(|e| unreachable(&self.url, &e))?;
        Ok((status, cookies, text))
    }

    async fn get_json(&self, path: &str, what: &str) -> Result<Value, SupersetError> {
        let (status, _, text) = self.get(path).await?;
        if status != 200 {
            return Err(SupersetError::Refused { what: what.into(), status, body: short(&text), hint: "the user needs Superset's Admin role".into() });
        }
        serde_json::from_str(&text).map_err(|e| SupersetError::Other(format!("{what}: not JSON ({e}): {}", short(&text))))
    }
}

/// A multipart/form-data body of text fields and one file.
fn multipart(boundary: &str, file: (&str, &str, &[u8]), fields: &[(&str, String)]) -> Vec<u8> {
    let mut b = Vec::new();
    b.extend_from_slice(
        format!("--{boundary}\r\nContent-Disposition: form-data; name=\"{}\"; filename=\"{}\"\r\nContent-Type: application/zip\r\n\r\n", file.0, file.1)
            .as_bytes(),
    );
    b.extend_from_slice(file.2);
    b.extend_from_slice(b"\r\n");
    for (name, value) in fields {
        b.extend_from_slice(format!("--{boundary}\r\nContent-Disposition: form-data; name=\"{name}\"\r\n\r\n{value}\r\n").as_bytes());
    }
    b.extend_from_slice(format!("--{boundary}--\r\n").as_bytes());
    b
}

/// Logs in, imports the bundle in one call, and reads back the dashboards.
pub async fn push(bundle: &Bundle, db: &Database, t: &Target<'_>, slugs: &[(String, String)]) -> Result<Pushed, SupersetError> {
    let s = login(t).await?;
    let (status, cookies, text) = s.get("/api/v1/security/csrf_token/").await?;
    if status != 200 {
        return Err(SupersetError::Refused { what: "the CSRF token".into(), status, body: short(&text), hint: "the user needs Superset's Admin role".into() });
    }
    let csrf = serde_json::from_str::<Value>(&text).ok().and_then(|v| v["result"].as_str().map(String::from)).unwrap_or_default();
    let zip = bundle.zip(BundleType::Assets);
    let mut fields = vec![];
    if db.has_password {
        let pw = t.db_password.clone().unwrap_or_default();
        fields.push(("passwords", json!({ db.file(): pw }).to_string()));
    }
    let boundary = format!("dp-superset-{}", uuid::Uuid::new_v4().simple());
    let body = multipart(&boundary, ("bundle", "dp_dashboards.zip", &zip), &fields);
    let mut req = s
        .http
        .post(format!("{}/api/v1/assets/import/", s.url))
        .bearer_auth(&s.token)
        .header("X-CSRFToken", &csrf)
        .header("Referer", &s.url)
        .header("Content-Type", format!("multipart/form-data; boundary={boundary}"))
        .body(body);
    if !cookies.is_empty() {
        req = req.header("Cookie", cookies.join("; "));
    }
    let r = req.send().await.map_err(|e| unreachable(&s.url, &e))?;
    let status = r.status().as_u16();
    let text = r.text().await.map_err(|e| unreachable(&s.url, &e))?;
    if status != 200 {
        return Err(SupersetError::Refused {
            what: "the import (nothing was imported)".into(),
            status,
            body: short(&text),
            hint: "the user needs Superset's Admin role; `dp superset export` writes the bundle to inspect".into(),
        });
    }
    let mut dashboards = vec![];
    for (title, slug) in slugs {
        let v = s.get_json(&format!("/api/v1/dashboard/{slug}/charts"), &format!("the charts of dashboard '{title}'")).await?;
        let charts = v["result"].as_array().map(|a| a.len()).unwrap_or(0);
        dashboards.push((title.clone(), format!("{}/superset/dashboard/{slug}/", s.url), charts));
    }
    Ok(Pushed { dashboards })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn multipart_body_has_the_file_and_fields() {
        let b = multipart("B", ("bundle", "x.zip", b"PK"), &[("passwords", "{}".into())]);
        let s = String::from_utf8(b).unwrap();
        assert_eq!(
            s,
            "--B\r\nContent-Disposition: form-data; name=\"bundle\"; filename=\"x.zip\"\r\nContent-Type: application/zip\r\n\r\nPK\r\n--B\r\nContent-Disposition: form-data; name=\"passwords\"\r\n\r\n{}\r\n--B--\r\n"
        );
    }

    #[test]
    fn error_bodies_are_shortened_to_their_messages() {
        assert_eq!(short("<!doctype html><html>...</html>"), "an HTML error page (Superset's log has the cause)");
        assert_eq!(short(r#"{"message": "Not authorized"}"#), "Not authorized");
        assert_eq!(
            short(r#"{"errors": [{"message": "Error importing assets", "extra": {"charts/x.yaml": {"viz_type": ["Missing data"]}}}]}"#),
            r#"Error importing assets {"charts/x.yaml":{"viz_type":["Missing data"]}}"#
        );
    }

    #[tokio::test]
    async fn an_unreachable_superset_is_named_with_a_hint() {
        // A port nothing listens on: bind, read the port, close.
        let port = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
        let url = format!("http://127.0.0.1:{port}");
        let t = Target { url: &url, username: "admin", password: "x", db_password: None };
        let e = login(&t).await.err().unwrap().to_string();
        assert!(e.starts_with(&format!("Superset at {url} is unreachable: ")), "{e}");
        assert!(e.contains("hint: check --url"), "{e}");
    }
}
