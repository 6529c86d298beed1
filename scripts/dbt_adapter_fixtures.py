#!/usr/bin/env python3
"""Writes tests/fixtures/projects/dbt_adapter/: the incremental and the
cross-database macro (`utils`) suites of dbt's own adapter test kit (PyPI
`dbt-tests-adapter`, Apache-2.0), as plain dbt projects that
tests/it/dbt_adapter.rs builds with dp.

    scripts/dbt_adapter_fixtures.py [path/to/dbt_tests_adapter-1.20.0-py3-none-any.whl]

The `utils` and `basic` suites compose their fixtures in Python classes,
so they are written only where `dbt.tests.adapter` imports (dbt-core,
pytest and dbt-tests-adapter installed, e.g. `/work/venv-dbt/bin/python`
after `pip install --no-deps dbt-tests-adapter==1.20.0 pytest`): every
concrete `Test*` class built on `BaseUtils`, one project each under
`utils/<name>/` (its test is `dbt build`: seeds, the model, its
`assert_equal` tests), and every `Test*` class of the `basic` modules in
`BASIC` under `basic/<name>/`.

Without a wheel it is downloaded with pip (the version below). The model,
seed and SQL texts are copied verbatim from the test modules (read with
`ast`, nothing is imported); only the project files the pytest fixtures
would generate around them are written here: dbt_project.yml (with the
suite's `project_config_update`), a DuckDB profile (so dbt-duckdb can build
the same folder) and `updates/*.sql`, the seed updates the suites run
through the adapter (`{schema}` becomes `main`).
"""

import ast
import io
import pathlib
import shutil
import subprocess
import sys
import tempfile
import zipfile

VERSION = "1.20.0"
ROOT = pathlib.Path(__file__).resolve().parent.parent
OUT = ROOT / "tests/fixtures/projects/dbt_adapter"
PKG = "dbt/tests/adapter/incremental/"


def strings(source: str) -> dict:
    """The module-level string constants of a Python module."""
    out = {}
    for node in ast.parse(source).body:
        if isinstance(node, ast.Assign) and isinstance(node.value, ast.Constant) and isinstance(node.value.value, str):
            for t in node.targets:
                if isinstance(t, ast.Name):
                    out[t.id] = node.value.value
    return out


def project(name: str, models: dict, seeds: dict, updates: dict | None = None, config: str = "") -> None:
    d = OUT / name
    if d.exists():
        shutil.rmtree(d)
    for rel, text in models.items():
        (d / "models" / rel).parent.mkdir(parents=True, exist_ok=True)
        (d / "models" / rel).write_text(text)
    for rel, text in seeds.items():
        (d / "seeds").mkdir(parents=True, exist_ok=True)
        (d / "seeds" / rel).write_text(text)
    for rel, text in (updates or {}).items():
        (d / "updates").mkdir(parents=True, exist_ok=True)
        (d / "updates" / rel).write_text(text.replace("{schema}", "main"))
    (d / "dbt_project.yml").write_text(f"name: 'test'\nversion: '1.0'\nconfig-version: 2\nprofile: 'test'\n{config}")
    (d / "profiles.yml").write_text(
        "test:\n  target: dev\n  outputs:\n    dev:\n      type: duckdb\n"
        f"      path: \"{{{{ env_var('DP_DBT_WORKDIR', '/tmp/dp-dbt-adapter') }}}}/{name}.duckdb\"\n"
        "      schema: main\n      threads: 1\n"
    )


def main() -> None:
    if len(sys.argv) > 1:
        wheel = pathlib.Path(sys.argv[1])
    else:
        tmp = pathlib.Path(tempfile.mkdtemp())
        subprocess.run([sys.executable, "-m", "pip", "download", f"dbt-tests-adapter=={VERSION}", "--no-deps", "-d", str(tmp)], check=True)
        wheel = next(tmp.glob("*.whl"))
    z = zipfile.ZipFile(io.BytesIO(wheel.read_bytes()))
    mod = lambda m: strings(z.read(PKG + m + ".py").decode())  # noqa: E731

    u = mod("test_incremental_unique_id")
    project(
        "unique_id",
        models={
            "trinary_unique_key_list.sql": u["models__trinary_unique_key_list_sql"],
            "nontyped_trinary_unique_key_list.sql": u["models__nontyped_trinary_unique_key_list_sql"],
            "unary_unique_key_list.sql": u["models__unary_unique_key_list_sql"],
            "not_found_unique_key.sql": u["models__not_found_unique_key_sql"],
            "empty_unique_key_list.sql": u["models__empty_unique_key_list_sql"],
            "no_unique_key.sql": u["models__no_unique_key_sql"],
            "empty_str_unique_key.sql": u["models__empty_str_unique_key_sql"],
            "str_unique_key.sql": u["models__str_unique_key_sql"],
            "duplicated_unary_unique_key_list.sql": u["models__duplicated_unary_unique_key_list_sql"],
            "not_found_unique_key_list.sql": u["models__not_found_unique_key_list_sql"],
            "expected/one_str__overwrite.sql": u["models__expected__one_str__overwrite_sql"],
            "expected/unique_key_list__inplace_overwrite.sql": u["models__expected__unique_key_list__inplace_overwrite_sql"],
        },
        seeds={"seed.csv": u["seeds__seed_csv"]},
        updates={"duplicate_insert.sql": u["seeds__duplicate_insert_sql"], "add_new_rows.sql": u["seeds__add_new_rows_sql"]},
    )

    p = mod("test_incremental_predicates")
    for name, key in [("predicates", "+incremental_predicates"), ("predicates_legacy", "+predicates")]:
        project(
            name,
            models={"delete_insert_incremental_predicates.sql": p["models__delete_insert_incremental_predicates_sql"]},
            seeds={"expected_delete_insert_incremental_predicates.csv": p["seeds__expected_delete_insert_incremental_predicates_csv"]},
            config=f"models:\n  {key}: ['id != 2']\n  +incremental_strategy: delete+insert\n",
        )

    m = mod("test_incremental_merge_exclude_columns")
    project(
        "merge_exclude_columns",
        models={"merge_exclude_columns.sql": m["models__merge_exclude_columns_sql"]},
        seeds={"expected_merge_exclude_columns.csv": m["seeds__expected_merge_exclude_columns_csv"]},
    )

    f = mod("fixtures")
    names = [
        "incremental_sync_remove_only",
        "incremental_ignore",
        "incremental_sync_remove_only_target",
        "incremental_ignore_target",
        "incremental_fail",
        "incremental_sync_all_columns",
        "incremental_append_new_columns_remove_one",
        "incremental_append_new_columns_target",
        "incremental_append_new_columns",
        "incremental_sync_all_columns_target",
        "incremental_append_new_columns_remove_one_target",
    ]
    models = {f"{n}.sql": f[f"_MODELS__{n.upper()}"] for n in names}
    models["model_a.sql"] = f["_MODELS__A"]
    project("on_schema_change", models=models, seeds={})
    imported()
    (OUT / "SOURCE").write_text(
        f"dbt-tests-adapter {VERSION} (PyPI; dbt Labs, Apache-2.0), {PKG}: written by scripts/dbt_adapter_fixtures.py; do not edit.\n"
    )
    print(f"wrote {OUT}")


# The `basic` modules ported by tests/it/dbt_adapter.rs (each `Test*` class, one project).
BASIC = [
    "test_base",
    "test_incremental",
    "test_ephemeral",
    "test_empty",
    "test_generic_tests",
    "test_singular_tests",
    "test_singular_tests_ephemeral",
    "test_snapshot_check_cols",
    "test_snapshot_timestamp",
    "test_table_materialization",
]


def imported() -> None:
    """The suites that compose their fixtures in Python classes (`utils`,
    `basic`; see the module docs); skipped, with a note, where
    dbt-tests-adapter does not import."""
    try:
        import importlib
        import inspect
        import pkgutil

        import yaml
        import dbt.tests.adapter.utils as utils
        from dbt.tests.adapter.utils.base_utils import BaseUtils
    except ImportError as e:
        print(f"utils and basic suites not written ({e}): run with a Python that has dbt-core, pytest and dbt-tests-adapter=={VERSION}")
        return

    def fixture(cls, name):
        f = getattr(cls, name, None)
        if f is None:
            return {}
        fn = f._get_wrapped_function() if hasattr(f, "_get_wrapped_function") else f
        params = list(inspect.signature(fn).parameters)[1:]
        if params == ["test_data_dir"]:
            # a scratch folder for the files a fixture generates (a big seed)
            out = fn(cls(), pathlib.Path(tempfile.mkdtemp()) / "data")
        else:
            out = fn(cls())
        return next(out) if inspect.isgenerator(out) else out

    def tree(base, d):
        for k, v in (d or {}).items():
            if isinstance(v, dict):
                tree(base / k, v)
            else:
                base.mkdir(parents=True, exist_ok=True)
                (base / k).write_text(v)

    def merge(a, b):
        for k, v in b.items():
            if isinstance(v, dict) and isinstance(a.get(k), dict):
                merge(a[k], v)
            else:
                a[k] = v
        return a

    def write(root, modules, wanted):
        if root.exists():
            shutil.rmtree(root)
        for module in modules:
            mod = importlib.import_module(module)
            for cname, cls in inspect.getmembers(mod, inspect.isclass):
                # a concrete `Test*` class, or one `wanted` names (no adapter-neutral subclass)
                if cls.__module__ != mod.__name__ or not wanted(cls):
                    continue
                d = root / cname.removeprefix("Test").removeprefix("Base")
                try:
                    cfg = merge({"name": "test", "version": "1.0", "config-version": 2, "profile": "test"}, fixture(cls, "project_config_update"))
                    files = {kind: fixture(cls, kind) for kind in ["seeds", "models", "macros", "snapshots", "tests"]}
                    # pytest's `properties` fixture writes its YAML beside the models
                    files["models"] = {**files["models"], **fixture(cls, "properties")}
                except TypeError:
                    print(f"skipped {cname}: its fixtures take pytest fixtures (a unique schema, a data dir)")
                    continue
                d.mkdir(parents=True)
                for kind, content in files.items():
                    tree(d / kind, content)
                (d / "dbt_project.yml").write_text(yaml.safe_dump(cfg, sort_keys=False))
                (d / "profiles.yml").write_text(
                    "test:\n  target: dev\n  outputs:\n    dev:\n      type: duckdb\n"
                    f"      path: \"{{{{ env_var('DP_DBT_WORKDIR', '/tmp/dp-dbt-adapter') }}}}/{root.name}_{d.name}.duckdb\"\n"
                    "      schema: main\n      threads: 1\n"
                )

    names = [f"dbt.tests.adapter.utils.{m.name}" for m in pkgutil.iter_modules(utils.__path__) if m.name.startswith("test_")]
    concrete = lambda cls: cls.__name__.startswith("Test")  # noqa: E731
    write(OUT / "utils", names, lambda cls: concrete(cls) and issubclass(cls, BaseUtils))
    write(OUT / "basic", [f"dbt.tests.adapter.basic.{m}" for m in BASIC], concrete)
    write(OUT / "empty", ["dbt.tests.adapter.empty.test_empty"], lambda cls: concrete(cls) or cls.__name__ == "BaseTestEmptyInlineSourceRef")
    write(OUT / "ephemeral", ["dbt.tests.adapter.ephemeral.test_ephemeral"], concrete)
    write(OUT / "aliases", ["dbt.tests.adapter.aliases.test_aliases"], concrete)
    stored = lambda cls: cls.__name__.startswith("StoreTestFailuresAs") and cls.__name__ != "StoreTestFailuresAsBase"  # noqa: E731
    write(OUT / "store_failures", ["dbt.tests.adapter.store_test_failures_tests.basic"], stored)
    write(OUT / "snapshot", ["dbt.tests.adapter.simple_snapshot.test_snapshot"], concrete)
    write(OUT / "unit_testing", [f"dbt.tests.adapter.unit_testing.{m}" for m in ["test_case_insensitivity", "test_invalid_input", "test_quoted_reserved_word_column_names"]], lambda cls: concrete(cls) or cls.__name__ == "BaseUnitTestQuotedReservedWordColumnNames")
    write(OUT / "simple_copy", ["dbt.tests.adapter.simple_copy.test_simple_copy"], concrete)
    import dbt.tests.adapter.simple_copy.fixtures as copy_texts

    for d in (OUT / "simple_copy").iterdir():
        (d / "seed_update.csv").write_text(copy_texts._SEEDS__SEED_UPDATE)
    write(OUT / "concurrency", ["dbt.tests.adapter.concurrency.test_concurrency"], concrete)
    write(OUT / "relations", ["dbt.tests.adapter.relations.test_changing_relation_type"], concrete)
    import dbt.tests.adapter.concurrency.test_concurrency as concurrency

    # the seed `test_concurrency` writes over the first one before its second run
    (OUT / "concurrency" / "Concurenncy" / "seed_update.csv").write_text(concurrency.seeds__update_csv)
    # `BaseSampleModeTest`: its fixtures take one another, so its two models are written here
    import dbt.tests.adapter.sample_mode.fixtures as sample_texts

    sample = OUT / "sample_mode" / "SampleMode"
    if sample.parent.exists():
        shutil.rmtree(sample.parent)
    (sample / "models").mkdir(parents=True)
    (sample / "models" / "input_model.sql").write_text(sample_texts.input_model_sql)
    (sample / "models" / "model_that_samples_input_sql.sql").write_text(sample_texts.model_that_samples_input_sql)
    (sample / "dbt_project.yml").write_text("name: test\nversion: '1.0'\nconfig-version: 2\nprofile: test\n")
    write(OUT / "show", ["dbt.tests.adapter.dbt_show.test_dbt_show"], lambda cls: concrete(cls) and cls.__name__ != "TestShowDoesNotHandleDoubleLimit")
    import dbt.tests.adapter.dbt_show.fixtures as show_texts

    # the query `test_limit` passes to `dbt show --inline`
    (OUT / "show" / "PostgresShowLimit" / "inline.sql").write_text(show_texts.models__second_ephemeral_model)
    seeds_root = OUT / "seed"
    # not the full-refresh classes (they expect a seed's views to be dropped with it, by
    # PostgreSQL's CASCADE) nor the wrong delimiter (PostgreSQL's syntax error)
    adapter_specific = {"TestSeedConfigFullRefreshOn", "TestSeedConfigFullRefreshOff", "TestSeedWithWrongDelimiter"}
    write(seeds_root, ["dbt.tests.adapter.simple_seed.test_seed"], lambda cls: concrete(cls) and cls.__name__ not in adapter_specific)
    # what the suite's setUp fixtures run or copy: the expected table's SQL, the BOM seed file
    import dbt.tests.adapter.simple_seed.seeds as seed_texts

    (seeds_root / "expected.sql").write_text(seed_texts.seeds__expected_sql.replace("{schema}", "main"))
    bom = pathlib.Path(seed_texts.__file__).with_name("seed_bom.csv")
    (seeds_root / "SimpleSeedWithBOM" / "seeds").mkdir(exist_ok=True)
    shutil.copy(bom, seeds_root / "SimpleSeedWithBOM" / "seeds" / "seed_bom.csv")


if __name__ == "__main__":
    main()
