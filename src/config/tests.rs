use super::*;
use crate::fs::MemFs;

fn load(fs: &MemFs, o: &Overrides, env: &[(&str, &str)]) -> Result<Settings, ConfigError> {
    let env: Vec<(String, String)> = env.iter().map(|(a, b)| (a.to_string(), b.to_string())).collect();
    Settings::load(Path::new("/p"), fs, o, &move |k| env.iter().find(|(a, _)| a == k).map(|(_, b)| b.clone()))
}

#[test]
fn warehouse_toml_targets_and_env_overrides() {
    let fs = MemFs::new().with(
        "warehouse.toml",
        "[project]\nname = \"demo\"\n[vars]\nx = 1\n[targets.dev]\nschema = \"dev_s\"\nthreads = 2\n[targets.prod]\nwarehouse = \"s/prod\"\n[models.staging]\nmaterialized = \"table\"\n\"+tags\" = [\"a\"]\n",
    );
    let s = load(&fs, &Overrides::default(), &[]).unwrap();
    assert_eq!((s.target.name.as_str(), s.target.schema.as_str(), s.target.threads), ("dev", "dev_s", 2));
    assert_eq!(s.warehouse_url(), "/p/warehouse");
    let cfg = s.models.resolve(&["demo".into(), "staging".into(), "stg".into()]);
    assert_eq!(cfg["materialized"], "table");
    assert_eq!(cfg["tags"], serde_json::json!(["a"]));
    let s = load(&fs, &Overrides { vars: Some("{x: 2, y: z}".into()), ..Default::default() }, &[("DP_TARGET", "prod"), ("DP_THREADS", "7")]).unwrap();
    assert_eq!(s.target.name, "prod");
    assert_eq!(s.target.threads, 7);
    assert_eq!(s.warehouse_url(), "/p/s/prod");
    assert_eq!(s.vars["x"], 2);
    assert_eq!(s.vars["y"], "z");
    let e = load(&fs, &Overrides { target: Some("qa".into()), ..Default::default() }, &[]).unwrap_err();
    assert_eq!(e.to_string(), "target 'qa' is not defined in warehouse.toml\n  hint: defined targets are: dev, prod");
}

#[test]
fn dbt_project_yml_is_read_with_plus_keys_and_merged_tags() {
    let fs = MemFs::new().with(
        "dbt_project.yml",
        "name: jaffle\nmodel-paths: [\"m\"]\nvars: {a: 1}\nmodels:\n  jaffle:\n    +tags: [x]\n    staging:\n      +materialized: view\n      +tags: [y]\n      pre-hook: \"select 1\"\n",
    );
    let s = load(&fs, &Overrides::default(), &[]).unwrap();
    assert_eq!(s.project_name, "jaffle");
    assert_eq!(s.paths.models, vec!["m"]);
    let cfg = s.models.resolve(&["jaffle".into(), "staging".into(), "x".into()]);
    assert_eq!(cfg["tags"], serde_json::json!(["x", "y"]));
    assert_eq!(cfg["pre-hook"], serde_json::json!(["select 1"]));
}

#[test]
fn bad_config_types_and_missing_project() {
    let fs = MemFs::new().with("warehouse.toml", "[project]\nname = \"p\"\n[targets.dev]\nthreads = \"four\"\n");
    let e = load(&fs, &Overrides::default(), &[]).unwrap_err().to_string();
    assert!(e.starts_with("warehouse.toml: TOML parse error at line 4, column 11"), "{e}");
    let e = load(&MemFs::new(), &Overrides::default(), &[]).unwrap_err().to_string();
    assert!(e.starts_with("no warehouse.toml or dbt_project.yml in /p"), "{e}");
    let fs = MemFs::new().with("warehouse.toml", "[project]\nname = \"1bad\"\n");
    assert!(load(&fs, &Overrides::default(), &[]).unwrap_err().to_string().contains("project name '1bad' is not valid"));
}
