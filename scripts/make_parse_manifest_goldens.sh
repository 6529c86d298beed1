#!/usr/bin/env bash
# Goldens of dbt's parse manifest (`dbt parse`'s target/manifest.json) for
# the corpus's integration projects (../shared/corpus): each is copied with
# its packages laid out (scripts/corpus_lib.sh), parsed by the REAL dbt
# (dbt-core 1.11 + dbt-duckdb 1.11, `dbt parse --no-partial-parse`), and
# every node, source, macro (but dbt's own, in packages `dbt` and
# `dbt_duckdb`: dp's manifest does not list them), metric, semantic model
# and disabled node is written to tests/fixtures/parse_manifest/<project>.json as
# {"nodes"|"sources"|"macros"|"metrics"|"semantic_models": {unique_id: {key:
# sha256[:12] of the value as compact JSON}}, "disabled": {unique_id: [{key:
# hash}, ...]}}, the keys in dbt's order; the keys
# tests/it/parse_manifest.rs leaves out (`database`, `relation_name`,
# `created_at`, `root_path`: dbt-duckdb's and the run's; a semantic model's
# `node_relation`, which holds dbt-duckdb's `database` and `relation_name`)
# map to null.
# Hashes keep the goldens small; the full manifests stay in
# $OUT/<project>/target/manifest.json for a look at what differs.
#
#   scripts/make_parse_manifest_goldens.sh [project ...]   (default: all four)
#
# Env: DBT_VENV (default /work/venv-dbt), CORPUS (default ../shared/corpus),
#      OUT scratch folder (default /tmp/dp-parse-manifest-goldens).
set -euo pipefail

REPO="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
. "$REPO/scripts/corpus_lib.sh"
corpus_find "$REPO"
OUT="${OUT:-/tmp/dp-parse-manifest-goldens}"
dbt_venv

projects=("$@")
[ ${#projects[@]} -eq 0 ] && projects=(dbt_utils dbt_project_evaluator dbt_expectations dbt_audit_helper)
mkdir -p "$REPO/tests/fixtures/parse_manifest"
for p in "${projects[@]}"; do
    dir="$OUT/$p"
    corpus_dbt_parse "$p" "$dir" "$OUT/$p.log"
    "$DBT_VENV/bin/python" - "$dir/target/manifest.json" "$REPO/tests/fixtures/parse_manifest/$p.json" <<'PY'
import hashlib, json, sys
SKIPPED = {"database", "relation_name", "created_at", "root_path", "node_relation"}
m = json.load(open(sys.argv[1]))
def digest(v):
    # the text serde_json writes: compact, non-ASCII as is
    text = json.dumps(v, separators=(",", ":"), ensure_ascii=False)
    return hashlib.sha256(text.encode("utf-8")).hexdigest()[:12]
internal = {"dbt", "dbt_duckdb"}
hashed = lambda n: {k: None if k in SKIPPED else digest(v) for k, v in n.items()}
sections = {s: {u: hashed(n) for u, n in sorted(m[s].items()) if n["package_name"] not in internal} for s in ("nodes", "sources", "macros", "metrics", "semantic_models")}
# disabled: {unique_id: [node, ...]}, one entry per disabled version of it
sections["disabled"] = {u: [hashed(n) for n in ns] for u, ns in sorted(m["disabled"].items())}
with open(sys.argv[2], "w") as f:
    f.write("{")
    for i, (s, items) in enumerate(sections.items()):
        f.write(f'{"," if i else ""}\n"{s}": {{\n')
        f.write(",\n".join(f"{json.dumps(u)}: {json.dumps(n, separators=(',', ':'))}" for u, n in items.items()))
        f.write("\n}")
    f.write("\n}\n")
print(sys.argv[2], *(f"{len(v)} {k}" for k, v in sections.items()))
PY
done
