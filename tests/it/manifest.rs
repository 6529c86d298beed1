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

/// A line of golden/ls_json/ARGS.txt as the shell splits it (double quotes only).
fn shell_words(line: &str) -> Vec<String> {
    let (mut out, mut cur, mut quoted, mut any) = (vec![], String::new(), false, false);
    for c in line.chars() {
        match c {
            '"' => (quoted, any) = (!quoted, true),
            c if c.is_whitespace() && !quoted => {
                if any {
                    out.push(std::mem::take(&mut cur));
                }
                any = false;
            }
            c => (cur, any) = (cur + &c.to_string(), true),
        }
    }
    if any {
        out.push(cur);
    }
    out
}

/// `dp ls --output json` prints what `dbt ls` printed on the jaffle fixture
/// (golden/ls_json/NN.txt for each line of ARGS.txt, by
/// scripts/make_dbt_goldens.sh jaffle): `--output-keys` space-separated or
/// repeated, dotted keys into nested values, missing keys left out, the same
/// keys in the same order (`config` with every default dbt fills in),
/// written as Python's `json.dumps`.
#[test]
fn ls_json_matches_dbt() {
    let dir = fixture("jaffle");
    let p = dir.path();
    let golden = repo().join("tests/fixtures/projects/jaffle/golden/ls_json");
    let args = std::fs::read_to_string(golden.join("ARGS.txt")).unwrap();
    for (i, line) in args.lines().filter(|l| !l.trim().is_empty()).enumerate() {
        let words = shell_words(line);
        let mut argv = vec!["ls", "--output", "json"];
        argv.extend(words.iter().map(String::as_str));
        let o = run(p, &argv);
        ok(&o);
        let want = std::fs::read_to_string(golden.join(format!("{:02}.txt", i + 1))).unwrap();
        assert_eq!(stdout(&o), want, "dp ls --output json {line}");
    }
}

/// Every node and source in dp's manifest is dbt's, key for key in dbt's
/// order, on the jaffle and advanced fixtures against the manifests
/// dbt-core 1.11 wrote (golden/manifest.json): configs with every default,
/// columns, contracts, inferred primary keys, test kwargs, refs... Known
/// differences, left out: `database` and `relation_name` and the compiled
/// SQL (dbt-duckdb quotes `"db"."schema"."table"`, dp writes
/// `schema.table` in its own warehouse), `created_at` and `root_path` (the
/// run's), `extra_ctes` (their SQL quotes as the compiled SQL does: the ids
/// are compared, and each CTE against the ephemeral's compiled SQL), and a source's
/// `external` (dp's file location) and `unrendered_config` (dbt lists its
/// defaults there).
#[test]
fn manifest_nodes_equal_dbt() {
    const KNOWN: &[&str] = &["database", "relation_name", "compiled_code", "created_at", "root_path", "extra_ctes", "external"];
    for project in ["jaffle", "advanced"] {
        let dir = fixture(project);
        ok(&run(dir.path(), &["compile"]));
        let read = |p: std::path::PathBuf| -> serde_json::Value { serde_json::from_slice(&std::fs::read(&p).unwrap()).unwrap() };
        let dp = read(dir.path().join("target/manifest.json"));
        let dbt = read(repo().join(format!("tests/fixtures/projects/{project}/golden/manifest.json")));
        let mut compared = 0;
        for section in ["nodes", "sources"] {
            for (uid, want) in dbt[section].as_object().unwrap() {
                let got = dp[section][uid].as_object().unwrap_or_else(|| panic!("{project}: {uid} is not in dp's manifest"));
                let want = want.as_object().unwrap();
                let keys = |m: &serde_json::Map<String, serde_json::Value>| m.keys().cloned().collect::<Vec<_>>();
                assert_eq!(keys(got), keys(want), "{project}: {uid}: keys");
                for (k, v) in want {
                    // a source's unrendered_config: dbt lists its defaults too
                    if k == "extra_ctes" {
                        // the same ephemerals, each CTE with that model's compiled SQL
                        let ids = |v: &serde_json::Value| v.as_array().unwrap().iter().map(|c| c["id"].clone()).collect::<Vec<_>>();
                        assert_eq!(ids(&got[k]), ids(v), "{project}: {uid}: extra_ctes");
                        for c in got[k].as_array().unwrap() {
                            let e = &dp["nodes"][c["id"].as_str().unwrap()];
                            let want = format!(" __dbt__cte__{} as (\n{}\n)", e["alias"].as_str().unwrap(), e["compiled_code"].as_str().unwrap());
                            assert_eq!(c["sql"].as_str(), Some(want.as_str()), "{project}: {uid}: extra_ctes");
                        }
                    }
                    let skipped = KNOWN.contains(&k.as_str()) || (section == "sources" && k == "unrendered_config");
                    if !skipped {
                        // compared as text: equal keys in the same order
                        assert_eq!(got[k].to_string(), v.to_string(), "{project}: {uid}: {k}");
                    }
                }
                compared += 1;
            }
        }
        assert!(compared >= 20, "{project}: only {compared} nodes compared");
    }
}
