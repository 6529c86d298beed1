//! Quality checkpoints (`checkpoints/*.yml`): Great Expectations suites
//! run on DataFusion, one aggregate scan per relation.
//!
//! - [`spec`]: checkpoint files, parsed and validated with `file:line`;
//! - [`expectations`]: the catalogue and its SQL;
//! - [`run`]: resolution against the project, schema checks (before any
//!   query), batched execution, failing rows;
//! - [`results`]: `dp_meta.checkpoint_runs`, `dp_meta.expectation_results`,
//!   failing-row tables and GX-shaped validation JSON;
//! - [`docs`]: Data Docs, a static site under `target/data_docs/`;
//! - [`gate`]: where checkpoints sit in `dp build`.

mod buckets;
pub mod docs;
pub mod expectations;
pub mod gate;
pub mod results;
pub mod run;
mod scan;
mod shapes;
pub mod spec;

use std::sync::Arc;

use crate::graph::Dag;
use crate::project::load::Project;
use crate::project::nodes::{Node, ResourceType};
use crate::util::ident::relation_name;
use crate::util::suggest;
pub use spec::{Checkpoint, Severity, SpecError};

/// A relation a validation reads.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Relation {
    pub unique_id: String,
    /// `schema.table` as SQL.
    pub sql: String,
    /// `source raw.customers`, `model stg_orders`.
    pub label: String,
}

fn relation_of(n: &Node) -> Option<Relation> {
    match n.resource_type {
        ResourceType::Source => {
            let s = n.source.as_ref()?;
            Some(Relation {
                unique_id: n.unique_id.clone(),
                sql: relation_name(&n.schema, &s.identifier),
                label: format!("source {}.{}", s.source_name, n.name),
            })
        }
        ResourceType::Model | ResourceType::Seed | ResourceType::Snapshot if n.materialized() != crate::project::nodes::Materialization::Ephemeral => {
            Some(Relation { unique_id: n.unique_id.clone(), sql: n.relation_name(), label: format!("{} {}", n.resource_type, n.name) })
        }
        _ => None,
    }
}

/// Resolves a relation as written in a checkpoint: `stg_orders`,
/// `ref('stg_orders')`, `source:raw.orders`, `source('raw', 'orders')`,
/// `raw.orders` (a source, else `schema.table` of a model).
pub fn resolve_relation(project: &Project, written: &str) -> Result<Relation, Option<String>> {
    let w = written.trim();
    let unquote = |s: &str| s.trim().trim_matches(|c| c == '\'' || c == '"').to_string();
    let call = |prefix: &str| w.strip_prefix(prefix).and_then(|r| r.strip_suffix(')')).map(|a| a.split(',').map(unquote).collect::<Vec<_>>());
    let (source, name): (Option<String>, String) = if let Some(a) = call("source(") {
        (a.first().cloned(), a.get(1).cloned().unwrap_or_default())
    } else if let Some(a) = call("ref(") {
        (None, a.last().cloned().unwrap_or_default())
    } else if let Some(rest) = w.strip_prefix("source:") {
        match rest.split_once('.') {
            Some((s, t)) => (Some(s.to_string()), t.to_string()),
            None => (Some(rest.to_string()), String::new()),
        }
    } else {
        (None, w.to_string())
    };
    let candidates = || {
        project.nodes.values().filter_map(|n| {
            let r = relation_of(n)?;
            Some((n, r))
        })
    };
    let found: Vec<Relation> = match &source {
        Some(s) => candidates()
            .filter(|(n, _)| n.resource_type == ResourceType::Source && n.source.as_ref().is_some_and(|x| &x.source_name == s) && n.name == name)
            .map(|(_, r)| r)
            .collect(),
        None => {
            let mut f: Vec<Relation> = candidates().filter(|(n, _)| n.resource_type != ResourceType::Source && n.name == name).map(|(_, r)| r).collect();
            if f.is_empty()
                && let Some((a, b)) = name.split_once('.')
            {
                f = candidates()
                    .filter(|(n, _)| {
                        n.resource_type == ResourceType::Source && n.source.as_ref().is_some_and(|x| x.source_name == a) && n.name == b
                            || n.resource_type != ResourceType::Source && n.schema == a && n.alias == b
                    })
                    .map(|(_, r)| r)
                    .collect();
            }
            f
        }
    };
    match found.len() {
        1 => Ok(found.into_iter().next().unwrap()),
        0 => {
            let names: Vec<String> = candidates()
                .map(|(n, _)| match (&n.resource_type, &n.source) {
                    (ResourceType::Source, Some(s)) => format!("source:{}.{}", s.source_name, n.name),
                    _ => n.name.clone(),
                })
                .collect();
            Err(suggest(w, names.iter().map(String::as_str)))
        }
        _ => Err(Some(format!("{w} is ambiguous; write source:<source>.<table> or the model's name"))),
    }
}

/// A validation bound to its relations: the expectations of one relation.
#[derive(Debug, Clone)]
pub struct Bound {
    pub relation: Relation,
    pub key_columns: Vec<String>,
    pub expectations: Vec<spec::Expectation>,
    /// Per expectation: the other relation it reads (referential integrity,
    /// row count of another table).
    pub others: Vec<Option<Relation>>,
    pub file: String,
    pub line: usize,
}

/// A checkpoint with every relation resolved.
#[derive(Debug, Clone)]
pub struct Resolved {
    pub checkpoint: Checkpoint,
    pub bound: Vec<Bound>,
}

impl Resolved {
    pub fn expectation_count(&self) -> usize {
        self.bound.iter().map(|b| b.expectations.len()).sum()
    }
}

/// Resolves each validation's relations (and the other relations its
/// expectations name); unknown names are errors with the closest name.
pub fn resolve(project: &Project, dag: &Dag, fs: &dyn crate::fs::FileSystem, cp: &Checkpoint) -> Result<Resolved, SpecError> {
    let mut bound = vec![];
    for v in &cp.validations {
        let relations = match &v.target {
            spec::Target::Relation(r) => vec![resolve_relation(project, r).map_err(|hint| {
                SpecError::at(
                    &cp.file,
                    v.line,
                    format!("relation `{r}` is not a model, seed or source of this project"),
                    Some(hint.map(|h| if h.contains(' ') { h } else { format!("did you mean `{h}`?") }).unwrap_or_else(|| "run `dp ls` to list them".into())),
                )
            })?],
            spec::Target::Select(s) => {
                let spec = crate::graph::select::SelectionSpec {
                    select: vec![s.clone()],
                    exclude: vec![],
                    selector: None,
                    resource_types: vec![ResourceType::Model, ResourceType::Seed, ResourceType::Source, ResourceType::Snapshot],
                    indirect: crate::graph::select::IndirectSelection::Empty,
                    state: None,
                };
                let ids =
                    crate::graph::select::select(project, dag, &spec, fs).map_err(|e| SpecError::at(&cp.file, v.line, format!("select `{s}`: {e}"), None))?;
                let rels: Vec<Relation> = ids.iter().filter_map(|u| project.nodes.get(u)).filter_map(relation_of).collect();
                if rels.is_empty() {
                    return Err(SpecError::at(
                        &cp.file,
                        v.line,
                        format!("select `{s}` matches no model, seed or source"),
                        Some("check it with `dp ls -s ...`".into()),
                    ));
                }
                rels
            }
        };
        for relation in relations {
            let mut others = vec![];
            for e in &v.expectations {
                let other = match e.kwargs.get("other_table").or(e.kwargs.get("other_table_name")).and_then(|v| v.as_str()) {
                    Some(o) => Some(resolve_relation(project, o).map_err(|hint| {
                        SpecError::at(
                            &cp.file,
                            e.line,
                            format!("{}: other table `{o}` is not a model, seed or source of this project", e.name()),
                            Some(hint.map(|h| format!("did you mean `{h}`?")).unwrap_or_else(|| "run `dp ls` to list them".into())),
                        )
                    })?),
                    None => None,
                };
                others.push(other);
            }
            bound.push(Bound {
                relation,
                key_columns: v.key_columns.clone(),
                expectations: v.expectations.clone(),
                others,
                file: cp.file.clone(),
                line: v.line,
            });
        }
    }
    Ok(Resolved { checkpoint: cp.clone(), bound })
}

/// What a run's actions did.
#[derive(Debug, Default, Clone)]
pub struct Recorded {
    pub json: Option<std::path::PathBuf>,
    pub docs_page: Option<std::path::PathBuf>,
    /// Problems of the actions (the run's results stand).
    pub warnings: Vec<String>,
    /// The `notify` action's note.
    pub notify: Option<String>,
}

/// Runs a finished run's actions: store results (`dp_meta`, failing rows,
/// validation JSON), update Data Docs, notify; and writes the SQL that ran
/// to `target/compiled/<project>/<checkpoint file stem>.sql`.
pub async fn record(
    engine: &crate::engine::Engine,
    target_dir: &std::path::Path,
    package: &str,
    resolved: &Arc<Resolved>,
    run: &mut run::CheckpointRun,
) -> Recorded {
    let mut out = Recorded::default();
    let actions = &resolved.checkpoint.actions;
    let t = std::time::Instant::now();
    if actions.store_results
        && let Err(e) = results::store_failures(engine, run).await
    {
        out.warnings.push(format!("checkpoint {}: storing failing rows in dp_failures failed: {e:#}", run.checkpoint));
    }
    let failures = t.elapsed();
    // the validation JSON and the Data Docs page are written on blocking
    // threads while the results are appended to dp_meta; the three share
    // the run's results (moved out of `run` meanwhile, not copied)
    let shared = Arc::new(run.take_results());
    let files = {
        let (dir, resolved, run) = (target_dir.to_path_buf(), resolved.clone(), shared.clone());
        let store_results = actions.store_results;
        let update_docs = actions.update_data_docs;
        let (jdir, jrun) = (dir.clone(), run.clone());
        let json = tokio::task::spawn_blocking(move || {
            let t = std::time::Instant::now();
            let out = store_results.then(|| results::write_json(&jdir, &jrun));
            tracing::debug!(elapsed = ?t.elapsed(), "validation JSON written");
            out
        });
        let docs = tokio::task::spawn_blocking(move || {
            let t = std::time::Instant::now();
            let out = update_docs.then(|| docs::add_run(&dir.join("data_docs"), &resolved, &run));
            tracing::debug!(elapsed = ?t.elapsed(), "Data Docs updated");
            out
        });
        async move { Ok::<_, tokio::task::JoinError>((json.await?, docs.await?)) }
    };
    if actions.store_results
        && let Err(e) = results::store(engine, &shared).await
    {
        out.warnings.push(format!("checkpoint {}: storing results in dp_meta failed: {e:#}", run.checkpoint));
    }
    let stored = t.elapsed();
    let files = files.await;
    run.results = match Arc::try_unwrap(shared) {
        Ok(r) => r.results,
        Err(shared) => shared.results.clone(),
    };
    match files {
        Ok((json, docs)) => {
            match json {
                Some(Ok(p)) => out.json = Some(p),
                Some(Err(e)) => out.warnings.push(format!("checkpoint {}: writing the validation JSON failed: {e:#}", run.checkpoint)),
                None => {}
            }
            match docs {
                Some(Ok(p)) => out.docs_page = Some(p),
                Some(Err(e)) => out.warnings.push(format!("checkpoint {}: updating Data Docs failed: {e}", run.checkpoint)),
                None => {}
            }
        }
        Err(e) => out.warnings.push(format!("checkpoint {}: writing the validation JSON and Data Docs failed: {e}", run.checkpoint)),
    }
    tracing::debug!(checkpoint = %run.checkpoint, ?failures, ?stored, recorded = ?t.elapsed(), "results recorded");
    if let Some(on) = &actions.notify {
        let fire = on == "always" || (on == "failure") != run.success();
        if fire {
            out.notify = Some(format!(
                "checkpoint {}: notify ({on}) is not configured: no alert channel exists yet (Slack/email alerts come with `dp` orchestration)",
                run.checkpoint
            ));
        }
    }
    let file = &resolved.checkpoint.file;
    let stem = file.rsplit_once('.').map(|(s, _)| s).unwrap_or(file);
    let path = target_dir.join("compiled").join(package).join(format!("{stem}.sql"));
    if let Some(parent) = path.parent() {
        let _ = std::fs::create_dir_all(parent);
    }
    let _ = std::fs::write(&path, run.queries.join(";\n\n") + ";\n");
    out
}
