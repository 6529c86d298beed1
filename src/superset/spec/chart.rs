//! A chart's definition checked against its dataset: type, metrics (saved
//! on the dataset as they are used), columns, filters, order.

use super::*;

/// `sum(col)` → ("sum", "col"); `count(*)` → ("count", "*").
pub(super) fn parse_aggregate(s: &str) -> Option<(String, String)> {
    let s = s.trim();
    let open = s.find('(')?;
    let func = s[..open].trim().to_ascii_lowercase();
    let inner = s[open + 1..].strip_suffix(')')?.trim();
    AGGREGATES.contains(&func.as_str()).then(|| (func, inner.to_string()))
}

/// Resolves a chart's metric to a saved metric of the dataset (adding it).
fn metric(ctx: &Ctx, ds: &mut Dataset, m: &str, line: usize) -> Result<String, SupersetError> {
    let m = m.trim();
    if m == "count" || m.eq_ignore_ascii_case("count(*)") {
        return Ok("count".into());
    }
    if let Some((func, col)) = parse_aggregate(m) {
        let l = ctx.find_line(line, m);
        if col == "*" {
            return Err(ctx.err(l, format!("`{m}`: only count takes *"), "write `count` (rows) or an aggregate of a column, e.g. sum(revenue)"));
        }
        check_column(ctx, ds, &col, l, &format!("metric {m}"))?;
        let name = format!("{func}__{col}");
        let (expression, what) = match func.as_str() {
            "count_distinct" => (format!("COUNT(DISTINCT {col})"), "Distinct values of"),
            "sum" => (format!("SUM({col})"), "Sum of"),
            "avg" => (format!("AVG({col})"), "Average of"),
            "min" => (format!("MIN({col})"), "Smallest"),
            "max" => (format!("MAX({col})"), "Largest"),
            _ => (format!("COUNT({col})"), "Non-null values of"),
        };
        let col_desc = ds.table.columns.get(&col).map(|(d, _)| d.clone()).unwrap_or_default();
        let description = if col_desc.is_empty() { format!("{what} {col}.") } else { format!("{what} {col}: {col_desc}") };
        ds.metrics.entry(name.clone()).or_insert(Metric { name: name.clone(), expression: expression.clone(), label: expression, description, format: None });
        return Ok(name);
    }
    if ds.metrics.contains_key(m) {
        return Ok(m.to_string());
    }
    let known: Vec<String> = ds.metrics.keys().cloned().collect();
    let l = ctx.find_line(line, m);
    if ds.table.columns.contains_key(m) {
        return Err(ctx.err(l, format!("metric '{m}' is a column, not a metric"), format!("aggregate it, e.g. sum({m}) or avg({m})")));
    }
    Err(ctx.err(
        l,
        format!("unknown metric '{m}'{}", did_you_mean(m, &known)),
        format!(
            "use count, sum(col), avg(col), min(col), max(col), count_distinct(col), or a metric defined under the dataset's `metrics:` ({})",
            known.join(", ")
        ),
    ))
}

pub(super) fn chart(ctx: &Ctx, rc: &RawChart, line: usize, ds_index: usize, ds: &mut Dataset) -> Result<Chart, SupersetError> {
    let Some(kind) = Kind::parse(&rc.kind) else {
        let known: Vec<String> = CHART_TYPES.iter().map(|(a, _)| a.to_string()).collect();
        return Err(ctx.err(
            ctx.find_line(line, &format!("type: {}", rc.kind)),
            format!("chart '{}': unknown chart type '{}'{}", rc.name, rc.kind, did_you_mean(&rc.kind, &known)),
            format!("use one of: {}", known.join(", ")),
        ));
    };
    let bad = |msg: String, hint: &str| ctx.err(line, format!("chart '{}' ({}): {msg}", rc.name, rc.kind), hint);
    let mut names: Vec<&String> = rc.metric.iter().collect();
    names.extend(rc.metrics.iter());
    if rc.metric.is_some() && !rc.metrics.is_empty() {
        return Err(bad("both `metric:` and `metrics:`".into(), "use one of them"));
    }
    let mut metrics = vec![];
    for m in names {
        metrics.push(metric(ctx, ds, m, line)?);
    }
    for c in rc.group_by.iter().chain(rc.columns.iter()).chain(rc.x.iter()) {
        check_column(ctx, ds, c, line, &format!("chart '{}'", rc.name))?;
    }
    let mut filters = vec![];
    for f in &rc.filters {
        let fl = ctx.find_line(line, &format!("column: {}", f.column));
        check_column(ctx, ds, &f.column, fl, &format!("chart '{}' filter", rc.name))?;
        let op = f.op.trim().to_ascii_uppercase();
        let op = if op == "=" { "==".to_string() } else { op };
        if !OPS.contains(&op.as_str()) {
            return Err(ctx.err(
                ctx.find_line(fl, &f.op),
                format!("chart '{}': unknown filter operator '{}'", rc.name, f.op),
                format!("use one of: {}", OPS.join(", ")),
            ));
        }
        let needs_list = op == "IN" || op == "NOT IN";
        let needs_none = op.starts_with("IS ");
        match (&f.value, needs_list, needs_none) {
            (serde_json::Value::Null, _, true) | (serde_json::Value::Array(_), true, false) => {}
            (serde_json::Value::Null, _, false) => {
                return Err(ctx.err(fl, format!("chart '{}': filter on {} has no value", rc.name, f.column), "add `value:`"));
            }
            (v, false, false) if !v.is_array() && !v.is_object() => {}
            _ => {
                return Err(ctx.err(
                    fl,
                    format!(
                        "chart '{}': filter on {} with {op} takes {}",
                        rc.name,
                        f.column,
                        if needs_list {
                            "a list"
                        } else if needs_none {
                            "no value"
                        } else {
                            "one value"
                        }
                    ),
                    "e.g. {column: region, op: IN, value: [Europe, Asia Pacific]}",
                ));
            }
        }
        filters.push(Filter { column: f.column.clone(), op, value: f.value.clone() });
    }
    let time_grain = match &rc.time_grain {
        None => None,
        Some(g) => match GRAINS.iter().find(|(n, iso)| n == g || iso == g) {
            Some((_, iso)) => Some(iso.to_string()),
            None => {
                let known: Vec<String> = GRAINS.iter().map(|(n, _)| n.to_string()).collect();
                return Err(ctx.err(
                    ctx.find_line(line, "time_grain"),
                    format!("chart '{}': unknown time_grain '{g}'", rc.name),
                    format!("use one of: {}", known.join(", ")),
                ));
            }
        },
    };
    let mut c = Chart {
        name: rc.name.clone(),
        line,
        kind,
        description: rc.description.trim().to_string(),
        dataset: ds_index,
        metrics,
        x: rc.x.clone(),
        time_grain,
        group_by: rc.group_by.clone(),
        columns: rc.columns.clone(),
        filters,
        order_by: None,
        limit: rc.limit,
        stacked: rc.stacked,
        format: rc.format.clone(),
        width: 0,
    };
    match kind {
        Kind::BigNumber => {
            if c.metrics.len() != 1 || c.x.is_some() || !c.group_by.is_empty() || !c.columns.is_empty() {
                return Err(bad("takes exactly one `metric:` and no x, group_by or columns".into(), "e.g. `metric: sum(revenue)`"));
            }
        }
        Kind::Pie => {
            if c.metrics.len() != 1 || c.group_by.len() != 1 || c.x.is_some() {
                return Err(bad("takes one `metric:` and one `group_by:` column".into(), "e.g. `metric: count` and `group_by: [customer_segment]`"));
            }
        }
        Kind::Line | Kind::Bar | Kind::Area => {
            let Some(x) = &c.x else { return Err(bad("needs `x:` (the column on the x axis)".into(), "e.g. `x: order_day` with `time_grain: day`")) };
            if c.metrics.is_empty() {
                return Err(bad("needs `metrics:`".into(), "e.g. `metrics: [sum(revenue)]`"));
            }
            if !c.columns.is_empty() {
                return Err(bad("`columns:` is for tables".into(), "use `group_by:` for one series per value"));
            }
            let temporal = c.time_grain.is_some() || ds.time_column.as_ref() == Some(x);
            if kind != Kind::Bar && !temporal {
                return Err(bad(
                    format!("x '{x}' is not a time column"),
                    "set `time_grain:` (day, week, month, ...) for a time axis, or use a bar chart for categories",
                ));
            }
            if temporal {
                c.time_grain.get_or_insert_with(|| "P1D".into());
                if !ds.temporal.contains(x) {
                    ds.temporal.push(x.clone());
                }
            }
        }
        Kind::Table => {
            let raw = !c.columns.is_empty();
            if raw != c.metrics.is_empty() || c.x.is_some() || (raw && !c.group_by.is_empty()) {
                return Err(bad(
                    "takes either `columns:` (rows as they are) or `metrics:` with optional `group_by:`".into(),
                    "e.g. `columns: [order_day, revenue]` or `group_by: [category]` with `metrics: [sum(net_revenue)]`",
                ));
            }
        }
    }
    if c.time_grain.is_some() && c.x.is_none() {
        return Err(bad("`time_grain:` without `x:`".into(), "set the time column with `x:`"));
    }
    if let Some(ob) = &rc.order_by {
        let ob = ob.trim();
        let (what, asc) = match ob.rsplit_once(' ') {
            Some((w, d)) if d.eq_ignore_ascii_case("desc") => (w.trim(), false),
            Some((w, d)) if d.eq_ignore_ascii_case("asc") => (w.trim(), true),
            _ => (ob, kind != Kind::Table || c.columns.is_empty()),
        };
        let ol = ctx.find_line(line, "order_by");
        if kind == Kind::Table && !c.columns.is_empty() {
            if !c.columns.iter().any(|x| x == what) {
                return Err(ctx.err(
                    ol,
                    format!("chart '{}': order_by '{what}' is not one of its columns", rc.name),
                    format!("order by one of: {}", c.columns.join(", ")),
                ));
            }
            c.order_by = Some((what.to_string(), asc));
        } else {
            let m = metric(ctx, ds, what, ol)?;
            if !c.metrics.contains(&m) {
                return Err(ctx.err(ol, format!("chart '{}': order_by '{what}' is not one of its metrics", rc.name), "order by one of the chart's metrics"));
            }
            c.order_by = Some((m, asc));
        }
    }
    Ok(c)
}
