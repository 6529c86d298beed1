//! `dp run-operation`: a macro called with `--args`, the warehouse open to
//! its `run_query`, its `log(..., info=True)` lines printed, dbt's exit
//! codes (0 done, 1 the macro failed, 2 no such macro).

use crate::common::*;

const OPS: &str = r#"{% macro greet(name, times=1) %}
  {% for i in range(times) %}
    {{ log("hello " ~ name ~ " " ~ i, info=True) }}
  {% endfor %}
  {{ log("only in debug logs") }}
  {% set r = run_query("select count(*) as n from " ~ ref('people')) %}
  {% if execute %}{{ log("people: " ~ r.columns[0].values()[0], info=True) }}{% endif %}
{% endmacro %}
{% macro boom() %}
  {{ exceptions.raise_compiler_error("it went boom") }}
{% endmacro %}
"#;

fn proj() -> tempfile::TempDir {
    project(&[("dbt_project.yml", "name: p\nprofile: p\n"), ("macros/ops.sql", OPS), ("seeds/people.csv", "id,name\n1,Ann\n2,Bob\n3,Cid\n")])
}

#[test]
fn run_operation_prints_the_macros_log_lines() {
    let dir = proj();
    let p = dir.path();
    ok(&run(p, &["seed"]));
    let o = run(p, &["run-operation", "greet", "--args", "{name: Ann, times: 2}"]);
    ok(&o);
    assert_eq!(stdout(&o), "");
    assert_eq!(stderr(&o), "hello Ann 0\nhello Ann 1\npeople: 3\n");
    // package-qualified, arguments defaulted
    let o = run(p, &["run-operation", "p.greet", "--args", "{name: Bob}"]);
    ok(&o);
    assert_eq!(stderr(&o), "hello Bob 0\npeople: 3\n");
}

#[test]
fn run_operation_exit_codes_and_errors() {
    let dir = proj();
    let p = dir.path();
    let o = run(p, &["run-operation", "boom"]);
    assert_eq!(o.status.code(), Some(1));
    assert_eq!(
        stderr(&o),
        "error: Encountered an error while running operation: macros/ops.sql:10: Compilation Error: it went boom\n    10 |   {{ exceptions.raise_compiler_error(\"it went boom\") }}\n"
    );
    let o = run(p, &["run-operation", "gret"]);
    assert_eq!(o.status.code(), Some(2));
    assert_eq!(
        stderr(&o),
        "error: dbt could not find a macro with the name 'gret' in any package\n  hint: did you mean 'greet'? check the name, or install package dependencies with `dp deps`\n"
    );
    let o = run(p, &["run-operation", "greet", "--args", "[1, 2]"]);
    assert_eq!(o.status.code(), Some(1));
    assert_eq!(stderr(&o), "error: --args must be a mapping of argument names to values, not [1,2]\n  hint: --args '{name: Ann, times: 2}'\n");
}

#[test]
fn run_operation_ddl_lands_in_the_warehouse() {
    // dbt-codegen's create_source_table: `run_query('create table ... as')`
    // and `drop table` change the warehouse, as dbt-duckdb's change the
    // database file, so later commands read the tables; the operation's
    // result is in run_results.json.
    let ops = r#"{% macro make(schema) %}
  {% set rel = api.Relation.create(database=target.database, schema=target.schema ~ schema) %}
  {% do adapter.create_schema(rel) %}
  {% do run_query("drop table if exists " ~ rel ~ ".t") %}
  {% do run_query("create table " ~ rel ~ ".t as (select 1 as a, true as b)") %}
  {% do run_query("create or replace table " ~ target.schema ~ schema ~ ".u as select a + 1 as a from " ~ rel ~ ".t") %}
  {% do run_query("drop table if exists " ~ target.schema ~ schema ~ ".gone") %}
{% endmacro %}
{% macro again(schema) %}{% do run_query("create table " ~ target.schema ~ schema ~ ".t as select 2 as a") %}{% endmacro %}
"#;
    let dir = project(&[("dbt_project.yml", "name: p\nprofile: p\n"), ("macros/ops.sql", ops), ("models/m.sql", "select * from main__raw.u")]);
    let p = dir.path();
    for _ in 0..2 {
        ok(&run(p, &["run-operation", "make", "--args", "{schema: __raw}"]));
    }
    ok(&run(p, &["run"]));
    let o = run(p, &["sql", "--format", "csv", "-e", "select t.a, t.b, m.a as m from main__raw.t as t, m"]);
    ok(&o);
    assert_eq!(stdout(&o), "a,b,m\n1,true,2\n");
    // run_results.json holds the operation, as dbt writes it
    let results = |p: &std::path::Path| -> Vec<(String, String)> {
        let v: serde_json::Value = serde_json::from_str(&std::fs::read_to_string(p.join("target/run_results.json")).unwrap()).unwrap();
        assert_eq!(v["args"]["which"], "run-operation");
        v["results"].as_array().unwrap().iter().map(|r| (r["unique_id"].as_str().unwrap().to_string(), r["status"].as_str().unwrap().to_string())).collect()
    };
    ok(&run(p, &["run-operation", "make", "--args", "{schema: __raw}"]));
    assert_eq!(results(p), [("macro.p.make".to_string(), "success".to_string())]);
    let o = run(p, &["run-operation", "again", "--args", "{schema: __raw}"]);
    assert_eq!(o.status.code(), Some(1));
    assert_eq!(results(p), [("macro.p.again".to_string(), "error".to_string())]);
    assert!(
        stderr(&o).contains("CREATE TABLE main__raw.t: a relation of that name already exists\n  hint: CREATE OR REPLACE TABLE replaces it"),
        "{}",
        stderr(&o)
    );
}
