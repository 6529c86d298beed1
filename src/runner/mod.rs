//! Executes selected nodes in dependency order with up to `threads` at
//! once. A failed node skips its descendants while independent branches go
//! on; `--fail-fast` stops launching new work after the first failure.
//! Results feed the dbt-style output and `target/run_results.json`.

pub mod batch;
pub mod failures;
pub mod results;
pub mod test;
pub mod unit;

use indexmap::{IndexMap, IndexSet};
use std::collections::HashMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use crate::cli::Printer;
use crate::cli::printer::Tone;
use crate::compile::Compiled;
use crate::engine::Engine;
use crate::project::load::Project;
use crate::project::nodes::{Node, ResourceType};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Status {
    Success,
    Error,
    Skipped,
    Pass,
    Warn,
    Fail,
}

impl Status {
    pub fn as_str(self) -> &'static str {
        match self {
            Status::Success => "success",
            Status::Error => "error",
            Status::Skipped => "skipped",
            Status::Pass => "pass",
            Status::Warn => "warn",
            Status::Fail => "fail",
        }
    }

    /// Whether this outcome blocks the node's dependants.
    pub fn blocks(self) -> bool {
        matches!(self, Status::Error | Status::Fail)
    }
}

#[derive(Debug, Clone)]
pub struct NodeResult {
    pub unique_id: String,
    pub status: Status,
    pub message: String,
    pub rows: Option<u64>,
    pub started_at: chrono::DateTime<chrono::Utc>,
    pub completed_at: chrono::DateTime<chrono::Utc>,
    pub execution_time: Duration,
    pub thread: usize,
    pub compiled_code: Option<String>,
    /// Failing rows of a test.
    pub failures: Option<u64>,
    /// Where a test's failing rows were stored.
    pub stored_in: Option<String>,
    /// A test's first failing rows (`--show-failures`).
    pub sample: Option<Vec<datafusion::arrow::record_batch::RecordBatch>>,
    /// What publishing to PostgreSQL did (shown after the node's tag).
    pub note: Option<String>,
}

#[derive(Default)]
pub struct RunOptions {
    pub threads: usize,
    pub fail_fast: bool,
    /// `--store-failures` and `--show-failures`.
    pub tests: test::TestFlags,
    /// Column tests judged together, one query per relation.
    pub batches: Arc<batch::Batches>,
    /// Extra ordering edges (parent, child) beyond the DAG: `dp build`
    /// makes each node's children wait for its tests.
    pub extra_edges: Vec<(String, String)>,
    /// Publishes nodes configured with `publish = ["postgres"]`.
    pub publisher: Option<Arc<crate::postgres::Publisher>>,
    /// OpenLineage events (START / COMPLETE / FAIL per node), when configured.
    pub openlineage: Option<Arc<crate::lineage::openlineage::Emitter>>,
}

/// Runs `ids` (a topologically ordered selection).
pub async fn execute(
    project: Arc<Project>,
    ids: &[String],
    compiled: Arc<Compiled>,
    engine: Arc<Engine>,
    printer: &Printer,
    opts: &RunOptions,
) -> Vec<NodeResult> {
    let selected: IndexSet<String> = ids.iter().cloned().collect();
    let total = ids.len();
    let index: HashMap<String, usize> = ids.iter().enumerate().map(|(i, u)| (u.clone(), i + 1)).collect();
    // Edges within the selection: the DAG's plus the extra ones.
    let mut children: HashMap<String, Vec<String>> = HashMap::new();
    let mut waiting: HashMap<String, usize> = ids.iter().map(|u| (u.clone(), 0)).collect();
    let mut add_edge = |p: &String, c: &String, children: &mut HashMap<String, Vec<String>>| {
        if selected.contains(p) && selected.contains(c) && !children.get(p).is_some_and(|v| v.contains(c)) {
            children.entry(p.clone()).or_default().push(c.clone());
            *waiting.get_mut(c).unwrap() += 1;
        }
    };
    for u in ids {
        for d in effective_parents(&project, u) {
            add_edge(&d, u, &mut children);
        }
    }
    for (p, c) in &opts.extra_edges {
        add_edge(p, c, &mut children);
    }
    let mut results: IndexMap<String, NodeResult> = IndexMap::new();
    let threads = opts.threads.max(1);
    // Ready nodes, launched in selection (topological) order.
    let mut ready: std::collections::BTreeSet<usize> = ids.iter().filter(|u| waiting[*u] == 0).map(|u| index[u]).collect();
    let mut running = tokio::task::JoinSet::new();
    let mut stop = false;
    printer.progress(total as u64, "running");
    let mut next_thread = 0usize;
    loop {
        while !stop && running.len() < threads {
            let Some(pos) = ready.pop_first() else { break };
            let uid = ids[pos - 1].clone();
            let node = Arc::new(project.nodes[&uid].clone());
            let sql = compiled.sql.get(&uid).cloned();
            let incremental = compiled.incremental.contains(&uid);
            let hooks = compiled.hooks.get(&uid).cloned().unwrap_or_default();
            let i = index[&uid];
            printer.info(start_line(i, total, &node));
            if let Some(ol) = &opts.openlineage {
                ol.node_started(&node);
            }
            let engine = engine.clone();
            let flags = opts.tests;
            let batches = opts.batches.clone();
            let project = project.clone();
            let publisher = opts.publisher.clone();
            next_thread = next_thread % threads + 1;
            let thread = next_thread;
            running.spawn(async move {
                let started_at = chrono::Utc::now();
                let t = Instant::now();
                let mut sql = sql;
                let r = if node.resource_type == ResourceType::UnitTest {
                    unit::run_unit_test(&engine, &project, &node).await.map(|(m, compiled)| {
                        sql = Some(compiled);
                        (m, None)
                    })
                } else {
                    run_node(&engine, &node, sql.as_deref(), incremental, &hooks, flags, &batches, publisher.as_deref()).await
                };
                (node, sql, r, started_at, t.elapsed(), thread)
            });
        }
        let Some(joined) = running.join_next().await else { break };
        let (node, sql, r, started_at, elapsed, thread) = match joined {
            Ok(v) => v,
            Err(e) => {
                printer.error(format!("a worker task failed: {e}"));
                continue;
            }
        };
        let uid = node.unique_id.clone();
        let i = index[&uid];
        printer.tick();
        let mut note = None;
        // A failed publish leaves the Delta table committed: the node is an
        // error, but what depends on it can still build.
        let mut publish_failed = false;
        let (status, message, rows, failures, stored_in, sample) = match r {
            Ok((m, published)) => {
                engine.catalog.invalidate(&node.schema, &node.alias);
                match (m.test, published) {
                    (Some(t), _) => (t.status, t.message.unwrap_or_default(), None, Some(t.failures), t.stored_in, t.sample),
                    (None, Some(Err(e))) => {
                        publish_failed = true;
                        let version = m.version.map(|v| format!(" (version {v})")).unwrap_or_default();
                        (
                            Status::Error,
                            format!(
                                "the warehouse table is built{version}, but publishing to PostgreSQL failed: {e:#}\n  hint: once PostgreSQL is reachable, `dp publish -s {}` (or the next `dp run`) brings it up to date",
                                node.name
                            ),
                            m.rows,
                            None,
                            None,
                            None,
                        )
                    }
                    (None, published) => {
                        note = published.and_then(Result::ok).map(|p| p.to_string());
                        (Status::Success, m.message, m.rows, None, None, None)
                    }
                }
            }
            Err(e) => (Status::Error, format!("{e:#}"), None, None, None, None),
        };
        let result = NodeResult {
            unique_id: uid.clone(),
            status,
            message: message.clone(),
            rows,
            started_at,
            completed_at: chrono::Utc::now(),
            execution_time: elapsed,
            thread,
            compiled_code: sql,
            failures,
            stored_in,
            sample,
            note,
        };
        print_result(printer, i, total, &node, &result);
        if let Some(ol) = &opts.openlineage {
            use crate::lineage::openlineage::Outcome;
            let outcome = if status.blocks() { Outcome::Fail } else { Outcome::Complete };
            ol.node_finished(&node, outcome, rows, status.blocks().then_some(message.as_str()));
        }
        results.insert(uid.clone(), result);
        if status.blocks() && !publish_failed {
            if opts.fail_fast {
                stop = true;
            }
            // Skip everything downstream.
            let mut stack = vec![uid.clone()];
            while let Some(x) = stack.pop() {
                for c in children.get(&x).cloned().unwrap_or_default() {
                    if !results.contains_key(&c) && waiting.insert(c.clone(), usize::MAX) != Some(usize::MAX) {
                        stack.push(c);
                    }
                }
            }
        } else {
            for c in children.get(&uid).cloned().unwrap_or_default() {
                if let Some(w) = waiting.get_mut(&c) {
                    if *w != usize::MAX && *w > 0 {
                        *w -= 1;
                        if *w == 0 {
                            ready.insert(index[&c]);
                        }
                    }
                }
            }
        }
    }
    printer.finish_progress();
    // Whatever did not run was skipped.
    for u in ids {
        if !results.contains_key(u) {
            let node = &project.nodes[u];
            let now = chrono::Utc::now();
            let r = NodeResult {
                unique_id: u.clone(),
                status: Status::Skipped,
                message: "SKIPPED".into(),
                rows: None,
                started_at: now,
                completed_at: now,
                execution_time: Duration::ZERO,
                thread: 0,
                compiled_code: compiled.sql.get(u).cloned(),
                failures: None,
                stored_in: None,
                sample: None,
                note: None,
            };
            print_result(printer, index[u], total, node, &r);
            results.insert(u.clone(), r);
        }
    }
    ids.iter().filter_map(|u| results.shift_remove(u)).collect()
}

/// A node's parents, looking through ephemeral models (which are inlined,
/// not run) to what they read.
fn effective_parents(project: &Project, uid: &str) -> Vec<String> {
    let mut out = vec![];
    let node = &project.nodes[uid];
    let mut stack: Vec<String> = if node.resource_type == ResourceType::UnitTest {
        // a unit test runs before its model, after the model's inputs
        node.depends_on.iter().filter_map(|m| project.nodes.get(m)).flat_map(|m| m.depends_on.clone()).collect()
    } else {
        node.depends_on.clone()
    };
    let mut seen = std::collections::HashSet::new();
    while let Some(d) = stack.pop() {
        if !seen.insert(d.clone()) {
            continue;
        }
        match project.nodes.get(&d) {
            Some(n) if n.materialized() == "ephemeral" => stack.extend(n.depends_on.iter().cloned()),
            _ => out.push(d),
        }
    }
    out
}

/// Runs SQL statements (hooks) in the session, one after another.
pub async fn run_statements(engine: &Engine, what: &str, stmts: &[String]) -> anyhow::Result<()> {
    for s in stmts {
        engine.ctx.sql(s).await.map_err(|e| anyhow::anyhow!("{what}: {e}\n  statement: {s}"))?.collect().await?;
    }
    Ok(())
}

async fn run_node(
    engine: &Engine,
    node: &Node,
    sql: Option<&str>,
    incremental: bool,
    hooks: &(Vec<String>, Vec<String>),
    flags: test::TestFlags,
    batches: &batch::Batches,
    publisher: Option<&crate::postgres::Publisher>,
) -> anyhow::Result<(crate::materialize::Materialized, Option<anyhow::Result<crate::postgres::publish::Published>>)> {
    if node.resource_type == ResourceType::Test {
        let sql = sql.ok_or_else(|| anyhow::anyhow!("test {} was not compiled", node.name))?;
        let counted = batches.counted(engine, &node.unique_id).await;
        let m = test::run_test(engine, node, sql, flags, counted).await.map_err(|e| test::explain_error(node, &e))?;
        return Ok((m, None));
    }
    run_statements(engine, &format!("pre-hook of {}", node.name), &hooks.0).await?;
    let r = run_node_body(engine, node, sql, incremental).await?;
    run_statements(engine, &format!("post-hook of {}", node.name), &hooks.1).await?;
    let published = match publisher {
        Some(p) if crate::postgres::publish::wants_postgres(node) && node.materialized() != "ephemeral" => {
            // The session must see the version just committed.
            engine.catalog.invalidate(&node.schema, &node.alias);
            Some(p.publish(engine, node, r.version, incremental, false).await)
        }
        _ => None,
    };
    Ok((r, published))
}

async fn run_node_body(engine: &Engine, node: &Node, sql: Option<&str>, incremental: bool) -> anyhow::Result<crate::materialize::Materialized> {
    match node.resource_type {
        ResourceType::Seed => crate::seed::load_seed(engine, node).await,
        ResourceType::Model => {
            let sql = sql.ok_or_else(|| anyhow::anyhow!("model {} was not compiled", node.name))?;
            crate::materialize::materialize(engine, node, sql, incremental).await.map_err(|e| {
                anyhow::anyhow!(
                    "{e}\n  in model {} ({}); compiled SQL: target/compiled/{}",
                    node.name,
                    node.original_file_path,
                    crate::compile::compiled_path(node)
                )
            })
        }
        other => anyhow::bail!("{} {}: running {other} nodes is not supported yet", other, node.name),
    }
}

fn describe(node: &Node) -> String {
    match node.resource_type {
        ResourceType::Seed => format!("seed file {}", node.relation_name()),
        ResourceType::Test => format!("test {}", node.name),
        ResourceType::UnitTest => format!("unit_test {}", unit::display_name(node)),
        _ => format!("sql {} model {}", node.materialized(), node.relation_name()),
    }
}

fn start_line(i: usize, total: usize, node: &Node) -> String {
    format!("{i} of {total} START {}", describe(node))
}

fn print_result(printer: &Printer, i: usize, total: usize, node: &Node, r: &NodeResult) {
    let fields = serde_json::json!({"unique_id": r.unique_id, "status": r.status.as_str(), "rows": r.rows, "execution_time": r.execution_time.as_secs_f64()});
    match r.status {
        Status::Success => {
            let verb = match node.resource_type {
                ResourceType::Seed => "OK loaded",
                _ if node.materialized() == "ephemeral" => "OK",
                _ => "OK created",
            };
            let mut tag = match r.rows {
                Some(n) => format!("{} {} rows", r.message.split_whitespace().next().unwrap_or("OK"), fmt_thousands(n)),
                None => r.message.clone(),
            };
            if let Some(note) = &r.note {
                tag.push_str(&format!("; {note}"));
            }
            printer.node_line(i, total, verb, &describe(node), &tag, Tone::Good, Some(r.execution_time), fields);
        }
        Status::Error if matches!(node.resource_type, ResourceType::Test | ResourceType::UnitTest) => {
            printer.node_line(i, total, "ERROR", &test_label(node), "ERROR", Tone::Bad, Some(r.execution_time), fields);
        }
        Status::Error => {
            printer.node_line(i, total, "ERROR creating", &describe(node), "ERROR", Tone::Bad, Some(r.execution_time), fields);
        }
        Status::Skipped if node.resource_type == ResourceType::Test => {
            printer.node_line(i, total, "SKIP test", &node.name, "SKIP", Tone::Warn, None, fields);
        }
        Status::Skipped if node.resource_type == ResourceType::UnitTest => {
            printer.node_line(i, total, "SKIP unit_test", &unit::display_name(node), "SKIP", Tone::Warn, None, fields);
        }
        Status::Skipped => {
            printer.node_line(i, total, "SKIP relation", &node.relation_name(), "SKIP", Tone::Warn, None, fields);
        }
        Status::Pass => printer.node_line(i, total, "PASS", &test_label(node), "PASS", Tone::Good, Some(r.execution_time), fields),
        Status::Warn => {
            let n = r.failures.unwrap_or(0);
            printer.node_line(i, total, &format!("WARN {n}"), &test_label(node), &format!("WARN {n}"), Tone::Warn, Some(r.execution_time), fields);
        }
        Status::Fail => {
            let n = r.failures.unwrap_or(0);
            printer.node_line(i, total, &format!("FAIL {n}"), &test_label(node), &format!("FAIL {n}"), Tone::Bad, Some(r.execution_time), fields);
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

pub fn fmt_thousands(n: u64) -> String {
    let s = n.to_string();
    let mut out = String::new();
    for (i, c) in s.chars().enumerate() {
        if i > 0 && (s.len() - i) % 3 == 0 {
            out.push(',');
        }
        out.push(c);
    }
    out
}

/// Prints the closing summary and returns whether everything succeeded.
pub fn summarize(printer: &Printer, results: &[NodeResult], elapsed: Duration, project: &Project) -> bool {
    let count = |s: Status| results.iter().filter(|r| r.status == s).count();
    let pass = count(Status::Success) + count(Status::Pass);
    let warn = count(Status::Warn);
    let err = count(Status::Error) + count(Status::Fail);
    let skip = count(Status::Skipped);
    printer.info("");
    printer.info(format!("Finished running {} nodes in {:.2}s.", results.len(), elapsed.as_secs_f64()));
    if err > 0 {
        printer.info("");
        printer.info(printer.bad("Completed with errors:"));
        for r in results.iter().filter(|r| r.status.blocks()) {
            let n = &project.nodes[&r.unique_id];
            if r.status == Status::Fail && n.resource_type == ResourceType::UnitTest {
                printer.error(format!(
                    "Failure in unit_test {} ({})\n\n{}\n\n  compiled code at target/compiled/{}",
                    n.name,
                    n.patch_path.as_deref().unwrap_or(&n.original_file_path),
                    r.message,
                    crate::compile::compiled_path(n)
                ));
            } else if r.status == Status::Fail {
                let stored = r.stored_in.as_ref().map(|s| format!("\n  failures stored in {s}")).unwrap_or_default();
                printer.error(format!(
                    "Failure in test {} ({})\n  {}\n  compiled code at target/compiled/{}{stored}",
                    n.name,
                    n.patch_path.as_deref().unwrap_or(&n.original_file_path),
                    r.message,
                    crate::compile::compiled_path(n)
                ));
            } else {
                printer.error(format!("{} {}: {}", n.resource_type, n.name, r.message));
            }
        }
    } else {
        printer.info(printer.good("Completed successfully"));
    }
    printer.info("");
    if warn > 0 {
        for r in results.iter().filter(|r| r.status == Status::Warn) {
            let n = &project.nodes[&r.unique_id];
            printer.warn(format!("Warning in test {}: {}", n.name, r.message));
        }
    }
    printer.info(format!("Done. PASS={pass} WARN={warn} ERROR={err} SKIP={skip} TOTAL={}", results.len()));
    err == 0
}
