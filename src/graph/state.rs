//! What `state:` selectors compare against (`--state DIR`): the nodes of
//! the current project that are new, or modified in some way, relative to a
//! previous manifest. [`crate::compile::state`] computes it; selection
//! only looks it up.

use std::collections::HashSet;

/// The ways a node can differ from its previous version, as dbt's
/// `state:modified.<part>` names them.
pub const MODIFIED_PARTS: &[&str] = &["body", "configs", "relation", "persisted_descriptions", "macros", "contract"];

/// Unique ids of the current project by how they compare with the state.
#[derive(Debug, Clone)]
pub struct StateSets {
    /// In the current project, not in the state's manifest.
    pub new: HashSet<String>,
    /// In both.
    pub old: HashSet<String>,
    pub body: HashSet<String>,
    pub configs: HashSet<String>,
    pub relation: HashSet<String>,
    pub persisted_descriptions: HashSet<String>,
    pub macros: HashSet<String>,
    pub contract: HashSet<String>,
    /// Moved or renamed (its fqn changed): modified, under no part's name.
    pub fqn: HashSet<String>,
    /// Each node's status in the state's run_results.json (`result:<status>`).
    pub results: std::collections::HashMap<String, String>,
    /// Sources whose newest row is newer in the current target/sources.json
    /// than in the state's (`source_status:fresher`); `Err` says which
    /// sources.json is missing.
    pub fresher: Result<HashSet<String>, String>,
}

impl Default for StateSets {
    fn default() -> StateSets {
        StateSets {
            new: HashSet::new(),
            old: HashSet::new(),
            body: HashSet::new(),
            configs: HashSet::new(),
            relation: HashSet::new(),
            persisted_descriptions: HashSet::new(),
            macros: HashSet::new(),
            contract: HashSet::new(),
            fqn: HashSet::new(),
            results: Default::default(),
            fresher: Err("no sources.json was read".into()),
        }
    }
}

impl StateSets {
    fn part(&self, name: &str) -> Option<&HashSet<String>> {
        Some(match name {
            "body" => &self.body,
            "configs" => &self.configs,
            "relation" => &self.relation,
            "persisted_descriptions" => &self.persisted_descriptions,
            "macros" => &self.macros,
            "contract" => &self.contract,
            _ => return None,
        })
    }

    fn modified(&self, uid: &str) -> bool {
        // dbt 1.11's `SourceDefinition.same_contents(None)` is true: a new
        // source is `state:new` but not `state:modified`
        (self.new.contains(uid) && !uid.starts_with("source."))
            || self.fqn.contains(uid)
            || MODIFIED_PARTS.iter().filter_map(|p| self.part(p)).any(|s| s.contains(uid))
    }

    /// Whether `uid` matches `source_status:<value>`: `fresher` is the only
    /// value dbt 1.11 matches anything with (others select nothing).
    pub fn source_status(&self, value: &str, uid: &str) -> Result<bool, String> {
        let fresher = self.fresher.as_ref().map_err(Clone::clone)?;
        Ok(value == "fresher" && fresher.contains(uid))
    }

    /// Whether `uid` ended with `status` in the state's run_results.json.
    pub fn result_is(&self, status: &str, uid: &str) -> bool {
        self.results.get(uid).is_some_and(|s| s == status)
    }

    /// Whether `uid` matches `state:<value>` (`new`, `old`, `modified`,
    /// `unmodified`, `modified.<part>`); `Err` names the valid values.
    pub fn matches(&self, value: &str, uid: &str) -> Result<bool, String> {
        Ok(match value {
            "new" => self.new.contains(uid),
            "old" => self.old.contains(uid),
            "modified" => self.modified(uid),
            "unmodified" => self.old.contains(uid) && !self.modified(uid),
            // as dbt, a new node's every part is modified, except `macros`
            "modified.macros" => self.macros.contains(uid),
            other => match other.strip_prefix("modified.").and_then(|p| self.part(p)) {
                Some(set) => set.contains(uid) || self.new.contains(uid),
                None => {
                    let parts: Vec<String> = MODIFIED_PARTS.iter().map(|p| format!("modified.{p}")).collect();
                    return Err(format!("unknown state selector '{other}': use new, old, modified, unmodified or {}", parts.join(", ")));
                }
            },
        })
    }
}
