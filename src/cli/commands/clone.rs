//! `dp clone -s ... --state DIR [--full-refresh]` (dbt's `clone`): for each
//! selected model, seed and snapshot, a relation in the current target
//! pointing at the relation the state's manifest recorded. A Delta table
//! becomes a Delta shallow clone ([`crate::materialize::clone`]); a view
//! of the same warehouse becomes a view selecting from it (dbt's fallback
//! where tables cannot be cloned). Existing relations are left alone
//! unless `--full-refresh`.

use std::process::ExitCode;
use std::time::Instant;

use crate::cli::Printer;
use crate::cli::args::{GlobalArgs, SelectArgs};
use crate::cli::context::{LoadArgs, load, select};
use crate::cli::defer::{foreign_warehouse, read_state, state_dir};
use crate::cli::printer::Tone;
use crate::engine::Engine;
use crate::materialize::Materialized;
use crate::project::nodes::{Materialization, ResourceType};
use crate::storage::{RelKind, Warehouse};
use crate::util::ident::relation_name;

pub async fn run(g: &GlobalArgs, s: &SelectArgs, full_refresh: bool, printer: &Printer) -> anyhow::Result<ExitCode> {
    let t = Instant::now();
    let l = load(g, LoadArgs { which: "clone", full_refresh, ..Default::default() }, printer)?;
    // clone always reads a state, --defer or not
    let state = read_state(&state_dir(s)?)?;
    let types = vec![ResourceType::Model, ResourceType::Seed, ResourceType::Snapshot];
    let ids: Vec<String> = select(&l, s, types.clone(), printer)?
        .into_iter()
        .filter(|u| l.project.nodes.get(u).is_some_and(|n| types.contains(&n.resource_type) && n.materialized() != Materialization::Ephemeral))
        .collect();
    let engine = Engine::new(&l.project, None)?;
    engine.preflight().await?;
    let foreign = foreign_warehouse(&state, &l);
    let source_wh = match &foreign {
        Some(loc) => {
            let mut settings = l.project.settings.clone();
            settings.target.warehouse = loc.clone();
            Warehouse::open(&settings)?
        }
        None => engine.warehouse.clone(),
    };
    if ids.is_empty() {
        printer.warn("nothing to do: the selection matched no nodes");
        return Ok(ExitCode::SUCCESS);
    }
    printer.info(format!("Concurrency: 1 threads (target='{}')", l.project.settings.target.name));
    printer.info("");
    let (mut pass, mut noop, mut errors) = (0, 0, 0);
    let total = ids.len();
    for (i, uid) in ids.iter().enumerate() {
        let n = &l.project.nodes[uid];
        let started = Instant::now();
        let what = format!("{} {}", n.resource_type.as_str(), n.relation_name());
        let fields = serde_json::json!({"unique_id": uid});
        let Some(rel) = state.relations.get(uid) else {
            printer.info(format!("No relation found in state manifest for {uid}"));
            printer.node_line(i + 1, total, "NO-OP", &what, "NO-OP", Tone::Warn, Some(started.elapsed()), fields);
            noop += 1;
            continue;
        };
        let dest = engine.warehouse.table(&n.schema, &n.alias);
        let existing = engine.warehouse.kind(&n.schema, &n.alias).await?;
        if existing.is_some() && !full_refresh {
            printer.info(format!("Relation {} already exists", n.relation_name()));
            printer.node_line(i + 1, total, "NO-OP", &what, "NO-OP", Tone::Warn, Some(started.elapsed()), fields);
            noop += 1;
            continue;
        }
        if foreign.is_none() && rel.schema == n.schema && rel.alias == n.alias {
            printer.info(format!("Target relation and defer relation are the same, skipping clone for relation: {}", n.relation_name()));
            printer.node_line(i + 1, total, "NO-OP", &what, "NO-OP", Tone::Warn, Some(started.elapsed()), fields);
            noop += 1;
            continue;
        }
        let source = source_wh.table(&rel.schema, &rel.alias);
        let res: anyhow::Result<Materialized> = async {
            let kind = source_wh.kind(&rel.schema, &rel.alias).await?;
            if existing.is_some() {
                engine.warehouse.drop_relation(&dest).await?;
            }
            match kind {
                Some(RelKind::Table) => crate::materialize::clone::shallow_clone(&source, &dest, &engine.warehouse).await,
                Some(RelKind::View) if foreign.is_none() => {
                    crate::materialize::delta::write_view(&engine, &dest, &format!("select * from {}", relation_name(&rel.schema, &rel.alias))).await
                }
                Some(RelKind::View) => anyhow::bail!(
                    "{uid}: the state's relation {source} is a view of another warehouse, which a view here cannot read\n  hint: build it here (dp run -s {} --defer --state DIR reads its parents from the state)",
                    n.name
                ),
                None => anyhow::bail!(
                    "{uid}: the state's relation {} does not exist at {source}\n  hint: build it in the state's target first, or leave it out of the selection",
                    relation_name(&rel.schema, &rel.alias)
                ),
            }
        }
        .await;
        match res {
            Ok(m) => {
                printer.node_line(i + 1, total, "OK cloned", &what, &m.message, Tone::Good, Some(started.elapsed()), fields);
                pass += 1;
            }
            Err(e) => {
                printer.node_line(i + 1, total, "ERROR cloning", &what, "ERROR", Tone::Bad, Some(started.elapsed()), fields);
                printer.error(format!("{e:#}"));
                errors += 1;
            }
        }
    }
    printer.info("");
    printer.info(format!("Finished cloning {total} nodes in {:.2}s.", t.elapsed().as_secs_f64()));
    printer.info(format!("Done. PASS={pass} WARN=0 ERROR={errors} SKIP=0 NO-OP={noop} TOTAL={total}"));
    Ok(if errors == 0 { ExitCode::SUCCESS } else { ExitCode::from(1) })
}
