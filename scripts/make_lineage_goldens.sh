#!/usr/bin/env bash
# Regenerate the sqlglot cross-check goldens of column lineage
# (tests/fixtures/lineage/sqlglot_<project>.json) with pip's sqlglot, in a
# cached venv. CI compares dp against the committed goldens and never
# installs sqlglot.
#
# Usage:  scripts/make_lineage_goldens.sh
# Env:    DP_BIN  the dp binary (default: target/debug/dp, built if missing)
set -euo pipefail

REPO="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
VENV="${HOME}/.cache/dp-test/sqlglot"
if [ ! -x "$VENV/bin/python" ] || ! "$VENV/bin/python" -c 'import sqlglot' 2>/dev/null; then
    python3 -m venv "$VENV"
    "$VENV/bin/pip" install --quiet 'sqlglot~=27.0'
fi
DP="${DP_BIN:-$REPO/target/debug/dp}"
[ -x "$DP" ] || (cd "$REPO" && cargo build --bin dp)

WORK="$(mktemp -d)"
trap 'rm -rf "$WORK"' EXIT

# jaffle: seeds only, so lineage needs no data.
cp -r "$REPO/tests/fixtures/projects/jaffle" "$WORK/jaffle"
rm -rf "$WORK/jaffle/golden" "$WORK/jaffle/target"
(cd "$WORK/jaffle" && "$DP" compile -q >/dev/null && "$DP" lineage -q)
"$VENV/bin/python" "$REPO/scripts/make_lineage_goldens.py" "$WORK/jaffle" "$REPO/tests/fixtures/lineage/sqlglot_jaffle.json"

# the demo: its bronze files give the sources' schemas.
mkdir -p "$WORK/demo"
cp -r "$REPO/models" "$REPO/seeds" "$REPO/macros" "$REPO/warehouse.toml" "$WORK/demo/"
(cd "$WORK/demo" && "$DP" demo generate --scale 0.01 -q && "$DP" ingest -s source:raw.transactions -q && "$DP" compile -q >/dev/null && "$DP" lineage -q)
"$VENV/bin/python" "$REPO/scripts/make_lineage_goldens.py" "$WORK/demo" "$REPO/tests/fixtures/lineage/sqlglot_demo.json"
