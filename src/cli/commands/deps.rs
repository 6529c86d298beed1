//! `dp deps`: installs `packages.yml` / `dependencies.yml` packages into
//! the packages folder and writes `package-lock.yml` (see [`crate::deps`]).

use std::process::ExitCode;

use crate::cli::Printer;
use crate::cli::args::GlobalArgs;
use crate::cli::context::settings;
use crate::deps::{Outcome, Spec, install, install_dir, lock_file, read_specs};

pub fn run(g: &GlobalArgs, printer: &Printer) -> anyhow::Result<ExitCode> {
    let s = settings(g, None)?;
    let (entries, specs) = read_specs(&s.root)?;
    if specs.is_empty() {
        printer.warn("nothing to install: no packages in packages.yml or dependencies.yml");
        return Ok(ExitCode::SUCCESS);
    }
    let dir = install_dir(&s.root, &s.paths.packages);
    let outcomes = install(&s.root, &dir, &specs)?;
    for (spec, o) in specs.iter().zip(&outcomes) {
        let what = match spec {
            Spec::Local { path } => path.clone(),
            Spec::Git { url, .. } => url.clone(),
            Spec::Hub { package, .. } => package.clone(),
            Spec::Tarball { url, .. } => url.clone(),
        };
        printer.info(format!("Installing {what}"));
        match o {
            Outcome::Installed { name, how } => printer.info(format!("  {how} as {}/{name}", s.paths.packages)),
            Outcome::Kept { name, reason } => printer.warn(format!("{what}: {reason}; kept the installed {}/{name}", s.paths.packages)),
        }
    }
    let lock = s.root.join("package-lock.yml");
    std::fs::write(&lock, lock_file(&entries, &specs, &outcomes))?;
    printer.info(format!("Wrote {}", lock.strip_prefix(&s.root).unwrap_or(&lock).display()));
    Ok(ExitCode::SUCCESS)
}
