//! The one place that writes for people: data to stdout, logs and per-node
//! lines to stderr, a progress bar on a TTY only, `--quiet`, `--log-format
//! json` and `NO_COLOR`.

use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};
use std::io::{IsTerminal, Write};
use std::sync::Mutex;
use std::time::Duration;

use super::args::LogFormat;

#[derive(Clone, Copy, PartialEq, Eq)]
pub enum Level {
    Info,
    Warn,
    Error,
}

pub struct Printer {
    quiet: bool,
    json: bool,
    color: bool,
    bar: Mutex<Option<ProgressBar>>,
    /// Lines kept while a [`Held`] guard lives, written at once when it drops.
    held: Mutex<Option<Vec<u8>>>,
}

/// While it lives, the printer's lines go to a buffer, written to stderr in
/// one call when it drops (see [`Printer::hold`]).
pub struct Held<'a>(&'a Printer);

impl Drop for Held<'_> {
    fn drop(&mut self) {
        if let Some(buf) = self.0.held.lock().unwrap().take() {
            let _ = std::io::stderr().lock().write_all(&buf);
        }
    }
}

#[derive(Clone, Copy, PartialEq, Eq)]
pub enum Tone {
    Good,
    Warn,
    Bad,
}

impl Printer {
    pub fn new(quiet: bool, format: LogFormat) -> Printer {
        let color = std::env::var_os("NO_COLOR").is_none_or(|v| v.is_empty()) && std::io::stderr().is_terminal() && format == LogFormat::Text;
        Printer { quiet, json: format == LogFormat::Json, color, bar: Mutex::new(None), held: Mutex::new(None) }
    }

    fn paint(&self, text: &str, tone: Tone) -> String {
        if !self.color {
            return text.to_string();
        }
        let code = match tone {
            Tone::Good => "32",
            Tone::Warn => "33",
            Tone::Bad => "31",
        };
        format!("\x1b[{code}m{text}\x1b[0m")
    }

    fn emit(&self, level: Level, text: &str, fields: Option<serde_json::Value>) {
        if self.quiet && level == Level::Info {
            return;
        }
        if self.json && text.is_empty() {
            return;
        }
        let line = if self.json {
            let mut o = serde_json::json!({
                "ts": chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Millis, true),
                "level": match level { Level::Info => "info", Level::Warn => "warn", Level::Error => "error" },
                "msg": text,
            });
            if let Some(serde_json::Value::Object(f)) = fields {
                for (k, v) in f {
                    o[k] = v;
                }
            }
            o.to_string()
        } else {
            text.to_string()
        };
        let bar = self.bar.lock().unwrap();
        match bar.as_ref() {
            Some(b) if !b.is_hidden() => b.println(line),
            _ => {
                let mut line = line;
                line.push('\n');
                match self.held.lock().unwrap().as_mut() {
                    Some(buf) => buf.extend_from_slice(line.as_bytes()),
                    None => {
                        let _ = std::io::stderr().lock().write_all(line.as_bytes());
                    }
                }
            }
        }
    }

    /// Whether lines are JSON objects (`--log-format json`): callers build
    /// a line's structured fields only then.
    pub fn is_json(&self) -> bool {
        self.json
    }

    /// Keeps the lines printed until the guard drops, then writes them in
    /// one call: thousands of node lines (a checkpoint's expectations)
    /// cost one write instead of one each. A visible progress bar still
    /// prints its lines as they come.
    pub fn hold(&self) -> Held<'_> {
        let mut held = self.held.lock().unwrap();
        if held.is_none() {
            *held = Some(Vec::with_capacity(1 << 16));
        }
        Held(self)
    }

    pub fn info(&self, text: impl AsRef<str>) {
        self.emit(Level::Info, text.as_ref(), None);
    }

    pub fn warn(&self, text: impl AsRef<str>) {
        let t = format!("{} {}", self.paint("warning:", Tone::Warn), text.as_ref());
        self.emit(Level::Warn, if self.json { text.as_ref() } else { &t }, None);
    }

    pub fn error(&self, text: impl AsRef<str>) {
        let t = format!("{} {}", self.paint("error:", Tone::Bad), text.as_ref());
        self.emit(Level::Error, if self.json { text.as_ref() } else { &t }, None);
    }

    /// Data for stdout (never suppressed by --quiet).
    pub fn data(&self, text: impl AsRef<str>) {
        let mut out = std::io::stdout().lock();
        let _ = writeln!(out, "{}", text.as_ref());
    }

    /// A dbt-style node line: `  3 of 12 OK created sql table model marts.x ....... [OK 10 rows in 0.41s]`.
    #[allow(clippy::too_many_arguments)]
    pub fn node_line(&self, index: usize, total: usize, verb: &str, what: &str, tag: &str, tone: Tone, elapsed: Option<Duration>, fields: serde_json::Value) {
        self.status_line("", index, total, verb, what, tag, tone, elapsed, fields);
    }

    /// A microbatch model's batch line: `Batch 2 of 5 OK created batch
    /// 2024-01-02 of main.events ..... [OK in 0.05s]`.
    #[allow(clippy::too_many_arguments)]
    pub fn batch_line(&self, index: usize, total: usize, verb: &str, what: &str, tag: &str, tone: Tone, elapsed: Option<Duration>, fields: serde_json::Value) {
        self.status_line("Batch ", index, total, verb, what, tag, tone, elapsed, fields);
    }

    #[allow(clippy::too_many_arguments)]
    fn status_line(
        &self,
        prefix: &str,
        index: usize,
        total: usize,
        verb: &str,
        what: &str,
        tag: &str,
        tone: Tone,
        elapsed: Option<Duration>,
        fields: serde_json::Value,
    ) {
        let head = format!("{prefix}{index} of {total} {verb} {what} ");
        let width: usize = 80;
        let dots = width.saturating_sub(head.chars().count()).max(5);
        let time = elapsed.map(|d| format!(" in {:.2}s", d.as_secs_f64())).unwrap_or_default();
        let status = format!("[{}{}]", self.paint(tag, tone), time);
        let level = match tone {
            Tone::Bad => Level::Error,
            Tone::Warn => Level::Warn,
            _ => Level::Info,
        };
        if self.json {
            self.emit(level, &format!("{prefix}{index} of {total} {verb} {what} [{tag}{time}]"), Some(fields));
        } else {
            self.emit(level, &format!("{head}{} {status}", ".".repeat(dots)), None);
        }
    }

    /// Starts a progress bar (drawn on a TTY only, never in JSON or quiet mode).
    pub fn progress(&self, total: u64, label: &str) {
        let visible = std::io::stderr().is_terminal() && !self.json && !self.quiet;
        let bar = ProgressBar::with_draw_target(Some(total), if visible { ProgressDrawTarget::stderr() } else { ProgressDrawTarget::hidden() });
        bar.set_style(ProgressStyle::with_template("{spinner} {msg} [{bar:30}] {pos}/{len} {elapsed}").unwrap().progress_chars("=> "));
        bar.set_message(label.to_string());
        bar.enable_steady_tick(Duration::from_millis(120));
        *self.bar.lock().unwrap() = Some(bar);
    }

    pub fn tick(&self) {
        if let Some(b) = self.bar.lock().unwrap().as_ref() {
            b.inc(1);
        }
    }

    pub fn finish_progress(&self) {
        if let Some(b) = self.bar.lock().unwrap().take() {
            b.finish_and_clear();
        }
    }

    pub fn good(&self, s: &str) -> String {
        self.paint(s, Tone::Good)
    }
    pub fn bad(&self, s: &str) -> String {
        self.paint(s, Tone::Bad)
    }
}
