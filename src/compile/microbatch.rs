//! Compiling a microbatch model for one batch, as dbt 1.11's
//! `MicrobatchBatchRunner.compile`: `model.batch` holds the batch's `id`,
//! `event_time_start` and `event_time_end`, `is_incremental()` is the
//! batch's, and every `ref()`/`source()` whose target has an `event_time`
//! config renders filtered to the batch's window,
//! `(select * from rel where et >= '<start>' and et < '<end>')` (inputs
//! without `event_time` are read whole).

use std::collections::HashMap;
use std::sync::Arc;

use indexmap::IndexSet;
use serde_json::json;

use super::{Compiled, ProjectResolver, compile_with, resolver};
use crate::jinja::{Relation, RenderCtx, Resolver};
use crate::project::load::{Project, model_value};
use crate::project::microbatch::{Batch, py_str};
use crate::project::nodes::{Node, RefCall};

/// The batch a microbatch model is compiled for.
#[derive(Debug, Clone)]
pub struct BatchCtx {
    /// The microbatch model's unique id (only it sees the batch).
    pub uid: String,
    pub batch: Batch,
    /// `model.batch.id` (`20240104`).
    pub id: String,
    /// `is_incremental()` for this batch.
    pub incremental: bool,
}

impl Compiled {
    /// The model's SQL for one batch (ephemerals inlined), rendered now.
    pub fn compile_batch(&self, project: &Project, ctx: BatchCtx) -> Result<String, String> {
        let uid = ctx.uid.clone();
        let ids: IndexSet<String> = [uid.clone()].into_iter().collect();
        let c = compile_with(project, &ids, &self.opts, self.resolver.clone().unwrap_or_else(|| resolver(project, &self.opts)), Some(&ctx));
        if let Some(e) = c.errors.get(&uid) {
            return Err(e.clone());
        }
        c.sql.get(&uid).cloned().ok_or_else(|| format!("{uid} was not compiled"))
    }
}

/// Points a render context at the batch: filtered inputs, `model.batch`.
pub(super) fn scope(rctx: &mut RenderCtx, project_resolver: Arc<ProjectResolver>, n: &Node, ctx: &BatchCtx) {
    rctx.model = model_with_batch(n, Some(ctx));
    rctx.is_incremental = ctx.incremental;
    rctx.resolver = Some(Arc::new(BatchResolver { inner: project_resolver, batch: ctx.batch }));
}

/// `model` with its `batch` (`none` outside a batch, as in dbt's compile).
pub(super) fn model_with_batch(n: &Node, ctx: Option<&BatchCtx>) -> minijinja::Value {
    let mut model = serde_json::to_value(model_value(n)).unwrap_or_else(|_| json!({}));
    if let Some(m) = model.as_object_mut() {
        let batch = ctx.map(|c| json!({"id": c.id, "event_time_start": py_str(c.batch.start), "event_time_end": py_str(c.batch.end)}));
        m.insert("batch".into(), batch.unwrap_or(serde_json::Value::Null));
    }
    minijinja::Value::from_serialize(&model)
}

/// `rel` (as SQL reads it: limited under `--empty`) with only its rows whose
/// `field` lies in `window`, as dbt renders an event-time filter (a
/// microbatch batch's input, or `--sample`).
pub(super) fn windowed(rel: Relation, window: &Batch, field: &str) -> Relation {
    let rendered = format!("(select * from {} where {})", rel.limited(), window.filter(field));
    Relation { rendered: Some(rendered), limit: None, ..rel }
}

/// Resolves as the project does, then filters inputs that have an
/// `event_time` to the batch.
struct BatchResolver {
    inner: Arc<ProjectResolver>,
    batch: Batch,
}

impl BatchResolver {
    fn filtered(&self, rel: Relation, event_time: Option<&String>) -> Relation {
        match event_time {
            Some(field) => {
                // dbt wraps a limited relation (`--empty`) in the filter, and
                // under `--sample` filters to where the window and the batch meet
                let window = match self.inner.sample {
                    Some(s) => Batch { start: s.start.max(self.batch.start), end: s.end.min(self.batch.end) },
                    None => self.batch,
                };
                windowed(rel, &window, field)
            }
            None => rel,
        }
    }
}

impl Resolver for BatchResolver {
    // The inputs unsampled: `filtered` applies the sample with the batch.
    fn resolve_ref(&self, package: &str, call: &RefCall) -> Result<Relation, String> {
        let (rel, et) = self.inner.input_ref(package, call)?;
        Ok(self.filtered(rel, et))
    }

    fn resolve_source(&self, _from: &str, source: &str, table: &str) -> Result<Relation, String> {
        let (rel, et) = self.inner.input_source(source, table)?;
        Ok(self.filtered(rel, et))
    }
}

/// `event_time` of every model, seed, snapshot (by unique id) and source
/// table (by source and table name) that sets one.
pub(super) fn event_times(project: &Project) -> (HashMap<String, String>, HashMap<(String, String), String>) {
    let mut nodes = HashMap::new();
    let mut sources = HashMap::new();
    for (uid, n) in &project.nodes {
        let Some(et) = n.config.get("event_time").and_then(|v| v.as_str()).filter(|s| !s.is_empty()) else { continue };
        match &n.source {
            Some(s) => {
                sources.insert((s.source_name.clone(), n.name.clone()), et.to_string());
            }
            None => {
                nodes.insert(uid.clone(), et.to_string());
            }
        }
    }
    (nodes, sources)
}
