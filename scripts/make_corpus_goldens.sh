#!/usr/bin/env bash
# Row goldens for the dbt compatibility corpus (../shared/corpus): builds each
# integration project with the REAL dbt (dbt-core 1.11 + dbt-duckdb 1.11),
# twice, and exports every table both builds made identically to
# tests/fixtures/corpus_rows/<project>/<unique_id>.csv (header, then rows
# sorted; values rendered as scripts/export_tables.py documents). Tables whose
# rows differ between the two builds (rand(), the current time) are listed in
# tests/fixtures/corpus_rows/<project>/_by_chance.txt instead. The second build
# runs three days ahead under libfaketime (Debian's `faketime`), so a table
# over current_date or now() differs between the builds and is never pinned
# to the day the goldens were made. The DuckDB file
# is named dp.duckdb so that relation names carry the database dp uses, "dp".
#
#   scripts/make_corpus_goldens.sh [project ...]    (default: all four)
#
# Env: DBT_VENV (default /work/venv-dbt), CORPUS (default ../shared/corpus),
#      OUT scratch folder (default /tmp/dp-corpus-goldens).
set -euo pipefail

REPO="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
. "$REPO/scripts/corpus_lib.sh"
corpus_find "$REPO"
OUT="${OUT:-/tmp/dp-corpus-goldens}"
dbt_venv
FAKETIME_LIB=/usr/lib/x86_64-linux-gnu/faketime/libfaketime.so.1
[ -f "$FAKETIME_LIB" ] || { echo "needs libfaketime: apt-get install faketime" >&2; exit 1; }

projects=("$@")
[ ${#projects[@]} -eq 0 ] && projects=(dbt_utils dbt_project_evaluator dbt_expectations dbt_audit_helper)

for p in "${projects[@]}"; do
  for round in 1 2; do
    dir="$OUT/$p.$round"
    corpus_copy "$p" "$dir"
    corpus_profile "$dir" 2
    clock=()
    [ "$round" = 2 ] && clock=(env FAKETIME=+3d LD_PRELOAD="$FAKETIME_LIB")
    (cd "$dir" && "${clock[@]}" "$DBT_VENV/bin/dbt" build --threads 2 --profiles-dir . >"$OUT/$p.$round.log" 2>&1) || true
    # views are evaluated at export: under the same clock as their build
    "${clock[@]}" "$DBT_VENV/bin/python" "$REPO/scripts/export_tables.py" corpus-dump "$dir" "$OUT/$p.$round.json"
  done
  "$DBT_VENV/bin/python" "$REPO/scripts/export_tables.py" corpus-tables \
    "$OUT/$p.1.json" "$OUT/$p.2.json" "$REPO/tests/fixtures/corpus_rows/$p"
done
