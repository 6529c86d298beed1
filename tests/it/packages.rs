//! Installed packages under dbt_packages/: their macros are namespaced
//! (`dbt_utils.generate_surrogate_key`) and dispatch within the package.

use crate::common::*;

const SURROGATE_KEY: &str = r#"{%- macro generate_surrogate_key(field_list) -%}
    {{ return(adapter.dispatch('generate_surrogate_key', 'dbt_utils')(field_list)) }}
{% endmacro %}

{%- macro default__generate_surrogate_key(field_list) -%}
{%- if var('surrogate_key_treat_nulls_as_empty_strings', False) -%}
    {%- set default_null_value = "" -%}
{%- else -%}
    {%- set default_null_value = '_dbt_utils_surrogate_key_null_' -%}
{%- endif -%}
{%- set fields = [] -%}
{%- for field in field_list -%}
    {%- do fields.append(
        "coalesce(cast(" ~ field ~ " as " ~ dbt.type_string() ~ "), '" ~ default_null_value  ~"')"
    ) -%}
    {%- if not loop.last %}
        {%- do fields.append("'-'") -%}
    {%- endif -%}
{%- endfor -%}
{{ dbt.hash(dbt.concat(fields)) }}
{%- endmacro -%}
"#;

#[test]
fn dbt_utils_macros_are_namespaced_and_run() {
    let dir = project(&[
        ("warehouse.toml", "[project]\nname = \"p\"\n[models]\nmaterialized = \"table\"\n"),
        ("dbt_packages/dbt_utils/dbt_project.yml", "name: dbt_utils\nversion: '1.3.0'\n"),
        ("dbt_packages/dbt_utils/macros/sql/generate_surrogate_key.sql", SURROGATE_KEY),
        ("models/k.sql", "select {{ dbt_utils.generate_surrogate_key(['a', 'b']) }} as sk from (select 1 as a, 'x' as b) t"),
    ]);
    let p = dir.path();
    let o = run(p, &["compile", "-s", "k"]);
    ok(&o);
    assert!(stdout(&o).contains("md5(cast(coalesce(cast(a as varchar), '_dbt_utils_surrogate_key_null_')"), "{}", stdout(&o));
    ok(&run(p, &["run"]));
    let o = run(p, &["show", "--inline", "select sk from main.k", "--format", "csv"]);
    ok(&o);
    let want = format!("{:x}", md5::compute(b"1-x"));
    assert_eq!(stdout(&o).trim(), format!("sk\n{want}"));
}

#[test]
fn macro_with_wrong_arguments_is_a_clear_error() {
    let dir = project(&[
        ("warehouse.toml", "[project]\nname = \"p\"\n"),
        ("macros/m.sql", "{% macro two(a, b) %}{{ a }}{{ b }}{% endmacro %}"),
        ("models/x.sql", "select {{ two(1, 2, 3) }}"),
    ]);
    let o = run(dir.path(), &["parse"]);
    assert_eq!(o.status.code(), Some(1));
    let err = stderr(&o);
    assert!(err.contains("models/x.sql:1: macro called with too many arguments"), "{err}");
}

/// `dp clean` removes the clean-targets and refuses source folders.
#[test]
fn clean_removes_clean_targets_only() {
    let dir = project(&[
        ("dbt_project.yml", "name: p\nclean-targets: [target, dbt_packages]\n"),
        ("models/m.sql", "select 1 as id"),
        ("target/manifest.json", "{}"),
        ("dbt_packages/x/dbt_project.yml", "name: x\n"),
    ]);
    let p = dir.path();
    let o = run(p, &["clean"]);
    ok(&o);
    assert!(!p.join("target").exists() && !p.join("dbt_packages").exists() && p.join("models/m.sql").exists());
    assert!(
        stderr(&o).contains("Checking target/*\n  Cleaned target/*\nChecking dbt_packages/*\n  Cleaned dbt_packages/*\nFinished cleaning all paths."),
        "{}",
        stderr(&o)
    );
    std::fs::write(p.join("dbt_project.yml"), "name: p\nclean-targets: [target, models]\n").unwrap();
    let o = run(p, &["clean"]);
    assert_eq!(o.status.code(), Some(1));
    assert!(stderr(&o).contains("dp will not clean 'models': it is a source folder of the project"), "{}", stderr(&o));
    assert!(p.join("models/m.sql").exists());
}

/// `dp init` writes a project that builds at once, and refuses to overwrite one.
#[test]
fn init_creates_a_project_that_builds() {
    let dir = tempfile::tempdir().unwrap();
    let o = run(dir.path(), &["init", "my_proj"]);
    ok(&o);
    let p = dir.path().join("my_proj");
    let o = run(&p, &["build"]);
    ok(&o);
    assert!(stderr(&o).contains("Done. PASS=5 WARN=0 ERROR=0 SKIP=0 NO-OP=0 TOTAL=5"), "{}", stderr(&o));
    let o = run(dir.path(), &["init", "my_proj"]);
    assert_eq!(o.status.code(), Some(1));
    assert!(stderr(&o).contains("already holds a project (warehouse.toml)"), "{}", stderr(&o));
    let o = run(dir.path(), &["init", "9lives"]);
    assert!(stderr(&o).contains("'9lives' is not a valid project name"), "{}", stderr(&o));
}
