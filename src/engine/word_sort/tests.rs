//! Every query runs with the rule and with DataFusion's sort, and must
//! return the same rows in the same order wherever the order is total;
//! the plan must show `WordSortExec` exactly where the rule applies.

use super::WordSort;
use crate::engine::rule_tests::{self, Rules, plan, rows, rows_in_order as ordered};
use crate::engine::sorted_window::SortedWindow;
use datafusion::prelude::SessionContext;

/// 60,000 rows over four partitions: keys with NULLs, one holding the
/// extreme values a NULL's word could clash with, narrower, unsigned, date
/// and timestamp columns, strings (short ones that tie, and `p`: NULLs,
/// empty strings, `ab` beside `ab\0`, and long ones sharing their first
/// nine bytes, some ending in a two-byte character), and `id` to make an
/// order total.
const DATA: &str = "create table t as select
    case when value % 97 = 0 then null else value % 5000 end as k,
    case when value % 89 = 0 then null when value % 7 = 0 then 9223372036854775807 when value % 5 = 0 then -9223372036854775807 - 1 else value % 13 end as x,
    case when value % 11 = 0 then null else cast((value * 7919) % 10007 as int) end as o,
    cast(value % 300 as int unsigned) as u,
    cast(to_timestamp_seconds(value * 3600) as date) as d,
    case when value % 17 = 0 then null else to_timestamp_seconds((value * 7919) % 100003) end as ts,
    'v' || cast((value * 31) % 13 as varchar) as s,
    case when value % 23 = 0 then null when value % 19 = 0 then '' when value % 29 = 0 then 'ab' || chr(0) when value % 31 = 0 then 'ab'
        else 'customer-' || cast((value * 7) % 997 as varchar) || case when value % 2 = 0 then 'é' else '' end end as p,
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
        "select * from t order by s, id",
        "select * from t order by k, s, id",
        "select id, p from t order by p, id",
        "select id, p from t order by p desc nulls first, id",
        "select id, p, s from t order by s desc, p nulls first, id desc",
        "select id, p from t order by arrow_cast(p, 'LargeUtf8') desc nulls last, k, id",
        "select id, p from t order by arrow_cast(p, 'Utf8View') nulls first, id desc",
        "select id, p from t order by upper(p), x desc nulls first, o, d, ts, id",
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
        "select id, row_number() over (partition by p order by ts desc nulls last, id) as rn, lag(id) over (partition by p order by ts desc nulls last, id) as prev from t",
    ] {
        assert_eq!(rows(&with, sql).await, rows(&without, sql).await, "{sql}");
        assert!(plan(&with, sql).await.contains("WordSortExec"), "not rewritten: {sql}");
    }
}

#[tokio::test]
async fn other_sorts_stay_with_datafusion() {
    let (with, without) = (session(true).await, session(false).await);
    for sql in ["select * from t order by id limit 10", "select * from t order by cast(o as double), id", "select * from t order by k > 100, id"] {
        assert!(!plan(&with, sql).await.contains("WordSortExec"), "rewritten: {sql}");
        assert_eq!(ordered(&with, sql).await, ordered(&without, sql).await, "{sql}");
    }
    assert!(!WordSort::new(true).enabled);
}
