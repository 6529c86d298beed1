//! Command-line definitions (clap). Logic lives in `commands/`.

use clap::{Args, Parser, Subcommand, ValueEnum};
use std::path::PathBuf;

use crate::shell::format::Format;

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
    /// Parse and render every file again, ignoring (and not writing) the
    /// partial-parse cache in target/ (as dbt's --no-partial-parse).
    #[arg(long, global = true, env = "DP_NO_PARTIAL_PARSE")]
    pub no_partial_parse: bool,
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
    /// How tests are picked up from selected nodes.
    #[arg(long, value_enum, default_value_t = IndirectArg::Eager)]
    pub indirect_selection: IndirectArg,
    /// A folder with the manifest.json of an earlier run, for `state:` selectors.
    #[arg(long, value_name = "DIR")]
    pub state: Option<std::path::PathBuf>,
    /// Resolve refs to unselected nodes missing from this target to the relations of the --state manifest.
    #[arg(long)]
    pub defer: bool,
    /// With --defer: use the state's relation for every unselected node, even one that exists in this target.
    #[arg(long)]
    pub favor_state: bool,
    /// The state folder for deferral only (default: --state).
    #[arg(long, value_name = "DIR")]
    pub defer_state: Option<std::path::PathBuf>,
}

/// `--indirect-selection`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum, Default)]
pub enum IndirectArg {
    #[default]
    Eager,
    Cautious,
    Buildable,
    Empty,
}

impl From<IndirectArg> for crate::graph::select::IndirectSelection {
    fn from(a: IndirectArg) -> Self {
        match a {
            IndirectArg::Eager => Self::Eager,
            IndirectArg::Cautious => Self::Cautious,
            IndirectArg::Buildable => Self::Buildable,
            IndirectArg::Empty => Self::Empty,
        }
    }
}

/// A result format (`dp show`, `dp sql`): table, csv, tsv, json (an array),
/// ndjson (one object per line) or markdown.
fn result_format(s: &str) -> Result<Format, String> {
    s.parse()
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
    /// Build with every ref() and source() reading no rows (dbt's --empty): checks the SQL plans and
    /// creates the relations, empty, without reading the data (run, build, snapshot).
    #[arg(long)]
    pub empty: bool,
    /// Sample mode (dbt's --sample): refs and sources with an event_time read only the rows of this
    /// window, '3 days' (hours, days, months, years back from now) or '{start: 2025-01-01, end: 2025-01-02}'.
    #[arg(long)]
    pub sample: Option<String>,
    /// Microbatch models build the batches from this date-time (inclusive, UTC); needs --event-time-end.
    #[arg(long)]
    pub event_time_start: Option<String>,
    /// Microbatch models build the batches up to this date-time (exclusive, UTC); needs --event-time-start.
    #[arg(long)]
    pub event_time_end: Option<String>,
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
        /// Render every ref() and source() as reading no rows (dbt's --empty).
        #[arg(long)]
        empty: bool,
    },
    /// List project resources.
    #[command(alias = "list")]
    Ls {
        #[command(flatten)]
        select: SelectArgs,
        /// What to print per resource (as `dbt ls`).
        #[arg(long, short = 'o', value_enum, default_value_t = LsOutput::Selector)]
        output: LsOutput,
        /// Keys of each node for `--output json`, space-separated or repeated
        /// (`--output-keys name config.materialized`; dotted keys reach into
        /// nested values), as `dbt ls`.
        #[arg(long, num_args = 1.., value_delimiter = ' ')]
        output_keys: Vec<String>,
        /// Only these resource types (model, seed, test, source, metric, ...),
        /// space-separated or repeated as `dbt ls` takes them (commas too).
        #[arg(long, alias = "resource-types", num_args = 1.., value_delimiter = ',')]
        resource_type: Vec<String>,
    },
    /// Show resolved settings (secrets masked) and check the warehouse.
    Debug,
    /// Install the packages of packages.yml into dbt_packages/ and write package-lock.yml.
    Deps,
    /// Remove the clean-targets (default: target/).
    Clean,
    /// Create a new project folder (warehouse.toml, a seed, models, tests) that builds.
    Init {
        /// The project's name and folder.
        name: String,
    },
    /// Build the selected models.
    Run(RunArgs),
    /// Load seeds (CSV) into Delta tables.
    Seed(RunArgs),
    /// Run data tests on the selected nodes.
    Test(RunArgs),
    /// Seeds, models and their tests in DAG order; failing tests skip downstream nodes.
    Build(RunArgs),
    /// Run the selected snapshots (type-2 history tables).
    Snapshot(RunArgs),
    /// Call a macro with the warehouse open (run_query, statement); prints its log(..., info=True) lines.
    RunOperation {
        /// The macro (`name` or `package.name`).
        #[arg(value_name = "MACRO")]
        macro_name: String,
        /// The macro's arguments, a YAML mapping: '{name: Ann, times: 2}'.
        #[arg(long)]
        args: Option<String>,
    },
    /// Source commands (`dp source freshness`).
    Source {
        #[command(subcommand)]
        action: SourceAction,
    },
    /// Run the last run/seed/test/build again on its failed and skipped nodes (target/run_results.json).
    Retry {
        /// Worker threads (default: the target's `threads`).
        #[arg(long)]
        threads: Option<usize>,
    },
    /// Relations in this target pointing at the --state manifest's (Delta shallow clones; views for views).
    Clone {
        #[command(flatten)]
        select: SelectArgs,
        /// Replace relations that already exist.
        #[arg(long, short = 'f')]
        full_refresh: bool,
    },
    /// Preview a model's or a query's rows.
    Show {
        #[command(flatten)]
        select: SelectArgs,
        /// A SQL query (may use ref()/source()).
        #[arg(long)]
        inline: Option<String>,
        /// Rows to show; a negative number shows them all (as dbt's `--limit -1`).
        #[arg(long, default_value_t = 5, allow_negative_numbers = true)]
        limit: i64,
        /// table, csv, tsv, json (an array), ndjson (one object per line) or markdown.
        #[arg(long, default_value = "table", value_parser = result_format)]
        format: Format,
    },
    /// Run quality checkpoints (checkpoints/*.yml): expectations, results, Data Docs.
    Check(CheckArgs),
    /// Copy the selected models' warehouse tables into PostgreSQL.
    Publish(PublishArgs),
    /// Copy bronze files of sources into PostgreSQL tables.
    Load(LoadCmdArgs),
    /// Extract sources with an `ingest:` block (files, PostgreSQL) into bronze.
    Ingest(IngestArgs),
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
    /// Documentation: target/catalog.json and a static docs site (target/docs/).
    Docs {
        #[command(subcommand)]
        action: DocsAction,
    },
    /// Column-level lineage: a column's upstream or downstream columns.
    #[command(args_conflicts_with_subcommands = true)]
    Lineage(LineageArgs),
    /// Pipelines (pipelines/*.yml): run one now, show run history, list schedules.
    Pipeline {
        #[command(subcommand)]
        action: PipelineAction,
    },
    /// Fire pipelines on their schedules and upstream completion (foreground daemon, one per warehouse).
    Scheduler(SchedulerArgs),
    /// Table maintenance: compact small files, vacuum unreferenced files older than the retention, write checkpoints.
    Maintain(MaintainArgs),
    /// Alert channels: send a test message through each configured channel.
    Alert {
        #[command(subcommand)]
        action: AlertAction,
    },
    /// Superset dashboards from dashboards/*.yml: export the import bundle, or push it to a Superset.
    Superset {
        #[command(subcommand)]
        action: SupersetAction,
    },
}

#[derive(Debug, Subcommand)]
pub enum SupersetAction {
    /// Write Superset's import bundle (a ZIP of databases/, datasets/, charts/, dashboards/).
    Export {
        /// Where to write it: a .zip file, or else a folder that gets the bundle's files unzipped.
        #[arg(long, default_value = "target/superset_dashboards.zip")]
        out: std::path::PathBuf,
    },
    /// Create or update the database connection, datasets, charts and dashboards in a running Superset
    /// (user and password from SUPERSET_USERNAME and SUPERSET_PASSWORD).
    Push {
        /// Superset's address, e.g. http://localhost:8088.
        #[arg(long, env = "SUPERSET_URL")]
        url: String,
        /// The PostgreSQL host as Superset reaches it (default: the target's), e.g. `postgres` inside docker compose.
        #[arg(long)]
        database_host: Option<String>,
        /// The PostgreSQL port as Superset reaches it (default: the target's).
        #[arg(long)]
        database_port: Option<u16>,
        /// Leave out the dashboards whose tables are missing in PostgreSQL (named in a warning) instead of failing;
        /// fails only when no dashboard is left.
        #[arg(long)]
        skip_missing: bool,
    },
}

#[derive(Debug, Subcommand)]
pub enum DocsAction {
    /// Write target/catalog.json, target/lineage.json and the docs site in target/docs/.
    Generate {
        /// Skip column lineage (faster on very large projects).
        #[arg(long)]
        no_lineage: bool,
    },
    /// Serve target/docs/ on http://127.0.0.1:<port> until Ctrl-C.
    Serve {
        /// Port (0: any free port).
        #[arg(long, default_value_t = 8080)]
        port: u16,
    },
}

#[derive(Debug, Subcommand)]
pub enum PipelineAction {
    /// Run one pipeline now, with retries and alerts.
    Run {
        /// The pipeline's name.
        name: String,
    },
    /// The last runs of each pipeline and the tries of their tasks.
    Status {
        /// Only this pipeline.
        name: Option<String>,
        /// How many runs per pipeline.
        #[arg(long, default_value_t = 1)]
        runs: usize,
    },
    /// Every pipeline with its schedule, upstream pipelines and next fire times.
    #[command(alias = "ls")]
    List {
        /// How many next fire times to show.
        #[arg(long, default_value_t = 1)]
        next: usize,
    },
    /// Take a platform health snapshot into marts.platform_health_metrics (and PostgreSQL) and show it.
    Health {
        /// Show the metrics without writing or publishing them.
        #[arg(long)]
        dry_run: bool,
    },
}

#[derive(Debug, Args, Clone)]
pub struct LineageArgs {
    #[command(subcommand)]
    pub action: Option<LineageAction>,
    /// A column: schema.model.column (e.g. marts.fct_orders.order_id),
    /// model.column or source.table.column. Without it, lineage is rebuilt
    /// into target/lineage.json and summarized.
    pub column: Option<String>,
    /// Columns it derives from (the default).
    #[arg(long, conflicts_with = "downstream")]
    pub upstream: bool,
    /// Columns derived from it.
    #[arg(long)]
    pub downstream: bool,
    /// At most this many hops.
    #[arg(long)]
    pub depth: Option<usize>,
    /// text (a tree), json or dot (Graphviz).
    #[arg(long, default_value = "text")]
    pub format: String,
    /// Read target/lineage.json as it is instead of rebuilding it.
    #[arg(long)]
    pub cached: bool,
}

#[derive(Debug, Subcommand, Clone)]
pub enum LineageAction {
    /// Create/update tables and table- and column-level lineage in
    /// OpenMetadata (token from OPENMETADATA_JWT_TOKEN).
    Push {
        /// OpenMetadata's base URL, e.g. http://localhost:8585.
        #[arg(long)]
        openmetadata: String,
        /// Read target/lineage.json as it is instead of rebuilding it.
        #[arg(long)]
        cached: bool,
    },
}

#[derive(Debug, Args, Clone, Default)]
pub struct CheckArgs {
    /// Checkpoints to run (default: all in checkpoints/).
    pub checkpoints: Vec<String>,
    /// Only the validations of these relations (dbt selection syntax).
    #[command(flatten)]
    pub select: SelectArgs,
    /// Relations validated at once (default: the target's `threads`).
    #[arg(long)]
    pub threads: Option<usize>,
}

#[derive(Debug, Args, Clone)]
pub struct SchedulerArgs {
    /// On SIGTERM/Ctrl-C, how long running pipelines may finish before their tasks are cancelled.
    #[arg(long, default_value = "60s")]
    pub grace: String,
}

#[derive(Debug, Args, Clone, Default)]
pub struct MaintainArgs {
    /// Models and seeds to maintain (default: all, plus dp_meta and data_platform tables).
    #[command(flatten)]
    pub select: SelectArgs,
    /// Keep unreferenced files younger than this (default 7d, or a model's `retention` config); time travel works inside it.
    #[arg(long)]
    pub retention: Option<String>,
    /// Report what would be vacuumed without deleting or compacting anything.
    #[arg(long)]
    pub dry_run: bool,
}

#[derive(Debug, Subcommand)]
pub enum AlertAction {
    /// Send a test alert through every configured channel (and record it in alert_history).
    Test,
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
    pub mode: LoadModeArg,
    /// PostgreSQL schema to load into (default: the source's schema).
    #[arg(long)]
    pub schema: Option<String>,
}

/// `dp load --mode`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum LoadModeArg {
    Replace,
    Append,
}

impl From<LoadModeArg> for crate::postgres::load::LoadMode {
    fn from(m: LoadModeArg) -> Self {
        match m {
            LoadModeArg::Replace => Self::Replace,
            LoadModeArg::Append => Self::Append,
        }
    }
}

#[derive(Debug, Args, Clone, Default)]
pub struct IngestArgs {
    /// Sources to ingest (dbt selection syntax, e.g. source:raw.orders, source:raw+); default: all with an ingest block.
    #[command(flatten)]
    pub select: SelectArgs,
    /// Incremental sources extract everything again (their watermark restarts).
    #[arg(long, short = 'f')]
    pub full_refresh: bool,
    /// Tables ingested at once (default: the target's `threads`).
    #[arg(long)]
    pub threads: Option<usize>,
}

#[derive(Debug, Args, Clone, Default)]
pub struct SqlArgs {
    /// Run these statements and exit.
    #[arg(long, short = 'e')]
    pub execute: Option<String>,
    /// Run a SQL file and exit.
    #[arg(long, short = 'f')]
    pub file: Option<std::path::PathBuf>,
    /// Output format: table, csv, tsv, json (an array), ndjson (one object per line), markdown.
    #[arg(long, default_value = "table", value_parser = result_format)]
    pub format: Format,
    /// Allow statements that write the warehouse: CREATE TABLE/VIEW, INSERT
    /// and DROP persist (without it they are refused).
    #[arg(long)]
    pub allow_writes: bool,
}

#[derive(Debug, Subcommand)]
pub enum SourceAction {
    /// How old each source table's newest row is, against its `freshness` (writes target/sources.json).
    Freshness {
        #[command(flatten)]
        select: SelectArgs,
        /// Where to write the results (default: target/sources.json).
        #[arg(long, short = 'o')]
        output: Option<PathBuf>,
    },
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
