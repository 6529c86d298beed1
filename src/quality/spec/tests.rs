use super::*;

fn err(text: &str) -> String {
    parse("checkpoints/c.yml", text).unwrap_err().to_string()
}

const GOOD: &str = r#"
name: staging_checkpoint
description: Silver rules
gate: {guards: "tag:marts"}
actions: [store_results, {notify: {on: failure}}]
failed_rows: 5
validations:
  - relation: stg_orders
    key_columns: [order_id]
    expectations:
      - expect_column_values_to_not_be_null: {column: order_id}
      - expect_column_values_to_be_between:
          column: total_amount
          min_value: 0
          mostly: 0.99
          row_condition: 'status == "delivered"'
          condition_parser: great_expectations
          severity: warn
      - expectation_type: expect_table_row_count_to_be_between
        kwargs: {min_value: 1}
        meta: {severity: warn}
  - select: "tag:marts"
    expectations:
      - expect_table_row_count_to_be_between: {min_value: 1}
"#;

#[test]
fn parses_gx_names_both_shapes_and_options() {
    let c = parse("checkpoints/staging.yml", GOOD).unwrap();
    assert_eq!(c.name, "staging_checkpoint");
    assert_eq!(c.gate, Gate::On { after: None, guards: Some("tag:marts".into()) });
    assert_eq!(c.actions, Actions { store_results: true, update_data_docs: false, notify: Some("failure".into()) });
    assert_eq!(c.failed_rows, 5);
    assert_eq!(c.validations.len(), 2);
    let v = &c.validations[0];
    assert_eq!(v.target, Target::Relation("stg_orders".into()));
    assert_eq!(v.line, 8);
    assert_eq!(v.key_columns, vec!["order_id"]);
    let e = &v.expectations;
    assert_eq!(e[0].name(), "expect_column_values_to_not_be_null");
    assert_eq!((e[0].line, e[0].severity, e[0].mostly), (11, Severity::Error, 1.0));
    assert_eq!((e[1].line, e[1].severity, e[1].mostly), (12, Severity::Warn, 0.99));
    assert_eq!(e[1].row_condition.as_deref(), Some("status = 'delivered'"));
    assert_eq!((e[2].name(), e[2].line, e[2].severity), ("expect_table_row_count_to_be_between", 19, Severity::Warn));
    assert_eq!(c.validations[1].target, Target::Select("tag:marts".into()));
}

#[test]
fn gx_col_syntax_becomes_sql() {
    assert_eq!(row_condition(r#"col("status")=="shipped" & col("qty")>2"#, "great_expectations").unwrap(), r#""status"='shipped' and "qty">2"#);
    assert_eq!(row_condition("status = 'x' and qty > 2", "sql").unwrap(), "status = 'x' and qty > 2");
}

#[test]
fn errors_name_file_line_and_the_closest_name() {
    let yaml = "validations:\n  - relation: t\n    expectations:\n      - expect_column_values_to_not_be_nul: {column: a}\n";
    assert_eq!(
        err(yaml),
        "checkpoints/c.yml:4: unknown expectation `expect_column_values_to_not_be_nul`\n  hint: did you mean `expect_column_values_to_not_be_null`?"
    );
    let yaml = "validations:\n  - relation: t\n    expectations:\n      - expect_column_values_to_be_between:\n          column: a\n          min_valu: 1\n";
    assert_eq!(err(yaml), "checkpoints/c.yml:6: unknown argument of expect_column_values_to_be_between `min_valu`\n  hint: did you mean `min_value`?");
    let yaml = "validations:\n  - relation: t\n    expectations:\n      - expect_column_values_to_match_regex: {column: a, regex: '([a-z'}\n";
    assert!(err(yaml).starts_with("checkpoints/c.yml:4: expect_column_values_to_match_regex: regex `([a-z` does not compile"), "{}", err(yaml));
    let yaml = "validations:\n  - relation: t\n    expectations:\n      - expect_column_values_to_not_be_null:\n          column: a\n          row_condition: 'a > > 1'\n";
    assert!(err(yaml).starts_with("checkpoints/c.yml:6: row_condition `a > > 1` does not parse"), "{}", err(yaml));
    let yaml = "validations:\n  - relation: t\n    expectations:\n      - expect_column_values_to_not_be_null: {column: a, mostly: 2}\n";
    assert!(err(yaml).starts_with("checkpoints/c.yml:4: `mostly` must be a number between 0 and 1"), "{}", err(yaml));
    let yaml = "validations:\n  - relation: t\n    expectations:\n      - expect_column_values_to_be_in_set: {column: a}\n";
    assert!(err(yaml).starts_with("checkpoints/c.yml:4: expect_column_values_to_be_in_set needs `value_set`"), "{}", err(yaml));
    let yaml = "validations:\n  - relation: t\n    expectations: [\n";
    assert!(err(yaml).starts_with("checkpoints/c.yml:4: invalid YAML"), "{}", err(yaml));
    let yaml = "gate: maybe\nvalidations: []\n";
    assert!(err(yaml).starts_with("checkpoints/c.yml:1: `gate` must be"), "{}", err(yaml));
    let yaml = "validation: []\n";
    assert!(err(yaml).contains("did you mean `validations`?"), "{}", err(yaml));
    let yaml = "validations:\n  - relation: t\n    expectations:\n      - unexpected_rows_query_expectation: {}\n      - unexpected_rows_expectation: {unexpected_rows_query: 'select * from t'}\n";
    assert!(err(yaml).contains("did you mean `unexpected_rows_expectation`"), "{}", err(yaml));
}

#[test]
fn custom_sql_must_read_the_batch() {
    let yaml = "validations:\n  - relation: t\n    expectations:\n      - unexpected_rows_expectation: {unexpected_rows_query: 'select * from t'}\n";
    assert!(err(yaml).starts_with("checkpoints/c.yml:4: unexpected_rows_query must read the validated relation as {batch}"), "{}", err(yaml));
}

#[test]
fn a_gx_suite_json_array_pastes_as_is() {
    // GX 1.x's serialized suite (and 0.x's expectation_type spelling)
    let yaml = r#"validations:
  - relation: t
    expectations: [
      {"type": "expect_column_values_to_not_be_null", "kwargs": {"column": "id", "mostly": 0.9}, "meta": {}, "id": "3f1c", "notes": null, "rendered_content": []},
      {"expectation_type": "expect_column_values_to_be_in_set", "kwargs": {"column": "s", "value_set": ["a"]}, "meta": {"severity": "warning"}}
    ]
"#;
    let c = parse("checkpoints/c.yml", yaml).unwrap();
    let e = &c.validations[0].expectations;
    assert_eq!((e[0].name(), e[0].mostly, e[0].severity, e[0].line), ("expect_column_values_to_not_be_null", 0.9, Severity::Error, 4));
    assert_eq!((e[1].name(), e[1].severity, e[1].line), ("expect_column_values_to_be_in_set", Severity::Warn, 5));
}
