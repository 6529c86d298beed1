//! Stage 1: packages installed under `dbt_packages/` (one folder each, with
//! its own `dbt_project.yml`), sorted by name. Each is a project of its own:
//! its paths, vars and config trees come from its `dbt_project.yml`.

use super::{LoadError, join, list, read};
use crate::config::{ConfigTree, PackageProject, Paths, Settings};
use crate::fs::FileSystem;
use crate::project::nodes::ResourceType;

/// An installed package: its name, folder, file paths and configs.
pub struct PackageDir {
    pub name: String,
    pub root: String,
    /// Its file paths, joined to its folder (`dbt_packages/x/models`).
    pub paths: Paths,
    /// Its own `dbt_project.yml`: config trees (`models:`, `seeds:`, ...)
    /// and `vars:` (its nodes see them under the root's).
    pub project: PackageProject,
}

impl PackageDir {
    /// The package's own config tree for nodes of `rt`.
    pub fn tree(&self, rt: ResourceType) -> &ConfigTree {
        match rt {
            ResourceType::Seed => &self.project.seeds,
            ResourceType::Snapshot => &self.project.snapshots,
            ResourceType::Test => &self.project.tests,
            ResourceType::Source => &self.project.sources,
            _ => &self.project.models,
        }
    }
}

pub fn discover(settings: &Settings, fs: &dyn FileSystem) -> Result<Vec<PackageDir>, LoadError> {
    let mut packages: Vec<PackageDir> = vec![];
    for f in list(fs, &settings.paths.packages, &["dbt_project.yml"])? {
        let rel = f.strip_prefix(&format!("{}/", settings.paths.packages)).unwrap_or(&f);
        if rel.matches('/').count() != 1 {
            continue;
        }
        let dir = f.trim_end_matches("/dbt_project.yml").to_string();
        let text = read(fs, &f)?;
        let project = PackageProject::parse(&text, &f).map_err(|e| match e {
            crate::config::ConfigError::Parse { file, message } => LoadError::Yaml { file, message },
            other => LoadError::Config(other),
        })?;
        let name = project.name.clone().unwrap_or_else(|| rel.split('/').next().unwrap_or("").to_string());
        let j = |v: &[String]| v.iter().map(|p| join(&dir, p)).collect::<Vec<_>>();
        let p = &project.paths;
        let paths = Paths {
            models: j(&p.models),
            seeds: j(&p.seeds),
            macros: j(&p.macros),
            tests: j(&p.tests),
            snapshots: j(&p.snapshots),
            analyses: j(&p.analyses),
            checkpoints: vec![],
            docs: j(&p.docs),
            ..Paths::default()
        };
        packages.push(PackageDir { name, root: dir, paths, project });
    }
    packages.sort_by(|a, b| a.name.cmp(&b.name));

    Ok(packages)
}

/// A project whose files are loaded: the root project or a package.
pub struct Unit<'a> {
    pub package: &'a str,
    pub paths: &'a Paths,
}

/// The root project first, then each package.
pub fn units<'a>(settings: &'a Settings, packages: &'a [PackageDir]) -> Vec<Unit<'a>> {
    std::iter::once(Unit { package: &settings.project_name, paths: &settings.paths })
        .chain(packages.iter().map(|p| Unit { package: &p.name, paths: &p.paths }))
        .collect()
}

/// Checks every project's `require-dbt-version` against the dbt version dp
/// follows, as dbt does (`DBT_VERSION_CHECK=false` skips it, as in dbt).
pub fn check_versions(settings: &Settings, packages: &[PackageDir], fs: &dyn FileSystem, env: &super::EnvLookup) -> Result<(), LoadError> {
    if env("DBT_VERSION_CHECK").is_some_and(|v| matches!(v.to_ascii_lowercase().as_str(), "0" | "false" | "no")) {
        return Ok(());
    }
    let root_file = crate::config::DBT_PROJECT_YML.to_string();
    let projects = std::iter::once((settings.project_name.as_str(), root_file, &settings.require_dbt_version))
        .chain(packages.iter().map(|p| (p.name.as_str(), join(&p.root, "dbt_project.yml"), &p.project.require_dbt_version)));
    for (name, file, required) in projects {
        check_one(name, &file, required, fs)?;
    }
    Ok(())
}

fn check_one(name: &str, file: &str, required: &[String], fs: &dyn FileSystem) -> Result<(), LoadError> {
    use crate::util::dbt_version::{DBT_VERSION, satisfies};
    if required.is_empty() {
        return Ok(());
    }
    let line =
        || fs.read_to_string(file).ok().and_then(|t| t.lines().position(|l| l.trim_start().starts_with("require-dbt-version")).map(|i| i + 1)).unwrap_or(1);
    match satisfies(DBT_VERSION, required) {
        Ok(true) => Ok(()),
        Ok(false) => Err(LoadError::Located {
            file: file.to_string(),
            line: line(),
            message: format!(
                "'{name}' requires dbt {}, and dp follows dbt {DBT_VERSION}\n  hint: install a version of '{name}' made for dbt {DBT_VERSION}, or set DBT_VERSION_CHECK=false to load it anyway",
                required.join(", ")
            ),
        }),
        Err(e) => Err(LoadError::Located { file: file.to_string(), line: line(), message: format!("require-dbt-version: {e}") }),
    }
}
