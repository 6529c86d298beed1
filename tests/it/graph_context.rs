//! What packages that read dbt's own description of a project see: the
//! adapter's name (`target.type`, `adapter.type()`), the metrics of
//! `graph.metrics`, and DuckDB's naming of repeated select columns
//! (dbt_project_evaluator leans on all three; see tests/it/corpus.rs).

use crate::common::*;

fn csv(dir: &std::path::Path, q: &str) -> String {
    let o = run(dir, &["sql", "--format", "csv", "-e", q]);
    ok(&o);
    stdout(&o)
}

/// dp presents itself to Jinja as dbt-duckdb does, so configs branching on
/// the adapter take DuckDB's branch.
#[test]
fn target_type_and_adapter_type_are_duckdb() {
    let dir = project(&[
        ("dbt_project.yml", "name: p\nprofile: p\nmodels:\n  p:\n    +materialized: \"{{ 'table' if target.type in ['duckdb'] else 'view' }}\"\n"),
        ("models/m.sql", "select '{{ target.type }}' as target_type, '{{ adapter.type() }}' as adapter_type"),
    ]);
    let p = dir.path();
    ok(&run(p, &["build"]));
    assert_eq!(csv(p, "select * from main.m"), "target_type,adapter_type\nduckdb,duckdb\n");
    let m: serde_json::Value = serde_json::from_slice(&std::fs::read(p.join("target/manifest.json")).unwrap()).unwrap();
    assert_eq!(m["nodes"]["model.p.m"]["config"]["materialized"], "table");
}

const METRICS_YML: &str = "version: 2
semantic_models:
  - name: orders_sm
    model: ref('orders')
    defaults: {agg_time_dimension: order_day}
    entities: [{name: order, type: primary, expr: id}]
    dimensions: [{name: order_day, type: time, type_params: {time_granularity: day}}]
    measures:
      - {name: order_total, agg: sum, expr: amount}
      - {name: order_count, agg: count, expr: 1}
      - {name: max_amount, agg: max, expr: amount, create_metric: true}
metrics:
  - name: revenue
    label: Revenue
    type: simple
    type_params: {measure: order_total}
    filter: |
      {{ Dimension('order__order_day') }} > '2024-01-01'
  - name: orders
    label: Orders
    description: How many
    type: cumulative
    type_params:
      measure: {name: order_count, join_to_timespine: true}
      cumulative_type_params: {window: 7 days}
  - name: revenue_per_order
    label: Revenue per order
    type: ratio
    type_params: {numerator: revenue, denominator: orders}
  - name: retired
    label: Retired
    type: simple
    type_params: {measure: order_total}
    config: {enabled: false}
";

/// `graph.metrics` holds the project's metrics as dbt's manifest does:
/// each linked to the semantic model defining its measures (a ratio metric
/// to its input metrics), filters and windows parsed, disabled ones left out.
#[test]
fn metrics_are_in_the_graph_as_dbt_describes_them() {
    let dir = project(&[
        ("dbt_project.yml", "name: p\nprofile: p\n"),
        ("models/orders.sql", "select 1 as id, 10.0 as amount, date '2024-01-02' as order_day"),
        ("models/metrics.yml", METRICS_YML),
        (
            "models/metric_facts.sql",
            "{{ config(materialized='table') }}
{% set rows = [] %}
{% if execute %}{% for m in graph.metrics.values() | sort(attribute='unique_id') %}
{% do rows.append(\"select '\" ~ m.unique_id ~ \"' as uid, '\" ~ m.type ~ \"' as kind, '\" ~ m.depends_on.nodes | join(' ') ~ \"' as parents, '\"
   ~ m.type_params.input_measures | map(attribute='name') | join(' ') ~ \"' as measures, '\" ~ m.fqn | join('.') ~ \"' as fqn, '\"
   ~ (m.type_params.cumulative_type_params.window | tojson if m.type_params.cumulative_type_params else '') ~ \"' as win, '\"
   ~ (tojson(m.filter) | replace(\"'\", \"''\") if m.filter else '') ~ \"' as filter\") %}
{% endfor %}{% endif %}
{{ rows | join(' union all ') if rows else \"select '' as uid\" }}",
        ),
    ]);
    let p = dir.path();
    ok(&run(p, &["build"]));
    assert_eq!(
        csv(p, "select * from main.metric_facts order by uid"),
        "uid,kind,parents,measures,fqn,win,filter\n\
         metric.p.max_amount,simple,semantic_model.p.orders_sm,max_amount,p.max_amount,,\n\
         metric.p.orders,cumulative,semantic_model.p.orders_sm,order_count,p.orders,\"{\"\"count\"\": 7, \"\"granularity\"\": \"\"day\"\"}\",\n\
         metric.p.revenue,simple,semantic_model.p.orders_sm,order_total,p.revenue,,\"{\"\"where_filters\"\": [{\"\"where_sql_template\"\": \"\"{{ Dimension('order__order_day') }} > '2024-01-01'\\n\"\"}]}\"\n\
         metric.p.revenue_per_order,ratio,metric.p.revenue metric.p.orders,order_total order_count,p.revenue_per_order,,\n"
    );
    // the manifest's metrics are the graph's, in dbt's shape
    let m: serde_json::Value = serde_json::from_slice(&std::fs::read(p.join("target/manifest.json")).unwrap()).unwrap();
    let orders = &m["metrics"]["metric.p.orders"];
    assert_eq!(
        orders["type_params"]["measure"],
        serde_json::json!({"name": "order_count", "filter": null, "alias": null, "join_to_timespine": true, "fill_nulls_with": null})
    );
    assert_eq!(
        orders["type_params"]["cumulative_type_params"],
        serde_json::json!({"window": {"count": 7, "granularity": "day"}, "grain_to_date": null, "period_agg": "first", "metric": null})
    );
    assert_eq!(
        (orders["path"].as_str(), orders["original_file_path"].as_str(), orders["description"].as_str()),
        (Some("metrics.yml"), Some("models/metrics.yml"), Some("How many"))
    );
    assert!(m["metrics"].get("metric.p.retired").is_none());
    assert_eq!(m["metrics"]["metric.p.max_amount"]["description"], "Metric created from measure max_amount");
    let sm = &m["semantic_models"]["semantic_model.p.orders_sm"];
    assert_eq!(sm["depends_on"]["nodes"], serde_json::json!(["model.p.orders"]));
    // their edges are in parent_map and child_map, as dbt writes them (lists sorted)
    assert_eq!(m["parent_map"]["metric.p.revenue_per_order"], serde_json::json!(["metric.p.orders", "metric.p.revenue"]));
    assert_eq!(m["parent_map"]["semantic_model.p.orders_sm"], serde_json::json!(["model.p.orders"]));
    assert_eq!(m["child_map"]["model.p.orders"], serde_json::json!(["semantic_model.p.orders_sm"]));
    assert_eq!(m["child_map"]["semantic_model.p.orders_sm"], serde_json::json!(["metric.p.max_amount", "metric.p.orders", "metric.p.revenue"]));
    assert_eq!(m["child_map"]["metric.p.revenue_per_order"], serde_json::json!([]));
    assert_eq!((sm["node_relation"]["alias"].as_str(), sm["node_relation"]["schema_name"].as_str()), (Some("orders"), Some("main")));
    assert_eq!(
        sm["measures"][1],
        serde_json::json!({"name": "order_count", "agg": "count", "description": null, "label": null, "create_metric": false, "expr": "1",
                           "agg_params": null, "non_additive_dimension": null, "agg_time_dimension": null, "config": {"meta": {}}})
    );
    let schema: serde_json::Value = serde_json::from_slice(&std::fs::read(repo().join("tests/fixtures/schemas/manifest.v12.json")).unwrap()).unwrap();
    let validator = jsonschema::validator_for(&schema).unwrap();
    let errors: Vec<String> = validator.iter_errors(&m).take(5).map(|e| e.to_string()).collect();
    assert!(errors.is_empty(), "{errors:?}");
}

/// DuckDB renames a repeated output name `a_1` (then `a_2`, the first free
/// name) where DataFusion refused the select: dbt_utils' `equality` writes
/// such selects when `compare_columns` repeats a column.
#[test]
fn a_repeated_select_column_is_renamed_as_duckdb_renames_it() {
    let dir = project(&[
        ("dbt_project.yml", "name: p\nprofile: p\n"),
        ("models/m.sql", "{{ config(materialized='table') }}\nwith t as (select 1 as a, 2 as b)\nselect a, a, b, t.a from t"),
    ]);
    let p = dir.path();
    ok(&run(p, &["build"]));
    assert_eq!(csv(p, "select * from main.m"), "a,a_1,b,a_2\n1,1,2,1\n");
}

/// `graph.nodes` describes files as dbt does where dbt_project_evaluator
/// reads them: `raw_code` stripped (its `number_lines` is
/// `raw_code.count("\n") + 1`), a version's `deprecation_date` as dbt's
/// datetime, and a root seed its package's namesake (disabled) describes
/// takes that description. The expected rows are dbt-duckdb 1.11's on the
/// same project.
#[test]
fn graph_nodes_read_as_dbt_writes_them() {
    let dir = project(&[
        ("dbt_project.yml", "name: p\nprofile: p\nseeds:\n  pkg:\n    ex:\n      +enabled: false\n"),
        ("seeds/ex.csv", "a,b\n1,x\n"),
        ("dbt_packages/pkg/dbt_project.yml", "name: pkg\nversion: '1.0'\nconfig-version: 2\n"),
        ("dbt_packages/pkg/seeds/ex.csv", "a,b\n1,x\n"),
        (
            "dbt_packages/pkg/seeds/seeds.yml",
            "version: 2\nseeds:\n  - name: ex\n    description: from the package\n    config:\n      column_types: {b: varchar}\n    columns:\n      - name: a\n        description: the a\n",
        ),
        ("models/m.sql", "select 1 as id\n\n"),
        ("models/vm_v1.sql", "select 1 as id"),
        ("models/v.yml", "version: 2\nmodels:\n  - name: vm\n    latest_version: 1\n    versions:\n      - v: 1\n        deprecation_date: 2024-01-01\n"),
        (
            "models/facts.sql",
            "{{ config(materialized='table') }}
{% set rows = [] %}
{% if execute %}{% for n in graph.nodes.values() | sort(attribute='unique_id') if n.resource_type in ['model', 'seed'] and n.name != 'facts' %}
{% do rows.append(\"select '\" ~ n.unique_id ~ \"' as uid, \" ~ (n.raw_code.count(\"\\n\") + 1) ~ \" as number_lines, '\" ~ n.deprecation_date ~ \"' as deprecation_date, '\"
   ~ n.description ~ \"' as description, '\" ~ n.columns.keys() | join(' ') ~ \"' as columns, '\" ~ n.config.column_types | tojson ~ \"' as column_types\") %}
{% endfor %}{% endif %}
{{ rows | join(' union all ') if rows else \"select '' as uid\" }}",
        ),
    ]);
    let p = dir.path();
    ok(&run(p, &["build"]));
    assert_eq!(
        csv(p, "select * from main.facts order by uid"),
        "uid,number_lines,deprecation_date,description,columns,column_types\n\
         model.p.m,1,None,,,{}\n\
         model.p.vm.v1,1,2024-01-01T00:00:00+00:00,,,{}\n\
         seed.p.ex,1,,from the package,a,\"{\"\"b\"\": \"\"varchar\"\"}\"\n"
    );
}

/// `dp ls` lists metrics and semantic models as `dbt ls` does (checked
/// line for line against dbt 1.11 on dbt_project_evaluator's project:
/// `metric:<package>.<name>`, in unique-id order with every other resource),
/// and `--resource-type` takes several types, space-separated.
#[test]
fn ls_lists_metrics_and_semantic_models() {
    let dir = project(&[
        ("dbt_project.yml", "name: p\nprofile: p\n"),
        ("models/orders.sql", "select 1 as id, 10.0 as amount, date '2024-01-02' as order_day"),
        ("models/metrics.yml", METRICS_YML),
    ]);
    let p = dir.path();
    let o = run(p, &["ls", "-q"]);
    ok(&o);
    assert_eq!(stdout(&o), "metric:p.max_amount\nmetric:p.orders\nmetric:p.revenue\nmetric:p.revenue_per_order\np.orders\nsemantic_model:p.orders_sm\n");
    let o = run(p, &["ls", "-q", "--resource-type", "metric", "semantic_model", "--output", "json", "--output-keys", "name", "depends_on.nodes"]);
    ok(&o);
    assert_eq!(
        stdout(&o),
        "{\"name\": \"max_amount\", \"depends_on.nodes\": [\"semantic_model.p.orders_sm\"]}\n\
         {\"name\": \"orders\", \"depends_on.nodes\": [\"semantic_model.p.orders_sm\"]}\n\
         {\"name\": \"revenue\", \"depends_on.nodes\": [\"semantic_model.p.orders_sm\"]}\n\
         {\"name\": \"revenue_per_order\", \"depends_on.nodes\": [\"metric.p.revenue\", \"metric.p.orders\"]}\n\
         {\"name\": \"orders_sm\", \"depends_on.nodes\": [\"model.p.orders\"]}\n"
    );
    let o = run(p, &["ls", "-q", "--resource-type", "semantic_model", "--output", "name"]);
    assert_eq!(stdout(&o), "orders_sm\n");
    // a selection does not reach them yet: only the selected nodes
    let o = run(p, &["ls", "-q", "-s", "orders"]);
    assert_eq!(stdout(&o), "p.orders\n");
}
