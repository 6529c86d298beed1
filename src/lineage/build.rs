//! Plans every model's compiled SQL in a DataFusion session and traces its
//! columns ([`super::plan`]). Models are planned parents first; each
//! model's planned schema is registered as an empty table, so lineage
//! needs neither a built warehouse nor data: only the schemas of seeds
//! (read from their CSV) and sources (their files, else their YAML
//! columns).

use std::collections::{HashMap, HashSet};
use std::sync::Arc;

use datafusion::arrow::datatypes::{DataType, Field, Schema, SchemaRef};
use datafusion::catalog::SchemaProvider;
use datafusion::common::TableReference;
use datafusion::datasource::empty::EmptyTable;
use indexmap::{IndexMap, IndexSet};

use super::cache::{self, Cache, Parent};
use super::plan::{Resolve, Tracer};
use super::{ColumnLineage, Input, Lineage, NodeLineage, Subtype};
use crate::compile::Compiled;
use crate::engine::Engine;
use crate::graph::Dag;
use crate::project::load::Project;
use crate::project::nodes::{Node, ResourceType};

struct Resolver {
    default_schema: String,
    relations: HashMap<(String, String), String>,
    functions: HashSet<String>,
}

impl Resolve for Resolver {
    fn relation(&self, t: &TableReference) -> Option<String> {
        let schema = t.schema().unwrap_or(&self.default_schema);
        self.relations.get(&(schema.to_string(), t.table().to_string())).cloned()
    }

    fn known_function(&self, name: &str) -> bool {
        self.functions.contains(name)
    }
}

fn resolver(project: &Project) -> Resolver {
    let mut relations = HashMap::new();
    for (uid, n) in &project.nodes {
        match n.resource_type {
            ResourceType::Model | ResourceType::Seed | ResourceType::Snapshot if n.materialized() != crate::project::nodes::Materialization::Ephemeral => {
                relations.insert((n.schema.clone(), n.alias.clone()), uid.clone());
            }
            ResourceType::Source => {
                if let Some(s) = &n.source {
                    relations.insert((n.schema.clone(), s.identifier.clone()), uid.clone());
                }
            }
            _ => {}
        }
    }
    let state = datafusion::execution::session_state::SessionStateBuilder::new().with_default_features().build();
    let functions = state.scalar_functions().keys().cloned().collect();
    Resolver { default_schema: project.settings.target.schema.clone(), relations, functions }
}

fn declared_schema(n: &Node) -> SchemaRef {
    let fields: Vec<Field> = n
        .columns
        .values()
        .map(|c| {
            // Untyped YAML columns: Null coerces in expressions.
            let ty = c.data_type.as_deref().and_then(|t| crate::seed::infer::sql_type_to_arrow(t).ok()).unwrap_or(DataType::Null);
            Field::new(&c.name, ty, true)
        })
        .collect();
    Arc::new(Schema::new(fields))
}

fn register(engine: &Engine, schema: &str, table: &str, s: SchemaRef) {
    let _ = engine.catalog.schema_provider(schema).register_table(table.to_string(), Arc::new(EmptyTable::new(s)));
}

fn columns_of(s: &Schema) -> IndexMap<String, ColumnLineage> {
    // Undeclared types (DataType::Null) show as "unknown".
    let ty = |t: &DataType| if t == &DataType::Null { "unknown".to_string() } else { t.to_string() };
    s.fields().iter().map(|f| (f.name().clone(), ColumnLineage { data_type: ty(f.data_type()), ..Default::default() })).collect()
}

/// Whether the node is configured with `publish = ["postgres"]`.
fn publishes(n: &Node) -> bool {
    match n.config.get("publish") {
        Some(serde_json::Value::Array(a)) => a.iter().any(|v| v.as_str() == Some("postgres")),
        Some(serde_json::Value::String(s)) => s == "postgres",
        _ => false,
    }
}

fn base(project: &Project, n: &Node) -> NodeLineage {
    let published = project.settings.target.postgres.is_some()
        && publishes(n)
        && n.materialized() != crate::project::nodes::Materialization::Ephemeral
        && n.source.is_none();
    NodeLineage {
        published: published.then(|| format!("postgres:{}.{}", n.schema, n.alias)),
        resource_type: n.resource_type.as_str().to_string(),
        relation: match &n.source {
            Some(s) => format!("{}.{}", n.schema, s.identifier),
            None if n.materialized() == crate::project::nodes::Materialization::Ephemeral => String::new(),
            None => format!("{}.{}", n.schema, n.alias),
        },
        depends_on: n.depends_on.clone(),
        location: n.source.as_ref().and_then(|s| s.location.clone()),
        ..Default::default()
    }
}

/// Column lineage of every model (and the columns of seeds and sources).
/// `compiled` must hold the models' SQL compiled as for a full refresh.
/// `cached`: reuse (and update) `target/lineage_cache.json` ([`super::cache`]).
pub async fn build(project: &Project, dag: &Dag, compiled: &Compiled, engine: &Engine, cached: bool) -> Lineage {
    let started = std::time::Instant::now();
    let target = project.settings.target_dir();
    let mut cache = Cache::open(cached.then_some(target.as_path()));
    let mut keys: HashMap<String, String> = HashMap::new();
    let resolver = resolver(project);
    let mut nodes: IndexMap<String, NodeLineage> = IndexMap::new();
    // Seeds and sources first: their schemas come from files.
    for (uid, n) in &project.nodes {
        match n.resource_type {
            ResourceType::Seed => {
                let mut nl = base(project, n);
                let path = project.settings.root.join(&n.original_file_path);
                let read = std::fs::read(&path)
                    .map_err(|e| e.to_string())
                    .and_then(|b| crate::seed::options(n).map_err(|e| e.to_string()).map(|o| (b, o)))
                    .and_then(|(b, o)| crate::seed::infer::read_seed(&n.original_file_path, &b, &o).map_err(|e| e.to_string()));
                match read {
                    Ok(d) => {
                        nl.columns = columns_of(&d.schema);
                        register(engine, &n.schema, &n.alias, d.schema.clone());
                    }
                    Err(e) => {
                        nl.unavailable = Some(format!("column lineage unavailable: {e}"));
                        nl.columns = columns_of(&declared_schema(n));
                    }
                }
                nodes.insert(uid.clone(), nl);
            }
            ResourceType::Source => {
                let mut nl = base(project, n);
                let ident = n.source.as_ref().map(|s| s.identifier.clone()).unwrap_or_else(|| n.name.clone());
                match engine.ctx.table_provider(TableReference::partial(n.schema.as_str(), ident.as_str())).await {
                    Ok(t) => nl.columns = columns_of(&t.schema()),
                    Err(e) => {
                        // No files (yet): the YAML's columns stand in.
                        let s = declared_schema(n);
                        nl.columns = columns_of(&s);
                        if s.fields().is_empty() {
                            nl.unavailable = Some(format!("column lineage unavailable: {}", first_line(&e.to_string())));
                        } else {
                            register(engine, &n.schema, &ident, s);
                        }
                    }
                }
                nodes.insert(uid.clone(), nl);
            }
            _ => {}
        }
    }
    let models: IndexSet<String> =
        project.nodes.iter().filter(|(_, n)| matches!(n.resource_type, ResourceType::Model | ResourceType::Snapshot)).map(|(u, _)| u.clone()).collect();
    // One state for all plans: tables registered later are visible through
    // its (shared) catalogs, and cloning a state per model is costly.
    let state = Arc::new(engine.ctx.state());
    let resolver = Arc::new(resolver);
    tracing::debug!(target: "dp::docs", seconds = started.elapsed().as_secs_f64(), "lineage: seeds and sources");
    // Models are planned a level of the DAG at a time (a model's level is
    // one more than its deepest model parent's), the models of a level
    // concurrently: their parents' schemas are all registered by then.
    let order = dag.topo_order(&models);
    let mut level: HashMap<&str, usize> = HashMap::with_capacity(order.len());
    let mut levels: Vec<Vec<&str>> = vec![];
    for uid in &order {
        let l = project.nodes[uid].depends_on.iter().filter_map(|d| level.get(d.as_str())).max().map_or(0, |m| m + 1);
        level.insert(uid, l);
        if levels.len() <= l {
            levels.resize_with(l + 1, Vec::new);
        }
        levels[l].push(uid);
    }
    let workers = std::thread::available_parallelism().map(|n| n.get()).unwrap_or(1);
    let mut done: HashMap<String, NodeLineage> = HashMap::with_capacity(order.len());
    for uids in levels {
        // Models whose key is in the cache are not planned again.
        let mut jobs: Vec<(String, Option<String>)> = Vec::with_capacity(uids.len());
        for uid in uids {
            let n = &project.nodes[uid];
            let Some(sql) = compiled.sql.get(uid) else {
                jobs.push((uid.to_string(), None));
                continue;
            };
            let ephemeral = n.materialized() == crate::project::nodes::Materialization::Ephemeral;
            let parents = n.depends_on.iter().map(|d| {
                let p = match (keys.get(d), done.get(d).or_else(|| nodes.get(d))) {
                    (Some(k), _) => Parent::Key(k),
                    (None, Some(nl)) => Parent::Lineage(nl),
                    (None, None) => Parent::Missing,
                };
                (d.as_str(), p)
            });
            let key = cache::key(sql, &format!("{}.{}", n.schema, n.alias), ephemeral, parents);
            let hit = cache.take(uid, &key).and_then(|e| {
                let schema = if e.schema.is_empty() { None } else { Some(cache::arrow_schema(&e.schema)?) };
                Some((e, schema))
            });
            match hit {
                Some((e, schema)) => {
                    let mut nl = base(project, n);
                    nl.columns = e.columns;
                    nl.dataset = e.dataset;
                    nl.unavailable = e.unavailable;
                    if let (Some(s), false) = (schema, ephemeral) {
                        register(engine, &n.schema, &n.alias, Arc::new(s));
                    }
                    cache.put(uid.to_string(), key.clone(), e.schema, false);
                    done.insert(uid.to_string(), nl);
                }
                None => jobs.push((uid.to_string(), Some(sql.clone()))),
            }
            keys.insert(uid.to_string(), key);
        }
        let per_task = jobs.len().div_ceil(workers * 4).max(16);
        let mut tasks = vec![];
        let mut jobs = jobs.into_iter().peekable();
        while jobs.peek().is_some() {
            let chunk: Vec<(String, Option<String>)> = jobs.by_ref().take(per_task).collect();
            let (state, resolver) = (state.clone(), resolver.clone());
            tasks.push(tokio::spawn(async move {
                let mut out = Vec::with_capacity(chunk.len());
                for (uid, sql) in chunk {
                    let planned = match sql {
                        None => None,
                        Some(sql) => Some(match state.create_logical_plan(&sql).await {
                            Ok(plan) => Ok((Tracer { resolve: &*resolver }.trace(&plan), plan.schema().as_arrow().clone())),
                            Err(e) => Err(first_line(&e.to_string())),
                        }),
                    };
                    out.push((uid, planned));
                }
                out
            }));
        }
        for task in tasks {
            let planned = match task.await {
                Ok(p) => p,
                Err(e) => std::panic::resume_unwind(e.into_panic()),
            };
            for (uid, planned) in planned {
                let n = &project.nodes[&uid];
                let mut nl = base(project, n);
                let mut planned_schema = None;
                match planned {
                    None => nl.unavailable = Some("column lineage unavailable: the model was not compiled".into()),
                    Some(Ok((traced, schema))) => {
                        for (f, deps) in schema.fields().iter().zip(traced.fields) {
                            nl.columns.insert(
                                f.name().clone(),
                                ColumnLineage { data_type: f.data_type().to_string(), inputs: inputs(&deps.deps), unknown: deps.unknown },
                            );
                        }
                        nl.dataset = inputs(&traced.dataset);
                        let schema = Arc::new(schema);
                        if n.materialized() != crate::project::nodes::Materialization::Ephemeral {
                            register(engine, &n.schema, &n.alias, schema.clone());
                        }
                        planned_schema = Some(schema);
                    }
                    Some(Err(e)) => {
                        // Blame the first parent without column lineage, if any
                        // (its table was never registered), else the planner.
                        let parent = n.depends_on.iter().find(|d| done.get(*d).or_else(|| nodes.get(*d)).is_some_and(|p| p.unavailable.is_some()));
                        let why = match parent {
                            Some(p) => format!("its parent {} has none", crate::graph::short_name(p)),
                            None => e,
                        };
                        nl.unavailable = Some(format!("column lineage unavailable: {why}"));
                        nl.columns = columns_of(&declared_schema(n));
                    }
                }
                if let Some(key) = keys.get(&uid) {
                    cache.put(uid.clone(), key.clone(), planned_schema.as_deref().map(cache::schema_of).unwrap_or_default(), true);
                }
                done.insert(uid, nl);
            }
        }
    }
    // In topological order, as one sequential pass would give.
    for uid in order {
        if let Some(nl) = done.remove(&uid) {
            nodes.insert(uid, nl);
        }
    }
    tracing::debug!(nodes = nodes.len(), planned = cache.planned(), seconds = started.elapsed().as_secs_f64(), "column lineage planned and traced");
    cache.save(&nodes);
    Lineage { generated_at: crate::compile::manifest::now_stamp(), nodes }
}

fn first_line(s: &str) -> String {
    s.lines().next().unwrap_or("").to_string()
}

fn inputs(deps: &super::plan::DepMap) -> Vec<Input> {
    deps.iter()
        .map(|((node, column), set)| {
            // An input reached both directly and indirectly keeps both; of
            // the direct ways, the strongest is enough.
            let direct = set.iter().copied().filter(|s| s.is_direct()).max();
            let mut ts: Vec<Subtype> = direct.into_iter().collect();
            ts.extend(set.iter().copied().filter(|s| !s.is_direct()));
            Input { node: node.clone(), column: column.clone(), transformations: ts.into_iter().map(Into::into).collect() }
        })
        .collect()
}
