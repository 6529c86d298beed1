//! Helpers for the differential tests of dp's physical optimizer rules: a
//! session with or without the rule, over small batches and four
//! partitions, and a query's rows in a comparable form.

use crate::runner::unit::diff::rows_of;
use datafusion::execution::session_state::SessionStateBuilder;
use datafusion::physical_optimizer::PhysicalOptimizerRule;
use datafusion::prelude::{SessionConfig, SessionContext};
use std::sync::Arc;

pub type Rules = Vec<Arc<dyn PhysicalOptimizerRule + Send + Sync>>;

/// A session of four partitions and 64-row batches, with `rules` as its
/// physical optimizer's (DataFusion's defaults when `None`), after running
/// the `setup` statements.
pub async fn session(rules: Option<Rules>, setup: &[&str]) -> SessionContext {
    let config = SessionConfig::new().with_target_partitions(4).with_batch_size(64);
    let mut builder = SessionStateBuilder::new().with_default_features().with_config(config);
    if let Some(rules) = rules {
        builder = builder.with_physical_optimizer_rules(rules);
    }
    let ctx = SessionContext::new_with_state(builder.build());
    for sql in setup {
        ctx.sql(sql).await.unwrap().collect().await.unwrap();
    }
    ctx
}

/// The rows of `sql`, formatted and sorted.
pub async fn rows(ctx: &SessionContext, sql: &str) -> Vec<String> {
    let mut out = rows_in_order(ctx, sql).await;
    out.sort();
    out
}

/// The rows of `sql`, formatted, in the order they come.
pub async fn rows_in_order(ctx: &SessionContext, sql: &str) -> Vec<String> {
    let batches = ctx.sql(sql).await.unwrap_or_else(|e| panic!("{sql}: {e}")).collect().await.unwrap_or_else(|e| panic!("{sql}: {e}"));
    rows_of(&batches).unwrap().into_iter().map(|r| r.join("|")).collect()
}

/// `sql`'s plan, as `EXPLAIN` prints it.
pub async fn plan(ctx: &SessionContext, sql: &str) -> String {
    rows(ctx, &format!("explain {sql}")).await.join("\n")
}
