//! Data tests: the compiled test query returns failing rows; dp wraps it
//! the way dbt's test materialization does (`fail_calc`, `warn_if`,
//! `error_if`, `limit`) and maps the counts to pass / warn / fail by
//! `severity`. With `store_failures`, the failing rows are kept as a Delta
//! table `<schema>_dbt_test__audit.<test name>`.

use datafusion::arrow::array::{Array, AsArray};
use datafusion::arrow::datatypes::Int64Type;

use super::Status;
use crate::engine::Engine;
use crate::materialize::Materialized;
use crate::project::nodes::Node;

fn cfg<'a>(node: &'a Node, key: &str, default: &'a str) -> String {
    match node.config.get(key) {
        Some(serde_json::Value::String(s)) => s.clone(),
        Some(serde_json::Value::Number(n)) => n.to_string(),
        _ => default.to_string(),
    }
}

/// Whether the test keeps its failing rows (config, else `--store-failures`).
pub fn stores_failures(node: &Node, flag: bool) -> bool {
    match node.config.get("store_failures") {
        Some(serde_json::Value::Bool(b)) => *b,
        _ => flag,
    }
}

pub async fn run_test(engine: &Engine, node: &Node, sql: &str, store_flag: bool) -> anyhow::Result<Materialized> {
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
    let batches = engine.ctx.sql(&wrapped).await?.collect().await?;
    let (mut failures, mut warn, mut error) = (0i64, false, false);
    if let Some(b) = batches.iter().find(|b| b.num_rows() > 0) {
        let f = b.column(0).as_primitive::<Int64Type>();
        failures = if f.is_null(0) { 0 } else { f.value(0) };
        warn = b.column(1).as_primitive::<Int64Type>().value(0) == 1;
        error = b.column(2).as_primitive::<Int64Type>().value(0) == 1;
    }
    let severity = cfg(node, "severity", "ERROR").to_ascii_uppercase();
    let status = if severity == "ERROR" && error {
        Status::Fail
    } else if warn {
        Status::Warn
    } else {
        Status::Pass
    };
    let mut message = String::new();
    if stores_failures(node, store_flag) {
        let dir = engine.warehouse.table(&node.schema, &node.alias);
        let plan = engine.ctx.sql(sql).await?.into_unoptimized_plan();
        crate::materialize::delta::overwrite(engine, &dir, plan, node).await?;
        engine.catalog.invalidate(&node.schema, &node.alias);
        message = format!("failures stored in {}", node.relation_name());
    }
    Ok(Materialized { rows: None, message, version: None, test: Some((status, failures.max(0) as u64)) })
}
