//! `target/run_results.json` in dbt's shape.

use serde_json::{Value, json};
use std::path::Path;

use super::{NodeResult, Status};
use crate::project::load::Project;

pub fn run_results(project: &Project, results: &[NodeResult], elapsed: f64, invocation_id: &str, command: &str) -> Value {
    let items: Vec<Value> = results
        .iter()
        .map(|r| {
            let n = &project.nodes[&r.unique_id];
            let ts = |t: chrono::DateTime<chrono::Utc>| t.to_rfc3339_opts(chrono::SecondsFormat::Micros, true);
            json!({
                "status": r.status.as_str(),
                "timing": if r.status == Status::Skipped { json!([]) } else { json!([
                    {"name": "compile", "started_at": ts(r.started_at), "completed_at": ts(r.started_at)},
                    {"name": "execute", "started_at": ts(r.started_at), "completed_at": ts(r.completed_at)},
                ]) },
                "thread_id": format!("Thread-{}", r.thread),
                "execution_time": r.execution_time.as_secs_f64(),
                "adapter_response": if matches!(r.status, Status::Success | Status::Pass | Status::Warn | Status::Fail) { json!({
                    "_message": format!("{} {}", r.message, r.rows.map(|x| x.to_string()).unwrap_or_default()).trim().to_string(),
                    "code": r.message,
                    "rows_affected": r.rows,
                }) } else { json!({}) },
                "message": if r.status == Status::Pass { Value::Null } else { Value::String(r.message.clone()) },
                "failures": r.failures,
                "unique_id": r.unique_id,
                "compiled": r.compiled_code.is_some(),
                "compiled_code": r.compiled_code,
                "relation_name": if matches!(n.resource_type, crate::project::nodes::ResourceType::Test | crate::project::nodes::ResourceType::UnitTest) { Value::Null } else { json!(n.relation_name()) },
                "batch_results": null,
            })
        })
        .collect();
    json!({
        "metadata": {
            "dbt_schema_version": "https://schemas.getdbt.com/dbt/run-results/v6.json",
            "dbt_version": "1.11.0",
            "generated_at": chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Micros, true),
            "invocation_id": invocation_id,
            "env": {},
        },
        "results": items,
        "elapsed_time": elapsed,
        "args": {"which": command},
    })
}

pub fn write(dir: &Path, v: &Value) -> anyhow::Result<()> {
    std::fs::create_dir_all(dir)?;
    let tmp = dir.join(format!("run_results.json.{}.tmp", std::process::id()));
    std::fs::write(&tmp, serde_json::to_vec_pretty(v)?)?;
    std::fs::rename(&tmp, dir.join("run_results.json"))?;
    Ok(())
}
