//! Every query runs twice, with the rule and with DataFusion's plan, and
//! must return the same rows; the plan must show `TopOneExec` exactly
//! where the rule applies.

use super::TopOnePerKey;
use crate::engine::rule_tests::{self, plan, rows};
use datafusion::prelude::SessionContext;

/// 60,000 rows, a thousand batches over four partitions: keys with NULLs,
/// orderings with NULLs, and `id` to break every tie.
const DATA: &str = "create table t as select
    case when value % 97 = 0 then null else value % 5000 end as k,
    value % 3 as k2,
    case when value % 11 = 0 then null else (value * 7919) % 10007 end as o,
    'v' || cast((value * 31) % 13 as varchar) as s,
    value as id
from range(0, 60000)";

/// Few keys, many rows each: the kept batches get compacted. Keys 0-3 find
/// a new first row in nearly every batch (so batches are kept), keys 4-6
/// keep their first: their rows must survive each compaction.
const FEW: &str = "create table few as select value % 7 as k, case when value % 7 < 4 then value else -value end as o, value as id from range(0, 600000)";

async fn session(rule: bool) -> SessionContext {
    rule_tests::session(rule.then(|| TopOnePerKey { enabled: true }.with_default_rules()), &[DATA, FEW]).await
}

#[tokio::test]
async fn row_number_one_keeps_what_the_window_keeps() {
    let (with, without) = (session(true).await, session(false).await);
    let rewritten = [
        "select * from (select *, row_number() over (partition by k order by o desc, id) as rn from t) where rn = 1",
        "select * from (select *, row_number() over (partition by k order by o asc nulls first, id desc) as rn from t) where rn <= 1",
        "select * from (select *, row_number() over (partition by k order by o asc nulls last, id) as rn from t) where rn < 2",
        "select k, k2, s, id from (select *, row_number() over (partition by k, k2 order by s desc, o, id) as rn from t) where 1 = rn",
        "select * from (select *, row_number() over (partition by k2, s order by id desc) as rn from t) where rn = 1 and o > 5000",
        "select id, rn from (select id, cast(row_number() over (partition by k order by o, id) as int) as rn from t) where rn = 1",
        "select k, count(*) from (select k, row_number() over (partition by k order by id) as rn from t) where rn = 1 group by k",
        "select * from (select *, row_number() over (partition by k order by o desc, id) as rn from few) where rn = 1",
        // Integer orderings after the first go as words too; the first ties
        // often here (k2 has three values), so the later ones decide.
        "select * from (select *, row_number() over (partition by k order by k2, o desc nulls first, id) as rn from t) where rn = 1",
        "select * from (select *, row_number() over (partition by k order by k2 desc, o nulls last, id desc) as rn from t) where rn = 1",
        "select * from (select *, row_number() over (partition by k2 order by o desc nulls last, k nulls first, id) as rn from t) where rn = 1",
        "select a.id, b.s from (select *, row_number() over (partition by k order by id desc) as rn from t) a join t b on a.id = b.id where a.rn = 1",
    ];
    for sql in rewritten {
        let expected = rows(&without, sql).await;
        assert!(!expected.is_empty(), "{sql}");
        assert_eq!(rows(&with, sql).await, expected, "{sql}");
        assert!(plan(&with, sql).await.contains("TopOneExec"), "not rewritten: {sql}");
        assert!(!plan(&without, sql).await.contains("TopOneExec"));
    }
    // Without an order, any row of the key may come first: the keys and
    // their number agree.
    let sql = "select k, rn from (select k, row_number() over (partition by k) as rn from t) where rn = 1";
    assert_eq!(rows(&with, sql).await, rows(&without, sql).await);
    assert!(plan(&with, sql).await.contains("TopOneExec"));
    // An order above the rewritten operator still holds.
    let sql = "select id from (select *, row_number() over (partition by k order by o desc, id) as rn from t) where rn = 1 order by id limit 5";
    let got = with.sql(sql).await.unwrap().collect().await.unwrap();
    let want = without.sql(sql).await.unwrap().collect().await.unwrap();
    assert_eq!(format!("{got:?}"), format!("{want:?}"));
}

/// One integer-like key and one integer-like order take the word path
/// (`word_winners.rs`; several orders are in the test above): every
/// direction and NULL placement, NULL keys, and narrower, unsigned, date and
/// timestamp types. `o` ties, so only the key and the winning order value
/// are compared.
#[tokio::test]
async fn one_integer_key_and_order_keep_what_the_window_keeps() {
    let (with, without) = (session(true).await, session(false).await);
    let typed = "(select cast(k as int) as k32, cast(k as int unsigned) as ku, cast(k as smallint) as k16,
        cast(o as int) as o32, to_timestamp_seconds(o) as ts, cast(to_timestamp_seconds(o * 86400) as date) as d,
        cast(o as bigint unsigned) as ou, k, o from t)";
    let mut queries = vec![];
    for order in ["o", "o desc", "o asc nulls first", "o desc nulls last", "o desc nulls first"] {
        queries.push(format!("select k, o from (select k, o, row_number() over (partition by k order by {order}) as rn from t) where rn = 1"));
    }
    for (key, order, direction) in
        [("k32", "o32", "desc"), ("ku", "ts", ""), ("k16", "d", "desc nulls last"), ("ts", "ou", ""), ("d", "k", "desc"), ("ku", "ou", "desc")]
    {
        queries.push(format!(
            "select {key}, {order} from (select *, row_number() over (partition by {key} order by {order} {direction}) as rn from {typed}) where rn = 1"
        ));
    }
    queries.push("select k, o from (select k, o, row_number() over (partition by k order by o desc) as rn from few) where rn = 1".into());
    for sql in &queries {
        let expected = rows(&without, sql).await;
        assert!(expected.len() > 3, "{sql}");
        assert_eq!(rows(&with, sql).await, expected, "{sql}");
        assert!(plan(&with, sql).await.contains("TopOneExec"), "not rewritten: {sql}");
    }
}

#[tokio::test]
async fn other_filters_and_windows_are_left_to_the_window_operator() {
    let (with, without) = (session(true).await, session(false).await);
    let kept = [
        "select * from (select *, row_number() over (partition by k order by o, id) as rn from t) where rn = 2",
        "select * from (select *, row_number() over (partition by k order by o, id) as rn from t) where rn <= 2",
        "select * from (select *, row_number() over (partition by k order by o, id) as rn from t) where rn = 1 or id = 7",
        "select * from (select *, row_number() over (order by o, id) as rn from t) where rn = 1",
        "select * from (select *, rank() over (partition by k order by o) as rn from t) where rn = 1",
        "select * from (select *, row_number() over (partition by k order by o, id) as rn, count(*) over (partition by k) as c from t) where rn = 1",
        "select * from (select *, row_number() over (partition by k order by o, id) as rn from t) where id = 1",
    ];
    for sql in kept {
        assert!(!plan(&with, sql).await.contains("TopOneExec"), "rewritten: {sql}");
        assert_eq!(rows(&with, sql).await, rows(&without, sql).await, "{sql}");
    }
}

#[test]
fn a_memory_limit_or_dp_top_one_off_turns_the_rule_off() {
    assert!(!TopOnePerKey::new(true).enabled);
    let rules = TopOnePerKey::new(false).with_default_rules();
    let names: Vec<&str> = rules.iter().map(|r| r.name()).collect();
    let at = names.iter().position(|n| *n == "TopOnePerKey").unwrap();
    assert_eq!(names[at + 1], "EnsureRequirements");
}
