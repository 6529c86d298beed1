//! Column lineage (`dp lineage`, target/lineage.json), `dp docs generate`
//! (catalog.json against dbt's catalog v1 schema, the site's files,
//! `dp docs serve`) and OpenLineage events (against the official schemas),
//! on the jaffle fixture and the demo.

use crate::common::*;
use serde_json::{Value, json};
use std::collections::BTreeMap;
use std::io::{BufRead, Read, Write};
use std::path::Path;

fn read_json(p: &Path) -> Value {
    serde_json::from_slice(&std::fs::read(p).unwrap_or_else(|e| panic!("{}: {e}", p.display()))).unwrap()
}

/// target/lineage.json in a stable, readable form: per model, each column's
/// inputs as `relation.column SUBTYPE[,SUBTYPE]`, the dataset-level inputs,
/// and the reason when there is no column lineage.
fn summary(dir: &Path) -> Value {
    let l = read_json(&dir.join("target/lineage.json"));
    let nodes = l["nodes"].as_object().unwrap();
    let name = |uid: &str| -> String {
        let n = &nodes[uid];
        match n["relation"].as_str() {
            Some(r) if !r.is_empty() && n["resource_type"] != "source" => r.to_string(),
            _ => uid.split('.').skip(2).collect::<Vec<_>>().join("."),
        }
    };
    let fmt = |inputs: &Value| -> Vec<String> {
        inputs
            .as_array()
            .map(|a| {
                a.iter()
                    .map(|i| {
                        let ts: Vec<&str> = i["transformations"].as_array().unwrap().iter().map(|t| t["subtype"].as_str().unwrap()).collect();
                        format!("{}.{} {}", name(i["node"].as_str().unwrap()), i["column"].as_str().unwrap(), ts.join(","))
                    })
                    .collect()
            })
            .unwrap_or_default()
    };
    let mut out = BTreeMap::new();
    for (uid, n) in nodes {
        if n["resource_type"] != "model" {
            continue;
        }
        let mut cols = serde_json::Map::new();
        for (c, cl) in n["columns"].as_object().unwrap() {
            let mut v = fmt(&cl["inputs"]);
            if let Some(u) = cl["unknown"].as_str() {
                v.push(format!("unknown: {u}"));
            }
            cols.insert(c.clone(), json!(v));
        }
        let mut entry = json!({"columns": cols, "dataset": fmt(&n["dataset"])});
        if let Some(u) = n["unavailable"].as_str() {
            entry["unavailable"] = json!(u);
        }
        out.insert(uid.clone(), entry);
    }
    json!(out)
}

#[test]
fn jaffle_column_lineage_golden_and_queries() {
    let dir = fixture("jaffle");
    let p = dir.path();
    let o = run(p, &["lineage"]);
    ok(&o);
    assert!(stderr(&o).contains("Column lineage of 6 models"), "{}", stderr(&o));
    insta::assert_json_snapshot!("jaffle_lineage", summary(p));

    let o = run(p, &["lineage", "customers.customer_lifetime_value", "--cached"]);
    ok(&o);
    insta::assert_snapshot!("jaffle_lineage_text", stdout(&o));
    let o = run(p, &["lineage", "stg_payments.amount", "--downstream", "--depth", "1", "--cached", "--format", "dot"]);
    ok(&o);
    insta::assert_snapshot!("jaffle_lineage_dot", stdout(&o));
    let o = run(p, &["lineage", "orders.amount", "--cached", "--format", "json"]);
    ok(&o);
    let j: Value = serde_json::from_str(&stdout(&o)).unwrap();
    assert_eq!(j["direction"], "upstream");
    assert!(j["edges"].as_array().unwrap().iter().any(|e| e["from"]["node"] == "seed.jaffle.raw_payments" && e["from"]["column"] == "amount"), "{j:#}");

    // A misspelt column: the closest names.
    let o = run(p, &["lineage", "customers.customer_lifetime_valu", "--cached"]);
    assert_eq!(o.status.code(), Some(1));
    let err = stderr(&o);
    assert!(err.contains("customers has no column 'customer_lifetime_valu'"), "{err}");
    assert!(err.contains("hint: did you mean") && err.contains("customers.customer_lifetime_value"), "{err}");
}

/// dp's per-column inputs against sqlglot's `lineage` of the same compiled
/// SQL (goldens by scripts/make_lineage_goldens.sh).
fn matches_sqlglot(dir: &Path, golden: &str) {
    let g = read_json(&repo().join("tests/fixtures/lineage").join(golden));
    let l = read_json(&dir.join("target/lineage.json"));
    let nodes = l["nodes"].as_object().unwrap();
    let mut dp: BTreeMap<String, Vec<String>> = BTreeMap::new();
    for n in nodes.values() {
        let rel = n["relation"].as_str().unwrap_or("");
        if n["resource_type"] != "model" || rel.is_empty() {
            continue;
        }
        for (c, cl) in n["columns"].as_object().unwrap() {
            let mut v: Vec<String> = cl["inputs"]
                .as_array()
                .map(|a| {
                    a.iter()
                        .map(|i| {
                            format!("{}.{}", nodes[i["node"].as_str().unwrap()]["relation"].as_str().unwrap(), i["column"].as_str().unwrap()).to_lowercase()
                        })
                        .collect()
                })
                .unwrap_or_default();
            v.sort();
            v.dedup();
            dp.insert(format!("{rel}.{c}"), v);
        }
    }
    let cols = g["columns"].as_object().unwrap();
    assert!(cols.len() >= 10, "too few columns in the golden {golden}");
    let mismatches: Vec<String> =
        cols.iter().filter(|(k, v)| dp.get(*k).map(|d| json!(d)) != Some((*v).clone())).map(|(k, v)| format!("{k}: sqlglot {v}, dp {:?}", dp.get(k))).collect();
    assert!(mismatches.is_empty(), "{} of {} columns differ from sqlglot:\n{}", mismatches.len(), cols.len(), mismatches.join("\n"));
}

#[test]
fn jaffle_lineage_matches_sqlglot() {
    let dir = fixture("jaffle");
    ok(&run(dir.path(), &["lineage"]));
    matches_sqlglot(dir.path(), "sqlglot_jaffle.json");
}

#[test]
fn a_model_that_does_not_plan_keeps_table_lineage() {
    let dir = project(&[
        ("warehouse.toml", "[project]\nname = \"p\"\n[models]\nmaterialized = \"table\"\n"),
        ("models/a.sql", "select 1 as id, 'x' as name"),
        ("models/b.sql", "select id, no_such_column from {{ ref('a') }}"),
        ("models/c.sql", "select * from {{ ref('b') }}"),
        ("models/schema.yml", "version: 2\nmodels:\n  - name: b\n    columns:\n      - name: id\n        description: the id\n"),
    ]);
    let p = dir.path();
    let o = run(p, &["lineage"]);
    ok(&o);
    let err = stderr(&o);
    assert!(err.contains("warning: b: column lineage unavailable: Schema error: No field named no_such_column"), "{err}");
    let l = read_json(&p.join("target/lineage.json"));
    let b = &l["nodes"]["model.p.b"];
    assert_eq!(b["depends_on"], json!(["model.p.a"]));
    assert_eq!(b["columns"]["id"]["type"], "unknown", "{b:#}");
    let c = &l["nodes"]["model.p.c"];
    assert_eq!(c["unavailable"], "column lineage unavailable: its parent b has none", "{c:#}");
    assert_eq!(c["depends_on"], json!(["model.p.b"]));
    // The query says why there is nothing upstream.
    let o = run(p, &["lineage", "b.id", "--cached"]);
    ok(&o);
    assert!(stdout(&o).contains("(column lineage unavailable: "), "{}", stdout(&o));
}

fn validator(schema: &Value, resources: &[(&str, &Value)]) -> jsonschema::Validator {
    let mut o = jsonschema::options().should_validate_formats(true);
    for (uri, v) in resources {
        o = o.with_resource(*uri, jsonschema::Resource::from_contents((*v).clone()).unwrap());
    }
    o.build(schema).unwrap()
}

fn check(v: &jsonschema::Validator, what: &str, instance: &Value) {
    let errors: Vec<String> = v.iter_errors(instance).take(10).map(|e| format!("{e} at {}", e.instance_path)).collect();
    assert!(errors.is_empty(), "{what} does not validate:\n{}\n{instance:#}", errors.join("\n"));
}

/// Checks every event against OpenLineage.json and each facet against its
/// own schema (all from tests/fixtures/schemas/openlineage).
pub fn validate_openlineage(events: &[Value]) {
    let base = repo().join("tests/fixtures/schemas/openlineage");
    let core = read_json(&base.join("OpenLineage.json"));
    let core_id = core["$id"].as_str().unwrap().to_string();
    let event_v = validator(&core, &[]);
    let facets: BTreeMap<String, jsonschema::Validator> = std::fs::read_dir(base.join("facets"))
        .unwrap()
        .map(|e| {
            let s = read_json(&e.unwrap().path());
            let key = s["properties"].as_object().unwrap().keys().next().unwrap().clone();
            (key, validator(&s, &[(&core_id, &core)]))
        })
        .collect();
    for ev in events {
        check(&event_v, "event", ev);
        let mut all: Vec<(&str, &Value)> = vec![];
        for f in ev["run"]["facets"].as_object().into_iter().chain(ev["job"]["facets"].as_object()) {
            all.extend(f.iter().map(|(k, v)| (k.as_str(), v)));
        }
        for d in ev["inputs"].as_array().unwrap().iter().chain(ev["outputs"].as_array().unwrap()) {
            for key in ["facets", "outputFacets"] {
                all.extend(d[key].as_object().into_iter().flatten().map(|(k, v)| (k.as_str(), v)));
            }
        }
        for (k, v) in all {
            let val = facets.get(k).unwrap_or_else(|| panic!("no schema for facet {k}"));
            check(val, &format!("facet {k}"), &json!({ k: v }));
        }
    }
}

#[test]
fn demo_docs_catalog_lineage_and_openlineage_events() {
    let dir = demo_project();
    let p = dir.path();
    demo_generate(p, "0.01");
    let o = dp().current_dir(p).env("DP_OPENLINEAGE_FILE", p.join("target/openlineage.ndjson")).args(["build"]).output().unwrap();
    ok(&o);
    assert!(stderr(&o).contains("OpenLineage: 240 events sent"), "{}", stderr(&o));

    // Events: START + COMPLETE per node, valid against the official schemas.
    let text = std::fs::read_to_string(p.join("target/openlineage.ndjson")).unwrap();
    let events: Vec<Value> = text.lines().map(|l| serde_json::from_str(l).unwrap()).collect();
    validate_openlineage(&events);
    let fct: Vec<&Value> = events.iter().filter(|e| e["job"]["name"] == "dp_demo.fct_orders").collect();
    assert_eq!(fct.iter().map(|e| e["eventType"].as_str().unwrap()).collect::<Vec<_>>(), ["START", "COMPLETE"]);
    let out = &fct[1]["outputs"][0];
    assert!(out["name"].as_str().unwrap().ends_with("/warehouse/marts/fct_orders"), "{out:#}");
    assert!(out["outputFacets"]["outputStatistics"]["rowCount"].as_u64().unwrap() > 0);
    let cl = &out["facets"]["columnLineage"]["fields"]["order_id"]["inputFields"];
    assert!(
        cl.as_array().unwrap().iter().any(|i| i["name"].as_str().unwrap().ends_with("/warehouse/intermediate/int_customer_orders") && i["field"] == "order_id"),
        "{cl:#}"
    );
    assert!(fct[1]["inputs"].as_array().unwrap().iter().any(|i| i["facets"]["schema"]["fields"].is_array()));

    // dp docs generate: catalog, lineage, site.
    let o = run(p, &["docs", "generate"]);
    ok(&o);
    let err = stderr(&o);
    assert!(err.contains("Catalog: 16 relations and 4 sources"), "{err}");
    let schema = read_json(&repo().join("tests/fixtures/schemas/catalog.v1.json"));
    let catalog = read_json(&p.join("target/catalog.json"));
    check(&validator(&schema, &[]), "catalog.json", &catalog);
    let fct = &catalog["nodes"]["model.dp_demo.fct_orders"];
    assert_eq!(fct["metadata"]["type"], "BASE TABLE");
    assert_eq!(fct["columns"]["order_id"]["index"], 1);
    assert_eq!(fct["columns"]["order_id"]["type"], "BIGINT");
    assert!(fct["columns"]["order_id"]["comment"].as_str().is_some_and(|c| !c.is_empty()), "{fct:#}");
    let rows = fct["stats"]["row_count"]["value"].as_u64().unwrap();
    let counted = stdout(&run(p, &["show", "--inline", "select count(*) as n from {{ ref('fct_orders') }}", "--format", "csv"]));
    assert_eq!(counted.lines().nth(1).unwrap().trim(), rows.to_string());
    assert!(fct["stats"]["bytes"]["value"].as_u64().unwrap() > 0);
    let src = &catalog["sources"]["source.dp_demo.raw.orders"];
    assert!(src["stats"]["row_count"]["value"].as_u64().unwrap() > 0, "{src:#}");
    assert!(p.join("target/manifest.json").is_file());
    for f in ["index.html", "app.js", "style.css", "data/index.js", "data/d0.js"] {
        assert!(p.join("target/docs").join(f).is_file(), "target/docs/{f} is missing");
    }
    let index = std::fs::read_to_string(p.join("target/docs/data/index.js")).unwrap();
    assert!(index.starts_with("window.DP_INDEX={") && index.contains("\"model.dp_demo.fct_orders\""));

    insta::assert_json_snapshot!("demo_lineage", summary(p));
    matches_sqlglot(p, "sqlglot_demo.json");
    // The shop database's address comes from libpq's variables (as `dp ingest` connects).
    let o = dp()
        .current_dir(p)
        .env("PGHOST", "localhost")
        .env("PGPORT", "5432")
        .env("PGDATABASE", "shop")
        .args(["lineage", "marts.mart_customer_analytics.lifetime_value"])
        .output()
        .unwrap();
    ok(&o);
    insta::assert_snapshot!("demo_lineage_text", stdout(&o));
}

/// `dp docs serve --port 0` serves the site on loopback.
#[test]
fn docs_serve_serves_the_site() {
    let dir = fixture("jaffle");
    let p = dir.path();
    let o = run(p, &["docs", "serve", "--port", "0"]);
    assert!(stderr(&o).contains("has no docs site") && stderr(&o).contains("hint: run `dp docs generate` first"), "{}", stderr(&o));
    ok(&run(p, &["build"]));
    ok(&run(p, &["docs", "generate"]));
    // Views are in the catalog too (their planned schema; no stats).
    let catalog = read_json(&p.join("target/catalog.json"));
    let stg = &catalog["nodes"]["model.jaffle.stg_orders"];
    assert_eq!(stg["metadata"]["type"], "VIEW", "{stg:#}");
    assert_eq!(stg["stats"]["has_stats"]["value"], false);
    assert_eq!(catalog["nodes"]["seed.jaffle.raw_orders"]["stats"]["row_count"]["value"], 40);
    let mut child = dp().current_dir(p).args(["docs", "serve", "--port", "0"]).stderr(std::process::Stdio::piped()).spawn().unwrap();
    let mut lines = std::io::BufReader::new(child.stderr.take().unwrap()).lines();
    let line = lines.next().unwrap().unwrap();
    let addr = line.split("http://").nth(1).and_then(|s| s.split('/').next()).unwrap_or_else(|| panic!("no URL in {line}")).to_string();
    let get = |path: &str| -> String {
        let mut s = std::net::TcpStream::connect(&addr).unwrap();
        write!(s, "GET {path} HTTP/1.1\r\nHost: {addr}\r\n\r\n").unwrap();
        let mut out = String::new();
        s.read_to_string(&mut out).unwrap();
        out
    };
    let index = get("/");
    let data = get("/data/index.js");
    let outside = get("/../warehouse.toml");
    let missing = get("/nope.js");
    child.kill().unwrap();
    let _ = child.wait();
    assert!(index.starts_with("HTTP/1.1 200 OK") && index.contains("text/html") && index.contains("<script src=\"app.js\">"), "{index}");
    assert!(data.contains("text/javascript") && data.contains("\"model.jaffle.customers\""), "{data}");
    assert!(outside.starts_with("HTTP/1.1 403"), "{outside}");
    assert!(missing.starts_with("HTTP/1.1 404"), "{missing}");
}

/// The HTTP transport: events POSTed as JSON, a failing request retried.
#[test]
fn openlineage_http_transport_retries() {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    let server = std::thread::spawn(move || {
        let mut bodies: Vec<(String, String)> = vec![];
        let mut served = 0;
        listener.set_nonblocking(false).unwrap();
        for stream in listener.incoming() {
            let mut s = stream.unwrap();
            let mut r = std::io::BufReader::new(s.try_clone().unwrap());
            let mut head = String::new();
            let mut len = 0usize;
            loop {
                let mut line = String::new();
                if r.read_line(&mut line).unwrap() == 0 || line == "\r\n" {
                    break;
                }
                if let Some(v) = line.to_ascii_lowercase().strip_prefix("content-length:") {
                    len = v.trim().parse().unwrap();
                }
                head.push_str(&line);
            }
            let mut body = vec![0; len];
            r.read_exact(&mut body).unwrap();
            served += 1;
            // The first request fails: the transport must retry it.
            let status = if served == 1 { "503 Service Unavailable" } else { "200 OK" };
            write!(s, "HTTP/1.1 {status}\r\nContent-Length: 0\r\nConnection: close\r\n\r\n").unwrap();
            if served > 1 {
                bodies.push((head, String::from_utf8(body).unwrap()));
            }
            if bodies.len() == 4 {
                return bodies;
            }
        }
        bodies
    });
    let dir = project(&[
        ("warehouse.toml", "[project]\nname = \"p\"\n[models]\nmaterialized = \"table\"\n"),
        ("models/a.sql", "select 1 as id"),
        ("models/b.sql", "select id * 2 as id2 from {{ ref('a') }}"),
    ]);
    let o = dp().current_dir(dir.path()).env("OPENLINEAGE_URL", &url).env("OPENLINEAGE_API_KEY", "secret-key").args(["run"]).output().unwrap();
    ok(&o);
    assert!(stderr(&o).contains("OpenLineage: 4 events sent"), "{}", stderr(&o));
    let bodies = server.join().unwrap();
    assert!(bodies.iter().all(|(h, _)| h.starts_with("POST /api/v1/lineage HTTP/1.1") && h.to_ascii_lowercase().contains("authorization: bearer secret-key")));
    let events: Vec<Value> = bodies.iter().map(|(_, b)| serde_json::from_str(b).unwrap()).collect();
    validate_openlineage(&events);
    let b = events.iter().find(|e| e["job"]["name"] == "p.b" && e["eventType"] == "COMPLETE").unwrap();
    assert_eq!(b["outputs"][0]["facets"]["columnLineage"]["fields"]["id2"]["inputFields"][0]["field"], "id");
    assert_eq!(b["outputs"][0]["facets"]["columnLineage"]["fields"]["id2"]["inputFields"][0]["transformations"][0]["subtype"], "TRANSFORMATION");
}

/// A failing model: FAIL with the error message.
#[test]
fn openlineage_fail_event() {
    let dir = project(&[
        ("warehouse.toml", "[project]\nname = \"p\"\n[models]\nmaterialized = \"table\"\n"),
        ("models/a.sql", "select nope from (select 1 as id) x"),
    ]);
    let p = dir.path();
    let o = dp().current_dir(p).env("DP_OPENLINEAGE_FILE", p.join("ol.ndjson")).args(["run"]).output().unwrap();
    assert_eq!(o.status.code(), Some(1));
    let events: Vec<Value> = std::fs::read_to_string(p.join("ol.ndjson")).unwrap().lines().map(|l| serde_json::from_str(l).unwrap()).collect();
    validate_openlineage(&events);
    assert_eq!(events.len(), 2);
    assert_eq!(events[1]["eventType"], "FAIL");
    assert!(events[1]["run"]["facets"]["errorMessage"]["message"].as_str().unwrap().contains("nope"));
    assert_eq!(events[0]["run"]["runId"], events[1]["run"]["runId"]);
}

/// `dp lineage push --openmetadata URL` against a local server that checks
/// each request against the fields OpenMetadata's published schemas
/// require (createDatabaseService, createDatabase, createDatabaseSchema,
/// createTable: `name` + parent FQN + `columns[].{name, dataType}`;
/// addLineage: `edge` = entitiesEdge with entityReference `{id, type}`,
/// no other keys, `lineageDetails.columnsLineage[].{fromColumns, toColumn}`).
#[test]
fn openmetadata_push_creates_tables_and_lineage_idempotently() {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    let server = std::thread::spawn(move || {
        let mut seen: Vec<(String, String, Value)> = vec![];
        let mut tables: BTreeMap<String, String> = BTreeMap::new();
        for stream in listener.incoming() {
            let mut s = stream.unwrap();
            let mut r = std::io::BufReader::new(s.try_clone().unwrap());
            let mut request = String::new();
            r.read_line(&mut request).unwrap();
            let mut len = 0usize;
            let mut auth = String::new();
            loop {
                let mut line = String::new();
                if r.read_line(&mut line).unwrap() == 0 || line == "\r\n" {
                    break;
                }
                let lower = line.to_ascii_lowercase();
                if let Some(v) = lower.strip_prefix("content-length:") {
                    len = v.trim().parse().unwrap();
                }
                if lower.starts_with("authorization:") {
                    auth = line.trim().to_string();
                }
            }
            let mut body = vec![0; len];
            r.read_exact(&mut body).unwrap();
            let body: Value = serde_json::from_slice(&body).unwrap();
            let mut parts = request.split_whitespace();
            let (method, path) = (parts.next().unwrap().to_string(), parts.next().unwrap().to_string());
            assert_eq!(auth.to_ascii_lowercase(), "authorization: bearer om-token", "every request carries the token");
            let reply = match path.as_str() {
                "/api/v1/tables" => {
                    let fqn = format!("{}.{}", body["databaseSchema"].as_str().unwrap(), body["name"].as_str().unwrap());
                    let n = tables.len();
                    let id = tables.entry(fqn.clone()).or_insert_with(|| format!("00000000-0000-4000-8000-{n:012}")).clone();
                    json!({"id": id, "fullyQualifiedName": fqn})
                }
                _ => json!({"id": "00000000-0000-4000-8000-ffffffffffff"}),
            };
            let text = reply.to_string();
            write!(s, "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{text}", text.len()).unwrap();
            let done = body.get("done").is_some();
            seen.push((method, path, body));
            if done {
                break;
            }
        }
        seen
    });
    let dir = fixture("jaffle");
    let p = dir.path();
    for _ in 0..2 {
        let o = dp().current_dir(p).env("OPENMETADATA_JWT_TOKEN", "om-token").args(["lineage", "push", "--openmetadata", &url]).output().unwrap();
        ok(&o);
        assert!(stderr(&o).contains("OpenMetadata (http://127.0.0.1:"), "{}", stderr(&o));
        assert!(!stderr(&o).contains("om-token"), "the token was printed");
    }
    // Stop the server.
    let mut s = std::net::TcpStream::connect(url.trim_start_matches("http://")).unwrap();
    write!(s, "PUT /stop HTTP/1.1\r\nAuthorization: Bearer om-token\r\nContent-Length: 13\r\n\r\n{{\"done\":true}}").unwrap();
    let mut sink = String::new();
    let _ = s.read_to_string(&mut sink);
    let seen = server.join().unwrap();
    let seen = &seen[..seen.len() - 1];
    assert!(seen.iter().all(|(m, _, _)| m == "PUT"));
    // The second push sent exactly what the first did (PUT: create or update).
    let (first, second) = seen.split_at(seen.len() / 2);
    assert_eq!(first.iter().map(|x| (&x.1, &x.2)).collect::<Vec<_>>(), second.iter().map(|x| (&x.1, &x.2)).collect::<Vec<_>>());
    let of = |path: &str| first.iter().filter(|x| x.1 == path).map(|x| &x.2).collect::<Vec<_>>();
    assert_eq!(of("/api/v1/services/databaseServices")[0]["serviceType"], "CustomDatabase");
    assert_eq!(of("/api/v1/databases")[0], &json!({"name": "dp", "service": "jaffle"}));
    assert_eq!(of("/api/v1/databaseSchemas"), vec![&json!({"name": "main", "database": "jaffle.dp"})]);
    let tables = of("/api/v1/tables");
    assert_eq!(tables.len(), 8, "3 seeds + 5 non-ephemeral models");
    for t in &tables {
        assert!(t["name"].is_string() && t["databaseSchema"] == "jaffle.dp.main", "{t:#}");
        assert!(t["columns"].as_array().unwrap().iter().all(|c| c["name"].is_string() && c["dataType"].is_string()), "{t:#}");
    }
    let customers = tables.iter().find(|t| t["name"] == "customers").unwrap();
    let clv = customers["columns"].as_array().unwrap().iter().find(|c| c["name"] == "customer_lifetime_value").unwrap();
    assert_eq!(clv["dataType"], "DOUBLE");
    let edges = of("/api/v1/lineage");
    for e in &edges {
        let edge = e["edge"].as_object().unwrap();
        assert!(edge.keys().all(|k| ["fromEntity", "toEntity", "description", "lineageDetails"].contains(&k.as_str())), "{e:#}");
        for end in ["fromEntity", "toEntity"] {
            assert_eq!(edge[end]["type"], "table");
            assert!(edge[end]["id"].as_str().unwrap().len() == 36);
        }
        for c in edge["lineageDetails"]["columnsLineage"].as_array().unwrap() {
            assert!(c["fromColumns"].as_array().unwrap().iter().all(|f| f.as_str().unwrap().starts_with("jaffle.dp.main.")));
            assert!(c["toColumn"].as_str().unwrap().starts_with("jaffle.dp.main."));
        }
    }
    // customers ← stg_payments carries the lifetime value's column pair
    // (through the ephemeral customer_payments).
    let to_customers: Vec<&&Value> = edges.iter().filter(|e| e["edge"]["toEntity"]["id"] == customers_id(first)).collect();
    assert_eq!(to_customers.len(), 3, "stg_customers, stg_orders, stg_payments → customers");
    let pairs: Vec<String> =
        to_customers.iter().flat_map(|e| e["edge"]["lineageDetails"]["columnsLineage"].as_array().unwrap().clone()).map(|c| c.to_string()).collect();
    assert!(
        pairs.iter().any(|p| p.contains("\"fromColumns\":[\"jaffle.dp.main.stg_payments.amount\"]") && p.contains("main.customers.customer_lifetime_value\"")),
        "{pairs:#?}"
    );
}

fn customers_id(requests: &[(String, String, Value)]) -> String {
    let n = requests.iter().filter(|x| x.1 == "/api/v1/tables").position(|x| x.2["name"] == "customers").unwrap();
    format!("00000000-0000-4000-8000-{n:012}")
}

/// Lineage continues past the warehouse: models published to PostgreSQL
/// say where (no server needed to know it).
#[test]
fn lineage_shows_postgres_publishing() {
    let dir = project(&[
        (
            "warehouse.toml",
            "[project]\nname = \"p\"\n[targets.dev]\nwarehouse = \"./warehouse\"\n[targets.dev.postgres]\nhost = \"localhost\"\n[models]\nmaterialized = \"table\"\n[models.marts]\npublish = [\"postgres\"]\nschema = \"marts\"\n",
        ),
        ("models/base.sql", "select 1 as id, 2.5 as amount"),
        ("models/marts/totals.sql", "select id, sum(amount) as total from {{ ref('base') }} group by id"),
    ]);
    let p = dir.path();
    let o = dp().current_dir(p).env("PGPORT", "5432").env("PGDATABASE", "analytics").args(["lineage", "base.amount", "--downstream"]).output().unwrap();
    ok(&o);
    assert_eq!(
        stdout(&o).trim(),
        "main.base.amount\n└─ main_marts.totals.total  [DIRECT/AGGREGATION]  -> PostgreSQL main_marts.totals\n   └─ postgres://localhost:5432/analytics.main_marts.totals.total  [DIRECT/IDENTITY]"
    );
    let l = read_json(&p.join("target/lineage.json"));
    assert_eq!(l["nodes"]["model.p.totals"]["published"], "postgres:main_marts.totals");
    assert!(l["nodes"]["model.p.base"].get("published").is_none());
}

/// target/lineage_cache.json: a second build plans nothing; an edit replans
/// the edited model and what is downstream of it, and the result is the
/// lineage an uncached build gives.
#[test]
fn lineage_cache_replans_what_changed_and_never_serves_stale_columns() {
    let dir = project(&[
        ("warehouse.toml", "[project]\nname = \"p\"\n[models]\nmaterialized = \"table\"\n"),
        ("models/a.sql", "select 1 as id, 'x' as name"),
        ("models/b.sql", "select id, name from {{ ref('a') }}"),
        ("models/c.sql", "select * from {{ ref('b') }} where id > 0"),
        ("models/d.sql", "select 1 as k"),
    ]);
    let p = dir.path();
    let lineage = |args: &[&str]| -> (Value, String) {
        let o = dp().current_dir(p).args(args).arg("lineage").env("DP_LOG", "dp::lineage=debug").env("NO_COLOR", "1").output().unwrap();
        ok(&o);
        let planned = stderr(&o)
            .lines()
            .find(|l| l.contains("column lineage planned and traced"))
            .and_then(|l| l.split("planned=").nth(1))
            .map(|s| s.split_whitespace().next().unwrap().to_string());
        (summary(p), planned.unwrap_or_else(|| panic!("no planned= in\n{}", stderr(&o))))
    };
    let (first, planned) = lineage(&[]);
    assert_eq!(planned, "4");
    assert!(p.join("target/lineage_cache.json").exists());
    let (second, planned) = lineage(&[]);
    assert_eq!(planned, "0");
    assert_eq!(first, second);

    // A type and a column change upstream: a, b and c are planned again, d is not.
    std::fs::write(p.join("models/a.sql"), "select 1 as id, 2.5 as name, 'z' as extra").unwrap();
    std::fs::write(p.join("models/b.sql"), "select id, name, extra from {{ ref('a') }}").unwrap();
    let (edited, planned) = lineage(&[]);
    assert_eq!(planned, "3");
    let l = read_json(&p.join("target/lineage.json"));
    assert_eq!(l["nodes"]["model.p.c"]["columns"]["name"]["type"], "Float64", "{:#}", l["nodes"]["model.p.c"]);
    assert_eq!(edited["model.p.c"]["columns"]["extra"], json!(["main.b.extra IDENTITY"]), "{edited:#}");
    let (uncached, planned) = lineage(&["--no-partial-parse"]);
    assert_eq!(planned, "4");
    assert_eq!(edited, uncached);

    // Only the leaf changes: only it is planned.
    std::fs::write(p.join("models/c.sql"), "select id from {{ ref('b') }}").unwrap();
    let (leaf, planned) = lineage(&[]);
    assert_eq!(planned, "1");
    assert_eq!(leaf["model.p.c"]["columns"], json!({"id": ["main.b.id IDENTITY"]}), "{leaf:#}");
}
