//! `dp superset export [--out FILE]` and `dp superset push --url URL`: the
//! dashboards of dashboards/*.yml as Superset's import bundle, written to a
//! file or imported into a running Superset (README, "Superset dashboards").

use anyhow::Context as _;
use std::process::ExitCode;
use std::time::Instant;

use crate::cli::Printer;
use crate::cli::args::{GlobalArgs, SupersetAction};
use crate::cli::context::{LoadArgs, Loaded, load};
use crate::postgres::PgSettings;
use crate::superset::bundle::{self, Bundle, BundleType, Database};
use crate::superset::{push, spec};

/// Loads the project and its dashboards (checked against the models).
pub fn dashboards(l: &Loaded) -> anyhow::Result<Vec<spec::Dashboard>> {
    Ok(spec::load(&l.fs, &spec::project_tables(&l.project))?)
}

fn database(l: &Loaded, host: Option<&str>, port: Option<u16>) -> anyhow::Result<(Database, PgSettings)> {
    let t = &l.project.settings.target;
    let Some(pg) = &t.postgres else {
        anyhow::bail!(
            "target '{}' has no [postgres] settings: the dashboards read the marts dp publishes to PostgreSQL\n  hint: pick a target that publishes, e.g. --target pg (or docker)",
            t.name
        );
    };
    let s = PgSettings::resolve(pg)?;
    let has_password = std::env::var(&s.password_env).map(|p| !p.is_empty()).unwrap_or(false);
    let db = Database {
        name: l.project.settings.project_name.clone(),
        host: host.map(String::from).unwrap_or_else(|| s.host.clone()),
        port: port.unwrap_or(s.port),
        dbname: s.dbname.clone(),
        user: s.user.clone(),
        has_password,
        sslmode: Some(s.sslmode.clone()),
    };
    Ok((db, s))
}

fn summary(b: &Bundle) -> String {
    format!("{} dashboards, {} charts, {} datasets", b.dashboards, b.charts, b.tables.len())
}

pub async fn run(g: &GlobalArgs, action: SupersetAction, printer: &Printer) -> anyhow::Result<ExitCode> {
    let t = Instant::now();
    let l = load(g, LoadArgs { which: "superset", ..Default::default() }, printer)?;
    let ds = dashboards(&l)?;
    if ds.is_empty() {
        printer.warn("no dashboards: dashboards/ holds no *.yml (README, \"Superset dashboards\")");
        return Ok(ExitCode::SUCCESS);
    }
    match action {
        SupersetAction::Export { out } => {
            let (db, _) = database(&l, None, None)?;
            let b = bundle::build(&ds, &db)?;
            let path = if out.is_absolute() { out } else { l.project.settings.root.join(out) };
            if path.extension().is_some_and(|e| e == "zip") {
                if let Some(dir) = path.parent() {
                    std::fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
                }
                crate::docs::write_atomic(&path, &b.zip(BundleType::Dashboard)).with_context(|| format!("writing {}", path.display()))?;
            } else {
                // A folder: the bundle's files unzipped, to read or diff.
                for (rel, text) in &b.files {
                    let f = path.join(rel);
                    std::fs::create_dir_all(f.parent().unwrap_or(&path)).with_context(|| format!("creating {}", path.display()))?;
                    std::fs::write(&f, text).with_context(|| format!("writing {}", f.display()))?;
                }
            }
            printer.info(format!("Wrote {} ({}; database '{}' at {}) in {:.2}s", path.display(), summary(&b), db.name, db.uri(), t.elapsed().as_secs_f64()));
        }
        SupersetAction::Push { url, database_host, database_port, skip_missing } => {
            let (db, pg) = database(&l, database_host.as_deref(), database_port)?;
            let mut ds = ds;
            let mut b = bundle::build(&ds, &db)?;
            let username = std::env::var("SUPERSET_USERNAME").ok().filter(|u| !u.is_empty()).unwrap_or_else(|| "admin".into());
            let Some(password) = std::env::var("SUPERSET_PASSWORD").ok().filter(|p| !p.is_empty()) else {
                anyhow::bail!(
                    "SUPERSET_PASSWORD is not set\n  hint: export SUPERSET_USERNAME and SUPERSET_PASSWORD (a Superset admin's login) before `dp superset push`"
                );
            };
            // Every dataset's table must be in PostgreSQL before anything is imported.
            let pool = crate::postgres::PgPool::new(pg.clone(), 1)?;
            let missing = push::missing_tables(&pool, &b.tables).await.with_context(|| format!("checking the dashboards' tables in {}", pg.describe()))?;
            if !missing.is_empty() {
                let needs = |d: &spec::Dashboard| d.datasets.iter().any(|x| missing.contains(&x.key()));
                if !skip_missing || ds.iter().all(needs) {
                    return Err(crate::superset::SupersetError::MissingTables { pg: pg.describe(), tables: missing }.into());
                }
                for d in ds.iter().filter(|d| needs(d)) {
                    printer.warn(format!("skipping dashboard '{}' ({}): table missing in PostgreSQL: {}", d.title, d.file.display(), missing.join(", ")));
                }
                ds.retain(|d| !needs(d));
                b = bundle::build(&ds, &db)?;
            }
            printer.info(format!("Pushing {} to Superset at {url} (database '{}': {})", summary(&b), db.name, db.uri()));
            let target = push::Target { url: &url, username: &username, password: &password, db_password: std::env::var(&pg.password_env).ok() };
            let slugs: Vec<(String, String)> = ds.iter().map(|d| (d.title.clone(), d.slug.clone())).collect();
            let p = push::push(&b, &db, &target, &slugs).await?;
            for (title, link, charts) in &p.dashboards {
                printer.info(format!("  {title}: {charts} charts, {link}"));
            }
            printer.info(format!("Done in {:.2}s", t.elapsed().as_secs_f64()));
        }
    }
    Ok(ExitCode::SUCCESS)
}
