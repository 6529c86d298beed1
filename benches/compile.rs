//! `dp parse` / `dp compile` on synthetic dbt projects of N models.
//!
//!     cargo bench --bench compile                 # N = 2000 and 10000
//!     cargo bench --bench compile -- 500 2000 10000 --repeat 5
//!
//! Options (after `--`): N values; `--repeat R` (dp runs per measurement, median by wall
//! time, default 3); `--dbt-n N` (the N at which real dbt runs, default 2000); `--no-dbt`;
//! `--dbt-compile` (also time `dbt compile` at that N: slow); `--keep` (keep the generated
//! projects and print where). `DP_BIN` overrides the dp binary, `DBT_BIN` the dbt one
//! (default /work/venv-dbt/bin/dbt, used only when present).
//!
//! The generated project is a plain dbt project (dbt_project.yml + profiles.yml for
//! dbt-duckdb) that dp loads unchanged: N models in three layers (30% staging views over
//! 5 sources, 40% intermediate tables joining two staging models, 30% marts joining two
//! intermediates, every 5th mart incremental with `is_incremental()`), one YAML entry per
//! model with columns and unique / not_null / accepted_values tests, macros called from
//! every model, vars, `{% if %}` / `{% for %}` / `{% set %}` blocks.
//!
//! Baselines: dbt-core 1.11's published figures for N = 10,000 on this 2-core machine
//! (reference numbers, not measured here) and, when dbt is installed, `dbt parse` measured
//! in the same run on the same project. No timing assertion: the target is printed as
//! PASS/MISS only.

mod common;

use common::*;
use std::fmt::Write as _;
use std::path::{Path, PathBuf};

/// dbt-core 1.11 published figures on this machine at N = 10,000 (reference, not measured).
const REF_N: usize = 10_000;
const REF_PARSE_S: f64 = 77.0;
const REF_PARSE_MB: f64 = 850.0;
const REF_COMPILE_S: f64 = 300.0;
const REF_COMPILE_MB: f64 = 1024.0; // "1 GB"
/// The target for `dp compile` at N = 10,000.
const TARGET_COMPILE_S: f64 = 1.0;
const TARGET_COMPILE_MB: f64 = 300.0;

const SOURCES: usize = 5;
const STATUSES: [&str; 4] = ["placed", "shipped", "completed", "returned"];
const MODELS_PER_FOLDER: usize = 100;

struct Opts {
    ns: Vec<usize>,
    repeat: usize,
    dbt_n: usize,
    dbt: bool,
    dbt_compile: bool,
    keep: bool,
}

fn parse_opts() -> Opts {
    let mut o = Opts { ns: vec![], repeat: 3, dbt_n: 2000, dbt: true, dbt_compile: false, keep: false };
    let args = bench_args();
    let mut it = args.iter();
    while let Some(a) = it.next() {
        match a.as_str() {
            "--repeat" => o.repeat = it.next().and_then(|v| v.parse().ok()).expect("--repeat R"),
            "--dbt-n" => o.dbt_n = it.next().and_then(|v| v.parse().ok()).expect("--dbt-n N"),
            "--no-dbt" => o.dbt = false,
            "--dbt-compile" => o.dbt_compile = true,
            "--keep" => o.keep = true,
            s if s.starts_with("--") => eprintln!("compile bench: ignoring unknown option {s}"),
            s => o.ns.push(s.replace(['_', ','], "").parse().unwrap_or_else(|_| panic!("not a model count: {s}"))),
        }
    }
    if o.ns.is_empty() {
        o.ns = vec![2000, 10_000];
    }
    o.repeat = o.repeat.max(1);
    o
}

// ---------------------------------------------------------------------------------------------
// The synthetic project
// ---------------------------------------------------------------------------------------------

struct Layers {
    stg: usize,
    int: usize,
    mart: usize,
}

fn layers(n: usize) -> Layers {
    let n = n.max(3);
    let stg = (n * 3 / 10).max(1);
    let int = (n * 4 / 10).max(1);
    Layers { stg, int, mart: n - stg - int }
}

fn write(path: &Path, text: &str) {
    std::fs::create_dir_all(path.parent().unwrap()).unwrap();
    std::fs::write(path, text).unwrap();
}

fn folder(layer: &str, i: usize) -> String {
    format!("models/{layer}/g{:03}", i / MODELS_PER_FOLDER)
}

/// Writes the project for `n` models into `dir`; returns (models, data tests) counts.
fn generate(dir: &Path, n: usize) -> (usize, usize) {
    let l = layers(n);
    let statuses = STATUSES.iter().map(|s| format!("'{s}'")).collect::<Vec<_>>().join(", ");

    write(
        &dir.join("dbt_project.yml"),
        &format!(
            r#"name: 'bench'
version: '1.0.0'
config-version: 2

profile: 'bench'

model-paths: ["models"]
macro-paths: ["macros"]
seed-paths: ["seeds"]
test-paths: ["tests"]

vars:
  start_date: '2024-01-01'
  status_values: [{statuses}]
  include_deleted: false
  amount_multiplier: 100
  bench:
    currency: 'EUR'

models:
  bench:
    staging:
      +materialized: view
      +schema: staging
      +tags: ['staging']
    intermediate:
      +materialized: table
      +schema: intermediate
      +tags: ['intermediate']
    marts:
      +materialized: table
      +schema: marts
      +tags: ['marts']
"#
        ),
    );
    write(
        &dir.join("profiles.yml"),
        &format!(
            r#"bench:
  target: dev
  outputs:
    dev:
      type: duckdb
      path: "{}/bench.duckdb"
      schema: main
      threads: 2
"#,
            dir.display()
        ),
    );

    write(
        &dir.join("macros/generate_schema_name.sql"),
        r#"{% macro generate_schema_name(custom_schema_name, node) -%}
    {%- if custom_schema_name is none -%}
        {{ target.schema }}
    {%- else -%}
        {{ custom_schema_name | trim }}
    {%- endif -%}
{%- endmacro %}
"#,
    );
    write(
        &dir.join("macros/helpers.sql"),
        r#"{% macro cents_to_dollars(column, scale=2) -%}
    cast({{ column }} / 100.0 as decimal(18, {{ scale }}))
{%- endmacro %}

{% macro clean_string(column) -%}
    lower(trim({{ column }}))
{%- endmacro %}

{% macro safe_divide(numerator, denominator) -%}
    (case when {{ denominator }} is null or {{ denominator }} = 0 then null
          else cast({{ numerator }} as double) / cast({{ denominator }} as double) end)
{%- endmacro %}

{% macro status_rank(column) -%}
    case {{ column }}
    {%- for s in var('status_values') %}
        when '{{ s }}' then {{ loop.index }}
    {%- endfor %}
        else 0
    end
{%- endmacro %}

{% macro amount_by_status(status_column, amount_column) -%}
    {%- for s in var('status_values') %}
    sum(case when {{ status_column }} = '{{ s }}' then {{ amount_column }} else 0 end) as amount_{{ s }}{{ ',' if not loop.last }}
    {%- endfor %}
{%- endmacro %}
"#,
    );

    // Sources (files need not exist for parse / compile).
    let mut y = String::from("version: 2\n\nsources:\n  - name: raw\n    schema: raw\n    tables:\n");
    for s in 0..SOURCES {
        let _ = write!(
            y,
            r#"      - name: src_{s}
        description: Raw extract {s}.
        meta:
          external_location: "data/src_{s}/*.parquet"
        columns:
          - name: id
            data_tests: [unique, not_null]
          - name: status
          - name: amount_cents
          - name: updated_at
"#
        );
    }
    write(&dir.join("models/staging/_sources.yml"), &y);

    let mut tests = SOURCES * 2;
    let mut yml: std::collections::BTreeMap<String, String> = Default::default();
    let mut entry = |folder: String, name: &str, desc: &str, status_col: &str| {
        let y = yml.entry(folder).or_insert_with(|| "version: 2\n\nmodels:\n".into());
        let _ = write!(
            y,
            r#"  - name: {name}
    description: "{desc}"
    columns:
      - name: id
        description: Primary key.
        data_tests:
          - unique
          - not_null
      - name: {status_col}
        description: Order status.
        data_tests:
          - accepted_values:
              arguments:
                values: [{statuses}]
      - name: updated_at
        description: Last change.
"#
        );
        3
    };

    for i in 0..l.stg {
        let name = format!("stg_{i:05}");
        let src = i % SOURCES;
        let tag = if i % 10 == 0 { "\n{{ config(tags=['hot']) }}\n" } else { "" };
        let sql = format!(
            r#"-- staging model {i} over source src_{src}{tag}
{{% set extra_cols = ['a', 'b', 'c'] %}}
with source as (

    select * from {{{{ source('raw', 'src_{src}') }}}}

),

renamed as (

    select
        id,
        {{{{ clean_string('status') }}}} as status,
        {{{{ cents_to_dollars('amount_cents') }}}} as amount,
        {{%- for c in extra_cols %}}
        col_{{{{ c }}}} as {{{{ c }}}}_value,
        {{%- endfor %}}
        updated_at
    from source
    where updated_at >= '{{{{ var("start_date") }}}}'
    {{% if not var('include_deleted') %}}
      and not is_deleted
    {{% endif %}}

)

select * from renamed
"#
        );
        write(&dir.join(folder("staging", i)).join(format!("{name}.sql")), &sql);
        tests += entry(folder("staging", i), &name, &format!("Staging model {i}."), "status");
    }

    for j in 0..l.int {
        let name = format!("int_{j:05}");
        let a = j % l.stg;
        let b = (j * 7 + 3) % l.stg;
        let sql = format!(
            r#"-- intermediate model {j}
with a as (

    select * from {{{{ ref('stg_{a:05}') }}}}

),

b as (

    select id, amount from {{{{ ref('stg_{b:05}') }}}}

)

select
    a.id,
    a.status,
    {{{{ status_rank('a.status') }}}} as status_rank,
    a.amount + coalesce(b.amount, 0) as total_amount,
    {{{{ safe_divide('a.amount', 'b.amount') }}}} as amount_ratio,
    '{{{{ var("currency") }}}}' as currency,
    a.updated_at
from a
left join b on a.id = b.id
{{% if var('amount_multiplier') > 1 %}}
where a.amount * {{{{ var('amount_multiplier') }}}} >= 0
{{% endif %}}
"#
        );
        write(&dir.join(folder("intermediate", j)).join(format!("{name}.sql")), &sql);
        tests += entry(folder("intermediate", j), &name, &format!("Intermediate model {j}."), "status");
    }

    for m in 0..l.mart {
        let name = format!("fct_{m:05}");
        let x = m % l.int;
        let y2 = (m * 13 + 5) % l.int;
        let incremental = m % 5 == 0;
        let config = if incremental {
            "{{\n    config(\n        materialized='incremental',\n        unique_key='id',\n        incremental_strategy='delete+insert'\n    )\n}}\n\n"
        } else {
            ""
        };
        let inc_filter =
            if incremental { "\n{% if is_incremental() %}\nwhere x.updated_at > (select max(updated_at) from {{ this }})\n{% endif %}" } else { "" };
        let sql = format!(
            r#"{config}-- mart model {m}
select
    x.id,
    max(x.status) as status,
    count(*) as row_count,
    sum(y.total_amount) as other_amount,
    {{{{ amount_by_status('x.status', 'x.total_amount') }}}},
    max(x.updated_at) as updated_at
from {{{{ ref('int_{x:05}') }}}} as x
left join {{{{ ref('int_{y2:05}') }}}} as y on x.id = y.id{inc_filter}
group by x.id
"#
        );
        write(&dir.join(folder("marts", m)).join(format!("{name}.sql")), &sql);
        tests += entry(folder("marts", m), &name, &format!("Mart model {m}."), "status");
    }

    for (folder, y) in yml {
        let base = folder.rsplit('/').next().unwrap().to_string();
        write(&dir.join(&folder).join(format!("_{base}__models.yml")), &y);
    }
    (l.stg + l.int + l.mart, tests)
}

// ---------------------------------------------------------------------------------------------
// Running
// ---------------------------------------------------------------------------------------------

fn clean_target(dir: &Path) {
    let _ = std::fs::remove_dir_all(dir.join("target"));
    let _ = std::fs::remove_dir_all(dir.join("logs"));
}

fn run_dp(dp: &Path, dir: &Path, cmd: &str, repeat: usize) -> Measured {
    let runs = (0..repeat)
        .map(|_| {
            clean_target(dir);
            let m = measure(dp, &["--quiet", "--project-dir", dir.to_str().unwrap(), cmd], dir, &[]);
            m.expect_ok(&format!("dp {cmd}"));
            m
        })
        .collect();
    median(runs)
}

fn dbt_bin() -> Option<PathBuf> {
    let p = std::env::var_os("DBT_BIN").map(PathBuf::from).unwrap_or_else(|| "/work/venv-dbt/bin/dbt".into());
    p.is_file().then_some(p)
}

fn run_dbt(dbt: &Path, dir: &Path, cmd: &str) -> Measured {
    clean_target(dir);
    let d = dir.to_str().unwrap();
    let m = measure(
        dbt,
        &[cmd, "--project-dir", d, "--profiles-dir", d, "--no-partial-parse", "--no-send-anonymous-usage-stats", "--quiet"],
        dir,
        &[("DO_NOT_TRACK", "1"), ("DBT_SEND_ANONYMOUS_USAGE_STATS", "false")],
    );
    m.expect_ok(&format!("dbt {cmd}"));
    m
}

/// "dp/base = 0.096 (10.4x faster)" for times, "dp/base = 1.60 (1.60x more)" for memory.
fn ratio(base: f64, x: f64, faster: &str, slower: &str) -> String {
    if !(x > 0.0 && base > 0.0) {
        return "-".into();
    }
    let r = x / base;
    if r <= 1.0 { format!("dp/base = {r:.3} ({:.1}x {faster})", base / x) } else { format!("dp/base = {r:.3} ({r:.2}x {slower})") }
}

fn time_ratio(base: f64, x: f64) -> String {
    ratio(base, x, "faster", "slower")
}

fn mem_ratio(base: f64, x: Option<f64>) -> String {
    x.map(|x| ratio(base, x, "less", "more")).unwrap_or_else(|| "?".into())
}

fn main() {
    if !common::invoked_by_cargo_bench() {
        return;
    }
    let o = parse_opts();
    let dp = dp_binary();
    let root = tempfile::Builder::new().prefix("dp-bench-compile-").tempdir().expect("tempdir");
    let dbt = if o.dbt { dbt_bin() } else { None };
    let mut ns = o.ns.clone();
    if dbt.is_some() && !ns.contains(&o.dbt_n) {
        ns.push(o.dbt_n);
        ns.sort();
    }

    println!("dp compile benchmark");
    println!("  dp binary : {}", dp.display());
    println!("  projects  : {}", root.path().display());
    println!("  machine   : {} CPUs, load average {} (1/5/15 min) at start", cpus(), loadavg());
    println!("  runs      : median of {} per dp measurement (wall time; peak RSS of that run)", o.repeat);
    println!();

    struct Row {
        n: usize,
        tests: usize,
        parse: Measured,
        compile: Measured,
    }
    let mut rows = vec![];
    let mut dbt_rows: Vec<(usize, Measured, &str, Measured)> = vec![];
    for &n in &ns {
        let dir = root.path().join(format!("n{n}"));
        let t = std::time::Instant::now();
        let (models, tests) = generate(&dir, n);
        eprintln!("generated N={models} ({tests} data tests) in {:.2}s", t.elapsed().as_secs_f64());
        let parse = run_dp(&dp, &dir, "parse", o.repeat);
        let compile = run_dp(&dp, &dir, "compile", o.repeat);
        let compiled = walk_count(&dir.join("target/compiled"));
        eprintln!(
            "N={n}: dp parse {:.3}s {} MB, dp compile {:.3}s {} MB ({} compiled files)",
            parse.wall_s,
            fmt_mb(parse.peak_mb),
            compile.wall_s,
            fmt_mb(compile.peak_mb),
            compiled
        );
        if let Some(dbt) = &dbt
            && n == o.dbt_n
        {
            eprintln!("N={n}: running dbt parse (dbt-core, same project)...");
            let p = run_dbt(dbt, &dir, "parse");
            eprintln!("N={n}: dbt parse {:.1}s {} MB", p.wall_s, fmt_mb(p.peak_mb));
            let c = if o.dbt_compile {
                eprintln!("N={n}: running dbt compile...");
                let c = run_dbt(dbt, &dir, "compile");
                eprintln!("N={n}: dbt compile {:.1}s {} MB", c.wall_s, fmt_mb(c.peak_mb));
                Some(c)
            } else {
                None
            };
            dbt_rows.push((n, p, "parse", parse.clone()));
            if let Some(c) = c {
                dbt_rows.push((n, c, "compile", compile.clone()));
            }
        }
        rows.push(Row { n, tests, parse, compile });
        if o.keep {
            eprintln!("kept {}", dir.display());
        } else {
            let _ = std::fs::remove_dir_all(&dir);
        }
    }

    println!();
    println!("{:>7} {:>7} | {:>9} {:>9} | {:>10} {:>10}", "N", "tests", "parse s", "parse MB", "compile s", "compile MB");
    println!("{}", "-".repeat(62));
    for r in &rows {
        println!(
            "{:>7} {:>7} | {:>9.3} {:>9} | {:>10.3} {:>10}",
            r.n,
            r.tests,
            r.parse.wall_s,
            fmt_mb(r.parse.peak_mb),
            r.compile.wall_s,
            fmt_mb(r.compile.peak_mb)
        );
    }

    println!();
    println!(
        "Baseline: dbt-core 1.11 published figures on this 2-core machine at N = {REF_N} \
         (reference figures, NOT measured in this run):"
    );
    println!("  parse {REF_PARSE_S:.0} s / {REF_PARSE_MB:.0} MB, compile {REF_COMPILE_S:.0} s / 1 GB ({REF_COMPILE_MB:.0} MB)");
    match rows.iter().find(|r| r.n == REF_N) {
        Some(r) => {
            println!("  N={REF_N}: parse   time {}, peak RSS {}", time_ratio(REF_PARSE_S, r.parse.wall_s), mem_ratio(REF_PARSE_MB, r.parse.peak_mb));
            println!("  N={REF_N}: compile time {}, peak RSS {}", time_ratio(REF_COMPILE_S, r.compile.wall_s), mem_ratio(REF_COMPILE_MB, r.compile.peak_mb));
        }
        None => println!("  (no N = {REF_N} in this run: no ratio against the reference figures)"),
    }

    println!();
    if dbt_rows.is_empty() {
        match (&dbt, o.dbt) {
            (_, false) => println!("In-run dbt baseline: skipped (--no-dbt)."),
            (None, true) => println!("In-run dbt baseline: skipped (no dbt at /work/venv-dbt/bin/dbt; set DBT_BIN)."),
            _ => {}
        }
    } else {
        println!("In-run baseline: real dbt on the same generated project ({}):", dbt_version(dbt.as_ref().unwrap()));
        for (n, d, what, mine) in &dbt_rows {
            println!("  N={n}: dbt {what} {:.2} s / {} MB vs dp {what} {:.3} s / {} MB", d.wall_s, fmt_mb(d.peak_mb), mine.wall_s, fmt_mb(mine.peak_mb));
            println!(
                "  N={n}: {what} time {}, peak RSS {}",
                time_ratio(d.wall_s, mine.wall_s),
                match d.peak_mb {
                    Some(a) => mem_ratio(a, mine.peak_mb),
                    None => "?".into(),
                }
            );
        }
    }

    println!();
    match rows.iter().find(|r| r.n == REF_N) {
        Some(r) => {
            let ok_t = r.compile.wall_s < TARGET_COMPILE_S;
            let ok_m = r.compile.peak_mb.is_some_and(|m| m < TARGET_COMPILE_MB);
            println!(
                "Target: dp compile of {REF_N} models under {TARGET_COMPILE_S:.0} s wall and under {TARGET_COMPILE_MB:.0} MB peak: {} \
                 (wall {:.3} s: {}, peak {} MB: {})",
                if ok_t && ok_m { "PASS" } else { "MISS" },
                r.compile.wall_s,
                if ok_t { "ok" } else { "over" },
                fmt_mb(r.compile.peak_mb),
                if ok_m { "ok" } else { "over" },
            );
        }
        None => println!("Target (dp compile of {REF_N} models < 1 s, < 300 MB): not evaluated (no N = {REF_N} in this run)"),
    }
    if rows.iter().any(|r| r.parse.rss_method == "proc") {
        println!("(peak RSS from /proc VmHWM polling: /usr/bin/time not found)");
    }
    println!("load average at end: {}", loadavg());
    if o.keep {
        let p = root.keep();
        println!("projects kept in {}", p.display());
    }
}

fn walk_count(dir: &Path) -> usize {
    let Ok(rd) = std::fs::read_dir(dir) else { return 0 };
    rd.flatten().map(|e| if e.path().is_dir() { walk_count(&e.path()) } else { 1 }).sum()
}

fn dbt_version(dbt: &Path) -> String {
    std::process::Command::new(dbt)
        .arg("--version")
        .output()
        .ok()
        .and_then(|o| {
            let s = String::from_utf8_lossy(&o.stdout).to_string();
            s.lines().find(|l| l.contains("installed")).map(|l| format!("dbt-core {}", l.split(':').nth(1).unwrap_or("").trim()))
        })
        .unwrap_or_else(|| dbt.display().to_string())
}
