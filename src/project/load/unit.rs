//! Stage 8: unit tests (`unit_tests:`, dbt 1.8) attached to their model,
//! and exposures with the refs and sources they depend on.

use indexmap::IndexMap;
use serde_json::Value;
use std::sync::Arc;

use super::LoadError;
use super::patches::Entry;
use crate::jinja::{JinjaEnv, Phase, RenderCtx};
use crate::project::nodes::{Node, NodeMap, RefCall, ResourceType};
use crate::util::yaml::find_name_line;

pub fn add(root_pkg: &str, unit_tests: Vec<Entry>, exposures: Vec<Entry>, jinja: &JinjaEnv, nodes: &mut NodeMap) -> Result<(), LoadError> {
    let root_pkg = root_pkg.to_string();
    for (file, text, u) in unit_tests {
        let name = u.get("name").and_then(Value::as_str).unwrap_or("").to_string();
        let model = u.get("model").and_then(Value::as_str).unwrap_or("").to_string();
        let line = find_name_line(&text, &name).unwrap_or(1);
        if name.is_empty() || model.is_empty() {
            return Err(LoadError::Located { file, line, message: "a unit test needs `name` and `model`".into() });
        }
        let mut n = Node::new(ResourceType::UnitTest, &root_pkg, &name, &file);
        n.unique_id = format!("unit_test.{root_pkg}.{model}.{name}");
        let model_node = nodes.values().find(|m| m.resource_type == ResourceType::Model && m.name == model);
        let Some(model_node) = model_node else {
            return Err(LoadError::Located { file, line, message: format!("unit test '{name}' refers to model '{model}', which does not exist") });
        };
        n.fqn = model_node.fqn[..model_node.fqn.len() - 1].iter().cloned().chain([model.clone(), name.clone()]).collect();
        n.path = model_node.path.clone();
        n.refs = vec![RefCall { name: model.clone(), package: None, version: None }];
        n.description = u.get("description").and_then(Value::as_str).unwrap_or("").into();
        n.config = u.get("config").and_then(Value::as_object).cloned().unwrap_or_default().into();
        n.extra = u.clone().into();
        n.line = Some(line);
        n.patch_path = Some(file);
        nodes.insert(n.unique_id.clone(), n);
    }
    for (file, text, e) in exposures {
        let name = e.get("name").and_then(Value::as_str).unwrap_or("").to_string();
        let mut n = Node::new(ResourceType::Exposure, &root_pkg, &name, &file);
        n.fqn = vec![root_pkg.clone(), name.clone()];
        n.line = find_name_line(&text, &name);
        n.description = e.get("description").and_then(Value::as_str).unwrap_or("").into();
        if let Some(Value::Array(deps)) = e.get("depends_on") {
            let src: String = deps.iter().filter_map(Value::as_str).map(|d| format!("{{{{ {d} }}}}")).collect();
            let rctx = Arc::new(RenderCtx::new(&n.unique_id, &root_pkg, Phase::Parse));
            jinja.render_node(&file, &src, rctx.clone())?;
            let cap = rctx.take_captured();
            n.refs = cap.refs;
            n.sources = cap.sources;
        }
        n.extra = e.into();
        nodes.insert(n.unique_id.clone(), n);
    }
    Ok(())
}

/// Saved queries (MetricFlow), listed by `dp build` as NO-OP as dbt lists
/// them. They stay in the manifest's `saved_queries` (from the property
/// files); their metrics are not graph nodes, so they have no parents here.
pub fn add_saved_queries(saved: Option<&IndexMap<String, Value>>, nodes: &mut NodeMap) -> Result<(), LoadError> {
    for (uid, q) in saved.into_iter().flatten() {
        let mut parts = uid.splitn(3, '.').skip(1);
        let (Some(pkg), Some(name)) = (parts.next(), parts.next()) else { continue };
        let file = q.get("original_file_path").and_then(Value::as_str).unwrap_or_default();
        let mut n = Node::new(ResourceType::SavedQuery, pkg, name, file);
        n.unique_id = uid.clone();
        n.fqn = vec![pkg.to_string(), name.to_string()];
        n.description = q.get("description").and_then(Value::as_str).unwrap_or("").into();
        nodes.insert(uid.clone(), n);
    }

    Ok(())
}
