//! Versioned models (`versions:` on a model's properties, dbt 1.5+): each
//! version's file (`defined_in`, else `<name>_v<v>.sql`) becomes the node
//! `model.<package>.<name>.v<v>`, named `<name>` with `version: <v>`,
//! aliased `<name>_v<v>`, with the model's properties overridden by the
//! version's own. `ref('<name>')` picks `latest_version` (else the highest).

use indexmap::IndexMap;
use serde_json::Value;

use super::LoadError;
use super::generic::{PendingTest, TestTarget, collect_tests};
use super::patches::{apply_patch, columns};
use crate::config::merge_config;
use crate::project::nodes::{NodeMap, ResourceType, compare_versions};
use crate::project::properties::{ColumnDef, NodePatch};
use crate::util::yaml::NameIndex;

/// Where a versioned patch lands: the node set and the YAML file.
pub struct Target<'a> {
    pub nodes: &'a mut NodeMap,
    pub by_name: &'a mut IndexMap<(ResourceType, String, String), String>,
    pub package: &'a str,
    pub file: &'a str,
    pub idx: &'a NameIndex,
    pub dirs: &'a [String],
}

pub fn apply(t: Target, patch: &NodePatch, tests: &mut Vec<PendingTest>, warnings: &mut Vec<String>) -> Result<(), LoadError> {
    let name = &patch.name;
    let line = t.idx.first(name).unwrap_or(1);
    let latest = match &patch.latest_version {
        Some(Value::String(s)) => Some(s.clone()),
        Some(v) => Some(v.to_string()),
        None => patch.versions.iter().map(|v| v.v_str()).max_by(|a, b| compare_versions(a, b)),
    };
    for ver in &patch.versions {
        let v = ver.v_str();
        let stem = ver.defined_in.clone().unwrap_or_else(|| format!("{name}_v{v}"));
        let Some(old_uid) = t.by_name.shift_remove(&(ResourceType::Model, t.package.to_string(), format!("{stem}:"))) else {
            warnings.push(format!("{}:{line}: version {v} of model '{name}' has no file {stem}.sql; it was skipped", t.file));
            continue;
        };
        let Some(mut node) = t.nodes.shift_remove(&old_uid) else { continue };
        node.name = name.clone();
        node.version = Some(v.clone());
        node.unique_id = format!("model.{}.{name}.v{v}", t.package);
        node.alias = format!("{name}_v{v}");
        node.fqn.pop();
        node.fqn.extend([name.clone(), format!("v{v}")]);
        if let Some(l) = &latest {
            node.extra.insert("latest_version".into(), Value::String(l.clone()));
        }
        apply_patch(&mut node, patch, t.file, t.idx);
        if let Some(d) = &ver.description {
            node.description = d.clone();
        }
        if let Some(d) = ver.deprecation_date.as_ref().or(patch.deprecation_date.as_ref()) {
            node.extra.insert("deprecation_date".into(), d.clone());
        }
        merge_config(&mut node.config, &ver.config);
        let own: Vec<ColumnDef> = ver.columns.iter().filter(|c| c.get("name").is_some()).filter_map(|c| serde_json::from_value(c.clone()).ok()).collect();
        let mut cols: Vec<ColumnDef> = patch.columns.iter().filter(|c| !own.iter().any(|o| o.name == c.name)).cloned().collect();
        cols.extend(own);
        node.columns = columns(&cols);
        let uid = node.unique_id.clone();
        t.by_name.insert((ResourceType::Model, t.package.to_string(), format!("{name}:{v}")), uid.clone());
        t.nodes.insert(uid.clone(), node);
        let target = TestTarget::Node { name: name.clone(), uid, version: Some(v) };
        let model_tests = patch.all_tests().into_iter().chain(ver.data_tests.iter().chain(ver.tests.iter()).cloned()).collect();
        collect_tests(tests, t.package, &target, t.file, t.idx, t.dirs, model_tests, &cols)?;
    }
    Ok(())
}
