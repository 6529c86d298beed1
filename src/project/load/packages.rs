//! Stage 1: packages installed under `dbt_packages/` (one folder each, with
//! its own `dbt_project.yml`), sorted by name.

use indexmap::IndexMap;
use serde_json::Value;

use super::{LoadError, list, read};
use crate::config::Settings;
use crate::fs::FileSystem;

/// An installed package: its name, folder and macro paths.
pub struct PackageDir {
    pub name: String,
    pub root: String,
    pub macro_paths: Vec<String>,
    /// The package's own `vars:` (its nodes see them under the root's).
    pub vars: IndexMap<String, Value>,
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
        let y: Value = crate::util::yaml::from_str(&text).map_err(|message| LoadError::Yaml { file: f.clone(), message })?;
        let name = y.get("name").and_then(Value::as_str).unwrap_or(rel.split('/').next().unwrap_or("")).to_string();
        let macro_paths = y
            .get("macro-paths")
            .and_then(Value::as_array)
            .map(|a| a.iter().filter_map(|v| v.as_str().map(String::from)).collect())
            .unwrap_or_else(|| vec!["macros".to_string()]);
        let vars = y.get("vars").and_then(Value::as_object).map(|o| o.iter().map(|(k, v)| (k.clone(), v.clone())).collect()).unwrap_or_default();
        packages.push(PackageDir { name, root: dir, macro_paths, vars });
    }
    packages.sort_by(|a, b| a.name.cmp(&b.name));

    Ok(packages)
}
