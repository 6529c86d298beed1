//! Stage 4: one node per file (models, seeds, analyses, singular tests)
//! or per block (snapshots), and docs blocks. Names must be unique per
//! kind (models, seeds and snapshots share one namespace, as `ref` does).

use indexmap::IndexMap;
use std::collections::HashSet;

use super::{LoadError, list, read, split_path};
use crate::config::Settings;
use crate::fs::FileSystem;
use crate::jinja::blocks::find_blocks;
use crate::project::nodes::{DocBlock, Node, ResourceType};

/// The project's nodes, with the name index that finds duplicates.
#[derive(Default)]
pub struct NodeSet {
    pub nodes: IndexMap<String, Node>,
    /// (kind, `name:version`) → unique id; models, seeds and snapshots share the `Model` kind.
    pub by_name: IndexMap<(ResourceType, String), String>,
}

impl NodeSet {
    /// Adds a node, or fails naming both files when its name is taken.
    pub fn add(&mut self, node: Node) -> Result<(), LoadError> {
        let refable = matches!(node.resource_type, ResourceType::Model | ResourceType::Seed | ResourceType::Snapshot);
        let key_type = if refable { ResourceType::Model } else { node.resource_type };
        let key = (key_type, format!("{}:{}", node.name, node.version.clone().unwrap_or_default()));
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

/// Models, seeds, snapshots, analyses and singular tests of the root project.
pub fn load(settings: &Settings, fs: &dyn FileSystem, test_files_with_blocks: &HashSet<String>, warnings: &mut Vec<String>) -> Result<NodeSet, LoadError> {
    let root_pkg = settings.project_name.clone();
    let mut set = NodeSet::default();
    // Models.
    for base in &settings.paths.models {
        for f in list(fs, base, &[".sql"])? {
            let (rel, dirs, name) = split_path(base, &f);
            let mut n = Node::new(ResourceType::Model, &root_pkg, &name, &f);
            n.path = rel;
            n.fqn = std::iter::once(root_pkg.clone()).chain(dirs).chain(std::iter::once(name)).collect();
            n.raw_code = read(fs, &f)?;
            set.add(n)?;
        }
        for f in list(fs, base, &[".py"])? {
            warnings.push(format!("{f}: Python models are not supported by dp and were skipped"));
        }
    }
    // Seeds.
    for base in &settings.paths.seeds {
        for f in list(fs, base, &[".csv"])? {
            let (rel, dirs, name) = split_path(base, &f);
            let mut n = Node::new(ResourceType::Seed, &root_pkg, &name, &f);
            n.path = rel;
            n.fqn = std::iter::once(root_pkg.clone()).chain(dirs).chain(std::iter::once(name)).collect();
            set.add(n)?;
        }
    }
    // Snapshots ({% snapshot %} blocks).
    for base in &settings.paths.snapshots {
        for f in list(fs, base, &[".sql"])? {
            let text = read(fs, &f)?;
            let (rel, dirs, stem) = split_path(base, &f);
            let blocks = find_blocks(&text, &["snapshot"]).map_err(|e| LoadError::Located { file: f.clone(), line: e.line, message: e.message })?;
            for b in blocks {
                let mut n = Node::new(ResourceType::Snapshot, &root_pkg, &b.name, &f);
                n.path = rel.clone();
                // dbt's snapshot fqn includes the file name
                n.fqn = std::iter::once(root_pkg.clone()).chain(dirs.clone()).chain([stem.clone(), b.name.clone()]).collect();
                n.raw_code = b.body.clone();
                n.line = Some(b.line);
                set.add(n)?;
            }
        }
    }
    // Analyses.
    for base in &settings.paths.analyses {
        for f in list(fs, base, &[".sql"])? {
            let (rel, dirs, name) = split_path(base, &f);
            let mut n = Node::new(ResourceType::Analysis, &root_pkg, &name, &f);
            n.path = format!("analysis/{rel}");
            n.fqn = std::iter::once(root_pkg.clone()).chain(["analysis".to_string()]).chain(dirs).chain([name]).collect();
            n.raw_code = read(fs, &f)?;
            set.add(n)?;
        }
    }
    // Singular tests.
    for base in &settings.paths.tests {
        for f in list(fs, base, &[".sql"])? {
            if test_files_with_blocks.contains(&f) {
                continue;
            }
            let (rel, dirs, name) = split_path(base, &f);
            if dirs.first().is_some_and(|d| d == "generic") {
                continue;
            }
            let mut n = Node::new(ResourceType::Test, &root_pkg, &name, &f);
            n.path = rel;
            n.fqn = std::iter::once(root_pkg.clone()).chain(dirs).chain([name]).collect();
            n.raw_code = read(fs, &f)?;
            set.add(n)?;
        }
    }

    Ok(set)
}

/// `{% docs %}` blocks in the model and docs paths.
pub fn docs(settings: &Settings, fs: &dyn FileSystem) -> Result<IndexMap<String, DocBlock>, LoadError> {
    let root_pkg = settings.project_name.clone();
    let mut docs = IndexMap::new();
    let doc_dirs: Vec<&String> = settings.paths.models.iter().chain(settings.paths.docs.iter()).collect();
    for base in doc_dirs {
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

    Ok(docs)
}
