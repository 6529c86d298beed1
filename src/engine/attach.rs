//! Warehouses attached beside the target's: `--defer` reads relations an
//! earlier run built in another warehouse (`dp_state.schema.table`).

use std::sync::{Arc, OnceLock};

use super::Engine;
use super::catalog::WarehouseCatalog;
use crate::config::Settings;
use crate::storage::Warehouse;

impl Engine {
    /// Registers the warehouse at `location` (a path or URL; S3 reached
    /// with the target's settings) as catalog `name`.
    pub fn attach_warehouse(&self, name: &str, location: &str, settings: &Settings) -> anyhow::Result<()> {
        let mut s = settings.clone();
        s.target.warehouse = location.to_string();
        let wh = Warehouse::open(&s)?;
        if let Some((url, store)) = wh.remote_store() {
            self.ctx.runtime_env().register_object_store(&url, store);
        }
        let cell = Arc::new(OnceLock::new());
        let _ = cell.set(self.ctx.clone());
        self.ctx.register_catalog(name, Arc::new(WarehouseCatalog::attached(wh, cell, name)));
        Ok(())
    }
}
