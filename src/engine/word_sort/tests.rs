//! Every query runs with the rule and with DataFusion's sort, and must
//! return the same rows in the same order wherever the order is total;
//! the plan must show `WordSortExec` exactly where the rule applies.

use super::WordSort;
use crate::engine::rule_tests::{self, Rules, plan, rows, rows_in_order as ordered};
use crate::engine::sorted_window::SortedWindow;
use datafusion::prelude::SessionContext;

/// 60,000 rows over four partitions: keys with NULLs, one holding the
/// extreme values a NULL's word could clash with, narrower, unsigned, date
/// and timestamp columns, a string, and `id` to make an order total.
const DATA: &str = "create table t as select
    case when value % 97 = 0 then null else value % 5000 end as k,
    case when value % 89 = 0 then null when value % 7 = 0 then 9223372036854775807 when value % 5 = 0 then -9223372036854775807 - 1 else value % 13 end as x,
    case when value % 11 = 0 then null else cast((value * 7919) % 10007 as int) end as o,
    cast(value % 300 as int unsigned) as u,
    cast(to_timestamp_seconds(value * 3600) as date) as d,
    case when value % 17 = 0 then null else to_timestamp_seconds((value * 7919) % 100003) end as ts,
    'v' || cast((value * 31) % 13 as varchar) as s,
    value as id
from range(0, 60000)";

async fn session(rule: bool) -> SessionContext {
    let mut rules: Rules = datafusion::physical_optimizer::optimizer::PhysicalOptimizer::new().rules;
    if rule {
        WordSort { enabled: true }.add_to(&mut rules);
    }
    rule_tests::session(Some(rules), &[DATA]).await
}

#[tokio::test]
async fn word_keys_sort_as_datafusion_sorts() {
    let (with, without) = (session(true).await, session(false).await);
    let total = [
        "select * from t order by k, id",
        "select * from t order by k desc nulls last, o nulls first, id desc",
        "select id, x from t order by x, id",
        "select id, x from t order by x desc nulls last, id",
        "select id, x, k from t order by x nulls first, k desc nulls first, id",
        "select u, d, ts, id from t order by u desc, d, ts desc nulls last, id",
        "select id, o, k, x, ts from t order by o, k, x desc, ts, u, id",
        "select k + 1 as k1, id from t order by k + 1 desc, id",
    ];
    for sql in total {
        let want = ordered(&without, sql).await;
        assert_eq!(want.len(), 60000, "{sql}");
        assert_eq!(ordered(&with, sql).await, want, "{sql}");
        assert!(plan(&with, sql).await.contains("WordSortExec"), "not rewritten: {sql}");
        assert!(!plan(&without, sql).await.contains("WordSortExec"));
    }
}

#[tokio::test]
async fn windows_over_word_sorts_number_and_shift_as_before() {
    let without = session(false).await;
    let mut rules: Rules = datafusion::physical_optimizer::optimizer::PhysicalOptimizer::new().rules;
    SortedWindow::new().add_to(&mut rules);
    WordSort { enabled: true }.add_to(&mut rules);
    let with = rule_tests::session(Some(rules), &[DATA]).await;
    for sql in [
        "select id, row_number() over (partition by k order by o, id) as rn, lag(o) over (partition by k order by o, id) as prev from t",
        "select id, rank() over (partition by d order by ts desc nulls first) as r, lead(id, 2) over (partition by d order by ts desc nulls first, id) as nxt from t",
        "select id, sum(o) over (partition by u order by id rows between 3 preceding and current row) as s from t",
    ] {
        assert_eq!(rows(&with, sql).await, rows(&without, sql).await, "{sql}");
        assert!(plan(&with, sql).await.contains("WordSortExec"), "not rewritten: {sql}");
    }
}

#[tokio::test]
async fn other_sorts_stay_with_datafusion() {
    let (with, without) = (session(true).await, session(false).await);
    for sql in [
        "select * from t order by s, id",
        "select * from t order by id limit 10",
        "select * from t order by k, s, id",
        "select * from t order by cast(o as double), id",
    ] {
        assert!(!plan(&with, sql).await.contains("WordSortExec"), "rewritten: {sql}");
        assert_eq!(ordered(&with, sql).await, ordered(&without, sql).await, "{sql}");
    }
    assert!(!WordSort::new(true).enabled);
}
