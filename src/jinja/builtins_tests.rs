//! The cross-database macros of dp's built-in `dbt` package: each rendered
//! through the Jinja environment and executed on DataFusion, with the
//! values pinned against dbt's own reference semantics. "dbt-duckdb" below
//! means the value `dbt show --inline` gives for the same macro call with
//! dbt-core 1.11 + dbt-duckdb 1.11; "dbt-postgres" means the value of
//! dbt-postgres's macro SQL (where it differs from dbt-duckdb's, e.g.
//! negative week counts, Postgres is the reference).

use super::JinjaEnv;
use super::tests::env_with;
use datafusion::arrow::util::display::{ArrayFormatter, FormatOptions};
use datafusion::prelude::SessionContext;

fn render(env: &JinjaEnv, src: &str) -> String {
    env.render_str("t.sql", src, None, &[]).unwrap_or_else(|e| panic!("render {src}: {e}"))
}

async fn rows(sql: &str) -> Result<Vec<Vec<String>>, String> {
    let ctx = SessionContext::new();
    let df = ctx.sql(sql).await.map_err(|e| format!("{e}\n--- sql:\n{sql}"))?;
    let batches = df.collect().await.map_err(|e| format!("{e}\n--- sql:\n{sql}"))?;
    let opts = FormatOptions::default().with_null("NULL");
    let mut out = vec![];
    for b in &batches {
        let fmts: Vec<_> = b.columns().iter().map(|c| ArrayFormatter::try_new(c.as_ref(), &opts).unwrap()).collect();
        for r in 0..b.num_rows() {
            out.push(fmts.iter().map(|f| f.value(r).to_string()).collect());
        }
    }
    Ok(out)
}

/// Renders `src` and runs it: every row, every column as text.
async fn run(env: &JinjaEnv, src: &str) -> Vec<Vec<String>> {
    let sql = render(env, src);
    rows(&sql).await.unwrap_or_else(|e| panic!("{e}"))
}

/// Renders `select <expr> as v` and returns the single value.
async fn value(env: &JinjaEnv, expr: &str) -> String {
    let r = run(env, &format!("select {expr} as v")).await;
    assert_eq!(r.len(), 1, "{expr}: {r:?}");
    r[0][0].clone()
}

/// The first column of every row.
async fn column(env: &JinjaEnv, src: &str) -> Vec<String> {
    run(env, src).await.into_iter().map(|r| r[0].clone()).collect()
}

const MACROS: &[&str] = &[
    "any_value",
    "array_append",
    "array_concat",
    "array_construct",
    "bool_or",
    "cast",
    "cast_bool_to_text",
    "concat",
    "current_timestamp",
    "current_timestamp_backcompat",
    "current_timestamp_in_utc_backcompat",
    "snapshot_get_time",
    "date",
    "date_spine",
    "generate_series",
    "get_intervals_between",
    "get_powers_of_two",
    "date_trunc",
    "dateadd",
    "datediff",
    "escape_single_quotes",
    "except",
    "hash",
    "intersect",
    "last_day",
    "default_last_day",
    "length",
    "listagg",
    "position",
    "replace",
    "right",
    "safe_cast",
    "split_part",
    "_split_part_negative",
    "string_literal",
    "type_bigint",
    "type_boolean",
    "type_float",
    "type_int",
    "type_numeric",
    "type_string",
    "type_timestamp",
    "equals",
];

#[test]
fn every_macro_is_in_dbt_and_unqualified() {
    let env = env_with(&[]);
    for m in MACROS {
        let out = render(&env, &format!("{{{{ dbt.{m} is defined }}}} {{{{ {m} is defined }}}}"));
        assert_eq!(out, "True True", "{m}");
        // dbt's dispatch target exists too (default_last_day / _split_part_negative are helpers).
        if !m.starts_with('_') && *m != "default_last_day" {
            assert!(env.macros.dispatch(m, Some("dbt")).is_ok(), "{m} does not dispatch");
        }
    }
}

#[tokio::test]
async fn datediff_counts_boundaries_like_dbt_postgres() {
    let env = env_with(&[]);
    // (first, second, datepart, expected): dbt-postgres = dbt-duckdb (DuckDB date_diff).
    let cases: &[(&str, &str, &str, i64)] = &[
        ("'2024-01-31'", "'2024-03-01'", "month", 2),
        ("'2024-03-01'", "'2024-01-31'", "month", -2),
        ("'2023-12-31'", "'2024-01-01'", "year", 1),
        ("'2024-01-01'", "'2024-12-31'", "year", 0),
        ("'2024-03-31'", "'2024-04-01'", "quarter", 1),
        ("'2023-11-15'", "'2024-05-15'", "quarter", 2),
        ("'2024-01-01'", "'2024-03-01'", "day", 60),
        ("'2024-01-01 23:00:00'", "'2024-01-02 01:00:00'", "day", 1),
        ("'2024-01-01 10:59:00'", "'2024-01-01 11:00:00'", "hour", 1),
        ("'2024-01-01 22:30:00'", "'2024-01-02 01:10:00'", "hour", 3),
        ("'2024-01-01 10:00:59'", "'2024-01-01 10:01:00'", "minute", 1),
        ("'2024-01-01 10:00:00.900'", "'2024-01-01 10:00:01.100'", "second", 1),
        ("'2024-01-01 10:00:01.100'", "'2024-01-01 10:00:00.900'", "second", -1),
        ("'2024-01-01 23:59:59.999'", "'2024-01-02 00:00:00.001'", "millisecond", 2),
        ("'2024-01-01 23:59:59.999999'", "'2024-01-02 00:00:00.000001'", "microsecond", 2),
        // weeks start on Sunday: Sat -> Sun crosses one boundary, Sun -> Sat none.
        ("'2024-01-06'", "'2024-01-07'", "week", 1),
        ("'2024-01-07'", "'2024-01-13'", "week", 0),
        ("'2024-01-01'", "'2024-01-31'", "week", 4),
        ("'2024-01-07'", "'2024-01-06'", "week", -1),
        ("'2024-01-31'", "'2024-01-01'", "week", -4),
        // dbt-postgres (truncating division); dbt-duckdb's `//` floors to -2 here.
        ("'2024-01-20'", "'2024-01-07'", "week", -1),
        // typed dates and timestamps, and year 9999 (beyond nanosecond timestamps)
        ("date '2024-01-31'", "date '2024-03-01'", "month", 2),
        ("timestamp '2024-01-01 10:00:00'", "timestamp '2024-01-02 09:00:00'", "hour", 23),
        ("date '2024-01-01'", "date '9999-12-31'", "year", 7975),
    ];
    for (a, b, part, want) in cases {
        let got = value(&env, &format!("{{{{ dbt.datediff(\"{a}\", \"{b}\", '{part}') }}}}")).await;
        assert_eq!(got, want.to_string(), "datediff({a}, {b}, {part})");
    }
    // unqualified, on columns, and always a bigint
    let r = run(
        &env,
        "select {{ datediff('a', 'b', 'day') }} as d, arrow_typeof({{ datediff('a', 'b', 'month') }}) as t \
         from (values (date '2024-01-01', date '2024-01-11'), (date '2024-02-01', date '2024-01-30')) x(a, b) order by a",
    )
    .await;
    assert_eq!(r, vec![vec!["10".to_string(), "Int64".into()], vec!["-2".into(), "Int64".into()]]);
}

#[test]
fn datediff_rejects_an_unknown_datepart() {
    let env = env_with(&[]);
    let e = env.render_str("t.sql", "{{ dbt.datediff('a', 'b', 'fortnight') }}", None, &[]).unwrap_err();
    assert!(e.message.contains("Unsupported datepart for macro datediff"), "{}", e.message);
}

#[tokio::test]
async fn dateadd_every_datepart() {
    let env = env_with(&[]);
    // expected values: dbt-duckdb (and Postgres' timestamp + interval)
    let cases: &[(&str, &str, &str, &str)] = &[
        ("day", "3", "'2024-02-27'", "2024-03-01T00:00:00"),
        ("day", "3", "date '2024-02-27'", "2024-03-01T00:00:00"),
        ("month", "1", "date '2024-01-31'", "2024-02-29T00:00:00"),
        ("quarter", "-1", "date '2024-05-31'", "2024-02-29T00:00:00"),
        ("quarter", "2", "'2024-01-15 08:00:00'", "2024-07-15T08:00:00"),
        ("year", "1", "date '2024-02-29'", "2025-02-28T00:00:00"),
        ("week", "2", "date '2024-02-27'", "2024-03-12T00:00:00"),
        ("hour", "3", "date '2024-01-01'", "2024-01-01T03:00:00"),
        ("hour", "25", "timestamp '2024-01-01 10:00:00'", "2024-01-02T11:00:00"),
        ("minute", "90", "timestamp '2024-01-01 10:00:00'", "2024-01-01T11:30:00"),
        ("second", "-1", "timestamp '2024-01-01 00:00:00'", "2023-12-31T23:59:59"),
        ("millisecond", "1500", "timestamp '2024-01-01 00:00:00'", "2024-01-01T00:00:01.500"),
        ("microsecond", "7", "timestamp '2024-01-01 00:00:00'", "2024-01-01T00:00:00.000007"),
        ("day", "-1", "date '9999-12-31'", "9999-12-30T00:00:00"),
        ("DAY", "1 + 1", "date '2024-01-01'", "2024-01-03T00:00:00"),
    ];
    for (part, n, from, want) in cases {
        let got = value(&env, &format!("{{{{ dbt.dateadd('{part}', '{n}', \"{from}\") }}}}")).await;
        assert_eq!(got, *want, "dateadd({part}, {n}, {from})");
    }
    // the interval from a column, unqualified
    let got = column(&env, "select {{ dateadd('month', 'n', \"date '2024-01-31'\") }} from (values (1), (2), (-1)) t(n) order by n").await;
    assert_eq!(got, ["2023-12-31T00:00:00", "2024-02-29T00:00:00", "2024-03-31T00:00:00"]);
}

#[tokio::test]
async fn last_day_of_each_period() {
    let env = env_with(&[]);
    // dbt-duckdb: 2024-02-29, 2024-06-30, 2024-12-31, 2024-02-18
    assert_eq!(value(&env, "{{ dbt.last_day(\"date '2024-02-10'\", 'month') }}").await, "2024-02-29");
    assert_eq!(value(&env, "{{ dbt.last_day(\"date '2024-05-10'\", 'quarter') }}").await, "2024-06-30");
    assert_eq!(value(&env, "{{ last_day(\"date '2024-05-10'\", 'year') }}").await, "2024-12-31");
    assert_eq!(value(&env, "{{ last_day(\"date '2024-02-14'\", 'week') }}").await, "2024-02-18");
    assert_eq!(value(&env, "arrow_typeof({{ last_day(\"'2023-02-10'\", 'month') }})").await, "Date32");
    assert_eq!(value(&env, "{{ last_day(\"'2023-02-10'\", 'month') }}").await, "2023-02-28");
}

#[tokio::test]
async fn date_spine_rows() {
    let env = env_with(&[]);
    // dbt-duckdb: the end date is excluded; one row per period from the start.
    let got = column(&env, "select * from ({{ dbt.date_spine('day', \"cast('2024-01-01' as date)\", \"cast('2024-01-05' as date)\") }}) s order by 1").await;
    assert_eq!(got, ["2024-01-01T00:00:00", "2024-01-02T00:00:00", "2024-01-03T00:00:00", "2024-01-04T00:00:00"]);
    let got =
        column(&env, "select date_month from ({{ date_spine('month', \"cast('2024-01-15' as date)\", \"cast('2024-04-01' as date)\") }}) s order by 1").await;
    assert_eq!(got, ["2024-01-15T00:00:00", "2024-02-15T00:00:00", "2024-03-15T00:00:00"]);
    let got =
        column(&env, "select date_week from ({{ date_spine('week', \"cast('2024-01-03' as date)\", \"cast('2024-01-31' as date)\") }}) s order by 1").await;
    assert_eq!(got, ["2024-01-03T00:00:00", "2024-01-10T00:00:00", "2024-01-17T00:00:00", "2024-01-24T00:00:00"]);
    // as a CTE of a model, bounds from expressions
    let r = run(
        &env,
        "with spine as ({{ dbt.date_spine('hour', \"timestamp '2024-01-01 22:00:00'\", dbt.dateadd('hour', 3, \"timestamp '2024-01-01 22:00:00'\")) }}) \
         select count(*), min(date_hour), max(date_hour) from spine",
    )
    .await;
    assert_eq!(r, vec![vec!["3".to_string(), "2024-01-01T22:00:00".into(), "2024-01-02T00:00:00".into()]]);
}

#[tokio::test]
async fn generate_series_and_helpers() {
    let env = env_with(&[]);
    let got = column(&env, "select generated_number from ({{ dbt.generate_series(5) }}) s order by 1").await;
    assert_eq!(got, ["1", "2", "3", "4", "5"]);
    // dbt's default (powers-of-two cross join) is valid DataFusion SQL too;
    // power() makes it a double, as on Postgres
    let got = column(&env, "{{ dbt.default__generate_series(5) }}").await;
    assert_eq!(got, ["1.0", "2.0", "3.0", "4.0", "5.0"]);
    assert_eq!(render(&env, "{{ get_powers_of_two(1) }} {{ get_powers_of_two(5) }} {{ get_powers_of_two(8) }} {{ get_powers_of_two(9) }}"), "1 3 3 4");
    let e = env.render_str("t.sql", "{{ dbt.get_powers_of_two(0) }}", None, &[]).unwrap_err();
    assert!(e.message.contains("upper bound must be positive"), "{}", e.message);
    // get_intervals_between is the datediff, evaluated by the query
    assert_eq!(value(&env, "{{ dbt.get_intervals_between(\"'2024-01-01'\", \"'2024-03-01'\", 'month') }}").await, "2");
}

#[tokio::test]
async fn listagg_variants() {
    let env = env_with(&[]);
    let from = " from (values ('a'), ('c'), ('b')) t(x)";
    // dbt-duckdb: 'c | b | a' and 'c,b'
    let r = run(
        &env,
        &format!(
            "select {{{{ dbt.listagg('x', order_by_clause='order by x') }}}}, {{{{ dbt.listagg('x', \"' | '\", 'order by x desc') }}}}, \
             {{{{ listagg('x', \"','\", 'order by x desc', 2) }}}}{from}"
        ),
    )
    .await;
    assert_eq!(r, vec![vec!["a,b,c".to_string(), "c | b | a".into(), "c,b".into()]]);
    // without an order: every value, once
    let r = run(&env, &format!("select {{{{ listagg('x') }}}}{from}")).await;
    let mut got: Vec<&str> = r[0][0].split(',').collect();
    got.sort();
    assert_eq!(got, ["a", "b", "c"]);
    // grouped
    let r = run(&env, "select g, {{ listagg('x', \"'-'\", 'order by x') }} from (values (1, 'b'), (1, 'a'), (2, 'z')) t(g, x) group by g order by g").await;
    assert_eq!(r, vec![vec!["1".to_string(), "a-b".into()], vec!["2".into(), "z".into()]]);
}

#[tokio::test]
async fn string_macros() {
    let env = env_with(&[]);
    // md5 hex, as dbt-duckdb/dbt-postgres md5(cast(... as text))
    assert_eq!(value(&env, "{{ dbt.hash(\"'a'\") }}").await, "0cc175b9c0f1b6a831c399e269772661");
    assert_eq!(value(&env, "{{ hash('1') }}").await, "c4ca4238a0b923820dcc509a6f75849b");
    assert_eq!(value(&env, "{{ dbt.split_part(\"'a,b,c'\", \"','\", 2) }}").await, "b");
    assert_eq!(value(&env, "{{ split_part(\"'a,b,c'\", \"','\", -1) }}").await, "c");
    assert_eq!(value(&env, "{{ split_part(\"'a,b,c'\", \"','\", 5) }}").await, "");
    assert_eq!(value(&env, "{{ dbt._split_part_negative(\"'a,b,c'\", \"','\", -2) }}").await, "b");
    assert_eq!(value(&env, "{{ dbt.concat([\"'a'\", \"'-'\", \"'b'\"]) }}").await, "a-b");
    assert_eq!(value(&env, "{{ concat([\"'a'\", 'null']) }}").await, "NULL");
    assert_eq!(value(&env, "{{ dbt.length(\"'héllo'\") }}").await, "5");
    assert_eq!(value(&env, "{{ dbt.position(\"'b'\", \"'abc'\") }}").await, "2");
    assert_eq!(value(&env, "{{ replace(\"'a.b.c'\", \"'.'\", \"''\") }}").await, "abc");
    assert_eq!(value(&env, "{{ dbt.right(\"'abcdef'\", 3) }}").await, "def");
    assert_eq!(value(&env, "{{ dbt.string_literal('x y') }}").await, "x y");
    assert_eq!(render(&env, "{{ dbt.escape_single_quotes(\"it's\") }}"), "it''s");
    assert_eq!(value(&env, "'{{ escape_single_quotes(\"it's\") }}'").await, "it's");
}

#[tokio::test]
async fn casts_and_types() {
    let env = env_with(&[]);
    assert_eq!(value(&env, "{{ dbt.cast(\"'42'\", 'int') }} + 1").await, "43");
    assert_eq!(value(&env, "{{ dbt.safe_cast(\"'x'\", 'int') }}").await, "NULL");
    assert_eq!(value(&env, "{{ safe_cast(\"'7'\", dbt.type_bigint()) }}").await, "7");
    assert_eq!(value(&env, "{{ cast_bool_to_text('1 < 2') }}").await, "true");
    assert_eq!(value(&env, "{{ dbt.cast_bool_to_text('false') }}").await, "false");
    let types = [
        ("type_string()", "'x'", &["Utf8", "Utf8View"][..]),
        ("type_timestamp()", "'2024-01-01 00:00:00'", &["Timestamp(ns)", "Timestamp(Nanosecond, None)"][..]),
        ("type_float()", "1.5", &["Float64"][..]),
        ("type_numeric()", "1.5", &["Decimal128(28, 6)"][..]),
        ("type_bigint()", "1", &["Int64"][..]),
        ("type_int()", "1", &["Int32"][..]),
        ("type_boolean()", "true", &["Boolean"][..]),
    ];
    for (m, lit, want) in types {
        let t = value(&env, &format!("arrow_typeof(cast({lit} as {{{{ dbt.{m} }}}}))")).await;
        assert!(want.contains(&t.as_str()), "{m}: {t}");
        let t2 = value(&env, &format!("arrow_typeof(cast({lit} as {{{{ {m} }}}}))")).await;
        assert_eq!(t, t2);
    }
    assert_eq!(value(&env, "cast(2.5 as {{ type_numeric() }})").await, "2.500000");
}

#[tokio::test]
async fn aggregates_and_arrays() {
    let env = env_with(&[]);
    let r = run(&env, "select {{ dbt.any_value('x') }} in (1, 2), {{ bool_or('x > 1') }}, {{ dbt.bool_or('x > 5') }} from (values (1), (2)) t(x)").await;
    assert_eq!(r, vec![vec!["true".to_string(), "true".into(), "false".into()]]);
    assert_eq!(value(&env, "{{ dbt.array_construct([1, 2, 3]) }}").await, "[1, 2, 3]");
    assert_eq!(value(&env, "{{ array_construct() }}").await, "[]");
    assert_eq!(value(&env, "arrow_typeof({{ dbt.array_construct([], 'bigint') }})").await, "List(Int64)");
    assert_eq!(value(&env, "{{ dbt.array_append(dbt.array_construct([1, 2]), 3) }}").await, "[1, 2, 3]");
    assert_eq!(value(&env, "{{ array_concat(array_construct([1]), array_construct([2, 3])) }}").await, "[1, 2, 3]");
}

#[tokio::test]
async fn dates_and_timestamps() {
    let env = env_with(&[]);
    assert_eq!(value(&env, "{{ dbt.date(2024, 2, 29) }}").await, "2024-02-29");
    assert_eq!(value(&env, "arrow_typeof({{ date(2024, 1, 5) }})").await, "Date32");
    assert_eq!(value(&env, "{{ dbt.date_trunc('month', \"date '2024-02-10'\") }}").await, "2024-02-01T00:00:00");
    assert_eq!(value(&env, "{{ date_trunc('week', \"'2024-02-14 10:00:00'\") }}").await, "2024-02-12T00:00:00");
    assert_eq!(value(&env, "{{ date_trunc('quarter', \"date '2024-05-10'\") }}").await, "2024-04-01T00:00:00");
    for m in ["current_timestamp", "current_timestamp_backcompat", "current_timestamp_in_utc_backcompat", "snapshot_get_time"] {
        let r = run(&env, &format!("select arrow_typeof({{{{ dbt.{m}() }}}}), {{{{ {m}() }}}} > timestamp '2020-01-01 00:00:00'")).await;
        assert!(r[0][0].starts_with("Timestamp("), "{m}: {r:?}");
        assert_eq!(r[0][1], "true", "{m}");
    }
    assert!(render(&env, "{{ current_timestamp() }}").contains("now()"));
}

#[tokio::test]
async fn set_operators_and_equals() {
    let env = env_with(&[]);
    let got = column(&env, "select x from (values (1), (2), (2)) t(x) {{ dbt.except() }} select 1 order by 1").await;
    assert_eq!(got, ["2"]);
    let got = column(&env, "select x from (values (1), (2)) t(x) {{ intersect() }} select 2").await;
    assert_eq!(got, ["2"]);
    // dbt's default (behavior flag off): plain `=`, nulls never equal
    let r = run(&env, "select count(*) from (values (1, 1), (1, 2), (null, null)) t(a, b) where {{ dbt.equals('a', 'b') }}").await;
    assert_eq!(r, vec![vec!["1".to_string()]]);
    assert_eq!(render(&env, "{{ equals('a', 'b') }}").trim(), "(a = b)");
}

#[tokio::test]
async fn a_project_overrides_a_dispatched_macro() {
    let env = env_with(&[(
        "macros/hash.sql",
        "{% macro datafusion__hash(field) %}sha256(cast({{ field }} as varchar)){% endmacro %}\
         {% macro default__right(s, n) %}'overridden'{% endmacro %}",
    )]);
    assert_eq!(value(&env, "{{ dbt.hash(\"'a'\") }}").await, "ca978112ca1bbdcafac231b39a23dc4da786eff8147c4e72b9807785afee48bb");
    assert_eq!(value(&env, "{{ right(\"'abc'\", 1) }}").await, "overridden");
    // and dbt's own datafusion__ implementations keep serving the rest
    assert_eq!(value(&env, "{{ dbt.split_part(\"'a,b'\", \"','\", 1) }}").await, "a");
}
