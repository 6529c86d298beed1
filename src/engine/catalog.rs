//! The warehouse as a DataFusion catalog: one schema per folder (prefix) of
//! the warehouse, on local disk or S3, each folder a Delta table
//! (`_delta_log/`) or a stored view (`_dp_view.sql`), opened lazily on first
//! use; plus sources (bronze files) overlaid into their schema as listing
//! tables.

use async_trait::async_trait;
use datafusion::catalog::{CatalogProvider, CatalogProviderList, MemoryCatalogProviderList, SchemaProvider};
use datafusion::datasource::TableProvider;
use datafusion::error::{DataFusionError, Result};
use datafusion::execution::context::SessionContext;
use datafusion::execution::session_state::{SessionState, SessionStateBuilder};
use std::collections::{BTreeSet, HashMap};
use std::sync::{Arc, Mutex, OnceLock, RwLock};

use super::sources::SourceTable;
use crate::storage::{RelKind, Warehouse};

pub use crate::storage::VIEW_FILE;

/// The `dp` catalog.
pub struct WarehouseCatalog {
    root: Warehouse,
    schemas: RwLock<HashMap<String, Arc<WarehouseSchema>>>,
    ctx: Arc<OnceLock<SessionContext>>,
    /// For a warehouse attached beside the target's (`--defer`'s state):
    /// its catalog name, in which its views' SQL resolves.
    view_catalog: Option<String>,
}

impl WarehouseCatalog {
    pub fn new(root: Warehouse, ctx: Arc<OnceLock<SessionContext>>) -> WarehouseCatalog {
        WarehouseCatalog { root, schemas: RwLock::new(HashMap::new()), ctx, view_catalog: None }
    }

    /// Another warehouse registered as catalog `name`: its views read the
    /// relations of that warehouse, not the target's.
    pub fn attached(root: Warehouse, ctx: Arc<OnceLock<SessionContext>>, name: &str) -> WarehouseCatalog {
        WarehouseCatalog { view_catalog: Some(name.to_string()), ..WarehouseCatalog::new(root, ctx) }
    }

    pub fn schema_provider(&self, name: &str) -> Arc<WarehouseSchema> {
        let mut s = self.schemas.write().unwrap();
        s.entry(name.to_string())
            .or_insert_with(|| {
                let mut schema = WarehouseSchema::new(self.root.clone(), name, self.ctx.clone());
                schema.view_catalog = self.view_catalog.clone();
                Arc::new(schema)
            })
            .clone()
    }

    pub fn add_source(&self, schema: &str, name: &str, table: SourceTable) {
        self.schema_provider(schema).sources.lock().unwrap().insert(name.to_string(), Arc::new(table));
    }

    /// Forgets a cached table so the next query reads its newest version.
    pub fn invalidate(&self, schema: &str, table: &str) {
        if let Some(s) = self.schemas.read().unwrap().get(schema) {
            s.cache.lock().unwrap().remove(table);
        }
    }
}

impl std::fmt::Debug for WarehouseCatalog {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "WarehouseCatalog({})", self.root)
    }
}

impl std::fmt::Debug for WarehouseSchema {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "WarehouseSchema({})", self.name)
    }
}

impl CatalogProvider for WarehouseCatalog {
    fn schema_names(&self) -> Vec<String> {
        let mut names: BTreeSet<String> = self.schemas.read().unwrap().keys().cloned().collect();
        names.extend(self.root.schemas_blocking());
        names.into_iter().collect()
    }

    fn schema(&self, name: &str) -> Option<Arc<dyn SchemaProvider>> {
        Some(self.schema_provider(name) as Arc<dyn SchemaProvider>)
    }
}

/// One schema: a folder of the warehouse plus the sources declared in it.
pub struct WarehouseSchema {
    warehouse: Warehouse,
    name: String,
    ctx: Arc<OnceLock<SessionContext>>,
    pub sources: Mutex<HashMap<String, Arc<SourceTable>>>,
    cache: Mutex<HashMap<String, Arc<dyn TableProvider>>>,
    /// Session-only tables (temporary views, staging relations).
    temp: Mutex<HashMap<String, Arc<dyn TableProvider>>>,
    view_catalog: Option<String>,
}

impl WarehouseSchema {
    fn new(warehouse: Warehouse, name: &str, ctx: Arc<OnceLock<SessionContext>>) -> WarehouseSchema {
        WarehouseSchema {
            warehouse,
            name: name.to_string(),
            ctx,
            sources: Mutex::new(HashMap::new()),
            cache: Mutex::new(HashMap::new()),
            temp: Mutex::new(HashMap::new()),
            view_catalog: None,
        }
    }

    fn ctx(&self) -> Result<SessionContext> {
        self.ctx.get().cloned().ok_or_else(|| DataFusionError::Internal("warehouse catalog used before its session was set".into()))
    }
}

#[async_trait]
impl SchemaProvider for WarehouseSchema {
    fn table_names(&self) -> Vec<String> {
        let mut names: BTreeSet<String> = self.sources.lock().unwrap().keys().cloned().collect();
        names.extend(self.warehouse.relations_blocking(&self.name).into_iter().map(|(t, _)| t));
        names.into_iter().collect()
    }

    async fn table(&self, name: &str) -> Result<Option<Arc<dyn TableProvider>>> {
        if let Some(t) = self.temp.lock().unwrap().get(name) {
            return Ok(Some(t.clone()));
        }
        if let Some(t) = self.cache.lock().unwrap().get(name) {
            return Ok(Some(t.clone()));
        }
        let loc = self.warehouse.table(&self.name, name);
        let kind = self.warehouse.kind(&self.name, name).await.map_err(|e| DataFusionError::External(Box::new(e)))?;
        let provider: Arc<dyn TableProvider> = if kind == Some(RelKind::Table) {
            let ctx = self.ctx()?;
            super::open_delta_provider(&loc.url, &ctx)
                .await
                .map_err(|e| DataFusionError::Plan(format!("table {}.{name}: could not open its Delta log at {loc}: {e}", self.name)))?
        } else if kind == Some(RelKind::View) {
            let sql = self.warehouse.read_view(&self.name, name).await.map_err(|e| DataFusionError::External(Box::new(e)))?;
            let ctx = self.ctx()?;
            let mut state = ctx.state();
            if let Some(c) = &self.view_catalog {
                state = attached_view_state(&ctx, state, c);
            }
            let plan = super::idents::plan(&state, &sql)
                .await
                .and_then(super::rewrite::duckdb_plan)
                .map_err(|e| DataFusionError::Plan(format!("view {}.{name} ({loc}/{VIEW_FILE}): {e}", self.name)))?;
            Arc::new(datafusion::datasource::ViewTable::new(plan, Some(sql)))
        } else {
            let src = self.sources.lock().unwrap().get(name).cloned();
            match src {
                Some(s) => {
                    let ctx = self.ctx()?;
                    s.provider(&ctx).await?
                }
                None => return Ok(None),
            }
        };
        self.cache.lock().unwrap().insert(name.to_string(), provider.clone());
        Ok(Some(provider))
    }

    fn register_table(&self, name: String, table: Arc<dyn TableProvider>) -> Result<Option<Arc<dyn TableProvider>>> {
        Ok(self.temp.lock().unwrap().insert(name, table))
    }

    fn deregister_table(&self, name: &str) -> Result<Option<Arc<dyn TableProvider>>> {
        Ok(self.temp.lock().unwrap().remove(name))
    }

    fn table_exist(&self, name: &str) -> bool {
        if self.temp.lock().unwrap().contains_key(name) {
            return true;
        }
        self.sources.lock().unwrap().contains_key(name) || self.warehouse.kind_blocking(&self.name, name).is_some()
    }
}

/// The session a view of the warehouse attached as `catalog` is planned in:
/// its unqualified names resolve in that catalog, and so do the names the
/// view qualifies with the target's database (`"dp"."main"."orders"`, as dbt
/// renders relations), which in this session mean the attached warehouse.
fn attached_view_state(ctx: &SessionContext, mut state: SessionState, catalog: &str) -> SessionState {
    state.config_mut().options_mut().catalog.default_catalog = catalog.to_string();
    let (Some(target), Some(attached)) = (ctx.catalog(super::CATALOG), ctx.catalog(catalog)) else { return state };
    let list = MemoryCatalogProviderList::new();
    for name in ctx.catalog_names() {
        let Some(c) = ctx.catalog(&name) else { continue };
        list.register_catalog(name, if Arc::ptr_eq(&c, &target) { attached.clone() } else { c });
    }
    SessionStateBuilder::new_from_existing(state).with_catalog_list(Arc::new(list)).build()
}
