use super::*;
use crate::fs::{MemFs, OsFs};
use std::path::{Path, PathBuf};

fn fixture(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/projects").join(name)
}

fn load(name: &str) -> (Project, Dag) {
    let root = fixture(name);
    let fs = OsFs::new(&root);
    // The goldens were made with DP_TEST_ENV unset.
    let env = |k: &str| if k == "DP_TEST_ENV" { None } else { std::env::var(k).ok() };
    let settings = crate::config::Settings::load(&root, &fs, &Default::default(), &env).expect("settings");
    let mut project = crate::project::load::load_project(settings, &fs, &Default::default()).expect("load");
    crate::graph::resolve_dependencies(&mut project).expect("resolve");
    let dag = Dag::build(&project).expect("dag");
    (project, dag)
}

/// A tiny POSIX-shell-like word splitter ('...' and "..." quotes, backslash escapes).
fn shell_split(line: &str) -> Vec<String> {
    let mut out = vec![];
    let mut cur = String::new();
    let mut in_word = false;
    let mut chars = line.chars();
    while let Some(c) = chars.next() {
        match c {
            '\'' => {
                in_word = true;
                for d in chars.by_ref() {
                    if d == '\'' {
                        break;
                    }
                    cur.push(d);
                }
            }
            '"' => {
                in_word = true;
                while let Some(d) = chars.next() {
                    match d {
                        '"' => break,
                        '\\' => {
                            if let Some(e) = chars.next() {
                                if !matches!(e, '"' | '\\' | '$' | '`') {
                                    cur.push('\\');
                                }
                                cur.push(e);
                            }
                        }
                        d => cur.push(d),
                    }
                }
            }
            '\\' => {
                in_word = true;
                if let Some(e) = chars.next() {
                    cur.push(e);
                }
            }
            c if c.is_whitespace() => {
                if in_word {
                    out.push(std::mem::take(&mut cur));
                    in_word = false;
                }
            }
            c => {
                in_word = true;
                cur.push(c);
            }
        }
    }
    if in_word {
        out.push(cur);
    }
    out
}

/// `dbt ls` argv tail → SelectionSpec (multi-value options like dbt's click options).
fn spec_from_args(args: &[String]) -> SelectionSpec {
    let mut spec = SelectionSpec::default();
    let mut i = 0;
    while i < args.len() {
        let opt = args[i].as_str();
        i += 1;
        let mut values = vec![];
        while i < args.len() && !args[i].starts_with('-') {
            values.push(args[i].clone());
            i += 1;
        }
        match opt {
            "-s" | "--select" | "-m" | "--models" => spec.select.extend(values),
            "--exclude" => spec.exclude.extend(values),
            "--selector" => spec.selector = values.into_iter().next(),
            "--resource-type" | "--resource-types" => {
                for v in values {
                    if v != "all" {
                        spec.resource_types.push(ResourceType::parse(&v).unwrap_or_else(|| panic!("resource type {v}")));
                    }
                }
            }
            "--indirect-selection" => spec.indirect = IndirectSelection::parse(&values[0]).expect("indirect selection"),
            "--output" | "--output-keys" => {}
            other => panic!("unexpected ls argument {other}"),
        }
    }
    spec
}

/// The project as the real dbt parsed it: nodes rebuilt from the golden
/// `manifest.json` (independent of dp's loader), so the selector itself is
/// checked against `dbt ls` on exactly dbt's graph.
fn load_from_manifest(name: &str) -> (Project, Dag) {
    use crate::project::nodes::{SourceInfo, TestMetadata};
    let root = fixture(name);
    let fs = OsFs::new(&root);
    let settings = crate::config::Settings::load(&root, &fs, &Default::default(), &|_| None).expect("settings");
    let text = std::fs::read_to_string(root.join("golden/manifest.json")).unwrap();
    let m: Value = serde_json::from_str(&text).unwrap();
    let mut nodes = crate::project::nodes::NodeMap::default();
    for section in ["nodes", "sources", "exposures", "unit_tests"] {
        for (uid, j) in m[section].as_object().unwrap() {
            let s = |k: &str| j.get(k).and_then(Value::as_str).unwrap_or("").to_string();
            let rt = ResourceType::parse(&s("resource_type")).unwrap();
            let mut n = Node::new(rt, &s("package_name"), &s("name"), &s("original_file_path"));
            n.unique_id = uid.clone();
            n.path = s("path");
            n.patch_path = j.get("patch_path").and_then(Value::as_str).map(String::from);
            n.fqn = j["fqn"].as_array().unwrap().iter().map(|v| v.as_str().unwrap().to_string()).collect();
            n.config = j.get("config").and_then(Value::as_object).cloned().unwrap_or_default().into();
            if let Some(tags) = j.get("tags") {
                n.config.insert("tags".into(), tags.clone());
            }
            n.depends_on = j["depends_on"]["nodes"].as_array().map(|a| a.iter().map(|v| v.as_str().unwrap().to_string()).collect()).unwrap_or_default();
            n.version = j.get("version").filter(|v| !v.is_null()).map(|v| v.to_string().trim_matches('"').to_string());
            if let Some(tm) = j.get("test_metadata").and_then(Value::as_object) {
                n.test_metadata = Some(TestMetadata {
                    name: tm["name"].as_str().unwrap().to_string(),
                    kwargs: tm["kwargs"].as_object().cloned().unwrap_or_default(),
                    namespace: tm.get("namespace").and_then(Value::as_str).map(String::from),
                });
            }
            n.attached_node = j.get("attached_node").and_then(Value::as_str).map(String::from);
            if rt == ResourceType::Source {
                n.source = Some(SourceInfo { source_name: s("source_name"), ..Default::default() });
            }
            nodes.insert(uid.clone(), n);
        }
    }
    let jinja = crate::jinja::JinjaEnv::new(crate::jinja::EnvInputs {
        root_package: settings.project_name.clone(),
        packages: vec![],
        macros: vec![],
        target: serde_json::json!({}),
        vars: Default::default(),
        package_vars: Default::default(),
        env: std::sync::Arc::new(|_| None),
        dispatch: vec![],
        invocation_id: "test".into(),
        run_started_at: chrono::Utc::now(),
        flags: serde_json::json!({}),
        quoting: Default::default(),
    })
    .expect("jinja");
    let project = Project {
        settings,
        nodes,
        disabled: Default::default(),
        macros: Default::default(),
        docs: Default::default(),
        other: Default::default(),
        jinja: std::sync::Arc::new(jinja),
        warnings: vec![],
    };
    let dag = Dag::build(&project).expect("dag");
    (project, dag)
}

fn check_goldens(name: &str, project: &Project, dag: &Dag) -> (usize, Vec<String>) {
    let root = fixture(name);
    let fs = OsFs::new(&root);
    let dir = root.join("golden/ls");
    let lines = std::fs::read_to_string(dir.join("SELECTORS.txt")).unwrap();
    let mut pass = 0;
    let mut failures = vec![];
    for (i, line) in lines.lines().filter(|l| !l.trim().is_empty()).enumerate() {
        let expected_text = std::fs::read_to_string(dir.join(format!("{:02}.txt", i + 1))).unwrap();
        let expected: Vec<&str> = expected_text.lines().filter(|l| !l.is_empty()).collect();
        let spec = spec_from_args(&shell_split(line));
        let mut got: Vec<String> = match select(project, dag, &spec, &fs) {
            Ok(s) => s.into_iter().collect(),
            Err(e) => {
                failures.push(format!("{name} #{:02} [{line}]: error: {e}", i + 1));
                continue;
            }
        };
        got.sort();
        if got == expected {
            pass += 1;
        } else {
            let missing: Vec<&&str> = expected.iter().filter(|e| !got.iter().any(|g| g == **e)).collect();
            let extra: Vec<&String> = got.iter().filter(|g| !expected.contains(&g.as_str())).collect();
            failures.push(format!("{name} #{:02} [{line}]: missing {missing:?}, extra {extra:?}", i + 1));
        }
    }
    (pass, failures)
}

fn assert_goldens(name: &str, project: &Project, dag: &Dag) {
    let (pass, failures) = check_goldens(name, project, dag);
    assert!(failures.is_empty(), "{pass} passed, {} failed:\n{}", failures.len(), failures.join("\n"));
}

/// The selector on dbt's own graph (from the golden manifest).
#[test]
fn jaffle_ls_goldens_on_dbt_manifest() {
    let (project, dag) = load_from_manifest("jaffle");
    assert_goldens("jaffle", &project, &dag);
}

#[test]
fn advanced_ls_goldens_on_dbt_manifest() {
    let (project, dag) = load_from_manifest("advanced");
    assert_goldens("advanced", &project, &dag);
}

/// End to end: dp's loader + the selector.
#[test]
fn jaffle_ls_goldens() {
    let (project, dag) = load("jaffle");
    assert_goldens("jaffle", &project, &dag);
}

#[test]
fn advanced_ls_goldens() {
    let (project, dag) = load("advanced");
    assert_goldens("advanced", &project, &dag);
}

/// Test selectors (test_type, test_name, tags on tests, unit tests).
#[test]
fn test_suite_ls_goldens() {
    let (project, dag) = load("test_suite");
    assert_goldens("test_suite", &project, &dag);
}

// ---------------------------------------------------------------- helpers

/// Project files from disk, plus in-memory overrides (e.g. a selectors.yml).
struct Overlay {
    mem: MemFs,
    os: OsFs,
}

impl FileSystem for Overlay {
    fn read_to_string(&self, path: &str) -> std::io::Result<String> {
        self.mem.read_to_string(path).or_else(|_| self.os.read_to_string(path))
    }
    fn list_files(&self, dir: &str, exts: &[&str]) -> std::io::Result<Vec<String>> {
        self.os.list_files(dir, exts)
    }
    fn exists(&self, path: &str) -> bool {
        self.mem.exists(path) || self.os.exists(path)
    }
}

fn with_selectors(name: &str, yml: &str) -> Overlay {
    Overlay { mem: MemFs::new().with(SELECTORS_FILE, yml), os: OsFs::new(fixture(name)) }
}

fn run(project: &Project, dag: &Dag, fs: &dyn FileSystem, spec: SelectionSpec) -> Vec<String> {
    let mut v: Vec<String> = select(project, dag, &spec, fs).unwrap().into_iter().collect();
    v.sort();
    v
}

fn sel(terms: &[&str]) -> SelectionSpec {
    SelectionSpec { select: terms.iter().map(|s| s.to_string()).collect(), ..Default::default() }
}

/// `--indirect-selection empty`: no attached tests.
fn direct(terms: &[&str]) -> SelectionSpec {
    SelectionSpec { indirect: IndirectSelection::Empty, ..sel(terms) }
}

fn short(ids: &[String]) -> Vec<String> {
    ids.iter().map(|u| crate::graph::short_name(u)).collect()
}

// ---------------------------------------------------------------- unit tests

#[test]
fn shell_split_handles_quotes() {
    assert_eq!(shell_split(r#"--select "a b" 'c d' e\ f"#), vec!["--select", "a b", "c d", "e f"]);
}

#[test]
fn fnmatch_like_python() {
    assert!(fnmatch("stg_orders", "stg_*"));
    assert!(fnmatch("a/b", "*"));
    assert!(fnmatch("abc", "a?c"));
    assert!(fnmatch("abc", "a[a-c]c"));
    assert!(!fnmatch("abc", "a[!b]c"));
    assert!(fnmatch("a[c", "a[c"));
    assert!(fnmatch("", "*"));
    assert!(!fnmatch("abc", "ab"));
    assert!(fnmatch("aXbXc", "a*b*c"));
    assert!(!fnmatch("aXbXd", "a*b*c"));
}

#[test]
fn raw_spec_grammar() {
    let c = criteria_from_single_spec("2+tag:nightly+3", IndirectSelection::Eager).unwrap();
    assert_eq!((c.method.as_str(), c.value.as_str().unwrap()), ("tag", "nightly"));
    assert!(c.parents && c.children && !c.childrens_parents);
    assert_eq!((c.parents_depth, c.children_depth), (Some(2), Some(3)));
    let c = criteria_from_single_spec("@config.materialized:table", IndirectSelection::Eager).unwrap();
    assert_eq!((c.method.as_str(), c.args.clone()), ("config", vec!["materialized".to_string()]));
    assert!(c.childrens_parents);
    assert_eq!(criteria_from_single_spec("models/staging", IndirectSelection::Eager).unwrap().method, "path");
    assert_eq!(criteria_from_single_spec("customers.SQL", IndirectSelection::Eager).unwrap().method, "file");
    assert_eq!(criteria_from_single_spec("m++", IndirectSelection::Eager).unwrap().value, Value::String("m+".into()));
    let err = criteria_from_single_spec("@m+", IndirectSelection::Eager).unwrap_err();
    assert!(err.to_string().contains("incompatible"), "{err}");
    let err = criteria_from_single_spec("tagg:nightly", IndirectSelection::Eager).unwrap_err().to_string();
    assert!(err.contains("'tagg' is not a selection method") && err.contains("valid methods are: fqn, tag,") && err.contains("did you mean 'tag:'"), "{err}");
}

#[test]
fn methods_on_advanced() {
    let (project, dag) = load_from_manifest("advanced");
    let fs = OsFs::new(fixture("advanced"));
    // Wildcards and fqn prefixes.
    assert_eq!(short(&run(&project, &dag, &fs, direct(&["stg_*"]))), vec!["stg_events", "stg_users"]);
    assert_eq!(short(&run(&project, &dag, &fs, direct(&["advanced.marts.fct_*"]))), vec!["fct_events"]);
    // `file:` by name and stem, `path:` with a glob.
    assert_eq!(short(&run(&project, &dag, &fs, direct(&["file:dim_users"]))), vec!["dim_users"]);
    assert_eq!(short(&run(&project, &dag, &fs, direct(&["dim_users.sql"]))), vec!["dim_users"]);
    let staged = run(&project, &dag, &fs, SelectionSpec { indirect: IndirectSelection::Empty, ..sel(&["path:models/*/stg_*.sql"]) });
    assert_eq!(short(&staged), vec!["stg_events", "stg_users"]);
    // Sources.
    assert_eq!(run(&project, &dag, &fs, sel(&["source:raw.users", "source:advanced.raw.event?"])).len(), 2 + 5);
    // Depth-limited graph operators.
    let one_up = run(&project, &dag, &fs, SelectionSpec { indirect: IndirectSelection::Empty, ..sel(&["1+fct_events"]) });
    assert!(one_up.iter().any(|u| u == "model.advanced.fct_events"));
    assert!(!one_up.iter().any(|u| u.starts_with("source.")), "{one_up:?}");
    // Intersection with the resource-type filter.
    let models = run(&project, &dag, &fs, SelectionSpec { resource_types: vec![ResourceType::Model], ..sel(&["+fct_events"]) });
    assert!(models.iter().all(|u| u.starts_with("model.")));
    // test_name / test_type.
    let uniques = run(&project, &dag, &fs, sel(&["test_name:uniq*"]));
    assert!(!uniques.is_empty() && uniques.iter().all(|u| u.starts_with("test.") && u.contains("unique_")));
    // Booleans in config.
    assert_eq!(run(&project, &dag, &fs, sel(&["config.enabled:TRUE"])).len(), project.nodes.len());
    // Errors.
    let err = select(&project, &dag, &sel(&["state:modified"]), &fs).unwrap_err().to_string();
    assert!(err.contains("needs a previous manifest"), "{err}");
    let err = select(&project, &dag, &sel(&["source_status:fresher"]), &fs).unwrap_err().to_string();
    assert!(err.contains("compares two source freshness runs"), "{err}");
    let err = select(&project, &dag, &sel(&["resource_type:modle"]), &fs).unwrap_err().to_string();
    assert!(err.contains("invalid resource_type selector"), "{err}");
    let err = select(&project, &dag, &sel(&["source:a.b.c.d"]), &fs).unwrap_err().to_string();
    assert!(err.contains("invalid source selector"), "{err}");
    // Nothing matched: empty + a warning.
    let s = select_detailed(&project, &dag, &sel(&["nope"]), &fs).unwrap();
    assert!(s.selected.is_empty());
    assert_eq!(s.warnings, vec!["The selection criterion 'nope' does not match any enabled nodes"]);
}

const SELECTORS: &str = r#"
selectors:
  - name: staging_only
    description: staging models, no tests
    definition:
      method: tag
      value: staging
      indirect_selection: empty
  - name: marts_and_parents
    definition:
      union:
        - method: path
          value: models/marts
          parents: true
        - exclude:
            - resource_type:test
            - method: selector
              value: staging_only
  - name: nightly_models
    default: true
    definition:
      intersection:
        - tag:nightly
        - resource_type: model
  - name: fct_children
    definition: "fct_events+"
  - name: depth
    definition:
      method: fqn
      value: fct_events
      parents: true
      parents_depth: 1
      indirect_selection: empty
"#;

#[test]
fn selectors_yml() {
    let (project, dag) = load_from_manifest("advanced");
    let fs = with_selectors("advanced", SELECTORS);
    let by = |name: &str| run(&project, &dag, &fs, SelectionSpec { selector: Some(name.into()), ..Default::default() });
    assert_eq!(short(&by("staging_only")), vec!["stg_events", "stg_users"]);
    let m = by("marts_and_parents");
    assert!(m.iter().all(|u| !u.starts_with("test.")), "{m:?}");
    assert!(m.contains(&"source.advanced.raw.events".to_string()));
    assert!(!m.contains(&"model.advanced.stg_events".to_string()), "{m:?}");
    assert!(m.contains(&"model.advanced.fct_events".to_string()));
    let nightly_cli = run(&project, &dag, &fs, sel(&["tag:nightly,resource_type:model"]));
    assert_eq!(by("nightly_models"), nightly_cli);
    // `default: true` applies when neither --select nor --exclude is given.
    let d = select_detailed(&project, &dag, &SelectionSpec::default(), &fs).unwrap();
    assert_eq!(d.default_selector.as_deref(), Some("nightly_models"));
    let mut got: Vec<String> = d.selected.into_iter().collect();
    got.sort();
    assert_eq!(got, nightly_cli);
    assert_eq!(by("fct_children"), run(&project, &dag, &fs, sel(&["fct_events+"])));
    let depth = by("depth");
    assert_eq!(short(&depth), vec!["fct_events", "stg_events"]);
    // Unknown selector names the file and lists the defined ones.
    let err = select(&project, &dag, &SelectionSpec { selector: Some("nightly".into()), ..Default::default() }, &fs).unwrap_err().to_string();
    assert!(err.contains("selectors.yml") && err.contains("'nightly'") && err.contains("staging_only, marts_and_parents"), "{err}");
}

#[test]
fn selectors_yml_errors() {
    let (project, dag) = load_from_manifest("advanced");
    let spec = SelectionSpec { selector: Some("a".into()), ..Default::default() };
    let bad = |yml: &str| select(&project, &dag, &spec, &with_selectors("advanced", yml)).unwrap_err().to_string();
    let e = bad("selectors:\n  - name: a\n    definition:\n      method: tagg\n      value: x\n");
    assert!(e.starts_with("selectors.yml:2: selector 'a':") && e.contains("'tagg' is not a selection method"), "{e}");
    let e = bad("selectors:\n  - name: a\n    definition: [tag:x]\n");
    assert!(e.starts_with("selectors.yml:2:") && e.contains("no lists"), "{e}");
    let e = bad("selectors:\n  - name: a\n    definition: {union: [tag:x], intersection: [tag:y]}\n");
    assert!(e.contains("only a single 'union' or 'intersection'"), "{e}");
    let e = bad("selectors:\n  - name: a\n    definition: tag:x\n    default: true\n  - name: b\n    definition: tag:y\n    default: true\n");
    assert!(e.starts_with("selectors.yml:5:") && e.contains("multiple selectors with `default: true`"), "{e}");
    let e = bad("selectors:\n  - name: a\n   definition: x\n");
    assert!(e.starts_with("selectors.yml:3: invalid YAML"), "{e}");
    let e = bad("selectors:\n  - name: a\n    definition:\n      method: selector\n      value: later\n  - name: later\n    definition: x\n");
    assert!(e.contains("existing selector definition for later not found"), "{e}");
}

#[test]
fn indirect_selection_modes_on_jaffle() {
    let (project, dag) = load_from_manifest("jaffle");
    let fs = OsFs::new(fixture("jaffle"));
    let mode = |m: IndirectSelection| run(&project, &dag, &fs, SelectionSpec { indirect: m, ..sel(&["orders"]) });
    let eager = mode(IndirectSelection::Eager);
    let cautious = mode(IndirectSelection::Cautious);
    let empty = mode(IndirectSelection::Empty);
    assert_eq!(short(&empty), vec!["orders"]);
    // The relationships test orders -> customers needs customers too.
    assert!(eager.iter().any(|u| u.contains("relationships_orders")));
    assert!(!cautious.iter().any(|u| u.contains("relationships_orders")));
    assert!(cautious.len() < eager.len() && cautious.len() > empty.len());
    // buildable: `orders+` selects customers, so the relationships test's parents are all there.
    let buildable = run(&project, &dag, &fs, SelectionSpec { indirect: IndirectSelection::Buildable, ..sel(&["+orders"]) });
    assert!(buildable.iter().any(|u| u.contains("not_null_orders_order_id")));
}

/// Extra cases checked against the real dbt outside the repo: set
/// `DP_SELECT_EXTRA=/dir` holding `<project>/SELECTORS.txt`, `NN.txt` (same
/// format as golden/ls) and optionally `<project>/selectors.yml`, then run
/// `cargo test --lib graph::select::tests::extra_cases -- --ignored`.
#[test]
#[ignore]
fn extra_cases() {
    let Ok(dir) = std::env::var("DP_SELECT_EXTRA") else { return };
    let mut failures = vec![];
    for name in ["jaffle", "advanced"] {
        let d = Path::new(&dir).join(name);
        let Ok(lines) = std::fs::read_to_string(d.join("SELECTORS.txt")) else { continue };
        let (project, dag) = load_from_manifest(name);
        let fs = with_selectors(name, &std::fs::read_to_string(d.join("selectors.yml")).unwrap_or_else(|_| "selectors: []\n".into()));
        for (i, line) in lines.lines().filter(|l| !l.trim().is_empty()).enumerate() {
            let expected_text = std::fs::read_to_string(d.join(format!("{:02}.txt", i + 1))).unwrap();
            let expected: Vec<&str> = expected_text.lines().filter(|l| !l.is_empty()).collect();
            let spec = spec_from_args(&shell_split(line));
            match select(&project, &dag, &spec, &fs) {
                Ok(s) => {
                    let mut got: Vec<String> = s.into_iter().collect();
                    got.sort();
                    if got != expected {
                        let missing: Vec<&&str> = expected.iter().filter(|e| !got.iter().any(|g| g == **e)).collect();
                        let extra: Vec<&String> = got.iter().filter(|g| !expected.contains(&g.as_str())).collect();
                        failures.push(format!("{name} #{:02} [{line}]: missing {missing:?}, extra {extra:?}", i + 1));
                    }
                }
                Err(e) => {
                    if !expected.is_empty() {
                        failures.push(format!("{name} #{:02} [{line}]: error {e}", i + 1));
                    } else {
                        eprintln!("{name} #{:02} [{line}]: error (dbt selected nothing): {e}", i + 1);
                    }
                }
            }
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}
