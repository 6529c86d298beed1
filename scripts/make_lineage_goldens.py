"""Cross-checks dp's column lineage against sqlglot's `lineage` and writes
the result as a committed golden (run by scripts/make_lineage_goldens.sh).

For every column of every model of a project, sqlglot traces the column
through the model's compiled SQL (as dp compiles it) to the columns of the
relations the SQL reads; the schemas of those relations come from dp's own
target/lineage.json (sqlglot needs them to expand `select *`). The golden
maps `relation.column` to the sorted `relation.column` leaves sqlglot finds;
tests/it/lineage.rs compares dp's per-column inputs with it.

usage: make_lineage_goldens.py <project dir> <out.json>
"""
import json
import os
import sys

import sqlglot
from sqlglot.lineage import lineage

project, out = sys.argv[1], sys.argv[2]
lin = json.load(open(os.path.join(project, "target", "lineage.json")))
manifest = json.load(open(os.path.join(project, "target", "manifest.json")))

# schema -> table -> column -> type, for every relation dp knows
schema = {}
relation_of = {}
for uid, n in lin["nodes"].items():
    if not n["relation"]:
        continue
    s, t = n["relation"].split(".", 1)
    schema.setdefault(s, {})[t] = {c: "text" for c in n["columns"]}
    relation_of[uid] = n["relation"]

golden = {"sqlglot": sqlglot.__version__, "columns": {}, "errors": {}}
for uid, n in sorted(lin["nodes"].items()):
    if n["resource_type"] != "model" or not n["relation"] or n.get("unavailable"):
        continue
    node = manifest["nodes"][uid]
    sql = node.get("compiled_code")
    if not sql:
        continue
    for col in n["columns"]:
        key = f'{n["relation"]}.{col}'
        try:
            root = lineage(col, sql, schema=schema, dialect="duckdb")
        except Exception as e:  # noqa: BLE001 - recorded, not fatal
            golden["errors"][key] = f"{type(e).__name__}: {e}".splitlines()[0]
            continue
        leaves = set()
        for x in root.walk():
            if x.downstream:
                continue
            src = x.source
            if isinstance(src, sqlglot.exp.Table) and src.name:
                leaves.add(f"{src.db}.{src.name}.{x.name.split('.')[-1]}".lower())
        golden["columns"][key] = sorted(leaves)

with open(out, "w") as f:
    json.dump(golden, f, indent=1, sort_keys=True)
    f.write("\n")
print(f"{out}: {len(golden['columns'])} columns, {len(golden['errors'])} sqlglot errors")
