//! Running a resolved checkpoint on the engine.
//!
//! 1. **Checks** (no query runs yet): every relation's schema is read; the
//!    columns, key columns, other relations and their columns an
//!    expectation names must exist, and each `row_condition` and custom
//!    query must plan; errors carry the checkpoint file and line.
//! 2. **One aggregate query per relation**: every map, aggregate and
//!    uniqueness expectation of a relation contributes expressions to one
//!    `select ... from <relation>` (identical expressions are computed once);
//!    schema expectations need no query; a failing `unique`, the other-table
//!    and custom-SQL expectations run their own query. If the batched query
//!    fails, each expectation runs alone so the error names its own
//!    expectation. The batch runs as one streaming pass of DataFusion's
//!    accumulators over the relation, without the SQL planner (see
//!    [`super::scan`]). `batch: false` runs one query per expectation
//!    through DataFusion's SQL planner instead, which evaluates every
//!    condition on every row (the equivalence tests and benchmarks compare
//!    both).
//! 3. **Failing rows**: for each expectation with unexpected rows, the first
//!    `failed_rows` rows (the relation's key columns and the expectation's
//!    columns), which also give GX's `partial_unexpected_list`.

use datafusion::arrow::array::{Array, ArrayRef, AsArray};
use datafusion::arrow::datatypes::{DataType, SchemaRef};
use datafusion::arrow::record_batch::RecordBatch;
use indexmap::IndexMap;
use serde_json::{Map, Value, json};
use std::time::{Duration, Instant};

use super::expectations::{self, Kind, col, columns, list};
use super::scan;
use super::spec::{Expectation, Severity, SpecError};
use super::{Bound, Resolved};
use crate::engine::Engine;

/// How a run executes.
#[derive(Debug, Clone)]
pub struct RunConfig {
    /// One aggregate query per relation (`false`: one per expectation).
    pub batch: bool,
    /// Relations validated at once.
    pub concurrency: usize,
    /// The reference time of freshness expectations without `as_of`.
    pub now: chrono::DateTime<chrono::Utc>,
}

impl Default for RunConfig {
    fn default() -> Self {
        RunConfig { batch: true, concurrency: 4, now: chrono::Utc::now() }
    }
}

/// Rows GX lists in `partial_unexpected_list`.
pub const PARTIAL_UNEXPECTED: usize = 20;

#[derive(Debug, Clone, serde::Serialize)]
pub struct ExpectationResult {
    /// `raw.customers`.
    pub relation: String,
    pub relation_id: String,
    pub expectation: String,
    /// `expect_column_values_to_be_between(quantity)`.
    pub label: String,
    pub kwargs: Map<String, Value>,
    pub meta: Map<String, Value>,
    pub severity: Severity,
    pub success: bool,
    pub element_count: Option<i64>,
    pub missing_count: Option<i64>,
    pub unexpected_count: Option<i64>,
    pub unexpected_percent: Option<f64>,
    pub observed_value: Value,
    pub partial_unexpected_list: Vec<Value>,
    /// The query error, when the expectation could not be evaluated.
    pub exception: Option<String>,
    pub file: String,
    pub line: usize,
    pub duration: Duration,
    /// Where the failing rows were stored (set by [`super::results`]).
    pub failed_rows_table: Option<String>,
    #[serde(skip)]
    pub failed_rows: Vec<RecordBatch>,
}

/// One run of one checkpoint.
#[derive(Debug, Clone)]
pub struct CheckpointRun {
    pub run_id: String,
    pub checkpoint: String,
    pub file: String,
    /// `check` or `build`.
    pub trigger: String,
    pub started_at: chrono::DateTime<chrono::Utc>,
    pub duration: Duration,
    pub results: Vec<ExpectationResult>,
    /// The SQL that ran, for `target/compiled/`.
    pub queries: Vec<String>,
}

impl CheckpointRun {
    /// The run with its results moved out of `self` and without its
    /// queries: what the result writers share while `self` keeps the rest.
    pub fn take_results(&mut self) -> CheckpointRun {
        CheckpointRun {
            run_id: self.run_id.clone(),
            checkpoint: self.checkpoint.clone(),
            file: self.file.clone(),
            trigger: self.trigger.clone(),
            started_at: self.started_at,
            duration: self.duration,
            results: std::mem::take(&mut self.results),
            queries: vec![],
        }
    }

    /// No error-severity expectation failed.
    pub fn success(&self) -> bool {
        !self.results.iter().any(|r| !r.success && r.severity == Severity::Error)
    }

    pub fn failed(&self, severity: Severity) -> usize {
        self.results.iter().filter(|r| !r.success && r.severity == severity).count()
    }

    pub fn passed(&self) -> usize {
        self.results.iter().filter(|r| r.success).count()
    }
}

/// Reads the schema of every relation and checks what the expectations
/// name, before anything runs.
pub async fn check(engine: &Engine, r: &Resolved) -> Result<Vec<SchemaRef>, SpecError> {
    let mut schemas = vec![];
    for b in &r.bound {
        let schema = schema_of(engine, &b.relation.sql).await.map_err(|e| {
            SpecError::at(
                &b.file,
                b.line,
                format!("{} ({}) cannot be read: {}", b.relation.label, b.relation.sql, first_line(&e)),
                Some(if b.relation.label.starts_with("source") {
                    "check the source's meta.external_location (or generate the demo data with `dp demo generate`)".to_string()
                } else {
                    format!("build it first: `dp build -s {}`", b.relation.label.rsplit(' ').next().unwrap_or(""))
                }),
            )
        })?;
        let names: Vec<&str> = schema.fields().iter().map(|f| f.name().as_str()).collect();
        let missing = |c: &str, line: usize, what: &str, of: &str, names: &[&str]| -> SpecError {
            let hint = match crate::util::suggest(c, names.iter().copied()) {
                Some(s) => format!("did you mean `{s}`?"),
                None => format!("its columns: {}", names.join(", ")),
            };
            SpecError::at(&b.file, line, format!("{what}: column `{c}` does not exist in {of}"), Some(hint))
        };
        for k in &b.key_columns {
            if !names.contains(&k.as_str()) {
                return Err(missing(k, b.line, "key_columns", &b.relation.sql, &names));
            }
        }
        // a condition shared by many expectations plans once
        let mut planned_conditions = std::collections::HashSet::new();
        for (e, other) in b.expectations.iter().zip(&b.others) {
            if e.def.kind != Kind::Schema {
                for c in columns(&e.kwargs) {
                    if !names.contains(&c.as_str()) {
                        return Err(missing(&c, e.line, e.name(), &b.relation.sql, &names));
                    }
                }
            }
            if let Some(cond) = &e.row_condition
                && planned_conditions.insert(cond.as_str())
            {
                let sql = format!("select 1 from {} where {cond}", b.relation.sql);
                engine.ctx.state().create_logical_plan(&sql).await.map_err(|err| {
                    SpecError::at(
                        &b.file,
                        e.line,
                        format!("{}: row_condition `{cond}` is not valid on {}: {}", e.name(), b.relation.sql, first_line(&err.to_string())),
                        None,
                    )
                })?;
            }
            if let Some(o) = other {
                let os = schema_of(engine, &o.sql).await.map_err(|err| {
                    SpecError::at(&b.file, e.line, format!("{}: {} ({}) cannot be read: {}", e.name(), o.label, o.sql, first_line(&err)), None)
                })?;
                let onames: Vec<&str> = os.fields().iter().map(|f| f.name().as_str()).collect();
                if e.def.kind == Kind::OtherTable {
                    let oc = other_column(&e.kwargs);
                    if !onames.contains(&oc.as_str()) {
                        return Err(missing(&oc, e.line, e.name(), &o.sql, &onames));
                    }
                }
            }
            if e.def.kind == Kind::Custom {
                let sql = custom_sql(e, &b.relation.sql);
                engine.ctx.state().create_logical_plan(&sql).await.map_err(|err| {
                    SpecError::at(&b.file, e.line, format!("unexpected_rows_query does not plan on {}: {}", b.relation.sql, first_line(&err.to_string())), None)
                })?;
            }
        }
        schemas.push(schema);
    }
    Ok(schemas)
}

fn first_line(s: &str) -> String {
    s.lines().next().unwrap_or(s).to_string()
}

async fn schema_of(engine: &Engine, sql: &str) -> Result<SchemaRef, String> {
    let p = engine.ctx.table_provider(sql).await.map_err(|e| e.to_string())?;
    Ok(p.schema())
}

fn other_column(kw: &Map<String, Value>) -> String {
    kw.get("other_column").or(kw.get("column")).and_then(Value::as_str).unwrap_or("").to_string()
}

fn custom_sql(e: &Expectation, relation: &str) -> String {
    let q = e.kwargs.get("unexpected_rows_query").and_then(Value::as_str).unwrap_or("");
    let batch = match &e.row_condition {
        Some(c) => format!("(select * from {relation} where {c})"),
        None => relation.to_string(),
    };
    q.replace("{batch}", &batch)
}

/// Runs a checked checkpoint.
pub async fn run(engine: &Engine, r: &Resolved, schemas: &[SchemaRef], cfg: &RunConfig, trigger: &str) -> CheckpointRun {
    let started_at = chrono::Utc::now();
    let t = Instant::now();
    let limit = r.checkpoint.failed_rows;
    // relations in groups of `concurrency`, in order
    let mut pending = Vec::with_capacity(r.bound.len());
    for (b, s) in r.bound.iter().zip(schemas) {
        pending.push(run_bound(engine, b, s, cfg, limit));
    }
    let mut outs: Vec<(Vec<ExpectationResult>, Vec<String>)> = vec![];
    while !pending.is_empty() {
        let rest = pending.split_off(cfg.concurrency.max(1).min(pending.len()));
        outs.extend(futures::future::join_all(pending).await);
        pending = rest;
    }
    let mut results = vec![];
    let mut queries = vec![];
    for (res, q) in outs {
        results.extend(res);
        queries.extend(q);
    }
    CheckpointRun {
        run_id: uuid::Uuid::new_v4().to_string(),
        checkpoint: r.checkpoint.name.clone(),
        file: r.checkpoint.file.clone(),
        trigger: trigger.to_string(),
        started_at,
        duration: t.elapsed(),
        results,
        queries,
    }
}

/// What one expectation reads from the batched row.
#[derive(Debug, Clone)]
enum Slot {
    Map {
        elem: usize,
        missing: Option<usize>,
        unexpected: usize,
    },
    Unique {
        elem: usize,
        nonnull: usize,
        distinct: usize,
    },
    Compound {
        elem: usize,
        missing: usize,
    },
    Aggregate {
        obs: usize,
        check: usize,
    },
    Schema,
    /// Other table: counts here, unexpected from its own query.
    Other {
        elem: usize,
        missing: usize,
    },
    RowCountOther {
        elem: usize,
    },
    Custom,
}

/// One relation's batched query: plain aggregates `a<k>` over the relation,
/// values `n<i>` over them (identical ones computed once), checks `c<j>`
/// over the values.
#[derive(Default)]
struct Batch {
    aggregates: IndexMap<String, usize>,
    /// The values (the `inner` expressions of the result row).
    inner: IndexMap<String, usize>,
    /// How each value is computed from the aggregates (in `inner`'s order).
    values: Vec<scan::Value>,
    checks: Vec<scan::Check>,
}

impl Batch {
    /// A value over aggregates (`{0}`, `{1}` in `template`).
    fn value(&mut self, aggregates: &[String], template: &str) -> usize {
        let mut v = template.to_string();
        let mut args = vec![];
        for (i, a) in aggregates.iter().enumerate() {
            let n = self.aggregates.len();
            let k = *self.aggregates.entry(a.clone()).or_insert(n);
            v = v.replace(&format!("{{{i}}}"), &format!("a{k}"));
            args.push(k);
        }
        let n = self.inner.len();
        let i = *self.inner.entry(v).or_insert(n);
        if i == n {
            self.values.push(scan::Value { template: template.to_string(), args });
        }
        i
    }

    fn expr(&mut self, aggregate: String) -> usize {
        self.value(&[aggregate], "{0}")
    }

    /// The batch as SQL (what `target/compiled/` shows; it runs as one
    /// streaming pass of DataFusion's accumulators, see [`scan`]).
    fn sql(&self, relation: &str) -> Option<String> {
        if self.inner.is_empty() {
            return None;
        }
        let aggs: Vec<String> = self.aggregates.iter().map(|(e, k)| format!("      {e} as a{k}")).collect();
        let vals: Vec<String> = self.inner.iter().map(|(e, i)| format!("    {e} as n{i}")).collect();
        let mut outer: Vec<String> = (0..self.inner.len()).map(|i| format!("  n{i}")).collect();
        outer.extend(self.checks.iter().enumerate().map(|(i, c)| format!("  case when {} then 1 else 0 end as c{i}", c.sql)));
        Some(format!(
            "select\n{}\nfrom (\n  select\n{}\n  from (\n    select\n{}\n    from {relation}\n  ) dp_aggregates\n) dp_checks",
            outer.join(",\n"),
            vals.join(",\n"),
            aggs.join(",\n")
        ))
    }

    async fn query(&self, engine: &Engine, relation: &str) -> anyhow::Result<Row> {
        let t = Instant::now();
        let aggregates: Vec<String> = self.aggregates.keys().cloned().collect();
        match scan::evaluate(engine, relation, &aggregates, &self.values, &self.checks).await {
            Ok(cols) => {
                tracing::debug!(relation, aggregates = aggregates.len(), values = self.inner.len(), total = ?t.elapsed(), "batched checks ran");
                Ok(Row { cols, inner: self.inner.len() })
            }
            // what the streaming pass cannot lower, the SQL planner may
            Err(err) => {
                tracing::debug!(relation, error = %err, "streaming checks failed; planning them as one query");
                self.planned_query(engine, relation).await
            }
        }
    }

    /// The batch as one query through DataFusion's planner.
    async fn planned_query(&self, engine: &Engine, relation: &str) -> anyhow::Result<Row> {
        let ctx = &engine.ctx;
        let df = ctx.table(relation).await?;
        let aggs = self.aggregates.iter().map(|(e, k)| Ok(df.parse_sql_expr(e)?.alias(format!("a{k}")))).collect::<anyhow::Result<Vec<_>>>()?;
        let df = df.aggregate(vec![], aggs)?;
        let vals = self.inner.iter().map(|(e, i)| Ok(df.parse_sql_expr(e)?.alias(format!("n{i}")))).collect::<anyhow::Result<Vec<_>>>()?;
        let df = df.select(vals)?;
        let mut out: Vec<datafusion::prelude::Expr> = (0..self.inner.len()).map(|i| datafusion::prelude::col(format!("n{i}"))).collect();
        for (i, c) in self.checks.iter().enumerate() {
            out.push(df.parse_sql_expr(&format!("case when {} then 1 else 0 end", c.sql))?.alias(format!("c{i}")));
        }
        let batches = df.select(out)?.collect().await?;
        let b = batches.iter().find(|b| b.num_rows() > 0).ok_or_else(|| anyhow::anyhow!("the batched query returned no row"))?;
        Ok(Row { cols: b.columns().iter().map(|c| c.slice(0, 1)).collect(), inner: self.inner.len() })
    }

    fn count(&mut self, cond: Option<&str>, what: Option<&str>) -> usize {
        let agg = match (cond, what) {
            (None, None) => return self.expr("count(1)".into()),
            (Some(k), None) => format!("sum(case when {k} then 1 else 0 end)"),
            (None, Some(w)) => format!("sum(case when {w} then 1 else 0 end)"),
            (Some(k), Some(w)) => format!("sum(case when ({k}) and {w} then 1 else 0 end)"),
        };
        self.value(&[agg], "cast(coalesce({0}, 0) as bigint)")
    }

    fn plan(&mut self, e: &Expectation, now: chrono::DateTime<chrono::Utc>) -> Slot {
        let cond = e.row_condition.as_deref();
        let kw = &e.kwargs;
        match e.def.kind {
            Kind::Map => {
                let m = expectations::map_sql(e.name(), kw);
                let elem = self.count(cond, None);
                let missing = m.missing.as_ref().map(|x| self.count(cond, Some(&format!("({x})"))));
                let unexpected_if = match &m.missing {
                    Some(x) => format!("not coalesce(({x}), false) and not coalesce(({}), false)", m.pred),
                    None => format!("not coalesce(({}), false)", m.pred),
                };
                let unexpected = self.count(cond, Some(&unexpected_if));
                Slot::Map { elem, missing, unexpected }
            }
            Kind::Unique if e.name() == "expect_column_values_to_be_unique" => {
                let c = col(kw.get("column").and_then(Value::as_str).unwrap_or(""));
                let x = match cond {
                    Some(k) => format!("case when {k} then {c} end"),
                    None => c,
                };
                let elem = self.count(cond, None);
                let nonnull = self.expr(format!("count({x})"));
                let distinct = self.expr(format!("count(distinct {x})"));
                Slot::Unique { elem, nonnull, distinct }
            }
            Kind::Unique => {
                let elem = self.count(cond, None);
                let missing = self.count(cond, Some(&format!("({})", ignored_rows(kw))));
                Slot::Compound { elem, missing }
            }
            Kind::Aggregate => {
                let a = expectations::aggregate_sql(e.name(), kw, cond, now);
                let obs = self.value(&a.aggregates, &a.value);
                self.checks.push(scan::Check { sql: (a.check)(&format!("n{obs}")), value: obs });
                Slot::Aggregate { obs, check: self.checks.len() - 1 }
            }
            Kind::Schema => Slot::Schema,
            Kind::OtherTable => {
                let c = col(kw.get("column").and_then(Value::as_str).unwrap_or(""));
                let elem = self.count(cond, None);
                let missing = self.count(cond, Some(&format!("{c} is null")));
                Slot::Other { elem, missing }
            }
            Kind::RowCountOther => Slot::RowCountOther { elem: self.count(cond, None) },
            Kind::Custom => Slot::Custom,
        }
    }
}

/// Rows compound uniqueness leaves out (`ignore_row_if`, default: all
/// values missing).
fn ignored_rows(kw: &Map<String, Value>) -> String {
    let cols: Vec<String> = list(kw, "column_list").iter().map(|c| format!("{} is null", col(c))).collect();
    match kw.get("ignore_row_if").and_then(Value::as_str).unwrap_or("all_values_are_missing") {
        "any_value_is_missing" => cols.join(" or "),
        "never" | "neither" => "false".into(),
        _ => cols.join(" and "),
    }
}

/// The row of a batched query: `inner` expressions `n0..`, then the checks `c0..`.
struct Row {
    cols: Vec<ArrayRef>,
    inner: usize,
}

impl Row {
    fn int(&self, i: usize) -> i64 {
        let a = &self.cols[i];
        if a.is_null(0) {
            return 0;
        }
        match a.data_type() {
            DataType::Int64 => a.as_primitive::<datafusion::arrow::datatypes::Int64Type>().value(0),
            _ => json_of(a, 0).as_f64().unwrap_or(0.0) as i64,
        }
    }
}

async fn query_row(engine: &Engine, sql: &str, inner: usize) -> anyhow::Result<Row> {
    let batches = engine.ctx.sql(sql).await?.collect().await?;
    let b = batches.iter().find(|b| b.num_rows() > 0).ok_or_else(|| anyhow::anyhow!("the query returned no row"))?;
    Ok(Row { cols: b.columns().iter().map(|c| c.slice(0, 1)).collect(), inner })
}

async fn query_count(engine: &Engine, sql: &str) -> anyhow::Result<i64> {
    Ok(query_row(engine, sql, 1).await?.int(0))
}

/// A value of an Arrow array as JSON (numbers stay numbers; dates and
/// timestamps as their ISO text).
pub fn json_of(a: &ArrayRef, i: usize) -> Value {
    use datafusion::arrow::datatypes::*;
    if a.is_null(i) {
        return Value::Null;
    }
    macro_rules! num {
        ($t:ty) => {
            json!(a.as_primitive::<$t>().value(i))
        };
    }
    match a.data_type() {
        DataType::Boolean => json!(a.as_boolean().value(i)),
        DataType::Int8 => num!(Int8Type),
        DataType::Int16 => num!(Int16Type),
        DataType::Int32 => num!(Int32Type),
        DataType::Int64 => num!(Int64Type),
        DataType::UInt8 => num!(UInt8Type),
        DataType::UInt16 => num!(UInt16Type),
        DataType::UInt32 => num!(UInt32Type),
        DataType::UInt64 => num!(UInt64Type),
        DataType::Float32 => serde_json::Number::from_f64(a.as_primitive::<Float32Type>().value(i) as f64).map(Value::Number).unwrap_or(Value::Null),
        DataType::Float64 => serde_json::Number::from_f64(a.as_primitive::<Float64Type>().value(i)).map(Value::Number).unwrap_or(Value::Null),
        DataType::Decimal128(_, s) => {
            let v = a.as_primitive::<Decimal128Type>().value(i) as f64 / 10f64.powi(*s as i32);
            serde_json::Number::from_f64(v).map(Value::Number).unwrap_or(Value::Null)
        }
        _ => Value::String(datafusion::arrow::util::display::array_value_to_string(a, i).unwrap_or_default()),
    }
}

async fn run_bound(engine: &Engine, b: &Bound, schema: &SchemaRef, cfg: &RunConfig, limit: usize) -> (Vec<ExpectationResult>, Vec<String>) {
    let rel = &b.relation.sql;
    let mut queries = vec![];
    // Which batch (and slot) answers each expectation.
    let mut batches: Vec<Batch> = vec![];
    let mut slots: Vec<(usize, Slot)> = vec![];
    for e in &b.expectations {
        if !cfg.batch || batches.is_empty() {
            batches.push(Batch::default());
        }
        let i = batches.len() - 1;
        let slot = batches[i].plan(e, cfg.now);
        slots.push((i, slot));
    }
    // Run each batch; a failed batch of several falls back to one by one.
    let mut rows: Vec<Option<(anyhow::Result<Row>, Duration)>> = vec![];
    for batch in &batches {
        let Some(sql) = batch.sql(rel) else {
            rows.push(None);
            continue;
        };
        let t = Instant::now();
        let r = if cfg.batch { batch.query(engine, rel).await } else { batch.planned_query(engine, rel).await };
        queries.push(sql);
        rows.push(Some((r, t.elapsed())));
    }
    let mut out = vec![];
    for (k, (e, other)) in b.expectations.iter().zip(&b.others).enumerate() {
        let (bi, slot) = &slots[k];
        let mut t = Instant::now();
        let mut shared = Duration::ZERO;
        let mut alone: Option<(anyhow::Result<Row>, Slot)> = None;
        let row: Option<&Row> = match &rows[*bi] {
            Some((Ok(r), d)) => {
                shared = *d;
                Some(r)
            }
            Some((Err(_), _)) if cfg.batch => {
                let mut one = Batch::default();
                let s = one.plan(e, cfg.now);
                alone = Some((one.query(engine, rel).await, s));
                None
            }
            _ => None,
        };
        let (row, slot) = match (&alone, row) {
            (Some((Ok(r), s)), _) => (Some(r), s),
            (Some((Err(_), s)), _) => (None, s),
            (None, r) => (r, slot),
        };
        let error = match (&alone, &rows[*bi]) {
            (Some((Err(err), _)), _) => Some(err.to_string()),
            (None, Some((Err(err), _))) => Some(err.to_string()),
            _ => None,
        };
        let mut res = ExpectationResult {
            relation: rel.clone(),
            relation_id: b.relation.unique_id.clone(),
            expectation: e.name().to_string(),
            label: e.label(),
            kwargs: e.gx_kwargs(),
            meta: e.meta.clone(),
            severity: e.severity,
            success: false,
            element_count: None,
            missing_count: None,
            unexpected_count: None,
            unexpected_percent: None,
            observed_value: Value::Null,
            partial_unexpected_list: vec![],
            exception: error.clone(),
            file: b.file.clone(),
            line: e.line,
            duration: Duration::ZERO,
            failed_rows_table: None,
            failed_rows: vec![],
        };
        if matches!(slot, Slot::Schema) {
            evaluate_schema(e, schema, &mut res);
        } else if error.is_none()
            && let Err(err) = evaluate(engine, b, e, other.as_ref(), slot, row, &mut res, &mut queries).await
        {
            res.exception = Some(err.to_string());
            res.success = false;
        }
        if alone.is_none() && !matches!(slot, Slot::Schema) {
            t = t.checked_sub(shared).unwrap_or(t);
        }
        res.duration = t.elapsed();
        out.push(res);
    }
    // The failing rows of the expectations that found some: their queries
    // run concurrently, each result in its expectation's place.
    let wanted: Vec<usize> =
        (0..out.len()).filter(|&k| out[k].exception.is_none() && out[k].unexpected_count.unwrap_or(0) > 0 && (limit > 0 || !out[k].success)).collect();
    type Read = (usize, anyhow::Result<(String, Vec<RecordBatch>)>, Duration);
    let mut reads: Vec<futures::future::BoxFuture<'_, Read>> = vec![];
    for k in wanted {
        reads.push(Box::pin(async move {
            let t = Instant::now();
            (k, failing_rows(engine, b, &b.expectations[k], b.others[k].as_ref(), limit.max(PARTIAL_UNEXPECTED)).await, t.elapsed())
        }));
    }
    let read: Vec<Read> = futures::StreamExt::collect(futures::StreamExt::buffered(futures::stream::iter(reads), cfg.concurrency.max(1))).await;
    for (k, rows, took) in read {
        let res = &mut out[k];
        res.duration += took;
        match rows {
            Ok((sql, batches)) => {
                queries.push(sql);
                res.partial_unexpected_list = partial_list(&b.expectations[k], &batches);
                if !res.success && limit > 0 {
                    res.failed_rows = cap(batches, limit);
                }
            }
            Err(err) => tracing::debug!(expectation = %res.label, error = %err, "failing rows could not be read"),
        }
    }
    (out, queries)
}

fn cap(batches: Vec<RecordBatch>, limit: usize) -> Vec<RecordBatch> {
    let mut left = limit;
    let mut out = vec![];
    for b in batches {
        if left == 0 {
            break;
        }
        let n = b.num_rows().min(left);
        left -= n;
        out.push(b.slice(0, n));
    }
    out
}

fn mostly_success(nonmissing: i64, unexpected: i64, mostly: f64) -> bool {
    if nonmissing <= 0 {
        return true;
    }
    (nonmissing - unexpected) as f64 / nonmissing as f64 >= mostly
}

fn percent(part: i64, whole: i64) -> Option<f64> {
    if whole > 0 { Some(part as f64 * 100.0 / whole as f64) } else { None }
}

#[allow(clippy::too_many_arguments)]
async fn evaluate(
    engine: &Engine,
    b: &Bound,
    e: &Expectation,
    other: Option<&super::Relation>,
    slot: &Slot,
    row: Option<&Row>,
    res: &mut ExpectationResult,
    queries: &mut Vec<String>,
) -> anyhow::Result<()> {
    let rel = &b.relation.sql;
    // custom SQL needs no batched row; every other slot does
    let empty = Row { cols: vec![], inner: 0 };
    let row = match (row, slot) {
        (Some(r), _) => r,
        (None, Slot::Custom) => &empty,
        (None, _) => anyhow::bail!("the batched query gave no row"),
    };
    let cond = e.row_condition.as_deref();
    let counted = |elem: i64, missing: i64, unexpected: i64, res: &mut ExpectationResult| {
        let nonmissing = elem - missing;
        res.element_count = Some(elem);
        res.missing_count = Some(missing);
        res.unexpected_count = Some(unexpected);
        res.unexpected_percent = percent(unexpected, nonmissing).or(Some(0.0));
        res.success = mostly_success(nonmissing, unexpected, e.mostly);
    };
    match slot {
        Slot::Map { elem, missing, unexpected } => {
            counted(row.int(*elem), missing.map(|m| row.int(m)).unwrap_or(0), row.int(*unexpected), res);
        }
        Slot::Unique { elem, nonnull, distinct } => {
            let (n, nn, d) = (row.int(*elem), row.int(*nonnull), row.int(*distinct));
            let unexpected = if nn == d {
                0
            } else {
                let sql = duplicates_count_sql(rel, &[e.kwargs["column"].as_str().unwrap_or("").to_string()], cond, None);
                queries.push(sql.clone());
                query_count(engine, &sql).await?
            };
            counted(n, n - nn, unexpected, res);
        }
        Slot::Compound { elem, missing } => {
            let cols = list(&e.kwargs, "column_list");
            let sql = duplicates_count_sql(rel, &cols, cond, Some(&ignored_rows(&e.kwargs)));
            queries.push(sql.clone());
            let unexpected = query_count(engine, &sql).await?;
            counted(row.int(*elem), row.int(*missing), unexpected, res);
        }
        Slot::Aggregate { obs, check } => {
            res.observed_value = json_of(&row.cols[*obs], 0);
            res.success = row.int(row.inner + *check) == 1;
            if e.name().starts_with("expect_table_row_count") {
                res.element_count = res.observed_value.as_i64();
            }
        }
        Slot::Other { elem, missing } => {
            let o = other.ok_or_else(|| anyhow::anyhow!("the other table was not resolved"))?;
            let c = col(e.kwargs["column"].as_str().unwrap_or(""));
            let sql = format!(
                "select cast(count(*) as bigint) from {rel} as dp_r left join (select distinct {} as dp_k from {}) dp_o on dp_r.{c} = dp_o.dp_k where {}dp_r.{c} is not null and dp_o.dp_k is null",
                col(&other_column(&e.kwargs)),
                o.sql,
                cond.map(|k| format!("({k}) and ")).unwrap_or_default()
            );
            queries.push(sql.clone());
            let unexpected = query_count(engine, &sql).await?;
            counted(row.int(*elem), row.int(*missing), unexpected, res);
        }
        Slot::RowCountOther { elem } => {
            let o = other.ok_or_else(|| anyhow::anyhow!("the other table was not resolved"))?;
            let sql = format!("select count(*) from {}", o.sql);
            queries.push(sql.clone());
            let theirs = query_count(engine, &sql).await?;
            let mine = row.int(*elem);
            res.observed_value = json!({"self": mine, "other": theirs});
            res.element_count = Some(mine);
            res.success = mine == theirs;
        }
        Slot::Custom => {
            let sql = format!("select cast(count(*) as bigint) from ({}) dp_unexpected", custom_sql(e, rel));
            queries.push(sql.clone());
            let n = query_count(engine, &sql).await?;
            res.observed_value = json!(n);
            res.unexpected_count = Some(n);
            res.success = n == 0;
        }
        Slot::Schema => {}
    }
    Ok(())
}

/// GX's uniqueness count: every row whose value (combination) occurs more
/// than once.
fn duplicates_count_sql(rel: &str, cols: &[String], cond: Option<&str>, ignored: Option<&str>) -> String {
    let cs: Vec<String> = cols.iter().map(|c| col(c)).collect();
    let mut filters = vec![];
    if let Some(k) = cond {
        filters.push(format!("({k})"));
    }
    match ignored {
        Some(i) => filters.push(format!("not ({i})")),
        None => filters.extend(cs.iter().map(|c| format!("{c} is not null"))),
    }
    let filter = if filters.is_empty() { String::new() } else { format!(" where {}", filters.join(" and ")) };
    format!("select cast(coalesce(sum(n), 0) as bigint) from (select count(*) as n from {rel}{filter} group by {} having count(*) > 1) dp_dups", cs.join(", "))
}

/// The failing rows' query: key columns and the expectation's columns.
fn failing_rows_sql(b: &Bound, e: &Expectation, other: Option<&super::Relation>, limit: usize) -> Option<String> {
    let rel = &b.relation.sql;
    let cond = e.row_condition.as_deref();
    let mut cols: Vec<String> = b.key_columns.clone();
    for c in columns(&e.kwargs) {
        if !cols.contains(&c) {
            cols.push(c);
        }
    }
    let select = |q: &str| if cols.is_empty() { "*".to_string() } else { cols.iter().map(|c| format!("{q}{}", col(c))).collect::<Vec<_>>().join(", ") };
    let and_cond = cond.map(|k| format!("({k}) and ")).unwrap_or_default();
    Some(match e.def.kind {
        Kind::Map => {
            let m = expectations::map_sql(e.name(), &e.kwargs);
            let missing = m.missing.map(|x| format!("not coalesce(({x}), false) and ")).unwrap_or_default();
            format!("select {} from {rel} where {and_cond}{missing}not coalesce(({}), false) limit {limit}", select(""), m.pred)
        }
        Kind::Unique => {
            let ucols: Vec<String> =
                if e.name() == "expect_column_values_to_be_unique" { vec![e.kwargs["column"].as_str()?.to_string()] } else { list(&e.kwargs, "column_list") };
            let part: Vec<String> = ucols.iter().map(|c| col(c)).collect();
            let ignored = if e.name() == "expect_column_values_to_be_unique" { format!("{} is null", part[0]) } else { ignored_rows(&e.kwargs) };
            format!(
                "select {} from (select *, count(*) over (partition by {}) as dp_n from {rel} where {and_cond}not ({ignored})) dp_rows where dp_n > 1 limit {limit}",
                select(""),
                part.join(", ")
            )
        }
        Kind::OtherTable => {
            let o = other?;
            let c = col(e.kwargs["column"].as_str()?);
            format!(
                "select {} from {rel} as dp_r left join (select distinct {} as dp_k from {}) dp_o on dp_r.{c} = dp_o.dp_k where {and_cond}dp_r.{c} is not null and dp_o.dp_k is null limit {limit}",
                select("dp_r."),
                col(&other_column(&e.kwargs)),
                o.sql
            )
        }
        Kind::Custom => format!("select * from ({}) dp_unexpected limit {limit}", custom_sql(e, rel)),
        _ => return None,
    })
}

async fn failing_rows(
    engine: &Engine,
    b: &Bound,
    e: &Expectation,
    other: Option<&super::Relation>,
    limit: usize,
) -> anyhow::Result<(String, Vec<RecordBatch>)> {
    let sql = failing_rows_sql(b, e, other, limit).ok_or_else(|| anyhow::anyhow!("no failing rows for this expectation"))?;
    let batches = engine.ctx.sql(&sql).await?.collect().await?;
    Ok((sql, batches))
}

/// GX's `partial_unexpected_list`: the failing values (one column) or
/// objects (several), first 20.
fn partial_list(e: &Expectation, batches: &[RecordBatch]) -> Vec<Value> {
    let cols = columns(&e.kwargs);
    let mut out = vec![];
    for b in batches {
        let schema = b.schema();
        for i in 0..b.num_rows() {
            if out.len() >= PARTIAL_UNEXPECTED {
                return out;
            }
            let pick: Vec<usize> = if cols.is_empty() { (0..b.num_columns()).collect() } else { cols.iter().filter_map(|c| schema.index_of(c).ok()).collect() };
            if pick.len() == 1 {
                out.push(json_of(b.column(pick[0]), i));
            } else {
                let mut m = Map::new();
                for j in pick {
                    m.insert(schema.field(j).name().clone(), json_of(b.column(j), i));
                }
                out.push(Value::Object(m));
            }
        }
    }
    out
}

fn evaluate_schema(e: &Expectation, schema: &SchemaRef, res: &mut ExpectationResult) {
    let names: Vec<String> = schema.fields().iter().map(|f| f.name().clone()).collect();
    let kw = &e.kwargs;
    let column = kw.get("column").and_then(Value::as_str).unwrap_or("");
    let field = schema.field_with_name(column).ok();
    match e.name() {
        "expect_table_columns_to_match_ordered_list" => {
            res.observed_value = json!(names);
            res.success = names == list(kw, "column_list");
        }
        "expect_table_columns_to_match_set" => {
            let want = list(kw, "column_set");
            res.observed_value = json!(names);
            let exact = kw.get("exact_match").and_then(Value::as_bool).unwrap_or(true);
            let all_there = want.iter().all(|c| names.contains(c));
            res.success = all_there && (!exact || names.iter().all(|c| want.contains(c)));
        }
        "expect_table_column_count_to_equal" => {
            res.observed_value = json!(names.len());
            res.success = kw.get("value").and_then(Value::as_u64) == Some(names.len() as u64);
        }
        "expect_table_column_count_to_be_between" => {
            res.observed_value = json!(names.len());
            let n = names.len() as f64;
            res.success =
                kw.get("min_value").and_then(Value::as_f64).is_none_or(|m| n >= m) && kw.get("max_value").and_then(Value::as_f64).is_none_or(|m| n <= m);
        }
        "expect_column_to_exist" => {
            let at = names.iter().position(|n| n == column);
            res.observed_value = json!(at);
            res.success = match (at, kw.get("column_index").and_then(Value::as_u64)) {
                (Some(i), Some(want)) => i as u64 == want,
                (Some(_), None) => true,
                _ => false,
            };
        }
        "expect_column_values_to_be_of_type" | "expect_column_values_to_be_in_type_list" => {
            let Some(f) = field else {
                res.exception = Some(format!("column `{column}` does not exist in {}", res.relation));
                return;
            };
            res.observed_value = json!(sql_type_name(f.data_type()));
            let wanted: Vec<String> = match kw.get("type_").and_then(Value::as_str) {
                Some(t) => vec![t.to_string()],
                None => list(kw, "type_list"),
            };
            res.success = wanted.iter().any(|t| expectations::type_matches(f.data_type(), t));
        }
        _ => {}
    }
}

/// A type's SQL name for observed values (`BIGINT`, `VARCHAR`, `DECIMAL(10,2)`).
pub fn sql_type_name(dt: &DataType) -> String {
    match dt {
        DataType::Int8 => "TINYINT".into(),
        DataType::Int16 => "SMALLINT".into(),
        DataType::Int32 => "INTEGER".into(),
        DataType::Int64 => "BIGINT".into(),
        DataType::Float32 => "FLOAT".into(),
        DataType::Float64 => "DOUBLE".into(),
        DataType::Utf8 | DataType::LargeUtf8 | DataType::Utf8View => "VARCHAR".into(),
        DataType::Boolean => "BOOLEAN".into(),
        DataType::Date32 | DataType::Date64 => "DATE".into(),
        DataType::Timestamp(_, None) => "TIMESTAMP".into(),
        DataType::Timestamp(_, Some(_)) => "TIMESTAMP WITH TIME ZONE".into(),
        DataType::Decimal128(p, s) | DataType::Decimal256(p, s) => format!("DECIMAL({p},{s})"),
        other => other.to_string(),
    }
}
