//! Stage 4: one node per file (models, seeds, analyses, singular tests)
//! or per block (snapshots), and docs blocks. Names must be unique per
//! kind (models, seeds and snapshots share one namespace, as `ref` does).

use indexmap::IndexMap;
use rayon::prelude::*;
use std::collections::HashSet;

use super::packages::{PackageDir, Unit, units};
use super::{LoadError, list, read, split_path};
use crate::config::{Paths, Settings};
use crate::fs::FileSystem;
use crate::jinja::blocks::find_blocks;
use crate::project::nodes::{DocBlock, Node, NodeMap, ResourceType};

/// The project's nodes, with the name index that finds duplicates.
#[derive(Default)]
pub struct NodeSet {
    pub nodes: NodeMap,
    /// (kind, package, `name:version`) → unique id; models, seeds and
    /// snapshots share the `Model` kind.
    pub by_name: IndexMap<(ResourceType, String, String), String>,
}

impl NodeSet {
    /// Adds a node, or fails naming both files when its name is taken.
    pub fn add(&mut self, node: Node) -> Result<(), LoadError> {
        let refable = matches!(node.resource_type, ResourceType::Model | ResourceType::Seed | ResourceType::Snapshot);
        let key_type = if refable { ResourceType::Model } else { node.resource_type };
        let key = (key_type, node.package_name.clone(), format!("{}:{}", node.name, node.version.clone().unwrap_or_default()));
        if let Some(prev) = self.by_name.get(&key) {
            let prev = &self.nodes[prev];
            return Err(LoadError::Duplicate {
                kind: node.resource_type.as_str().into(),
                name: node.name.clone(),
                first: prev.original_file_path.clone(),
                second: node.original_file_path.clone(),
            });
        }
        self.by_name.insert(key, node.unique_id.clone());
        self.nodes.insert(node.unique_id.clone(), node);
        Ok(())
    }
}

/// Models, seeds, snapshots, analyses and singular tests of the root
/// project and of every package.
pub fn load(
    settings: &Settings,
    packages: &[PackageDir],
    fs: &dyn FileSystem,
    test_files_with_blocks: &HashSet<String>,
    warnings: &mut Vec<String>,
) -> Result<NodeSet, LoadError> {
    let mut set = NodeSet::default();
    for unit in units(settings, packages) {
        load_unit(&unit, fs, test_files_with_blocks, warnings, &mut set)?;
    }
    Ok(set)
}

fn load_unit(
    unit: &Unit,
    fs: &dyn FileSystem,
    test_files_with_blocks: &HashSet<String>,
    warnings: &mut Vec<String>,
    set: &mut NodeSet,
) -> Result<(), LoadError> {
    let pkg = unit.package.to_string();
    let paths = unit.paths;
    let fqn = |dirs: Vec<String>, name: String| -> Vec<String> { std::iter::once(pkg.clone()).chain(dirs).chain([name]).collect() };
    // Models.
    for base in &paths.models {
        // read in parallel (tens of thousands of small files in a large
        // project), added in file order: the first error is the same
        let files = list(fs, base, &[".sql"])?;
        let texts: Vec<Result<String, LoadError>> = files.par_iter().map(|f| read(fs, f)).collect();
        for (f, text) in files.iter().zip(texts) {
            let (rel, dirs, name) = split_path(base, f);
            let mut n = Node::new(ResourceType::Model, &pkg, &name, f);
            n.path = rel;
            n.fqn = fqn(dirs, name);
            n.raw_code = text?;
            set.add(n)?;
        }
        for f in list(fs, base, &[".py"])? {
            warnings.push(format!("{f}: Python models are not supported by dp and were skipped"));
        }
    }
    // Seeds.
    for base in &paths.seeds {
        for f in list(fs, base, &[".csv"])? {
            let (rel, dirs, name) = split_path(base, &f);
            let mut n = Node::new(ResourceType::Seed, &pkg, &name, &f);
            n.path = rel;
            n.fqn = fqn(dirs, name);
            // dbt's checksum of the file, for `state:modified` (seeds have no code)
            let contents = read(fs, &f)?;
            n.extra.insert("checksum".into(), crate::util::checksum::seed_checksum(&contents, &f));
            set.add(n)?;
        }
    }
    // Snapshots ({% snapshot %} blocks).
    for base in &paths.snapshots {
        for f in list(fs, base, &[".sql"])? {
            let text = read(fs, &f)?;
            let (rel, dirs, stem) = split_path(base, &f);
            let blocks = find_blocks(&text, &["snapshot"]).map_err(|e| LoadError::Located { file: f.clone(), line: e.line, message: e.message })?;
            for b in blocks {
                let mut n = Node::new(ResourceType::Snapshot, &pkg, &b.name, &f);
                n.path = rel.clone();
                // dbt's snapshot fqn includes the file name
                n.fqn = fqn(dirs.clone().into_iter().chain([stem.clone()]).collect(), b.name.clone());
                n.raw_code = b.body.clone();
                n.line = Some(b.line);
                set.add(n)?;
            }
        }
    }
    // Analyses.
    for base in &paths.analyses {
        for f in list(fs, base, &[".sql"])? {
            let (rel, dirs, name) = split_path(base, &f);
            let mut n = Node::new(ResourceType::Analysis, &pkg, &name, &f);
            n.path = format!("analysis/{rel}");
            n.fqn = fqn(std::iter::once("analysis".to_string()).chain(dirs).collect(), name);
            n.raw_code = read(fs, &f)?;
            set.add(n)?;
        }
    }
    // Singular tests.
    for base in &paths.tests {
        for f in list(fs, base, &[".sql"])? {
            if test_files_with_blocks.contains(&f) {
                continue;
            }
            let (rel, dirs, name) = split_path(base, &f);
            // generic tests' macros and unit tests' fixtures, as dbt skips them
            if dirs.first().is_some_and(|d| d == "generic" || d == "fixtures") {
                continue;
            }
            let mut n = Node::new(ResourceType::Test, &pkg, &name, &f);
            n.path = rel;
            n.fqn = fqn(dirs, name);
            n.raw_code = read(fs, &f)?;
            set.add(n)?;
        }
    }

    Ok(())
}

/// `{% docs %}` blocks in the model and docs paths.
pub fn docs(settings: &Settings, packages: &[PackageDir], fs: &dyn FileSystem) -> Result<IndexMap<String, DocBlock>, LoadError> {
    let mut docs = IndexMap::new();
    for unit in units(settings, packages) {
        unit_docs(unit.package, unit.paths, fs, &mut docs)?;
    }
    Ok(docs)
}

fn unit_docs(pkg: &str, paths: &Paths, fs: &dyn FileSystem, docs: &mut IndexMap<String, DocBlock>) -> Result<(), LoadError> {
    let root_pkg = pkg.to_string();
    for base in paths.models.iter().chain(paths.docs.iter()) {
        for f in list(fs, base, &[".md"])? {
            let text = read(fs, &f)?;
            for b in find_blocks(&text, &["docs"]).map_err(|e| LoadError::Located { file: f.clone(), line: e.line, message: e.message })? {
                let uid = format!("doc.{}.{}", root_pkg, b.name);
                docs.insert(
                    uid.clone(),
                    DocBlock {
                        unique_id: uid,
                        name: b.name.clone(),
                        package_name: root_pkg.clone(),
                        path: f.clone(),
                        original_file_path: f.clone(),
                        block_contents: b.body.trim().to_string(),
                    },
                );
            }
        }
    }

    Ok(())
}
