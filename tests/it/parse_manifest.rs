//! `dp parse`'s target/manifest.json against real dbt-core 1.11's
//! `dbt parse` on the corpus's four integration projects, node by node
//! (and source by source, macro by macro, dbt's own macros left out,
//! metric by metric, semantic model by semantic model, and the disabled
//! nodes):
//! the same keys in dbt's order, each value equal (compared by a hash of
//! its compact JSON: tests/fixtures/parse_manifest/<project>.json, from
//! scripts/make_parse_manifest_goldens.sh). Left out: `database` and
//! `relation_name` (dbt-duckdb's; a semantic model's `node_relation`,
//! which holds them), `created_at` and `root_path` (the run's). The nodes and sources equal to dbt's (the macros: how many), and
//! the keys that differ on the others, are pinned as a snapshot per project: a regression fails, an
//! improvement shows as a snapshot change (`INSTA_UPDATE=always` to accept
//! it). README's `dp parse` row says why the remaining nodes differ.

use crate::common::*;
use serde_json::Value;
use sha2::Digest;

/// The golden's hash of a value: sha256 of its compact JSON, 12 hex digits.
fn digest(v: &Value) -> String {
    let hash = sha2::Sha256::digest(serde_json::to_string(v).unwrap().as_bytes());
    hash.iter().take(6).map(|b| format!("{b:02x}")).collect()
}

fn report(project: &str) -> String {
    let (_dir, p) = crate::corpus::lay_out(project);
    ok(&run(&p, &["parse"]));
    let read = |f: &std::path::Path| -> Value { serde_json::from_str(&std::fs::read_to_string(f).unwrap_or_else(|e| panic!("{}: {e}", f.display()))).unwrap() };
    let dp = read(&p.join("target/manifest.json"));
    let golden = read(&repo().join(format!("tests/fixtures/parse_manifest/{project}.json")));
    let mut out = String::new();
    // the keys of a resource that differ from the golden's hashes
    let differing = |got: &serde_json::Map<String, Value>, want: &serde_json::Map<String, Value>| -> Vec<String> {
        let mut keys: Vec<String> = vec![];
        if !got.keys().eq(want.keys()) {
            keys.push("(keys)".into());
        }
        for (k, hash) in want {
            if let Some(hash) = hash.as_str()
                && got.get(k).is_none_or(|v| digest(v) != hash)
            {
                keys.push(k.clone());
            }
        }
        keys
    };
    for section in ["nodes", "sources", "macros", "metrics", "semantic_models", "disabled"] {
        let want = golden[section].as_object().unwrap();
        let got = dp[section].as_object().unwrap();
        let (mut equal, mut differ) = (vec![], vec![]);
        for (uid, want) in want {
            let keys: Vec<String> = match (got.get(uid), want) {
                (None, _) => vec!["not in dp's manifest".into()],
                // disabled: one entry per disabled version of the node
                (Some(Value::Array(g)), Value::Array(w)) if g.len() == w.len() => {
                    g.iter().zip(w).flat_map(|(g, w)| differing(g.as_object().unwrap(), w.as_object().unwrap())).collect()
                }
                (Some(Value::Array(g)), Value::Array(w)) => vec![format!("{} entries, dbt {}", g.len(), w.len())],
                (Some(g), w) => differing(g.as_object().unwrap(), w.as_object().unwrap()),
            };
            if keys.is_empty() {
                equal.push(uid.as_str());
            } else {
                differ.push(format!("{uid}: {}", keys.join(", ")));
            }
        }
        let internal = |v: &Value| matches!(v["package_name"].as_str(), Some("dbt" | "dbt_duckdb"));
        for (uid, _) in got.iter().filter(|(u, v)| !want.contains_key(*u) && !internal(v)) {
            differ.push(format!("{uid}: not in dbt's manifest"));
        }
        // the macros equal to dbt's are many: counted, not listed
        let listed = if section == "macros" { String::new() } else { format!("{}\n", equal.join("\n")) };
        out += &format!("{project} {section}: {} of {} equal dbt's parse manifest\n{listed}differing:\n{}\n\n", equal.len(), want.len(), differ.join("\n"));
    }
    out
}

#[test]
#[ignore = "needs ../shared/corpus: run by scripts/test.sh"]
fn corpus_dbt_utils_parse_manifest() {
    insta::assert_snapshot!(report("dbt_utils"));
}

#[test]
#[ignore = "needs ../shared/corpus: run by scripts/test.sh"]
fn corpus_dbt_expectations_parse_manifest() {
    insta::assert_snapshot!(report("dbt_expectations"));
}

#[test]
#[ignore = "needs ../shared/corpus: run by scripts/test.sh"]
fn corpus_dbt_project_evaluator_parse_manifest() {
    insta::assert_snapshot!(report("dbt_project_evaluator"));
}

#[test]
#[ignore = "needs ../shared/corpus: run by scripts/test.sh"]
fn corpus_dbt_audit_helper_parse_manifest() {
    insta::assert_snapshot!(report("dbt_audit_helper"));
}
