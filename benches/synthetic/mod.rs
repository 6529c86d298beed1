//! The synthetic dbt project of N models that `benches/compile.rs` measures
//! (also used by the docs-site test in tests/it/docs.rs, through `#[path]`).
//! See compile.rs for its shape. `generate_with` and [`Extras`] add what the `build` bench
//! needs on top (seeds referenced by models, fewer tests per model); `generate` writes exactly
//! the compile bench's project.

#![allow(dead_code)]

use std::fmt::Write as _;
use std::path::Path;

pub const SOURCES: usize = 5;
pub const STATUSES: [&str; 4] = ["placed", "shipped", "completed", "returned"];
pub const MODELS_PER_FOLDER: usize = 100;

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

/// Additions to the compile bench's project, for `dp build` (benches/build.rs). The default
/// adds nothing: `generate_with(dir, n, Extras::default())` is `generate(dir, n)`.
#[derive(Debug, Clone, Copy, Default)]
pub struct Extras {
    /// Seeds `seeds/seed_000.csv`...: `code` (0..rows, unique-tested), `label`, `weight`, 20 to
    /// 200 rows each; every 4th intermediate model left-joins one of them on `id % rows`.
    pub seeds: usize,
    /// `accepted_values` on every 8th model only (`unique` and `not_null` on all): about
    /// 2.2 tests per model instead of 3 (2,000 models: ~4,500 tests with 200 seeds).
    pub lean_tests: bool,
}

/// The rows of seed `k` (20 to 200).
pub fn seed_rows(k: usize) -> usize {
    20 + (k * 37) % 181
}

/// What `generate_with` wrote.
#[derive(Debug, Clone, Copy)]
pub struct Generated {
    pub models: usize,
    /// Data tests on sources, models and seeds.
    pub tests: usize,
    pub seeds: usize,
}

/// Writes the project for `n` models into `dir`; returns (models, data tests) counts.
pub fn generate(dir: &Path, n: usize) -> (usize, usize) {
    let g = generate_with(dir, n, Extras::default());
    (g.models, g.tests)
}

/// `generate` plus `extras`.
pub fn generate_with(dir: &Path, n: usize, extras: Extras) -> Generated {
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
    let mut models_seen = 0usize;
    let mut entry = |folder: String, name: &str, desc: &str, status_col: &str| {
        let y = yml.entry(folder).or_insert_with(|| "version: 2\n\nmodels:\n".into());
        let accepted = !extras.lean_tests || models_seen.is_multiple_of(8);
        models_seen += 1;
        let status_tests = if accepted {
            format!(
                r#"
        data_tests:
          - accepted_values:
              arguments:
                values: [{statuses}]"#
            )
        } else {
            String::new()
        };
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
        description: Order status.{status_tests}
      - name: updated_at
        description: Last change.
"#
        );
        2 + usize::from(accepted)
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
        let (seed_col, seed_join) = match extras.seeds {
            0 => (String::new(), String::new()),
            seeds if j.is_multiple_of(4) => {
                let k = (j / 4) % seeds;
                ("\n    s.label as seed_label,".to_string(), format!("\nleft join {{{{ ref('seed_{k:03}') }}}} as s on s.code = a.id % {}", seed_rows(k)))
            }
            _ => (String::new(), String::new()),
        };
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
    '{{{{ var("currency") }}}}' as currency,{seed_col}
    a.updated_at
from a
left join b on a.id = b.id{seed_join}
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

    if extras.seeds > 0 {
        let mut y = String::from("version: 2\n\nseeds:\n");
        for k in 0..extras.seeds {
            let mut csv = String::from("code,label,weight\n");
            for i in 0..seed_rows(k) {
                let _ = writeln!(csv, "{i},label_{k}_{i},{}", (i * 7 + k) % 100);
            }
            write(&dir.join(format!("seeds/seed_{k:03}.csv")), &csv);
            let _ = write!(
                y,
                r#"  - name: seed_{k:03}
    description: Lookup {k}.
    columns:
      - name: code
        data_tests: [unique]
"#
            );
            tests += 1;
        }
        write(&dir.join("seeds/_seeds.yml"), &y);
    }
    Generated { models: l.stg + l.int + l.mart, tests, seeds: extras.seeds }
}
