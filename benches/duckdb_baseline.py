#!/usr/bin/env python3
"""DuckDB baseline for `benches/pipeline.rs`.

Replays the SQL that a `dp run` compiled (target/compiled/<project>/models/**.sql) on DuckDB,
over the same bronze files and seed CSVs, in the same DAG order, writing each model's result
to Parquet (the model's codec and level: dp's zstd level 1 by default) the way dp writes each
model to a Delta table. Everything it needs comes from the dp run's own artifacts:

* target/manifest.json  - sources (relation_name + meta.external_location / meta.format),
                          seeds (relation_name, path, config.column_types), models
                          (relation_name, compiled_path, materialized), parent_map;
* target/run_results.json - the order in which dp finished the models (a valid topological
                          order); the manifest's parent_map is used to check/repair it.

Usage: duckdb_baseline.py --project DIR --out DIR --json RESULT.json [--threads N]

Prints one line per model on stderr and writes RESULT.json:
  {"duckdb_version", "threads", "setup_s", "seeds_s", "models_s", "total_s",
   "seeds": [{unique_id, relation, rows, seconds}], "models": [{unique_id, relation, rows, seconds}]}
"""

import argparse
import json
import os
import sys
import time

import duckdb

# DuckDB has no initcap(); DataFusion's upper-cases the first letter of every word and
# lower-cases the rest. Words split on spaces here (the demo's names have no other separators
# that matter for timing).
INITCAP_MACRO = """
CREATE OR REPLACE MACRO initcap(s) AS (
    CASE WHEN s IS NULL THEN NULL ELSE
        array_to_string(
            list_transform(string_split(lower(s), ' '), lambda w: upper(w[1]) || w[2:]),
            ' ')
    END
)
"""


def parquet_codec(node):
    """The model's `compression` and `compression_level` as DuckDB COPY options, with dp's
    defaults (zstd at level 1: src/materialize/delta.rs) when the model sets none, so both
    engines write the same codec."""
    config = node.get("config") or {}
    codec = str(config.get("compression") or "zstd").lower()
    codec = {"lz4": "lz4_raw", "none": "uncompressed"}.get(codec, codec)
    level = config.get("compression_level")
    if codec == "zstd" and level is None:
        level = 1
    opts = f"COMPRESSION {codec}"
    if level is not None and codec == "zstd":  # DuckDB has levels for zstd only
        opts += f", COMPRESSION_LEVEL {int(level)}"
    return opts


def q(ident):
    return '"' + ident.replace('"', '""') + '"'


def sql_str(s):
    return "'" + s.replace("'", "''") + "'"


def split_relation(rel):
    # relation_name is "schema.table" (dp) or "db"."schema"."table" (dbt); keep the last two parts.
    parts = [p.strip('"') for p in rel.split(".")]
    return parts[-2], parts[-1]


def topo_order(model_ids, preferred, parent_map):
    """Models in `preferred` order, moved later where a parent model would come after them."""
    rank = {uid: i for i, uid in enumerate(preferred)}
    remaining = sorted(model_ids, key=lambda u: rank.get(u, len(rank)))
    wanted = set(model_ids)
    done, out = set(), []
    while remaining:
        for i, uid in enumerate(remaining):
            parents = [p for p in parent_map.get(uid, []) if p in wanted]
            if all(p in done for p in parents):
                out.append(uid)
                done.add(uid)
                del remaining[i]
                break
        else:
            raise SystemExit(f"cycle among {remaining}")
    return out


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--project", required=True)
    ap.add_argument("--out", required=True)
    ap.add_argument("--json", required=True)
    ap.add_argument("--threads", type=int, default=0)
    a = ap.parse_args()

    t_start = time.perf_counter()
    project = os.path.abspath(a.project)
    out_dir = os.path.abspath(a.out)
    os.makedirs(out_dir, exist_ok=True)
    os.chdir(project)  # external_location paths are relative to the project dir

    manifest = json.load(open(os.path.join(project, "target", "manifest.json")))
    run_results = json.load(open(os.path.join(project, "target", "run_results.json")))

    con = duckdb.connect(":memory:")
    # dp's compiled SQL names relations as dbt does, "<database>"."schema"."table"
    # (the target's database, `dp` by default): an in-memory database of that name
    database = next((n["database"] for n in manifest["nodes"].values() if n.get("database")), "dp")
    con.execute(f"ATTACH ':memory:' AS {q(database)}")
    con.execute(f"USE {q(database)}")
    if a.threads:
        con.execute(f"SET threads = {a.threads}")
    threads = con.execute("SELECT current_setting('threads')").fetchone()[0]
    con.execute(INITCAP_MACRO)

    def ensure_schema(schema):
        con.execute(f"CREATE SCHEMA IF NOT EXISTS {q(schema)}")

    # Sources: views over the bronze files, named like the compiled SQL refers to them.
    for src in manifest["sources"].values():
        meta = src.get("meta") or {}
        loc = meta.get("external_location")
        if not loc:
            continue
        schema, table = split_relation(src["relation_name"])
        ensure_schema(schema)
        fmt = (meta.get("format") or os.path.splitext(loc)[1].lstrip(".")).lower()
        if fmt == "csv":
            reader = f"read_csv({sql_str(loc)}, header = true, union_by_name = true)"
        elif fmt == "json":
            reader = f"read_json_auto({sql_str(loc)})"
        else:
            reader = f"read_parquet({sql_str(loc)}, union_by_name = true)"
        con.execute(f"CREATE OR REPLACE VIEW {q(schema)}.{q(table)} AS SELECT * FROM {reader}")
    t_setup = time.perf_counter()

    # Seeds: CSV -> tables, with the declared column_types (dp writes them to Delta; DuckDB
    # keeps them as in-memory tables, which is cheaper - seeds are a few rows here).
    seeds = []
    for uid, node in manifest["nodes"].items():
        if node.get("resource_type") != "seed":
            continue
        t0 = time.perf_counter()
        schema, table = split_relation(node["relation_name"])
        ensure_schema(schema)
        path = os.path.join(node.get("root_path") or project, node["original_file_path"])
        types = (node.get("config") or {}).get("column_types") or {}
        opts = "header = true"
        if types:
            cols = ", ".join(f"{sql_str(k)}: {sql_str(v)}" for k, v in types.items())
            opts += f", types = {{{cols}}}"
        con.execute(
            f"CREATE OR REPLACE TABLE {q(schema)}.{q(table)} AS SELECT * FROM read_csv({sql_str(path)}, {opts})"
        )
        rows = con.execute(f"SELECT count(*) FROM {q(schema)}.{q(table)}").fetchone()[0]
        seeds.append({"unique_id": uid, "relation": f"{schema}.{table}", "rows": rows,
                      "seconds": time.perf_counter() - t0})
    t_seeds = time.perf_counter()

    # Models, in DAG order.
    models = {uid: n for uid, n in manifest["nodes"].items() if n.get("resource_type") == "model"}
    preferred = [r["unique_id"] for r in run_results.get("results", []) if r["unique_id"] in models]
    order = topo_order(list(models), preferred, manifest.get("parent_map", {}))
    results = []
    for uid in order:
        node = models[uid]
        mat = (node.get("config") or {}).get("materialized", "table")
        if mat == "ephemeral":
            continue  # inlined into its children's compiled SQL
        compiled_path = node.get("compiled_path")
        if not compiled_path:
            rel = node["original_file_path"]
            compiled_path = os.path.join("target", "compiled", node["package_name"], rel)
        sql = open(os.path.join(project, compiled_path)).read().strip().rstrip(";").strip()
        schema, table = split_relation(node["relation_name"])
        ensure_schema(schema)
        t0 = time.perf_counter()
        try:
            if mat == "view":
                con.execute(f"CREATE OR REPLACE VIEW {q(schema)}.{q(table)} AS (\n{sql}\n)")
                rows = None
            else:
                target_dir = os.path.join(out_dir, schema)
                os.makedirs(target_dir, exist_ok=True)
                target = os.path.join(target_dir, table + ".parquet")
                r = con.execute(
                    f"COPY (\n{sql}\n) TO {sql_str(target)} (FORMAT parquet, {parquet_codec(node)})"
                ).fetchone()
                rows = r[0] if r else None
                # Downstream models read the written file, as dp's read the Delta table.
                con.execute(
                    f"CREATE OR REPLACE VIEW {q(schema)}.{q(table)} AS SELECT * FROM read_parquet({sql_str(target)})"
                )
        except duckdb.Error as e:
            print(f"duckdb: {uid} failed: {e}", file=sys.stderr)
            results.append({"unique_id": uid, "relation": f"{schema}.{table}", "rows": None,
                            "seconds": time.perf_counter() - t0, "error": str(e)})
            continue
        dt = time.perf_counter() - t0
        results.append({"unique_id": uid, "relation": f"{schema}.{table}", "rows": rows, "seconds": dt})
        print(f"duckdb: {schema}.{table}: {rows} rows in {dt:.3f}s", file=sys.stderr)
    t_end = time.perf_counter()

    json.dump({
        "duckdb_version": duckdb.__version__,
        "threads": threads,
        "setup_s": t_setup - t_start,
        "seeds_s": t_seeds - t_setup,
        "models_s": t_end - t_seeds,
        "total_s": t_end - t_start,
        "seeds": seeds,
        "models": results,
    }, open(a.json, "w"), indent=2)
    return 1 if any("error" in r for r in results) else 0


if __name__ == "__main__":
    sys.exit(main())
