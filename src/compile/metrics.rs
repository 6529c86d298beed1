//! MetricFlow metrics as dbt-core 1.11 describes them in manifest.json and
//! in the Jinja `graph.metrics` (packages read them: dbt_project_evaluator's
//! `stg_metrics` and `base_metric_relationships`). dp does not evaluate
//! metrics; it describes them as dbt's `MetricParser` parses the `metrics:`
//! of properties files, and links each as dbt's `_process_metric_node` does:
//!
//! - a simple or cumulative metric's `input_measures` is its `measure`, a
//!   conversion metric's its base and conversion measures, and it depends on
//!   the semantic model that defines each measure;
//! - a ratio metric (numerator, denominator) and a derived one (`metrics:`)
//!   depend on those metrics and take their input measures.
//!
//! Measures and inputs written as a bare name get dbt's defaults; a filter
//! string (or list) becomes `{"where_filters": [{"where_sql_template": ..}]}`;
//! a window `30 days` becomes `{"count": 30, "granularity": "day"}`. Disabled
//! metrics (`config: {enabled: false}`) are left out, as dbt leaves them out
//! of `metrics`. A measure with `create_metric: true` makes a simple metric
//! of its name, as dbt's `SemanticModelParser._create_metric`.
//!
//! Semantic models are described as dbt's `SemanticModelParser` writes them
//! (entities, measures and dimensions with dbt's defaults, the semantic
//! model's `meta` under each element's), their `model: ref('x')` resolved
//! to `depends_on` and `node_relation` as `ref()` resolves in the model's
//! package.

use indexmap::IndexMap;
use serde_json::{Map, Value, json};

use super::manifest::relative_to_package;
use crate::project::load::Project;
use crate::util::FastIndexMap;

/// The metrics of the project and its packages: unique id -> dbt's Metric.
pub fn metrics(project: &Project) -> Map<String, Value> {
    let semantic = project.other.get("semantic_models");
    let mut raw: IndexMap<String, Value> = project.other.get("metrics").cloned().unwrap_or_default();
    raw.extend(created_metrics(semantic));
    let mut parsed: IndexMap<String, Value> = raw.iter().filter(|(_, m)| enabled(m)).map(|(uid, m)| (uid.clone(), parse(project, uid, m))).collect();
    let uids: Vec<String> = parsed.keys().cloned().collect();
    for uid in &uids {
        link(&mut parsed, uid, semantic, &project.settings.project_name, &mut vec![]);
    }
    parsed.into_iter().collect()
}

/// The manifest's `parent_map` and `child_map`: the DAG's, with the edges
/// of metrics and semantic models (`depends_on.nodes` of each), each list
/// sorted as dbt's `build_parent_and_child_maps` sorts it.
pub fn parent_child_maps(
    parents: &FastIndexMap<String, Vec<String>>,
    children: &FastIndexMap<String, Vec<String>>,
    semantic: &[&Map<String, Value>],
) -> (Map<String, Value>, Map<String, Value>) {
    let mut p = parents.clone();
    let mut c = children.clone();
    for (uid, r) in semantic.iter().flat_map(|m| m.iter()) {
        let deps: Vec<String> = r["depends_on"]["nodes"].as_array().into_iter().flatten().filter_map(Value::as_str).map(String::from).collect();
        c.entry(uid.clone()).or_default();
        for d in &deps {
            c.entry(d.clone()).or_default().push(uid.clone());
        }
        p.insert(uid.clone(), deps);
    }
    for v in c.values_mut().chain(p.values_mut()) {
        v.sort();
        v.dedup();
    }
    let to_map = |m: FastIndexMap<String, Vec<String>>| m.into_iter().map(|(k, v)| (k, json!(v))).collect::<Map<String, Value>>();
    (to_map(p), to_map(c))
}

/// The metrics measures with `create_metric: true` make, as properties
/// files would write them.
fn created_metrics(semantic: Option<&IndexMap<String, Value>>) -> Vec<(String, Value)> {
    let mut out = vec![];
    for (uid, sm) in semantic.into_iter().flatten() {
        let package = uid.split('.').nth(1).unwrap_or_default();
        for m in sm.get("measures").and_then(Value::as_array).into_iter().flatten() {
            if m.get("create_metric").and_then(Value::as_bool) != Some(true) {
                continue;
            }
            let Some(name) = m.get("name").and_then(Value::as_str) else { continue };
            // dbt passes the semantic model's meta, not the measure's
            let config = json!({"enabled": enabled(sm), "meta": sm.pointer("/config/meta").cloned().unwrap_or(json!({}))});
            let expr = m.get("expr").filter(|e| !e.is_null()).cloned().unwrap_or(json!(name));
            out.push((
                format!("metric.{package}.{name}"),
                json!({
                    "name": name,
                    "label": m.get("label").filter(|l| !l.is_null()).cloned().unwrap_or(json!(name)),
                    "type": "simple",
                    "type_params": {"measure": name, "expr": expr},
                    "description": m.get("description").filter(|d| !d.is_null()).cloned().unwrap_or(json!(format!("Metric created from measure {name}"))),
                    "config": config,
                    "original_file_path": sm.get("original_file_path").cloned().unwrap_or(Value::Null),
                }),
            ));
        }
    }
    out
}

/// The semantic models of the project and its packages: unique id ->
/// dbt's SemanticModel.
pub fn semantic_models(project: &Project) -> Map<String, Value> {
    let Some(raw) = project.other.get("semantic_models") else { return Map::new() };
    let refs = crate::project::refs::RefIndex::new(&project.settings.project_name, project.nodes.values());
    let mut out = Map::new();
    for (uid, sm) in raw.iter().filter(|(_, sm)| enabled(sm)) {
        let package = uid.split('.').nth(1).unwrap_or_default();
        let name = sm.get("name").and_then(Value::as_str).unwrap_or_default();
        let file = sm.get("original_file_path").and_then(Value::as_str).unwrap_or_default();
        let original = relative_to_package(project, file);
        let path = resource_relative(project, package, original);
        let (config, yaml_config) = configs(sm);
        let model_meta = config["meta"].as_object().cloned().unwrap_or_default();
        // an element's config: the semantic model's meta under its own
        let element_config = |e: &Value| {
            let mut meta = model_meta.clone();
            if let Some(own) = e.pointer("/config/meta").and_then(Value::as_object) {
                meta.extend(own.clone());
            }
            json!({"meta": meta})
        };
        let field = |e: &Value, k: &str| e.get(k).cloned().unwrap_or(Value::Null);
        let lower = |e: &Value, k: &str| e.get(k).and_then(Value::as_str).map_or(Value::Null, |s| json!(s.to_lowercase()));
        let list = |k: &str| sm.get(k).and_then(Value::as_array).cloned().unwrap_or_default();
        let entities: Vec<Value> = list("entities")
            .iter()
            .map(|e| {
                json!({"name": field(e, "name"), "type": lower(e, "type"), "description": field(e, "description"), "label": field(e, "label"),
                       "role": field(e, "role"), "expr": field(e, "expr"), "config": element_config(e)})
            })
            .collect();
        let measures: Vec<Value> = list("measures")
            .iter()
            .map(|m| {
                let non_additive = m.get("non_additive_dimension").filter(|d| d.is_object()).map(|d| {
                    json!({"name": field(d, "name"), "window_choice": lower(d, "window_choice"),
                           "window_groupings": d.get("window_groupings").cloned().unwrap_or(json!([]))})
                });
                json!({"name": field(m, "name"), "agg": lower(m, "agg"), "description": field(m, "description"), "label": field(m, "label"),
                       // dbt 1.11 leaves its parsed measure's create_metric at the default
                       "create_metric": false, "expr": python_str(m.get("expr")),
                       "agg_params": field(m, "agg_params"), "non_additive_dimension": non_additive,
                       "agg_time_dimension": field(m, "agg_time_dimension"), "config": element_config(m)})
            })
            .collect();
        let dimensions: Vec<Value> = list("dimensions")
            .iter()
            .map(|d| {
                let type_params = d
                    .get("type_params")
                    .filter(|t| t.is_object())
                    .map(|t| json!({"time_granularity": lower(t, "time_granularity"), "validity_params": field(t, "validity_params")}));
                json!({"name": field(d, "name"), "type": lower(d, "type"), "description": field(d, "description"), "label": field(d, "label"),
                       "is_partition": d.get("is_partition").cloned().unwrap_or(json!(false)), "type_params": type_params,
                       "expr": field(d, "expr"), "metadata": null, "config": element_config(d)})
            })
            .collect();
        let model = sm.get("model").and_then(Value::as_str).unwrap_or_default();
        let call = ref_call(model);
        let target = call.as_ref().and_then(|c| refs.resolve(package, c).ok()).and_then(|t| project.nodes.get(&t.uid));
        let node_relation = target.map(|n| json!({"alias": n.alias, "schema_name": n.schema, "database": n.database, "relation_name": n.relation_name()}));
        let fqn = fqn(package, path, name);
        out.insert(
            uid.clone(),
            json!({
                "name": name, "resource_type": "semantic_model", "package_name": package, "path": path,
                "original_file_path": original, "unique_id": uid, "fqn": fqn, "model": model,
                "node_relation": node_relation, "description": field(sm, "description"), "label": field(sm, "label"),
                "defaults": field(sm, "defaults"), "entities": entities, "measures": measures, "dimensions": dimensions,
                "metadata": null,
                "depends_on": {"macros": [], "nodes": target.map(|n| vec![n.unique_id.clone()]).unwrap_or_default()},
                "refs": call.iter().map(|c| json!({"name": c.name, "package": c.package, "version": c.version.as_deref().map(version_value)})).collect::<Vec<_>>(),
                "created_at": 0.0, "config": config.clone(), "unrendered_config": yaml_config,
                "primary_entity": field(sm, "primary_entity"), "group": config["group"],
            }),
        );
    }
    out
}

/// Python's `str()` of a YAML scalar (`1` -> "1", `true` -> "True"); null stays null.
fn python_str(v: Option<&Value>) -> Value {
    match v {
        None | Some(Value::Null) => Value::Null,
        Some(Value::String(s)) => json!(s),
        Some(Value::Bool(b)) => json!(if *b { "True" } else { "False" }),
        Some(other) => json!(other.to_string()),
    }
}

/// A version as dbt writes it in `refs`: a number when it is one.
fn version_value(v: &str) -> Value {
    v.parse::<i64>().map(Value::from).or_else(|_| v.parse::<f64>().map(Value::from)).unwrap_or_else(|_| json!(v))
}

/// The `ref()` a semantic model's `model:` names: `ref('m')`,
/// `ref('pkg', 'm')`, `ref('m', v=2)` (`version=` too).
fn ref_call(model: &str) -> Option<crate::project::nodes::RefCall> {
    let inner = model.trim().strip_prefix("ref(")?.strip_suffix(')')?;
    let (mut names, mut version) = (vec![], None);
    for arg in inner.split(',').map(str::trim).filter(|a| !a.is_empty()) {
        let unquote = |s: &str| s.trim().trim_matches(|c| c == '\'' || c == '"').to_string();
        match arg.split_once('=') {
            Some((k, v)) if matches!(k.trim(), "v" | "version") => version = Some(unquote(v)),
            Some(_) => return None,
            None => names.push(unquote(arg)),
        }
    }
    let (package, name) = match names.as_slice() {
        [n] => (None, n.clone()),
        [p, n] => (Some(p.clone()), n.clone()),
        _ => return None,
    };
    Some(crate::project::nodes::RefCall { name, package, version })
}

/// A metric's or semantic model's `config` (dbt's defaults under what its
/// YAML sets) and the YAML's own, dbt's `unrendered_config`.
fn configs(m: &Value) -> (Value, Map<String, Value>) {
    let yaml_config = m.get("config").and_then(Value::as_object).cloned().unwrap_or_default();
    let mut config = json!({"enabled": true, "group": null, "meta": {}});
    for (k, v) in &yaml_config {
        config[k] = v.clone();
    }
    (config, yaml_config)
}

/// The fqn dbt gives a YAML-defined resource: its package, the folders of
/// its resource-relative path, its name.
fn fqn<'a>(package: &'a str, path: &'a str, name: &'a str) -> Vec<&'a str> {
    let dirs = path.rsplit_once('/').map_or("", |(d, _)| d);
    std::iter::once(package).chain(dirs.split('/').filter(|d| !d.is_empty())).chain([name]).collect()
}

fn enabled(m: &Value) -> bool {
    m.pointer("/config/enabled").and_then(Value::as_bool) != Some(false)
}

/// One metric of a properties file as dbt's `MetricParser.parse_metric`
/// writes it, before linking (`input_measures` and `depends_on` empty).
fn parse(project: &Project, uid: &str, m: &Value) -> Value {
    let package = uid.split('.').nth(1).unwrap_or_default();
    let name = m.get("name").and_then(Value::as_str).unwrap_or_default();
    let file = m.get("original_file_path").and_then(Value::as_str).unwrap_or_default();
    let original = relative_to_package(project, file);
    let path = resource_relative(project, package, original);
    let fqn = fqn(package, path, name);
    let (config, yaml_config) = configs(m);
    let mut meta = m.get("meta").cloned().unwrap_or(json!({}));
    if config["meta"].as_object().is_some_and(|c| !c.is_empty()) {
        meta = config["meta"].clone();
    }
    let tags = match m.get("tags") {
        Some(Value::String(t)) => json!([t]),
        Some(t @ Value::Array(_)) => t.clone(),
        _ => json!([]),
    };
    let kind = m.get("type").and_then(Value::as_str).unwrap_or("simple").to_lowercase();
    let tp = m.get("type_params").cloned().unwrap_or(json!({}));
    let cumulative = (kind == "cumulative").then(|| {
        let c = tp.get("cumulative_type_params").cloned().unwrap_or(json!({}));
        let window = c.get("window").filter(|w| !w.is_null()).or(tp.get("window")).and_then(Value::as_str);
        let grain = c.get("grain_to_date").filter(|g| !g.is_null()).or(tp.get("grain_to_date")).cloned().unwrap_or(Value::Null);
        json!({
            "window": time_window(window),
            "grain_to_date": grain,
            "period_agg": c.get("period_agg").cloned().unwrap_or(json!("first")),
            "metric": null,
        })
    });
    let conversion = tp.get("conversion_type_params").filter(|c| c.is_object()).map(|c| {
        json!({
            "base_measure": input_measure(c.get("base_measure")),
            "conversion_measure": input_measure(c.get("conversion_measure")),
            "entity": c.get("entity").cloned().unwrap_or(Value::Null),
            "calculation": c.get("calculation").cloned().unwrap_or(json!("conversion_rate")),
            "window": time_window(c.get("window").and_then(Value::as_str)),
            "constant_properties": c.get("constant_properties").cloned().unwrap_or(Value::Null),
        })
    });
    let optional = |v: Option<&Value>, f: fn(Option<&Value>) -> Value| if v.is_none_or(Value::is_null) { Value::Null } else { f(v) };
    let expr = python_str(tp.get("expr"));
    let type_params = json!({
        "measure": optional(tp.get("measure"), input_measure),
        "input_measures": [],
        "numerator": optional(tp.get("numerator"), metric_input),
        "denominator": optional(tp.get("denominator"), metric_input),
        "expr": expr,
        "window": time_window(tp.get("window").and_then(Value::as_str)),
        "grain_to_date": tp.get("grain_to_date").cloned().unwrap_or(Value::Null),
        "metrics": tp.get("metrics").and_then(Value::as_array).map(|ms| ms.iter().map(|x| metric_input(Some(x))).collect()).unwrap_or_else(Vec::new),
        "conversion_type_params": conversion,
        "cumulative_type_params": cumulative,
        "metric_aggregation_params": null,
    });
    json!({
        "name": name,
        "resource_type": "metric",
        "package_name": package,
        "path": path,
        "original_file_path": original,
        "unique_id": uid,
        "fqn": fqn,
        "description": m.get("description").cloned().unwrap_or(json!("")),
        // dbt requires a label; dp, which does not validate the semantic layer, uses the name
        "label": m.get("label").cloned().unwrap_or_else(|| json!(name)),
        "type": kind,
        "type_params": type_params,
        "filter": where_filter(m.get("filter")),
        "metadata": null,
        "time_granularity": m.get("time_granularity").cloned().unwrap_or(Value::Null),
        "meta": meta,
        "tags": tags,
        "config": config.clone(),
        "unrendered_config": yaml_config,
        "sources": [],
        "depends_on": {"macros": [], "nodes": []},
        "refs": [],
        "metrics": [],
        "created_at": 0.0,
        "group": config["group"],
    })
}

/// Sets `input_measures` and `depends_on.nodes` of metric `uid` (and of
/// the metrics it derives from, first), as dbt's `_process_metric_node`.
/// A measure no semantic model defines, or a metric that does not exist,
/// adds nothing (dbt stops with a parse error there).
fn link(metrics: &mut IndexMap<String, Value>, uid: &str, semantic: Option<&IndexMap<String, Value>>, root: &str, seen: &mut Vec<String>) {
    let Some(m) = metrics.get(uid).cloned() else { return };
    if !m["type_params"]["input_measures"].as_array().is_none_or(Vec::is_empty) || seen.iter().any(|s| s == uid) {
        return;
    }
    seen.push(uid.to_string());
    let tp = &m["type_params"];
    let package = m["package_name"].as_str().unwrap_or_default().to_string();
    let (mut measures, mut nodes): (Vec<Value>, Vec<Value>) = (vec![], vec![]);
    let add = |list: &mut Vec<Value>, v: Value| {
        if !list.contains(&v) {
            list.push(v);
        }
    };
    match m["type"].as_str().unwrap_or_default() {
        "simple" | "cumulative" | "conversion" => {
            let own: Vec<Value> = if m["type"] == "conversion" {
                let c = &tp["conversion_type_params"];
                vec![c["base_measure"].clone(), c["conversion_measure"].clone()]
            } else {
                vec![tp["measure"].clone()]
            };
            for measure in own.into_iter().filter(Value::is_object) {
                add(&mut measures, measure);
            }
            for measure in &measures {
                if let Some(sm) = semantic_model_for(semantic, measure["name"].as_str().unwrap_or_default(), &package, root) {
                    add(&mut nodes, json!(sm));
                }
            }
        }
        kind => {
            let inputs: Vec<Value> =
                if kind == "ratio" { vec![tp["numerator"].clone(), tp["denominator"].clone()] } else { tp["metrics"].as_array().cloned().unwrap_or_default() };
            for input in inputs {
                let Some(target) = resolve_metric(metrics, input["name"].as_str().unwrap_or_default(), &package, root) else { continue };
                link(metrics, &target, semantic, root, seen);
                for measure in metrics[&target]["type_params"]["input_measures"].as_array().cloned().unwrap_or_default() {
                    add(&mut measures, measure);
                }
                add(&mut nodes, json!(target));
            }
        }
    }
    let m = metrics.get_mut(uid).expect("looked up above");
    m["type_params"]["input_measures"] = Value::Array(measures);
    m["depends_on"]["nodes"] = Value::Array(nodes);
}

/// The metric named `name`: the caller's package's, else the root
/// project's, else any package's (dbt's `resolve_metric`).
fn resolve_metric(metrics: &IndexMap<String, Value>, name: &str, package: &str, root: &str) -> Option<String> {
    [package, root]
        .iter()
        .map(|p| format!("metric.{p}.{name}"))
        .find(|u| metrics.contains_key(u))
        .or_else(|| metrics.iter().find(|(_, m)| m["name"] == name).map(|(u, _)| u.clone()))
}

/// The enabled semantic model defining measure `measure`: the metric's own
/// package's first, then the root project's, then any (dbt's
/// `resolve_semantic_model_for_measure`).
fn semantic_model_for(semantic: Option<&IndexMap<String, Value>>, measure: &str, package: &str, root: &str) -> Option<String> {
    let defines = |sm: &Value| {
        enabled(sm) && sm.get("measures").and_then(Value::as_array).is_some_and(|ms| ms.iter().any(|x| x.get("name").and_then(Value::as_str) == Some(measure)))
    };
    let all: Vec<(&String, &Value)> = semantic.into_iter().flatten().filter(|(_, sm)| defines(sm)).collect();
    let in_package = |p: &str| all.iter().find(|(u, _)| u.split('.').nth(1) == Some(p)).map(|(u, _)| (*u).clone());
    in_package(package).or_else(|| in_package(root)).or_else(|| all.first().map(|(u, _)| (*u).clone()))
}

/// dbt's `MetricInputMeasure` of a measure written as a name or a mapping.
fn input_measure(v: Option<&Value>) -> Value {
    match v {
        Some(Value::Object(o)) => json!({
            "name": o.get("name").cloned().unwrap_or(Value::Null),
            "filter": where_filter(o.get("filter")),
            "alias": o.get("alias").cloned().unwrap_or(Value::Null),
            "join_to_timespine": o.get("join_to_timespine").cloned().unwrap_or(json!(false)),
            "fill_nulls_with": o.get("fill_nulls_with").cloned().unwrap_or(Value::Null),
        }),
        Some(name) => json!({"name": name, "filter": null, "alias": null, "join_to_timespine": false, "fill_nulls_with": null}),
        None => Value::Null,
    }
}

/// dbt's `MetricInput` of a metric written as a name or a mapping.
fn metric_input(v: Option<&Value>) -> Value {
    match v {
        Some(Value::Object(o)) => json!({
            "name": o.get("name").cloned().unwrap_or(Value::Null),
            "filter": where_filter(o.get("filter")),
            "alias": o.get("alias").cloned().unwrap_or(Value::Null),
            "offset_window": time_window(o.get("offset_window").and_then(Value::as_str)),
            "offset_to_grain": o.get("offset_to_grain").cloned().unwrap_or(Value::Null),
        }),
        Some(name) => json!({"name": name, "filter": null, "alias": null, "offset_window": null, "offset_to_grain": null}),
        None => Value::Null,
    }
}

/// dbt's `parse_where_filter`: a string or a list of strings.
fn where_filter(v: Option<&Value>) -> Value {
    let template = |s: &Value| json!({"where_sql_template": s.as_str().map_or_else(|| s.to_string(), str::to_string)});
    match v {
        None | Some(Value::Null) => Value::Null,
        Some(Value::Array(items)) => json!({"where_filters": items.iter().map(template).collect::<Vec<_>>()}),
        Some(s) => json!({"where_filters": [template(s)]}),
    }
}

/// dbt's `MetricTimeWindow` of `<count> <granularity>` (`30 days`: a
/// standard grain loses its plural `s`); anything else is kept as null.
fn time_window(w: Option<&str>) -> Value {
    const GRAINS: [&str; 11] = ["nanosecond", "microsecond", "millisecond", "second", "minute", "hour", "day", "week", "month", "quarter", "year"];
    let Some(w) = w else { return Value::Null };
    let lower = w.to_lowercase();
    let parts: Vec<&str> = lower.split(' ').collect();
    let [count, grain] = parts[..] else { return Value::Null };
    let Ok(count) = count.parse::<u64>() else { return Value::Null };
    let grain = grain.strip_suffix('s').filter(|g| GRAINS.contains(g)).unwrap_or(grain);
    json!({"count": count, "granularity": grain})
}

/// A package-relative path made relative to the resource folder it was
/// found under (dbt's `relative_path`): the root project's model, seed,
/// snapshot, analysis or test paths; a package's first folder.
fn resource_relative<'a>(project: &Project, package: &str, path: &'a str) -> &'a str {
    let p = &project.settings.paths;
    if package == project.settings.project_name {
        let roots = p.models.iter().chain(&p.seeds).chain(&p.snapshots).chain(&p.analyses).chain(&p.tests);
        if let Some(rest) = roots.filter_map(|r| path.strip_prefix(r.trim_end_matches('/')).and_then(|x| x.strip_prefix('/'))).next() {
            return rest;
        }
    }
    path.split_once('/').map_or(path, |(_, rest)| rest)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn windows_filters_and_inputs_are_dbts() {
        assert_eq!(time_window(Some("30 days")), json!({"count": 30, "granularity": "day"}));
        assert_eq!(time_window(Some("2 Months")), json!({"count": 2, "granularity": "month"}));
        assert_eq!(time_window(Some("1 fiscal_years")), json!({"count": 1, "granularity": "fiscal_years"}));
        assert_eq!(time_window(None), Value::Null);
        let r = ref_call("ref('dim_model_7')").unwrap();
        assert_eq!((r.name.as_str(), r.package, r.version), ("dim_model_7", None, None));
        let r = ref_call(r#"ref("pkg", "m", v=2)"#).unwrap();
        assert_eq!((r.name.as_str(), r.package.as_deref(), r.version.as_deref()), ("m", Some("pkg"), Some("2")));
        assert!(ref_call("source('a', 'b')").is_none());
        assert_eq!(python_str(Some(&json!(1))), json!("1"));
        assert_eq!(python_str(Some(&json!(true))), json!("True"));
        assert_eq!(
            where_filter(Some(&json!("{{ Dimension('d__id') }} > 0"))),
            json!({"where_filters": [{"where_sql_template": "{{ Dimension('d__id') }} > 0"}]})
        );
        assert_eq!(where_filter(Some(&json!(["a", "b"]))), json!({"where_filters": [{"where_sql_template": "a"}, {"where_sql_template": "b"}]}));
        assert_eq!(
            input_measure(Some(&json!("total"))),
            json!({"name": "total", "filter": null, "alias": null, "join_to_timespine": false, "fill_nulls_with": null})
        );
        assert_eq!(
            metric_input(Some(&json!({"name": "m", "offset_window": "1 week"}))),
            json!({"name": "m", "filter": null, "alias": null, "offset_window": {"count": 1, "granularity": "week"}, "offset_to_grain": null})
        );
    }
}
