//! Superset's native import bundle (format version 1.0.0) from checked
//! dashboards: `metadata.yaml`, `databases/<db>.yaml`,
//! `datasets/<db>/<table>.yaml`, `charts/<dashboard>__<chart>.yaml`,
//! `dashboards/<slug>.yaml`, all under one root folder in a ZIP (Superset
//! strips the first path component). UUIDs are derived from names
//! ([`super::stable_uuid`]), so importing again updates in place. The
//! database's password never enters the bundle: its URI carries Superset's
//! mask and the password goes in the import call's `passwords` field.

use indexmap::IndexMap;
use serde_json::{Value, json};

use super::spec::{Chart, Dashboard, Dataset, Kind, NativeFilter};
use super::{SupersetError, stable_uuid};

/// What Superset writes in place of a password in exported URIs.
pub const PASSWORD_MASK: &str = "XXXXXXXXXX";
const VERSION: &str = "1.0.0";
const ROOT: &str = "dp_dashboards";

/// The PostgreSQL database the datasets live in, as Superset connects to it.
#[derive(Debug, Clone)]
pub struct Database {
    /// Superset's database name (unique in a Superset).
    pub name: String,
    pub host: String,
    pub port: u16,
    pub dbname: String,
    pub user: String,
    /// Whether the URI carries the password mask (a password is passed at import).
    pub has_password: bool,
    pub sslmode: Option<String>,
}

impl Database {
    pub fn uri(&self) -> String {
        // RFC 3986 unreserved characters stay, everything else is %XX.
        let enc = |s: &str| {
            s.bytes().map(|b| if b.is_ascii_alphanumeric() || b"-._~".contains(&b) { (b as char).to_string() } else { format!("%{b:02X}") }).collect::<String>()
        };
        let auth = if self.has_password { format!("{}:{PASSWORD_MASK}", enc(&self.user)) } else { enc(&self.user) };
        let ssl = match self.sslmode.as_deref() {
            Some(m) if m != "prefer" => format!("?sslmode={m}"),
            _ => String::new(),
        };
        format!("postgresql+psycopg2://{auth}@{}:{}/{}{ssl}", self.host, self.port, enc(&self.dbname))
    }

    /// The bundle path whose password the import's `passwords` field sets.
    pub fn file(&self) -> String {
        format!("databases/{}.yaml", file_stem(&self.name))
    }
}

/// The bundle's files (path inside the root folder → YAML text), in order.
#[derive(Debug, Clone)]
pub struct Bundle {
    pub files: IndexMap<String, String>,
    pub dashboards: usize,
    pub charts: usize,
    /// Every dataset's `schema.table`.
    pub tables: Vec<String>,
}

/// Which `type` metadata.yaml declares: `Dashboard` for Superset's
/// dashboard import (what `dp superset export` writes), `assets` for
/// `/api/v1/assets/import/`, which overwrites datasets and charts too (the
/// dashboard import keeps existing charts as they are).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BundleType {
    Dashboard,
    Assets,
}

fn file_stem(name: &str) -> String {
    let s: String = name.chars().map(|c| if c.is_ascii_alphanumeric() || c == '-' { c.to_ascii_lowercase() } else { '_' }).collect();
    s.trim_matches('_').to_string()
}

fn yaml(v: &Value) -> Result<String, SupersetError> {
    serde_yaml_ng::to_string(v).map_err(|e| SupersetError::Other(format!("writing YAML: {e}")))
}

fn or_null(s: &str) -> Value {
    if s.is_empty() { Value::Null } else { Value::String(s.to_string()) }
}

/// Builds the bundle's files.
pub fn build(dashboards: &[Dashboard], db: &Database) -> Result<Bundle, SupersetError> {
    let mut files = IndexMap::new();
    files.insert("metadata.yaml".to_string(), metadata(BundleType::Dashboard));
    let db_uuid = stable_uuid("database", &db.name);
    files.insert(
        db.file(),
        yaml(&json!({
            "database_name": db.name,
            "sqlalchemy_uri": db.uri(),
            "cache_timeout": null,
            "expose_in_sqllab": true,
            "allow_run_async": false,
            "allow_ctas": false,
            "allow_cvas": false,
            "allow_dml": false,
            "allow_csv_upload": false,
            "extra": {"allows_virtual_table_explore": true},
            "uuid": db_uuid.to_string(),
            "version": VERSION,
        }))?,
    );

    // One Superset dataset per table, shared by the dashboards using it.
    let mut datasets: IndexMap<String, Dataset> = IndexMap::new();
    for d in dashboards {
        for ds in &d.datasets {
            match datasets.get_mut(&ds.key()) {
                None => {
                    datasets.insert(ds.key(), ds.clone());
                }
                Some(prev) => {
                    for (k, m) in &ds.metrics {
                        prev.metrics.entry(k.clone()).or_insert_with(|| m.clone());
                    }
                    for t in &ds.temporal {
                        if !prev.temporal.contains(t) {
                            prev.temporal.push(t.clone());
                        }
                    }
                    prev.time_column = prev.time_column.clone().or(ds.time_column.clone());
                }
            }
        }
    }
    for ds in datasets.values() {
        files.insert(format!("datasets/{}/{}.yaml", file_stem(&db.name), file_stem(&ds.key())), yaml(&dataset(ds, db))?);
    }

    let mut charts = 0;
    for d in dashboards {
        for c in &d.charts {
            let ds = &datasets[&d.datasets[c.dataset].key()];
            files.insert(format!("charts/{}__{}.yaml", file_stem(&d.slug), file_stem(&c.name)), yaml(&chart(d, c, ds, db))?);
            charts += 1;
        }
        files.insert(format!("dashboards/{}.yaml", file_stem(&d.slug)), yaml(&dashboard(d, db))?);
    }
    Ok(Bundle { files, dashboards: dashboards.len(), charts, tables: datasets.keys().cloned().collect() })
}

fn metadata(t: BundleType) -> String {
    let kind = match t {
        BundleType::Dashboard => "Dashboard",
        BundleType::Assets => "assets",
    };
    format!("version: {VERSION}\ntype: {kind}\n")
}

fn dataset_uuid(db: &Database, key: &str) -> String {
    stable_uuid("dataset", &format!("{}/{key}", db.name)).to_string()
}

fn chart_uuid(d: &Dashboard, c: &Chart) -> String {
    stable_uuid("chart", &format!("{}/{}", d.slug, c.name)).to_string()
}

fn dataset(ds: &Dataset, db: &Database) -> Value {
    let columns: Vec<Value> = ds
        .table
        .columns
        .iter()
        .map(|(name, (desc, ty))| {
            json!({
                "column_name": name,
                "verbose_name": null,
                "is_dttm": ds.temporal.contains(name),
                "is_active": true,
                "type": ty.as_deref().map(str::to_ascii_uppercase),
                "advanced_data_type": null,
                "groupby": true,
                "filterable": true,
                "expression": null,
                "description": or_null(desc),
                "python_date_format": null,
                "extra": {},
            })
        })
        .collect();
    let metrics: Vec<Value> = ds
        .metrics
        .values()
        .map(|m| {
            json!({
                "metric_name": m.name,
                "verbose_name": m.label,
                "metric_type": null,
                "expression": m.expression,
                "description": or_null(&m.description),
                "d3format": m.format,
                "extra": {},
                "warning_text": null,
            })
        })
        .collect();
    json!({
        "table_name": ds.table.name,
        "main_dttm_col": ds.time_column,
        "description": or_null(&ds.table.description),
        "default_endpoint": null,
        "offset": 0,
        "cache_timeout": null,
        "schema": ds.table.schema,
        "sql": null,
        "params": null,
        "template_params": null,
        "filter_select_enabled": true,
        "fetch_values_predicate": null,
        "extra": null,
        "normalize_columns": false,
        "always_filter_main_dttm": false,
        "uuid": dataset_uuid(db, &ds.key()),
        "metrics": metrics,
        "columns": columns,
        "version": VERSION,
        "database_uuid": stable_uuid("database", &db.name).to_string(),
    })
}

/// A chart's filters as form_data `adhoc_filters`: its own, plus the time
/// range on the dataset's time column that the dashboard's time filter sets.
fn adhoc_filters(c: &Chart, ds: &Dataset) -> Vec<Value> {
    let mut out = vec![];
    if let Some(tc) = &ds.time_column {
        out.push(json!({
            "clause": "WHERE",
            "subject": tc,
            "operator": "TEMPORAL_RANGE",
            "comparator": "No filter",
            "expressionType": "SIMPLE",
        }));
    }
    for (i, f) in c.filters.iter().enumerate() {
        out.push(json!({
            "clause": "WHERE",
            "subject": f.column,
            "operator": f.op,
            "operatorId": operator_id(&f.op),
            "comparator": f.value,
            "expressionType": "SIMPLE",
            "isExtra": false,
            "isNew": false,
            "sqlExpression": null,
            "filterOptionName": format!("filter_{}_{i}", &stable_uuid("filter", &format!("{}/{}", c.name, f.column)).simple().to_string()[..8]),
        }));
    }
    out
}

fn operator_id(op: &str) -> &'static str {
    match op {
        "==" => "EQUALS",
        "!=" => "NOT_EQUALS",
        ">" => "GREATER_THAN",
        ">=" => "GREATER_THAN_OR_EQUAL",
        "<" => "LESS_THAN",
        "<=" => "LESS_THAN_OR_EQUAL",
        "IN" => "IN",
        "NOT IN" => "NOT_IN",
        "IS NULL" => "IS_NULL",
        "IS NOT NULL" => "IS_NOT_NULL",
        "LIKE" => "LIKE",
        _ => "ILIKE",
    }
}

/// The same filters as a query object's `filters` (for `query_context`).
fn query_filters(c: &Chart, ds: &Dataset) -> Vec<Value> {
    let mut out = vec![];
    if let Some(tc) = &ds.time_column {
        out.push(json!({"col": tc, "op": "TEMPORAL_RANGE", "val": "No filter"}));
    }
    for f in &c.filters {
        if f.op.starts_with("IS ") {
            out.push(json!({"col": f.column, "op": f.op}));
        } else {
            out.push(json!({"col": f.column, "op": f.op, "val": f.value}));
        }
    }
    out
}

/// form_data (`params`) and the query (`query_context`) of one chart, as
/// Superset's own explore view saves them for its viz type.
fn chart(d: &Dashboard, c: &Chart, ds: &Dataset, db: &Database) -> Value {
    let viz = c.kind.viz_type();
    let filters = adhoc_filters(c, ds);
    let number_format =
        c.format.clone().or_else(|| c.metrics.first().and_then(|m| ds.metrics.get(m)).and_then(|m| m.format.clone())).unwrap_or_else(|| "SMART_NUMBER".into());
    let mut params = json!({
        "viz_type": viz,
        "adhoc_filters": filters,
        "time_range": "No filter",
        "extra_form_data": {},
        "dashboards": [],
    });
    let p = params.as_object_mut().expect("object");
    let base_query = json!({
        "filters": query_filters(c, ds),
        "extras": {"having": "", "where": ""},
        "applied_time_extras": {},
        "annotation_layers": [],
        "url_params": {},
        "custom_params": {},
        "custom_form_data": {},
    });
    let mut query = base_query.as_object().expect("object").clone();
    match c.kind {
        Kind::BigNumber => {
            p.insert("metric".into(), json!(c.metrics[0]));
            p.insert("header_font_size".into(), json!(0.4));
            p.insert("subheader_font_size".into(), json!(0.15));
            p.insert("subheader".into(), json!(""));
            p.insert("y_axis_format".into(), json!(number_format));
            p.insert("time_format".into(), json!("smart_date"));
            query.insert("columns".into(), json!([]));
            query.insert("metrics".into(), json!([c.metrics[0]]));
            query.insert("orderby".into(), json!([]));
        }
        Kind::Pie => {
            let m = &c.metrics[0];
            p.insert("groupby".into(), json!(c.group_by));
            p.insert("metric".into(), json!(m));
            p.insert("row_limit".into(), json!(c.limit.unwrap_or(100)));
            p.insert("sort_by_metric".into(), json!(true));
            p.insert("color_scheme".into(), json!("supersetColors"));
            p.insert("show_labels_threshold".into(), json!(5));
            p.insert("show_legend".into(), json!(true));
            p.insert("legendType".into(), json!("scroll"));
            p.insert("legendOrientation".into(), json!("top"));
            p.insert("label_type".into(), json!("key_percent"));
            p.insert("number_format".into(), json!(number_format));
            p.insert("date_format".into(), json!("smart_date"));
            p.insert("show_labels".into(), json!(true));
            p.insert("labels_outside".into(), json!(true));
            p.insert("outerRadius".into(), json!(70));
            p.insert("donut".into(), json!(true));
            p.insert("innerRadius".into(), json!(40));
            p.insert("show_total".into(), json!(true));
            query.insert("columns".into(), json!(c.group_by));
            query.insert("metrics".into(), json!([m]));
            query.insert("orderby".into(), json!([[m, false]]));
            query.insert("row_limit".into(), json!(c.limit.unwrap_or(100)));
        }
        Kind::Line | Kind::Bar | Kind::Area => {
            let x = c.x.clone().unwrap_or_default();
            p.insert("x_axis".into(), json!(x));
            if let Some(g) = &c.time_grain {
                p.insert("time_grain_sqla".into(), json!(g));
            }
            p.insert("metrics".into(), json!(c.metrics));
            p.insert("groupby".into(), json!(c.group_by));
            p.insert("order_desc".into(), json!(true));
            p.insert("row_limit".into(), json!(c.limit.unwrap_or(10000)));
            p.insert("truncate_metric".into(), json!(true));
            p.insert("show_empty_columns".into(), json!(true));
            p.insert("comparison_type".into(), json!("values"));
            p.insert("annotation_layers".into(), json!([]));
            p.insert("color_scheme".into(), json!("supersetColors"));
            p.insert("show_legend".into(), json!(true));
            p.insert("legendType".into(), json!("scroll"));
            p.insert("legendOrientation".into(), json!("top"));
            p.insert("rich_tooltip".into(), json!(true));
            p.insert("tooltipTimeFormat".into(), json!("smart_date"));
            p.insert("x_axis_time_format".into(), json!("smart_date"));
            p.insert("y_axis_format".into(), json!(number_format));
            p.insert("truncateYAxis".into(), json!(false));
            p.insert("y_axis_bounds".into(), json!([null, null]));
            p.insert("zoomable".into(), json!(false));
            p.insert("sort_series_type".into(), json!("sum"));
            if c.time_grain.is_none() {
                p.insert("x_axis_sort_asc".into(), json!(true));
                p.insert("x_axis_sort_series".into(), json!("name"));
                p.insert("x_axis_sort_series_ascending".into(), json!(true));
            }
            match c.kind {
                Kind::Bar => {
                    p.insert("orientation".into(), json!("vertical"));
                    p.insert("show_value".into(), json!(false));
                }
                Kind::Area => {
                    p.insert("opacity".into(), json!(0.2));
                    p.insert("markerEnabled".into(), json!(false));
                    p.insert("seriesType".into(), json!("line"));
                }
                _ => {
                    p.insert("seriesType".into(), json!("line"));
                    p.insert("markerEnabled".into(), json!(true));
                    p.insert("markerSize".into(), json!(4));
                }
            }
            if c.stacked {
                p.insert("stack".into(), json!("Stack"));
                p.insert("only_total".into(), json!(true));
            }
            let axis = match &c.time_grain {
                Some(g) => json!({"timeGrain": g, "columnType": "BASE_AXIS", "sqlExpression": x, "label": x, "expressionType": "SQL"}),
                None => json!(x),
            };
            let mut columns = vec![axis];
            columns.extend(c.group_by.iter().map(|g| json!(g)));
            query.insert("columns".into(), json!(columns));
            query.insert("metrics".into(), json!(c.metrics));
            query.insert("orderby".into(), json!([[c.metrics[0], false]]));
            query.insert("series_columns".into(), json!(c.group_by));
            query.insert("series_limit".into(), json!(0));
            query.insert("order_desc".into(), json!(true));
            query.insert("row_limit".into(), json!(c.limit.unwrap_or(10000)));
            query.insert("time_offsets".into(), json!([]));
        }
        Kind::Table => {
            p.insert("row_limit".into(), json!(c.limit.unwrap_or(1000)));
            p.insert("server_page_length".into(), json!(10));
            p.insert("table_timestamp_format".into(), json!("smart_date"));
            p.insert("show_cell_bars".into(), json!(true));
            p.insert("color_pn".into(), json!(true));
            p.insert("include_search".into(), json!(false));
            p.insert("percent_metrics".into(), json!([]));
            p.insert("temporal_columns_lookup".into(), json!({}));
            query.insert("row_limit".into(), json!(c.limit.unwrap_or(1000)));
            if !c.columns.is_empty() {
                p.insert("query_mode".into(), json!("raw"));
                p.insert("all_columns".into(), json!(c.columns));
                p.insert("groupby".into(), json!([]));
                p.insert("metrics".into(), json!([]));
                let order: Vec<Value> = c.order_by.iter().map(|(col, asc)| json!(serde_json::to_string(&json!([col, asc])).unwrap_or_default())).collect();
                p.insert("order_by_cols".into(), json!(order));
                query.insert("columns".into(), json!(c.columns));
                query.insert("orderby".into(), json!(c.order_by.iter().map(|(col, asc)| json!([col, asc])).collect::<Vec<_>>()));
            } else {
                p.insert("query_mode".into(), json!("aggregate"));
                p.insert("groupby".into(), json!(c.group_by));
                p.insert("metrics".into(), json!(c.metrics));
                p.insert("all_columns".into(), json!([]));
                p.insert("show_totals".into(), json!(false));
                let (om, asc) = c.order_by.clone().unwrap_or_else(|| (c.metrics[0].clone(), false));
                p.insert("timeseries_limit_metric".into(), json!(om));
                p.insert("order_desc".into(), json!(!asc));
                query.insert("columns".into(), json!(c.group_by));
                query.insert("metrics".into(), json!(c.metrics));
                query.insert("orderby".into(), json!([[om, asc]]));
            }
        }
    }
    let mut form_data = params.clone();
    // Superset sets `datasource` (id__table) in params and query_context at import.
    form_data["datasource"] = json!("");
    let query_context = json!({
        "datasource": {"id": 0, "type": "table"},
        "force": false,
        "queries": [Value::Object(query)],
        "form_data": form_data,
        "result_format": "json",
        "result_type": "full",
    });
    json!({
        "slice_name": c.name,
        "description": or_null(&c.description),
        "certified_by": null,
        "certification_details": null,
        "viz_type": viz,
        "params": params,
        "query_context": serde_json::to_string(&query_context).unwrap_or_default(),
        "cache_timeout": null,
        "uuid": chart_uuid(d, c),
        "version": VERSION,
        "dataset_uuid": dataset_uuid(db, &ds.key()),
    })
}

fn dashboard(d: &Dashboard, db: &Database) -> Value {
    let mut position = serde_json::Map::new();
    position.insert("DASHBOARD_VERSION_KEY".into(), json!("v2"));
    position.insert("ROOT_ID".into(), json!({"type": "ROOT", "id": "ROOT_ID", "children": ["GRID_ID"]}));
    position.insert("HEADER_ID".into(), json!({"type": "HEADER", "id": "HEADER_ID", "meta": {"text": d.title}}));
    let rows: Vec<String> = (0..d.layout.len()).map(|i| format!("ROW-{}", i + 1)).collect();
    position.insert("GRID_ID".into(), json!({"type": "GRID", "id": "GRID_ID", "children": rows, "parents": ["ROOT_ID"]}));
    for (r, row) in d.layout.iter().enumerate() {
        let row_id = &rows[r];
        let ids: Vec<String> = row.iter().map(|&i| format!("CHART-{}", i + 1)).collect();
        position.insert(
            row_id.clone(),
            json!({"type": "ROW", "id": row_id, "children": ids, "parents": ["ROOT_ID", "GRID_ID"], "meta": {"background": "BACKGROUND_TRANSPARENT"}}),
        );
        for (&i, id) in row.iter().zip(&ids) {
            let c = &d.charts[i];
            let height = if c.kind == Kind::BigNumber { 25 } else { 50 };
            position.insert(
                id.clone(),
                json!({
                    "type": "CHART",
                    "id": id,
                    "children": [],
                    "parents": ["ROOT_ID", "GRID_ID", row_id],
                    "meta": {"width": c.width, "height": height, "chartId": i + 1, "uuid": chart_uuid(d, c), "sliceName": c.name},
                }),
            );
        }
    }
    let filters: Vec<Value> = d
        .filters
        .iter()
        .map(|f| {
            let (name, kind, targets, control) = match f {
                NativeFilter::Time { name } => (name, "filter_time", json!([{}]), json!({})),
                NativeFilter::Select { name, dataset, column } => (
                    name,
                    "filter_select",
                    json!([{"datasetUuid": dataset_uuid(db, &d.datasets[*dataset].key()), "column": {"name": column}}]),
                    json!({"enableEmptyFilter": false, "defaultToFirstItem": false, "multiSelect": true, "searchAllOptions": false, "inverseSelection": false}),
                ),
            };
            let id = format!("NATIVE_FILTER-{}", &stable_uuid("filter", &format!("{}/{name}", d.slug)).simple().to_string()[..10]);
            json!({
                "id": id,
                "name": name,
                "filterType": kind,
                "targets": targets,
                "controlValues": control,
                "defaultDataMask": {"extraFormData": {}, "filterState": {}, "ownState": {}},
                "cascadeParentIds": [],
                "scope": {"rootPath": ["ROOT_ID"], "excluded": []},
                "type": "NATIVE_FILTER",
                "description": "",
            })
        })
        .collect();
    json!({
        "dashboard_title": d.title,
        "description": or_null(&d.description),
        "css": "",
        "slug": d.slug,
        "certified_by": null,
        "certification_details": null,
        "published": true,
        "uuid": stable_uuid("dashboard", &d.slug).to_string(),
        "position": position,
        "metadata": {
            "color_scheme": "supersetColors",
            "refresh_frequency": 0,
            "expanded_slices": {},
            "label_colors": {},
            "shared_label_colors": [],
            "color_scheme_domain": [],
            "timed_refresh_immune_slices": [],
            "cross_filters_enabled": true,
            "default_filters": "{}",
            "chart_configuration": {},
            "native_filter_configuration": filters,
        },
        "version": VERSION,
    })
}

impl Bundle {
    /// The ZIP Superset imports, with metadata.yaml declaring `t`.
    pub fn zip(&self, t: BundleType) -> Vec<u8> {
        let entries: Vec<(String, Vec<u8>)> = self
            .files
            .iter()
            .map(|(path, text)| {
                let body = if path == "metadata.yaml" { metadata(t) } else { text.clone() };
                (format!("{ROOT}/{path}"), body.into_bytes())
            })
            .collect();
        stored_zip(&entries)
    }
}

/// A ZIP archive of uncompressed ("stored") entries with UTF-8 names and a
/// fixed date (1980-01-01), so the same files give the same bytes. A bundle
/// is a few hundred kB of YAML: compression would not pay for a dependency.
pub fn stored_zip(entries: &[(String, Vec<u8>)]) -> Vec<u8> {
    const UTF8_NAMES: u16 = 0x0800;
    const DATE_1980_01_01: u16 = (1 << 5) | 1;
    let mut out: Vec<u8> = Vec::new();
    let mut central: Vec<u8> = Vec::new();
    let u16le = |v: &mut Vec<u8>, x: u16| v.extend_from_slice(&x.to_le_bytes());
    let u32le = |v: &mut Vec<u8>, x: u32| v.extend_from_slice(&x.to_le_bytes());
    for (name, data) in entries {
        let crc = crc32fast::hash(data);
        let offset = out.len() as u32;
        // Local file header.
        u32le(&mut out, 0x0403_4b50);
        for x in [20, UTF8_NAMES, 0, 0, DATE_1980_01_01] {
            u16le(&mut out, x);
        }
        for x in [crc, data.len() as u32, data.len() as u32] {
            u32le(&mut out, x);
        }
        u16le(&mut out, name.len() as u16);
        u16le(&mut out, 0);
        out.extend_from_slice(name.as_bytes());
        out.extend_from_slice(data);
        // Its central directory record.
        u32le(&mut central, 0x0201_4b50);
        for x in [20, 20, UTF8_NAMES, 0, 0, DATE_1980_01_01] {
            u16le(&mut central, x);
        }
        for x in [crc, data.len() as u32, data.len() as u32] {
            u32le(&mut central, x);
        }
        for x in [name.len() as u16, 0, 0, 0, 0] {
            u16le(&mut central, x);
        }
        u32le(&mut central, 0);
        u32le(&mut central, offset);
        central.extend_from_slice(name.as_bytes());
    }
    let cd_offset = out.len() as u32;
    let cd_size = central.len() as u32;
    out.extend_from_slice(&central);
    // End of central directory.
    u32le(&mut out, 0x0605_4b50);
    for x in [0, 0, entries.len() as u16, entries.len() as u16] {
        u16le(&mut out, x);
    }
    u32le(&mut out, cd_size);
    u32le(&mut out, cd_offset);
    u16le(&mut out, 0);
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_stored_zip_has_local_headers_a_central_directory_and_an_end_record() {
        let z = stored_zip(&[("r/a.yaml".into(), b"a: 1\n".to_vec())]);
        assert_eq!(&z[..4], b"PK\x03\x04");
        assert_eq!(&z[30..38], b"r/a.yaml");
        assert_eq!(&z[38..43], b"a: 1\n");
        assert_eq!(u32::from_le_bytes(z[14..18].try_into().unwrap()), crc32fast::hash(b"a: 1\n"));
        assert_eq!(&z[43..47], b"PK\x01\x02");
        let end = z.len() - 22;
        assert_eq!(&z[end..end + 4], b"PK\x05\x06");
        assert_eq!(u16::from_le_bytes(z[end + 10..end + 12].try_into().unwrap()), 1);
        assert_eq!(u32::from_le_bytes(z[end + 16..end + 20].try_into().unwrap()), 43);
    }

    #[test]
    fn the_uri_masks_the_password_and_encodes_names() {
        let db = Database {
            name: "dp_demo".into(),
            host: "pg".into(),
            port: 5432,
            dbname: "my db".into(),
            user: "u@x".into(),
            has_password: true,
            sslmode: Some("require".into()),
        };
        assert_eq!(db.uri(), "postgresql+psycopg2://u%40x:XXXXXXXXXX@pg:5432/my%20db?sslmode=require");
        assert_eq!(db.file(), "databases/dp_demo.yaml");
    }
}
