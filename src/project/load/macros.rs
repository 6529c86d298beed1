//! Stage 2: macros and generic tests (`{% macro %}`, `{% test %}` blocks)
//! from the project's macro and test paths and every package's macro
//! paths. Custom materializations are reported and ignored.

use indexmap::IndexMap;
use std::collections::HashSet;

use super::packages::{PackageDir, units};
use super::{LoadError, list, read};
use crate::config::Settings;
use crate::fs::FileSystem;
use crate::jinja::blocks::find_blocks;
use crate::jinja::{MacroSource, block_to_macro};
use crate::project::nodes::Macro;

/// What the macro stage found.
pub struct Macros {
    /// By unique id (`macro.<package>.<name>`), for the manifest.
    pub macros: IndexMap<String, Macro>,
    /// What the Jinja environment compiles.
    pub sources: Vec<MacroSource>,
    /// Files under the test paths that hold `{% test %}` blocks (not singular tests).
    pub test_files_with_blocks: HashSet<String>,
}

pub fn load(settings: &Settings, fs: &dyn FileSystem, packages: &[PackageDir], warnings: &mut Vec<String>) -> Result<Macros, LoadError> {
    let mut macro_sources: Vec<MacroSource> = vec![];
    let mut macros: IndexMap<String, Macro> = IndexMap::new();
    let mut macro_files: Vec<(String, String)> = vec![];
    for unit in units(settings, packages) {
        for p in &unit.paths.macros {
            for f in list(fs, p, &[".sql", ".jinja"])? {
                macro_files.push((unit.package.to_string(), f));
            }
        }
        // Generic tests (`{% test %}` blocks) may live under the test paths.
        for p in &unit.paths.tests {
            for f in list(fs, p, &[".sql"])? {
                macro_files.push((unit.package.to_string(), f));
            }
        }
    }
    let mut test_files_with_blocks = HashSet::new();
    for (pkg, f) in &macro_files {
        let text = read(fs, f)?;
        if !text.contains("{%") {
            continue;
        }
        let blocks =
            find_blocks(&text, &["macro", "test", "materialization"]).map_err(|e| LoadError::Located { file: f.clone(), line: e.line, message: e.message })?;
        let mut floor = 0;
        for b in blocks {
            let (start, end) = b.dbt_span(&text, floor);
            floor = end;
            if b.kind == "materialization" {
                warnings.push(format!("{f}:{}: custom materialization '{}' is not supported by dp and was ignored", b.line, b.name));
                continue;
            }
            if b.kind == "test" {
                test_files_with_blocks.insert(f.clone());
            }
            let ms = block_to_macro(&b, pkg, f);
            let uid = format!("macro.{}.{}", pkg, ms.name);
            if let Some(prev) = macros.get(&uid) {
                return Err(LoadError::Duplicate {
                    kind: "macro".into(),
                    name: ms.name.clone(),
                    first: format!("{}:{}", prev.original_file_path, prev.line),
                    second: format!("{f}:{}", b.line),
                });
            }
            let path = f.clone();
            macros.insert(
                uid.clone(),
                Macro {
                    unique_id: uid,
                    name: ms.name.clone(),
                    package_name: pkg.clone(),
                    path: path.clone(),
                    original_file_path: path,
                    macro_sql: text[start..end].to_string(),
                    arguments: crate::jinja::macro_arguments(b.args.as_deref()),
                    description: String::new(),
                    line: b.line,
                    patch: None,
                },
            );
            macro_sources.push(ms);
        }
    }

    Ok(Macros { macros, sources: macro_sources, test_files_with_blocks })
}
