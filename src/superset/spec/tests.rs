use super::*;

fn tables() -> HashMap<String, Table> {
    let mut t = Table { schema: "marts".into(), name: "mart_daily_summary".into(), description: "Daily KPIs.".into(), columns: IndexMap::new() };
    for (c, d) in [("order_day", "Calendar day."), ("revenue", "Revenue."), ("order_count", "Orders."), ("is_weekend", "Weekend.")] {
        t.columns.insert(c.into(), (d.into(), None));
    }
    HashMap::from([("mart_daily_summary".to_string(), t)])
}

fn parse(text: &str) -> Result<Dashboard, String> {
    parse_file(Path::new("dashboards/d.yml"), text, &tables()).map_err(|e| e.to_string())
}

const HEAD: &str = "dashboard: Daily\ndatasets:\n  - model: mart_daily_summary\n    time_column: order_day\ncharts:\n";

#[test]
fn a_dashboard_resolves_metrics_and_columns() {
    let d = parse(&format!(
        "{HEAD}  - name: Revenue\n    type: big_number\n    metric: sum(revenue)\n  - name: Daily\n    type: line\n    x: order_day\n    time_grain: week\n    metrics: [sum(revenue), count]\nlayout:\n  - [Revenue]\n  - [Daily]\n"
    ))
    .unwrap();
    assert_eq!(d.slug, "daily");
    assert_eq!(d.charts[0].metrics, ["sum__revenue"]);
    assert_eq!(d.charts[1].time_grain.as_deref(), Some("P1W"));
    assert_eq!(d.charts[0].width, 12);
    let m = &d.datasets[0].metrics["sum__revenue"];
    assert_eq!((m.expression.as_str(), m.description.as_str()), ("SUM(revenue)", "Sum of revenue: Revenue."));
    assert_eq!(d.datasets[0].metrics.keys().collect::<Vec<_>>(), ["count", "sum__revenue"]);
}

#[test]
fn bad_input_names_the_file_line_and_what_to_do() {
    let e = parse("dashboard: D\ndatasets:\n  - model: mart_daily_sumary\ncharts: []\n").unwrap_err();
    assert_eq!(
        e,
        "dashboards/d.yml:3: unknown model 'mart_daily_sumary' (did you mean 'mart_daily_summary'?)\n  hint: datasets name a model of this project (`dp ls --resource-type model`), or `table: schema.name` with `columns:`"
    );
    let e = parse(&format!("{HEAD}  - name: A\n    type: big_number\n    metric: sum(revenu)\n")).unwrap_err();
    assert_eq!(
        e,
        "dashboards/d.yml:8: metric sum(revenu): unknown column 'revenu' of marts.mart_daily_summary (did you mean 'revenue'?)\n  hint: use a column documented in model 'mart_daily_summary' (its YAML): order_day, revenue, order_count, is_weekend"
    );
    let e = parse(&format!("{HEAD}  - name: A\n    type: big_numbr\n    metric: count\n")).unwrap_err();
    assert_eq!(
        e,
        "dashboards/d.yml:7: chart 'A': unknown chart type 'big_numbr' (did you mean 'big_number'?)\n  hint: use one of: big_number, line, bar, area, pie, table"
    );
    let e = parse(&format!("{HEAD}  - name: A\n    type: bar\n    x: day\n    metrics: [count]\n")).unwrap_err();
    assert!(e.starts_with("dashboards/d.yml:8: chart 'A': unknown column 'day' of marts.mart_daily_summary"), "{e}");
    let e = parse(&format!("{HEAD}  - name: A\n    type: line\n    x: is_weekend\n    metrics: [count]\n")).unwrap_err();
    assert!(e.starts_with("dashboards/d.yml:6: chart 'A' (line): x 'is_weekend' is not a time column"), "{e}");
    let e = parse(&format!("{HEAD}  - name: A\n    type: pie\n    metric: count\n    group_by: [is_weekend]\nlayout:\n  - [B]\n")).unwrap_err();
    assert!(e.starts_with("dashboards/d.yml:11: layout names chart 'B', which is not defined"), "{e}");
    let e = parse(&format!("{HEAD}  - name: A\n    type: table\n    colums: [revenue]\n")).unwrap_err();
    assert!(e.starts_with("dashboards/d.yml:8: charts[0]: unknown field `colums`"), "{e}");
}

#[test]
fn files_sharing_a_table_share_its_metrics_but_not_a_name_with_two_meanings() {
    let metric = |sql: &str| {
        format!(
            "dashboard: {{}}\ndatasets:\n  - model: mart_daily_summary\n    metrics:\n      - name: aov\n        sql: {sql}\ncharts:\n  - {{name: A, type: big_number, metric: aov}}\n"
        )
    };
    let fs = crate::fs::MemFs::new()
        .with("dashboards/a.yml", &metric("SUM(revenue)").replace("{}", "A"))
        .with("dashboards/b.yml", &metric("SUM(revenue)").replace("{}", "B"));
    assert_eq!(load(&fs, &tables()).unwrap().len(), 2);
    let fs = fs.with("dashboards/b.yml", &metric("AVG(revenue)").replace("{}", "B"));
    assert_eq!(
        load(&fs, &tables()).unwrap_err().to_string(),
        "dashboards/b.yml:5: metric 'aov' of marts.mart_daily_summary is `AVG(revenue)` here but `SUM(revenue)` in dashboards/a.yml\n  hint: both dashboards share one Superset dataset: give the metrics different names or the same SQL"
    );
    let fs = fs.with("dashboards/b.yml", &metric("SUM(revenue)").replace("{}", "A"));
    assert!(load(&fs, &tables()).unwrap_err().to_string().starts_with("dashboards/b.yml:1: dashboard 'A' (slug 'a') is also defined in dashboards/a.yml"));
}
