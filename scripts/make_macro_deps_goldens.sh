#!/usr/bin/env bash
# Goldens of dbt's macro dependencies (`depends_on.macros` in manifest.json)
# for the corpus's integration projects (../shared/corpus): each is copied
# with its packages laid out (scripts/corpus_lib.sh), parsed by the REAL dbt
# (dbt-core 1.11 + dbt-duckdb 1.11, `dbt parse --no-partial-parse`), and the
# lists of every node and of every macro outside dbt's own packages (`dbt`,
# `dbt_duckdb`) are written to tests/fixtures/macro_deps/<project>.json as
# {"nodes": {unique_id: [macro ids]}, "macros": {unique_id: [macro ids]}}.
# The jaffle and advanced fixtures need none: their committed manifest.json
# goldens (scripts/make_dbt_goldens.sh, `dbt compile`) already hold them.
# It also writes src/compile/dbt_macros.txt, the names of dbt's own macros
# (packages `dbt` and `dbt_duckdb`, "package name" per line), by which dp
# resolves calls such as `is_incremental()` or `dbt.dateadd(...)`.
#
#   scripts/make_macro_deps_goldens.sh [project ...]   (default: all four)
#
# Env: DBT_VENV (default /work/venv-dbt), CORPUS (default ../shared/corpus),
#      OUT scratch folder (default /tmp/dp-macro-deps-goldens).
set -euo pipefail

REPO="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
. "$REPO/scripts/corpus_lib.sh"
corpus_find "$REPO"
OUT="${OUT:-/tmp/dp-macro-deps-goldens}"
dbt_venv

projects=("$@")
[ ${#projects[@]} -eq 0 ] && projects=(dbt_utils dbt_project_evaluator dbt_expectations dbt_audit_helper)
mkdir -p "$REPO/tests/fixtures/macro_deps"
for p in "${projects[@]}"; do
    dir="$OUT/$p"
    corpus_dbt_parse "$p" "$dir" "$OUT/$p.log"
    "$DBT_VENV/bin/python" - "$dir/target/manifest.json" "$REPO/tests/fixtures/macro_deps/$p.json" "$REPO/src/compile/dbt_macros.txt" <<'PY'
import json, sys
m = json.load(open(sys.argv[1]))
internal = {"dbt", "dbt_duckdb"}
out = {
    "nodes": {k: n["depends_on"]["macros"] for k, n in sorted(m["nodes"].items())},
    "macros": {k: n["depends_on"]["macros"] for k, n in sorted(m["macros"].items()) if n["package_name"] not in internal},
}
with open(sys.argv[2], "w") as f:
    json.dump(out, f, indent=1, sort_keys=False)
    f.write("\n")
print(sys.argv[2], len(out["nodes"]), "nodes", len(out["macros"]), "macros")
names = sorted((v["package_name"], v["name"]) for v in m["macros"].values() if v["package_name"] in internal)
with open(sys.argv[3], "w") as f:
    f.writelines(f"{p} {n}\n" for p, n in names)
PY
done
