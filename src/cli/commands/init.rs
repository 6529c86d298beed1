//! `dp init NAME`: a new project folder that builds at once: warehouse.toml
//! (a `dev` target on local disk), a seed, a staging model reading it, a
//! mart with tests, and a .gitignore. Refuses to write into a folder that
//! already holds a project.

use std::path::Path;
use std::process::ExitCode;

use crate::cli::Printer;

const FILES: &[(&str, &str)] = &[
    (
        "warehouse.toml",
        r#"# dp's project file. A dbt project (dbt_project.yml) works too.
default_target = "dev"

[project]
name = "{name}"

[targets.dev]
warehouse = "./warehouse"   # Delta tables, one folder per <schema>/<table>
schema = "main"
threads = 4

# Folder configs, as dbt_project.yml's `models:` tree.
[models.staging]
materialized = "view"

[models.marts]
materialized = "table"
"#,
    ),
    ("seeds/countries.csv", "country_code,country_name\nDE,Germany\nFR,France\nJP,Japan\n"),
    ("models/staging/stg_countries.sql", "select\n    lower(country_code) as country_id,\n    country_name\nfrom {{ ref('countries') }}\n"),
    (
        "models/marts/dim_countries.sql",
        "select\n    country_id,\n    country_name,\n    length(country_name) as name_length\nfrom {{ ref('stg_countries') }}\n",
    ),
    (
        "models/marts/_marts.yml",
        "models:\n  - name: dim_countries\n    description: One row per country.\n    columns:\n      - name: country_id\n        data_tests: [unique, not_null]\n",
    ),
    (".gitignore", "target/\nwarehouse/\n"),
];

pub fn run(dir: &Path, printer: &Printer) -> anyhow::Result<ExitCode> {
    let name = dir.file_name().and_then(|n| n.to_str()).unwrap_or("").to_string();
    let valid = name.chars().next().is_some_and(|c| c.is_ascii_alphabetic() || c == '_') && name.chars().all(|c| c.is_ascii_alphanumeric() || c == '_');
    if !valid {
        anyhow::bail!("dp init: '{name}' is not a valid project name\n  hint: use letters, digits and underscores, starting with a letter (e.g. my_project)");
    }
    for marker in ["warehouse.toml", "dbt_project.yml"] {
        if dir.join(marker).exists() {
            anyhow::bail!("dp init: {} already holds a project ({marker})\n  hint: choose a new folder name", dir.display());
        }
    }
    for (path, text) in FILES {
        let p = dir.join(path);
        if let Some(parent) = p.parent() {
            std::fs::create_dir_all(parent).map_err(|e| anyhow::anyhow!("{}: {e}", parent.display()))?;
        }
        std::fs::write(&p, text.replace("{name}", &name)).map_err(|e| anyhow::anyhow!("{}: {e}", p.display()))?;
    }
    printer.info(format!("Created project {name} in {}", dir.display()));
    printer.info(format!("Next: cd {} && dp build", dir.display()));
    Ok(ExitCode::SUCCESS)
}
