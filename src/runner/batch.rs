//! One scan per table: the built-in column tests `not_null`, `unique` and
//! `accepted_values` selected on the same relation with the same `where`
//! are judged by one aggregate query instead of one query each:
//!
//! - `not_null`: `count(*) - count(col)`, the rows the test would return;
//! - `accepted_values`: `count(distinct case when col not in (..) then col
//!   end)`, the value groups the test would return (NULL is never returned);
//! - `unique`: `count(col) - count(distinct col)` is 0 exactly when the test
//!   returns no rows; otherwise the exact count comes from the test's own
//!   query (failing `unique` tests run again, alone);
//! - `relationships`: the relation is left-joined to the distinct values of
//!   the parent's field (which keeps its rows one for one), and
//!   `count(case when col is not null and <parent value> is null then 1
//!   end)` counts the rows the test would return.
//!
//! `warn_if` / `error_if` are applied to those counts in the same query, so
//! status, failures and message equal one-by-one execution. A test runs
//! alone when its macro is overridden by the project or a package, it
//! stores failures, sets `fail_calc` or `limit`, its `where` is templated,
//! its arguments are not plain strings / integers, or its relation is not
//! found in its compiled SQL. If the batched query fails (a missing column,
//! say), every test of the group runs alone, so errors name their own test.
//! `DP_TEST_BATCH=off` turns batching off (equivalence tests, benchmarks).

use indexmap::IndexMap;
use std::collections::HashMap;
use std::sync::Arc;

use datafusion::arrow::array::{Array, AsArray};
use datafusion::arrow::datatypes::Int64Type;

use super::test::{TestFlags, cfg, stored_as};
use crate::compile::Compiled;
use crate::engine::Engine;
use crate::project::load::Project;
use crate::project::nodes::{Materialization, Node, ResourceType};

/// What one member test counts.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
enum Check {
    NotNull,
    Unique,
    /// The rendered `in (...)` list.
    AcceptedValues(String),
    /// The parent relation (`to`) and its `field`.
    Relationships {
        to: String,
        field: String,
    },
}

#[derive(Debug)]
struct Member {
    uid: String,
    /// Index of the count expression (shared by identical checks).
    expr: usize,
    warn_if: String,
    error_if: String,
    unique: bool,
}

/// A batched test's verdict inputs, as the test's own query would give.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Counted {
    pub failures: i64,
    pub should_warn: bool,
    pub should_error: bool,
}

#[derive(Debug)]
struct Group {
    /// `schema.table` or `(select * from schema.table where ...) dbt_subquery`.
    from: String,
    /// `left join` clauses of `relationships` members.
    joins: Vec<String>,
    exprs: Vec<String>,
    members: Vec<Member>,
    /// Per member uid, `Some` when the batched count is exact; `None` as a
    /// whole when the query failed.
    result: tokio::sync::OnceCell<Option<HashMap<String, Option<Counted>>>>,
}

/// A group being planned: its distinct count expressions (→ index) and members.
type Pending = (IndexMap<(String, Check), usize>, Vec<Member>);

/// The batched groups of one invocation, keyed by test unique_id.
#[derive(Debug, Default)]
pub struct Batches {
    by_test: HashMap<String, Arc<Group>>,
}

/// Whether batching is on (`DP_TEST_BATCH=off` or `0` turns it off).
pub fn enabled() -> bool {
    !crate::util::switched_off("DP_TEST_BATCH")
}

impl Batches {
    /// Groups the batchable tests among `ids` (groups of one stay alone).
    pub fn plan(project: &Project, ids: &[String], compiled: &Compiled, flags: TestFlags) -> Batches {
        // from → (distinct count expressions → index, members)
        let mut groups: IndexMap<String, Pending> = IndexMap::new();
        for uid in ids {
            let Some(node) = project.nodes.get(uid) else { continue };
            let Some((from, column, check)) = batchable(project, node, compiled, flags) else { continue };
            let g = groups.entry(from).or_default();
            let unique = check == Check::Unique;
            let n = g.0.len();
            let expr = *g.0.entry((column, check)).or_insert(n);
            g.1.push(Member { uid: uid.clone(), expr, warn_if: cfg(node, "warn_if", "!= 0"), error_if: cfg(node, "error_if", "!= 0"), unique });
        }
        let mut by_test = HashMap::new();
        for (from, (exprs, members)) in groups {
            if members.len() < 2 {
                continue;
            }
            let mut joins = vec![];
            let exprs = exprs
                .into_keys()
                .map(|(col, check)| match &check {
                    Check::Relationships { to, field } => {
                        let (join, count) = relationship(&col, to, field, joins.len());
                        joins.push(join);
                        count
                    }
                    _ => count_expr(&col, &check),
                })
                .collect();
            let group = Arc::new(Group { from, joins, exprs, members, result: tokio::sync::OnceCell::new() });
            for m in &group.members {
                by_test.insert(m.uid.clone(), group.clone());
            }
        }
        Batches { by_test }
    }

    /// How many tests run batched.
    pub fn len(&self) -> usize {
        self.by_test.len()
    }

    pub fn is_empty(&self) -> bool {
        self.by_test.is_empty()
    }

    /// The batched verdict inputs of test `uid`; `None` means: run the
    /// test's own query (not batched, a failing `unique`, or the batched
    /// query failed).
    pub async fn counted(&self, engine: &Engine, uid: &str) -> Option<Counted> {
        let group = self.by_test.get(uid)?;
        let result = group
            .result
            .get_or_init(|| async {
                match group.run(engine).await {
                    Ok(r) => Some(r),
                    Err(e) => {
                        tracing::debug!(from = %group.from, error = %e, "batched tests failed; running them one by one");
                        None
                    }
                }
            })
            .await;
        result.as_ref()?.get(uid).copied().flatten()
    }
}

impl Group {
    fn sql(&self) -> String {
        let inner: Vec<String> = self.exprs.iter().enumerate().map(|(i, e)| format!("    {e} as n{i}")).collect();
        let mut outer = vec![];
        for (i, m) in self.members.iter().enumerate() {
            let n = format!("n{}", m.expr);
            outer.push(format!(
                "  {n} as f{i},\n  case when {n} {} then 1 else 0 end as w{i},\n  case when {n} {} then 1 else 0 end as e{i}",
                m.warn_if, m.error_if
            ));
        }
        let joins: String = self.joins.iter().map(|j| format!("\n  {j}")).collect();
        format!("select\n{}\nfrom (\n  select\n{}\n  from {}{joins}\n) dbt_batched_tests", outer.join(",\n"), inner.join(",\n"), self.from)
    }

    async fn run(&self, engine: &Engine) -> anyhow::Result<HashMap<String, Option<Counted>>> {
        let batches = engine.sql(&self.sql()).await?.collect().await?;
        let b = batches.iter().find(|b| b.num_rows() > 0).ok_or_else(|| anyhow::anyhow!("the batched test query returned no row"))?;
        let int = |c: usize| -> anyhow::Result<i64> {
            let a = b.column(c).as_primitive_opt::<Int64Type>().ok_or_else(|| anyhow::anyhow!("column {c} is not bigint"))?;
            Ok(if a.is_null(0) { 0 } else { a.value(0) })
        };
        let mut out = HashMap::new();
        for (i, m) in self.members.iter().enumerate() {
            let failures = int(3 * i)?;
            let counted = Counted { failures, should_warn: int(3 * i + 1)? == 1, should_error: int(3 * i + 2)? == 1 };
            // a unique test with duplicates needs its own query for the count
            out.insert(m.uid.clone(), if m.unique && failures != 0 { None } else { Some(counted) });
        }
        Ok(out)
    }
}

fn count_expr(col: &str, check: &Check) -> String {
    match check {
        Check::NotNull => format!("count(*) - count({col})"),
        Check::Unique => format!("count({col}) - count(distinct {col})"),
        Check::AcceptedValues(list) => format!("count(distinct case when {col} not in ({list}) then {col} end)"),
        Check::Relationships { to, field } => relationship(col, to, field, 0).1,
    }
}

/// The `left join` of relationships member `j` and its count: the rows
/// whose `col` is set and matches no value of the parent's `field`, as
/// dbt's `relationships` query returns them.
fn relationship(col: &str, to: &str, field: &str, j: usize) -> (String, String) {
    let alias = format!("dp_rel_{j}");
    (
        format!("left join (select distinct {field} as dp_to from {to}) {alias} on {col} = {alias}.dp_to"),
        format!("count(case when {col} is not null and {alias}.dp_to is null then 1 end)"),
    )
}

/// `(from, column, check)` when `node` can run in a batch.
fn batchable(project: &Project, node: &Node, compiled: &Compiled, flags: TestFlags) -> Option<(String, String, Check)> {
    if node.resource_type != ResourceType::Test {
        return None;
    }
    let md = node.test_metadata.as_ref()?;
    if md.namespace.as_deref().is_some_and(|ns| ns != "dbt") || overridden(project, &md.name) {
        return None;
    }
    if !matches!(stored_as(node, flags.store_failures), Ok(None))
        || node.config.contains_key("limit")
        || cfg(node, "fail_calc", "count(*)").trim() != "count(*)"
    {
        return None;
    }
    let column = md.kwargs.get("column_name")?.as_str()?.to_string();
    let check = match md.name.as_str() {
        "not_null" => Check::NotNull,
        "unique" => Check::Unique,
        "accepted_values" => Check::AcceptedValues(values_list(&md.kwargs)?),
        "relationships" => {
            let field = md.kwargs.get("field")?.as_str()?.to_string();
            let to = parent_relation(project, node, md.kwargs.get("to")?.as_str()?)?;
            Check::Relationships { to, field }
        }
        _ => return None,
    };
    let target = project.nodes.get(node.attached_node.as_ref()?)?;
    let relation = match target.resource_type {
        // as the test's compiled SQL names it (dbt's rendering, `"dp"."main"."orders"`)
        ResourceType::Source => target.dbt_relation_name(&project.settings),
        ResourceType::Model | ResourceType::Seed | ResourceType::Snapshot if target.materialized() != Materialization::Ephemeral => {
            target.dbt_relation_name(&project.settings)
        }
        _ => return None,
    };
    let from = match node.config.get("where") {
        None | Some(serde_json::Value::Null) => relation,
        Some(serde_json::Value::String(w)) if w.is_empty() => relation,
        Some(serde_json::Value::String(w)) if !w.contains("{{") && !w.contains("{%") => format!("(select * from {relation} where {w}) dbt_subquery"),
        _ => return None,
    };
    // the test's own SQL must read exactly this relation (and the parent)
    let sql = compiled.sql.get(&node.unique_id)?;
    if !sql.contains(&from) || matches!(&check, Check::Relationships { to, .. } if !sql.contains(to.as_str())) {
        return None;
    }
    Some((from, column, check))
}

/// The relation of a `relationships` test's `to` (`ref('m')` or
/// `source('s', 't')`), found among the test's dependencies; `None` (run
/// alone) for anything else.
fn parent_relation(project: &Project, node: &Node, to: &str) -> Option<String> {
    static REF: std::sync::LazyLock<regex::Regex> = std::sync::LazyLock::new(|| regex::Regex::new(r#"^\s*ref\(\s*['"]([^'"]+)['"]\s*\)\s*$"#).unwrap());
    static SOURCE: std::sync::LazyLock<regex::Regex> =
        std::sync::LazyLock::new(|| regex::Regex::new(r#"^\s*source\(\s*['"]([^'"]+)['"]\s*,\s*['"]([^'"]+)['"]\s*\)\s*$"#).unwrap());
    let deps = node.depends_on.iter().filter_map(|u| project.nodes.get(u));
    if let Some(c) = REF.captures(to) {
        let name = &c[1];
        let mut found = deps.filter(|n| n.name == name && matches!(n.resource_type, ResourceType::Model | ResourceType::Seed | ResourceType::Snapshot));
        let n = found.next()?;
        if found.next().is_some() || n.materialized() == Materialization::Ephemeral {
            return None;
        }
        return Some(n.dbt_relation_name(&project.settings));
    }
    let c = SOURCE.captures(to)?;
    let mut found = deps.filter(|n| n.resource_type == ResourceType::Source && n.name == c[2] && n.source.as_ref().is_some_and(|s| s.source_name == c[1]));
    let n = found.next()?;
    if found.next().is_some() {
        return None;
    }
    Some(n.dbt_relation_name(&project.settings))
}

/// Whether the project or a package defines the test or its implementation.
fn overridden(project: &Project, test: &str) -> bool {
    let names = [format!("test_{test}"), format!("default__test_{test}"), format!("datafusion__test_{test}")];
    project.macros.values().any(|m| names.contains(&m.name))
}

/// accepted_values' list as the built-in macro renders it (strings and
/// integers only; anything else runs alone).
fn values_list(kwargs: &serde_json::Map<String, serde_json::Value>) -> Option<String> {
    let quote = match kwargs.get("quote") {
        None => true,
        Some(serde_json::Value::Bool(b)) => *b,
        Some(_) => return None,
    };
    let values = kwargs.get("values")?.as_array()?;
    if values.is_empty() {
        return None;
    }
    let mut out = vec![];
    for v in values {
        let text = match v {
            serde_json::Value::String(s) => s.clone(),
            serde_json::Value::Number(n) if n.is_i64() || n.is_u64() => n.to_string(),
            _ => return None,
        };
        out.push(if quote { format!("'{text}'") } else { text });
    }
    Some(out.join(","))
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn renders_accepted_values_like_the_macro() {
        let kw = |v: serde_json::Value| v.as_object().unwrap().clone();
        assert_eq!(values_list(&kw(json!({"values": ["a", "b"]}))).as_deref(), Some("'a','b'"));
        assert_eq!(values_list(&kw(json!({"values": [1, 2], "quote": false}))).as_deref(), Some("1,2"));
        assert_eq!(values_list(&kw(json!({"values": [1.5]}))), None);
        assert_eq!(values_list(&kw(json!({"values": [true]}))), None);
        assert_eq!(values_list(&kw(json!({"values": ["a"], "quote": "yes"}))), None);
    }

    #[test]
    fn relationships_join_the_distinct_parent_values() {
        let (join, count) = relationship("customer_id", "main.customers", "id", 2);
        assert_eq!(join, "left join (select distinct id as dp_to from main.customers) dp_rel_2 on customer_id = dp_rel_2.dp_to");
        assert_eq!(count, "count(case when customer_id is not null and dp_rel_2.dp_to is null then 1 end)");
    }

    #[test]
    fn one_query_with_shared_counts() {
        let g = Group {
            from: "main.t".into(),
            joins: vec![],
            exprs: vec![count_expr("a", &Check::NotNull), count_expr("b", &Check::AcceptedValues("'x'".into()))],
            members: vec![
                Member { uid: "t1".into(), expr: 0, warn_if: "!= 0".into(), error_if: "!= 0".into(), unique: false },
                Member { uid: "t2".into(), expr: 0, warn_if: ">1".into(), error_if: ">5".into(), unique: false },
                Member { uid: "t3".into(), expr: 1, warn_if: "!= 0".into(), error_if: "!= 0".into(), unique: false },
            ],
            result: tokio::sync::OnceCell::new(),
        };
        assert_eq!(
            g.sql(),
            "select\n  n0 as f0,\n  case when n0 != 0 then 1 else 0 end as w0,\n  case when n0 != 0 then 1 else 0 end as e0,\n  n0 as f1,\n  case when n0 >1 then 1 else 0 end as w1,\n  case when n0 >5 then 1 else 0 end as e1,\n  n1 as f2,\n  case when n1 != 0 then 1 else 0 end as w2,\n  case when n1 != 0 then 1 else 0 end as e2\nfrom (\n  select\n    count(*) - count(a) as n0,\n    count(distinct case when b not in ('x') then b end) as n1\n  from main.t\n) dbt_batched_tests"
        );
    }
}
