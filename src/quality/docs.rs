//! Data Docs: a static site under `target/data_docs/` (plain HTML with
//! inline CSS: no server, no network, no script).
//!
//! - `index.html`: the runs, newest first (pass/fail per checkpoint run),
//!   the latest state of each checkpoint, and the trend of each failing
//!   expectation over the checkpoint's last runs;
//! - `runs/<run_id>.html`: one page per run, each expectation with its
//!   observed value, counts and sample failing rows;
//! - `suites/<checkpoint>.html`: each checkpoint's suite.
//!
//! Incremental: a run writes its own page and its suite page, appends one
//! line to `runs.jsonl`, and rewrites the index from that file; earlier
//! run pages are never touched, so adding a run costs the same with 1,000
//! runs behind it as with none.

use datafusion::arrow::array::Array;
use datafusion::arrow::record_batch::RecordBatch;
use serde_json::{Value, json};
use std::io::Write as _;
use std::path::{Path, PathBuf};

use super::Resolved;
use super::run::{CheckpointRun, ExpectationResult, PARTIAL_UNEXPECTED};

/// Runs shown in an expectation's trend.
const TREND_RUNS: usize = 20;
/// Failing expectations remembered per run for the trend.
const TREND_LABELS: usize = 500;

pub fn esc(s: &str) -> String {
    let mut o = String::with_capacity(s.len());
    esc_to(&mut o, s);
    o
}

/// `s`, escaped for HTML text and attributes, appended to `o`.
fn esc_to(o: &mut String, s: &str) {
    let mut rest = s;
    while let Some(p) = rest.find(['&', '<', '>', '"', '\'']) {
        o.push_str(&rest[..p]);
        o.push_str(match rest.as_bytes()[p] {
            b'&' => "&amp;",
            b'<' => "&lt;",
            b'>' => "&gt;",
            b'"' => "&quot;",
            _ => "&#39;",
        });
        rest = &rest[p + 1..];
    }
    o.push_str(rest);
}

/// A JSON value's text, escaped for HTML, appended to `o`.
fn esc_json_to(o: &mut String, v: &impl serde::Serialize, scratch: &mut Vec<u8>) {
    scratch.clear();
    if serde_json::to_writer(&mut *scratch, v).is_ok() {
        esc_to(o, std::str::from_utf8(scratch).unwrap_or_default());
    }
}

const CSS: &str = "body{font-family:system-ui,-apple-system,Segoe UI,Roboto,sans-serif;margin:2em;color:#222}\
table{border-collapse:collapse;margin:1em 0;font-size:14px}th,td{border:1px solid #ccc;padding:4px 8px;text-align:left;vertical-align:top}\
th{background:#f3f3f3}.pass{color:#1a7f37;font-weight:600}.fail{color:#cf222e;font-weight:600}.warn{color:#9a6700;font-weight:600}\
code{font-size:13px}.cell{display:inline-block;width:10px;height:10px;margin:1px}.c-pass{background:#1a7f37}.c-fail{background:#cf222e}.c-none{background:#ddd}\
nav a{margin-right:1em}";

fn page(title: &str, nav_up: &str, body: &str) -> String {
    format!(
        "<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\"><title>{t}</title><style>{CSS}</style></head>\n<body><nav><a href=\"{nav_up}index.html\">Data Docs</a></nav>\n<h1>{t}</h1>\n{body}\n</body></html>\n",
        t = esc(title)
    )
}

fn status(r: &ExpectationResult) -> (&'static str, &'static str) {
    match (r.success, r.severity) {
        (true, _) => ("pass", "PASS"),
        (false, super::Severity::Warn) => ("warn", "WARN"),
        (false, super::Severity::Error) => ("fail", "FAIL"),
    }
}

fn rows_table(batches: &[RecordBatch]) -> String {
    let Some(first) = batches.first() else { return String::new() };
    let schema = first.schema();
    let mut h = String::from("<table class=\"rows\"><tr>");
    for f in schema.fields() {
        h.push_str(&format!("<th>{}</th>", esc(f.name())));
    }
    h.push_str("</tr>");
    let mut shown = 0;
    for b in batches {
        for i in 0..b.num_rows() {
            if shown >= PARTIAL_UNEXPECTED {
                break;
            }
            shown += 1;
            h.push_str("<tr>");
            for c in b.columns() {
                let v = if c.is_null(i) { "NULL".to_string() } else { datafusion::arrow::util::display::array_value_to_string(c, i).unwrap_or_default() };
                h.push_str(&format!("<td>{}</td>", esc(&v)));
            }
            h.push_str("</tr>");
        }
    }
    h.push_str("</table>");
    h
}

fn run_page(run: &CheckpointRun) -> String {
    let ok = run.success();
    let mut b = format!(
        "<p>Checkpoint <a href=\"../suites/{cp}.html\">{cpe}</a> ({file}), run <code>{id}</code> at {at} ({trigger}, {dur:.2}s): <span class=\"{cls}\">{verdict}</span>. {passed} of {n} expectations passed, {fe} error-severity and {fw} warn-severity failures.</p>\n",
        cp = esc(&run.checkpoint),
        cpe = esc(&run.checkpoint),
        file = esc(&run.file),
        id = esc(&run.run_id),
        at = run.started_at.format("%Y-%m-%d %H:%M:%S UTC"),
        trigger = esc(&run.trigger),
        dur = run.duration.as_secs_f64(),
        cls = if ok { "pass" } else { "fail" },
        verdict = if ok { "PASSED" } else { "FAILED" },
        passed = run.passed(),
        n = run.results.len(),
        fe = run.failed(super::Severity::Error),
        fw = run.failed(super::Severity::Warn),
    );
    b.push_str("<table><tr><th>status</th><th>relation</th><th>expectation</th><th>arguments</th><th>observed</th><th>unexpected</th><th>severity</th></tr>\n");
    let mut scratch = vec![];
    for (i, r) in run.results.iter().enumerate() {
        use std::fmt::Write as _;
        let (cls, tag) = status(r);
        let _ = write!(b, "<tr id=\"r{i}\"><td class=\"{cls}\">{tag}</td><td>");
        esc_to(&mut b, &r.relation);
        b.push_str("</td><td><code>");
        esc_to(&mut b, &r.expectation);
        b.push_str("</code>");
        if !r.success {
            let _ = write!(b, " <a href=\"#e{i}\">rows</a>");
        }
        b.push_str("</td><td><code>");
        esc_json_to(&mut b, &r.kwargs, &mut scratch);
        b.push_str("</code></td><td><code>");
        if !r.observed_value.is_null() {
            esc_json_to(&mut b, &r.observed_value, &mut scratch);
        }
        b.push_str("</code></td><td>");
        match (r.unexpected_count, r.element_count) {
            (Some(u), Some(n)) => {
                let _ = write!(b, "{u} of {n} ({:.2}%)", r.unexpected_percent.unwrap_or(0.0));
            }
            (Some(u), None) => {
                let _ = write!(b, "{u}");
            }
            _ => {}
        }
        let _ = writeln!(b, "</td><td>{}</td></tr>", r.severity.as_str());
    }
    b.push_str("</table>\n");
    for (i, r) in run.results.iter().enumerate().filter(|(_, r)| !r.success) {
        b.push_str(&format!("<h2 id=\"e{i}\">{} on {}</h2>\n", esc(&r.label), esc(&r.relation)));
        b.push_str(&format!("<p>Defined at <code>{}:{}</code>.", esc(&r.file), r.line));
        if let Some(t) = &r.failed_rows_table {
            b.push_str(&format!(" Failing rows kept in <code>{}</code> (<code>dp sql -e 'select * from {}'</code>).", esc(t), esc(t)));
        }
        b.push_str("</p>\n");
        if let Some(e) = &r.exception {
            b.push_str(&format!("<pre>{}</pre>\n", esc(e)));
        }
        if !r.failed_rows.is_empty() {
            b.push_str("<h3>Sample failing rows</h3>\n");
            b.push_str(&rows_table(&r.failed_rows));
        } else if !r.partial_unexpected_list.is_empty() {
            b.push_str(&format!(
                "<h3>Sample unexpected values</h3>\n<p><code>{}</code></p>\n",
                esc(&Value::Array(r.partial_unexpected_list.clone()).to_string())
            ));
        }
    }
    page(&format!("{} run {}", run.checkpoint, run.started_at.format("%Y-%m-%d %H:%M:%S")), "../", &b)
}

fn suite_page(r: &Resolved) -> String {
    let cp = &r.checkpoint;
    let mut b = format!("<p>{}</p><p>Defined in <code>{}</code>; {} expectations.</p>\n", esc(&cp.description), esc(&cp.file), r.expectation_count());
    for bound in &r.bound {
        b.push_str(&format!(
            "<h2>{} <code>{}</code></h2>\n<table><tr><th>expectation</th><th>arguments</th><th>severity</th><th>line</th></tr>\n",
            esc(&bound.relation.label),
            esc(&bound.relation.sql)
        ));
        let mut scratch = vec![];
        for e in &bound.expectations {
            use std::fmt::Write as _;
            b.push_str("<tr><td><code>");
            esc_to(&mut b, e.name());
            b.push_str("</code></td><td><code>");
            esc_json_to(&mut b, &e.gx_kwargs(), &mut scratch);
            let _ = writeln!(b, "</code></td><td>{}</td><td>{}</td></tr>", e.severity.as_str(), e.line);
        }
        b.push_str("</table>\n");
    }
    page(&format!("Suite {}", cp.name), "../", &b)
}

/// What a suite page shows, hashed: the checkpoint file's text, the
/// relations its validations resolved to, and dp's version (the page's layout).
fn suite_digest(r: &Resolved) -> u64 {
    let mut h = twox_hash::XxHash64::with_seed(r.checkpoint.digest);
    std::hash::Hasher::write(&mut h, env!("CARGO_PKG_VERSION").as_bytes());
    for b in &r.bound {
        for part in [&b.relation.label, &b.relation.sql] {
            std::hash::Hasher::write(&mut h, part.as_bytes());
            std::hash::Hasher::write_u8(&mut h, 0);
        }
        std::hash::Hasher::write_usize(&mut h, b.expectations.len());
    }
    std::hash::Hasher::finish(&h)
}

fn write_atomic(path: &Path, text: &str) -> std::io::Result<()> {
    let tmp = path.with_extension(format!("tmp{}", std::process::id()));
    std::fs::write(&tmp, text)?;
    std::fs::rename(&tmp, path)
}

/// Adds a run to the site (its page, its suite page, the index).
pub fn add_run(site: &Path, resolved: &Resolved, run: &CheckpointRun) -> std::io::Result<PathBuf> {
    std::fs::create_dir_all(site.join("runs"))?;
    std::fs::create_dir_all(site.join("suites"))?;
    let page_path = site.join("runs").join(format!("{}.html", run.run_id));
    write_atomic(&page_path, &run_page(run))?;
    // the suite page changes with the checkpoint file and the relations it
    // resolved to; a run rewrites it only then (it lists every expectation)
    let suite = site.join("suites").join(format!("{}.html", run.checkpoint));
    let mark = format!("<!-- dp suite {:016x} -->\n", suite_digest(resolved));
    let current = std::fs::File::open(&suite).ok().and_then(|f| {
        let mut first = String::new();
        std::io::BufRead::read_line(&mut std::io::BufReader::new(f), &mut first).ok()?;
        Some(first)
    });
    if current.as_deref() != Some(mark.as_str()) {
        write_atomic(&suite, &(mark + &suite_page(resolved)))?;
    }
    let failed_keys: Vec<String> = run.results.iter().filter(|r| !r.success).take(TREND_LABELS).map(|r| format!("{} {}", r.relation, r.label)).collect();
    let line = json!({
        "run_id": run.run_id,
        "checkpoint": run.checkpoint,
        "started_at": run.started_at.to_rfc3339_opts(chrono::SecondsFormat::Secs, true),
        "success": run.success(),
        "evaluated": run.results.len(),
        "passed": run.passed(),
        "failed_error": run.failed(super::Severity::Error),
        "failed_warn": run.failed(super::Severity::Warn),
        "trigger": run.trigger,
        "failed": failed_keys,
    });
    {
        let mut f = std::fs::OpenOptions::new().create(true).append(true).open(site.join("runs.jsonl"))?;
        writeln!(f, "{line}")?;
    }
    write_index(site)?;
    Ok(page_path)
}

/// Rewrites `index.html` from `runs.jsonl`.
pub fn write_index(site: &Path) -> std::io::Result<()> {
    let text = std::fs::read_to_string(site.join("runs.jsonl")).unwrap_or_default();
    let runs: Vec<Value> = text.lines().filter_map(|l| serde_json::from_str(l).ok()).collect();
    let mut b = String::new();
    // latest state and trend per checkpoint
    let mut checkpoints: Vec<&str> = runs.iter().filter_map(|r| r["checkpoint"].as_str()).collect();
    checkpoints.sort();
    checkpoints.dedup();
    b.push_str("<h2>Checkpoints</h2>\n<table><tr><th>checkpoint</th><th>latest run</th><th>status</th><th>last runs (oldest → newest)</th></tr>\n");
    for cp in &checkpoints {
        let mine: Vec<&Value> = runs.iter().filter(|r| r["checkpoint"].as_str() == Some(cp)).collect();
        let last = mine.last().unwrap();
        let cells: String = mine
            .iter()
            .rev()
            .take(TREND_RUNS)
            .rev()
            .map(|r| {
                format!(
                    "<span class=\"cell c-{}\" title=\"{}\"></span>",
                    if r["success"] == true { "pass" } else { "fail" },
                    esc(r["started_at"].as_str().unwrap_or(""))
                )
            })
            .collect();
        b.push_str(&format!(
            "<tr><td><a href=\"suites/{cp}.html\">{cpe}</a></td><td><a href=\"runs/{id}.html\">{at}</a></td><td class=\"{cls}\">{st}</td><td>{cells}</td></tr>\n",
            cp = esc(cp),
            cpe = esc(cp),
            id = esc(last["run_id"].as_str().unwrap_or("")),
            at = esc(last["started_at"].as_str().unwrap_or("")),
            cls = if last["success"] == true { "pass" } else { "fail" },
            st = if last["success"] == true { "PASSED" } else { "FAILED" },
        ));
    }
    b.push_str("</table>\n");
    // trend of failures per expectation (over each checkpoint's last runs)
    let mut trend = String::new();
    for cp in &checkpoints {
        let mine: Vec<&Value> = runs.iter().filter(|r| r["checkpoint"].as_str() == Some(cp)).collect();
        let recent: Vec<&Value> = mine.iter().rev().take(TREND_RUNS).rev().copied().collect();
        let mut labels: Vec<&str> = recent.iter().flat_map(|r| r["failed"].as_array().into_iter().flatten().filter_map(Value::as_str)).collect();
        labels.sort();
        labels.dedup();
        for l in labels {
            let cells: String = recent
                .iter()
                .map(|r| {
                    let failed = r["failed"].as_array().is_some_and(|a| a.iter().any(|x| x.as_str() == Some(l)));
                    format!("<span class=\"cell c-{}\"></span>", if failed { "fail" } else { "pass" })
                })
                .collect();
            let n = recent.iter().filter(|r| r["failed"].as_array().is_some_and(|a| a.iter().any(|x| x.as_str() == Some(l)))).count();
            trend.push_str(&format!("<tr><td>{}</td><td><code>{}</code></td><td>{n} of {}</td><td>{cells}</td></tr>\n", esc(cp), esc(l), recent.len()));
        }
    }
    if !trend.is_empty() {
        b.push_str("<h2>Failing expectations</h2>\n<table><tr><th>checkpoint</th><th>expectation</th><th>failed in</th><th>last runs</th></tr>\n");
        b.push_str(&trend);
        b.push_str("</table>\n");
    }
    b.push_str(&format!("<h2>Runs ({})</h2>\n<table id=\"runs\"><tr><th>time</th><th>checkpoint</th><th>status</th><th>passed</th><th>failed (error / warn)</th><th>trigger</th></tr>\n", runs.len()));
    for r in runs.iter().rev() {
        let ok = r["success"] == true;
        b.push_str(&format!(
            "<tr><td><a href=\"runs/{id}.html\">{at}</a></td><td>{cp}</td><td class=\"{cls}\">{st}</td><td>{p} of {n}</td><td>{fe} / {fw}</td><td>{tr}</td></tr>\n",
            id = esc(r["run_id"].as_str().unwrap_or("")),
            at = esc(r["started_at"].as_str().unwrap_or("")),
            cp = esc(r["checkpoint"].as_str().unwrap_or("")),
            cls = if ok { "pass" } else { "fail" },
            st = if ok { "PASSED" } else { "FAILED" },
            p = r["passed"],
            n = r["evaluated"],
            fe = r["failed_error"],
            fw = r["failed_warn"],
            tr = esc(r["trigger"].as_str().unwrap_or("")),
        ));
    }
    b.push_str("</table>\n");
    write_atomic(&site.join("index.html"), &page("Data Docs", "", &b))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::quality::run::ExpectationResult;
    use crate::quality::spec::{Severity, parse};

    #[test]
    fn escapes_html() {
        assert_eq!(esc("<a href='x'>&</a>"), "&lt;a href=&#39;x&#39;&gt;&amp;&lt;/a&gt;");
    }

    fn result(ok: bool) -> ExpectationResult {
        ExpectationResult {
            relation: "main.t".into(),
            relation_id: "model.p.t".into(),
            expectation: "expect_column_values_to_not_be_null".into(),
            label: "expect_column_values_to_not_be_null(<id>)".into(),
            kwargs: serde_json::json!({"column": "id"}).as_object().unwrap().clone(),
            meta: Default::default(),
            severity: Severity::Error,
            success: ok,
            element_count: Some(10),
            missing_count: None,
            unexpected_count: Some(if ok { 0 } else { 2 }),
            unexpected_percent: Some(if ok { 0.0 } else { 20.0 }),
            observed_value: Value::Null,
            partial_unexpected_list: vec![],
            exception: None,
            file: "checkpoints/c.yml".into(),
            line: 4,
            duration: std::time::Duration::ZERO,
            failed_rows_table: None,
            failed_rows: vec![],
        }
    }

    #[test]
    fn each_run_adds_its_page_and_the_index_lists_runs_newest_first() {
        let dir = tempfile::tempdir().unwrap();
        let cp = parse("checkpoints/c.yml", "validations: []\n").unwrap();
        let resolved = Resolved { checkpoint: cp, bound: vec![] };
        let mut ids = vec![];
        for ok in [true, false] {
            let run = CheckpointRun {
                run_id: format!("run{}", ids.len()),
                checkpoint: "c".into(),
                file: "checkpoints/c.yml".into(),
                trigger: "check".into(),
                started_at: chrono::Utc::now(),
                duration: std::time::Duration::ZERO,
                results: vec![result(ok)],
                queries: vec![],
            };
            add_run(dir.path(), &resolved, &run).unwrap();
            ids.push(run.run_id);
        }
        let first = std::fs::read_to_string(dir.path().join("runs/run0.html")).unwrap();
        let index = std::fs::read_to_string(dir.path().join("index.html")).unwrap();
        // newest first, escaped, and the failing expectation's trend
        assert!(index.find("runs/run1.html").unwrap() < index.rfind("runs/run0.html").unwrap());
        assert!(index.contains("Runs (2)"));
        assert!(index.contains("expect_column_values_to_not_be_null(&lt;id&gt;)"));
        assert!(!index.contains("<script") && !index.contains("http"));
        // earlier pages are not rewritten
        assert_eq!(std::fs::read_to_string(dir.path().join("runs/run0.html")).unwrap(), first);
        assert!(std::fs::read_to_string(dir.path().join("runs/run1.html")).unwrap().contains("2 of 10 (20.00%)"));
    }
}
