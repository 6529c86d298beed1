//! dbt's `incremental_predicates` (and its older name `predicates`): SQL
//! conditions that a `merge` or `delete+insert` adds to its match, so that
//! only the table's rows satisfying them can be replaced or deleted.
//!
//! - `merge`: dbt's `merge ... on (source.k = dest.k) and (p1) and (p2)`.
//!   A row of the table that fails them is not matched: it stays, and the
//!   new row with its key is inserted beside it, as dbt's MERGE does.
//! - `delete+insert`: dbt's `delete from t where k in (new keys) and (p1)
//!   and (p2); insert ...`: matching rows that fail them are kept.
//!
//! A predicate names the table's columns as `DBT_INTERNAL_DEST.col` (dbt's
//! alias), `DBT_INCREMENTAL_TARGET.col` (dbt-duckdb's composite-key
//! delete), `<model name>.col`, or `col`; a merge's may name the new rows
//! as `DBT_INTERNAL_SOURCE.col`. The value is one string or a list of them,
//! as dbt-duckdb takes it. `append` has no match and ignores them, as in
//! dbt; a microbatch batch replaces only its window's rows that satisfy
//! them ([`super::microbatch`]).
//!
//! [`requalify`] rewrites those names for the writer at hand: a merge by
//! deletion vectors evaluates them on the table's rows it reads and skips
//! the files whose Delta statistics show none can satisfy them; deltalake's
//! MERGE gets them in its join predicate (`target`/`source`); the rewrite
//! of `delete+insert` keeps the rows that fail them.

use std::ops::ControlFlow;
use std::sync::Arc;

use datafusion::arrow::array::{Array as _, ArrayRef, AsArray as _, BooleanArray, RecordBatch, UInt64Array};
use datafusion::arrow::compute::cast;
use datafusion::arrow::datatypes::{Schema, SchemaRef};
use datafusion::common::{Column, DFSchema};
use datafusion::execution::SessionState;
use datafusion::parquet::arrow::arrow_reader::statistics::StatisticsConverter;
use datafusion::parquet::file::metadata::RowGroupMetaData;
use datafusion::parquet::schema::types::SchemaDescriptor;
use datafusion::physical_expr::PhysicalExpr;
use datafusion::physical_optimizer::pruning::{PruningPredicate, PruningPredicateBuilder, PruningStatistics};
use datafusion::sql::sqlparser::ast::{Expr, Ident, visit_expressions_mut};
use datafusion::sql::sqlparser::dialect::GenericDialect;
use datafusion::sql::sqlparser::parser::Parser;
use serde_json::Value;

use crate::project::nodes::Node;

/// The aliases by which a predicate may name the table being merged into.
const DEST: &[&str] = &["dbt_internal_dest", "dbt_incremental_target"];
/// The alias by which a merge's predicate names the new rows.
const SOURCE: &str = "dbt_internal_source";

/// The model's predicates (`predicates`, else `incremental_predicates`, in
/// dbt's order), in order; none when unset. The config is checked when the
/// project loads ([`check`]), so a value of another type reads as none.
pub fn of(node: &Node) -> Vec<String> {
    let v = node.config.get("predicates").filter(|v| !v.is_null()).or_else(|| node.config.get("incremental_predicates").filter(|v| !v.is_null()));
    match v {
        Some(Value::String(s)) => vec![s.clone()],
        Some(Value::Array(a)) => a.iter().filter_map(Value::as_str).map(String::from).collect(),
        _ => vec![],
    }
}

/// What is wrong with a predicates config value, for the load's error.
pub fn check(key: &str, v: &Value) -> Result<(), String> {
    let list: Vec<&Value> = match v {
        Value::Null => return Ok(()),
        Value::Array(a) => a.iter().collect(),
        other => vec![other],
    };
    for (i, p) in list.iter().enumerate() {
        let at = if matches!(v, Value::Array(_)) { format!("{key}[{i}]") } else { key.to_string() };
        let Some(sql) = p.as_str() else {
            return Err(format!(
                "{at} {p} is not a SQL condition\n  hint: write {key}=[\"DBT_INTERNAL_DEST.updated_at > current_date - interval '7 days'\"] (a string or a list of strings)"
            ));
        };
        if let Err(e) = parse(sql) {
            return Err(format!(
                "{at} {sql:?} does not parse as a SQL condition: {e}\n  hint: write a boolean expression over the table's columns, e.g. DBT_INTERNAL_DEST.day >= '2024-01-01'"
            ));
        }
    }
    Ok(())
}

fn parse(sql: &str) -> Result<Expr, String> {
    let mut p = Parser::new(&GenericDialect {}).try_with_sql(sql).map_err(|e| e.to_string())?;
    let e = p.parse_expr().map_err(|e| e.to_string())?;
    match p.peek_token().token {
        datafusion::sql::sqlparser::tokenizer::Token::EOF => Ok(e),
        t => Err(format!("unexpected {t} after the condition")),
    }
}

/// The predicates, joined by AND, with the table's qualifiers (see the
/// module docs) replaced by `dest` and the new rows' by `source` (`None`:
/// no qualifier). `Ok(None)`: no predicates. An `Err` names what the
/// writer cannot take: a predicate that does not parse, or names the new
/// rows where `source` is `None`.
pub fn requalify(predicates: &[String], model: &str, dest: Option<&str>, source: Option<&str>) -> Result<Option<String>, String> {
    if predicates.is_empty() {
        return Ok(None);
    }
    let mut out = vec![];
    for sql in predicates {
        let (e, names_source) = rename(sql, model, dest, source)?;
        if names_source && source.is_none() {
            return Err(format!(
                "incremental predicate {sql:?} names the new rows (DBT_INTERNAL_SOURCE), which this write cannot match on\n  hint: name only the table's columns (DBT_INTERNAL_DEST.col); only a merge (without on_schema_change='sync_all_columns') compares the new rows with the table's"
            ));
        }
        out.push(format!("({e})"));
    }
    Ok(Some(out.join(" AND ")))
}

/// Whether any predicate names the new rows (`DBT_INTERNAL_SOURCE`).
pub fn names_source(predicates: &[String]) -> bool {
    predicates.iter().any(|sql| rename(sql, "", None, None).is_ok_and(|(_, source)| source))
}

/// One predicate renamed as [`requalify`] does, and whether it names the new rows.
fn rename(sql: &str, model: &str, dest: Option<&str>, source: Option<&str>) -> Result<(Expr, bool), String> {
    let mut e = parse(sql).map_err(|e| format!("incremental predicate {sql:?} does not parse: {e}"))?;
    let mut names_source = false;
    let _ = visit_expressions_mut(&mut e, |x: &mut Expr| {
        let Expr::CompoundIdentifier(parts) = x else { return ControlFlow::<()>::Continue(()) };
        let [.., qualifier, column] = parts.as_slice() else { return ControlFlow::Continue(()) };
        let q = qualifier.value.to_ascii_lowercase();
        let to = if DEST.contains(&q.as_str()) || q.eq_ignore_ascii_case(model) {
            dest
        } else if q == SOURCE {
            names_source = true;
            source
        } else {
            return ControlFlow::Continue(());
        };
        let column = column.clone();
        *x = match to {
            Some(alias) => Expr::CompoundIdentifier(vec![Ident::new(alias), column]),
            None => Expr::Identifier(column),
        };
        ControlFlow::Continue(())
    });
    Ok((e, names_source))
}

/// Unqualified predicates (from [`requalify`]) over a table's rows: which
/// rows satisfy them, and which files' statistics rule every row out.
pub struct RowFilter {
    /// As given (for the commit's record of the merge).
    pub sql: String,
    /// The table's columns they read, in the table's order.
    columns: Vec<String>,
    schema: SchemaRef,
    rows: Arc<dyn PhysicalExpr>,
    files: Option<Arc<PruningPredicate>>,
}

impl RowFilter {
    /// Plans `sql` over `table`'s columns (an unknown column or a type
    /// error is reported here, before anything is written).
    pub fn new(state: &SessionState, table: &Schema, sql: &str) -> datafusion::error::Result<RowFilter> {
        let full = DFSchema::try_from(table.clone())?;
        let expr = state.create_logical_expr(sql, &full)?;
        let refs = expr.column_refs();
        let fields: Vec<_> = table.fields().iter().filter(|f| refs.iter().any(|c| c.name == *f.name())).cloned().collect();
        let schema: SchemaRef = Arc::new(Schema::new(fields));
        let rows = state.create_physical_expr(expr.clone(), &DFSchema::try_from(schema.as_ref().clone())?)?;
        // Statistics cannot prune by every expression; then no file is skipped.
        let files =
            state.create_physical_expr(expr, &full).ok().and_then(|e| PruningPredicateBuilder::new().with_file_schema(Arc::new(table.clone())).build(e));
        Ok(RowFilter { sql: sql.to_string(), columns: schema.fields().iter().map(|f| f.name().clone()).collect(), schema, rows, files })
    }

    /// The columns [`RowFilter::rows`] takes, in its order.
    pub fn columns(&self) -> &[String] {
        &self.columns
    }

    /// Which rows satisfy the predicates (NULL counts as not), given the
    /// [`RowFilter::columns`] of a batch of the table (cast to the table's
    /// types where a file's differ).
    pub fn rows(&self, cols: &[ArrayRef]) -> datafusion::error::Result<BooleanArray> {
        let cols = super::dv_merge::conform(cols, self.schema.fields().iter().map(|f| f.data_type()))?;
        let n = cols.first().map_or(0, |c| c.len());
        let batch = RecordBatch::try_new_with_options(self.schema.clone(), cols, &datafusion::arrow::array::RecordBatchOptions::new().with_row_count(Some(n)))?;
        let out = self.rows.evaluate(&batch)?.into_array(n)?;
        let out = out
            .as_boolean_opt()
            .ok_or_else(|| datafusion::error::DataFusionError::Plan(format!("incremental predicates {} are not a condition (true or false)", self.sql)))?;
        // NULL is not true
        Ok(if out.null_count() > 0 { datafusion::arrow::compute::prep_null_mask_filter(out) } else { out.clone() })
    }

    /// Per container of `stats` (a table's files, a file's row groups),
    /// whether one of its rows may satisfy the predicates; every container
    /// when statistics cannot tell.
    pub fn files(&self, stats: &dyn PruningStatistics) -> Vec<bool> {
        self.files.as_ref().and_then(|p| p.prune(stats).ok()).unwrap_or_else(|| vec![true; stats.num_containers()])
    }

    /// The table's schema, which [`RowGroups`] casts a file's statistics to.
    pub fn table_schema(&self) -> Option<&SchemaRef> {
        self.files.as_ref().map(|p| p.schema())
    }
}

/// A Parquet file's row groups as pruning containers, their statistics
/// cast to the table's column types (`table`).
pub struct RowGroups<'a> {
    pub table: &'a Schema,
    pub file: &'a Schema,
    pub parquet: &'a SchemaDescriptor,
    pub groups: &'a [RowGroupMetaData],
}

impl RowGroups<'_> {
    fn stat(&self, column: &Column, f: impl Fn(&StatisticsConverter) -> datafusion::parquet::errors::Result<ArrayRef>) -> Option<ArrayRef> {
        let converter = StatisticsConverter::try_new(&column.name, self.file, self.parquet).ok()?;
        let values = f(&converter).ok()?;
        let want = self.table.field_with_name(&column.name).ok()?.data_type();
        if values.data_type() == want { Some(values) } else { cast(&values, want).ok() }
    }
}

impl PruningStatistics for RowGroups<'_> {
    fn min_values(&self, column: &Column) -> Option<ArrayRef> {
        self.stat(column, |c| c.row_group_mins(self.groups.iter()))
    }

    fn max_values(&self, column: &Column) -> Option<ArrayRef> {
        self.stat(column, |c| c.row_group_maxes(self.groups.iter()))
    }

    fn num_containers(&self) -> usize {
        self.groups.len()
    }

    fn null_counts(&self, column: &Column) -> Option<ArrayRef> {
        let converter = StatisticsConverter::try_new(&column.name, self.file, self.parquet).ok()?;
        Some(Arc::new(converter.row_group_null_counts(self.groups.iter()).ok()?))
    }

    fn row_counts(&self) -> Option<ArrayRef> {
        Some(Arc::new(UInt64Array::from_iter_values(self.groups.iter().map(|g| g.num_rows() as u64))))
    }

    fn contained(&self, _: &Column, _: &std::collections::HashSet<datafusion::scalar::ScalarValue>) -> Option<BooleanArray> {
        None // no bloom filters
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn preds(list: &[&str]) -> Vec<String> {
        list.iter().map(|s| s.to_string()).collect()
    }

    #[test]
    fn the_table_and_the_new_rows_are_renamed_for_the_writer() {
        let p = preds(&["DBT_INTERNAL_DEST.day >= '2024-01-03'", "dbt_internal_source.amount > DBT_INTERNAL_DEST.amount or events.x is null"]);
        assert_eq!(
            requalify(&p, "events", Some("target"), Some("source")).unwrap().unwrap(),
            "(target.day >= '2024-01-03') AND (source.amount > target.amount OR target.x IS NULL)"
        );
        let p = preds(&["DBT_INCREMENTAL_TARGET.day >= current_date - INTERVAL '7 days'", "main.events.flag", "other.flag"]);
        assert_eq!(requalify(&p, "events", None, Some("s")).unwrap().unwrap(), "(day >= current_date - INTERVAL '7 days') AND (flag) AND (other.flag)");
        assert_eq!(requalify(&[], "events", None, None).unwrap(), None);
    }

    #[test]
    fn naming_the_new_rows_where_they_cannot_be_matched_is_an_error() {
        let p = preds(&["DBT_INTERNAL_SOURCE.day > DBT_INTERNAL_DEST.day"]);
        let e = requalify(&p, "m", Some("c"), None).unwrap_err();
        assert!(e.starts_with("incremental predicate \"DBT_INTERNAL_SOURCE.day > DBT_INTERNAL_DEST.day\" names the new rows"), "{e}");
        assert!(names_source(&p));
        assert!(!names_source(&preds(&["DBT_INTERNAL_DEST.day > 1"])));
    }

    #[test]
    fn the_config_is_a_condition_or_a_list_of_them() {
        use serde_json::json;
        assert_eq!(check("incremental_predicates", &json!("day > 1")), Ok(()));
        assert_eq!(check("incremental_predicates", &json!(["day > 1", "x"])), Ok(()));
        assert_eq!(check("incremental_predicates", &json!(null)), Ok(()));
        let e = check("incremental_predicates", &json!(["day > 1", 3])).unwrap_err();
        assert!(e.starts_with("incremental_predicates[1] 3 is not a SQL condition\n  hint: write incremental_predicates=["), "{e}");
        let e = check("predicates", &json!("day >")).unwrap_err();
        assert!(e.starts_with("predicates \"day >\" does not parse as a SQL condition: "), "{e}");
        let e = check("predicates", &json!("day > 1 select")).unwrap_err();
        assert!(e.contains("unexpected select after the condition"), "{e}");
    }

    #[test]
    fn the_older_name_wins_as_in_dbt_and_a_string_is_a_list_of_one() {
        use crate::project::nodes::ResourceType;
        let mut n = Node::new(ResourceType::Model, "p", "m", "models/m.sql");
        n.config = serde_json::json!({"predicates": ["a > 1"], "incremental_predicates": "b > 2"}).as_object().unwrap().clone().into();
        assert_eq!(of(&n), vec!["a > 1".to_string()]);
        n.config = serde_json::json!({"incremental_predicates": ["a > 1", "c"]}).as_object().unwrap().clone().into();
        assert_eq!(of(&n), vec!["a > 1".to_string(), "c".to_string()]);
    }

    /// Rows, row groups (by their statistics, cast to the table's types)
    /// and files are kept as the predicates say; NULL is not true.
    #[test]
    fn a_filter_keeps_the_rows_and_row_groups_that_can_satisfy_it() {
        use datafusion::arrow::array::{Date32Array, Int32Array};
        use datafusion::arrow::datatypes::{DataType, Field};
        use datafusion::parquet::arrow::ArrowWriter;
        use datafusion::parquet::file::properties::WriterProperties;
        use datafusion::parquet::file::reader::{FileReader, SerializedFileReader};

        let table = Schema::new(vec![Field::new("id", DataType::Int64, true), Field::new("day", DataType::Date32, true)]);
        let state = datafusion::prelude::SessionContext::new().state();
        let f = RowFilter::new(&state, &table, "day >= '2024-01-03'").unwrap();
        assert_eq!(f.columns(), ["day"]);
        let day = |v: Vec<Option<i32>>| -> ArrayRef { Arc::new(Date32Array::from(v)) };
        // 2024-01-01 is day 19723
        assert_eq!(f.rows(&[day(vec![Some(19723), Some(19725), None, Some(19800)])]).unwrap(), BooleanArray::from(vec![false, true, false, true]));
        assert!(RowFilter::new(&state, &table, "dya > 1").is_err());

        // A file written with Int32 ids, two rows per row group.
        let file = Arc::new(Schema::new(vec![Field::new("id", DataType::Int32, true), Field::new("day", DataType::Date32, true)]));
        let batch = RecordBatch::try_new(
            file.clone(),
            vec![Arc::new(Int32Array::from(vec![1, 2, 3, 4, 5])), day(vec![Some(19723), Some(19724), Some(19724), Some(19726), None])],
        )
        .unwrap();
        let mut bytes = vec![];
        let props = WriterProperties::builder().set_max_row_group_row_count(Some(2)).build();
        let mut w = ArrowWriter::try_new(&mut bytes, file.clone(), Some(props)).unwrap();
        w.write(&batch).unwrap();
        w.close().unwrap();
        let reader = SerializedFileReader::new(bytes::Bytes::from(bytes)).unwrap();
        let meta = reader.metadata();
        let parquet = meta.file_metadata().schema_descr();
        let groups = RowGroups { table: f.table_schema().unwrap(), file: &file, parquet, groups: meta.row_groups() };
        assert_eq!(f.files(&groups), [false, true, false], "days 1-2, 2-4, and only NULL");
        let by_id = RowFilter::new(&state, &table, "id > 2 and day is not null").unwrap();
        assert_eq!(by_id.files(&RowGroups { table: by_id.table_schema().unwrap(), ..groups }), [false, true, false]);
    }
}
