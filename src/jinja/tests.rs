use super::*;
use minijinja::Value;
use std::sync::Arc;

pub(crate) fn env_with(macros: &[(&str, &str)]) -> JinjaEnv {
    let mut ms = vec![];
    for (file, text) in macros {
        for b in find_blocks(text, &["macro", "test"]).unwrap() {
            ms.push(block_to_macro(&b, "proj", file));
        }
    }
    JinjaEnv::new(EnvInputs {
        root_package: "proj".into(),
        packages: vec![],
        macros: ms,
        target: serde_json::json!({"name": "dev", "schema": "main", "type": crate::jinja::TARGET_TYPE, "threads": 1, "database": "dp"}),
        vars: [("x".to_string(), serde_json::json!(5))].into_iter().collect(),
        package_vars: Default::default(),
        env: Arc::new(|k| if k == "DP_SET" { Some("yes".into()) } else { None }),
        dispatch: vec![],
        invocation_id: "inv".into(),
        run_started_at: chrono::Utc::now(),
        flags: serde_json::json!({}),
        quoting: Default::default(),
    })
    .unwrap()
}

fn render(env: &JinjaEnv, src: &str) -> String {
    env.render_node("m.sql", src, Arc::new(RenderCtx::new("model.proj.m", "proj", Phase::Parse))).unwrap()
}

#[test]
fn generic_test_macro_with_kwargs() {
    let env = env_with(&[]);
    let out = env
        .render_str(
            "t",
            "{{ test_unique(column_name=__a0, model=__a1) }}",
            None,
            &[("__a0", Value::from("id")), ("__a1", Value::from_safe_string("main.t".into()))],
        )
        .unwrap();
    assert!(out.contains("from main.t"), "{out}");
    assert!(out.contains("id as unique_field"), "{out}");
}

#[test]
fn return_do_append_and_dispatch() {
    let env = env_with(&[(
        "macros/m.sql",
        "{% macro collect(n) %}{% set xs = [] %}{% for i in range(n) %}{% do xs.append(i * 2) %}{% endfor %}{{ return(xs) }}{% endmacro %}\
         {% macro twice(n) %}{{ collect(n) | join(',') }}{% endmacro %}\
         {% macro greet(name, punct='!') %}{{ return(adapter.dispatch('greet', 'proj')(name, punct)) }}{% endmacro %}\
         {% macro default__greet(name, punct) %}hello {{ name }}{{ punct }}{% endmacro %}",
    )]);
    assert_eq!(render(&env, "{{ twice(3) }}"), "0,2,4");
    assert_eq!(render(&env, "{{ greet('a') }}|{{ greet('b', punct='?') }}"), "hello a!|hello b?");
    assert_eq!(render(&env, "{{ var('x') }} {{ var('y', 'd') }} {{ env_var('DP_SET') }} {{ env_var('NOPE', 'z') }}"), "5 d yes z");
}

#[test]
fn errors_name_file_and_line() {
    let env = env_with(&[]);
    let e = env.render_node("models/a.sql", "select 1\n{{ nope_macro() }}", Arc::new(RenderCtx::new("model.proj.a", "proj", Phase::Parse))).unwrap_err();
    assert_eq!(e.file, "models/a.sql");
    assert_eq!(e.line, Some(2));
    let e = env.render_node("models/b.sql", "select 1\n{% if %}", Arc::new(RenderCtx::new("model.proj.b", "proj", Phase::Parse))).unwrap_err();
    assert_eq!(e.line, Some(2));
    assert!(e.to_string().starts_with("models/b.sql:2: Jinja syntax error"), "{e}");
    let e = env.render_node("models/c.sql", "{{ var('missing') }}", Arc::new(RenderCtx::new("model.proj.c", "proj", Phase::Parse))).unwrap_err();
    assert!(e.message.contains("required var 'missing' is not defined"), "{}", e.message);
}

#[test]
fn generic_test_macro_with_render_ctx() {
    let env = env_with(&[]);
    let mut r = RenderCtx::new("test.proj.t", "proj", Phase::Compile);
    r.model = Value::from_serialize(serde_json::json!({"name": "t"}));
    let out = env
        .render_str(
            "t",
            "{{ test_unique(column_name=__a0, model=__a1) }}",
            Some(Arc::new(r)),
            &[("__a0", Value::from("id")), ("__a1", Value::from_safe_string("main.t".into()))],
        )
        .unwrap();
    assert!(out.contains("from main.t"), "{out}");
}

#[test]
fn relations_render_through_return() {
    let env = env_with(&[]);
    let out =
        render(&env, "{{ api.Relation.create(schema='main', identifier='t') }}|{{ get_where_subquery(api.Relation.create(schema='main', identifier='t')) }}");
    assert_eq!(out, r#""main"."t"|"main"."t""#);
    // dbt's quote and include policies, as arguments and as methods
    let out = render(
        &env,
        "{% set r = api.Relation.create(database='dp', schema='main', identifier='T', quote_policy={'identifier': false}) %}\
         {{ r }}|{{ r.include(database=false) }}|{{ r.quote(identifier=true, schema=false) }}|{{ r.include(schema=false).schema }}|\
         {{ api.Relation.create(database='dp', schema='s', identifier='t', include_policy={'database': false}) }}",
    );
    assert_eq!(out, r#""dp"."main".T|"main".T|"dp".main."T"|main|"s"."t""#);
}

struct FakeResolver;
impl Resolver for FakeResolver {
    fn resolve_ref(&self, _from: &str, call: &crate::project::nodes::RefCall) -> Result<Relation, String> {
        Ok(Relation::new("dp", "main", &call.name))
    }
    fn resolve_source(&self, _from: &str, s: &str, t: &str) -> Result<Relation, String> {
        Ok(Relation::new("dp", s, t))
    }
}

#[test]
fn compile_phase_ref_through_where_subquery() {
    let env = env_with(&[]);
    let mut r = RenderCtx::new("test.proj.t", "proj", Phase::Compile);
    r.resolver = Some(Arc::new(FakeResolver));
    let out = env.render_str("t", "{{ get_where_subquery(ref('orders')) }}", Some(Arc::new(r)), &[]).unwrap();
    assert_eq!(out, r#""dp"."main"."orders""#);
}

#[test]
fn compile_phase_with_test_config() {
    let env = env_with(&[]);
    let mut r = RenderCtx::new("test.proj.t", "proj", Phase::Compile);
    r.resolver = Some(Arc::new(FakeResolver));
    r.config =
        serde_json::from_value(serde_json::json!({"enabled": true, "tags": [], "materialized": "test", "severity": "ERROR", "schema": "dbt_test__audit"}))
            .unwrap();
    r.this = Value::from_object(Relation::new("dp", "main_dbt_test__audit", "t"));
    r.model = Value::from_serialize(serde_json::json!({"name": "t", "config": {"x": 1}}));
    let out = env.render_str("models/schema.yml", "{{ get_where_subquery(ref('orders')) }}", Some(Arc::new(r)), &[]).unwrap();
    assert_eq!(out, r#""dp"."main"."orders""#);
}
