//! Which node a `ref()` names. One rule for the DAG and for compilation:
//!
//! 1. `ref('pkg', 'name')` looks only in `pkg`; `v=` picks that version.
//! 2. Otherwise, with more than one candidate: the calling node's own
//!    package first, then the root project (dbt's
//!    `require_ref_prefers_node_package_to_root` order).
//! 3. A versioned model without `v=` is its `latest_version` (else its
//!    highest version).

use std::collections::HashMap;

use super::nodes::{Node, RefCall, ResourceType, compare_versions};

/// A node `ref()` can name.
#[derive(Debug, Clone)]
pub struct RefTarget {
    pub uid: String,
    pub package: String,
    pub version: Option<String>,
    pub latest: bool,
}

/// Refable nodes (models, seeds, snapshots) by name.
#[derive(Debug, Clone, Default)]
pub struct RefIndex {
    root: String,
    by_name: HashMap<String, Vec<RefTarget>>,
}

/// Why a `ref()` names no single node.
#[derive(Debug)]
pub enum RefMiss<'a> {
    NotFound,
    Ambiguous(Vec<&'a RefTarget>),
}

impl RefIndex {
    pub fn new<'a>(root: &str, nodes: impl IntoIterator<Item = &'a Node>) -> RefIndex {
        let mut by_name: HashMap<String, Vec<RefTarget>> = HashMap::new();
        for n in nodes {
            if matches!(n.resource_type, ResourceType::Model | ResourceType::Seed | ResourceType::Snapshot) {
                let latest = n.extra.get("latest_version").and_then(|l| l.as_str()).is_some_and(|l| Some(l) == n.version.as_deref());
                by_name.entry(n.name.clone()).or_default().push(RefTarget {
                    uid: n.unique_id.clone(),
                    package: n.package_name.clone(),
                    version: n.version.clone(),
                    latest,
                });
            }
        }
        RefIndex { root: root.to_string(), by_name }
    }

    /// Every refable name (for "did you mean" hints).
    pub fn names(&self) -> impl Iterator<Item = &str> {
        self.by_name.keys().map(String::as_str)
    }

    /// The node `call`, made from a node of package `from`, names.
    pub fn resolve(&self, from: &str, call: &RefCall) -> Result<&RefTarget, RefMiss<'_>> {
        let cands: Vec<&RefTarget> = self
            .by_name
            .get(&call.name)
            .into_iter()
            .flatten()
            .filter(|t| call.package.as_ref().is_none_or(|p| *p == t.package))
            .filter(|t| call.version.as_ref().is_none_or(|v| t.version.as_ref() == Some(v)))
            .collect();
        if cands.len() <= 1 {
            return cands.first().copied().ok_or(RefMiss::NotFound);
        }
        let pool: Vec<&RefTarget> = [from, self.root.as_str()]
            .iter()
            .map(|p| cands.iter().copied().filter(|t| t.package == *p).collect::<Vec<_>>())
            .find(|v| !v.is_empty())
            .unwrap_or_else(|| cands.clone());
        if let [one] = pool.as_slice() {
            return Ok(one);
        }
        if call.version.is_none() && pool.iter().all(|t| t.version.is_some()) && pool.iter().all(|t| t.package == pool[0].package) {
            let pick = pool
                .iter()
                .find(|t| t.latest)
                .or_else(|| pool.iter().max_by(|a, b| compare_versions(a.version.as_deref().unwrap_or(""), b.version.as_deref().unwrap_or(""))));
            if let Some(t) = pick {
                return Ok(t);
            }
        }
        Err(RefMiss::Ambiguous(pool))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn node(pkg: &str, name: &str, version: Option<&str>, latest: Option<&str>) -> Node {
        let mut n = Node::new(ResourceType::Model, pkg, name, "f.sql");
        if let Some(v) = version {
            n.unique_id = format!("model.{pkg}.{name}.v{v}");
            n.version = Some(v.into());
        }
        if let Some(l) = latest {
            n.extra.insert("latest_version".into(), l.into());
        }
        n
    }

    fn call(name: &str, package: Option<&str>, version: Option<&str>) -> RefCall {
        RefCall { name: name.into(), package: package.map(String::from), version: version.map(String::from) }
    }

    #[test]
    fn own_package_then_root_then_versions() {
        let nodes = [
            node("root", "a", None, None),
            node("pkg", "a", None, None),
            node("other", "a", None, None),
            node("root", "m", Some("1"), Some("2")),
            node("root", "m", Some("2"), Some("2")),
            node("root", "m", Some("3"), Some("2")),
            node("root", "n", Some("9"), None),
            node("root", "n", Some("10"), None),
        ];
        let idx = RefIndex::new("root", &nodes);
        let uid = |from: &str, c: RefCall| idx.resolve(from, &c).map(|t| t.uid.clone()).map_err(|e| format!("{e:?}").split('(').next().unwrap().to_string());
        assert_eq!(uid("pkg", call("a", None, None)), Ok("model.pkg.a".into()));
        assert_eq!(uid("other", call("a", None, None)), Ok("model.other.a".into()));
        assert_eq!(uid("third", call("a", None, None)), Ok("model.root.a".into()));
        assert_eq!(uid("root", call("a", Some("pkg"), None)), Ok("model.pkg.a".into()));
        assert_eq!(uid("root", call("m", None, None)), Ok("model.root.m.v2".into()));
        assert_eq!(uid("root", call("m", None, Some("3"))), Ok("model.root.m.v3".into()));
        assert_eq!(uid("root", call("n", None, None)), Ok("model.root.n.v10".into()));
        assert_eq!(uid("root", call("zz", None, None)), Err("NotFound".into()));
    }
}
