//! Tables built by dp equal, row for row, the tables dbt-duckdb builds for
//! the same plain dbt projects (golden CSVs made with pip dbt-duckdb, see
//! scripts/make_dbt_goldens.sh); an incremental model built in two steps
//! equals a full refresh.

use crate::common::*;
use std::path::Path;

/// Rows as dbt's export writes them: header first, then data rows sorted
/// as strings (numbers are compared by value, so `16` equals `16.0`).
fn table_csv(dir: &Path, schema: &str, table: &str) -> Vec<String> {
    let o = run(dir, &["show", "--inline", &format!("select * from {schema}.{table}"), "--limit", "1000000", "--format", "csv"]);
    ok(&o);
    let text = stdout(&o);
    let mut lines: Vec<String> = text.lines().map(String::from).collect();
    let header = lines.remove(0);
    lines.sort();
    std::iter::once(header).chain(lines).collect()
}

fn golden(project: &str, set: &str, table: &str) -> Vec<String> {
    let text = std::fs::read_to_string(repo().join("tests/fixtures/projects").join(project).join("golden").join(set).join(format!("{table}.csv"))).unwrap();
    let mut lines: Vec<String> = text.lines().map(String::from).collect();
    let header = lines.remove(0);
    lines.sort();
    std::iter::once(header).chain(lines).collect()
}

fn same_value(a: &str, b: &str) -> bool {
    if a == b {
        return true;
    }
    match (a.parse::<f64>(), b.parse::<f64>()) {
        (Ok(x), Ok(y)) => (x - y).abs() < 1e-9,
        _ => false,
    }
}

fn compare(project: &str, set: &str, dir: &Path, tables: &[(&str, &str)]) {
    for (schema, table) in tables {
        let want = golden(project, set, table);
        let got = table_csv(dir, schema, table);
        assert_eq!(got.len(), want.len(), "{project}/{set}/{table}: row count differs\n got: {got:#?}\nwant: {want:#?}");
        assert_eq!(got[0], want[0], "{project}/{set}/{table}: columns differ");
        for (g, w) in got.iter().zip(want.iter()) {
            let gf: Vec<&str> = g.split(',').collect();
            let wf: Vec<&str> = w.split(',').collect();
            assert!(
                gf.len() == wf.len() && gf.iter().zip(wf.iter()).all(|(a, b)| same_value(a, b)),
                "{project}/{set}/{table}: row differs\n got: {g}\nwant: {w}"
            );
        }
    }
}

#[test]
fn jaffle_tables_match_dbt_duckdb() {
    let dir = fixture("jaffle");
    let p = dir.path();
    ok(&run(p, &["seed"]));
    ok(&run(p, &["run"]));
    compare(
        "jaffle",
        "tables",
        p,
        &[
            ("main", "raw_customers"),
            ("main", "raw_orders"),
            ("main", "raw_payments"),
            ("main", "stg_customers"),
            ("main", "stg_orders"),
            ("main", "stg_payments"),
            ("main", "orders"),
            ("main", "customers"),
        ],
    );
}

#[test]
fn advanced_incremental_in_two_steps_equals_dbt_and_full_refresh() {
    let dir = fixture("advanced");
    let p = dir.path();
    let tables = [("main", "stg_events"), ("analytics", "stg_users"), ("marts", "fct_events"), ("marts", "dim_users"), ("marts", "event_type_summary")];
    ok(&run(p, &["run", "--vars", "{cutoff: 2024-01-15}"]));
    compare("advanced", "tables_run1", p, &tables);
    let o = run(p, &["run", "--vars", "{cutoff: 2024-01-31}"]);
    ok(&o);
    assert!(stderr(&o).contains("[DELETE+INSERT"), "second run was not incremental (dbt-duckdb's default strategy):\n{}", stderr(&o));
    compare("advanced", "tables", p, &tables);
    ok(&run(p, &["run", "--full-refresh", "--vars", "{cutoff: 2024-01-31}"]));
    compare("advanced", "tables_full_refresh", p, &tables);
}
