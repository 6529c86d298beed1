//! Rendering a model for a unit test, as dbt does: every `ref()` /
//! `source()` the model uses resolves to the CTE of its `given` fixture
//! (`__dbt__cte__<name>`, `__dbt__cte__<source>__<table>`), `{{ this }}` to
//! the fixture given as `this` (else the model's own relation), and the
//! test's `overrides` replace macros (including `is_incremental`), vars and
//! env vars. A `ref()` / `source()` without a fixture is an error naming the
//! unit test, the model and the input to add.

use indexmap::IndexMap;
use std::collections::HashMap;
use std::sync::Arc;

use super::CompileError;
use crate::jinja::{Phase, Relation, RenderCtx, Resolver};
use crate::project::load::{Project, model_value};
use crate::project::nodes::{Node, RefCall};

/// The fixture CTE names of a unit test's inputs.
#[derive(Debug, Default, Clone)]
pub struct UnitInputs {
    /// Model / seed / snapshot name → CTE.
    pub refs: HashMap<String, String>,
    /// (source, table) → CTE.
    pub sources: HashMap<(String, String), String>,
    /// The CTE given as `this`.
    pub this: Option<String>,
}

/// A unit test's `overrides:`.
#[derive(Debug, Default, Clone)]
pub struct UnitOverrides {
    pub macros: serde_json::Map<String, serde_json::Value>,
    pub vars: serde_json::Map<String, serde_json::Value>,
    pub env_vars: IndexMap<String, String>,
}

struct UnitResolver {
    test: String,
    model: String,
    inputs: UnitInputs,
}

impl Resolver for UnitResolver {
    fn resolve_ref(&self, _from: &str, call: &RefCall) -> Result<Relation, String> {
        match self.inputs.refs.get(&call.name) {
            Some(cte) => Ok(Relation::cte(cte)),
            None => Err(format!(
                "unit test '{}': model '{}' uses ref('{}'), which has no fixture\n  hint: add `- input: ref('{}')` with its rows (`rows: []` for none) under `given:`",
                self.test, self.model, call.name, call.name
            )),
        }
    }

    fn resolve_source(&self, _from: &str, source: &str, table: &str) -> Result<Relation, String> {
        match self.inputs.sources.get(&(source.to_string(), table.to_string())) {
            Some(cte) => Ok(Relation::cte(cte)),
            None => Err(format!(
                "unit test '{}': model '{}' uses source('{source}', '{table}'), which has no fixture\n  hint: add `- input: source('{source}', '{table}')` with its rows under `given:`",
                self.test, self.model
            )),
        }
    }
}

fn truthy(v: &serde_json::Value) -> bool {
    match v {
        serde_json::Value::Bool(b) => *b,
        serde_json::Value::Null => false,
        serde_json::Value::Number(n) => n.as_f64() != Some(0.0),
        serde_json::Value::String(s) => !matches!(s.trim().to_ascii_lowercase().as_str(), "" | "false" | "0"),
        serde_json::Value::Array(a) => !a.is_empty(),
        serde_json::Value::Object(o) => !o.is_empty(),
    }
}

/// The model's SQL with its inputs replaced by fixture CTE names (the CTEs
/// themselves are injected by the caller).
pub fn render_model(project: &Project, test: &str, model: &Node, inputs: UnitInputs, overrides: &UnitOverrides) -> Result<String, CompileError> {
    let mut rctx = RenderCtx::new(&model.unique_id, &model.package_name, Phase::Compile);
    rctx.this = match &inputs.this {
        Some(cte) => minijinja::Value::from_object(Relation::cte(cte)),
        None => minijinja::Value::from_object(model.jinja_relation(&project.settings)),
    };
    rctx.resolver = Some(Arc::new(UnitResolver { test: test.to_string(), model: model.name.clone(), inputs }));
    rctx.is_incremental = overrides.macros.get("is_incremental").is_some_and(truthy);
    rctx.config = model.config.clone();
    rctx.model = model_value(model);
    rctx.overrides = overrides.macros.iter().map(|(k, v)| (k.clone(), minijinja::Value::from_serialize(v))).collect();
    rctx.var_overrides = overrides.vars.clone();
    rctx.env_overrides = overrides.env_vars.clone();
    Ok(project.jinja.render_node(&model.original_file_path, &model.raw_code, Arc::new(rctx))?)
}
