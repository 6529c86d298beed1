//! The docs site in a real headless Chromium (Debian's `chromium`, which
//! scripts/test.sh installs): search finds a model, its page shows its
//! columns, the lineage graph renders; on the demo (served by `dp docs
//! serve`) and on the 10,000-model synthetic project of benches/compile.rs
//! (opened from disk), where page load and search must take under a second.

use crate::common::*;
use std::io::BufRead;
use std::path::PathBuf;
use std::time::Instant;

#[path = "../../benches/synthetic/mod.rs"]
mod synthetic;

/// The Chromium binary; `None` (skip) unless CI=true, where it must exist.
fn chromium() -> Option<PathBuf> {
    let found = ["chromium", "chromium-browser", "google-chrome"]
        .iter()
        .find_map(|b| std::env::var_os("PATH").and_then(|paths| std::env::split_paths(&paths).map(|d| d.join(b)).find(|p| p.is_file())));
    if found.is_none() {
        assert!(std::env::var("CI").as_deref() != Ok("true"), "CI=true but chromium is not installed (scripts/test.sh installs it)");
        eprintln!("skipping: chromium is not installed");
    }
    found
}

/// The DOM after the page's scripts ran (and the data they load).
fn dump_dom(chrome: &PathBuf, url: &str) -> (String, f64) {
    let profile = tempfile::tempdir().unwrap();
    let t = Instant::now();
    let o = std::process::Command::new(chrome)
        .args(["--headless", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage", "--allow-file-access-from-files", "--no-first-run"])
        .arg(format!("--user-data-dir={}", profile.path().display()))
        .args(["--dump-dom", url])
        .output()
        .unwrap();
    let secs = t.elapsed().as_secs_f64();
    let dom = String::from_utf8_lossy(&o.stdout).into_owned();
    assert!(dom.contains("<body"), "chromium printed no DOM for {url}:\n{}", String::from_utf8_lossy(&o.stderr));
    (dom, secs)
}

/// `data-<name>="<value>"` of the body.
fn body_attr(dom: &str, name: &str) -> Option<f64> {
    let key = format!("data-{name}=\"");
    let at = dom.find(&key)? + key.len();
    dom[at..].split('"').next()?.parse().ok()
}

/// Asserts search found `model`, the page shows `columns`, the graph drew
/// the node and its neighbours; returns (load ms, search ms).
fn check_page(dom: &str, model_uid: &str, name: &str, columns: &[&str]) -> (f64, f64) {
    assert!(dom.contains("data-ready=\"1\""), "the page did not finish rendering:\n{dom}");
    let results = dom.split("<nav id=\"results\"").nth(1).unwrap().split("</nav>").next().unwrap();
    assert!(results.contains(&format!("title=\"{model_uid}\"")), "search did not find {model_uid}:\n{results}");
    let table = dom.split("<table id=\"columns\"").nth(1).unwrap_or_else(|| panic!("no columns table:\n{dom}"));
    for c in columns {
        assert!(table.contains(&format!("<b>{c}</b>")), "column {c} missing from the page of {name}");
    }
    let graph = dom.split("<div id=\"graph\"").nth(1).unwrap().split("</svg>").next().unwrap();
    assert!(graph.contains(&format!("class=\"gnode model cur\" data-uid=\"{model_uid}\"")), "the graph does not show {model_uid}:\n{graph}");
    assert!(graph.matches("class=\"gnode").count() >= 3 && graph.contains("class=\"gedge\""), "the graph has no neighbours:\n{graph}");
    (body_attr(dom, "load-ms").unwrap(), body_attr(dom, "search-ms").unwrap())
}

#[test]
#[ignore = "needs Chromium: run by scripts/test.sh"]
fn docs_site_in_chromium_on_the_demo() {
    let Some(chrome) = chromium() else { return };
    let dir = demo_project();
    let p = dir.path();
    copy_tree(&repo().join("dashboards"), &p.join("dashboards"));
    demo_generate(p, "0.01");
    ok(&run(p, &["docs", "generate"]));
    let mut child = dp().current_dir(p).args(["docs", "serve", "--port", "0"]).stderr(std::process::Stdio::piped()).spawn().unwrap();
    let line = std::io::BufReader::new(child.stderr.take().unwrap()).lines().next().unwrap().unwrap();
    let base = line.split(" on ").nth(1).unwrap().split_whitespace().next().unwrap().to_string();
    let (dom, _) = dump_dom(&chrome, &format!("{base}#q=fct_ord&node=model.dp_demo.fct_orders"));
    // Lineage across systems: the mart feeds a Superset dashboard (3 hops:
    // dataset, chart, dashboard), and the dashboard's page draws the mart upstream.
    let (mart, _) = dump_dom(&chrome, &format!("{base}#node=model.dp_demo.mart_daily_summary&depth=3"));
    let (dash, _) = dump_dom(&chrome, &format!("{base}#node=dashboard:Daily%20Operations&depth=3"));
    let (bronze, _) = dump_dom(&chrome, &format!("{base}#node=source.dp_demo.raw.orders&depth=2"));
    child.kill().unwrap();
    let _ = child.wait();
    check_page(&dom, "model.dp_demo.fct_orders", "fct_orders", &["order_id", "customer_id", "total_amount"]);
    // Column descriptions, tests and column lineage are on the page.
    assert!(dom.contains("<span class=\"test\">unique</span>") && dom.contains("<span class=\"test\">not_null</span>"), "no tests shown");
    assert!(dom.contains("intermediate.int_customer_orders</a>.order_id"), "no column lineage shown");

    let graph = |dom: &str| dom.split("<div id=\"graph\"").nth(1).unwrap().split("</svg>").next().unwrap().to_string();
    let g = graph(&mart);
    assert!(g.contains("class=\"gnode superset_dashboard\" data-uid=\"dashboard:Daily Operations\""), "no dashboard downstream of the mart:\n{g}");
    assert!(g.contains("class=\"gnode superset_dataset\" data-uid=\"dataset:marts.mart_daily_summary\""), "{g}");
    assert!(g.contains("class=\"gnode superset_chart\" data-uid=\"chart:Daily Operations/Revenue\""), "{g}");
    let g = graph(&dash);
    assert!(dash.contains("data-ready=\"1\""), "the dashboard page did not render:\n{dash}");
    assert!(g.contains("class=\"gnode superset_dashboard cur\" data-uid=\"dashboard:Daily Operations\""), "{g}");
    assert!(g.contains("class=\"gnode model\" data-uid=\"model.dp_demo.mart_daily_summary\""), "the mart is not upstream of the dashboard:\n{g}");
    assert!(dash.contains("<b>Revenue</b>") && dash.contains("chart:Daily Operations/Revenue</a>.sum__revenue"), "the dashboard's charts are not its columns");
    // A source ingested from PostgreSQL: its bronze prefix and the shop's table upstream.
    let g = graph(&bronze);
    assert!(g.contains("class=\"gnode bronze\" data-uid=\"bronze:bronze/postgres/orders/*/orders.parquet\""), "{g}");
    assert!(g.contains("class=\"gnode postgres_table\" data-uid=\"postgres://"), "{g}");
}

#[test]
#[ignore = "needs Chromium: run by scripts/test.sh"]
fn docs_site_in_chromium_at_10000_models() {
    let Some(chrome) = chromium() else { return };
    // DP_TEST_KEEP=<dir> keeps the generated project there (to measure it).
    let dir = tempfile::tempdir().unwrap();
    let keep = std::env::var_os("DP_TEST_KEEP").map(PathBuf::from);
    let p = keep.as_deref().unwrap_or(dir.path());
    synthetic::generate(p, 10_000);
    // Small files for its five sources, so every model plans.
    let copies: Vec<String> = (0..synthetic::SOURCES)
        .map(|s| {
            format!(
                "COPY (SELECT CAST(i AS BIGINT) AS id, 'shipped' AS status, CAST(i * 100 AS BIGINT) AS amount_cents, 'a' AS col_a, 'b' AS col_b, 'c' AS col_c, \
                 CAST('2024-06-01' AS TIMESTAMP) AS updated_at, false AS is_deleted FROM (VALUES (1), (2), (3)) t(i)) TO 'data/src_{s}/part.parquet'"
            )
        })
        .collect();
    for s in 0..synthetic::SOURCES {
        std::fs::create_dir_all(p.join(format!("data/src_{s}"))).unwrap();
    }
    ok(&run(p, &["sql", "-e", &copies.join(";\n")]));
    let t = Instant::now();
    let o = run(p, &["docs", "generate"]);
    ok(&o);
    eprintln!("dp docs generate (10,000 models, this build's profile): {:.1}s", t.elapsed().as_secs_f64());
    let index = p.join("target/docs/index.html");
    // A mart deep in the graph: its page, columns and neighbourhood.
    let uid = "model.bench.fct_02999";
    let url = format!("file://{}#q=fct_02999&node={uid}", index.display());
    let (dom, secs) = dump_dom(&chrome, &url);
    let (load, search) = check_page(&dom, uid, "fct_02999", &["id", "status", "row_count"]);
    eprintln!("10,000 models: page load {load:.0} ms, search {search:.1} ms, node page {:?} ms, whole chromium run {secs:.1}s", body_attr(&dom, "node-ms"));
    assert!(load < 1000.0, "page load took {load} ms");
    assert!(search < 1000.0, "search took {search} ms");
    // A staging model with hundreds of dependants: the graph stays small.
    let (dom, _) = dump_dom(&chrome, &format!("file://{}#q=stg_00001&node=model.bench.stg_00001", index.display()));
    let graph = dom.split("<div id=\"graph\"").nth(1).unwrap().split("</svg>").next().unwrap();
    assert!(graph.matches("class=\"gnode").count() <= 5 * 26, "the graph draws too much");
}
