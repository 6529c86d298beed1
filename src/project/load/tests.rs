//! Each loading stage, in memory through the FileSystem seam.

use std::path::Path;

use super::*;
use crate::config::{Overrides, Settings};
use crate::fs::MemFs;
use crate::project::nodes::{Materialization, ResourceType};

const PROJECT: &str = "name: p\nversion: '1.0'\nprofile: p\n";

fn settings(fs: &MemFs) -> Settings {
    Settings::load(Path::new("/p"), fs, &Overrides::default(), &|_| None).unwrap()
}

fn load(fs: &MemFs) -> Result<Project, LoadError> {
    load_project(settings(fs), fs, &LoadOptions::default())
}

fn project(files: &[(&str, &str)]) -> MemFs {
    files.iter().fold(MemFs::new().with("dbt_project.yml", PROJECT), |fs, (p, t)| fs.with(p, t))
}

#[test]
fn packages_are_found_one_level_down_with_their_macro_paths() {
    let fs = project(&[
        ("dbt_packages/utils/dbt_project.yml", "name: dbt_utils\nmacro-paths: [mac]\n"),
        ("dbt_packages/utils/nested/deep/dbt_project.yml", "name: ignored\n"),
        ("dbt_packages/other/dbt_project.yml", "name: other\n"),
    ]);
    let s = settings(&fs);
    let pkgs = packages::discover(&s, &fs).unwrap();
    let got: Vec<(&str, &str, Vec<String>)> = pkgs.iter().map(|p| (p.name.as_str(), p.root.as_str(), p.paths.macros.clone())).collect();
    assert_eq!(
        got,
        [
            ("dbt_utils", "dbt_packages/utils", vec!["dbt_packages/utils/mac".to_string()]),
            ("other", "dbt_packages/other", vec!["dbt_packages/other/macros".to_string()])
        ]
    );
}

#[test]
fn macros_from_the_project_and_packages_and_duplicates() {
    let fs = project(&[
        ("macros/a.sql", "{% macro a() %}1{% endmacro %}\n{% materialization m, default %}{% endmaterialization %}"),
        ("tests/generic/t.sql", "{% test t(model) %}select 1{% endtest %}"),
        ("dbt_packages/u/dbt_project.yml", "name: u\n"),
        ("dbt_packages/u/macros/b.sql", "{% macro b(x, y=2) %}{{ x }}{% endmacro %}"),
    ]);
    let s = settings(&fs);
    let pkgs = packages::discover(&s, &fs).unwrap();
    let mut warnings = vec![];
    let m = macros::load(&s, &fs, &pkgs, &mut warnings).unwrap();
    let ids: Vec<&String> = m.macros.keys().collect();
    assert_eq!(ids, ["macro.p.a", "macro.p.test_t", "macro.u.b"]);
    assert!(m.test_files_with_blocks.contains("tests/generic/t.sql"));
    assert_eq!(warnings, ["macros/a.sql:2: custom materialization 'm' is not supported by dp and was ignored"]);
    let fs = project(&[("macros/a.sql", "{% macro a() %}1{% endmacro %}"), ("macros/b.sql", "\n{% macro a() %}2{% endmacro %}")]);
    let e = macros::load(&settings(&fs), &fs, &[], &mut vec![]).err().unwrap().to_string();
    assert_eq!(
        e,
        "dbt found two macros with the name 'a':\n  - macros/a.sql:1\n  - macros/b.sql:2\n  hint: rename one of them, or disable one with `enabled: false`"
    );
}

#[test]
fn files_become_nodes_and_names_are_unique() {
    let fs = project(&[
        ("models/staging/stg_a.sql", "select 1"),
        ("models/x.py", "def model(): pass"),
        ("seeds/s.csv", "a\n1\n"),
        ("snapshots/snap.sql", "{% snapshot snap %}select 1{% endsnapshot %}"),
        ("analyses/an.sql", "select 2"),
        ("tests/singular.sql", "select 3 where false"),
        ("models/docs.md", "{% docs d %}The d.{% enddocs %}"),
    ]);
    let s = settings(&fs);
    let mut warnings = vec![];
    let set = files::load(&s, &[], &fs, &Default::default(), &mut warnings).unwrap();
    let got: Vec<(&str, ResourceType, String)> = set.nodes.values().map(|n| (n.unique_id.as_str(), n.resource_type, n.fqn.join("."))).collect();
    assert_eq!(
        got,
        [
            ("model.p.stg_a", ResourceType::Model, "p.staging.stg_a".to_string()),
            ("seed.p.s", ResourceType::Seed, "p.s".to_string()),
            ("snapshot.p.snap", ResourceType::Snapshot, "p.snap.snap".to_string()),
            ("analysis.p.an", ResourceType::Analysis, "p.analysis.an".to_string()),
            ("test.p.singular", ResourceType::Test, "p.singular".to_string()),
        ]
    );
    assert_eq!(warnings, ["models/x.py: Python models are not supported by dp and were skipped"]);
    assert_eq!(files::docs(&s, &[], &fs).unwrap()["doc.p.d"].block_contents, "The d.");
    let fs = project(&[("models/a.sql", "select 1"), ("seeds/a.csv", "x\n1\n")]);
    let e = files::load(&settings(&fs), &[], &fs, &Default::default(), &mut vec![]).err().unwrap().to_string();
    assert_eq!(
        e,
        "dbt found two seeds with the name 'a':\n  - models/a.sql\n  - seeds/a.csv\n  hint: rename one of them, or disable one with `enabled: false`"
    );
}

#[test]
fn an_unreadable_folder_is_an_error_naming_it() {
    let fs = project(&[("models/a.sql", "select 1")]).unreadable("models");
    let e = load(&fs).err().unwrap().to_string();
    assert_eq!(
        e,
        "models/: could not list the folder: Permission denied (os error 13)\n  hint: check that it is readable, or remove it from the project's paths"
    );
}

#[test]
fn yaml_patches_sources_and_declarations() {
    let fs = project(&[
        ("models/a.sql", "select 1 as id"),
        (
            "models/a.yml",
            "models:\n  - name: a\n    description: The a.\n    columns:\n      - name: id\n        data_tests: [unique]\n  - name: ghost\nsources:\n  - name: raw\n    tables:\n      - name: t\n        identifier: t_file\n",
        ),
    ]);
    let s = settings(&fs);
    let mut set = files::load(&s, &[], &fs, &Default::default(), &mut vec![]).unwrap();
    let mut warnings = vec![];
    let jinja = env::build(&s, &[], vec![], &LoadOptions::default()).unwrap();
    let d = patches::apply(&s, &[], &fs, &jinja, &mut set, &mut IndexMap::new(), &mut warnings).unwrap();
    let a = &set.nodes["model.p.a"];
    assert_eq!((a.description.as_str(), a.patch_path.as_deref(), a.columns.len()), ("The a.", Some("models/a.yml"), 1));
    assert_eq!(set.nodes["source.p.raw.t"].alias, "t_file");
    assert_eq!(d.tests.len(), 1);
    assert_eq!(warnings, ["models/a.yml:7: model 'ghost' is described here but no such model exists"]);
}

#[test]
fn configs_merge_tree_then_yaml_then_the_file() {
    let fs = MemFs::new()
        .with("dbt_project.yml", "name: p\nmodels:\n  p:\n    +materialized: table\n    +tags: [tree]\n")
        .with("models/a.sql", "{{ config(tags=['file']) }}select 1")
        .with("models/b.sql", "{{ config(materialized='incremental') }}select * from {{ ref('a') }}")
        .with("models/a.yml", "models:\n  - name: a\n    config:\n      materialized: view\n");
    let p = load(&fs).unwrap();
    let a = &p.nodes["model.p.a"];
    assert_eq!(a.materialized(), Materialization::View);
    assert_eq!(a.config["tags"], serde_json::json!(["tree", "file"]));
    let b = &p.nodes["model.p.b"];
    assert_eq!(b.materialized(), Materialization::Incremental);
    assert_eq!(b.refs.len(), 1);
}

#[test]
fn bad_configs_are_reported_with_file_and_line_before_anything_runs() {
    let fs = project(&[
        ("models/a.sql", "-- a comment\n{{ config(materialized='tabel') }}\nselect 1"),
        ("models/b.sql", "select 1"),
        (
            "models/b.yml",
            "models:\n  - name: b\n    config:\n      materialized: incremental\n      incremental_strategy: upsert\n      on_schema_change: explode\n      deletion_vectors: 'no'\n      incremental_predicates: [\"day >= '2024-01-01'\", \"day >\"]\n",
        ),
        ("models/c.sql", "{{ config(materialized='table', indexes=[{'cols': ['id']}], grants={'read': ['x']}) }}select 1 as id"),
    ]);
    let e = load(&fs).err().unwrap().to_string();
    insta::assert_snapshot!(e, @r#"
    models/a.sql:2: model 'a': materialized 'tabel' is not supported
      hint: did you mean 'table'? use table, view, incremental, ephemeral

    models/b.yml:5: model 'b': incremental_strategy 'upsert' is not supported
      hint: use append, merge, delete+insert, microbatch

    models/b.yml:6: model 'b': on_schema_change 'explode' is not supported
      hint: use ignore, fail, append_new_columns, sync_all_columns

    models/b.yml:7: model 'b': deletion_vectors "no" is not a boolean
      hint: write deletion_vectors=false to merge by rewriting files (true is the default)

    models/b.yml:8: model 'b': incremental_predicates[1] "day >" does not parse as a SQL condition: sql parser error: Expected: an expression, found: EOF
      hint: write a boolean expression over the table's columns, e.g. DBT_INTERNAL_DEST.day >= '2024-01-01'

    models/c.sql:1: model 'c': indexes[0] needs `columns`, a list of column names
      hint: write indexes=[{'columns': ['id'], 'unique': true, 'type': 'btree'}]

    models/c.sql:1: model 'c': grants key 'read' is not a table privilege
      hint: use one of select, insert, update, delete, truncate, references, trigger, all
    "#);
}

#[test]
fn a_disabled_model_is_not_validated_and_takes_its_tests_along() {
    let fs = project(&[
        ("models/a.sql", "{{ config(enabled=false, materialized='nonsense') }}select 1 as id"),
        ("models/a.yml", "models:\n  - name: a\n    columns:\n      - name: id\n        data_tests: [not_null]\n"),
        ("models/b.sql", "select 2"),
    ]);
    let p = load(&fs).unwrap();
    assert_eq!(p.nodes.keys().collect::<Vec<_>>(), ["model.p.b"]);
    assert_eq!(p.disabled.len(), 2, "the model and its test");
}

#[test]
fn unknown_generic_tests_are_named_with_a_suggestion() {
    let fs =
        project(&[("models/a.sql", "select 1 as id"), ("models/a.yml", "models:\n  - name: a\n    columns:\n      - name: id\n        data_tests: [uniqe]\n")]);
    let e = load(&fs).err().unwrap().to_string();
    assert_eq!(e, "models/a.yml:4: unknown generic test 'uniqe' on column 'id' of 'a'\n  hint: did you mean 'unique'?");
}

#[test]
fn relations_are_named_by_the_naming_macros() {
    let fs = project(&[("models/a.sql", "{{ config(schema='marts', alias='the_a') }}select 1")]);
    let p = load(&fs).unwrap();
    let a = &p.nodes["model.p.a"];
    assert_eq!((a.schema.as_str(), a.alias.as_str()), ("main_marts", "the_a"));
}

#[test]
fn of_several_bad_property_files_and_tests_the_first_in_file_order_is_reported() {
    // files and tests are built in parallel; the error is the sequential pass's
    let mut files: Vec<(String, String)> = (0..40).map(|i| (format!("models/m{i:02}.sql"), "select 1".to_string())).collect();
    files.extend(
        (0..40)
            .map(|i| (format!("models/m{i:02}.yml"), format!("models:\n  - name: m{i:02}\n    columns:\n      - name: id\n        data_tests: [not_null]\n"))),
    );
    files[40 + 7].1 = "models:\n  - name: m07\n    columns: [\n".into();
    files[40 + 30].1 = "models:\n  - name: m30\n    columns: [\n".into();
    let refs: Vec<(&str, &str)> = files.iter().map(|(p, t)| (p.as_str(), t.as_str())).collect();
    let e = load(&project(&refs)).err().unwrap().to_string();
    assert!(e.starts_with("models/m07.yml"), "{e}");
    files[40 + 7].1 = "models:\n  - name: m07\n    data_tests: [nott_null]\n".into();
    files[40 + 30].1 = "models:\n  - name: m30\n    data_tests: [uniqe]\n".into();
    let refs: Vec<(&str, &str)> = files.iter().map(|(p, t)| (p.as_str(), t.as_str())).collect();
    let e = load(&project(&refs)).err().unwrap().to_string();
    assert!(e.starts_with("models/m07.yml:2: unknown generic test 'nott_null' on 'm07'"), "{e}");
}

#[test]
fn overridden_naming_macros_name_each_relation_whether_or_not_they_read_the_node() {
    // ignores `node`: computed once per custom value, each model still gets its own
    let ignores = "{% macro generate_schema_name(custom_schema_name, node) -%}\
        {%- if custom_schema_name is none -%}{{ target.schema }}_x{%- else -%}s_{{ custom_schema_name | trim }}{%- endif -%}\
        {%- endmacro %}";
    // reads `node`: one call per model
    let reads = "{% macro generate_alias_name(custom_alias_name, node) -%}\
        {{ node.name ~ '_' ~ (custom_alias_name or 'none') }}{%- endmacro %}";
    let fs = project(&[
        ("macros/naming.sql", &format!("{ignores}\n{reads}")),
        ("models/a.sql", "{{ config(schema='one') }}select 1"),
        ("models/b.sql", "{{ config(schema='two', alias='bee') }}select 1"),
        ("models/c.sql", "{{ config(schema=' one ') }}select 1"),
        ("models/d.sql", "select 1"),
        ("models/e.sql", "{{ config(schema='two') }}select 1"),
    ]);
    let p = load(&fs).unwrap();
    let names: Vec<(&str, &str)> =
        ["a", "b", "c", "d", "e"].iter().map(|m| &p.nodes[&format!("model.p.{m}")]).map(|n| (n.schema.as_str(), n.alias.as_str())).collect();
    assert_eq!(names, [("s_one", "a_none"), ("s_two", "b_bee"), ("s_one", "c_none"), ("main_x", "d_none"), ("s_two", "e_none")]);
}

#[test]
fn reading_the_node_is_found_in_the_macro_body_only() {
    use super::finish::reads_node;
    assert!(!reads_node("{% macro generate_schema_name(custom_schema_name, node) -%}{{ custom_schema_name }}{% endmacro %}"));
    assert!(reads_node("{% macro generate_schema_name(custom_schema_name, node) -%}{{ node.fqn[1] }}{% endmacro %}"));
    assert!(reads_node("{% macro generate_schema_name(c, node) %}{{ adapter.dispatch('x')(c, node) }}{% endmacro %}"));
    assert!(!reads_node("{% macro generate_schema_name(c, node) %}{{ nodes_count }}{% endmacro %}"));
}

#[test]
fn jinja_in_source_properties_is_rendered() {
    let fs = project(&[
        ("models/a.sql", "select * from {{ source('raw', 't') }}"),
        (
            "models/src.yml",
            "sources:\n  - name: raw\n    schema: \"{{ target.schema }}_raw\"\n    description: \"{{ doc('x') }}\"\n    tables:\n      - name: t\n        identifier: \"{{ var('t_name', 't_file') }}\"\n        meta: {owner: \"{{ env_var('NOBODY', 'data') }}\"}\n",
        ),
    ]);
    let p = load(&fs).unwrap();
    let t = &p.nodes["source.p.raw.t"];
    assert_eq!((t.schema.as_str(), t.alias.as_str()), ("main_raw", "t_file"));
    assert_eq!(t.source.as_ref().unwrap().meta["owner"], "data");
}

#[test]
fn packages_bring_their_nodes_with_their_own_configs_beneath_the_roots() {
    let fs = MemFs::new()
        .with("dbt_project.yml", "name: p\nmodels:\n  pkg:\n    marts:\n      +schema: over\n")
        .with("models/a.sql", "select * from {{ ref('b') }}")
        .with("dbt_packages/pkg/dbt_project.yml", "name: pkg\nmodel-paths: [src]\nmodels:\n  pkg:\n    +materialized: table\n    marts:\n      +schema: own\n")
        .with("dbt_packages/pkg/src/marts/b.sql", "select * from {{ ref('s') }}")
        .with(
            "dbt_packages/pkg/src/marts/b.yml",
            "models:\n  - name: b\n    description: From the package.\n    columns:\n      - name: id\n        data_tests: [not_null]\n",
        )
        .with("dbt_packages/pkg/seeds/s.csv", "id\n1\n")
        .with("dbt_packages/pkg/tests/t.sql", "select 1 where false");
    let p = load(&fs).unwrap();
    let b = &p.nodes["model.pkg.b"];
    assert_eq!(b.fqn, ["pkg", "marts", "b"]);
    assert_eq!(b.description, "From the package.");
    assert_eq!(b.config["materialized"], "table");
    assert_eq!(b.config["schema"], "over", "the root project's config wins over the package's own");
    assert!(p.nodes.contains_key("seed.pkg.s"));
    assert!(p.nodes.contains_key("test.pkg.t"));
    let test = p.nodes.values().find(|n| n.name == "not_null_b_id").unwrap();
    assert_eq!(test.package_name, "pkg");
    assert!(test.unique_id.starts_with("test.pkg.not_null_b_id."));
}

#[test]
fn versioned_models_take_their_files_and_ref_picks_the_latest() {
    let fs = project(&[
        ("models/m_v1.sql", "select 1 as id"),
        ("models/m_v2.sql", "select 2 as id"),
        ("models/m_next.sql", "select 3 as id"),
        ("models/x.sql", "select * from {{ ref('m') }} union all select * from {{ ref('m', v=1) }}"),
        (
            "models/m.yml",
            "models:\n  - name: m\n    latest_version: 2\n    columns:\n      - name: id\n        data_tests: [unique]\n    versions:\n      - v: 1\n      - v: 2\n      - v: 3\n        defined_in: m_next\n        description: Next.\n",
        ),
    ]);
    let mut p = load(&fs).unwrap();
    let v3 = &p.nodes["model.p.m.v3"];
    assert_eq!((v3.name.as_str(), v3.version.as_deref(), v3.alias.as_str(), v3.description.as_str()), ("m", Some("3"), "m_v3", "Next."));
    assert_eq!(p.nodes["model.p.m.v1"].fqn, ["p", "m", "v1"]);
    assert!(!p.nodes.contains_key("model.p.m_v1"));
    let mut tests: Vec<&str> = p.nodes.values().filter(|n| n.resource_type == ResourceType::Test).map(|n| n.name.as_str()).collect();
    tests.sort();
    assert_eq!(tests, ["unique_m_v1_id", "unique_m_v2_id", "unique_m_v3_id"]);
    crate::graph::resolve_dependencies(&mut p).unwrap();
    assert_eq!(p.nodes["model.p.x"].depends_on, ["model.p.m.v2", "model.p.m.v1"]);
}

#[test]
fn require_dbt_version_is_checked_for_the_project_and_packages() {
    let fs = project(&[("dbt_packages/old/dbt_project.yml", "name: old\n\nrequire-dbt-version: [\">=0.20.0\", \"<1.0.0\"]\n")]);
    let e = load(&fs).err().unwrap().to_string();
    assert_eq!(
        e,
        "dbt_packages/old/dbt_project.yml:3: 'old' requires dbt >=0.20.0, <1.0.0, and dp follows dbt 1.11.0\n  hint: install a version of 'old' made for dbt 1.11.0, or set DBT_VERSION_CHECK=false to load it anyway"
    );
    let opts = LoadOptions { env: std::sync::Arc::new(|k| (k == "DBT_VERSION_CHECK").then(|| "false".to_string())), ..LoadOptions::default() };
    assert!(load_project(settings(&fs), &fs, &opts).is_ok());
    let fs = MemFs::new().with("dbt_project.yml", "name: p\nrequire-dbt-version: \">=1.8.0\"\n");
    assert!(load(&fs).is_ok());
}

#[test]
fn nodes_with_the_same_config_share_one_map_until_one_changes() {
    let fs = project(&[
        ("models/a.sql", "select 1 as id, 'x' as name"),
        ("models/b.sql", "select 1 as id"),
        ("models/c.sql", "{{ config(materialized='table') }} select 1 as id"),
        (
            "models/a.yml",
            "models:\n  - name: a\n    columns:\n      - name: id\n        data_tests: [unique, not_null]\n      - name: name\n        data_tests:\n          - not_null:\n              config: {severity: warn}\n",
        ),
    ]);
    let mut p = load(&fs).unwrap();
    let tests: Vec<&str> = p.nodes.values().filter(|n| n.resource_type == ResourceType::Test).map(|n| n.unique_id.as_str()).collect();
    assert_eq!(tests.len(), 3, "{tests:?}");
    let (unique, not_null, warn) = (tests[0].to_string(), tests[1].to_string(), tests[2].to_string());
    assert!(p.nodes[&unique].config.shares(&p.nodes[&not_null].config));
    assert!(p.nodes[&unique].extra.shares(&p.nodes[&not_null].extra));
    assert!(!p.nodes[&unique].config.shares(&p.nodes[&warn].config));
    assert_eq!(p.nodes[&warn].config["severity"], "warn");
    // models with the same config share it too; one whose config() differs does not
    assert!(p.nodes["model.p.a"].config.shares(&p.nodes["model.p.b"].config));
    assert!(!p.nodes["model.p.a"].config.shares(&p.nodes["model.p.c"].config));
    assert_eq!(p.nodes["model.p.c"].config["materialized"], "table");
    // changing one node's config leaves the other's as it was
    p.nodes.get_mut(&unique).unwrap().config.insert("severity".into(), "warn".into());
    assert_eq!(p.nodes[&not_null].config["severity"], "ERROR");
    assert_eq!(p.nodes[&unique].config["severity"], "warn");
}
