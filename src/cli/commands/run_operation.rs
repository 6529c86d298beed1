//! `dp run-operation MACRO [--args '{k: v}']`: calls a macro of the project
//! (or of a package: `pkg.macro`) with the warehouse open, so `run_query`
//! and `{% call statement() %}` run SQL, and prints what it logs with
//! `log(msg, info=True)` as it goes. Exit codes as dbt's: 0 done, 1 the
//! macro failed (or `--args` is not a mapping), 2 no macro of that name.

use std::process::ExitCode;
use std::sync::Arc;
use std::time::Duration;

use crate::cli::Printer;
use crate::cli::args::GlobalArgs;
use crate::cli::context::{LoadArgs, load};
use crate::engine::Engine;

pub async fn run(g: &GlobalArgs, macro_name: &str, args: Option<&str>, printer: &Printer) -> anyhow::Result<ExitCode> {
    let l = load(g, LoadArgs { which: "run-operation", ..Default::default() }, printer)?;
    let (package, name) = match macro_name.split_once('.') {
        Some((p, n)) => (Some(p), n),
        None => (None, macro_name),
    };
    let table = &l.project.jinja.macros;
    let exists = match package {
        Some(p) => table.get(p, name).is_some(),
        None => table.by_package.values().any(|m| m.contains_key(name)),
    };
    if !exists {
        let known = table.by_package.get(&table.root).into_iter().flat_map(|m| m.keys().map(String::as_str));
        let hint = crate::util::suggest(name, known).map(|s| format!("did you mean '{s}'? ")).unwrap_or_default();
        printer.error(format!(
            "dbt could not find a macro with the name '{macro_name}' in any package\n  hint: {hint}check the name, or install package dependencies with `dp deps`"
        ));
        return Ok(ExitCode::from(2));
    }
    let kwargs = match parse_args(args) {
        Ok(k) => k,
        Err(e) => {
            printer.error(e);
            return Ok(ExitCode::from(1));
        }
    };
    let engine = Arc::new(Engine::new(&l.project, None)?);
    engine.preflight().await?;
    // its `create table ... as` and `drop table` land in the warehouse, as dbt-duckdb's in the database file
    if let Some(db) = crate::materialize::statements::WarehouseDb::new(engine.clone(), &l.project) {
        l.project.jinja.set_database(Arc::new(db));
    }
    // `{{ macro(k=fromjson('...'), ...) }}`: each argument keeps its type
    let call_args: Vec<String> = kwargs.iter().map(|(k, v)| format!("{k}=fromjson('{}')", v.to_string().replace('\\', "\\\\").replace('\'', "\\'"))).collect();
    let source = format!("{{{{ {macro_name}({}) }}}}", call_args.join(", "));
    // The macro runs on its own thread; its log lines are printed as they come.
    let (tx, rx) = std::sync::mpsc::channel::<String>();
    l.project.jinja.set_log_sink(Some(Arc::new(move |m: &str| {
        let _ = tx.send(m.to_string());
    })));
    let project = &l.project;
    let started = chrono::Utc::now();
    let result = tokio::task::block_in_place(|| {
        std::thread::scope(|s| {
            let call = s.spawn(|| crate::engine::compile_inline(project, &source));
            while !call.is_finished() {
                if let Ok(m) = rx.recv_timeout(Duration::from_millis(20)) {
                    printer.info(m);
                }
            }
            call.join().unwrap_or_else(|_| Err(anyhow::anyhow!("the macro panicked")))
        })
    });
    l.project.jinja.set_log_sink(None);
    for m in rx.try_iter() {
        printer.info(m);
    }
    let uid = format!("macro.{}.{name}", package.map(str::to_string).unwrap_or_else(|| owner(table, name)));
    let v = run_results(&uid, result.is_ok(), started, &l.invocation_id, macro_name);
    if let Err(e) = crate::runner::results::write(&l.project.settings.target_dir(), &v) {
        printer.warn(format!("could not write run_results.json: {e:#}"));
    }
    match result {
        Ok(_) => Ok(ExitCode::SUCCESS),
        Err(e) => {
            printer.error(format!("Encountered an error while running operation: {e:#}"));
            Ok(ExitCode::from(1))
        }
    }
}

/// The package an unqualified macro name resolves to (as Jinja resolves it).
fn owner(table: &crate::jinja::MacroTable, name: &str) -> String {
    table.unqualified_order().into_iter().find(|p| table.get(p, name).is_some()).unwrap_or_else(|| table.root.clone())
}

/// dbt's run_results.json of an operation: one result, the macro's.
fn run_results(uid: &str, ok: bool, started: chrono::DateTime<chrono::Utc>, invocation_id: &str, macro_name: &str) -> serde_json::Value {
    let done = chrono::Utc::now();
    let ts = |t: chrono::DateTime<chrono::Utc>| t.to_rfc3339_opts(chrono::SecondsFormat::Micros, true);
    let elapsed = (done - started).num_microseconds().unwrap_or(0) as f64 / 1e6;
    let metadata = crate::compile::manifest::artifact_metadata(
        "https://schemas.getdbt.com/dbt/run-results/v6.json",
        invocation_id,
        &crate::compile::manifest::now_stamp(),
    );
    serde_json::json!({
        "metadata": metadata,
        "results": [{
            "status": if ok { "success" } else { "error" },
            "timing": [
                {"name": "compile", "started_at": ts(started), "completed_at": ts(started)},
                {"name": "execute", "started_at": ts(started), "completed_at": ts(done)},
            ],
            "thread_id": "MainThread",
            "execution_time": elapsed,
            "adapter_response": {},
            "message": null,
            "failures": if ok { 0 } else { 1 },
            "unique_id": uid,
            "compiled": false,
            "compiled_code": null,
            "relation_name": null,
            "batch_results": null,
        }],
        "elapsed_time": elapsed,
        "args": {"which": "run-operation", "macro": macro_name},
    })
}

/// `--args`: a YAML mapping of argument names to values.
fn parse_args(args: Option<&str>) -> Result<serde_json::Map<String, serde_json::Value>, String> {
    let Some(text) = args.filter(|a| !a.trim().is_empty()) else { return Ok(Default::default()) };
    let v: serde_json::Value = crate::util::yaml::from_str(text)
        .map_err(|e| format!("--args is not valid YAML: {e}\n  hint: pass a mapping, e.g. --args '{{name: Ann, times: 2}}'"))?;
    match v {
        serde_json::Value::Object(o) => {
            if let Some(bad) = o.keys().find(|k| !k.chars().all(|c| c.is_ascii_alphanumeric() || c == '_') || k.is_empty()) {
                return Err(format!("--args: '{bad}' is not an argument name"));
            }
            Ok(o)
        }
        serde_json::Value::Null => Ok(Default::default()),
        other => Err(format!("--args must be a mapping of argument names to values, not {other}\n  hint: --args '{{name: Ann, times: 2}}'")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn args_are_a_yaml_mapping() {
        let a = parse_args(Some("{name: Ann, times: 2, tags: [a, b]}")).unwrap();
        assert_eq!(serde_json::Value::Object(a), serde_json::json!({"name": "Ann", "times": 2, "tags": ["a", "b"]}));
        assert!(parse_args(None).unwrap().is_empty());
        assert!(parse_args(Some("[1, 2]")).unwrap_err().starts_with("--args must be a mapping"));
    }
}
