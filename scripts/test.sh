#!/usr/bin/env bash
# The project's one test command (README.md). Prepares what the tests need
# on a fresh machine, then runs the whole suite in the debug profile.
#
# The dbt goldens the suite compares against are committed (regenerate them
# with scripts/make_dbt_goldens.sh); the shell's REPL test drives `dp sql`
# through tmux, installed here when missing.
#
# Gates first: `cargo fmt --check` and `cargo clippy --all-targets -D
# warnings`. Tests that need a server (PostgreSQL, S3, Superset, tmux) are
# `#[ignore]`d so a plain `cargo test` never reports them as passing
# without running them; this script starts the servers and runs them with
# `--include-ignored`.
set -euo pipefail
cd "$(dirname "$0")/.."

echo "gates: cargo fmt --check, cargo clippy --all-targets -D warnings" >&2
cargo fmt --check
cargo clippy --locked --all-targets --quiet -- -D warnings

if ! command -v tmux >/dev/null 2>&1; then
    echo "installing tmux (for the dp sql REPL test)" >&2
    if [ "$(id -u)" = 0 ]; then SUDO=""; else SUDO="sudo"; fi
    $SUDO apt-get update -qq && $SUDO apt-get install -y -qq tmux >/dev/null
fi

# Servers the tests talk to, started for real on loopback; each script
# exports the variables its tests read and registers its own cleanup.
CLEANUPS=()
cleanup() { for c in "${CLEANUPS[@]}"; do eval "$c" || true; done; }
trap cleanup EXIT
. scripts/services/postgres.sh
. scripts/services/s3.sh
. scripts/services/chromium.sh
. scripts/services/smtp.sh
. scripts/services/superset.sh

export CARGO_TERM_COLOR="${CARGO_TERM_COLOR:-never}"
export RUST_BACKTRACE="${RUST_BACKTRACE:-1}"

log="$(mktemp)"
CLEANUPS+=("rm -f '$log'")
set +e
cargo test --locked --all-targets "$@" -- --include-ignored 2>&1 | tee "$log"
status=${PIPESTATUS[0]}
set -e
# One closing line for the whole suite (unit + integration tests).
awk '/^test result:/ { for (i = 1; i <= NF; i++) { if ($(i+1) ~ /^passed;?$/) p += $i; if ($(i+1) ~ /^failed;?$/) f += $i } }
     END { printf "%d passed, %d failed\n", p, f }' "$log"
exit "$status"
