//! target/manifest.json validates against dbt's manifest v12 JSON schema
//! (generated from dbt-core 1.11's own classes, tests/fixtures/schemas).

use crate::common::*;

#[test]
fn manifest_matches_dbt_v12_schema() {
    let schema: serde_json::Value = serde_json::from_slice(&std::fs::read(repo().join("tests/fixtures/schemas/manifest.v12.json")).unwrap()).unwrap();
    let validator = jsonschema::validator_for(&schema).unwrap();
    for project in ["jaffle", "advanced"] {
        let dir = fixture(project);
        ok(&run(dir.path(), &["compile"]));
        let m: serde_json::Value = serde_json::from_slice(&std::fs::read(dir.path().join("target/manifest.json")).unwrap()).unwrap();
        let errors: Vec<String> = validator.iter_errors(&m).take(10).map(|e| format!("{} at {}", e, e.instance_path)).collect();
        assert!(errors.is_empty(), "{project}: manifest.json does not match the v12 schema:\n{}", errors.join("\n"));
        let nodes = m["nodes"].as_object().unwrap();
        assert!(nodes.contains_key(&format!("model.{project}.{}", if project == "jaffle" { "customers" } else { "fct_events" })));
        assert!(m["parent_map"].is_object() && m["child_map"].is_object());
    }
}

#[test]
fn exposures_groups_and_semantic_layer_load_and_validate() {
    let schema: serde_json::Value = serde_json::from_slice(&std::fs::read(repo().join("tests/fixtures/schemas/manifest.v12.json")).unwrap()).unwrap();
    let dir = project(&[
        ("warehouse.toml", "[project]\nname = \"p\"\n"),
        ("models/orders.sql", "select 1 as id"),
        (
            "models/schema.yml",
            "version: 2\ngroups:\n  - name: finance\n    owner: {name: Fin, email: fin@example.com}\n\
             exposures:\n  - name: weekly\n    type: dashboard\n    owner: {name: Ana}\n    depends_on: [\"ref('orders')\"]\n\
             semantic_models:\n  - name: orders_sm\n    model: ref('orders')\n\
             metrics:\n  - name: order_count\n    type: simple\n    type_params: {measure: orders}\n\
             saved_queries:\n  - name: q1\n",
        ),
    ]);
    let p = dir.path();
    ok(&run(p, &["parse"]));
    let m: serde_json::Value = serde_json::from_slice(&std::fs::read(p.join("target/manifest.json")).unwrap()).unwrap();
    let validator = jsonschema::validator_for(&schema).unwrap();
    let errors: Vec<String> = validator.iter_errors(&m).take(5).map(|e| e.to_string()).collect();
    assert!(errors.is_empty(), "{errors:?}");
    assert_eq!(m["groups"]["group.p.finance"]["owner"]["email"], "fin@example.com");
    assert_eq!(m["exposures"]["exposure.p.weekly"]["depends_on"]["nodes"], serde_json::json!(["model.p.orders"]));
    let o = run(p, &["ls", "-s", "+exposure:weekly"]);
    ok(&o);
    assert_eq!(stdout(&o).trim(), "exposure:p.weekly\np.orders");
}
