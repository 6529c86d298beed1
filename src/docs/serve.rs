//! `dp docs serve`: serves `target/docs/` over HTTP/1.1 on loopback. GET
//! and HEAD of files only; one request per connection.

use std::path::{Component, Path, PathBuf};

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};

fn content_type(p: &Path) -> &'static str {
    match p.extension().and_then(|e| e.to_str()).unwrap_or("") {
        "html" => "text/html; charset=utf-8",
        "js" => "text/javascript; charset=utf-8",
        "css" => "text/css; charset=utf-8",
        "json" => "application/json",
        "svg" => "image/svg+xml",
        "png" => "image/png",
        _ => "application/octet-stream",
    }
}

/// The file a request path names inside `root` (`None`: outside it).
pub fn resolve(root: &Path, target: &str) -> Option<PathBuf> {
    let path = target.split(['?', '#']).next().unwrap_or("/");
    let decoded = url::form_urlencoded::parse(format!("p={}", path.replace('+', "%2B")).as_bytes()).next().map(|(_, v)| v.into_owned())?;
    let rel = Path::new(decoded.trim_start_matches('/'));
    if rel.components().any(|c| !matches!(c, Component::Normal(_))) {
        return None;
    }
    let mut p = root.join(rel);
    if decoded.ends_with('/') || decoded.is_empty() || p.is_dir() {
        p = p.join("index.html");
    }
    Some(p)
}

async fn respond(mut stream: TcpStream, root: &Path) -> std::io::Result<()> {
    let mut buf = vec![0u8; 8192];
    let mut len = 0;
    // Read the request head (the body, if any, is ignored).
    loop {
        let n = stream.read(&mut buf[len..]).await?;
        if n == 0 {
            return Ok(());
        }
        len += n;
        if buf[..len].windows(4).any(|w| w == b"\r\n\r\n") || len == buf.len() {
            break;
        }
    }
    let head = String::from_utf8_lossy(&buf[..len]);
    let mut parts = head.lines().next().unwrap_or("").split_whitespace();
    let (method, target) = (parts.next().unwrap_or(""), parts.next().unwrap_or("/"));
    let (status, ctype, body) = if method != "GET" && method != "HEAD" {
        ("405 Method Not Allowed", "text/plain", b"only GET and HEAD\n".to_vec())
    } else {
        match resolve(root, target) {
            Some(p) => match tokio::fs::read(&p).await {
                Ok(b) => ("200 OK", content_type(&p), b),
                Err(_) => ("404 Not Found", "text/plain", format!("not found: {target}\n").into_bytes()),
            },
            None => ("403 Forbidden", "text/plain", b"forbidden\n".to_vec()),
        }
    };
    let header =
        format!("HTTP/1.1 {status}\r\nContent-Type: {ctype}\r\nContent-Length: {}\r\nCache-Control: no-cache\r\nConnection: close\r\n\r\n", body.len());
    stream.write_all(header.as_bytes()).await?;
    if method != "HEAD" {
        stream.write_all(&body).await?;
    }
    stream.shutdown().await
}

/// Serves `root` on `listener` until the task is dropped.
pub async fn serve(listener: TcpListener, root: PathBuf) -> std::io::Result<()> {
    let root = std::sync::Arc::new(root);
    loop {
        let (stream, _) = listener.accept().await?;
        let root = root.clone();
        tokio::spawn(async move {
            if let Err(e) = respond(stream, &root).await {
                tracing::debug!("docs serve: {e}");
            }
        });
    }
}

#[cfg(test)]
mod tests {
    use super::resolve;
    use std::path::Path;

    #[test]
    fn paths_stay_inside_the_root() {
        let root = Path::new("/srv/docs");
        assert_eq!(resolve(root, "/data/index.js?x=1"), Some(root.join("data/index.js")));
        assert_eq!(resolve(root, "/"), Some(root.join("index.html")));
        assert_eq!(resolve(root, "/../etc/passwd"), None);
        assert_eq!(resolve(root, "/%2e%2e/etc/passwd"), None);
    }
}
