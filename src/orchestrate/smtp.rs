//! A small SMTP client for alert emails (RFC 5321): EHLO, STARTTLS or
//! implicit TLS (rustls, system roots, certificate verified), AUTH PLAIN,
//! one message. Built on the tokio-rustls the PostgreSQL client already
//! uses (lettre would switch on features that rebuild the whole tree).

use std::sync::Arc;
use std::time::Duration;
use tokio::io::{AsyncBufReadExt, AsyncRead, AsyncWrite, AsyncWriteExt, BufReader};
use tokio::net::TcpStream;

use super::spec::EmailSpec;

trait Io: AsyncRead + AsyncWrite + Unpin + Send {}
impl<T: AsyncRead + AsyncWrite + Unpin + Send> Io for T {}

struct Conn {
    io: BufReader<Box<dyn Io>>,
}

impl Conn {
    /// Reads one (possibly multi-line) reply; `Err` unless its code is `want`.
    async fn reply(&mut self, want: u16, during: &str) -> Result<String, String> {
        let mut all = String::new();
        loop {
            let mut line = String::new();
            let n = self.io.read_line(&mut line).await.map_err(|e| format!("{during}: {e}"))?;
            if n == 0 {
                return Err(format!("{during}: the server closed the connection"));
            }
            all.push_str(&line);
            if line.len() < 4 || line.as_bytes()[3] != b'-' {
                let code: u16 = line.get(..3).and_then(|c| c.parse().ok()).unwrap_or(0);
                if code != want {
                    return Err(format!("{during}: the server answered {}", all.trim_end()));
                }
                return Ok(all);
            }
        }
    }

    async fn cmd(&mut self, line: &str, want: u16, during: &str) -> Result<String, String> {
        let w = self.io.get_mut();
        w.write_all(format!("{line}\r\n").as_bytes()).await.map_err(|e| format!("{during}: {e}"))?;
        w.flush().await.map_err(|e| format!("{during}: {e}"))?;
        self.reply(want, during).await
    }
}

fn tls_config() -> Result<Arc<rustls::ClientConfig>, String> {
    let provider = Arc::new(rustls::crypto::aws_lc_rs::default_provider());
    let mut roots = rustls::RootCertStore::empty();
    for cert in rustls_native_certs::load_native_certs().certs {
        let _ = roots.add(cert);
    }
    let config = rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(|e| format!("TLS set-up: {e}"))?
        .with_root_certificates(roots)
        .with_no_client_auth();
    Ok(Arc::new(config))
}

async fn wrap_tls(io: Box<dyn Io>, host: &str) -> Result<Box<dyn Io>, String> {
    let name = rustls::pki_types::ServerName::try_from(host.to_string()).map_err(|e| format!("TLS server name {host}: {e}"))?;
    let s = tokio_rustls::TlsConnector::from(tls_config()?).connect(name, io).await.map_err(|e| format!("TLS handshake with {host}: {e}"))?;
    Ok(Box::new(s))
}

/// The address inside `Name <addr>` (or the whole text).
fn addr(mailbox: &str) -> &str {
    match (mailbox.find('<'), mailbox.rfind('>')) {
        (Some(a), Some(b)) if a < b => &mailbox[a + 1..b],
        _ => mailbox.trim(),
    }
}

/// Encodes a header value as RFC 2047 UTF-8 when it is not plain ASCII.
fn header_value(s: &str) -> String {
    use base64::Engine as _;
    if s.is_ascii() { s.to_string() } else { format!("=?utf-8?b?{}?=", base64::engine::general_purpose::STANDARD.encode(s)) }
}

/// Sends one plain-text message.
pub async fn send(e: &EmailSpec, password: Option<&str>, subject: &str, body: &str) -> Result<(), String> {
    let port = e.smtp_port.unwrap_or(match e.tls.as_str() {
        "tls" => 465,
        "none" => 25,
        _ => 587,
    });
    let server = format!("{}:{port}", e.smtp_host);
    let work = async {
        let tcp = TcpStream::connect((e.smtp_host.as_str(), port)).await.map_err(|x| format!("connecting: {x}"))?;
        let mut io: Box<dyn Io> = Box::new(tcp);
        if e.tls == "tls" {
            io = wrap_tls(io, &e.smtp_host).await?;
        }
        let mut c = Conn { io: BufReader::new(io) };
        c.reply(220, "greeting").await?;
        let ehlo = c.cmd("EHLO dp", 250, "EHLO").await?;
        if e.tls == "starttls" {
            if !ehlo.to_ascii_uppercase().contains("STARTTLS") {
                return Err("the server does not offer STARTTLS (set tls: tls for port 465, or none on a trusted network)".into());
            }
            c.cmd("STARTTLS", 220, "STARTTLS").await?;
            let plain = c.io.into_inner();
            c = Conn { io: BufReader::new(wrap_tls(plain, &e.smtp_host).await?) };
            c.cmd("EHLO dp", 250, "EHLO").await?;
        }
        if let (Some(user), Some(pw)) = (&e.username, password) {
            use base64::Engine as _;
            let token = base64::engine::general_purpose::STANDARD.encode(format!("\0{user}\0{pw}"));
            c.cmd(&format!("AUTH PLAIN {token}"), 235, "AUTH (username/password)").await?;
        }
        c.cmd(&format!("MAIL FROM:<{}>", addr(&e.from)), 250, "MAIL FROM").await?;
        for to in &e.to {
            c.cmd(&format!("RCPT TO:<{}>", addr(to)), 250, &format!("RCPT TO {}", addr(to))).await?;
        }
        c.cmd("DATA", 354, "DATA").await?;
        let date = chrono::Utc::now().to_rfc2822();
        let id = format!("<{}@dp>", uuid::Uuid::new_v4());
        let mut msg = format!(
            "From: {}\r\nTo: {}\r\nSubject: {}\r\nDate: {date}\r\nMessage-ID: {id}\r\nMIME-Version: 1.0\r\nContent-Type: text/plain; charset=utf-8\r\nContent-Transfer-Encoding: 8bit\r\n\r\n",
            e.from,
            e.to.join(", "),
            header_value(subject)
        );
        for line in body.lines() {
            // Dot-stuffing (RFC 5321 4.5.2).
            if line.starts_with('.') {
                msg.push('.');
            }
            msg.push_str(line);
            msg.push_str("\r\n");
        }
        msg.push('.');
        c.cmd(&msg, 250, "sending the message").await?;
        let _ = c.cmd("QUIT", 221, "QUIT").await;
        Ok::<(), String>(())
    };
    match tokio::time::timeout(Duration::from_secs(20), work).await {
        Ok(r) => r.map_err(|m| format!("SMTP {server}: {m}")),
        Err(_) => Err(format!("SMTP {server}: timed out after 20s")),
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn mailbox_addresses() {
        assert_eq!(super::addr("dp <dp@example.com>"), "dp@example.com");
        assert_eq!(super::addr("a@example.com"), "a@example.com");
        assert_eq!(super::header_value("dp: task failed"), "dp: task failed");
        assert!(super::header_value("tâche").starts_with("=?utf-8?b?"));
    }
}
