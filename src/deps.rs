//! `dp deps`: installs the packages of `packages.yml` (or
//! `dependencies.yml`) into the packages folder (`dbt_packages/`) and
//! writes `package-lock.yml`, as `dbt deps` does.
//!
//! - `local: <path>`: linked (a symlink, as dbt does; a copy where links are
//!   not possible) under the name in the package's own `dbt_project.yml`.
//! - `git: <url>` (with `revision`, `subdirectory`): cloned with the `git`
//!   command into a scratch folder, then moved into place.
//! - `package: <hub name>` and `tarball: <url>`: need the dbt package hub or
//!   an HTTP download, which dp does not do; when the package is already
//!   installed it is kept (and reported), otherwise the error says how to
//!   install it (`local:` or `git:`).
//!
//! A package that cannot be installed never removes the installed copy.

use serde_json::Value;
use std::path::{Path, PathBuf};

/// One entry of `packages:`.
#[derive(Debug, Clone, PartialEq)]
pub enum Spec {
    Local { path: String },
    Git { url: String, revision: Option<String>, subdirectory: Option<String> },
    Hub { package: String, version: Option<String> },
    Tarball { url: String, name: Option<String> },
}

/// What happened to one package.
#[derive(Debug, Clone, PartialEq)]
pub enum Outcome {
    /// Installed (linked, copied or cloned) as `name`.
    Installed { name: String, how: &'static str },
    /// Not reachable, but an installed copy was kept.
    Kept { name: String, reason: String },
}

#[derive(Debug, thiserror::Error)]
pub enum DepsError {
    #[error("{file}: {message}\n  hint: each entry needs one of local:, git:, package: or tarball: (see dbt's packages.yml)")]
    Spec { file: String, message: String },
    #[error("{what}: {message}")]
    Install { what: String, message: String },
    #[error("{path}: {source}")]
    Io { path: String, source: std::io::Error },
}

fn io(path: &Path) -> impl FnOnce(std::io::Error) -> DepsError + '_ {
    move |source| DepsError::Io { path: path.display().to_string(), source }
}

/// The project's package specs: `packages.yml`, else `dependencies.yml`
/// (its `packages:` key); none when neither exists. Also returns the
/// entries as written (for the lock file's hash).
pub fn read_specs(root: &Path) -> Result<(Vec<Value>, Vec<Spec>), DepsError> {
    for file in ["packages.yml", "dependencies.yml"] {
        let path = root.join(file);
        if !path.exists() {
            continue;
        }
        let text = std::fs::read_to_string(&path).map_err(io(&path))?;
        let doc: Value = crate::util::yaml::from_str(&text).map_err(|message| DepsError::Spec { file: file.into(), message })?;
        let entries = match doc.get("packages") {
            Some(Value::Array(a)) => a.clone(),
            None | Some(Value::Null) => vec![],
            Some(_) => return Err(DepsError::Spec { file: file.into(), message: "`packages` must be a list".into() }),
        };
        let specs = entries
            .iter()
            .enumerate()
            .map(|(i, e)| parse_spec(e).map_err(|message| DepsError::Spec { file: file.into(), message: format!("packages[{i}]: {message}") }));
        return Ok((entries.clone(), specs.collect::<Result<_, _>>()?));
    }
    Ok((vec![], vec![]))
}

fn parse_spec(e: &Value) -> Result<Spec, String> {
    let s = |k: &str| {
        e.get(k).and_then(|v| match v {
            Value::String(s) => Some(s.clone()),
            Value::Number(n) => Some(n.to_string()),
            _ => None,
        })
    };
    let version = match e.get("version") {
        Some(Value::Array(a)) => Some(a.iter().filter_map(Value::as_str).collect::<Vec<_>>().join(", ")),
        _ => s("version"),
    };
    if let Some(path) = s("local") {
        Ok(Spec::Local { path })
    } else if let Some(url) = s("git") {
        Ok(Spec::Git { url, revision: s("revision"), subdirectory: s("subdirectory") })
    } else if let Some(package) = s("package") {
        Ok(Spec::Hub { package, version })
    } else if let Some(url) = s("tarball") {
        Ok(Spec::Tarball { url, name: s("name") })
    } else {
        Err(format!("no local:, git:, package: or tarball: in {e}"))
    }
}

/// The name a package folder declares in its `dbt_project.yml`.
fn package_name(dir: &Path) -> Result<String, DepsError> {
    let file = dir.join("dbt_project.yml");
    let text = std::fs::read_to_string(&file).map_err(io(&file))?;
    let doc: Value = crate::util::yaml::from_str(&text).map_err(|message| DepsError::Spec { file: file.display().to_string(), message })?;
    doc.get("name").and_then(Value::as_str).map(String::from).ok_or_else(|| DepsError::Spec { file: file.display().to_string(), message: "no `name`".into() })
}

/// The installed folder of a hub package (`dbt-labs/dbt_utils` → `dbt_utils`).
fn hub_folder(package: &str) -> String {
    package.rsplit('/').next().unwrap_or(package).to_string()
}

/// Installs every spec into `install_dir`; returns each outcome in order.
/// Stops at the first package that can neither be installed nor kept.
pub fn install(root: &Path, install_dir: &Path, specs: &[Spec]) -> Result<Vec<Outcome>, DepsError> {
    std::fs::create_dir_all(install_dir).map_err(io(install_dir))?;
    specs.iter().map(|s| install_one(root, install_dir, s)).collect()
}

fn install_one(root: &Path, install_dir: &Path, spec: &Spec) -> Result<Outcome, DepsError> {
    match spec {
        Spec::Local { path } => {
            let src = root.join(path);
            let src =
                src.canonicalize().map_err(|e| DepsError::Install { what: format!("local package {path}"), message: format!("{e} ({})", src.display()) })?;
            let name = package_name(&src)?;
            let dst = install_dir.join(&name);
            remove(&dst)?;
            let how = link_or_copy(&src, &dst)?;
            Ok(Outcome::Installed { name, how })
        }
        Spec::Git { url, revision, subdirectory } => {
            let scratch = install_dir.join(format!(".dp-clone-{}", std::process::id()));
            remove(&scratch)?;
            let mut cmd = std::process::Command::new("git");
            cmd.args(["clone", "--quiet", "--depth", "1"]);
            if let Some(r) = revision {
                cmd.args(["--branch", r]);
            }
            cmd.arg(url).arg(&scratch).env("GIT_TERMINAL_PROMPT", "0");
            let result = cmd.output();
            let failure = match &result {
                Ok(o) if o.status.success() => None,
                Ok(o) => Some(String::from_utf8_lossy(&o.stderr).trim().to_string()),
                Err(e) => Some(format!("could not run git: {e}")),
            };
            if let Some(reason) = failure {
                remove(&scratch)?;
                return keep_installed(install_dir, &url_folder(url), &format!("git package {url}"), reason);
            }
            let dir = match subdirectory {
                Some(sub) => scratch.join(sub),
                None => scratch.clone(),
            };
            let name = package_name(&dir)?;
            let dst = install_dir.join(&name);
            remove(&dst)?;
            let _ = std::fs::remove_dir_all(dir.join(".git"));
            std::fs::rename(&dir, &dst).map_err(io(&dst))?;
            remove(&scratch)?;
            Ok(Outcome::Installed { name, how: "cloned" })
        }
        Spec::Hub { package, version } => {
            let v = version.as_deref().map(|v| format!(" {v}")).unwrap_or_default();
            keep_installed(
                install_dir,
                &hub_folder(package),
                &format!("package {package}{v}"),
                "dp does not download from the dbt package hub (hub.getdbt.com)".into(),
            )
        }
        Spec::Tarball { url, name } => {
            let folder = name.clone().unwrap_or_else(|| url_folder(url));
            keep_installed(install_dir, &folder, &format!("tarball {url}"), "dp does not download tarball packages".into())
        }
    }
}

/// The last path segment of a URL, without `.git` (a package's likely folder).
fn url_folder(url: &str) -> String {
    let last = url.trim_end_matches('/').rsplit('/').next().unwrap_or(url);
    let last = last.trim_end_matches(".git").trim_end_matches(".tar.gz");
    last.replace('-', "_")
}

fn keep_installed(install_dir: &Path, folder: &str, what: &str, reason: String) -> Result<Outcome, DepsError> {
    let dir = install_dir.join(folder);
    if dir.join("dbt_project.yml").exists() {
        return Ok(Outcome::Kept { name: package_name(&dir)?, reason });
    }
    Err(DepsError::Install {
        what: what.into(),
        message: format!(
            "{reason}, and {} is not installed\n  hint: install it with `local: <path>` to a copy of the package (or `git: <url>` where the URL is reachable)",
            dir.display()
        ),
    })
}

/// Removes a file, link or folder if present (a link is removed, never
/// followed).
fn remove(p: &Path) -> Result<(), DepsError> {
    match std::fs::symlink_metadata(p) {
        Ok(m) if m.is_dir() => std::fs::remove_dir_all(p).map_err(io(p)),
        Ok(_) => std::fs::remove_file(p).map_err(io(p)),
        Err(_) => Ok(()),
    }
}

fn link_or_copy(src: &Path, dst: &Path) -> Result<&'static str, DepsError> {
    #[cfg(unix)]
    if std::os::unix::fs::symlink(src, dst).is_ok() {
        return Ok("linked");
    }
    copy_dir(src, dst, dst)?;
    Ok("copied")
}

/// Copies `src` into `dst`, skipping `skip` (the destination, when it lies inside the source).
fn copy_dir(src: &Path, dst: &Path, skip: &Path) -> Result<(), DepsError> {
    std::fs::create_dir_all(dst).map_err(io(dst))?;
    for e in std::fs::read_dir(src).map_err(io(src))? {
        let e = e.map_err(io(src))?;
        let p = e.path();
        if p == skip || e.file_name() == ".git" {
            continue;
        }
        let to = dst.join(e.file_name());
        if p.is_dir() {
            copy_dir(&p, &to, skip)?;
        } else {
            std::fs::copy(&p, &to).map_err(io(&p))?;
        }
    }
    Ok(())
}

/// `package-lock.yml`, as dbt 1.7+ writes it: the resolved packages and
/// dbt's `sha1_hash` of the entries as written.
pub fn lock_file(entries: &[Value], specs: &[Spec], outcomes: &[Outcome]) -> String {
    let mut out = String::from("packages:\n");
    for (s, o) in specs.iter().zip(outcomes) {
        let name = match o {
            Outcome::Installed { name, .. } | Outcome::Kept { name, .. } => name,
        };
        match s {
            Spec::Local { path } => out.push_str(&format!("  - local: {}\n    name: {name}\n", yaml_str(path))),
            Spec::Git { url, revision, subdirectory } => {
                out.push_str(&format!("  - git: {}\n    name: {name}\n", yaml_str(url)));
                if let Some(r) = revision {
                    out.push_str(&format!("    revision: {}\n", yaml_str(r)));
                }
                if let Some(d) = subdirectory {
                    out.push_str(&format!("    subdirectory: {}\n", yaml_str(d)));
                }
            }
            Spec::Hub { package, version } => {
                out.push_str(&format!("  - package: {}\n    name: {name}\n", yaml_str(package)));
                if let Some(v) = version {
                    out.push_str(&format!("    version: {}\n", yaml_str(v)));
                }
            }
            Spec::Tarball { url, .. } => out.push_str(&format!("  - tarball: {}\n    name: {name}\n", yaml_str(url))),
        }
    }
    out.push_str(&format!("sha1_hash: {}\n", packages_hash(entries)));
    out
}

/// dbt's `_create_sha1_hash`: each entry as dbt's package dataclass
/// serializes it (`to_dict()`: its fields with their defaults, `unrendered`
/// holding the entry as written), dumped as Python's `json.dumps(..,
/// sort_keys=True)`, sorted, joined by newlines, SHA-1'd.
fn packages_hash(entries: &[Value]) -> String {
    let mut lines: Vec<String> = entries.iter().map(|e| crate::util::pyjson::dumps(&package_dict(e), true)).collect();
    lines.sort();
    sha1_hex(lines.join("\n").as_bytes())
}

fn package_dict(e: &Value) -> Value {
    let get = |k: &str| e.get(k).cloned().unwrap_or(Value::Null);
    let mut d = serde_json::Map::new();
    let kind = ["local", "git", "package", "tarball"].into_iter().find(|k| e.get(*k).is_some()).unwrap_or("local");
    d.insert(kind.into(), get(kind));
    match kind {
        "git" => {
            for k in ["revision", "warn-unpinned", "subdirectory"] {
                d.insert(k.into(), get(k));
            }
        }
        "package" => {
            d.insert("version".into(), get("version"));
            d.insert("install_prerelease".into(), e.get("install_prerelease").cloned().unwrap_or(Value::Bool(false)));
        }
        _ => {}
    }
    // `name` is dropped when unset (tarballs require it).
    if let Some(n) = e.get("name").filter(|n| !n.is_null()) {
        d.insert("name".into(), n.clone());
    }
    d.insert("unrendered".into(), e.clone());
    Value::Object(d)
}

fn yaml_str(s: &str) -> String {
    serde_json::to_string(s).unwrap_or_else(|_| format!("'{s}'"))
}

/// SHA-1 in hex (the lock file's `sha1_hash`, as dbt computes it).
fn sha1_hex(data: &[u8]) -> String {
    use sha1::Digest;
    sha1::Sha1::digest(data).iter().map(|b| format!("{b:02x}")).collect()
}

/// Where packages go: the settings' packages folder under the project root.
pub fn install_dir(root: &Path, packages: &str) -> PathBuf {
    root.join(packages)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sha1_matches_the_standard_vectors() {
        assert_eq!(sha1_hex(b""), "da39a3ee5e6b4b0d3255bfef95601890afd80709");
        assert_eq!(sha1_hex(b"abc"), "a9993e364706816aba3e25717850c26c9cd0d89d");
        assert_eq!(sha1_hex(&[b'a'; 1000]), "291e9a6c66994949b57ba5e650361e98fc36b1ba");
    }

    #[test]
    fn the_lock_hash_is_dbts() {
        // Hashes printed by dbt-core 1.11's own `_create_sha1_hash` (and, for
        // the first, written by `dbt deps` into package-lock.yml).
        let local = vec![serde_json::json!({"local": "../"})];
        assert_eq!(packages_hash(&local), "de2deba3d66ce03d8c02949013650cc9b94f6030");
        let git = vec![serde_json::json!({"git": "https://example.invalid/x.git"})];
        assert_eq!(packages_hash(&git), "59e614c933bf8dcdcc99f5d41e76e3ebc55b59c0");
        let three = vec![
            serde_json::json!({"local": "../"}),
            serde_json::json!({"git": "https://example.invalid/x.git", "revision": "v1"}),
            serde_json::json!({"package": "dbt-labs/dbt_date", "version": [">=0.9.0", "<1.0.0"]}),
        ];
        assert_eq!(packages_hash(&three), "553879d6a197d33624e93cdb6d3448e472ccd275");
    }

    #[test]
    fn specs_of_every_kind_and_bad_entries() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(
            dir.path().join("packages.yml"),
            "packages:\n  - local: ../utils\n  - git: https://example.invalid/x/dbt-date.git\n    revision: 0.10.0\n  - package: dbt-labs/dbt_utils\n    version: [\">=1.0.0\", \"<2.0.0\"]\n  - tarball: https://example.invalid/p.tar.gz\n    name: p\n",
        )
        .unwrap();
        let (_, specs) = read_specs(dir.path()).unwrap();
        assert_eq!(
            specs,
            [
                Spec::Local { path: "../utils".into() },
                Spec::Git { url: "https://example.invalid/x/dbt-date.git".into(), revision: Some("0.10.0".into()), subdirectory: None },
                Spec::Hub { package: "dbt-labs/dbt_utils".into(), version: Some(">=1.0.0, <2.0.0".into()) },
                Spec::Tarball { url: "https://example.invalid/p.tar.gz".into(), name: Some("p".into()) },
            ]
        );
        std::fs::write(dir.path().join("packages.yml"), "packages:\n  - name: x\n").unwrap();
        let e = read_specs(dir.path()).unwrap_err().to_string();
        assert_eq!(
            e,
            "packages.yml: packages[0]: no local:, git:, package: or tarball: in {\"name\":\"x\"}\n  hint: each entry needs one of local:, git:, package: or tarball: (see dbt's packages.yml)"
        );
    }
}
