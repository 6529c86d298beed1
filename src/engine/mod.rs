//! The execution engine: one DataFusion [`SessionContext`] whose `dp`
//! catalog is the warehouse (Delta tables and stored views under
//! `<warehouse>/<schema>/<table>`) plus the project's file sources.

pub mod attach;
pub mod catalog;
pub mod count_distinct;
pub mod idents;
pub mod introspect;
pub mod memory;
pub mod rewrite;
#[cfg(test)]
mod rule_tests;
pub mod sorted_window;
pub mod sources;
pub mod subquery;
pub mod timezone;
pub mod top_one;
pub mod udfs;
pub mod word_sort;
pub mod words;

use anyhow::Context as _;
use datafusion::datasource::TableProvider;
use datafusion::execution::context::SessionContext;
use datafusion::prelude::SessionConfig;
use std::collections::HashSet;
use std::path::{Path, PathBuf};
use std::sync::{Arc, OnceLock};

use crate::config::Settings;
use crate::project::load::Project;
use crate::project::nodes::ResourceType;
use crate::storage::Warehouse;
use catalog::WarehouseCatalog;

pub const CATALOG: &str = "dp";

/// Unique ids of models/seeds/snapshots whose relation exists (a Delta
/// table or a view), listing each schema of the warehouse once.
pub fn existing_relations(project: &Project) -> HashSet<String> {
    existing(project, |_| true)
}

/// Unique ids of models/seeds/snapshots whose relation exists as a Delta
/// table: what `is_incremental()` asks (dbt's `relation.type == 'table'`;
/// a model that was a view is built anew).
pub fn existing_tables(project: &Project) -> HashSet<String> {
    existing(project, |k| k == crate::storage::RelKind::Table)
}

fn existing(project: &Project, kind: impl Fn(crate::storage::RelKind) -> bool) -> HashSet<String> {
    let Ok(wh) = Warehouse::open(&project.settings) else { return HashSet::new() };
    let mut by_schema: std::collections::HashMap<&str, HashSet<String>> = Default::default();
    project
        .nodes
        .iter()
        .filter(|(_, n)| matches!(n.resource_type, ResourceType::Model | ResourceType::Seed | ResourceType::Snapshot))
        .filter(|(_, n)| {
            let names = by_schema
                .entry(n.schema.as_str())
                .or_insert_with(|| wh.relations_blocking(&n.schema).into_iter().filter(|(_, k)| kind(*k)).map(|(t, _)| t).collect());
            names.contains(&n.alias)
        })
        .map(|(u, _)| u.clone())
        .collect()
}

/// Checks the warehouse location is usable (creating it if needed).
pub async fn check_warehouse(settings: &Settings) -> anyhow::Result<String> {
    Ok(Warehouse::open(settings)?.check().await?)
}

/// Compiles an ad-hoc query (for `--inline`) with ref()/source() resolved.
pub fn compile_inline(project: &Project, sql: &str) -> anyhow::Result<String> {
    compile_inline_with(project, sql, &crate::compile::CompileOptions::default())
}

/// [`compile_inline`] with compile options (`--defer`'s relations).
pub fn compile_inline_with(project: &Project, sql: &str, opts: &crate::compile::CompileOptions) -> anyhow::Result<String> {
    let mut n = crate::project::nodes::Node::new(ResourceType::Analysis, &project.settings.project_name, "inline", "<inline>");
    n.raw_code = sql.to_string();
    n.unique_id = format!("sql_operation.{}.inline", project.settings.project_name);
    Ok(crate::compile::compile_one(project, &n, opts)?)
}

/// Opens a Delta table as a DataFusion table provider. The provider reads
/// the log lazily (the table's protocol and schema now, its files when a
/// query scans it), so opening costs no replay of the file list, which
/// `deltalake::open_table` would do only for the provider to ignore it.
pub async fn open_delta_provider(url: &url::Url, ctx: &SessionContext) -> anyhow::Result<Arc<dyn TableProvider>> {
    let table = deltalake::DeltaTableBuilder::from_url(url.clone())?.build()?;
    table.update_datafusion_session(&ctx.state())?;
    Ok(table.table_provider().await?)
}

/// Where a source's relative location resolves: the target's `source_root`
/// (a path or URL), else the project root.
pub fn resolve_source_location(settings: &Settings, loc: &str) -> String {
    if loc.contains("://") || loc.starts_with('/') {
        return loc.to_string();
    }
    match settings.target.source_root.as_deref() {
        Some(r) if r.contains("://") => format!("{}/{}", r.trim_end_matches('/'), loc.trim_start_matches("./")),
        Some(r) => {
            let base = if Path::new(r).is_absolute() { PathBuf::from(r) } else { settings.root.join(r) };
            crate::config::normalize_path(&base.join(loc)).display().to_string()
        }
        None => crate::config::normalize_path(&settings.root.join(loc)).display().to_string(),
    }
}

/// The session every command executes in.
pub struct Engine {
    pub ctx: SessionContext,
    pub catalog: Arc<WarehouseCatalog>,
    pub warehouse: Warehouse,
    pub project_root: PathBuf,
    /// The memory limit and spill directory in force.
    pub memory: memory::MemorySettings,
    /// What this session spilled to disk.
    pub spills: Arc<memory::SpillStats>,
}

/// A partial aggregation gives up (passes its rows straight to the final
/// aggregation) once its groups reach this share of its input rows;
/// DataFusion's default is 0.8. At one group per three rows, as when the
/// demo's `int_customer_orders` sums 3M order lines into 1M orders, the
/// partial phase cuts the rows to repartition only threefold yet holds a
/// second hash table of every group. Given up there, the model peaks 50-60
/// MB lower (its query alone 100-170 MB; the demo at scale 100 about 700
/// MB), no slower.
const PARTIAL_AGGREGATION_RATIO: f64 = 0.25;

/// The session's options: DataFusion's defaults, overridden by any
/// `DATAFUSION_*` environment variable (as datafusion-cli reads them, e.g.
/// `DATAFUSION_EXECUTION_BATCH_SIZE=4096`), then dp's own defaults for
/// options the environment does not set.
fn session_config() -> anyhow::Result<SessionConfig> {
    let mut options = datafusion::config::ConfigOptions::from_env().map_err(|e| {
        anyhow::anyhow!("a DATAFUSION_* environment variable has a value DataFusion does not accept: {e}\n  hint: fix or unset it (`env | grep DATAFUSION_`)")
    })?;
    if std::env::var_os("DATAFUSION_EXECUTION_SKIP_PARTIAL_AGGREGATION_PROBE_RATIO_THRESHOLD").is_none() {
        options.execution.skip_partial_aggregation_probe_ratio_threshold = PARTIAL_AGGREGATION_RATIO;
    }
    Ok(SessionConfig::from(options))
}

impl Engine {
    /// Plans `sql` as DataFusion does, with the rewrites of [`rewrite`]
    /// (standard SQL, DuckDB's integer division and literal types). Models, views, tests and
    /// previews go through here.
    pub async fn sql(&self, sql: &str) -> datafusion::error::Result<datafusion::dataframe::DataFrame> {
        let state = self.ctx.state();
        let plan = idents::plan(&state, sql).await?;
        Ok(datafusion::dataframe::DataFrame::new(state, rewrite::duckdb_plan(plan)?))
    }

    /// The session over the project's warehouse and sources. `memory_limit`
    /// (`--memory-limit`) overrides `DP_MEMORY_LIMIT` and the target's
    /// `memory_limit` (see [`memory`]).
    pub fn new(project: &Project, memory_limit: Option<usize>) -> anyhow::Result<Engine> {
        let warehouse = Warehouse::open(&project.settings)?;
        if let Some(dir) = warehouse.local_dir() {
            std::fs::create_dir_all(dir).with_context(|| format!("creating warehouse folder {}", dir.display()))?;
        }
        let mut config = session_config()?
            .with_default_catalog_and_schema(CATALOG, &project.settings.target.schema)
            .with_information_schema(true)
            .with_create_default_catalog_and_schema(false);
        // Bronze files sit in date folders (`orders/2024-01-15/orders.parquet`).
        config.options_mut().execution.listing_table_ignore_subdirectory = false;
        let memory = memory::MemorySettings::resolve(&project.settings, memory_limit)?;
        memory.configure(&mut config);
        let spills = Arc::new(memory::SpillStats::default());
        let runtime = memory.runtime(spills.clone())?.build_arc()?;
        // Object stores for s3:// locations (the warehouse's bucket, and the
        // buckets of sources), shared by DataFusion's scans and deltalake.
        if let Some((url, store)) = warehouse.remote_store() {
            runtime.register_object_store(&url, store);
        }
        // deltalake's planner lowers its write/merge nodes to physical plans.
        let state = datafusion::execution::session_state::SessionStateBuilder::new()
            .with_default_features()
            .with_config(config)
            .with_runtime_env(runtime)
            .with_query_planner(deltalake::delta_datafusion::planner::DeltaPlanner::new())
            .with_physical_optimizer_rules(physical_rules(memory.limit.is_some()))
            .build();
        let ctx = SessionContext::new_with_state(state);
        udfs::register(&ctx);
        let cell = Arc::new(OnceLock::new());
        let catalog = Arc::new(WarehouseCatalog::new(warehouse.clone(), cell.clone()));
        ctx.register_catalog(CATALOG, catalog.clone());
        // Jinja renders relations with the target's database, as dbt does
        // (`"dp"."main"."orders"`): the warehouse answers to that name too.
        let database = &project.settings.target.database;
        if !database.is_empty() && database != CATALOG && ctx.catalog(database).is_none() {
            ctx.register_catalog(database, catalog.clone());
        }
        let _ = cell.set(ctx.clone());
        for n in project.nodes.values() {
            let Some(s) = &n.source else { continue };
            let Some(loc) = &s.location else { continue };
            let abs = resolve_source_location(&project.settings, loc);
            if let Some(url) = abs.split_once("://").and_then(|_| url::Url::parse(&abs).ok()) {
                let mut root = url.clone();
                root.set_path("/");
                let store = crate::storage::store_for(&url, &project.settings)?;
                ctx.runtime_env().register_object_store(&root, store);
            }
            let label = format!("{}.{}", s.source_name, n.name);
            let t = sources::SourceTable::new(&label, loc, abs, s.format.as_deref(), &s.options);
            catalog.add_source(&n.schema, &s.identifier, t);
        }
        Ok(Engine { ctx, catalog, warehouse, project_root: project.settings.root.clone(), memory, spills })
    }

    /// Fails early, with the URL and a hint, when a remote warehouse is
    /// unreachable, its bucket missing or the credentials refused.
    pub async fn preflight(&self) -> anyhow::Result<()> {
        if self.warehouse.local_dir().is_none() {
            self.warehouse.schemas().await?;
        }
        Ok(())
    }
}

/// DataFusion's physical optimizer rules with dp's: [`top_one::TopOnePerKey`]
/// and [`word_sort::WordSort`] (both off under a memory limit) and
/// [`sorted_window::SortedWindow`].
fn physical_rules(memory_limited: bool) -> Vec<Arc<dyn datafusion::physical_optimizer::PhysicalOptimizerRule + Send + Sync>> {
    let mut rules = top_one::TopOnePerKey::new(memory_limited).with_default_rules();
    sorted_window::SortedWindow::new().add_to(&mut rules);
    word_sort::WordSort::new(memory_limited).add_to(&mut rules);
    rules
}

/// Inserts `rule` into `rules` before DataFusion's `SanityCheckPlan` (last
/// otherwise): where dp's rules that replace an operator in a finished
/// plan run.
pub fn add_before_sanity_check(
    rules: &mut Vec<Arc<dyn datafusion::physical_optimizer::PhysicalOptimizerRule + Send + Sync>>,
    rule: Arc<dyn datafusion::physical_optimizer::PhysicalOptimizerRule + Send + Sync>,
) {
    let at = rules.iter().position(|r| r.name() == "SanityCheckPlan").unwrap_or(rules.len());
    rules.insert(at, rule);
}

/// Parses sizes like `2GB`, `512MB`, `1.5G`, `64KiB`, `1073741824` (binary
/// units: 1 KB = 1024 bytes).
pub fn parse_size(s: &str) -> anyhow::Result<usize> {
    let t = s.trim().to_ascii_uppercase();
    let t = t.strip_suffix("IB").map(|n| format!("{n}B")).unwrap_or(t);
    let units: [(&str, usize); 7] = [("GB", 1 << 30), ("MB", 1 << 20), ("KB", 1 << 10), ("G", 1 << 30), ("M", 1 << 20), ("K", 1 << 10), ("B", 1)];
    let (num, mult) = units.iter().find_map(|(u, m)| t.strip_suffix(*u).map(|n| (n, *m))).unwrap_or((t.as_str(), 1));
    let v: f64 = num.trim().parse().map_err(|_| anyhow::anyhow!("'{s}' is not a size; use e.g. 2GB or 512MB"))?;
    if !v.is_finite() || v < 0.0 {
        anyhow::bail!("'{s}' is not a size; use e.g. 2GB or 512MB");
    }
    Ok((v * mult as f64) as usize)
}

#[cfg(test)]
mod tests {
    #[test]
    fn sizes_parse_with_binary_units() {
        for (s, want) in [("2GB", 2usize << 30), ("512mb", 512 << 20), ("1.5G", 3 << 29), ("64KiB", 64 << 10), ("1000", 1000), ("10 MB", 10 << 20)] {
            assert_eq!(super::parse_size(s).unwrap(), want, "{s}");
        }
        for bad in ["", "lots", "-1GB", "2TB"] {
            assert!(super::parse_size(bad).is_err(), "{bad}");
        }
    }
}
