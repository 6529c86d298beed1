#!/usr/bin/env bash
# Row goldens for the dbt compatibility corpus (../shared/corpus): builds each
# integration project with the REAL dbt (dbt-core 1.11 + dbt-duckdb 1.11),
# twice, and exports every table both builds made identically to
# tests/fixtures/corpus_rows/<project>/<unique_id>.csv (header, then rows
# sorted; values rendered as scripts/export_tables.py documents). Tables whose
# rows differ between the two builds (rand(), the current time) are listed in
# tests/fixtures/corpus_rows/<project>/_by_chance.txt instead. The DuckDB file
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

projects=("$@")
[ ${#projects[@]} -eq 0 ] && projects=(dbt_utils dbt_project_evaluator dbt_expectations dbt_audit_helper)

for p in "${projects[@]}"; do
  for round in 1 2; do
    dir="$OUT/$p.$round"
    corpus_copy "$p" "$dir"
    cat >"$dir/profiles.yml" <<EOF
integration_tests:
  target: duckdb
  outputs:
    duckdb:
      type: duckdb
      path: $dir/dp.duckdb
      threads: 2
EOF
    (cd "$dir" && "$DBT_VENV/bin/dbt" build --threads 2 --profiles-dir . >"$OUT/$p.$round.log" 2>&1) || true
  done
  "$DBT_VENV/bin/python" "$REPO/scripts/export_tables.py" corpus-tables \
    "$OUT/$p.1" "$OUT/$p.2" "$REPO/tests/fixtures/corpus_rows/$p"
done
