//! Turns the runner's events into dbt-style output: `3 of 12 START ...`,
//! `3 of 12 OK created sql table model marts.x .... [INSERT 10 rows in
//! 0.41s]`, the progress bar, the closing summary and `--show-failures`.

use datafusion::arrow::util::pretty::pretty_format_batches;
use std::time::Duration;

use super::Printer;
use super::printer::Tone;
use crate::project::load::Project;
use crate::project::nodes::{Materialization, Node, ResourceType};
use crate::runner::events::{Event, EventSink};
use crate::runner::{NodeResult, Status, unit};
use crate::util::fmt_thousands;

/// Prints run events as they happen.
pub struct Reporter<'p> {
    pub printer: &'p Printer,
}

impl EventSink for Reporter<'_> {
    fn on_event(&self, event: &Event<'_>) {
        match event {
            Event::RunStarted { total } => self.printer.progress(*total as u64, "running"),
            // dbt prints no START line for what it does not run (exposures, saved queries)
            Event::NodeStarted { node, .. } if matches!(node.resource_type, ResourceType::Exposure | ResourceType::SavedQuery) => {}
            Event::NodeStarted { index, total, node } => self.printer.info(format!("{index} of {total} START {}", describe(node))),
            Event::NodeFinished { index, total, node, result } => {
                self.printer.tick();
                print_result(self.printer, *index, *total, node, result);
            }
            Event::BatchStarted { node, index, total, label } => {
                self.printer.info(format!("Batch {index} of {total} START batch {label} of {}", node.relation_name()))
            }
            Event::BatchFinished { node, index, total, run } => print_batch(self.printer, node, *index, *total, run),
            Event::RunFinished { .. } => self.printer.finish_progress(),
        }
    }
}

fn describe(node: &Node) -> String {
    match node.resource_type {
        ResourceType::Seed => format!("seed file {}", node.relation_name()),
        ResourceType::Test => format!("test {}", node.name),
        ResourceType::Snapshot => format!("snapshot {}", node.relation_name()),
        ResourceType::UnitTest => format!("unit_test {}", unit::display_name(node)),
        ResourceType::Exposure => format!("exposure {}", node.name),
        ResourceType::SavedQuery => format!("saved query {}", node.name),
        _ if crate::runner::microbatch::applies(node) => format!("sql microbatch model {}", node.relation_name()),
        _ => format!("sql {} model {}", node.materialized(), node.relation_name()),
    }
}

/// A microbatch model's batch result line, as dbt prints it: `Batch 2 of
/// 5 OK created batch 2024-01-02 of main.x ... [OK in 0.05s]`, `ERROR
/// creating` (then the error) or `SKIP`.
fn print_batch(printer: &Printer, node: &Node, index: usize, total: usize, b: &crate::runner::microbatch::BatchRun) {
    let what = format!("batch {} of {}", b.label, node.relation_name());
    let fields = serde_json::json!({"unique_id": node.unique_id, "batch": b.batch.to_json(), "status": b.status.as_str(), "rows": b.rows});
    let time = Some(b.elapsed);
    match b.status {
        Status::Success => printer.batch_line(index, total, "OK created", &what, "OK", Tone::Good, time, fields),
        Status::Skipped => printer.batch_line(index, total, "SKIP", &what, "SKIPPED", Tone::Warn, None, fields),
        _ => {
            printer.batch_line(index, total, "ERROR creating", &what, "ERROR", Tone::Bad, time, fields);
            if let Some(e) = &b.error {
                printer.error(format!("batch {} of {}: {e}", b.label, node.name));
            }
        }
    }
}

fn print_result(printer: &Printer, i: usize, total: usize, node: &Node, r: &NodeResult) {
    let fields = serde_json::json!({"unique_id": r.unique_id, "status": r.status.as_str(), "rows": r.rows, "execution_time": r.execution_time.as_secs_f64()});
    let time = Some(r.execution_time);
    let line = |verb: &str, what: &str, tag: &str, tone: Tone, time: Option<Duration>| printer.node_line(i, total, verb, what, tag, tone, time, fields.clone());
    match r.status {
        Status::Success => {
            let verb = match node.resource_type {
                ResourceType::Seed => "OK loaded",
                ResourceType::Snapshot => "OK snapshotted",
                _ if node.materialized() == Materialization::Ephemeral => "OK",
                _ => "OK created",
            };
            let mut tag = match r.rows {
                Some(n) => format!("{} {} rows", r.message.split_whitespace().next().unwrap_or("OK"), fmt_thousands(n)),
                None => r.message.clone(),
            };
            if let Some(p) = &r.published {
                tag.push_str(&format!("; {p}"));
            }
            let what = if node.resource_type == ResourceType::Snapshot { node.relation_name() } else { describe(node) };
            line(verb, &what, &tag, Tone::Good, time);
        }
        Status::Error if matches!(node.resource_type, ResourceType::Test | ResourceType::UnitTest) => {
            line("ERROR", &test_label(node), "ERROR", Tone::Bad, time)
        }
        Status::Error => line("ERROR creating", &describe(node), "ERROR", Tone::Bad, time),
        Status::Skipped if node.resource_type == ResourceType::Test => line("SKIP test", &node.name, "SKIP", Tone::Warn, None),
        Status::Skipped if node.resource_type == ResourceType::UnitTest => line("SKIP unit_test", &unit::display_name(node), "SKIP", Tone::Warn, None),
        Status::Skipped => line("SKIP relation", &node.relation_name(), "SKIP", Tone::Warn, None),
        Status::Pass => line("PASS", &test_label(node), "PASS", Tone::Good, time),
        Status::NoOp => line("NO-OP", &describe(node), "NO-OP", Tone::Warn, time),
        Status::PartialSuccess => line("PARTIALLY created", &describe(node), &r.message, Tone::Warn, time),
        Status::Warn => {
            let n = r.failures.unwrap_or(0);
            line(&format!("WARN {n}"), &test_label(node), &format!("WARN {n}"), Tone::Warn, time);
        }
        Status::Fail => {
            let n = r.failures.unwrap_or(0);
            line(&format!("FAIL {n}"), &test_label(node), &format!("FAIL {n}"), Tone::Bad, time);
        }
    }
    if let (Status::Warn | Status::Fail, Some(rel)) = (r.status, &r.stored_in) {
        printer.info(format!("{i} of {total}   failing rows in {rel}"));
    }
}

/// A test's name in output lines (`model::test` for unit tests).
fn test_label(node: &Node) -> String {
    if node.resource_type == ResourceType::UnitTest { unit::display_name(node) } else { node.name.clone() }
}

/// Prints the closing summary and returns whether everything succeeded.
pub fn summarize(printer: &Printer, results: &[NodeResult], elapsed: Duration, project: &Project) -> bool {
    let count = |s: Status| results.iter().filter(|r| r.status == s).count();
    let pass = count(Status::Success) + count(Status::Pass);
    let warn = count(Status::Warn);
    let err = count(Status::Error) + count(Status::Fail) + count(Status::PartialSuccess);
    let skip = count(Status::Skipped);
    printer.info("");
    printer.info(format!("Finished running {} nodes in {:.2}s.", results.len(), elapsed.as_secs_f64()));
    if err > 0 {
        printer.info("");
        printer.info(printer.bad("Completed with errors:"));
        for r in results.iter().filter(|r| r.status.blocks()) {
            let n = &project.nodes[&r.unique_id];
            let at = n.patch_path.as_deref().unwrap_or(&n.original_file_path);
            let compiled = crate::compile::compiled_path(n);
            if r.status == Status::Fail && n.resource_type == ResourceType::UnitTest {
                printer.error(format!("Failure in unit_test {} ({at})\n\n{}\n\n  compiled code at target/compiled/{compiled}", n.name, r.message));
            } else if r.status == Status::Fail {
                let stored = r.stored_in.as_ref().map(|s| format!("\n  failures stored in {s}")).unwrap_or_default();
                printer.error(format!("Failure in test {} ({at})\n  {}\n  compiled code at target/compiled/{compiled}{stored}", n.name, r.message));
            } else if let Some(o) = r.batches.as_ref().filter(|_| r.status == Status::PartialSuccess) {
                printer.error(format!("{} {}: {}\n{}\n  hint: `dp retry` runs the failed batches again", n.resource_type, n.name, r.message, o.errors()));
            } else {
                // Errors raised while writing a model name it already.
                let named = format!("{} {}: ", n.resource_type, n.name);
                printer.error(if r.message.starts_with(&named) { r.message.clone() } else { format!("{named}{}", r.message) });
            }
        }
    } else {
        printer.info(printer.good("Completed successfully"));
    }
    printer.info("");
    for r in results.iter().filter(|r| r.status == Status::Warn) {
        printer.warn(format!("Warning in test {}: {}", project.nodes[&r.unique_id].name, r.message));
    }
    let noop = count(Status::NoOp);
    printer.info(format!("Done. PASS={pass} WARN={warn} ERROR={err} SKIP={skip} NO-OP={noop} TOTAL={}", results.len()));
    err == 0
}

/// `--show-failures`: after the summary, each warning or failing test's
/// first failing rows (at most `SHOW_FAILURES_ROWS`, fewer under the test's
/// `limit`) as a table on stdout, in run order:
///
/// ```text
/// FAIL 1 unique_orders_order_id (models/seeds.yml): first 1 failing row
/// +--------------+-----------+
/// | unique_field | n_records |
/// ...
/// ```
pub fn show_failures(printer: &Printer, results: &[NodeResult], project: &Project) -> anyhow::Result<()> {
    let mut first = true;
    for r in results.iter().filter(|r| matches!(r.status, Status::Warn | Status::Fail)) {
        let Some(sample) = &r.sample else { continue };
        let n = &project.nodes[&r.unique_id];
        let rows: usize = sample.iter().map(|b| b.num_rows()).sum();
        let tag = if r.status == Status::Fail { "FAIL" } else { "WARN" };
        if !first {
            printer.data("");
        }
        first = false;
        printer.data(format!(
            "{tag} {} {} ({}): first {rows} failing row{}",
            r.failures.unwrap_or(0),
            n.name,
            n.patch_path.as_deref().unwrap_or(&n.original_file_path),
            if rows == 1 { "" } else { "s" }
        ));
        if rows > 0 {
            printer.data(pretty_format_batches(sample)?.to_string());
        }
    }
    Ok(())
}
