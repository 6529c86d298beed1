//! `dp clean`: removes the project's `clean-targets` (dbt_project.yml; in
//! warehouse.toml `[paths] clean`; default: the target folder), as `dbt
//! clean` does. It refuses to remove a source folder (models, seeds,
//! macros, ...) or anything outside the project. The warehouse is never a
//! default target.

use std::process::ExitCode;

use crate::cli::Printer;
use crate::cli::args::GlobalArgs;
use crate::cli::context::settings;

pub fn run(g: &GlobalArgs, printer: &Printer) -> anyhow::Result<ExitCode> {
    let s = settings(g, None)?;
    let p = &s.paths;
    let sources: Vec<&String> = [&p.models, &p.seeds, &p.macros, &p.tests, &p.snapshots, &p.analyses, &p.checkpoints, &p.docs].into_iter().flatten().collect();
    let normalize = |rel: &str| crate::config::normalize_path(&s.root.join(rel));
    let protected: Vec<_> = sources.iter().map(|d| normalize(d)).collect();
    for target in &p.clean {
        let path = normalize(target);
        if protected.contains(&path) || path == s.root {
            anyhow::bail!("dp will not clean '{target}': it is a source folder of the project\n  hint: remove it from clean-targets");
        }
        if !path.starts_with(&s.root) {
            anyhow::bail!(
                "dp will not clean '{target}': it is outside the project ({})\n  hint: clean-targets must be folders inside the project",
                s.root.display()
            );
        }
    }
    for target in &p.clean {
        let path = normalize(target);
        printer.info(format!("Checking {target}/*"));
        if path.exists() {
            std::fs::remove_dir_all(&path).or_else(|_| std::fs::remove_file(&path)).map_err(|e| anyhow::anyhow!("{}: {e}", path.display()))?;
            printer.info(format!("  Cleaned {target}/*"));
        }
    }
    printer.info("Finished cleaning all paths.");
    Ok(ExitCode::SUCCESS)
}
