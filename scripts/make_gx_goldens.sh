#!/usr/bin/env bash
# Regenerates the Great Expectations parity goldens (tests/fixtures/gx/golden/)
# with real GX 1.x from PyPI, in a cached venv. CI compares against the
# committed goldens and never installs GX.
set -euo pipefail
cd "$(dirname "$0")/.."
venv="${HOME}/.cache/dp-test/gx"
if [ ! -x "$venv/bin/python" ] || ! "$venv/bin/python" -c 'import great_expectations, yaml' 2>/dev/null; then
    python3 -m venv "$venv"
    "$venv/bin/pip" install -q 'great_expectations>=1.0,<2' pyyaml
fi
TQDM_DISABLE=1 GX_ANALYTICS_ENABLED=false "$venv/bin/python" scripts/make_gx_goldens.py
