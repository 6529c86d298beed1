//! `dp debug`: the resolved settings (secrets masked) and checks that the
//! project loads, the warehouse location is reachable and writable, and the
//! target's PostgreSQL (when configured) accepts a connection.

use std::process::ExitCode;

use crate::cli::Printer;
use crate::cli::args::GlobalArgs;
use crate::cli::context::settings;

pub async fn run(g: &GlobalArgs, printer: &Printer) -> anyhow::Result<ExitCode> {
    let s = settings(g, None)?;
    let mut ok = true;
    printer.data(format!("dp version:      {}", env!("CARGO_PKG_VERSION")));
    let version = s.version.as_deref().map(|v| format!(" version {v}")).unwrap_or_default();
    printer.data(format!("project:         {}{version} ({})", s.project_name, s.root.join(&s.project_file).display()));
    printer.data(format!("target:          {} (defined: {})", s.target.name, if s.targets.is_empty() { "-".into() } else { s.targets.join(", ") }));
    printer.data(format!("warehouse:       {}", s.warehouse_url()));
    printer.data(format!("schema:          {}", s.target.schema));
    printer.data(format!("threads:         {}", s.target.threads));
    printer.data(format!("model paths:     {}", s.paths.models.join(", ")));
    printer.data(format!("seed paths:      {}", s.paths.seeds.join(", ")));
    printer.data(format!("macro paths:     {}", s.paths.macros.join(", ")));
    printer.data(format!("vars:            {}", serde_json::to_string(&s.vars).unwrap_or_default()));
    if let Some(pg) = &s.target.postgres {
        match crate::postgres::PgSettings::resolve(pg) {
            Ok(p) => {
                let pw = if std::env::var_os(&p.password_env).is_some() { "****" } else { "(not set)" };
                printer.data(format!("postgres:        {} password=${} {pw} sslmode={}", p.describe(), p.password_env, p.sslmode));
            }
            Err(e) => printer.data(format!("postgres:        {e:#}")),
        }
    }
    if let Some(s3) = &s.target.s3 {
        let set = |k: &str| if std::env::var_os(k).is_some() { "****" } else { "(not set)" };
        printer.data(format!(
            "s3:              endpoint={} region={} path_style={} allow_http={} AWS_ACCESS_KEY_ID={} AWS_SECRET_ACCESS_KEY={}",
            s3.endpoint.as_deref().unwrap_or("(AWS)"),
            s3.region.as_deref().unwrap_or("us-east-1"),
            s3.path_style,
            s3.allow_http,
            set("AWS_ACCESS_KEY_ID"),
            set("AWS_SECRET_ACCESS_KEY"),
        ));
    }
    if let Some(r) = &s.target.source_root {
        printer.data(format!("source root:     {r}"));
    }
    // Checks.
    match crate::engine::check_warehouse(&s).await {
        Ok(msg) => printer.data(format!("warehouse check: {} {msg}", printer.good("OK"))),
        Err(e) => {
            ok = false;
            printer.data(format!("warehouse check: {} {e:#}", printer.bad("ERROR")));
        }
    }
    if let Some(pg) = &s.target.postgres {
        let check = async {
            let settings = crate::postgres::PgSettings::resolve(pg)?;
            let pool = crate::postgres::PgPool::new(settings, 1)?;
            let c = pool.get().await?;
            let v: String =
                c.query_one("SELECT current_setting('server_version')", &[]).await.map_err(crate::postgres::connect::pg_err("querying the server"))?.get(0);
            anyhow::Ok(format!("PostgreSQL {v} at {}", pool.settings.describe()))
        };
        match check.await {
            Ok(msg) => printer.data(format!("postgres check:  {} {msg}", printer.good("OK"))),
            Err(e) => {
                ok = false;
                printer.data(format!("postgres check:  {} {e:#}", printer.bad("ERROR")));
            }
        }
    }
    let fs = crate::fs::OsFs::new(&s.root);
    match crate::project::load::load_project(s.clone(), &fs, &Default::default()) {
        Ok(p) => printer.data(format!("project check:   {} {} nodes, {} macros", printer.good("OK"), p.nodes.len(), p.macros.len())),
        Err(e) => {
            ok = false;
            printer.data(format!("project check:   {} {e}", printer.bad("ERROR")));
        }
    }
    Ok(if ok { ExitCode::SUCCESS } else { ExitCode::from(1) })
}
