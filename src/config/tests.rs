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
    let cfg = s.models.resolve_both(&["demo".into(), "staging".into(), "stg".into()]).0;
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
    let cfg = s.models.resolve_both(&["jaffle".into(), "staging".into(), "x".into()]).0;
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

#[test]
fn s3_settings_expand_env_and_refuse_secrets() {
    let toml = "[project]\nname = \"p\"\n[targets.s3]\nwarehouse = \"s3://${B}/wh\"\nsource_root = \"s3://${B}\"\n[targets.s3.s3]\nendpoint = \"${E:-http://127.0.0.1:9000}\"\nallow_http = true\n";
    let fs = MemFs::new().with("warehouse.toml", toml);
    let s = load(&fs, &Overrides { target: Some("s3".into()), ..Default::default() }, &[("B", "bkt")]).unwrap();
    assert_eq!(s.warehouse_url(), "s3://bkt/wh");
    assert_eq!(s.target.source_root.as_deref(), Some("s3://bkt"));
    let s3 = s.target.s3.unwrap();
    assert_eq!(s3, S3Config { endpoint: Some("http://127.0.0.1:9000".into()), region: None, path_style: true, allow_http: true });

    let e = load(&fs, &Overrides { target: Some("s3".into()), ..Default::default() }, &[]).unwrap_err().to_string();
    assert_eq!(e, "target 's3' warehouse: 's3://${B}/wh' uses ${B}, which is not set\n  hint: export B=... (or write ${B:-default})");

    let fs = MemFs::new().with("warehouse.toml", "[project]\nname = \"p\"\n[targets.dev.s3]\nsecret_access_key = \"x\"\n");
    let e = load(&fs, &Overrides::default(), &[]).unwrap_err().to_string();
    assert_eq!(
        e,
        "target 'dev' s3.secret_access_key: credentials are never read from warehouse.toml\n  hint: remove the key and export AWS_SECRET_ACCESS_KEY instead"
    );

    let fs = MemFs::new().with("warehouse.toml", "[project]\nname = \"p\"\n[targets.dev.s3]\nendpoint = \"http://minio:9000\"\n");
    let e = load(&fs, &Overrides::default(), &[]).unwrap_err().to_string();
    assert_eq!(
        e,
        "target 'dev' s3.endpoint: 'http://minio:9000' is plain HTTP but allow_http is not set\n  hint: add `allow_http = true` for a local server, or use https://"
    );
}

#[test]
fn top_level_configs_apply_to_every_node_of_the_type() {
    let fs = MemFs::new().with(
        "dbt_project.yml",
        "name: p\nseeds:\n  +schema: raw\n  quote_columns: false\n  p:\n    lookups:\n      +schema: lookups\nmodels:\n  +materialized: table\n  dbt_utils:\n    +materialized: view\n",
    );
    let s = load(&fs, &Overrides::default(), &[]).unwrap();
    let seed = s.seeds.resolve_both(&["p".into(), "countries".into()]).0;
    assert_eq!((seed["schema"].as_str(), seed["quote_columns"].as_bool()), (Some("raw"), Some(false)));
    assert_eq!(s.seeds.resolve_both(&["p".into(), "lookups".into(), "x".into()]).0["schema"], "lookups", "deeper levels win");
    assert_eq!(s.seeds.resolve_both(&["other_pkg".into(), "y".into()]).0["schema"], "raw", "packages' seeds too");
    assert_eq!(s.models.resolve_both(&["p".into(), "m".into()]).0["materialized"], "table");
    assert_eq!(s.models.resolve_both(&["dbt_utils".into(), "m".into()]).0["materialized"], "view");
}

#[test]
fn dbt_project_yml_renders_env_var_where_dbt_renders_it() {
    let fs = MemFs::new().with(
        "dbt_project.yml",
        "name: p\ntarget-path: \"{{ env_var('DBT_TARGET_PATH', 'target') }}\"\nmodel-paths: [\"{{ env_var('MODELS_DIR') }}\"]\nvars:\n  later: \"{{ env_var('NOT_SET') }}\"\nmodels:\n  p:\n    +schema: \"{{ target.name }}\"\n",
    );
    let s = load(&fs, &Overrides::default(), &[("MODELS_DIR", "src/models")]).unwrap();
    assert_eq!((s.paths.target.as_str(), s.paths.models.clone()), ("target", vec!["src/models".to_string()]));
    // vars and node configs render later (when read, per node).
    assert_eq!(s.vars["later"], "{{ env_var('NOT_SET') }}");
    let e = load(&fs, &Overrides::default(), &[]).unwrap_err().to_string();
    assert_eq!(
        e,
        "dbt_project.yml: model-paths: Env var required but not provided: 'MODELS_DIR'\n  hint: export MODELS_DIR=... or give env_var('MODELS_DIR', 'default') a default"
    );
}
