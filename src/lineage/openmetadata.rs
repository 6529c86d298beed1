//! `dp lineage push --openmetadata URL`: the project's tables and their
//! table- and column-level lineage into OpenMetadata through its REST API.
//! Every call is a PUT (create or update), so pushing again changes nothing:
//! a database service named after the project, one database, a schema per
//! warehouse schema, a table per model / seed / snapshot / source (columns
//! with types and descriptions), then `PUT /api/v1/lineage` per edge with
//! its column pairs.

use std::collections::HashMap;
use std::time::Duration;

use serde_json::{Value, json};

use super::Lineage;
use crate::project::load::Project;
use crate::project::nodes::ResourceType;

#[derive(Debug, thiserror::Error)]
pub enum OpenMetadataError {
    #[error("OpenMetadata at {url}: {message}\n  hint: check the URL (e.g. http://localhost:8585) and that the server is up")]
    Unreachable { url: String, message: String },
    #[error(
        "OpenMetadata refused {method} {url}: HTTP {status}: {body}\n  hint: set OPENMETADATA_JWT_TOKEN to a bot's token with permission to create tables and lineage"
    )]
    Refused { method: &'static str, url: String, status: u16, body: String },
}

/// What a push did.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct Pushed {
    pub tables: usize,
    pub dashboards: usize,
    pub edges: usize,
    pub column_pairs: usize,
}

/// An Arrow type (as lineage.json names it) in OpenMetadata's `dataType` enum.
pub fn data_type(arrow: &str) -> &'static str {
    let t = arrow.to_ascii_lowercase();
    match () {
        _ if t.starts_with("int64") || t.starts_with("uint32") => "BIGINT",
        _ if t.starts_with("uint64") => "NUMERIC",
        _ if t.starts_with("int32") || t.starts_with("uint16") => "INT",
        _ if t.starts_with("int16") || t.starts_with("uint8") => "SMALLINT",
        _ if t.starts_with("int8") => "TINYINT",
        _ if t.starts_with("float64") => "DOUBLE",
        _ if t.starts_with("float") => "FLOAT",
        _ if t.starts_with("decimal") => "DECIMAL",
        _ if t.starts_with("utf8") || t.starts_with("largeutf8") => "STRING",
        _ if t.starts_with("boolean") => "BOOLEAN",
        _ if t.starts_with("date") => "DATE",
        _ if t.starts_with("timestamp") && t.contains("some(") => "TIMESTAMPZ",
        _ if t.starts_with("timestamp") => "TIMESTAMP",
        _ if t.starts_with("time") => "TIME",
        _ if t.starts_with("interval") || t.starts_with("duration") => "INTERVAL",
        _ if t.starts_with("list") || t.starts_with("largelist") || t.starts_with("fixedsizelist") => "ARRAY",
        _ if t.starts_with("struct") => "STRUCT",
        _ if t.starts_with("map") => "MAP",
        _ if t.contains("binary") => "BINARY",
        _ => "UNKNOWN",
    }
}

struct Client {
    http: reqwest::Client,
    base: String,
    token: Option<String>,
}

impl Client {
    async fn put(&self, path: &str, body: &Value) -> Result<Value, OpenMetadataError> {
        let url = format!("{}{path}", self.base);
        let mut req = self.http.put(&url).header("content-type", "application/json").body(body.to_string());
        if let Some(t) = &self.token {
            req = req.bearer_auth(t);
        }
        let resp = req.send().await.map_err(|e| OpenMetadataError::Unreachable { url: self.base.clone(), message: e.to_string() })?;
        let status = resp.status();
        let text = resp.text().await.unwrap_or_default();
        if !status.is_success() {
            return Err(OpenMetadataError::Refused { method: "PUT", url, status: status.as_u16(), body: text.chars().take(300).collect() });
        }
        Ok(serde_json::from_str(&text).unwrap_or(Value::Null))
    }
}

/// Pushes tables and lineage; `token` is OpenMetadata's JWT (never printed).
pub async fn push(lineage: &Lineage, project: &Project, base: &str, token: Option<String>) -> Result<Pushed, OpenMetadataError> {
    let http = reqwest::Client::builder()
        .timeout(Duration::from_secs(30))
        .build()
        .map_err(|e| OpenMetadataError::Unreachable { url: base.into(), message: e.to_string() })?;
    let client = Client { http, base: base.trim_end_matches('/').to_string(), token };
    let service = project.settings.project_name.clone();
    let database = if project.settings.target.database.is_empty() { "warehouse".to_string() } else { project.settings.target.database.clone() };
    client
        .put(
            "/api/v1/services/databaseServices",
            &json!({"name": service, "serviceType": "CustomDatabase", "description": format!("dp project {service}: its warehouse ({})", project.settings.target.warehouse)}),
        )
        .await?;
    client.put("/api/v1/databases", &json!({"name": database, "service": service})).await?;
    let db_fqn = format!("{service}.{database}");

    // Tables: every relation the lineage knows.
    let mut schemas: Vec<&str> = vec![];
    let mut schemas_done: Vec<String> = vec![];
    let mut ids: HashMap<&str, (String, String)> = HashMap::new();
    let mut pushed = Pushed::default();
    for (uid, nl) in &lineage.nodes {
        let Some((schema, table)) = nl.relation.split_once('.') else { continue };
        if !schemas.contains(&schema) {
            schemas.push(schema);
            client.put("/api/v1/databaseSchemas", &json!({"name": schema, "database": db_fqn})).await?;
        }
        let node = project.nodes.get(uid);
        let columns: Vec<Value> = nl
            .columns
            .iter()
            .map(|(name, c)| {
                let mut col = json!({"name": name, "dataType": data_type(&c.data_type), "dataTypeDisplay": c.data_type});
                if let Some(d) = node.and_then(|n| n.columns.get(name)).map(|c| c.description.as_str()).filter(|d| !d.is_empty()) {
                    col["description"] = json!(d);
                }
                col
            })
            .collect();
        let table_type = match node {
            Some(n) if n.resource_type == ResourceType::Source => "External",
            Some(n) if n.materialized() == crate::project::nodes::Materialization::View => "View",
            _ => "Regular",
        };
        let mut body = json!({"name": table, "databaseSchema": format!("{db_fqn}.{schema}"), "tableType": table_type, "columns": columns});
        if let Some(d) = node.map(|n| n.description.as_str()).filter(|d| !d.is_empty()) {
            body["description"] = json!(d);
        }
        let resp = client.put("/api/v1/tables", &body).await?;
        let id = resp["id"].as_str().unwrap_or_default().to_string();
        let fqn = resp["fullyQualifiedName"].as_str().map(String::from).unwrap_or_else(|| format!("{db_fqn}.{schema}.{table}"));
        ids.insert(uid.as_str(), (id, fqn));
        pushed.tables += 1;
    }

    // Other systems' tables: ingestion sources and published tables in a
    // `Postgres` service per server, bronze prefixes and landing folders in
    // the project's service (schemas `bronze`, `landing`, table type External).
    let mut pg_services: Vec<String> = vec![];
    for (uid, nl) in &lineage.nodes {
        let Some(e) = &nl.external else { continue };
        let (db_fqn, schema, table) = match nl.resource_type.as_str() {
            super::systems::POSTGRES_TABLE => {
                let Some((service, db, schema, table)) = pg_parts(&e.name) else { continue };
                if !pg_services.contains(&service) {
                    let host = e.name.split("://").nth(1).and_then(|r| r.split('/').next()).unwrap_or("");
                    client
                        .put("/api/v1/services/databaseServices", &json!({"name": service, "serviceType": "Postgres", "description": format!("PostgreSQL at {host} (from dp project {})", project.settings.project_name)}))
                        .await?;
                    pg_services.push(service.clone());
                }
                let db_fqn = format!("{service}.{db}");
                if !schemas_done.contains(&format!("{db_fqn}.{schema}")) {
                    client.put("/api/v1/databases", &json!({"name": db, "service": service})).await?;
                    client.put("/api/v1/databaseSchemas", &json!({"name": schema, "database": db_fqn})).await?;
                    schemas_done.push(format!("{db_fqn}.{schema}"));
                }
                (db_fqn, schema, table)
            }
            super::systems::BRONZE | super::systems::LANDING => {
                let schema = if nl.resource_type == super::systems::BRONZE { "bronze" } else { "landing" };
                if !schemas_done.contains(&format!("{db_fqn}.{schema}")) {
                    client.put("/api/v1/databaseSchemas", &json!({"name": schema, "database": db_fqn})).await?;
                    schemas_done.push(format!("{db_fqn}.{schema}"));
                }
                (db_fqn.clone(), schema.to_string(), entity_name(e.name.split_once(':').map_or(e.name.as_str(), |(_, r)| r)))
            }
            _ => continue,
        };
        let columns: Vec<Value> =
            nl.columns.iter().map(|(name, c)| json!({"name": name, "dataType": data_type(&c.data_type), "dataTypeDisplay": c.data_type})).collect();
        let mut description = e.detail.clone().unwrap_or_default();
        if let Some(u) = &e.uri {
            description.push_str(&format!("\n\nLocation: {u}"));
        }
        if !e.objects.is_empty() {
            let rows: i64 = e.objects.iter().filter_map(|o| o.rows).sum();
            description.push_str(&format!(
                "\n\n{} objects ingested ({rows} rows), the last at {}",
                e.objects.len(),
                e.objects.iter().map(|o| o.ingested_at.as_str()).max().unwrap_or("")
            ));
        }
        let table_type = if nl.resource_type == super::systems::POSTGRES_TABLE { "Regular" } else { "External" };
        let body = json!({"name": table, "databaseSchema": format!("{db_fqn}.{schema}"), "tableType": table_type, "columns": columns, "description": description.trim()});
        let resp = client.put("/api/v1/tables", &body).await?;
        let id = resp["id"].as_str().unwrap_or_default().to_string();
        let fqn = resp["fullyQualifiedName"].as_str().map(String::from).unwrap_or_else(|| format!("{db_fqn}.{schema}.{table}"));
        ids.insert(uid.as_str(), (id, fqn));
        pushed.tables += 1;
    }

    // Edges: parent relation → model, with the column pairs between them.
    for (uid, nl) in &lineage.nodes {
        let Some((to_id, to_fqn)) = ids.get(uid.as_str()) else { continue };
        let mut parents: Vec<&str> = vec![];
        let mut pairs: HashMap<(&str, &str), Vec<String>> = HashMap::new();
        for (col, c) in &nl.columns {
            for i in &c.inputs {
                if !parents.contains(&i.node.as_str()) {
                    parents.push(&i.node);
                }
                if let Some((_, from_fqn)) = ids.get(i.node.as_str()) {
                    pairs.entry((i.node.as_str(), col.as_str())).or_default().push(format!("{from_fqn}.{}", i.column));
                }
            }
        }
        for d in nl.dataset.iter().map(|i| i.node.as_str()).chain(nl.depends_on.iter().map(String::as_str)) {
            if !parents.contains(&d) {
                parents.push(d);
            }
        }
        for p in parents {
            let Some((from_id, _)) = ids.get(p) else { continue };
            let mut columns: Vec<Value> = pairs
                .iter()
                .filter(|((n, _), _)| *n == p)
                .map(|((_, col), from)| json!({"fromColumns": from, "toColumn": format!("{to_fqn}.{col}")}))
                .collect();
            columns.sort_by_key(|v| v["toColumn"].as_str().unwrap_or("").to_string());
            pushed.column_pairs += columns.len();
            let edge = json!({"edge": {
                "fromEntity": {"id": from_id, "type": "table"},
                "toEntity": {"id": to_id, "type": "table"},
                "lineageDetails": {"columnsLineage": columns},
            }});
            client.put("/api/v1/lineage", &edge).await?;
            pushed.edges += 1;
        }
    }
    superset(&client, lineage, project, &ids, &mut pushed).await?;
    Ok(pushed)
}

/// `postgres://host:port/db.schema.table` → (service name, db, schema, table).
fn pg_parts(name: &str) -> Option<(String, String, String, String)> {
    let rest = name.strip_prefix("postgres://")?;
    let (hostport, path) = rest.split_once('/')?;
    let mut parts = path.splitn(3, '.');
    let (db, schema, table) = (parts.next()?, parts.next()?, parts.next()?);
    if table.contains(' ') {
        return None; // a query, not a table
    }
    Some((format!("postgres_{}", entity_name(hostport)), db.to_string(), schema.to_string(), table.to_string()))
}

/// A name OpenMetadata takes for an entity: no dots (its FQN separator),
/// no `::`; other characters become `_`.
fn entity_name(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        let c = if c.is_ascii_alphanumeric() || c == '-' { c } else { '_' };
        if !(c == '_' && out.ends_with('_')) {
            out.push(c);
        }
    }
    out.trim_matches('_').to_string()
}

/// Superset in OpenMetadata: a dashboard service (`Superset`), a data model
/// per dataset (`SupersetDataModel`, its table columns), a chart per chart
/// and a dashboard per dashboard listing them; lineage table → data model
/// (column pairs) and data model → dashboard.
async fn superset(
    client: &Client,
    lineage: &Lineage,
    project: &Project,
    ids: &HashMap<&str, (String, String)>,
    pushed: &mut Pushed,
) -> Result<(), OpenMetadataError> {
    use super::systems::{CHART, DASHBOARD, DATASET};
    if !lineage.nodes.values().any(|n| n.resource_type == DASHBOARD) {
        return Ok(());
    }
    let service = format!("{}_superset", project.settings.project_name);
    client
        .put("/api/v1/services/dashboardServices", &json!({"name": service, "serviceType": "Superset", "description": format!("Superset dashboards of dp project {} (dashboards/*.yml)", project.settings.project_name)}))
        .await?;
    // Data models, with lineage from the table each reads.
    let mut models: HashMap<&str, (String, String)> = HashMap::new();
    for (uid, nl) in lineage.nodes.iter().filter(|(_, n)| n.resource_type == DATASET) {
        let key = uid.trim_start_matches("dataset:");
        let columns: Vec<Value> = nl
            .columns
            .iter()
            .filter(|(_, c)| !c.data_type.starts_with("metric:"))
            .map(|(name, c)| json!({"name": name, "dataType": data_type(&c.data_type), "dataTypeDisplay": c.data_type}))
            .collect();
        let body = json!({"name": entity_name(key), "displayName": key, "service": service, "serviceType": "Superset", "dataModelType": "SupersetDataModel", "columns": columns});
        let resp = client.put("/api/v1/dashboard/datamodels", &body).await?;
        let id = resp["id"].as_str().unwrap_or_default().to_string();
        let fqn = resp["fullyQualifiedName"].as_str().map(String::from).unwrap_or_else(|| format!("{service}.model.{}", entity_name(key)));
        if let Some((from_id, from_fqn)) = nl.depends_on.first().and_then(|u| ids.get(u.as_str())) {
            let mut columns: Vec<Value> = nl
                .columns
                .iter()
                .filter_map(|(c, cl)| {
                    let i = cl.inputs.iter().find(|i| Some(&i.node) == nl.depends_on.first())?;
                    Some(json!({"fromColumns": [format!("{from_fqn}.{}", i.column)], "toColumn": format!("{fqn}.{c}")}))
                })
                .collect();
            columns.sort_by_key(|v| v["toColumn"].as_str().unwrap_or("").to_string());
            pushed.column_pairs += columns.len();
            let edge = json!({"edge": {
                "fromEntity": {"id": from_id, "type": "table"},
                "toEntity": {"id": id, "type": "dashboardDataModel"},
                "lineageDetails": {"columnsLineage": columns},
            }});
            client.put("/api/v1/lineage", &edge).await?;
            pushed.edges += 1;
        }
        models.insert(uid.as_str(), (id, fqn));
    }
    for (uid, nl) in lineage.nodes.iter().filter(|(_, n)| n.resource_type == DASHBOARD) {
        let e = nl.external.as_ref().expect("external");
        let title = uid.trim_start_matches("dashboard:");
        let slug = e.aliases.first().map(|a| a.trim_start_matches("dashboard:").to_string()).unwrap_or_else(|| entity_name(title));
        let mut charts: Vec<String> = vec![];
        let mut dms: Vec<&str> = vec![];
        for chart in &nl.depends_on {
            let Some(c) = lineage.nodes.get(chart).filter(|c| c.resource_type == CHART) else { continue };
            let chart_name = chart.rsplit_once('/').map_or(chart.as_str(), |(_, n)| n);
            let body = json!({"name": entity_name(&format!("{slug}__{chart_name}")), "displayName": chart_name, "service": service,
                              "description": c.external.as_ref().and_then(|x| x.detail.clone()).unwrap_or_default()});
            let resp = client.put("/api/v1/charts", &body).await?;
            charts.push(resp["fullyQualifiedName"].as_str().map(String::from).unwrap_or_else(|| format!("{service}.{}", body["name"].as_str().unwrap_or(""))));
            for d in &c.depends_on {
                if let Some(k) = models.get_key_value(d.as_str()).map(|(k, _)| *k).filter(|k| !dms.contains(k)) {
                    dms.push(k);
                }
            }
        }
        let body = json!({"name": slug, "displayName": title, "service": service, "description": e.detail.clone().unwrap_or_default(),
                          "charts": charts, "dataModels": dms.iter().map(|d| models[d].1.clone()).collect::<Vec<_>>()});
        let resp = client.put("/api/v1/dashboards", &body).await?;
        let id = resp["id"].as_str().unwrap_or_default().to_string();
        for d in dms {
            let edge = json!({"edge": {"fromEntity": {"id": models[d].0, "type": "dashboardDataModel"}, "toEntity": {"id": id, "type": "dashboard"}}});
            client.put("/api/v1/lineage", &edge).await?;
            pushed.edges += 1;
        }
        pushed.dashboards += 1;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    #[test]
    fn arrow_types_map_to_openmetadata() {
        assert_eq!(super::data_type("Int64"), "BIGINT");
        assert_eq!(super::data_type("Decimal128(18, 2)"), "DECIMAL");
        assert_eq!(super::data_type("Timestamp(Microsecond, Some(\"UTC\"))"), "TIMESTAMPZ");
        assert_eq!(super::data_type("Timestamp(µs)"), "TIMESTAMP");
        assert_eq!(super::data_type("Utf8View"), "STRING");
        assert_eq!(super::data_type("unknown"), "UNKNOWN");
    }

    #[test]
    fn names_of_other_systems() {
        assert_eq!(super::entity_name("bronze/postgres/orders/*/orders.parquet"), "bronze_postgres_orders_orders_parquet");
        assert_eq!(
            super::pg_parts("postgres://db1:5432/shop.public.orders"),
            Some(("postgres_db1_5432".into(), "shop".into(), "public".into(), "orders".into()))
        );
        assert_eq!(super::pg_parts("postgres://db1:5432/shop (query of raw.orders)"), None);
    }
}
