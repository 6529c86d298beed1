#!/usr/bin/env bash
# The project's one test command (README.md). Prepares what the tests need
# on a fresh machine, then runs the whole suite in the debug profile.
#
# Today the suite needs only the Rust toolchain: the dbt goldens it compares
# against are committed (regenerate them with scripts/make_dbt_goldens.sh).
set -euo pipefail
cd "$(dirname "$0")/.."

export CARGO_TERM_COLOR="${CARGO_TERM_COLOR:-never}"
export RUST_BACKTRACE="${RUST_BACKTRACE:-1}"

cargo test --locked --all-targets "$@"
