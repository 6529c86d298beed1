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
        Printer { quiet, json: format == LogFormat::Json, color, bar: Mutex::new(None) }
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
                let mut err = std::io::stderr().lock();
                let _ = writeln!(err, "{line}");
            }
        }
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
