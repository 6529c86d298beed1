//! Unit tests (dbt 1.8 `unit_tests:`): the tested model's SQL runs on
//! fixture rows instead of its real inputs, without building anything.
//!
//! Each `given` input becomes a CTE (`__dbt__cte__<name>`) injected into
//! the model's SQL, its columns typed like the real upstream relation when
//! that exists in the warehouse (dbt requires it to), or like a seed's CSV
//! infers when the seed is not loaded; otherwise the rows keep their own
//! literal types. `overrides` replace macros
//! (`is_incremental`), vars and env vars while rendering. The actual rows,
//! projected on the expected columns (the first expected row's keys, or
//! every column when `expect` has no rows or is SQL), are compared with the
//! expected rows, cast to the model's output types, as multisets. Outcome as
//! dbt's: `pass` (failures 0) or `fail` (failures 1, the message a row
//! diff, see [`diff`]).

pub mod diff;
pub mod fixture;
pub mod spec;

use datafusion::arrow::datatypes::Schema;
use std::collections::HashMap;

use super::Status;
use super::test::TestOutcome;
use crate::compile::ctes::inject_ctes;
use crate::compile::unit::{UnitInputs, render_model};
use crate::engine::Engine;
use crate::project::load::Project;
use crate::project::nodes::{Materialization, Node, ResourceType};
use crate::util::ident::{quote_ident, relation_name};
use spec::{Input, Rows};

/// The real relation a `given` input stands for, and whether it is a seed.
fn upstream<'a>(project: &'a Project, model: &'a Node, input: &Input) -> Option<&'a Node> {
    match input {
        Input::This => Some(model),
        Input::Ref { name, package } => project.nodes.values().find(|n| {
            matches!(n.resource_type, ResourceType::Model | ResourceType::Seed | ResourceType::Snapshot)
                && &n.name == name
                && package.as_ref().is_none_or(|p| p == &n.package_name)
        }),
        Input::Source { source, table } => project
            .nodes
            .values()
            .find(|n| n.resource_type == ResourceType::Source && &n.name == table && n.source.as_ref().is_some_and(|s| &s.source_name == source)),
    }
}

fn relation_of(n: &Node) -> String {
    match &n.source {
        Some(s) if n.resource_type == ResourceType::Source => relation_name(&n.schema, &s.identifier),
        _ => n.relation_name(),
    }
}

/// The columns of the real relation: the warehouse's when it exists, a
/// seed's inferred from its CSV when it is not loaded yet, else None.
async fn columns_of(engine: &Engine, node: &Node) -> Option<Schema> {
    if node.materialized() == Materialization::Ephemeral {
        return None;
    }
    if let Ok(t) = engine.ctx.table(relation_of(node).as_str()).await {
        return Some(t.schema().as_arrow().clone());
    }
    if node.resource_type == ResourceType::Seed {
        let bytes = std::fs::read(engine.project_root.join(&node.original_file_path)).ok()?;
        let data = crate::seed::infer::read_seed(&node.original_file_path, &bytes, &crate::seed::options(node).ok()?).ok()?;
        return Some(data.schema.as_ref().clone());
    }
    None
}

/// The test's SQL (actual rows union expected rows, as dbt compiles it) and its outcome.
pub async fn run_unit_test(engine: &Engine, project: &Project, node: &Node) -> anyhow::Result<(TestOutcome, String)> {
    let name = &node.name;
    let is_seed = |i: &Input| {
        matches!(i, Input::Ref { .. })
            && project.nodes.values().any(|n| n.resource_type == ResourceType::Seed && matches!(i, Input::Ref { name, .. } if &n.name == name))
    };
    let spec = spec::parse(&project.settings, name, &node.extra, &is_seed).map_err(anyhow::Error::msg)?;
    let model = project
        .nodes
        .values()
        .find(|n| n.resource_type == ResourceType::Model && n.name == spec.model)
        .ok_or_else(|| anyhow::anyhow!("unit test '{name}': model '{}' does not exist", spec.model))?;

    if model.materialized() == Materialization::Incremental && !spec.overrides.macros.get("is_incremental").is_some_and(|v| v.is_boolean()) {
        anyhow::bail!(
            "Boolean override for 'is_incremental' must be provided for unit test '{name}' in model '{}'\n  hint: add `overrides: {{macros: {{is_incremental: false}}}}` (or true, with a `this` input)",
            model.name
        );
    }
    // fixtures
    let mut inputs = UnitInputs::default();
    let mut ctes = vec![];
    for g in &spec.given {
        let up = upstream(project, model, &g.input).ok_or_else(|| anyhow::anyhow!("unit test '{name}': input {} was not found in the project", g.text))?;
        let cte = match &g.input {
            Input::This => format!("__dbt__cte__{}", model.name),
            Input::Ref { name, .. } => format!("__dbt__cte__{name}"),
            Input::Source { source, table } => format!("__dbt__cte__{source}__{table}"),
        };
        let what = format!("unit test '{name}', given {}", g.text);
        let sql = match &g.rows {
            Rows::Sql(s) => s.clone(),
            Rows::Inline(rows) => fixture::fixture_sql(rows, columns_of(engine, up).await.as_ref(), &what).map_err(anyhow::Error::msg)?,
            Rows::Seed => {
                let text = std::fs::read_to_string(project.settings.root.join(&up.original_file_path))
                    .map_err(|e| anyhow::anyhow!("{what}: cannot read seed file {}: {e}", up.original_file_path))?;
                let rows = spec::csv_rows(&text).map_err(|e| anyhow::anyhow!("{what}: {e}"))?;
                fixture::fixture_sql(&rows, columns_of(engine, up).await.as_ref(), &what).map_err(anyhow::Error::msg)?
            }
        };
        ctes.push(format!(" {cte} as (\n{sql}\n)"));
        match &g.input {
            Input::This => inputs.this = Some(cte),
            Input::Ref { name, .. } => {
                inputs.refs.insert(name.clone(), cte);
            }
            Input::Source { source, table } => {
                inputs.sources.insert((source.clone(), table.clone()), cte);
            }
        }
    }
    let rendered = render_model(project, name, model, inputs, &spec.overrides)?;
    let actual_sql = inject_ctes(&rendered, &ctes);

    // the model's output columns, and the ones the test compares
    let actual_schema = engine
        .sql(&actual_sql)
        .await
        .map_err(|e| anyhow::anyhow!("unit test '{name}': model '{}' on the fixtures: {e}", model.name))?
        .schema()
        .as_arrow()
        .clone();
    let mut expected_sql = None;
    let tested: Vec<String> = match &spec.expect {
        Rows::Inline(rows) if !rows.is_empty() => rows[0].keys().cloned().collect(),
        Rows::Sql(s) => {
            expected_sql = Some(s.clone());
            actual_schema.fields().iter().map(|f| f.name().clone()).collect()
        }
        _ => actual_schema.fields().iter().map(|f| f.name().clone()).collect(),
    };
    let mut fields = vec![];
    for c in &tested {
        match actual_schema.fields().iter().find(|f| f.name().eq_ignore_ascii_case(c)) {
            Some(f) => fields.push(f.as_ref().clone()),
            None => {
                let accepted: Vec<String> = actual_schema.fields().iter().map(|f| format!("'{}'", f.name())).collect();
                anyhow::bail!(
                    "unit test '{name}': invalid column name '{c}' in the expected rows\n  accepted columns for model '{}' are: [{}]",
                    model.name,
                    accepted.join(", ")
                );
            }
        }
    }
    let expected_schema = Schema::new(fields);
    let expected_sql = match (expected_sql, &spec.expect) {
        (Some(s), _) => s,
        (None, Rows::Inline(rows)) if !rows.is_empty() => {
            fixture::fixture_sql(rows, Some(&expected_schema), &format!("unit test '{name}', expect")).map_err(anyhow::Error::msg)?
        }
        _ => format!("select * from ({actual_sql}) dbt_internal_unit_test_actual limit 0"),
    };
    let cols: Vec<String> = expected_schema.fields().iter().map(|f| quote_ident(f.name())).collect();
    let cols = cols.join(", ");
    let actual_q = format!("select {cols} from (\n{actual_sql}\n) _dbt_internal_unit_test_actual");
    let expected_q = format!("select {cols} from (\n{expected_sql}\n) _dbt_internal_unit_test_expected");
    let compiled = format!(
        "-- Build actual result given inputs\nwith dbt_internal_unit_test_actual as (\n{actual_q}\n),\n-- Build expected result\ndbt_internal_unit_test_expected as (\n{expected_q}\n)\nselect *, 'actual' as actual_or_expected from dbt_internal_unit_test_actual\nunion all\nselect *, 'expected' as actual_or_expected from dbt_internal_unit_test_expected"
    );
    let actual =
        engine.sql(&actual_q).await?.collect().await.map_err(|e| anyhow::anyhow!("unit test '{name}': model '{}' on the fixtures: {e}", model.name))?;
    let expected = engine.sql(&expected_q).await?.collect().await.map_err(|e| anyhow::anyhow!("unit test '{name}': the expected rows: {e}"))?;
    let names: Vec<String> = expected_schema.fields().iter().map(|f| f.name().clone()).collect();
    let d = diff::diff(&names, &diff::rows_of(&actual)?, &diff::rows_of(&expected)?);
    let outcome = match d {
        None => TestOutcome { status: Status::Pass, failures: 0, message: None, stored_in: None, sample: None },
        Some(text) => TestOutcome { status: Status::Fail, failures: 1, message: Some(text), stored_in: None, sample: None },
    };
    Ok((outcome, compiled))
}

/// `model::test` — how dbt names a unit test in its output lines.
pub fn display_name(node: &Node) -> String {
    match node.extra.get("model").and_then(|m| m.as_str()) {
        Some(m) => format!("{m}::{}", node.name),
        None => node.name.clone(),
    }
}

/// Unit tests' extra ordering edges for `dp build`: the tested model waits for its unit tests.
pub fn gates(project: &Project, chosen: &indexmap::IndexSet<String>) -> Vec<(String, String)> {
    let mut out = vec![];
    let by_name: HashMap<&str, &str> =
        project.nodes.values().filter(|n| n.resource_type == ResourceType::Model).map(|n| (n.name.as_str(), n.unique_id.as_str())).collect();
    for u in chosen {
        let n = &project.nodes[u];
        if n.resource_type != ResourceType::UnitTest {
            continue;
        }
        if let Some(m) = n.extra.get("model").and_then(|m| m.as_str()).and_then(|m| by_name.get(m)) {
            out.push((u.clone(), m.to_string()));
        }
    }
    out
}
