//! Stage 3: the Jinja environment, built once from the macros, target,
//! vars (root-package-scoped vars win) and invocation flags; and the
//! `this` / `model` values nodes render with.

use serde_json::Value;
use std::sync::Arc;

use super::packages::PackageDir;
use super::{LoadError, LoadOptions};
use crate::config::Settings;
use crate::jinja::{EnvInputs, JinjaEnv, MacroSource};
use crate::project::nodes::Node;

pub fn build(settings: &Settings, packages: &[PackageDir], macro_sources: Vec<MacroSource>, opts: &LoadOptions) -> Result<Arc<JinjaEnv>, LoadError> {
    let root_pkg = settings.project_name.clone();
    let mut vars = settings.vars.clone();
    if let Some(Value::Object(scoped)) = settings.vars.get(&root_pkg) {
        for (k, v) in scoped {
            vars.insert(k.clone(), v.clone());
        }
    }
    let target = serde_json::json!({
        "name": settings.target.name,
        "schema": settings.target.schema,
        "database": settings.target.database,
        "type": crate::jinja::TARGET_TYPE,
        "threads": settings.target.threads,
        "profile_name": root_pkg,
        "target_name": settings.target.name,
    });
    Ok(Arc::new(JinjaEnv::new(EnvInputs {
        root_package: root_pkg.clone(),
        packages: packages.iter().map(|p| p.name.clone()).collect(),
        macros: macro_sources,
        target,
        vars,
        package_vars: packages.iter().map(|p| (p.name.clone(), p.project.vars.clone())).collect(),
        env: opts.env.clone(),
        dispatch: settings.dispatch.clone(),
        invocation_id: opts.invocation_id.clone(),
        run_started_at: opts.run_started_at,
        flags: serde_json::json!({
            "FULL_REFRESH": opts.full_refresh,
            "STORE_FAILURES": opts.store_failures,
            "WHICH": opts.which,
        }),
        quoting: settings.quoting,
    })?))
}

/// `this` for a node before its final schema is known (parse pass).
pub(super) fn this_value(node: &Node, settings: &Settings) -> minijinja::Value {
    let mut rel = node.jinja_relation(settings);
    if rel.schema.is_empty() {
        rel.schema = settings.target.schema.clone();
    }
    minijinja::Value::from_object(rel)
}

/// The `model`/`node` object macros see.
pub fn model_value(node: &Node) -> minijinja::Value {
    let mut v = serde_json::json!({
        "unique_id": node.unique_id,
        "name": node.name,
        "resource_type": node.resource_type.as_str(),
        "package_name": node.package_name,
        "path": node.path,
        "original_file_path": node.original_file_path,
        "fqn": node.fqn,
        "version": node.version,
        "config": node.config,
        "tags": node.tags(),
        "schema": node.schema,
        "alias": node.alias,
        "database": node.database,
        "description": node.description,
    });
    // A microbatch model's batch is set while each batch compiles
    // (src/compile/microbatch.rs); `none` otherwise, as dbt's ModelNode.
    if node.resource_type == crate::project::nodes::ResourceType::Model {
        v["batch"] = serde_json::Value::Null;
    }
    minijinja::Value::from_serialize(v)
}
