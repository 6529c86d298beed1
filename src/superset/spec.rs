//! The `dashboards/*.yml` format, read and checked against the project's
//! models (I/O-free: the files come through [`FileSystem`], the models as
//! [`Table`]s). One file per dashboard:
//!
//! ```yaml
//! dashboard: Customer Insights
//! datasets:
//!   - model: mart_customer_analytics      # or table: schema.name + columns:
//!     time_column: signed_up_at
//!     metrics: [{name: aov, sql: "SUM(a) / SUM(b)", label: ..., description: ...}]
//! filters:
//!   - {name: Signed up, type: time}
//!   - {name: Segment, column: customer_segment}
//! charts:
//!   - {name: Customers, type: big_number, metric: count}
//!   - {name: By segment, type: pie, metric: count, group_by: [customer_segment]}
//! layout:
//!   - [Customers, By segment]
//! ```

use std::collections::HashMap;
use std::path::{Path, PathBuf};

use indexmap::IndexMap;
use serde::Deserialize;

use super::SupersetError;
use crate::fs::FileSystem;

/// A relation a dataset can point at: a model, or a table declared in the
/// dashboard file.
#[derive(Debug, Clone, Default)]
pub struct Table {
    pub schema: String,
    pub name: String,
    pub description: String,
    /// Column name → (description, declared type).
    pub columns: IndexMap<String, (String, Option<String>)>,
}

/// Every model of the project by name (for datasets' `model:`).
pub fn project_tables(project: &crate::project::load::Project) -> HashMap<String, Table> {
    use crate::project::nodes::ResourceType;
    let root = &project.settings.project_name;
    let mut out: HashMap<String, Table> = HashMap::new();
    for n in project.nodes.values().filter(|n| matches!(n.resource_type, ResourceType::Model | ResourceType::Seed | ResourceType::Snapshot)) {
        // The root project's model wins over a package's of the same name.
        if out.contains_key(&n.name) && &n.package_name != root {
            continue;
        }
        let columns = n.columns.values().map(|c| (c.name.clone(), (c.description.trim().to_string(), c.data_type.clone()))).collect();
        out.insert(n.name.clone(), Table { schema: n.schema.clone(), name: n.alias.clone(), description: n.description.trim().to_string(), columns });
    }
    out
}

/// The chart types dp writes, with Superset's `viz_type` for each.
pub const CHART_TYPES: &[(&str, &str)] = &[
    ("big_number", "big_number_total"),
    ("line", "echarts_timeseries_line"),
    ("bar", "echarts_timeseries_bar"),
    ("area", "echarts_area"),
    ("pie", "pie"),
    ("table", "table"),
];

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    BigNumber,
    Line,
    Bar,
    Area,
    Pie,
    Table,
}

impl Kind {
    fn parse(s: &str) -> Option<Kind> {
        let k = match CHART_TYPES.iter().find(|(a, v)| *a == s || *v == s)?.0 {
            "big_number" => Kind::BigNumber,
            "line" => Kind::Line,
            "bar" => Kind::Bar,
            "area" => Kind::Area,
            "pie" => Kind::Pie,
            _ => Kind::Table,
        };
        Some(k)
    }

    pub fn viz_type(self) -> &'static str {
        let i = match self {
            Kind::BigNumber => 0,
            Kind::Line => 1,
            Kind::Bar => 2,
            Kind::Area => 3,
            Kind::Pie => 4,
            Kind::Table => 5,
        };
        CHART_TYPES[i].1
    }
}

/// A metric as a chart names it: `count`, `sum(col)` (also avg, min, max,
/// count, count_distinct) or a dataset metric's name. Each becomes a saved
/// metric of the dataset.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Metric {
    /// The saved metric's name (`count`, `sum__revenue`, or the custom name).
    pub name: String,
    pub expression: String,
    pub label: String,
    pub description: String,
    pub format: Option<String>,
}

#[derive(Debug, Clone)]
pub struct Dataset {
    pub table: Table,
    /// The model it was named by (None: a table declared in the file).
    pub model: Option<String>,
    pub time_column: Option<String>,
    /// Columns used on a time axis (shown as temporal in Superset).
    pub temporal: Vec<String>,
    /// Saved metrics: `count` first, then custom ones, then the charts' aggregates.
    pub metrics: IndexMap<String, Metric>,
}

impl Dataset {
    pub fn key(&self) -> String {
        format!("{}.{}", self.table.schema, self.table.name)
    }
}

#[derive(Debug, Clone, PartialEq)]
pub struct Filter {
    pub column: String,
    /// Superset's operator: ==, !=, >, >=, <, <=, IN, NOT IN, IS NULL, IS NOT NULL.
    pub op: String,
    pub value: serde_json::Value,
}

#[derive(Debug, Clone)]
pub struct Chart {
    pub name: String,
    pub line: usize,
    pub kind: Kind,
    pub description: String,
    /// Index into the dashboard's datasets.
    pub dataset: usize,
    /// Saved metric names.
    pub metrics: Vec<String>,
    pub x: Option<String>,
    /// ISO 8601 duration of the time grain (P1D, P1W, P1M, P3M, P1Y, PT1H) when `x` is temporal.
    pub time_grain: Option<String>,
    pub group_by: Vec<String>,
    /// A raw table's columns.
    pub columns: Vec<String>,
    pub filters: Vec<Filter>,
    /// Column or metric, and ascending.
    pub order_by: Option<(String, bool)>,
    pub limit: Option<usize>,
    pub stacked: bool,
    pub format: Option<String>,
    /// Width in Superset's 12-column grid.
    pub width: usize,
}

#[derive(Debug, Clone)]
pub enum NativeFilter {
    Time { name: String },
    Select { name: String, dataset: usize, column: String },
}

#[derive(Debug, Clone)]
pub struct Dashboard {
    pub file: PathBuf,
    pub title: String,
    pub slug: String,
    pub description: String,
    pub datasets: Vec<Dataset>,
    pub filters: Vec<NativeFilter>,
    pub charts: Vec<Chart>,
    /// Rows of indexes into `charts`.
    pub layout: Vec<Vec<usize>>,
}

// ---- the file as written ----

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawFile {
    dashboard: String,
    #[serde(default)]
    slug: Option<String>,
    #[serde(default)]
    description: String,
    datasets: Vec<RawDataset>,
    #[serde(default)]
    filters: Vec<RawNativeFilter>,
    charts: Vec<RawChart>,
    #[serde(default)]
    layout: Option<Vec<Vec<String>>>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawDataset {
    #[serde(default)]
    model: Option<String>,
    #[serde(default)]
    table: Option<String>,
    #[serde(default)]
    description: Option<String>,
    #[serde(default)]
    time_column: Option<String>,
    #[serde(default)]
    columns: Vec<RawColumn>,
    #[serde(default)]
    metrics: Vec<RawMetric>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawColumn {
    name: String,
    #[serde(default, rename = "type")]
    data_type: Option<String>,
    #[serde(default)]
    description: String,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawMetric {
    name: String,
    sql: String,
    #[serde(default)]
    label: Option<String>,
    #[serde(default)]
    description: String,
    #[serde(default)]
    format: Option<String>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawNativeFilter {
    name: String,
    #[serde(default, rename = "type")]
    kind: Option<String>,
    #[serde(default)]
    column: Option<String>,
    #[serde(default)]
    dataset: Option<String>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawChart {
    name: String,
    #[serde(rename = "type")]
    kind: String,
    #[serde(default)]
    description: String,
    #[serde(default)]
    dataset: Option<String>,
    #[serde(default)]
    metric: Option<String>,
    #[serde(default)]
    metrics: Vec<String>,
    #[serde(default)]
    x: Option<String>,
    #[serde(default)]
    time_grain: Option<String>,
    #[serde(default)]
    group_by: Vec<String>,
    #[serde(default)]
    columns: Vec<String>,
    #[serde(default)]
    filters: Vec<RawFilter>,
    #[serde(default)]
    order_by: Option<String>,
    #[serde(default)]
    limit: Option<usize>,
    #[serde(default)]
    stacked: bool,
    #[serde(default)]
    format: Option<String>,
    #[serde(default)]
    width: Option<usize>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawFilter {
    column: String,
    #[serde(default = "default_op")]
    op: String,
    #[serde(default)]
    value: serde_json::Value,
}

fn default_op() -> String {
    "==".into()
}

const OPS: &[&str] = &["==", "!=", ">", ">=", "<", "<=", "IN", "NOT IN", "IS NULL", "IS NOT NULL", "LIKE", "ILIKE"];
const GRAINS: &[(&str, &str)] = &[("hour", "PT1H"), ("day", "P1D"), ("week", "P1W"), ("month", "P1M"), ("quarter", "P3M"), ("year", "P1Y")];
const AGGREGATES: &[&str] = &["sum", "avg", "min", "max", "count", "count_distinct"];

/// Reads and checks every `dashboards/*.yml` (none: an empty list).
pub fn load(fs: &dyn FileSystem, tables: &HashMap<String, Table>) -> Result<Vec<Dashboard>, SupersetError> {
    let files = fs.list_files("dashboards", &[".yml", ".yaml"]).map_err(|e| SupersetError::Other(format!("listing dashboards/: {e}")))?;
    let mut out: Vec<Dashboard> = vec![];
    for f in files {
        let text = fs.read_to_string(&f).map_err(|e| SupersetError::Other(format!("reading {f}: {e}")))?;
        if text.trim().is_empty() {
            continue;
        }
        let d = parse_file(Path::new(&f), &text, tables)?;
        let ctx = Ctx { file: Path::new(&f), text: &text };
        if let Some(prev) = out.iter().find(|p| p.title == d.title || p.slug == d.slug) {
            return Err(ctx.err(
                ctx.key_line(1, "dashboard"),
                format!("dashboard '{}' (slug '{}') is also defined in {}", d.title, d.slug, prev.file.display()),
                "give each dashboard its own title (and slug)",
            ));
        }
        check_shared_datasets(&out, &d, &ctx)?;
        out.push(d);
    }
    Ok(out)
}

/// Two files may use the same table, but not with different custom metrics
/// of the same name (they become one Superset dataset).
fn check_shared_datasets(prev: &[Dashboard], d: &Dashboard, ctx: &Ctx) -> Result<(), SupersetError> {
    for ds in &d.datasets {
        for m in ds.metrics.values() {
            let other = prev.iter().find_map(|p| {
                let o = p.datasets.iter().find(|o| o.key() == ds.key())?.metrics.get(&m.name)?;
                (o.expression != m.expression).then_some((o, p))
            });
            if let Some((o, p)) = other {
                return Err(ctx.err(
                    ctx.find_line(1, &format!("name: {}", m.name)),
                    format!("metric '{}' of {} is `{}` here but `{}` in {}", m.name, ds.key(), m.expression, o.expression, p.file.display()),
                    "both dashboards share one Superset dataset: give the metrics different names or the same SQL",
                ));
            }
        }
    }
    Ok(())
}

struct Ctx<'a> {
    file: &'a Path,
    text: &'a str,
}

impl Ctx<'_> {
    fn err(&self, line: usize, message: impl Into<String>, hint: impl Into<String>) -> SupersetError {
        SupersetError::Definition { file: self.file.to_path_buf(), line, message: message.into(), hint: hint.into() }
    }

    /// The first line at or after `from` (1-based) containing `needle`; `from` when none.
    fn find_line(&self, from: usize, needle: &str) -> usize {
        self.text.lines().enumerate().skip(from.saturating_sub(1)).find(|(_, l)| l.contains(needle)).map(|(i, _)| i + 1).unwrap_or(from)
    }

    /// The line of `key:` at or after `from`.
    fn key_line(&self, from: usize, key: &str) -> usize {
        let prefix = format!("{key}:");
        self.text
            .lines()
            .enumerate()
            .skip(from.saturating_sub(1))
            .find(|(_, l)| {
                let t = l.trim_start().trim_start_matches("- ").trim_start_matches('{').trim_start();
                t.starts_with(&prefix)
            })
            .map(|(i, _)| i + 1)
            .unwrap_or(from)
    }
}

fn did_you_mean<'a>(name: &str, options: impl IntoIterator<Item = &'a String>) -> String {
    let best = options.into_iter().map(|o| (strsim::jaro_winkler(name, o), o)).filter(|(s, _)| *s > 0.8).max_by(|a, b| a.0.total_cmp(&b.0));
    best.map(|(_, o)| format!(" (did you mean '{o}'?)")).unwrap_or_default()
}

fn slugify(title: &str) -> String {
    let mut s = String::new();
    for c in title.chars() {
        if c.is_ascii_alphanumeric() {
            s.push(c.to_ascii_lowercase());
        } else if !s.ends_with('-') {
            s.push('-');
        }
    }
    s.trim_matches('-').to_string()
}

/// Parses and checks one dashboard file.
pub fn parse_file(file: &Path, text: &str, tables: &HashMap<String, Table>) -> Result<Dashboard, SupersetError> {
    let ctx = Ctx { file, text };
    let raw: RawFile = crate::util::yaml::from_str(text).map_err(|e| {
        let line = e.find("line ").and_then(|i| e[i + 5..].split(|c: char| !c.is_ascii_digit()).next()).and_then(|n| n.parse().ok()).unwrap_or(1);
        ctx.err(line, e, "a dashboard file holds `dashboard:` (its title), `datasets:`, `charts:` and optionally `filters:` and `layout:`; see README, \"Superset dashboards\"")
    })?;
    let names = crate::util::yaml::NameIndex::new(text);
    if raw.datasets.is_empty() {
        return Err(ctx.err(ctx.key_line(1, "datasets"), "no datasets", "name at least one dp model: `datasets: [{model: mart_daily_summary}]`"));
    }
    let mut datasets = vec![];
    let mut cursor = ctx.key_line(1, "datasets");
    for rd in &raw.datasets {
        let ds = dataset(&ctx, rd, tables, &mut cursor)?;
        if datasets.iter().any(|d: &Dataset| d.key() == ds.key()) {
            return Err(ctx.err(cursor, format!("dataset {} is listed twice", ds.key()), "list each model once"));
        }
        datasets.push(ds);
    }
    let dataset_of = |datasets: &[Dataset], name: &Option<String>, line: usize| -> Result<usize, SupersetError> {
        let Some(n) = name else { return Ok(0) };
        datasets.iter().position(|d| d.model.as_deref() == Some(n) || d.key() == *n || d.table.name == *n).ok_or_else(|| {
            let known: Vec<String> = datasets.iter().map(|d| d.model.clone().unwrap_or_else(|| d.key())).collect();
            ctx.err(
                ctx.find_line(line, n),
                format!("dataset '{n}' is not one of this dashboard's datasets{}", did_you_mean(n, &known)),
                format!("use one of: {}", known.join(", ")),
            )
        })
    };

    let mut filters = vec![];
    let mut fcursor = ctx.key_line(1, "filters");
    for f in &raw.filters {
        let line = names.after(&f.name, fcursor).unwrap_or(fcursor);
        fcursor = line;
        match (f.kind.as_deref(), &f.column) {
            (Some("time"), None) => {
                if !datasets.iter().any(|d| d.time_column.is_some()) {
                    return Err(ctx.err(line, format!("time filter '{}' but no dataset has a time_column", f.name), "set `time_column:` on a dataset"));
                }
                filters.push(NativeFilter::Time { name: f.name.clone() });
            }
            (None | Some("select"), Some(col)) => {
                let ds = dataset_of(&datasets, &f.dataset, line)?;
                check_column(&ctx, &datasets[ds], col, line, "filter")?;
                filters.push(NativeFilter::Select { name: f.name.clone(), dataset: ds, column: col.clone() });
            }
            (Some(k), _) if k != "time" && k != "select" => {
                return Err(ctx.err(
                    ctx.find_line(line, k),
                    format!("filter '{}' has unknown type '{k}'", f.name),
                    "use `type: time` (a date range) or `column: <name>` (a value picker)",
                ));
            }
            _ => {
                return Err(ctx.err(
                    line,
                    format!("filter '{}' needs either `type: time` or `column:`", f.name),
                    "`{name: Date, type: time}` or `{name: Segment, column: customer_segment}`",
                ));
            }
        }
    }

    let mut charts: Vec<Chart> = vec![];
    let mut ccursor = ctx.key_line(1, "charts");
    for rc in &raw.charts {
        let line = names.after(&rc.name, ccursor).unwrap_or(ccursor);
        ccursor = line;
        if charts.iter().any(|c| c.name == rc.name) {
            return Err(ctx.err(
                line,
                format!("chart '{}' is defined twice", rc.name),
                "chart names are unique within a dashboard (they name the chart in Superset)",
            ));
        }
        let ds = dataset_of(&datasets, &rc.dataset, line)?;
        let c = chart(&ctx, rc, line, ds, &mut datasets[ds])?;
        charts.push(c);
    }
    if charts.is_empty() {
        return Err(ctx.err(ctx.key_line(1, "charts"), "no charts", "add at least one chart under `charts:`"));
    }

    let layout = match &raw.layout {
        None => (0..charts.len()).collect::<Vec<_>>().chunks(2).map(|c| c.to_vec()).collect(),
        Some(rows) => {
            let lline = ctx.key_line(1, "layout");
            let mut placed = vec![false; charts.len()];
            let mut out = vec![];
            for row in rows {
                let mut r = vec![];
                for n in row {
                    let l = ctx.find_line(lline, n);
                    let Some(i) = charts.iter().position(|c| &c.name == n) else {
                        let known: Vec<String> = charts.iter().map(|c| c.name.clone()).collect();
                        return Err(ctx.err(
                            l,
                            format!("layout names chart '{n}', which is not defined{}", did_you_mean(n, &known)),
                            "the layout lists the names of charts under `charts:`",
                        ));
                    };
                    if placed[i] {
                        return Err(ctx.err(l, format!("chart '{n}' is placed twice in the layout"), "place each chart once"));
                    }
                    placed[i] = true;
                    r.push(i);
                }
                if r.len() > 4 {
                    return Err(ctx.err(
                        ctx.find_line(lline, &row[0]),
                        format!("a layout row holds {} charts", r.len()),
                        "at most 4 charts per row (Superset's grid is 12 columns wide)",
                    ));
                }
                if !r.is_empty() {
                    out.push(r);
                }
            }
            if let Some(i) = placed.iter().position(|p| !p) {
                return Err(ctx.err(charts[i].line, format!("chart '{}' is not in the layout", charts[i].name), "add its name to a row under `layout:`"));
            }
            out
        }
    };
    for row in &layout {
        let explicit: usize = row.iter().filter_map(|&i| raw.charts[i].width).sum();
        let auto = row.iter().filter(|&&i| raw.charts[i].width.is_none()).count();
        let each = 12usize.saturating_sub(explicit).checked_div(auto).unwrap_or(0);
        for &i in row {
            charts[i].width = raw.charts[i].width.unwrap_or(each.max(1));
        }
        let total: usize = row.iter().map(|&i| charts[i].width).sum();
        if total > 12 {
            let c = &charts[row[0]];
            return Err(ctx.err(c.line, format!("the layout row of '{}' is {total} columns wide", c.name), "widths in a row add up to at most 12"));
        }
    }

    let slug = raw.slug.clone().unwrap_or_else(|| slugify(&raw.dashboard));
    Ok(Dashboard { file: file.to_path_buf(), title: raw.dashboard, slug, description: raw.description.trim().to_string(), datasets, filters, charts, layout })
}

fn dataset(ctx: &Ctx, rd: &RawDataset, tables: &HashMap<String, Table>, cursor: &mut usize) -> Result<Dataset, SupersetError> {
    let (mut table, model) = match (&rd.model, &rd.table) {
        (Some(m), None) => {
            let line = ctx.find_line(*cursor, &format!("model: {m}"));
            *cursor = line;
            let Some(t) = tables.get(m) else {
                let known: Vec<String> = tables.keys().cloned().collect();
                return Err(ctx.err(
                    line,
                    format!("unknown model '{m}'{}", did_you_mean(m, &known)),
                    "datasets name a model of this project (`dp ls --resource-type model`), or `table: schema.name` with `columns:`",
                ));
            };
            if !rd.columns.is_empty() {
                return Err(ctx.err(
                    ctx.key_line(line, "columns"),
                    format!("`columns:` on model '{m}'"),
                    "a model's columns (and their descriptions) come from its YAML; list them there",
                ));
            }
            if t.columns.is_empty() {
                return Err(ctx.err(
                    line,
                    format!("model '{m}' documents no columns"),
                    format!("list its columns (with descriptions) in the model's YAML, e.g. models/…/_models.yml under `- name: {m}`"),
                ));
            }
            (t.clone(), Some(m.clone()))
        }
        (None, Some(t)) => {
            let line = ctx.find_line(*cursor, &format!("table: {t}"));
            *cursor = line;
            let Some((schema, name)) = t.split_once('.') else {
                return Err(ctx.err(line, format!("table '{t}' has no schema"), "write `table: schema.name`, e.g. marts.platform_health_metrics"));
            };
            if rd.columns.is_empty() {
                return Err(ctx.err(
                    line,
                    format!("table '{t}' lists no columns"),
                    "a table that is not a dp model declares its columns: `columns: [{name: ..., type: ..., description: ...}]`",
                ));
            }
            let columns = rd.columns.iter().map(|c| (c.name.clone(), (c.description.trim().to_string(), c.data_type.clone()))).collect();
            (Table { schema: schema.into(), name: name.into(), description: String::new(), columns }, None)
        }
        _ => return Err(ctx.err(*cursor, "a dataset needs exactly one of `model:` and `table:`", "e.g. `- model: mart_daily_summary`")),
    };
    if let Some(d) = &rd.description {
        table.description = d.trim().to_string();
    }
    let mut ds = Dataset { table, model, time_column: None, temporal: vec![], metrics: IndexMap::new() };
    if let Some(tc) = &rd.time_column {
        let line = ctx.find_line(*cursor, "time_column:");
        check_column(ctx, &ds, tc, line, "time_column")?;
        ds.time_column = Some(tc.clone());
        ds.temporal.push(tc.clone());
    }
    ds.metrics.insert(
        "count".into(),
        Metric { name: "count".into(), expression: "COUNT(*)".into(), label: "Rows".into(), description: "Number of rows.".into(), format: None },
    );
    for m in &rd.metrics {
        let line = ctx.find_line(*cursor, &format!("name: {}", m.name));
        if ds.metrics.contains_key(&m.name) {
            return Err(ctx.err(line, format!("metric '{}' is defined twice", m.name), "give each metric its own name"));
        }
        if parse_aggregate(&m.name).is_some() || !m.name.chars().all(|c| c.is_ascii_alphanumeric() || c == '_') {
            return Err(ctx.err(
                line,
                format!("metric name '{}' is not a plain name", m.name),
                "name custom metrics with letters, digits and _ (e.g. avg_order_value)",
            ));
        }
        ds.metrics.insert(
            m.name.clone(),
            Metric {
                name: m.name.clone(),
                expression: m.sql.trim().to_string(),
                label: m.label.clone().unwrap_or_else(|| m.name.clone()),
                description: m.description.trim().to_string(),
                format: m.format.clone(),
            },
        );
    }
    Ok(ds)
}

fn check_column(ctx: &Ctx, ds: &Dataset, col: &str, near: usize, what: &str) -> Result<(), SupersetError> {
    if ds.table.columns.contains_key(col) {
        return Ok(());
    }
    let line = ctx.find_line(near, col);
    let known: Vec<String> = ds.table.columns.keys().cloned().collect();
    let source = match &ds.model {
        Some(m) => format!("model '{m}' (its YAML)"),
        None => format!("table {} (its `columns:`)", ds.key()),
    };
    Err(ctx.err(
        line,
        format!("{what}: unknown column '{col}' of {}{}", ds.key(), did_you_mean(col, &known)),
        format!("use a column documented in {source}: {}", known.join(", ")),
    ))
}

mod chart;
use chart::{chart, parse_aggregate};

#[cfg(test)]
mod tests;
