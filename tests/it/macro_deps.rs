//! `depends_on.macros` in target/manifest.json against real dbt-core 1.11's:
//! the jaffle and advanced fixtures (`dbt compile` manifests committed by
//! scripts/make_dbt_goldens.sh), the dbt_state fixture (`dbt parse`), and
//! the corpus's four integration projects (`dbt parse`, their lists in
//! tests/fixtures/macro_deps/ from scripts/make_macro_deps_goldens.sh).

use crate::common::*;
use serde_json::Value;
use std::path::Path;

/// Node and macro lists of a manifest: `{"nodes": {uid: [..]}, "macros": {uid: [..]}}`
/// (macros of dbt's own packages left out: dp's manifest does not list them).
fn lists(m: &Value) -> Value {
    let pick = |section: &str| -> serde_json::Map<String, Value> {
        m[section]
            .as_object()
            .unwrap()
            .iter()
            .filter(|(_, v)| !matches!(v["package_name"].as_str(), Some("dbt" | "dbt_duckdb")))
            .map(|(k, v)| (k.clone(), v["depends_on"]["macros"].clone()))
            .collect()
    };
    serde_json::json!({"nodes": pick("nodes"), "macros": pick("macros")})
}

fn read_json(p: &Path) -> Value {
    serde_json::from_str(&std::fs::read_to_string(p).unwrap_or_else(|e| panic!("{}: {e}", p.display()))).unwrap()
}

/// "N of M match" per section, then each difference (dbt's list, dp's).
fn report(dp: &Value, dbt: &Value) -> String {
    let mut out = String::new();
    for section in ["nodes", "macros"] {
        let want = dbt[section].as_object().unwrap();
        let got = dp[section].as_object().unwrap();
        let mut diffs = vec![];
        let same = want.iter().filter(|(k, v)| got.get(*k) == Some(v)).count();
        for (k, v) in want {
            match got.get(k) {
                Some(g) if g == v => {}
                Some(g) => diffs.push(format!("  {k}\n    dbt: {v}\n    dp:  {g}")),
                None => diffs.push(format!("  {k}: not in dp's manifest")),
            }
        }
        let extra = got.keys().filter(|k| !want.contains_key(*k)).count();
        out.push_str(&format!("{section}: {same} of {} match dbt's exactly ({extra} only in dp's manifest)\n", want.len()));
        for d in diffs {
            out.push_str(&d);
            out.push('\n');
        }
    }
    out
}

#[test]
fn compile_manifest_macro_deps_equal_dbt_compiles() {
    for project in ["jaffle", "advanced"] {
        let dir = fixture(project);
        ok(&run(dir.path(), &["compile"]));
        let dp = lists(&read_json(&dir.path().join("target/manifest.json")));
        let dbt = lists(&read_json(&repo().join(format!("tests/fixtures/projects/{project}/golden/manifest.json"))));
        assert_eq!(dp, dbt, "{project}:\n{}", report(&dp, &dbt));
    }
}

#[test]
fn parse_manifest_macro_deps_equal_dbt_parse() {
    // dbt parse records `not_null`'s and `unique`'s macro alone (no
    // `get_where_subquery`: dbt renders those two tests statically)
    let dir = fixture("dbt_state");
    ok(&run(dir.path(), &["parse"]));
    let dp = lists(&read_json(&dir.path().join("target/manifest.json")));
    let dbt = lists(&read_json(&repo().join("tests/fixtures/projects/dbt_state/golden/state/manifest.json")));
    assert_eq!(dp, dbt, "{}", report(&dp, &dbt));
    assert_eq!(dp["nodes"]["model.dbt_state.stg_b"], serde_json::json!(["macro.dbt_state.double"]));
}

/// The lists asserted here are what dbt-core 1.11 + dbt-duckdb write for
/// the same project (`dbt parse`, then `dbt compile`).
#[test]
fn dispatch_hooks_and_execute_branches() {
    let dir = project(&[
        ("dbt_project.yml", "name: p\nversion: '1.0'\nprofile: p\n"),
        (
            "macros/m.sql",
            "{% macro money(c) %}{{ return(adapter.dispatch('money', 'p')(c)) }}{% endmacro %}\n\
             {% macro default__money(c) %}round({{ c }}, 2){% endmacro %}\n\
             {% macro audit() %}{{ log('x') }}{% do run_query('select 1') %}{% endmacro %}\n\
             {% macro helper() %}{{ dbt.current_timestamp() }}{{ p.money('y') }}{% endmacro %}\n\
             {% macro wrap() %}({{ caller() }}){% endmacro %}\n",
        ),
        (
            "models/a.sql",
            "{{ config(post_hook=\"{{ audit() }}\") }}\n{% if execute %}{{ helper() }}{% endif %}\n\
             select {{ money(dbt.safe_cast('1', type_int())) }} as x",
        ),
        // a `{% call %}` body runs inside the macro: dbt records `wrap` alone
        ("models/b.sql", "select * from {% call wrap() %}select {{ money('1') }} as x{% endcall %} as t"),
    ]);
    let p = dir.path();
    ok(&run(p, &["parse"]));
    let m = read_json(&p.join("target/manifest.json"));
    assert_eq!(m["macros"]["macro.p.money"]["depends_on"]["macros"], serde_json::json!(["macro.p.default__money"]));
    assert_eq!(m["macros"]["macro.p.audit"]["depends_on"]["macros"], serde_json::json!(["macro.dbt.run_query"]));
    assert_eq!(m["macros"]["macro.p.helper"]["depends_on"]["macros"], serde_json::json!(["macro.dbt.current_timestamp", "macro.p.money"]));
    // arguments before the call; hooks after the code; `if execute` only once compiled
    let parsed = serde_json::json!(["macro.dbt.type_int", "macro.dbt.safe_cast", "macro.p.money", "macro.p.audit"]);
    assert_eq!(m["nodes"]["model.p.a"]["depends_on"]["macros"], parsed);
    assert_eq!(m["nodes"]["model.p.b"]["depends_on"]["macros"], serde_json::json!(["macro.p.wrap"]));
    assert_eq!(m["macros"]["macro.p.wrap"]["depends_on"]["macros"], serde_json::json!([]));
    // `dp ls --output json` lists them as `dbt ls` does (parse time)
    let o = run(p, &["ls", "--output", "json", "--output-keys", "depends_on", "-s", "a"]);
    ok(&o);
    let line: Value = serde_json::from_str(stdout(&o).trim()).unwrap();
    assert_eq!(line["depends_on"]["macros"], parsed);
    ok(&run(p, &["compile"]));
    let m = read_json(&p.join("target/manifest.json"));
    let mut compiled = parsed.as_array().unwrap().clone();
    compiled.push("macro.p.helper".into());
    assert_eq!(m["nodes"]["model.p.a"]["depends_on"]["macros"], Value::Array(compiled));
}

/// `state:modified.macros` follows the lists: a change to the macro that
/// `adapter.dispatch` picks marks the models whose macros dispatch to it
/// (the code never names it); a macro called only from a `{% call %}`
/// body is not the node's (dbt 1.11 lists `a` alone here too).
#[test]
fn state_modified_macros_follows_dispatch() {
    let dir = project(&[
        ("dbt_project.yml", "name: p\nversion: '1.0'\nprofile: p\n"),
        (
            "macros/m.sql",
            "{% macro money(c) %}{{ return(adapter.dispatch('money', 'p')(c)) }}{% endmacro %}\n\
             {% macro default__money(c) %}round({{ c }}, 2){% endmacro %}\n\
             {% macro wrap() %}({{ caller() }}){% endmacro %}\n",
        ),
        ("models/a.sql", "select {{ money('1') }} as x"),
        ("models/b.sql", "select * from {% call wrap() %}select {{ money('1') }} as x{% endcall %} as t"),
        ("models/c.sql", "select 1 as x"),
    ]);
    let p = dir.path();
    ok(&run(p, &["parse"]));
    std::fs::rename(p.join("target"), p.join("state")).unwrap();
    let m = std::fs::read_to_string(p.join("macros/m.sql")).unwrap();
    std::fs::write(p.join("macros/m.sql"), m.replace("round({{ c }}, 2)", "round({{ c }}, 3)")).unwrap();
    for selector in ["state:modified.macros", "state:modified"] {
        let o = run(p, &["ls", "-s", selector, "--state", "state"]);
        ok(&o);
        assert_eq!(stdout(&o).trim(), "p.a", "{selector}");
    }
}

fn corpus_report(project: &str) -> String {
    let (_dir, p) = crate::corpus::lay_out(project);
    ok(&run(&p, &["parse"]));
    let dp = lists(&read_json(&p.join("target/manifest.json")));
    let dbt = read_json(&repo().join(format!("tests/fixtures/macro_deps/{project}.json")));
    report(&dp, &dbt)
}

#[test]
#[ignore = "needs ../shared/corpus: run by scripts/test.sh"]
fn corpus_dbt_utils_macro_deps() {
    insta::assert_snapshot!(corpus_report("dbt_utils"));
}

#[test]
#[ignore = "needs ../shared/corpus: run by scripts/test.sh"]
fn corpus_dbt_expectations_macro_deps() {
    insta::assert_snapshot!(corpus_report("dbt_expectations"));
}

#[test]
#[ignore = "needs ../shared/corpus: run by scripts/test.sh"]
fn corpus_dbt_project_evaluator_macro_deps() {
    insta::assert_snapshot!(corpus_report("dbt_project_evaluator"));
}

#[test]
#[ignore = "needs ../shared/corpus: run by scripts/test.sh"]
fn corpus_dbt_audit_helper_macro_deps() {
    insta::assert_snapshot!(corpus_report("dbt_audit_helper"));
}
