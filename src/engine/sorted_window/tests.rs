//! Every query runs with the rule and with DataFusion's window operator and
//! must return the same rows; the plan must show `SortedWindowExec` exactly
//! where the rule applies.

use super::SortedWindow;
use crate::engine::rule_tests::{self, plan, rows};
use crate::runner::unit::diff::rows_of;
use datafusion::prelude::SessionContext;

/// 20,000 rows in batches of 64 over four partitions: keys with NULLs and
/// a few hundred rows each (partitions span batches) or one to three rows
/// each (many partitions per batch); orderings with NULLs and ties; `id`
/// breaks ties where a query needs a deterministic order.
const DATA: &str = "create table t as select
    case when value % 97 = 0 then null else value % 50 end as k,
    value % 7000 as small,
    value % 3 as k2,
    case when value % 11 = 0 then null else (value * 7919) % 101 end as o,
    case when value % 13 = 0 then null else 'v' || cast((value * 31) % 17 as varchar) end as s,
    cast(value as double) / 4 as x,
    value as id
from range(0, 20000)";

async fn session(rule: bool) -> SessionContext {
    let rules = rule.then(|| {
        let mut rules = datafusion::physical_optimizer::optimizer::PhysicalOptimizer::new().rules;
        SortedWindow { enabled: true }.add_to(&mut rules);
        rules
    });
    rule_tests::session(rules, &[DATA]).await
}

#[tokio::test]
async fn ranks_and_shifts_match_the_window_operator() {
    let (with, without) = (session(true).await, session(false).await);
    let rewritten = [
        "select id, row_number() over (partition by k order by o, id) from t",
        "select id, row_number() over (partition by small order by o desc nulls last, id) from t",
        "select id, rank() over (partition by k order by o), dense_rank() over (partition by k order by o) from t",
        "select id, rank() over (partition by k2, s order by o desc nulls first), dense_rank() over (partition by k2, s order by o desc nulls first) from t",
        "select id, rank() over (partition by k), dense_rank() over (partition by small) from t",
        "select id, lag(x) over (partition by k order by id), lead(x) over (partition by k order by id) from t",
        "select id, lag(s, 2, 'none') over (partition by small order by id), lead(o, 3, -1) over (partition by small order by id) from t",
        "select id, lag(x, 150) over (partition by k order by id), lead(s, 100, 'end') over (partition by k order by id) from t",
        "select id, lag(x, 0) over (partition by k order by id), lead(x, -2) over (partition by k order by id) from t",
        "select id, row_number() over (partition by k order by id) as n, lag(id) over (partition by k order by id) as p, \
         lead(id, 1, 0) over (partition by k order by id) as q, rank() over (partition by k order by id) as r from t",
        "select id, row_number() over (order by id), lag(s) over (order by id), lead(x, 5) over (order by id) from t",
        "select id, rank() over (order by o), dense_rank() over (order by o nulls first), rank() over () from t",
        "select id, lag(o, 1, 0) over (partition by k order by o, id) from t where id % 5 = 0",
        "select id, lag(x, 2) over (partition by k order by id) as a, lag(x, 2) over (partition by k order by id desc) as b, \
         lead(s) over (partition by k order by id desc) as c, row_number() over (partition by k order by id desc) as d from t",
        "select k, max(n) from (select k, row_number() over (partition by k order by id) as n from t) group by k",
    ];
    for sql in rewritten {
        let expected = rows(&without, sql).await;
        assert!(!expected.is_empty(), "{sql}");
        assert_eq!(rows(&with, sql).await, expected, "{sql}");
        assert!(plan(&with, sql).await.contains("SortedWindowExec"), "not rewritten: {sql}");
        assert!(!plan(&without, sql).await.contains("SortedWindowExec"));
    }
    // Two partitionings served by one sort (`k, o`): each window gets its
    // own operator, and the rows agree.
    let sql = "select id, row_number() over (partition by k order by o, id), dense_rank() over (partition by k, o) from t";
    assert_eq!(rows(&with, sql).await, rows(&without, sql).await, "{sql}");
    // The output order of the window holds for operators above it.
    let sql = "select id, lag(id) over (partition by k order by id) as p from t order by k, id limit 300";
    let got = with.sql(sql).await.unwrap().collect().await.unwrap();
    let want = without.sql(sql).await.unwrap().collect().await.unwrap();
    assert_eq!(rows_of(&got).unwrap(), rows_of(&want).unwrap());
}

#[tokio::test]
async fn other_window_functions_are_left_to_the_window_operator() {
    let (with, without) = (session(true).await, session(false).await);
    let kept = [
        "select id, sum(x) over (partition by k order by id) from t",
        "select id, row_number() over (partition by k order by id), count(*) over (partition by k order by id) from t",
        "select id, first_value(x) over (partition by k order by id) from t",
        "select id, lag(x) ignore nulls over (partition by k order by id) from t",
        "select id, percent_rank() over (partition by k order by o) from t",
        "select id, ntile(3) over (partition by k order by id) from t",
    ];
    for sql in kept {
        assert!(!plan(&with, sql).await.contains("SortedWindowExec"), "rewritten: {sql}");
        assert_eq!(rows(&with, sql).await, rows(&without, sql).await, "{sql}");
    }
}

#[test]
fn the_rule_runs_just_before_the_sanity_check() {
    let mut rules = datafusion::physical_optimizer::optimizer::PhysicalOptimizer::new().rules;
    SortedWindow::new().add_to(&mut rules);
    let names: Vec<&str> = rules.iter().map(|r| r.name()).collect();
    let at = names.iter().position(|n| *n == "SortedWindow").unwrap();
    assert_eq!(names[at + 1], "SanityCheckPlan");
}
