//! target/manifest.json validates against dbt's manifest v12 JSON schema
//! (generated from dbt-core 1.11's own classes, tests/fixtures/schemas).

use crate::common::*;

#[test]
fn manifest_matches_dbt_v12_schema() {
    let schema: serde_json::Value =
        serde_json::from_slice(&std::fs::read(repo().join("tests/fixtures/schemas/manifest.v12.json")).unwrap()).unwrap();
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
