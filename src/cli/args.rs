//! Command-line definitions (clap). Logic lives in `commands/`.

use clap::{Args, Parser, Subcommand, ValueEnum};
use std::path::PathBuf;

#[derive(Debug, Parser)]
#[command(name = "dp", version, about = "An embedded lakehouse: dbt-compatible transforms on DataFusion with Delta Lake tables")]
pub struct Cli {
    #[command(flatten)]
    pub global: GlobalArgs,
    #[command(subcommand)]
    pub command: Command,
}

/// `dp ls --output`, as `dbt ls`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum LsOutput {
    /// `package.folder.model`; `source:pkg.source.table`, `exposure:pkg.name`, `unit_test:pkg.name`.
    Selector,
    /// The bare name (`source.table` for sources, `name.v2` for versions).
    Name,
    /// The file that defines it.
    Path,
    /// One JSON object per line (`--output-keys` picks keys).
    Json,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum, Default)]
pub enum LogFormat {
    #[default]
    Text,
    Json,
}

#[derive(Debug, Args, Clone)]
pub struct GlobalArgs {
    /// The project directory (holding warehouse.toml or dbt_project.yml).
    #[arg(long, global = true, env = "DP_PROJECT_DIR", default_value = ".")]
    pub project_dir: PathBuf,
    /// The target of warehouse.toml to use (default: `default_target`, else `dev`).
    #[arg(long, short = 't', global = true)]
    pub target: Option<String>,
    /// Variables as YAML or JSON, e.g. '{start_date: 2024-01-01}'.
    #[arg(long, global = true)]
    pub vars: Option<String>,
    /// Print only errors and data.
    #[arg(long, short = 'q', global = true)]
    pub quiet: bool,
    /// More log detail on stderr (repeat for more).
    #[arg(long, short = 'v', global = true, action = clap::ArgAction::Count)]
    pub verbose: u8,
    /// Log lines as text (default) or JSON objects.
    #[arg(long, global = true, value_enum, default_value_t = LogFormat::Text)]
    pub log_format: LogFormat,
}

#[derive(Debug, Args, Clone, Default)]
pub struct SelectArgs {
    /// Nodes to include (dbt selection syntax).
    #[arg(long, short = 's', num_args = 1.., alias = "models", short_alias = 'm')]
    pub select: Vec<String>,
    /// Nodes to leave out.
    #[arg(long, num_args = 1..)]
    pub exclude: Vec<String>,
    /// A named selector from selectors.yml.
    #[arg(long)]
    pub selector: Option<String>,
    /// How tests are picked up from selected nodes: eager, cautious, buildable, empty.
    #[arg(long, default_value = "eager")]
    pub indirect_selection: String,
}

#[derive(Debug, Args, Clone, Default)]
pub struct RunArgs {
    #[command(flatten)]
    pub select: SelectArgs,
    /// Worker threads (default: the target's `threads`).
    #[arg(long)]
    pub threads: Option<usize>,
    /// Rebuild incremental models and seeds from scratch.
    #[arg(long, short = 'f')]
    pub full_refresh: bool,
    /// Stop at the first failure.
    #[arg(long, short = 'x')]
    pub fail_fast: bool,
    /// Memory limit for query execution (e.g. 2GB); DataFusion spills beyond it.
    #[arg(long)]
    pub memory_limit: Option<String>,
    /// Keep failing test rows as tables in `<schema>_dbt_test__audit`.
    #[arg(long)]
    pub store_failures: bool,
    /// After the summary, print the first failing rows of each warning or failing test (stdout).
    #[arg(long)]
    pub show_failures: bool,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Load the project and write target/manifest.json.
    Parse,
    /// Render every selected node's SQL into target/compiled/.
    Compile {
        #[command(flatten)]
        select: SelectArgs,
        /// Print the compiled SQL of `--inline` or a single selected node.
        #[arg(long)]
        inline: Option<String>,
    },
    /// List project resources.
    #[command(alias = "list")]
    Ls {
        #[command(flatten)]
        select: SelectArgs,
        /// What to print per resource (as `dbt ls`).
        #[arg(long, short = 'o', value_enum, default_value_t = LsOutput::Selector)]
        output: LsOutput,
        /// Keys of each node for `--output json`.
        #[arg(long, value_delimiter = ',')]
        output_keys: Vec<String>,
        /// Only these resource types (model, seed, test, source, ...).
        #[arg(long, value_delimiter = ',')]
        resource_type: Vec<String>,
    },
    /// Show resolved settings (secrets masked) and check the warehouse.
    Debug,
    /// Build the selected models.
    Run(RunArgs),
    /// Load seeds (CSV) into Delta tables.
    Seed(RunArgs),
    /// Run data tests on the selected nodes.
    Test(RunArgs),
    /// Seeds, models and their tests in DAG order; failing tests skip downstream nodes.
    Build(RunArgs),
    /// Preview a model's or a query's rows.
    Show {
        #[command(flatten)]
        select: SelectArgs,
        /// A SQL query (may use ref()/source()).
        #[arg(long)]
        inline: Option<String>,
        #[arg(long, default_value_t = 5)]
        limit: usize,
        /// table (default), csv or json (one object per line).
        #[arg(long, default_value = "table")]
        format: String,
    },
    /// Copy the selected models' warehouse tables into PostgreSQL.
    Publish(PublishArgs),
    /// Copy bronze files of sources into PostgreSQL tables.
    Load(LoadCmdArgs),
    /// A SQL shell over every layer of the warehouse (DataFusion).
    Sql(SqlArgs),
    /// The demo: generate bronze data if absent, then seed and run.
    Demo {
        #[command(subcommand)]
        action: Option<DemoAction>,
        /// Data scale (1 ≈ 100k orders).
        #[arg(long, default_value_t = 0.1)]
        scale: f64,
        #[arg(long)]
        threads: Option<usize>,
    },
}

#[derive(Debug, Args, Clone, Default)]
pub struct PublishArgs {
    #[command(flatten)]
    pub select: SelectArgs,
    /// Publish every selected model and seed, not only those configured with publish = ["postgres"].
    #[arg(long)]
    pub all: bool,
    /// Copy whole tables even when PostgreSQL already holds the current version.
    #[arg(long, short = 'f')]
    pub full_refresh: bool,
}

#[derive(Debug, Args, Clone)]
pub struct LoadCmdArgs {
    /// Sources to load (dbt selection syntax, e.g. source:raw.orders); default: all.
    #[command(flatten)]
    pub select: SelectArgs,
    /// replace: swap in a new table atomically; append: add the rows.
    #[arg(long, value_enum, default_value = "replace")]
    pub mode: crate::postgres::load::LoadMode,
    /// PostgreSQL schema to load into (default: the source's schema).
    #[arg(long)]
    pub schema: Option<String>,
}

#[derive(Debug, Args, Clone, Default)]
pub struct SqlArgs {
    /// Run these statements and exit.
    #[arg(long, short = 'e')]
    pub execute: Option<String>,
    /// Run a SQL file and exit.
    #[arg(long, short = 'f')]
    pub file: Option<std::path::PathBuf>,
    /// Output format: table, csv, tsv, json, ndjson, markdown.
    #[arg(long, default_value = "table")]
    pub format: String,
    /// Allow statements that write the warehouse: CREATE TABLE/VIEW, INSERT
    /// and DROP persist (without it they are refused).
    #[arg(long)]
    pub allow_writes: bool,
}

#[derive(Debug, Subcommand)]
pub enum DemoAction {
    /// Write the demo's bronze files (deterministic).
    Generate {
        #[arg(long, default_value_t = 0.1)]
        scale: f64,
        #[arg(long, default_value_t = 42)]
        seed: u64,
        /// Where to write (default: <project>/bronze).
        #[arg(long)]
        out: Option<PathBuf>,
    },
}
