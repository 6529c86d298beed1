//! The dbt Jinja context beyond ref/source/config: `{% call %}` blocks,
//! `statement`/`load_result`/`run_query` against a fake warehouse, the
//! introspective adapter methods, `api.Column`, `modules.*`, `var` scoping,
//! `env_var` secrets, `graph`, `selected_resources`, `doc` and names dp
//! does not support.

use super::tests::env_with;
use super::*;
use std::sync::Mutex;

/// A warehouse with one table `main.orders(id BIGINT, status VARCHAR)`,
/// answering `select` queries from a fixed table of results.
#[derive(Default)]
struct FakeDb {
    queries: Mutex<Vec<String>>,
    dropped: Mutex<Vec<String>>,
}

impl Database for FakeDb {
    fn query(&self, sql: &str) -> Result<QueryResult, String> {
        self.queries.lock().unwrap().push(sql.trim().to_string());
        if sql.contains("boom") {
            return Err("relation boom does not exist".into());
        }
        Ok(QueryResult {
            columns: vec![ColumnInfo { name: "status".into(), data_type: "VARCHAR".into() }, ColumnInfo { name: "n".into(), data_type: "BIGINT".into() }],
            rows: vec![vec![serde_json::json!("placed"), serde_json::json!(3)], vec![serde_json::json!("shipped"), serde_json::json!(5)]],
            rows_affected: None,
        })
    }
    fn columns(&self, schema: &str, identifier: &str) -> Result<Option<Vec<ColumnInfo>>, String> {
        Ok((schema == "main" && identifier == "orders").then(|| {
            vec![
                ColumnInfo { name: "id".into(), data_type: "BIGINT".into() },
                ColumnInfo { name: "status".into(), data_type: "VARCHAR".into() },
                ColumnInfo { name: "amount".into(), data_type: "DECIMAL(18,2)".into() },
            ]
        }))
    }
    fn relations(&self, schema: &str) -> Result<Vec<(String, String)>, String> {
        Ok(if schema == "main" { vec![("orders".into(), "table".into()), ("v_orders".into(), "view".into())] } else { vec![] })
    }
    fn drop_relation(&self, schema: &str, identifier: &str) -> Result<(), String> {
        self.dropped.lock().unwrap().push(format!("{schema}.{identifier}"));
        Ok(())
    }
}

fn compile_ctx() -> Arc<RenderCtx> {
    Arc::new(RenderCtx::new("model.proj.m", "proj", Phase::Compile))
}

fn parse_ctx() -> Arc<RenderCtx> {
    Arc::new(RenderCtx::new("model.proj.m", "proj", Phase::Parse))
}

fn with_db(macros: &[(&str, &str)]) -> (JinjaEnv, Arc<FakeDb>) {
    let env = env_with(macros);
    let db = Arc::new(FakeDb::default());
    env.set_database(db.clone());
    (env, db)
}

fn render(env: &JinjaEnv, src: &str, ctx: Arc<RenderCtx>) -> String {
    env.render_node("models/m.sql", src, ctx).unwrap_or_else(|e| panic!("{e}"))
}

#[test]
fn call_blocks_pass_caller_to_macros() {
    // dbt_date's date_spine wraps SQL in `{% call %}`; the macro calls caller().
    let env = env_with(&[("macros/w.sql", "{% macro wrap(tag) %}<{{ tag }}>{{ caller() }}</{{ tag }}>{% endmacro %}")]);
    let out = render(&env, "{% call wrap('b') %}select {{ 1 + 1 }}{% endcall %}", parse_ctx());
    assert_eq!(out, "<b>select 2</b>");
}

#[test]
fn statement_and_load_result_query_the_warehouse() {
    let (env, db) = with_db(&[(
        "macros/v.sql",
        "{% macro values_of() %}{% call statement('vals', fetch_result=True) %}select status from {{ this }}{% endcall %}\
         {% set r = load_result('vals') %}{% if r %}{{ return(r['data'] | map(attribute=0) | list) }}{% else %}{{ return([]) }}{% endif %}{% endmacro %}",
    )]);
    let mut ctx = RenderCtx::new("model.proj.m", "proj", Phase::Compile);
    ctx.this = Value::from_object(Relation::new("dp", "main", "orders"));
    let out = render(&env, "{{ values_of() | join(',') }}|{{ load_result('nope') is none }}", Arc::new(ctx));
    assert_eq!(out, "placed,shipped|True");
    assert_eq!(db.queries.lock().unwrap().as_slice(), [r#"select status from "dp"."main"."orders""#]);
    // While parsing (`execute` false), nothing runs and results are empty.
    let out = render(&env, "{{ values_of() | length }}", parse_ctx());
    assert_eq!(out, "0");
    assert_eq!(db.queries.lock().unwrap().len(), 1);
}

#[test]
fn run_query_returns_an_agate_table() {
    let (env, _db) = with_db(&[]);
    let src = "{% set t = run_query('select status, n from x') %}\
               {{ t.columns[0].values() | join(',') }}|{{ t.columns['n'].values() | sum }}|{{ t.column_names | join(',') }}|\
               {% for row in t %}{{ row['status'] }}={{ row[1] }};{% endfor %}|{{ t.rows | length }}|{{ t | length }}";
    assert_eq!(render(&env, src, compile_ctx()), "placed,shipped|8|status,n|placed=3;shipped=5;|2|2");
    assert_eq!(render(&env, "{{ run_query('select 1') is none }}", parse_ctx()), "True");
    let e = env.render_node("models/m.sql", "{{ run_query('select * from boom') }}", compile_ctx()).unwrap_err();
    assert!(e.message.contains("Database Error") && e.message.contains("boom does not exist"), "{}", e.message);
}

#[test]
fn run_query_without_a_warehouse_says_what_to_do() {
    let env = env_with(&[]);
    let e = env.render_node("models/m.sql", "{{ run_query('select 1') }}", compile_ctx()).unwrap_err();
    assert!(e.message.contains("needs the warehouse") && e.message.contains("hint:"), "{}", e.message);
}

#[test]
fn adapter_introspection() {
    let (env, db) = with_db(&[]);
    let src = "{% set rel = api.Relation.create(schema='main', identifier='orders') %}\
               {% for c in adapter.get_columns_in_relation(rel) %}{{ c.name }}:{{ c.data_type }}:{{ c.is_string() }}:{{ c.is_number() }};{% endfor %}|\
               {{ adapter.get_relation(database='dp', schema='main', identifier='ORDERS').type }}|\
               {{ adapter.get_relation(database='dp', schema='main', identifier='nope') is none }}|\
               {{ adapter.list_relations_without_caching(api.Relation.create(schema='main')) | map(attribute='identifier') | join(',') }}|\
               {{ adapter.get_missing_columns(rel, api.Relation.create(schema='main', identifier='nope')) | length }}|\
               {{ adapter.quote('Order') }}|{{ adapter.expand_target_column_types(rel, rel) }}|\
               {{ load_relation(rel).identifier }}|{% do adapter.drop_relation(rel) %}{{ adapter.get_relation('dp', 'main', 'v_orders').is_view }}";
    assert_eq!(
        render(&env, src, compile_ctx()),
        "id:BIGINT:False:True;status:VARCHAR:True:False;amount:DECIMAL(18,2):False:True;|table|True|orders,v_orders|3|\"Order\"||orders|True"
    );
    assert_eq!(db.dropped.lock().unwrap().as_slice(), ["main.orders"]);
    // While parsing, introspection answers nothing (dbt's first pass).
    assert_eq!(render(&env, "{{ adapter.get_columns_in_relation(api.Relation.create(schema='main', identifier='orders')) | length }}", parse_ctx()), "0");
}

#[test]
fn api_column() {
    let env = env_with(&[]);
    let src = "{{ api.Column.translate_type('string') }}|{{ api.Column.string_type(20) }}|\
               {% set c = api.Column.create('x', 'integer') %}{{ c.dtype }}:{{ c.is_integer() }}|\
               {{ api.Column('amount', 'numeric', numeric_precision=10, numeric_scale=2).data_type }}|{{ api.Column('s', 'varchar').quoted }}";
    assert_eq!(render(&env, src, parse_ctx()), "TEXT|character varying(20)|INT:True|numeric(10,2)|\"s\"");
}

#[test]
fn datetime_arithmetic_and_time_zones() {
    let env = env_with(&[]);
    let src = "{% set d = modules.datetime.datetime(2024, 3, 10, 12, 30) %}\
               {% set start = (d - modules.datetime.timedelta(days=10)) %}{{ start }}|{{ modules.datetime.timedelta(hours=36).days }}|\
               {{ modules.pytz.timezone('America/Los_Angeles').localize(d).isoformat() }}|\
               {{ modules.pytz.timezone('America/Los_Angeles').localize(d).astimezone(modules.pytz.utc) }}|\
               {{ modules.datetime.date(2024, 2, 28) + modules.datetime.timedelta(days=2) }}|\
               {{ modules.datetime.datetime.strptime('2024-01-05', '%Y-%m-%d').strftime('%d/%m') }}|\
               {{ modules.datetime.datetime.fromisoformat('2024-01-05T10:00:00+02:00').hour }}|\
               {{ modules.datetime.datetime(2024, 1, 1) < d }}|{{ run_started_at.tzinfo }}";
    assert_eq!(render(&env, src, parse_ctx()), "2024-02-29 12:30:00|1|2024-03-10T12:30:00-07:00|2024-03-10 19:30:00+00:00|2024-03-01|05/01|10|True|UTC");
    let e = env.render_node("m.sql", "{{ modules.pytz.timezone('Mars/Base') }}", parse_ctx()).unwrap_err();
    assert!(e.message.contains("UnknownTimeZoneError: 'Mars/Base'"), "{}", e.message);
}

#[test]
fn re_and_itertools() {
    let env = env_with(&[]);
    let src = "{{ modules.re.sub('[0-9]+', '#', 'a1b22') }}|{{ modules.re.search('(?i)ORD', 'orders') is not none }}|\
               {{ modules.re.compile('x', modules.re.IGNORECASE).match('Xy') is not none }}|\
               {{ modules.itertools.chain([1], [2, 3]) | join(',') }}|\
               {{ modules.itertools.product('ab', [1, 2]) | map('join', '') | join(',') }}|\
               {{ modules.itertools.combinations([1, 2, 3], 2) | length }}|{{ modules.itertools.permutations([1, 2, 3]) | length }}";
    assert_eq!(render(&env, src, parse_ctx()), "a#b#|True|True|1,2,3|a1,a2,b1,b2|3|6");
}

#[test]
fn vars_are_scoped_by_package() {
    let mut pkg_vars = IndexMap::new();
    pkg_vars.insert("only_pkg".to_string(), serde_json::json!("from pkg"));
    pkg_vars.insert("x".to_string(), serde_json::json!("pkg x"));
    pkg_vars.insert("depth".to_string(), serde_json::json!("{{ 9 if target.type in ['bigquery'] else -1 }}"));
    let env = JinjaEnv::new(EnvInputs {
        root_package: "proj".into(),
        packages: vec!["pkg".into()],
        macros: vec![],
        target: serde_json::json!({}),
        vars: [("x".to_string(), serde_json::json!(5)), ("pkg".to_string(), serde_json::json!({"scoped": "root says"}))].into_iter().collect(),
        package_vars: [("pkg".to_string(), pkg_vars)].into_iter().collect(),
        env: Arc::new(|_| None),
        dispatch: vec![],
        invocation_id: "inv".into(),
        run_started_at: chrono::Utc::now(),
        flags: serde_json::json!({}),
        quoting: Default::default(),
    })
    .unwrap();
    let pkg_node = Arc::new(RenderCtx::new("model.pkg.m", "pkg", Phase::Parse));
    assert_eq!(render(&env, "{{ var('x') }}|{{ var('only_pkg') }}|{{ var('scoped') }}", pkg_node.clone()), "5|from pkg|root says");
    // Jinja in a var's value renders when it is read (dbt's get_rendered_var).
    assert_eq!(render(&env, "{{ var('depth') | int > 0 }}|{{ var('depth') }}", pkg_node), "False|-1");
    // The root project does not see a package's own vars.
    let out = render(&env, "{{ var('x') }}|{{ var('only_pkg', 'none') }}|{{ var('scoped', 'none') }}", parse_ctx());
    assert_eq!(out, "5|none|none");
}

#[test]
fn env_var_defaults_and_secrets() {
    let env = env_with(&[]);
    assert_eq!(render(&env, "{{ env_var('DP_SET') }}|{{ env_var('NOPE', 'd') }}", parse_ctx()), "yes|d");
    let e = env.render_node("m.sql", "{{ env_var('NOPE') }}", parse_ctx()).unwrap_err();
    assert!(e.message.contains("Env var required but not provided: 'NOPE'"), "{}", e.message);
    let e = env.render_node("m.sql", "{{ env_var('DBT_ENV_SECRET_TOKEN', 'x') }}", parse_ctx()).unwrap_err();
    assert!(e.message.contains("Secret env vars are allowed only in profiles.yml or packages.yml") && e.message.contains("model.proj.m"), "{}", e.message);
}

#[test]
fn graph_selected_resources_and_doc() {
    let env = env_with(&[]);
    assert_eq!(render(&env, "{{ graph.nodes.values() | list | length }}", parse_ctx()), "0");
    env.set_graph(serde_json::json!({"nodes": {"model.proj.a": {"name": "a", "resource_type": "model"}, "seed.proj.s": {"name": "s", "resource_type": "seed"}}, "sources": {}}));
    env.set_selected(vec!["model.proj.a".into()]);
    env.set_docs([("proj.orders".to_string(), "All orders.".to_string())].into_iter().collect());
    let src = "{{ graph.nodes.values() | selectattr('resource_type', 'equalto', 'model') | map(attribute='name') | join(',') }}|\
               {{ selected_resources | join(',') }}|{{ 'model.proj.a' in selected_resources }}|{{ doc('orders') }}";
    assert_eq!(render(&env, src, parse_ctx()), "a|model.proj.a|True|All orders.");
    let e = env.render_node("m.sql", "{{ doc('nope') }}", parse_ctx()).unwrap_err();
    assert!(e.message.contains("Documentation for 'nope' not found"), "{}", e.message);
}

#[test]
fn misc_context_functions() {
    let env = env_with(&[]);
    let src = "{{ tojson({'b': 1, 'a': [1, 2]}) }}|{{ fromjson('{\"k\": [1]}').k[0] }}|{{ fromyaml('a: 1\\nb: [x]').b[0] }}|\
               {{ zip([1, 2], ['a', 'b']) | map('join', '') | join(',') }}|{{ set([1, 1, 2]) | length }}|{{ local_md5('dp') }}|\
               {{ builtins.ref('orders') }}|{{ exceptions.warn('careful') }}|{{ invocation_id }}|{{ flags is mapping }}|{{ {'b': 1, 'a': '<x>'} | tojson }}";
    assert_eq!(
        render(&env, src, parse_ctx()),
        "{\"b\": 1, \"a\": [1, 2]}|1|x|1a,2b|2|95687afb5d9a2a9fa39038f991640b0c|\"orders\"||inv|True|{\"a\": \"\\u003cx\\u003e\", \"b\": 1}"
    );
    let e = env.render_node("m.sql", "{{ exceptions.raise_compiler_error('bad input') }}", parse_ctx()).unwrap_err();
    assert!(e.message.contains("Compilation Error: bad input"), "{}", e.message);
}

#[test]
fn dict_values_from_literals_are_mutable() {
    // dbt_utils.union_relations: `relation_columns.update({relation: []})`, then append.
    let env = env_with(&[]);
    let src = "{% set d = {} %}{% do d.update({'a': []}) %}{% do d['a'].append(1) %}{% do d.setdefault('b', []).append(2) %}{{ d['a'] | list }}{{ d['b'] | list }}\
               {% do d.update({'c': api.Column('x', 'varchar')}) %}{{ d['c'].is_string() }}{% set m = {'k': {}} %}{% do m['k'].update({'z': 1}) %}{{ m['k']['z'] }}";
    assert_eq!(render(&env, src, parse_ctx()), "[1][2]True1");
}

#[test]
fn unsupported_names_fail_by_name() {
    let env = env_with(&[]);
    let e = env.render_node("m.sql", "{{ submit_python_job(model, 'x') }}", parse_ctx()).unwrap_err();
    assert!(e.message.contains("'submit_python_job' is part of dbt's Jinja context but is not supported by dp"), "{}", e.message);
    // An adapter method fails when the node compiles; while parsing it is
    // none, as dbt's parse lets an unknown attribute be called.
    let e = env.render_node("m.sql", "{{ adapter.get_csv_data('x') }}", compile_ctx()).unwrap_err();
    assert!(e.message.contains("adapter.get_csv_data is part of dbt's adapter API but is not supported by dp"), "{}", e.message);
    assert_eq!(render(&env, "{{ adapter.get_csv_data('x') }}{{ adapter.no_such() }}", parse_ctx()), "NoneNone");
    let e = env.render_node("m.sql", "{{ adapter.no_such() }}", compile_ctx()).unwrap_err();
    assert!(e.message.contains("adapter has no method 'no_such'"), "{}", e.message);
}

#[test]
fn jinja2_round_and_dbt_set_and_zip() {
    let env = env_with(&[]);
    let src = "{{ (7 / 3) | round(0, 'ceil') | int }}|{{ 2.5 | round }}|{{ 2.567 | round(2, 'floor') }}|{{ set([1, 2, 1]) | list }}|{{ set(1) }}|{{ zip([1, 2], ['a', 'b']) | map('join', '-') | join(',') }}|{{ zip(1) }}";
    assert_eq!(render(&env, src, parse_ctx()), "3|3.0|2.56|[1, 2]|None|1-a,2-b|None");
    // a set has no order: two built in different orders are equal (dbt_utils' `equality`)
    let src = r#"{{ set(['b', 'a', 'b']) == set(['a', 'b']) }}|{{ set(['"id"', '"n"']) != set(['"n"', '"id"']) }}"#;
    assert_eq!(render(&env, src, parse_ctx()), "True|False");
    let e = env.render_node("m.sql", "{{ set_strict(1) }}", parse_ctx()).unwrap_err();
    assert!(e.message.contains("not iterable"), "{}", e.message);
    let e = env.render_node("m.sql", "{{ 1.5 | round(0, 'up') }}", parse_ctx()).unwrap_err();
    assert!(e.message.contains("round: method must be 'common', 'ceil' or 'floor', got 'up'"), "{}", e.message);
}

#[test]
fn python_regexes_with_lookaround_and_verbose_mode() {
    let env = env_with(&[]);
    // dbt_project_evaluator's hard-coded reference finder (verbose, lookahead).
    let src = "{% set p = '(?ix)\n  (from|join)\\s+\n  ([\\[`\\\"\\'])\n  (\\w+-?\\w+)\n  ([\\]`\\\"\\'])(?=\\s|$)\n' %}\
               {% for m in modules.re.findall(p, 'select * from \"raw_orders\" join `x` y') %}{{ m[1:] | join }};{% endfor %}|\
               {{ modules.re.findall('(\\w)\\\\1', 'aabbc') | join(',') }}";
    assert_eq!(render(&env, src, parse_ctx()), "\"raw_orders\";|a,b");
}

#[test]
fn list_index_as_python() {
    let env = env_with(&[]);
    assert_eq!(render(&env, "{{ ['a', 'b', 'c'].index('b') }}|{{ ['a', 'a'].count('a') }}", parse_ctx()), "1|2");
    let e = env.render_node("m.sql", "{{ ['a'].index('z') }}", parse_ctx()).unwrap_err();
    assert!(e.message.contains("z is not in list"), "{}", e.message);
}

#[test]
fn relations_as_dict_keys_stay_apart() {
    let env = env_with(&[]);
    let src = "{% set a = api.Relation.create(schema='main', identifier='t1') %}{% set b = api.Relation.create(schema='main', identifier='t2') %}\
               {% set d = {} %}{% do d.update({a: [1]}) %}{% do d.update({b: [2]}) %}{{ d[a] }}|{{ d[b] }}|{{ a == b }}|{{ a == api.Relation.create(schema='main', identifier='t1') }}";
    assert_eq!(render(&env, src, parse_ctx()), "[1]|[2]|False|True");
}

#[test]
fn macros_reading_kwargs_or_varargs_take_extra_arguments() {
    let env = env_with(&[(
        "macros/m.sql",
        "{% macro prop(model, group_by=[]) %}{{ model }}:{{ kwargs.get('at_least', 'none') }}:{{ kwargs | length }}:{{ group_by | join }}{% endmacro %}\
         {% macro outer(model) %}{{ prop(model, **kwargs) }}{% endmacro %}\
         {% macro many(a) %}{{ a }}+{{ varargs | join(',') }}{% endmacro %}\
         {% macro strict(a) %}{{ a }}{% endmacro %}",
    )]);
    let src = "{{ prop('t', at_least=0.5, at_most=1) }}|{{ prop('t', group_by=['g']) }}|{{ outer('u', at_least=2) }}|{{ many(1, 2, 3) }}";
    assert_eq!(render(&env, src, parse_ctx()), "t:0.5:2:|t:none:0:g|u:2:1:|1+2,3");
    let e = env.render_node("m.sql", "{{ strict(1, b=2) }}", parse_ctx()).unwrap_err();
    assert!(e.message.contains("unknown keyword argument `b`"), "{}", e.message);
}

#[test]
fn python_re_flags_count_and_maxsplit() {
    let env = env_with(&[]);
    let src = "{{ modules.re.findall('\\\\bselect[ (]', 'SELECT a, select(b)', modules.re.IGNORECASE) | length }}|\
               {{ modules.re.findall('x', 'X', flags=modules.re.I) | length }}|\
               {{ modules.re.sub('a', '-', 'aaa', 2) }}|{{ modules.re.sub('A', '-', 'aaa', 0, modules.re.I) }}|\
               {{ modules.re.split(',', 'a,b,c', 1) | join('/') }}|{{ modules.re.match('B', 'b', modules.re.I) is not none }}";
    assert_eq!(render(&env, src, parse_ctx()), "2|1|--a|---|a/b,c|True");
}

#[test]
fn an_argument_passed_undefined_renders_empty_as_in_jinja2() {
    let env = env_with(&[("macros/m.sql", "{% macro agg(m, order_by=none) %}agg({{ m }}{{ order_by }}){% if order_by %}!{% endif %}{% endmacro %}")]);
    let src = "{{ agg('a', order_by=' x' if false) }}|{{ agg('a') }}|{{ agg('a', ' x' if true) }}";
    assert_eq!(render(&env, src, parse_ctx()), "agg(a)|agg(aNone)|agg(a x)!");
}

#[test]
fn datetime_arithmetic_in_a_lone_expression() {
    // A test argument such as `"{{ modules.datetime.date(2024, 1, 3) - modules.datetime.timedelta(2) }}"`.
    let env = env_with(&[]);
    let v = env.eval_expr("t.yml", "modules.datetime.date(2024, 1, 3) - modules.datetime.timedelta(2)", Some(parse_ctx())).unwrap();
    assert_eq!(v.to_string(), "2024-01-01");
}

#[test]
fn python_re_sub_replacement_templates() {
    // `\g<n>`, `\g<name>`, `\n` group references (an unmatched group gives
    // ''), C escapes, and `$` as plain text, as Python's re.sub reads them
    // (a Jinja string literal unescapes `\\3` to `\3`, as Jinja2's lexer
    // does). Expected output checked with Jinja2 3.1 and Python's re.
    let env = env_with(&[]);
    let src = r#"{{ modules.re.sub('(from|join)\s+(?P<t>\w+)(x)?', '\g<1> \g<t>_\g<2>[\\3]$1', 'select * from a join b') }}|{{ modules.re.sub('(b)', '\\\\\\1\\t', 'abc') }}|{{ modules.re.sub('(-- .*\n)?(x)', '\g<1>y', '-- c\nx') }}"#;
    assert_eq!(render(&env, src, parse_ctx()), "select * from a_a[]$1 join b_b[]$1|a\\b\tc|-- c\ny");
    let e = env.render_node("m.sql", r#"{{ modules.re.sub('(a)', '\g<2>', 'a') }}"#, parse_ctx()).unwrap_err();
    assert!(e.message.contains("invalid group reference 2"), "{}", e.message);
}

#[test]
fn a_macro_default_reads_an_earlier_parameter() {
    // Jinja2 evaluates `name=schema_name` when called, with schema_name bound
    // (codegen's generate_source); passing `name` still wins, and the
    // opening tag's whitespace control is kept.
    let env = env_with(&[(
        "macros/m.sql",
        "{% macro src(schema_name, n=2, name=schema_name | upper, label='schema_name') -%}\n  {{ name }}:{{ n }}:{{ label }}{% endmacro %}",
    )]);
    let src = "{{ src('raw') }}|{{ src('raw', name='x') }}|{{ src(schema_name='s', n=3) }}";
    assert_eq!(render(&env, src, parse_ctx()), "RAW:2:schema_name|x:2:schema_name|S:3:schema_name");
}
