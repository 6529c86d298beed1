//! The execution engine: one DataFusion [`SessionContext`] whose `dp`
//! catalog is the warehouse (Delta tables and stored views under
//! `<warehouse>/<schema>/<table>`) plus the project's file sources.

pub mod catalog;
pub mod sources;

use anyhow::Context as _;
use datafusion::datasource::TableProvider;
use datafusion::execution::context::SessionContext;
use datafusion::execution::runtime_env::RuntimeEnvBuilder;
use datafusion::prelude::SessionConfig;
use std::collections::HashSet;
use std::path::{Path, PathBuf};
use std::sync::{Arc, OnceLock};

use crate::config::Settings;
use crate::project::load::Project;
use crate::project::nodes::ResourceType;
use catalog::{VIEW_FILE, WarehouseCatalog};

pub const CATALOG: &str = "dp";

/// The warehouse location on local disk.
pub fn warehouse_dir(settings: &Settings) -> anyhow::Result<PathBuf> {
    let url = settings.warehouse_url();
    if let Some(rest) = url.strip_prefix("file://") {
        return Ok(PathBuf::from(rest));
    }
    if url.contains("://") {
        anyhow::bail!(
            "warehouse '{url}': object-store warehouses are not supported by this build yet\n  hint: use a local path such as ./warehouse"
        );
    }
    Ok(PathBuf::from(url))
}

pub fn table_dir(settings: &Settings, schema: &str, table: &str) -> anyhow::Result<PathBuf> {
    Ok(warehouse_dir(settings)?.join(schema).join(table))
}

/// Unique ids of models/seeds/snapshots whose relation exists.
pub fn existing_relations(project: &Project) -> HashSet<String> {
    let Ok(root) = warehouse_dir(&project.settings) else { return HashSet::new() };
    project
        .nodes
        .iter()
        .filter(|(_, n)| matches!(n.resource_type, ResourceType::Model | ResourceType::Seed | ResourceType::Snapshot))
        .filter(|(_, n)| {
            let d = root.join(&n.schema).join(&n.alias);
            d.join("_delta_log").is_dir() || d.join(VIEW_FILE).is_file()
        })
        .map(|(u, _)| u.clone())
        .collect()
}

/// Checks the warehouse location is usable (creating it if needed).
pub async fn check_warehouse(settings: &Settings) -> anyhow::Result<String> {
    let dir = warehouse_dir(settings)?;
    std::fs::create_dir_all(&dir).with_context(|| format!("cannot create warehouse folder {}", dir.display()))?;
    let probe = dir.join(format!(".dp_probe_{}", std::process::id()));
    std::fs::write(&probe, b"ok").with_context(|| format!("warehouse folder {} is not writable", dir.display()))?;
    let _ = std::fs::remove_file(&probe);
    let tables = walk_tables(&dir);
    Ok(format!("{} is writable ({} tables)", dir.display(), tables))
}

fn walk_tables(dir: &Path) -> usize {
    let Ok(rd) = std::fs::read_dir(dir) else { return 0 };
    rd.flatten()
        .filter(|e| e.path().is_dir())
        .map(|s| std::fs::read_dir(s.path()).map(|r| r.flatten().filter(|t| t.path().join("_delta_log").is_dir() || t.path().join(VIEW_FILE).is_file()).count()).unwrap_or(0))
        .sum()
}

/// Compiles an ad-hoc query (for `--inline`) with ref()/source() resolved.
pub fn compile_inline(project: &Project, sql: &str) -> anyhow::Result<String> {
    let mut n = crate::project::nodes::Node::new(ResourceType::Analysis, &project.settings.project_name, "inline", "<inline>");
    n.raw_code = sql.to_string();
    n.unique_id = format!("sql_operation.{}.inline", project.settings.project_name);
    Ok(crate::compile::compile_one(project, &n)?)
}

/// Opens a Delta table as a DataFusion table provider.
pub async fn open_delta_provider(dir: &Path, ctx: &SessionContext) -> anyhow::Result<Arc<dyn TableProvider>> {
    let url = dir_url(dir)?;
    let table = deltalake::open_table(url).await?;
    table.update_datafusion_session(&ctx.state())?;
    Ok(table.table_provider().await?)
}

pub fn dir_url(dir: &Path) -> anyhow::Result<url::Url> {
    url::Url::from_directory_path(dir).map_err(|_| anyhow::anyhow!("{} is not an absolute path", dir.display()))
}

/// The session every command executes in.
pub struct Engine {
    pub ctx: SessionContext,
    pub catalog: Arc<WarehouseCatalog>,
    pub warehouse: PathBuf,
    pub project_root: PathBuf,
}

impl Engine {
    pub fn new(project: &Project, memory_limit: Option<usize>) -> anyhow::Result<Engine> {
        let warehouse = warehouse_dir(&project.settings)?;
        std::fs::create_dir_all(&warehouse).with_context(|| format!("creating warehouse folder {}", warehouse.display()))?;
        let mut config = SessionConfig::new()
            .with_default_catalog_and_schema(CATALOG, &project.settings.target.schema)
            .with_information_schema(true)
            .with_create_default_catalog_and_schema(false);
        // Bronze files sit in date folders (`orders/2024-01-15/orders.parquet`).
        config.options_mut().execution.listing_table_ignore_subdirectory = false;
        let mut rt = RuntimeEnvBuilder::new();
        if let Some(limit) = memory_limit {
            rt = rt.with_memory_limit(limit, 1.0);
        }
        let runtime = rt.build_arc()?;
        // deltalake's planner lowers its write/merge nodes to physical plans.
        let state = datafusion::execution::session_state::SessionStateBuilder::new()
            .with_default_features()
            .with_config(config)
            .with_runtime_env(runtime)
            .with_query_planner(deltalake::delta_datafusion::planner::DeltaPlanner::new())
            .build();
        let ctx = SessionContext::new_with_state(state);
        let cell = Arc::new(OnceLock::new());
        let catalog = Arc::new(WarehouseCatalog::new(warehouse.clone(), cell.clone()));
        ctx.register_catalog(CATALOG, catalog.clone());
        let _ = cell.set(ctx.clone());
        for n in project.nodes.values() {
            let Some(s) = &n.source else { continue };
            let Some(loc) = &s.location else { continue };
            let abs = if loc.contains("://") || loc.starts_with('/') {
                loc.clone()
            } else {
                crate::config::normalize_path(&project.settings.root.join(loc)).display().to_string()
            };
            let label = format!("{}.{}", s.source_name, n.name);
            let t = sources::SourceTable::new(&label, loc, abs, s.format.as_deref(), &s.options);
            catalog.add_source(&n.schema, &s.identifier, t);
        }
        Ok(Engine { ctx, catalog, warehouse, project_root: project.settings.root.clone() })
    }
}

/// Parses sizes like `2GB`, `512MB`, `1073741824`.
pub fn parse_size(s: &str) -> anyhow::Result<usize> {
    let t = s.trim().to_ascii_uppercase();
    let (num, mult) = if let Some(n) = t.strip_suffix("GB") {
        (n, 1usize << 30)
    } else if let Some(n) = t.strip_suffix("MB") {
        (n, 1 << 20)
    } else if let Some(n) = t.strip_suffix("KB") {
        (n, 1 << 10)
    } else {
        (t.as_str(), 1)
    };
    let v: f64 = num.trim().parse().map_err(|_| anyhow::anyhow!("'{s}' is not a size; use e.g. 2GB or 512MB"))?;
    Ok((v * mult as f64) as usize)
}
