//! Stage 6: each node's config, merged as dbt does: defaults < the project
//! file's tree (`models:`, `seeds:`, ...) < YAML `config:` < the file's own
//! `config()`, which the parse-pass render also uses to discover `ref`s
//! and `source`s. Rendered in parallel; every node's error is reported.

use rayon::prelude::*;
use serde_json::{Map, Value};
use std::sync::Arc;

use super::LoadError;
use super::env::{model_value, this_value};
use super::packages::PackageDir;
use crate::config::{ConfigTree, Settings, merge_config, update_config};
use crate::jinja::{JinjaEnv, Phase, RenderCtx};
use crate::project::nodes::{NodeMap, ResourceType};

/// The key of `Node::extra` holding dbt's `unrendered_config`.
pub const UNRENDERED_CONFIG: &str = "unrendered_config";

pub fn render(settings: &Settings, packages: &[PackageDir], jinja: &JinjaEnv, nodes: &mut NodeMap) -> Result<(), LoadError> {
    let trees = |rt: ResourceType| -> &ConfigTree {
        match rt {
            ResourceType::Seed => &settings.seeds,
            ResourceType::Snapshot => &settings.snapshots,
            ResourceType::Test => &settings.tests,
            ResourceType::Source => &settings.sources,
            _ => &settings.models,
        }
    };
    let ids: Vec<String> = nodes.keys().cloned().collect();
    type Rendered = (String, Map<String, Value>, crate::jinja::Captured, Map<String, Value>);
    let rendered: Vec<Result<Rendered, LoadError>> = ids
        .par_iter()
        .map(|uid| {
            let node = &nodes[uid];
            let mut cfg = default_config(node.resource_type);
            // dbt's `unrendered_config`: what the files set, before rendering
            // (state:modified.configs compares it)
            let mut unrendered = Map::new();
            // A package's own dbt_project.yml, beneath the root project's.
            if let Some(p) = packages.iter().find(|p| p.name == node.package_name) {
                let (raw, raw_unrendered) = p.tree(node.resource_type).resolve_both(&node.fqn);
                update_config(&mut unrendered, &raw_unrendered);
                let own = render_config_values(jinja, raw, &format!("{}/dbt_project.yml", p.root))?;
                merge_config(&mut cfg, &own);
            }
            let (raw, raw_unrendered) = trees(node.resource_type).resolve_both(&node.fqn);
            update_config(&mut unrendered, &raw_unrendered);
            update_config(&mut unrendered, &node.config);
            let tree_cfg = render_config_values(jinja, raw, &node.original_file_path)?;
            merge_config(&mut cfg, &tree_cfg);
            let yaml_cfg = render_config_values(jinja, (*node.config).clone(), node.patch_path.as_deref().unwrap_or(&node.original_file_path))?;
            merge_config(&mut cfg, &yaml_cfg);
            let mut captured = crate::jinja::Captured::default();
            if matches!(node.resource_type, ResourceType::Model | ResourceType::Snapshot | ResourceType::Analysis | ResourceType::Test)
                && node.raw_code.contains("{")
            {
                let mut rctx = RenderCtx::new(uid, &node.package_name, Phase::Parse);
                rctx.config = cfg.clone().into();
                rctx.this = this_value(node, settings);
                rctx.model = model_value(node);
                let rctx = Arc::new(rctx);
                jinja.render_node(&node.original_file_path, &node.raw_code, rctx.clone())?;
                captured = rctx.take_captured();
                merge_config(&mut cfg, &captured.config);
                update_config(&mut unrendered, &captured.config_as_called);
            }
            Ok((uid.clone(), cfg, captured, unrendered))
        })
        .collect();
    let mut errors = vec![];
    // nodes of a folder usually end with the same config: held once
    let mut shared = crate::project::shared_map::Interner::default();
    for r in rendered {
        match r {
            Ok((uid, cfg, cap, unrendered)) => {
                let n = nodes.get_mut(&uid).unwrap();
                n.config = shared.share(cfg);
                n.extra.insert(UNRENDERED_CONFIG.into(), Value::Object(unrendered));
                n.refs = cap.refs;
                n.sources = cap.sources;
            }
            Err(e) => errors.push(e),
        }
    }
    if !errors.is_empty() {
        return Err(if errors.len() == 1 { errors.pop().unwrap() } else { LoadError::Many(errors) });
    }

    Ok(())
}

/// Config every node of a kind starts with (as dbt's defaults). Built once
/// per kind and cloned (a clone copies the map's table; building it hashes
/// every key again, for each of a large project's tens of thousands of tests).
pub(super) fn default_config(rt: ResourceType) -> Map<String, Value> {
    use std::sync::OnceLock;
    static MODEL: OnceLock<Map<String, Value>> = OnceLock::new();
    static TEST: OnceLock<Map<String, Value>> = OnceLock::new();
    match rt {
        ResourceType::Model => MODEL.get_or_init(|| build_default_config(rt)).clone(),
        ResourceType::Test => TEST.get_or_init(|| build_default_config(rt)).clone(),
        _ => build_default_config(rt),
    }
}

fn build_default_config(rt: ResourceType) -> Map<String, Value> {
    let mut m = Map::new();
    m.insert("enabled".into(), Value::Bool(true));
    m.insert("tags".into(), Value::Array(vec![]));
    m.insert("meta".into(), Value::Object(Map::new()));
    match rt {
        ResourceType::Model => {
            m.insert("materialized".into(), Value::String("view".into()));
            m.insert("on_schema_change".into(), Value::String("ignore".into()));
        }
        ResourceType::Seed => {
            m.insert("materialized".into(), Value::String("seed".into()));
            m.insert("on_schema_change".into(), Value::String("ignore".into()));
        }
        ResourceType::Snapshot => {
            m.insert("materialized".into(), Value::String("snapshot".into()));
            m.insert("on_schema_change".into(), Value::String("ignore".into()));
        }
        ResourceType::Test => {
            m.insert("materialized".into(), Value::String("test".into()));
            m.insert("severity".into(), Value::String("ERROR".into()));
            m.insert("schema".into(), Value::String("dbt_test__audit".into()));
            m.insert("fail_calc".into(), Value::String("count(*)".into()));
            m.insert("warn_if".into(), Value::String("!= 0".into()));
            m.insert("error_if".into(), Value::String("!= 0".into()));
        }
        _ => {}
    }
    m
}

/// Renders Jinja inside string config values (`+enabled: "{{ var('x') }}"`),
/// nested ones too (`column_types: {a: "{{ 'float' if ... }}"}`), as dbt
/// renders dbt_project.yml; hooks stay raw (they render when they run).
pub(super) fn render_config_values(jinja: &JinjaEnv, cfg: Map<String, Value>, file: &str) -> Result<Map<String, Value>, LoadError> {
    let mut out = Map::new();
    for (k, v) in cfg {
        let v = if matches!(k.trim_start_matches('+'), "pre-hook" | "post-hook" | "pre_hook" | "post_hook") { v } else { render_value(jinja, v, file)? };
        out.insert(k, v);
    }
    Ok(out)
}

fn render_value(jinja: &JinjaEnv, v: Value, file: &str) -> Result<Value, LoadError> {
    Ok(match v {
        Value::String(s) if s.contains("{{") || s.contains("{%") => {
            let r = jinja.render_str(file, &s, None, &[])?;
            match r.trim() {
                "True" | "true" => Value::Bool(true),
                "False" | "false" => Value::Bool(false),
                "None" | "none" => Value::Null,
                other => Value::String(other.to_string()),
            }
        }
        Value::Array(a) => Value::Array(a.into_iter().map(|x| render_value(jinja, x, file)).collect::<Result<_, _>>()?),
        Value::Object(o) => Value::Object(o.into_iter().map(|(k, x)| Ok((k, render_value(jinja, x, file)?))).collect::<Result<_, LoadError>>()?),
        other => other,
    })
}
