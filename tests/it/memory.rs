//! Bigger than memory: under a tiny `--memory-limit` the demo's joins,
//! aggregations and sorts spill to disk, and every model holds the same
//! rows as without a limit.

use crate::common::*;
use std::path::Path;

const MODELS: [&str; 13] = [
    "staging.stg_customers",
    "staging.stg_orders",
    "staging.stg_products",
    "staging.stg_transactions",
    "intermediate.int_customer_orders",
    "intermediate.int_daily_aggregates",
    "intermediate.int_product_sales",
    "marts.dim_customers",
    "marts.dim_products",
    "marts.fct_orders",
    "marts.mart_customer_analytics",
    "marts.mart_daily_summary",
    "marts.mart_product_analytics",
];

/// Every row of a relation as CSV lines, sorted (row order is not part of
/// a table's contents); floats rounded to 9 significant digits, since a
/// sum's last bits depend on the order rows were added in.
fn rows(dir: &Path, relation: &str) -> Vec<String> {
    let o = run(dir, &["sql", "--format", "csv", "-e", &format!("select * from {relation}")]);
    ok(&o);
    let mut lines: Vec<String> = stdout(&o)
        .lines()
        .skip(1)
        .map(|l| {
            l.split(',')
                .map(|c| match c.parse::<f64>() {
                    Ok(v) if c.contains('.') || c.contains('e') => format!("{v:.9e}"),
                    _ => c.to_string(),
                })
                .collect::<Vec<_>>()
                .join(",")
        })
        .collect();
    lines.sort();
    lines
}

#[test]
fn a_tiny_memory_limit_spills_and_builds_the_same_rows() {
    let dir = demo_project();
    let p = dir.path();
    demo_generate(p, "0.2");
    ok(&run(p, &["seed"]));
    ok(&run(p, &["run"]));
    let unlimited: Vec<Vec<String>> = MODELS.iter().map(|m| rows(p, m)).collect();
    assert!(unlimited.iter().all(|r| !r.is_empty()), "a model is empty");

    let spill = tempfile::tempdir().unwrap();
    // one model at a time: concurrent models share the 16 MB pool, and a sort
    // that finds it taken by its neighbours fails instead of spilling
    let o = dp().current_dir(p).env("DP_SPILL_DIR", spill.path()).args(["run", "--full-refresh", "--memory-limit", "16MB", "--threads", "1"]).output().unwrap();
    ok(&o);
    let err = stderr(&o);
    assert!(err.contains("Done. PASS=13 WARN=0 ERROR=0 SKIP=0 NO-OP=0 TOTAL=13"), "{err}");
    let line = err.lines().find(|l| l.contains("Queries spilled")).unwrap_or_else(|| panic!("nothing spilled:\n{err}"));
    assert!(line.contains("(memory limit 16.0 MB)"), "{line}");
    // Spill files are gone once the run ends.
    let left: Vec<_> = walk(spill.path());
    assert!(left.is_empty(), "spill files left behind: {left:?}");

    for (m, want) in MODELS.iter().zip(&unlimited) {
        let got = rows(p, m);
        assert_eq!(got.len(), want.len(), "{m}: row count changed under the memory limit");
        assert!(got == *want, "{m}: rows changed under the memory limit");
    }
}

#[test]
fn the_target_sets_the_memory_limit_and_a_bad_one_is_an_error() {
    let dir = project(&[
        ("warehouse.toml", "[project]\nname = \"p\"\n[models]\nmaterialized = \"table\"\n[targets.dev]\nmemory_limit = \"lots\"\n"),
        ("models/a.sql", "select 1 as id"),
    ]);
    let p = dir.path();
    let o = run(p, &["run"]);
    assert_eq!(o.status.code(), Some(1));
    assert!(stderr(&o).contains("target 'dev': memory_limit: 'lots' is not a size; use e.g. 2GB or 512MB"), "{}", stderr(&o));
    // The flag wins over the target.
    ok(&run(p, &["run", "--memory-limit", "64MB"]));
    let o = run(p, &["run", "--memory-limit", "0"]);
    assert_eq!(o.status.code(), Some(1));
    assert!(stderr(&o).contains("the memory limit must be more than 0 bytes"), "{}", stderr(&o));
}

fn walk(dir: &Path) -> Vec<std::path::PathBuf> {
    let mut out = vec![];
    for e in std::fs::read_dir(dir).unwrap().flatten() {
        if e.path().is_dir() {
            out.extend(walk(&e.path()));
        } else {
            out.push(e.path());
        }
    }
    out
}

/// The session reads `DATAFUSION_*` environment variables as datafusion-cli
/// does; dp's own default for partial aggregation applies unless one sets
/// it; a value DataFusion rejects stops the command with the cause.
#[test]
fn datafusion_environment_variables_configure_the_session() {
    let dir = project(&[("warehouse.toml", "[project]\nname = \"p\"\n")]);
    let setting = |name: &str, env: &[(&str, &str)]| {
        let q = format!("select value from information_schema.df_settings where name = 'datafusion.{name}'");
        let o = dp().current_dir(dir.path()).envs(env.iter().copied()).args(["sql", "--format", "csv", "-e", &q]).output().unwrap();
        ok(&o);
        stdout(&o)
    };
    let ratio = "execution.skip_partial_aggregation_probe_ratio_threshold";
    assert_eq!(setting(ratio, &[]), "value\n0.25\n");
    assert_eq!(setting(ratio, &[("DATAFUSION_EXECUTION_SKIP_PARTIAL_AGGREGATION_PROBE_RATIO_THRESHOLD", "0.8")]), "value\n0.8\n");
    assert_eq!(setting("execution.batch_size", &[("DATAFUSION_EXECUTION_BATCH_SIZE", "4096")]), "value\n4096\n");

    let o = dp().current_dir(dir.path()).env("DATAFUSION_EXECUTION_BATCH_SIZE", "lots").args(["sql", "-e", "select 1"]).output().unwrap();
    assert_eq!(o.status.code(), Some(1));
    let err = stderr(&o);
    assert!(err.contains("a DATAFUSION_* environment variable has a value DataFusion does not accept"), "{err}");
    assert!(err.contains("hint: fix or unset it"), "{err}");
}
