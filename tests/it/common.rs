use std::path::{Path, PathBuf};
use std::process::{Command, Output};

pub fn dp() -> Command {
    let mut c = Command::new(env!("CARGO_BIN_EXE_dp"));
    c.env("NO_COLOR", "1").env_remove("DP_TARGET").env_remove("DP_WAREHOUSE");
    c
}

pub fn repo() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

/// Copies a directory tree, skipping `target/`, `golden/`, `warehouse/`.
pub fn copy_tree(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).unwrap();
    for e in std::fs::read_dir(from).unwrap().flatten() {
        let name = e.file_name();
        let n = name.to_string_lossy();
        if ["target", "golden", "warehouse", "bronze", ".git"].contains(&n.as_ref()) {
            continue;
        }
        let p = e.path();
        if p.is_dir() {
            copy_tree(&p, &to.join(&name));
        } else {
            std::fs::copy(&p, to.join(&name)).unwrap();
        }
    }
}

/// A scratch copy of a fixture project.
pub fn fixture(name: &str) -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    copy_tree(&repo().join("tests/fixtures/projects").join(name), dir.path());
    dir
}

/// A scratch copy of the demo project at the repository root (models,
/// seeds, macros, warehouse.toml; no data).
pub fn demo_project() -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    let root = repo();
    for d in ["models", "seeds", "macros"] {
        copy_tree(&root.join(d), &dir.path().join(d));
    }
    std::fs::copy(root.join("warehouse.toml"), dir.path().join("warehouse.toml")).unwrap();
    dir
}

/// `dp demo generate --scale S`, then the sales file drops into bronze (`dp
/// ingest -s source:raw.transactions`), as `dp demo` does before it builds.
pub fn demo_generate(dir: &Path, scale: &str) {
    ok(&run(dir, &["demo", "generate", "--scale", scale]));
    ok(&run(dir, &["ingest", "-s", "source:raw.transactions"]));
}

/// A scratch project from in-line files.
pub fn project(files: &[(&str, &str)]) -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    for (path, text) in files {
        let p = dir.path().join(path);
        std::fs::create_dir_all(p.parent().unwrap()).unwrap();
        std::fs::write(p, text).unwrap();
    }
    dir
}

pub fn run(dir: &Path, args: &[&str]) -> Output {
    dp().current_dir(dir).args(args).output().unwrap()
}

pub fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

pub fn stdout(o: &Output) -> String {
    String::from_utf8_lossy(&o.stdout).into_owned()
}

#[track_caller]
pub fn ok(o: &Output) {
    assert!(o.status.success(), "dp failed ({:?})\nstdout:\n{}\nstderr:\n{}", o.status.code(), stdout(o), stderr(o));
}

/// `[{unique_id, status, failures}]` of target/run_results.json, sorted.
pub fn outcomes(dir: &Path) -> serde_json::Value {
    let rr: serde_json::Value = serde_json::from_slice(&std::fs::read(dir.join("target/run_results.json")).unwrap()).unwrap();
    let mut items: Vec<serde_json::Value> = rr["results"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| serde_json::json!({"unique_id": r["unique_id"], "status": r["status"], "failures": r["failures"]}))
        .collect();
    items.sort_by(|a, b| a["unique_id"].as_str().cmp(&b["unique_id"].as_str()));
    serde_json::Value::Array(items)
}
