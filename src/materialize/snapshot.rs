//! Snapshots (dbt's type-2 slowly changing dimensions) as Delta tables.
//!
//! The first run writes the query's rows with dbt's four columns
//! (`dbt_scd_id`, `dbt_updated_at`, `dbt_valid_from`, `dbt_valid_to`, and
//! `dbt_is_deleted` for `hard_deletes: new_record`) in one commit. Later
//! runs compute dbt's staging rows (`snapshot_staging_table`: insertions,
//! updates, deletes, deletion records) in one DataFusion query, held in
//! memory (they are the run's changes), and apply them in ONE Delta MERGE
//! commit: versions whose row changed or vanished get
//! their `dbt_valid_to`, new versions are inserted. A failed run commits
//! nothing, so the table stays at its previous version.
//!
//! Values are computed as dbt-duckdb computes them: `dbt_scd_id` is
//! `md5(key || '|' || updated_at)` over DuckDB's text of each value (as
//! `snapshot_hash_arguments`), the snapshot time is the project's
//! `snapshot_get_time()` evaluated once per run. Three dbt bugs are not
//! copied: key columns match NULL to NULL (a NULL in a composite key does
//! not add a version on every run), deletion records carry the deleted
//! row's values (never an all-NULL row), and a row restored after a hard
//! delete gets a new current version even when its `dbt_scd_id` equals the
//! invalidated one's (dbt's MERGE on `dbt_scd_id` skips it; dbt-duckdb's
//! insert does not).

use anyhow::{Context as _, bail};
use datafusion::arrow::array::{Array, ArrayRef, AsArray, StringBuilder};
use datafusion::arrow::datatypes::{DataType, TimeUnit};
use datafusion::common::Result as DfResult;
use datafusion::logical_expr::{ColumnarValue, ScalarFunctionArgs, ScalarUDF, ScalarUDFImpl, Signature, Volatility};
use datafusion::prelude::DataFrame;
use std::sync::Arc;

use super::delta::{Materialized, checkpoint_if_due, delta_compatible, overwrite, write_error};
use crate::engine::Engine;
use crate::jinja::JinjaEnv;
use crate::project::nodes::Node;
use crate::project::snapshot::{CheckCols, HardDeletes, SnapshotConfig, Strategy};
use crate::storage::RelKind;
use crate::util::ident::quote_ident;

/// The function rendering a value as DuckDB's `cast(x as varchar)` does.
pub const TEXT_FN: &str = "dp_snapshot_text";

/// Runs one snapshot: `sql` is its compiled query.
pub async fn snapshot(engine: &Engine, jinja: &JinjaEnv, node: &Node, sql: &str) -> anyhow::Result<Materialized> {
    let mut cfg = SnapshotConfig::from_config(&node.config).map_err(|(key, msg)| anyhow::anyhow!("{key}: {msg}"))?;
    cfg.valid_to_current = cfg.valid_to_current.as_deref().map(microsecond_casts);
    engine.ctx.register_udf(ScalarUDF::new_from_impl(DuckText::new()));
    let time_text = snapshot_time(engine, jinja).await?;
    let source = engine.sql(sql).await.map_err(|e| in_snapshot(node, "its query", e))?;
    let source_cols: Vec<String> = source.schema().fields().iter().map(|f| f.name().clone()).collect();
    check_cols_exist(&cfg, &source_cols)?;
    check_unique(engine, node, &cfg, sql).await?;
    let time = typed_stamps(engine, node, &mut cfg, sql, &time_text).await?;
    let loc = engine.warehouse.table(&node.schema, &node.alias);
    let plan = Plan { cfg: &cfg, sql, source_cols: &source_cols, time: &time };
    match engine.warehouse.kind(&node.schema, &node.alias).await? {
        Some(RelKind::View) => bail!(
            "{} exists as a view, and a snapshot is a table\n  hint: drop the view (dp sql --allow-writes -e 'drop view {}') or give the snapshot another alias",
            node.relation_name(),
            node.relation_name()
        ),
        None => {
            let df = engine.ctx.sql(&plan.build_sql()).await.map_err(|e| in_snapshot(node, "the first version", e))?;
            let mut m = overwrite(engine, &loc, df.into_unoptimized_plan(), node).await?;
            m.message = "SNAPSHOT".into();
            Ok(m)
        }
        Some(_) => merge(engine, node, &plan, &loc).await,
    }
}

/// A `check_cols` entry the query lacks would make every row a new
/// version on every run (dbt fails on it too).
fn check_cols_exist(cfg: &SnapshotConfig, source_cols: &[String]) -> anyhow::Result<()> {
    if let Strategy::Check { cols: CheckCols::List(cols), .. } = &cfg.strategy
        && let Some(missing) = cols.iter().find(|c| !source_cols.iter().any(|s| s.eq_ignore_ascii_case(c)))
    {
        let hint = crate::util::suggest(missing, source_cols.iter().map(String::as_str)).map(|s| format!("did you mean '{s}'? ")).unwrap_or_default();
        bail!(
            "check_cols: '{missing}' is not a column of the snapshot's query ({})\n  hint: {hint}list columns the query returns, or use check_cols='all'",
            source_cols.join(", ")
        );
    }
    Ok(())
}

/// Matches the stamps to `updated_at`'s type: a non-microsecond timestamp
/// is cast to microseconds (DataFusion's `timestamp` is nanoseconds, which
/// stops in 2262), and with a text `updated_at` the snapshot time is text
/// too (as DuckDB casts it into a varchar column). Returns the snapshot
/// time's SQL literal.
async fn typed_stamps(engine: &Engine, node: &Node, cfg: &mut SnapshotConfig, sql: &str, time_text: &str) -> anyhow::Result<String> {
    let updated_at = match &mut cfg.strategy {
        Strategy::Timestamp { updated_at } | Strategy::Check { updated_at: Some(updated_at), .. } => updated_at,
        Strategy::Check { updated_at: None, .. } => return Ok(format!("cast('{time_text}' as timestamp(6))")),
    };
    let q = format!("select {updated_at} as u from (\n{sql}\n) dp_snapshot_source limit 0");
    let df = engine.ctx.sql(&q).await.map_err(|e| in_snapshot(node, &format!("updated_at ({updated_at})"), e))?;
    Ok(match df.schema().field(0).data_type() {
        DataType::Utf8 | DataType::Utf8View | DataType::LargeUtf8 => format!("'{time_text}'"),
        DataType::Timestamp(unit, None) if *unit != TimeUnit::Microsecond => {
            *updated_at = format!("cast({updated_at} as timestamp(6))");
            format!("cast('{time_text}' as timestamp(6))")
        }
        _ => format!("cast('{time_text}' as timestamp(6))"),
    })
}

fn in_snapshot(node: &Node, what: &str, e: impl std::fmt::Display) -> anyhow::Error {
    anyhow::anyhow!("{}: planning {what} failed: {e}\n  compiled SQL: target/compiled/{}", node.original_file_path, crate::compile::compiled_path(node))
}

/// The run's snapshot time: the project's `snapshot_get_time()` evaluated
/// once (so every row of the run gets the same value), as DuckDB's text of
/// the timestamp.
async fn snapshot_time(engine: &Engine, jinja: &JinjaEnv) -> anyhow::Result<String> {
    let expr = jinja.call_macro_str("snapshot_get_time", &[], None)?;
    let q = format!("select {TEXT_FN}(cast(({expr}) as timestamp(6))) as t");
    let batches = engine.ctx.sql(&q).await.map_err(|e| anyhow::anyhow!("snapshot_get_time() gave '{expr}', which failed: {e}"))?.collect().await?;
    let t = batches
        .iter()
        .find(|b| b.num_rows() > 0)
        .and_then(|b| b.column(0).as_string_opt::<i32>().filter(|a| !a.is_null(0)).map(|a| a.value(0).to_string()))
        .ok_or_else(|| anyhow::anyhow!("snapshot_get_time() ('{expr}') gave no value"))?;
    Ok(t)
}

/// DataFusion's `timestamp` is nanoseconds, which cannot hold dates past
/// 2262 (`dbt_valid_to_current` is often `'9999-12-31'`): casts to
/// `timestamp` in a config expression become microsecond casts, the
/// precision dbt-duckdb's TIMESTAMP has.
fn microsecond_casts(expr: &str) -> String {
    static CAST: std::sync::LazyLock<regex::Regex> = std::sync::LazyLock::new(|| regex::Regex::new(r"(?i)(\bas\s+|::\s*)timestamp\b(\s*\()?").unwrap());
    CAST.replace_all(expr, |c: &regex::Captures| if c.get(2).is_some() { c[0].to_string() } else { format!("{}timestamp(6)", &c[1]) }).into_owned()
}

/// Fails when the unique key repeats in the query: the versions of a
/// repeated key cannot be told apart.
async fn check_unique(engine: &Engine, node: &Node, cfg: &SnapshotConfig, sql: &str) -> anyhow::Result<()> {
    let keys = cfg.unique_key.join(", ");
    let q = format!("select count(*) as n from (select {keys} from (\n{sql}\n) dp_snapshot_source group by {keys} having count(*) > 1) dp_repeated");
    let batches = engine.ctx.sql(&q).await.map_err(|e| in_snapshot(node, "the unique_key check", e))?.collect().await?;
    let n = batches
        .iter()
        .find(|b| b.num_rows() > 0)
        .and_then(|b| b.column(0).as_primitive_opt::<datafusion::arrow::datatypes::Int64Type>().map(|a| a.value(0)))
        .unwrap_or(0);
    if n > 0 {
        bail!(
            "unique_key ({keys}) is not unique in the snapshot's query: {n} key value(s) appear more than once\n  hint: keep one row per key in the query (e.g. the latest by updated_at), or set a unique_key that identifies a row"
        );
    }
    Ok(())
}

/// The SQL of one snapshot run.
struct Plan<'a> {
    cfg: &'a SnapshotConfig,
    sql: &'a str,
    source_cols: &'a [String],
    /// The snapshot time, a timestamp literal.
    time: &'a str,
}

/// `md5(text(a) || '|' || text(b) ...)`, dbt's `snapshot_hash_arguments`.
fn hash(args: &[String]) -> String {
    let parts: Vec<String> = args.iter().map(|a| format!("coalesce({TEXT_FN}({a}), '')")).collect();
    format!("md5({})", parts.join(" || '|' || "))
}

impl Plan<'_> {
    /// The expression stamping versions: `updated_at`, or the snapshot time.
    fn updated_at(&self) -> String {
        match &self.cfg.strategy {
            Strategy::Timestamp { updated_at } | Strategy::Check { updated_at: Some(updated_at), .. } => updated_at.clone(),
            Strategy::Check { updated_at: None, .. } => self.time.to_string(),
        }
    }

    fn scd_id(&self) -> String {
        let mut args = self.cfg.unique_key.clone();
        args.push(self.updated_at());
        hash(&args)
    }

    fn valid_to_current(&self) -> &str {
        self.cfg.valid_to_current.as_deref().unwrap_or("null")
    }

    /// The first version: dbt's `build_snapshot_table`.
    fn build_sql(&self) -> String {
        let c = &self.cfg.columns;
        let upd = self.updated_at();
        let deleted = if self.cfg.hard_deletes == HardDeletes::NewRecord { format!(",\n    'False' as {}", quote_ident(&c.is_deleted)) } else { String::new() };
        format!(
            "select *,\n    {scd} as {scd_col},\n    {upd} as {upd_col},\n    {upd} as {from_col},\n    coalesce(nullif({upd}, {upd}), {vtc}) as {to_col}{deleted}\nfrom (\n{sql}\n) sbq",
            scd = self.scd_id(),
            scd_col = quote_ident(&c.scd_id),
            upd_col = quote_ident(&c.updated_at),
            from_col = quote_ident(&c.valid_from),
            to_col = quote_ident(&c.valid_to),
            vtc = self.valid_to_current(),
            sql = self.sql,
        )
    }

    /// Whether a version is current, on relation `rel` (`target.` or ``).
    fn current(&self, rel: &str) -> String {
        let to = format!("{rel}{}", quote_ident(&self.cfg.columns.valid_to));
        match &self.cfg.valid_to_current {
            Some(v) => format!("({to} = {v} or {to} is null)"),
            None => format!("{to} is null"),
        }
    }

    /// dbt's `snapshot_staging_table` as one query over the current
    /// versions in `target` (whose columns are `target_cols`): a row per
    /// version to insert (`__dp_change = 'insert'`) and per version to
    /// close (`'update'`, `'delete'`; `__dp_match` is its `dbt_scd_id`,
    /// `__dp_valid_to` its new `dbt_valid_to`).
    fn staging_sql(&self, target: &str, target_cols: &[String]) -> String {
        let c = &self.cfg.columns;
        let q = quote_ident;
        let has = |col: &str| target_cols.iter().any(|t| t.eq_ignore_ascii_case(col));
        let keys: Vec<String> = self.cfg.unique_key.iter().enumerate().map(|(i, k)| format!("{k} as dbt_unique_key_{}", i + 1)).collect();
        let join: Vec<String> = (1..=self.cfg.unique_key.len())
            .map(|i| format!("(snapshotted_data.dbt_unique_key_{i} is not distinct from source_data.dbt_unique_key_{i})"))
            .collect();
        let join = join.join(" and ");
        let new_record = self.cfg.hard_deletes == HardDeletes::NewRecord;
        let changed = match &self.cfg.strategy {
            Strategy::Timestamp { .. } => format!("snapshotted_data.{} < source_data.__dp_upd", q(&c.valid_from)),
            Strategy::Check { cols, .. } => {
                let checked: Vec<&String> = match cols {
                    CheckCols::All => self.source_cols.iter().collect(),
                    CheckCols::List(l) => l.iter().collect(),
                };
                if checked.iter().any(|col| !has(col)) {
                    // a column new to the table: every row is a new version (as dbt)
                    "true".to_string()
                } else {
                    let d: Vec<String> = checked.iter().map(|col| format!("(snapshotted_data.{0} is distinct from source_data.{0})", q(col))).collect();
                    format!("({})", d.join(" or "))
                }
            }
        };
        let old_deleted = if new_record { format!("coalesce(snapshotted_data.{} = 'True', false)", q(&c.is_deleted)) } else { "false".into() };
        let data: Vec<String> = self.source_cols.iter().map(|col| q(col)).collect();
        let data = data.join(", ");
        // closing a version changes only its dbt_valid_to: a column new to
        // the table stays NULL in it (Delta's schema-evolving MERGE would
        // take the source row's value)
        let closing: Vec<String> = self.source_cols.iter().map(|col| if has(col) { q(col) } else { format!("null as {}", q(col)) }).collect();
        let closing = closing.join(", ");
        let from_target: Vec<String> =
            self.source_cols.iter().map(|col| if has(col) { format!("snapshotted_data.{}", q(col)) } else { format!("null as {}", q(col)) }).collect();
        let from_target = from_target.join(", ");
        let vtc = self.valid_to_current();
        let time = self.time;
        let is_del = |v: &str| if new_record { format!(", {v} as {}", q(&c.is_deleted)) } else { String::new() };
        let meta_cols = |scd: &str, upd: &str, from: &str, to: &str| {
            format!("{scd} as {}, {upd} as {}, {from} as {}, {to} as {}", q(&c.scd_id), q(&c.updated_at), q(&c.valid_from), q(&c.valid_to))
        };
        let mut sql = format!(
            "with snapshot_query as (\n{sql}\n),\n\
             snapshotted_data as (\n    select *, {keys}, true as __dp_present\n    from {target}\n    where {current}\n),\n\
             source_data as (\n    select *, {keys}, {upd} as __dp_upd, {scd} as __dp_scd, true as __dp_present\n    from snapshot_query\n),\n\
             joined as (\n    select source_data.*, snapshotted_data.{scd_col} as __dp_old_scd, snapshotted_data.__dp_present as __dp_matched,\n        {old_deleted} as __dp_old_deleted, {changed} as __dp_changed\n    from source_data left join snapshotted_data on {join}\n)\n\
             select 'insert' as __dp_change, cast(null as varchar) as __dp_match, nullif(__dp_upd, __dp_upd) as __dp_valid_to, {data},\n    {insert_meta}{insert_del}\n\
             from joined where __dp_matched is null or __dp_changed or __dp_old_deleted\n\
             union all\n\
             select 'update' as __dp_change, __dp_old_scd as __dp_match, __dp_upd as __dp_valid_to, {closing},\n    {insert_meta}{insert_del}\n\
             from joined where __dp_matched and (__dp_changed or __dp_old_deleted)",
            sql = self.sql,
            keys = keys.join(", "),
            current = self.current(""),
            upd = self.updated_at(),
            scd = self.scd_id(),
            scd_col = q(&c.scd_id),
            insert_meta = meta_cols("__dp_scd", "__dp_upd", "__dp_upd", &format!("coalesce(nullif(__dp_upd, __dp_upd), {vtc})")),
            insert_del = is_del("'False'"),
        );
        if self.cfg.hard_deletes != HardDeletes::Ignore {
            let gone = format!(
                "from snapshotted_data left join source_data on {join}\nwhere source_data.__dp_present is null{}",
                if new_record { format!(" and not {old_deleted}") } else { String::new() }
            );
            sql.push_str(&format!(
                "\nunion all\nselect 'delete' as __dp_change, snapshotted_data.{scd_col} as __dp_match, {time} as __dp_valid_to, {from_target},\n    {meta}{del}\n{gone}",
                scd_col = q(&c.scd_id),
                meta = meta_cols(&format!("snapshotted_data.{}", q(&c.scd_id)), time, time, time),
                del = is_del(&format!("snapshotted_data.{}", q(&c.is_deleted))),
            ));
            if new_record {
                let new_scd = hash(&[format!("snapshotted_data.{}", q(&c.scd_id)), time.to_string()]);
                sql.push_str(&format!(
                    "\nunion all\nselect 'insert' as __dp_change, cast(null as varchar) as __dp_match, nullif({time}, {time}) as __dp_valid_to, {from_target},\n    {meta}{del}\n{gone}",
                    meta = meta_cols(&new_scd, time, time, &format!("snapshotted_data.{}", q(&c.valid_to))),
                    del = is_del("'True'"),
                ));
            }
        }
        sql
    }

    /// The columns a new version sets: the query's, then dbt's.
    fn insert_cols(&self) -> Vec<String> {
        let c = &self.cfg.columns;
        let mut cols = self.source_cols.to_vec();
        cols.extend([c.scd_id.clone(), c.updated_at.clone(), c.valid_from.clone(), c.valid_to.clone()]);
        if self.cfg.hard_deletes == HardDeletes::NewRecord {
            cols.push(c.is_deleted.clone());
        }
        cols
    }
}

/// Applies a run to an existing snapshot table in one MERGE commit.
async fn merge(engine: &Engine, node: &Node, plan: &Plan<'_>, loc: &crate::storage::TableLoc) -> anyhow::Result<Materialized> {
    let c = &plan.cfg.columns;
    let table = deltalake::open_table(loc.url.clone()).await.with_context(|| format!("opening Delta table {loc}"))?;
    let schema = table.snapshot()?.snapshot().arrow_schema();
    let target_cols: Vec<String> = schema.fields().iter().map(|f| f.name().clone()).collect();
    let mut required = vec![&c.scd_id, &c.updated_at, &c.valid_from, &c.valid_to];
    if plan.cfg.hard_deletes == HardDeletes::NewRecord {
        required.push(&c.is_deleted);
    }
    if let Some(missing) = required.iter().find(|col| !target_cols.iter().any(|t| t == **col)) {
        bail!(
            "the table {} has no column '{missing}', which this snapshot's config needs\n  hint: a snapshot's meta column names and hard_deletes mode cannot change once it has rows; keep the old config, or rename the old table and start a new snapshot",
            node.relation_name()
        );
    }
    let current = format!("__dp_snapshot_{}_{}", node.schema, node.alias).replace(|ch: char| !ch.is_ascii_alphanumeric() && ch != '_', "_");
    engine.ctx.register_table(&current, table.table_provider().await?)?;
    let result = async {
        let staging = plan.staging_sql(&quote_ident(&current), &target_cols);
        tracing::debug!(snapshot = %node.name, sql = %staging, "snapshot staging query");
        let df = engine.ctx.sql(&staging).await.map_err(|e| in_snapshot(node, "the changes", e))?;
        let df = DataFrame::new(engine.ctx.state(), delta_compatible(engine, df.into_unoptimized_plan())?);
        // The changes are computed once, before the MERGE: they are few
        // next to the table, and a MERGE fed by the lazy plan took twice
        // the time and memory (500k rows, 1% changed).
        let t0 = std::time::Instant::now();
        let schema = Arc::new(df.schema().as_arrow().clone());
        let batches = df.collect().await.map_err(|e| anyhow::anyhow!("computing the changes of snapshot {}: {e}", node.name))?;
        let changes: usize = batches.iter().map(|b| b.num_rows()).sum();
        tracing::debug!(snapshot = %node.name, ms = t0.elapsed().as_millis() as u64, rows = changes, "snapshot changes");
        if changes == 0 {
            // nothing changed: no commit
            return Ok(Materialized { rows: Some(0), message: "SNAPSHOT".into(), version: table.version().map(|v| v as i64) });
        }
        // the plan's schema for every batch (the nullability the table
        // was written with: a MERGE that widens it loses values)
        let batches = batches.into_iter().filter(|b| b.num_rows() > 0).map(|b| crate::util::cast_batch(&b, &schema)).collect::<Result<Vec<_>, _>>()?;
        let df = engine.ctx.read_table(Arc::new(datafusion::datasource::MemTable::try_new(schema, vec![batches])?))?;
        let t1 = std::time::Instant::now();
        let predicate = format!("target.{} = source.__dp_match and {}", quote_ident(&c.scd_id), plan.current("target."));
        let to = quote_ident(&c.valid_to);
        let cols = plan.insert_cols();
        let (t, metrics) = table
            .merge(df, predicate)
            .with_source_alias("source")
            .with_target_alias("target")
            .with_session_state(Arc::new(engine.ctx.state()))
            .with_commit_properties(super::delta::no_rebase())
            .with_merge_schema(plan.source_cols.iter().any(|col| !target_cols.contains(col)))
            .when_matched_update(|u| u.update(to, "source.__dp_valid_to"))?
            .when_not_matched_insert(|mut i| {
                i = i.predicate("source.__dp_change = 'insert'");
                for col in &cols {
                    i = i.set(quote_ident(col), format!("source.{}", quote_ident(col)));
                }
                i
            })?
            .await
            .map_err(|e| write_error(loc, e))?;
        tracing::debug!(snapshot = %node.name, ms = t1.elapsed().as_millis() as u64, "snapshot merge");
        checkpoint_if_due(&t).await;
        Ok(Materialized {
            rows: Some((metrics.num_target_rows_inserted + metrics.num_target_rows_updated) as u64),
            message: "SNAPSHOT".into(),
            version: t.version().map(|v| v as i64),
        })
    }
    .await;
    let _ = engine.ctx.deregister_table(&current);
    result
}

/// `cast(x as varchar)` as DuckDB writes it (what dbt-duckdb hashes):
/// timestamps as `2024-01-01 10:00:00[.25]`, zoned ones in UTC with `+00`,
/// floats in their shortest form (`1.0`, `1e+20`), booleans `true`/`false`.
#[derive(Debug, PartialEq, Eq, Hash)]
struct DuckText {
    signature: Signature,
}

impl DuckText {
    fn new() -> DuckText {
        DuckText { signature: Signature::any(1, Volatility::Immutable) }
    }
}

impl ScalarUDFImpl for DuckText {
    fn name(&self) -> &str {
        TEXT_FN
    }
    fn signature(&self) -> &Signature {
        &self.signature
    }
    fn return_type(&self, _: &[DataType]) -> DfResult<DataType> {
        Ok(DataType::Utf8)
    }
    fn invoke_with_args(&self, args: ScalarFunctionArgs) -> DfResult<ColumnarValue> {
        let scalar = matches!(args.args[0], ColumnarValue::Scalar(_));
        let arrays = ColumnarValue::values_to_arrays(&args.args)?;
        let out = duck_text(&arrays[0])?;
        Ok(if scalar { ColumnarValue::Scalar(datafusion::common::ScalarValue::try_from_array(&out, 0)?) } else { ColumnarValue::Array(out) })
    }
}

fn duck_text(a: &ArrayRef) -> DfResult<ArrayRef> {
    use datafusion::arrow::compute::cast;
    let mut b = StringBuilder::with_capacity(a.len(), a.len() * 16);
    match a.data_type() {
        DataType::Timestamp(_, tz) => {
            let micros = cast(a, &DataType::Timestamp(TimeUnit::Microsecond, None))?;
            let micros = micros.as_primitive::<datafusion::arrow::datatypes::TimestampMicrosecondType>();
            for i in 0..micros.len() {
                if micros.is_null(i) {
                    b.append_null();
                    continue;
                }
                match chrono::DateTime::from_timestamp_micros(micros.value(i)) {
                    Some(t) => b.append_value(timestamp_text(&t.naive_utc(), tz.is_some())),
                    None => b.append_null(),
                }
            }
        }
        DataType::Float64 | DataType::Float32 | DataType::Float16 => {
            let f = cast(a, &DataType::Float64)?;
            let f = f.as_primitive::<datafusion::arrow::datatypes::Float64Type>();
            let single = !matches!(a.data_type(), DataType::Float64);
            for i in 0..f.len() {
                if f.is_null(i) {
                    b.append_null();
                } else {
                    b.append_value(float_text(f.value(i), single));
                }
            }
        }
        _ => {
            let s = cast(a, &DataType::Utf8)?;
            let s = s.as_string::<i32>();
            for i in 0..s.len() {
                if s.is_null(i) {
                    b.append_null();
                } else {
                    b.append_value(s.value(i));
                }
            }
        }
    }
    Ok(Arc::new(b.finish()))
}

/// `2024-01-01 10:00:00`, `2024-01-01 10:00:00.25` (trailing zeros of the
/// fraction dropped), `+00` for zoned values (taken in UTC).
fn timestamp_text(t: &chrono::NaiveDateTime, zoned: bool) -> String {
    use chrono::Timelike;
    let mut s = t.format("%Y-%m-%d %H:%M:%S").to_string();
    let micros = t.nanosecond() / 1000;
    if micros > 0 {
        let frac = format!("{micros:06}");
        s.push('.');
        s.push_str(frac.trim_end_matches('0'));
    }
    if zoned {
        s.push_str("+00");
    }
    s
}

/// DuckDB's float text: the shortest digits that read back (of the f32
/// for a `float`), positional from 1e-4 up to 1e16, else `1e+20` style.
fn float_text(v: f64, single: bool) -> String {
    if v.is_nan() {
        return "nan".into();
    }
    if v.is_infinite() {
        return if v > 0.0 { "inf".into() } else { "-inf".into() };
    }
    // shortest round-trip digits and exponent
    let sci = if single { format!("{:e}", v as f32) } else { format!("{v:e}") };
    let (mant, exp) = sci.split_once('e').unwrap_or((&sci, "0"));
    let exp: i32 = exp.parse().unwrap_or(0);
    let neg = mant.starts_with('-');
    let digits: String = mant.chars().filter(|c| c.is_ascii_digit()).collect();
    let sign = if neg { "-" } else { "" };
    if !(-4..16).contains(&exp) {
        let m = if digits.len() > 1 { format!("{}.{}", &digits[..1], &digits[1..]) } else { digits.clone() };
        return format!("{sign}{m}e{}{:02}", if exp < 0 { '-' } else { '+' }, exp.abs());
    }
    if exp < 0 {
        return format!("{sign}0.{}{digits}", "0".repeat((-exp - 1) as usize));
    }
    let int_len = exp as usize + 1;
    if digits.len() <= int_len {
        format!("{sign}{digits}{}.0", "0".repeat(int_len - digits.len()))
    } else {
        format!("{sign}{}.{}", &digits[..int_len], &digits[int_len..])
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn renders_values_as_duckdb_casts_them() {
        let t = chrono::NaiveDate::from_ymd_opt(2024, 1, 10).unwrap().and_hms_micro_opt(11, 0, 0, 250_000).unwrap();
        assert_eq!(timestamp_text(&t, false), "2024-01-10 11:00:00.25");
        assert_eq!(timestamp_text(&t.with_nanosecond_zero(), true), "2024-01-10 11:00:00+00");
        for (v, want) in [
            (1.5, "1.5"),
            (1.0, "1.0"),
            (100.0, "100.0"),
            (1e20, "1e+20"),
            (1e-5, "1e-05"),
            (1.2345678901234568e17, "1.2345678901234568e+17"),
            (-0.25, "-0.25"),
            (0.001, "0.001"),
        ] {
            assert_eq!(float_text(v, false), want, "{v}");
        }
        assert_eq!(float_text(0.1f32 as f64, true), "0.1");
    }

    trait ZeroNanos {
        fn with_nanosecond_zero(&self) -> Self;
    }
    impl ZeroNanos for chrono::NaiveDateTime {
        fn with_nanosecond_zero(&self) -> Self {
            chrono::Timelike::with_nanosecond(self, 0).unwrap()
        }
    }

    #[test]
    fn timestamp_casts_become_microseconds() {
        assert_eq!(microsecond_casts("cast('9999-12-31' as timestamp)"), "cast('9999-12-31' as timestamp(6))");
        assert_eq!(microsecond_casts("'9999-12-31'::TIMESTAMP"), "'9999-12-31'::timestamp(6)");
        assert_eq!(microsecond_casts("cast(x as timestamp(3))"), "cast(x as timestamp(3))");
        assert_eq!(microsecond_casts("to_date('9999-12-31')"), "to_date('9999-12-31')");
    }

    #[test]
    fn hashes_like_snapshot_hash_arguments() {
        assert_eq!(hash(&["id".into(), "updated_at".into()]), "md5(coalesce(dp_snapshot_text(id), '') || '|' || coalesce(dp_snapshot_text(updated_at), ''))");
    }

    #[test]
    fn first_version_adds_dbts_columns() {
        let cfg = SnapshotConfig::from_config(
            json!({"unique_key": "id", "strategy": "check", "check_cols": "all", "hard_deletes": "new_record"}).as_object().unwrap(),
        )
        .unwrap();
        let cols = vec!["id".to_string(), "x".to_string()];
        let p = Plan { cfg: &cfg, sql: "select 1 as id, 2 as x", source_cols: &cols, time: "cast('2030-01-01 00:00:00' as timestamp)" };
        assert_eq!(
            p.build_sql(),
            "select *,\n    md5(coalesce(dp_snapshot_text(id), '') || '|' || coalesce(dp_snapshot_text(cast('2030-01-01 00:00:00' as timestamp)), '')) as dbt_scd_id,\n    cast('2030-01-01 00:00:00' as timestamp) as dbt_updated_at,\n    cast('2030-01-01 00:00:00' as timestamp) as dbt_valid_from,\n    coalesce(nullif(cast('2030-01-01 00:00:00' as timestamp), cast('2030-01-01 00:00:00' as timestamp)), null) as dbt_valid_to,\n    'False' as dbt_is_deleted\nfrom (\nselect 1 as id, 2 as x\n) sbq"
        );
        assert_eq!(p.insert_cols(), ["id", "x", "dbt_scd_id", "dbt_updated_at", "dbt_valid_from", "dbt_valid_to", "dbt_is_deleted"]);
    }
}
