//! Data tests: the compiled test query returns failing rows; dp wraps it
//! the way dbt's test materialization does (`fail_calc`, `warn_if`,
//! `error_if`, `limit`) and maps the counts to pass / warn / fail by
//! `severity`, with dbt's failure count (0 on pass) and message ("Got 3
//! results, configured to fail if >2"). With `store_failures`, the failing
//! rows are kept as a Delta table `<schema>_dbt_test__audit.<test name>`
//! (a view with `store_failures_as: view`, see [`stored_as`]);
//! with `--show-failures`, the first rows of a warning or failing test are
//! kept for printing after the summary.

use datafusion::arrow::array::{Array, AsArray};
use datafusion::arrow::datatypes::Int64Type;
use datafusion::arrow::record_batch::RecordBatch;

use super::Status;
use super::batch::Counted;
use crate::engine::Engine;
use crate::project::nodes::Node;

/// How many failing rows `--show-failures` prints per test.
pub const SHOW_FAILURES_ROWS: usize = 10;

/// The outcome of one data test.
#[derive(Debug, Clone)]
pub struct TestOutcome {
    pub status: Status,
    /// dbt's `failures`: the fail_calc value on warn/fail, 0 on pass.
    pub failures: u64,
    /// dbt's message on warn/fail: `Got 3 results, configured to fail if >2`.
    pub message: Option<String>,
    /// The relation holding the failing rows (store_failures).
    pub stored_in: Option<String>,
    /// The first failing rows (`--show-failures`, warn/fail only).
    pub sample: Option<Vec<RecordBatch>>,
}

/// What a test run needs beyond the node and its SQL.
#[derive(Debug, Clone, Copy, Default)]
pub struct TestFlags {
    /// `--store-failures`.
    pub store_failures: bool,
    /// `--show-failures`.
    pub show_failures: bool,
}

pub(crate) fn cfg(node: &Node, key: &str, default: &str) -> String {
    match node.config.get(key) {
        Some(serde_json::Value::String(s)) => s.clone(),
        Some(serde_json::Value::Number(n)) => n.to_string(),
        _ => default.to_string(),
    }
}

/// Whether the test keeps its failing rows (config, else `--store-failures`).
fn stores_failures(node: &Node, flag: bool) -> bool {
    match node.config.get("store_failures") {
        Some(serde_json::Value::Bool(b)) => *b,
        _ => flag,
    }
}

/// The relation a test keeps its failing rows in.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StoredAs {
    Table,
    View,
}

/// Where the test keeps its failing rows, as dbt decides: `store_failures_as`
/// (`table`, `view`, or `ephemeral`: nowhere) wins over `store_failures` at
/// any level; without it, `store_failures` (else `--store-failures`) stores
/// a table. `Err`: a value dbt does not accept (the test errors, as in dbt's
/// test materialization, and the rest of the run goes on).
pub fn stored_as(node: &Node, flag: bool) -> Result<Option<StoredAs>, String> {
    match node.config.get("store_failures_as") {
        None | Some(serde_json::Value::Null) => Ok(stores_failures(node, flag).then_some(StoredAs::Table)),
        Some(serde_json::Value::String(s)) if s == "ephemeral" => Ok(None),
        Some(serde_json::Value::String(s)) if s == "table" => Ok(Some(StoredAs::Table)),
        Some(serde_json::Value::String(s)) if s == "view" => Ok(Some(StoredAs::View)),
        Some(v) => {
            let v = v.as_str().map(String::from).unwrap_or_else(|| v.to_string());
            Err(format!("'{v}' is not a valid value for `store_failures_as`. Accepted values are: ['ephemeral', 'table', 'view']"))
        }
    }
}

/// dbt's judgement of a test from its fail_calc value and whether it
/// crossed `warn_if` / `error_if`.
pub fn judge(node: &Node, failures: i64, should_warn: bool, should_error: bool) -> (Status, u64, Option<String>) {
    let severity = cfg(node, "severity", "ERROR").to_ascii_uppercase();
    let n = failures.max(0) as u64;
    let got = format!("Got {n} result{}", if n == 1 { "" } else { "s" });
    if severity == "ERROR" && should_error {
        (Status::Fail, n, Some(format!("{got}, configured to fail if {}", cfg(node, "error_if", "!= 0"))))
    } else if should_warn {
        (Status::Warn, n, Some(format!("{got}, configured to warn if {}", cfg(node, "warn_if", "!= 0"))))
    } else {
        (Status::Pass, 0, None)
    }
}

/// Runs one test; `counted` carries its verdict inputs when a batched query
/// (`batch.rs`) already computed them.
pub async fn run_test(engine: &Engine, node: &Node, sql: &str, flags: TestFlags, counted: Option<Counted>) -> anyhow::Result<TestOutcome> {
    stored_as(node, flags.store_failures).map_err(|e| anyhow::anyhow!("{e}\n  hint: set store_failures_as to table, view or ephemeral"))?;
    let Counted { failures, should_warn: warn, should_error: error } = match counted {
        Some(c) => c,
        None => count_failures(engine, node, sql).await?,
    };
    let (status, failures, message) = judge(node, failures, warn, error);
    let mut outcome = TestOutcome { status, failures, message, stored_in: None, sample: None };
    finish(engine, node, sql, flags, &mut outcome).await?;
    Ok(outcome)
}

/// The error of a test that could not run, naming the test, its file and,
/// when the tested column is missing, the column and the model.
pub fn explain_error(node: &Node, e: &anyhow::Error) -> anyhow::Error {
    let text = format!("{e}");
    let at = match node.line {
        Some(l) => format!("{}:{l}", node.patch_path.as_deref().unwrap_or(&node.original_file_path)),
        None => node.patch_path.clone().unwrap_or_else(|| node.original_file_path.clone()),
    };
    let compiled = format!("compiled SQL: target/compiled/{}", crate::compile::compiled_path(node));
    if let (Some(col), Some(target)) = (&node.column_name, &node.attached_node)
        && text.contains("No field named")
        && text.to_ascii_lowercase().contains(&col.to_ascii_lowercase())
    {
        let mut parts = target.splitn(3, '.');
        let kind = parts.next().unwrap_or("model");
        let _package = parts.next();
        let name = parts.next().unwrap_or(target);
        return anyhow::anyhow!(
            "column '{col}' not found in {kind} {name}\n  hint: fix the column name in {at}, or add the column to {kind} {name}\n  ({})\n  {compiled}",
            text.lines().next().unwrap_or_default()
        );
    }
    anyhow::anyhow!("{text}\n  in test {} ({at}); {compiled}", node.name)
}

/// The test's own query, wrapped as dbt's test materialization does.
async fn count_failures(engine: &Engine, node: &Node, sql: &str) -> anyhow::Result<Counted> {
    let fail_calc = cfg(node, "fail_calc", "count(*)");
    let warn_if = cfg(node, "warn_if", "!= 0");
    let error_if = cfg(node, "error_if", "!= 0");
    let limit = match node.config.get("limit") {
        Some(serde_json::Value::Number(n)) => format!("\nlimit {n}"),
        _ => String::new(),
    };
    let wrapped = format!(
        "select\n  cast({fail_calc} as bigint) as failures,\n  case when {fail_calc} {warn_if} then 1 else 0 end as should_warn,\n  case when {fail_calc} {error_if} then 1 else 0 end as should_error\nfrom (\n{sql}{limit}\n) dbt_internal_test"
    );
    let batches = engine.sql(&wrapped).await?.collect().await?;
    let mut c = Counted { failures: 0, should_warn: false, should_error: false };
    if let Some(b) = batches.iter().find(|b| b.num_rows() > 0) {
        let f = b.column(0).as_primitive::<Int64Type>();
        c.failures = if f.is_null(0) { 0 } else { f.value(0) };
        c.should_warn = b.column(1).as_primitive::<Int64Type>().value(0) == 1;
        c.should_error = b.column(2).as_primitive::<Int64Type>().value(0) == 1;
    }
    Ok(c)
}

/// What follows the verdict: storing failing rows and sampling them.
pub async fn finish(engine: &Engine, node: &Node, sql: &str, flags: TestFlags, outcome: &mut TestOutcome) -> anyhow::Result<()> {
    if let Ok(Some(kind)) = stored_as(node, flags.store_failures) {
        let dir = engine.warehouse.table(&node.schema, &node.alias);
        // the other kind of relation by that name goes first, as dbt drops it
        if engine.warehouse.kind(&node.schema, &node.alias).await?.is_some_and(|k| (k == crate::storage::RelKind::View) != (kind == StoredAs::View)) {
            engine.warehouse.drop_relation(&dir).await?;
        }
        match kind {
            StoredAs::Table => {
                let plan = engine.sql(sql).await?.into_unoptimized_plan();
                crate::materialize::delta::overwrite(engine, &dir, plan, node).await?;
            }
            StoredAs::View => {
                crate::engine::idents::plan(&engine.ctx.state(), sql).await?;
                crate::materialize::delta::write_view(engine, &dir, sql).await?;
            }
        }
        engine.catalog.invalidate(&node.schema, &node.alias);
        outcome.stored_in = Some(node.relation_name());
    }
    if flags.show_failures && matches!(outcome.status, Status::Warn | Status::Fail) {
        let limit = match node.config.get("limit").and_then(|v| v.as_u64()) {
            Some(n) => (n as usize).min(SHOW_FAILURES_ROWS),
            None => SHOW_FAILURES_ROWS,
        };
        let df = engine.sql(sql).await?.limit(0, Some(limit))?;
        outcome.sample = Some(df.collect().await?);
    }
    Ok(())
}
