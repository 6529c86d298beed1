//! Executes selected nodes in dependency order with up to `threads` at
//! once (see [`schedule`]): seeds, models (with their hooks and publishing),
//! data and unit tests. A failed node skips its descendants while
//! independent branches go on; `--fail-fast` stops launching new work after
//! the first failure. The runner prints nothing: it reports through
//! [`events`], and `target/run_results.json` ([`results`]) is written from
//! the results.

pub mod batch;
pub mod events;
pub mod freshness;
pub mod microbatch;
pub mod results;
pub mod schedule;
pub mod test;
pub mod unit;

use std::collections::HashMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use crate::compile::{Compiled, Hook};
use crate::engine::Engine;
use crate::materialize::Materialized;
use crate::postgres::publish::Published;
use crate::project::load::Project;
use crate::project::nodes::{Materialization, Node, ResourceType};
use events::{Event, EventSink};
use schedule::Done;
use test::TestOutcome;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Status {
    Success,
    Error,
    Skipped,
    Pass,
    Warn,
    Fail,
    /// Nothing to run (an exposure in `dp build`), as dbt's NO-OP.
    NoOp,
    /// Some batches of a microbatch model failed, others were committed.
    PartialSuccess,
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
            Status::NoOp => "no-op",
            Status::PartialSuccess => "partial success",
        }
    }

    /// Whether this outcome blocks the node's dependants.
    pub fn blocks(self) -> bool {
        matches!(self, Status::Error | Status::Fail | Status::PartialSuccess)
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
    /// What publishing to PostgreSQL did.
    pub published: Option<Published>,
    /// A microbatch model's batches.
    pub batches: Option<microbatch::Outcome>,
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
    /// Nodes the runner does not build itself (`dp build`'s checkpoint
    /// gates): the callback gives their outcome, reported like a test's.
    pub virtual_nodes: HashMap<String, VirtualNode>,
    /// The window and "now" microbatch models plan from; `dp retry`'s batches.
    pub microbatch: Arc<microbatch::Options>,
}

/// Runs a virtual node: its outcome, reported like a test's.
pub type VirtualNode = Arc<dyn Fn(Arc<Engine>) -> futures::future::BoxFuture<'static, anyhow::Result<test::TestOutcome>> + Send + Sync>;

/// Runs `ids` (a topologically ordered selection), telling `events` as
/// nodes start and finish. Returns one result per id, in order.
pub async fn execute(
    project: Arc<Project>,
    ids: &[String],
    compiled: Arc<Compiled>,
    engine: Arc<Engine>,
    events: &dyn EventSink,
    opts: &RunOptions,
) -> Vec<NodeResult> {
    let t0 = Instant::now();
    let total = ids.len();
    let mut edges: Vec<(String, String)> = vec![];
    for u in ids {
        edges.extend(effective_parents(&project, u).into_iter().map(|p| (p, u.clone())));
    }
    edges.extend(opts.extra_edges.iter().cloned());
    events.on_event(&Event::RunStarted { total });
    // Microbatch models report their batches through a channel, told on
    // this task as they arrive (and before their model's NodeFinished).
    let (notes_tx, notes_rx) = tokio::sync::mpsc::unbounded_channel::<microbatch::Note>();
    let notes_rx = std::sync::Mutex::new(notes_rx);
    let report = |note: microbatch::Note| note.tell(&project, events);
    let drain = || {
        while let Ok(n) = notes_rx.lock().unwrap_or_else(|e| e.into_inner()).try_recv() {
            report(n);
        }
    };
    let start = |pos: usize, thread: usize| {
        let uid = &ids[pos];
        let mut node = project.nodes[uid].clone();
        node.config = compiled.config_of(&node);
        let node = Arc::new(node);
        events.on_event(&Event::NodeStarted { index: pos + 1, total, node: &node });
        let compiled = compiled.clone();
        let engine = engine.clone();
        let flags = opts.tests;
        let batches = opts.batches.clone();
        let project = project.clone();
        let publisher = opts.publisher.clone();
        let virtual_node = opts.virtual_nodes.get(uid).cloned();
        let micro = microbatch::Ctx { opts: opts.microbatch.clone(), notes: notes_tx.clone() };
        async move {
            let started_at = chrono::Utc::now();
            let t = Instant::now();
            let uid = &node.unique_id;
            // As dbt, a node whose SQL depends on the warehouse (or that
            // failed, maybe on a relation not built yet) compiles just
            // before it runs, once its parents are built.
            let now = (virtual_node.is_none() && compiled.needs_recompile(uid)).then(|| tokio::task::block_in_place(|| compiled.recompile(&project, uid)));
            let (sql, compile_error, incremental) = match now {
                Some(Ok((sql, inc))) => (Some(sql), None, inc),
                Some(Err(e)) => (compiled.sql.get(uid).cloned(), Some(e), false),
                None => (compiled.sql.get(uid).cloned(), compiled.errors.get(uid).cloned(), compiled.incremental.contains(uid)),
            };
            let r = match (compile_error, virtual_node) {
                (Some(e), _) => Err(anyhow::anyhow!("{e}")),
                (None, Some(f)) => f(engine.clone()).await.map(|t| Output::Tested(t, None)),
                (None, None) => {
                    let step = Step { engine: &engine, project: &project, compiled: &compiled, node: &node, incremental };
                    run_node(step, sql.clone(), flags, &batches, publisher.as_deref(), &micro).await
                }
            };
            if r.is_ok() {
                engine.catalog.invalidate(&node.schema, &node.alias);
            }
            let mut result = NodeResult::error(node.unique_id.clone(), String::new(), started_at, Duration::ZERO, thread);
            result.compiled_code = sql;
            let blocks = match r {
                Ok(out) => out.fill(&node, &mut result),
                Err(e) => {
                    result.message = format!("{e:#}");
                    true
                }
            };
            result.completed_at = chrono::Utc::now();
            result.execution_time = t.elapsed();
            Done { result, blocks }
        }
    };
    let finished = |pos: usize, r: &NodeResult| {
        drain();
        events.on_event(&Event::NodeFinished { index: pos + 1, total, node: &project.nodes[&ids[pos]], result: r });
    };
    let drive = schedule::drive(ids, &edges, opts.threads, opts.fail_fast, start, finished);
    let pump = async {
        while let Some(n) = std::future::poll_fn(|cx| notes_rx.lock().unwrap_or_else(|e| e.into_inner()).poll_recv(cx)).await {
            report(n);
        }
        std::future::pending::<()>().await
    };
    let ran = tokio::select! {
        biased;
        r = drive => r,
        () = pump => unreachable!("the batch channel stays open while nodes run"),
    };
    drain();
    // Whatever did not run was skipped.
    let mut results = Vec::with_capacity(total);
    for (pos, r) in ran.into_iter().enumerate() {
        let r = r.unwrap_or_else(|| {
            let uid = &ids[pos];
            let mut r = NodeResult::error(uid.clone(), "SKIPPED".into(), chrono::Utc::now(), Duration::ZERO, 0);
            r.status = Status::Skipped;
            r.compiled_code = compiled.sql.get(uid).cloned();
            events.on_event(&Event::NodeFinished { index: pos + 1, total, node: &project.nodes[uid], result: &r });
            r
        });
        results.push(r);
    }
    events.on_event(&Event::RunFinished { results: &results, elapsed: t0.elapsed() });
    results
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
            Some(n) if n.materialized() == Materialization::Ephemeral => stack.extend(n.depends_on.iter().cloned()),
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

/// What running one node produced.
enum Output {
    /// A relation was built (and maybe published); a microbatch model's
    /// batches.
    Built { m: Materialized, published: Option<anyhow::Result<Published>>, batches: Option<microbatch::Outcome> },
    /// A data or unit test was judged (unit tests compile as they run).
    Tested(TestOutcome, Option<String>),
    /// Nothing ran (an exposure).
    NoOp,
}

impl Output {
    /// Fills the node's result; returns whether it blocks the node's
    /// descendants. A failed publish leaves the Delta table committed: the
    /// node is an error, but what depends on it can still build.
    fn fill(self, node: &Node, r: &mut NodeResult) -> bool {
        match self {
            Output::NoOp => {
                r.status = Status::NoOp;
                r.message = "NO-OP".into();
                false
            }
            Output::Tested(t, compiled) => {
                if compiled.is_some() {
                    r.compiled_code = compiled;
                }
                r.status = t.status;
                r.message = t.message.unwrap_or_default();
                r.failures = Some(t.failures);
                r.stored_in = t.stored_in;
                r.sample = t.sample;
                t.status.blocks()
            }
            Output::Built { batches: Some(o), published, .. } => {
                let (status, message) = o.status();
                r.status = status;
                r.message = if status == Status::Error { o.errors() } else { message };
                // as dbt: `[SUCCESS in 0.75s]`, no row count
                r.batches = Some(o);
                match published {
                    Some(Err(e)) if status == Status::Success => {
                        r.status = Status::Error;
                        r.message = format!("the warehouse table is built, but publishing to PostgreSQL failed: {e:#}");
                        false
                    }
                    p => {
                        r.published = p.and_then(Result::ok);
                        status.blocks()
                    }
                }
            }
            Output::Built { m, published: Some(Err(e)), .. } => {
                let version = m.version.map(|v| format!(" (version {v})")).unwrap_or_default();
                r.status = Status::Error;
                r.rows = m.rows;
                r.message = format!(
                    "the warehouse table is built{version}, but publishing to PostgreSQL failed: {e:#}\n  hint: once PostgreSQL is reachable, `dp publish -s {}` (or the next `dp run`) brings it up to date",
                    node.name
                );
                false
            }
            Output::Built { m, published, .. } => {
                r.status = Status::Success;
                r.message = m.message;
                r.rows = m.rows;
                r.published = published.and_then(Result::ok);
                false
            }
        }
    }
}

/// The node being run and what it runs with.
#[derive(Clone, Copy)]
struct Step<'a> {
    engine: &'a Engine,
    project: &'a Project,
    compiled: &'a Compiled,
    node: &'a Node,
    incremental: bool,
}

impl Step<'_> {
    /// Renders the node's pre- or post-hooks now and runs them in order.
    async fn hooks(&self, which: Hook) -> anyhow::Result<()> {
        let what = format!("{} of {}", if which == Hook::Pre { "pre-hook" } else { "post-hook" }, self.node.name);
        let stmts = tokio::task::block_in_place(|| self.compiled.hooks(self.project, self.node, which, self.incremental))
            .map_err(|e| anyhow::anyhow!("{what}: {e}"))?;
        run_statements(self.engine, &what, &stmts).await
    }
}

async fn run_node(
    step: Step<'_>,
    sql: Option<String>,
    flags: test::TestFlags,
    batches: &batch::Batches,
    publisher: Option<&crate::postgres::Publisher>,
    micro: &microbatch::Ctx,
) -> anyhow::Result<Output> {
    let Step { engine, project, node, incremental, .. } = step;
    match node.resource_type {
        ResourceType::Exposure | ResourceType::SavedQuery => return Ok(Output::NoOp),
        ResourceType::UnitTest => {
            let (t, compiled) = unit::run_unit_test(engine, project, node).await?;
            return Ok(Output::Tested(t, Some(compiled)));
        }
        ResourceType::Test => {
            let sql = sql.ok_or_else(|| anyhow::anyhow!("test {} was not compiled", node.name))?;
            let counted = batches.counted(engine, &node.unique_id).await;
            let t = test::run_test(engine, node, &sql, flags, counted).await.map_err(|e| test::explain_error(node, &e))?;
            return Ok(Output::Tested(t, None));
        }
        _ => {}
    }
    step.hooks(Hook::Pre).await?;
    let (m, batches) = if microbatch::applies(node) {
        let o = microbatch::run(engine, project, step.compiled, node, incremental, micro).await.map_err(|e| in_model(node, e))?;
        (o.materialized(), Some(o))
    } else {
        (run_node_body(engine, project, node, sql.as_deref(), incremental).await?, None)
    };
    // The post-hooks see the relation just built.
    engine.catalog.invalidate(&node.schema, &node.alias);
    step.hooks(Hook::Post).await?;
    let published = match publisher {
        Some(p) if crate::postgres::publish::wants_postgres(node) && node.materialized() != Materialization::Ephemeral => {
            // The session must see the version just committed.
            engine.catalog.invalidate(&node.schema, &node.alias);
            Some(p.publish(engine, node, m.version, incremental, false).await)
        }
        _ => None,
    };
    Ok(Output::Built { m, published, batches })
}

/// An error with the model and its compiled SQL named.
fn in_model(node: &Node, e: anyhow::Error) -> anyhow::Error {
    anyhow::anyhow!("{e}\n  in model {} ({}); compiled SQL: target/compiled/{}", node.name, node.original_file_path, crate::compile::compiled_path(node))
}

async fn run_node_body(
    engine: &Engine,
    project: &Project,
    node: &Node,
    sql: Option<&str>,
    incremental: bool,
) -> anyhow::Result<crate::materialize::Materialized> {
    match node.resource_type {
        ResourceType::Seed => crate::seed::load_seed(engine, node).await,
        ResourceType::Model => {
            let sql = sql.ok_or_else(|| anyhow::anyhow!("model {} was not compiled", node.name))?;
            crate::materialize::materialize(engine, node, sql, incremental).await.map_err(|e| in_model(node, e))
        }
        ResourceType::Snapshot => {
            let sql = sql.ok_or_else(|| anyhow::anyhow!("snapshot {} was not compiled", node.name))?;
            crate::materialize::snapshot::snapshot(engine, &project.jinja, node, sql).await
        }
        other => anyhow::bail!("{} {}: running {other} nodes is not supported yet", other, node.name),
    }
}
