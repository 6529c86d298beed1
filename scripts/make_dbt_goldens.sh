#!/usr/bin/env bash
# Regenerate the dbt-parity goldens under tests/fixtures/projects/*/golden
# and the manifest v12 JSON schema at tests/fixtures/schemas/manifest.v12.json,
# using the REAL dbt (dbt-core 1.11 + dbt-duckdb 1.11).
#
# Usage:  scripts/make_dbt_goldens.sh [jaffle|advanced|test_suite|snapshots|state|microbatch|predicates|dbt_state ...]
# Env:    DBT_VENV        venv holding dbt (created if missing)   default /work/venv-dbt
#         DP_DBT_WORKDIR  scratch dir (project copies + duckdb)   default /tmp/dp-dbt-goldens
#
# Idempotent: every run starts from a fresh copy of each project and a fresh
# duckdb file, and replaces the golden/ outputs (golden/ls/SELECTORS.txt is an input).
set -euo pipefail

REPO="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
DBT_VENV="${DBT_VENV:-/work/venv-dbt}"
export DP_DBT_WORKDIR="${DP_DBT_WORKDIR:-/tmp/dp-dbt-goldens}"
export DO_NOT_TRACK=1
export DBT_SEND_ANONYMOUS_USAGE_STATS=false
# the `advanced` project renders env_var('DP_TEST_ENV', 'fallback'): goldens use the fallback
unset DP_TEST_ENV
# keep dbt output free of colour codes
export DBT_USE_COLORS=false

FIXTURES="$REPO/tests/fixtures/projects"
SCHEMA="$REPO/tests/fixtures/schemas/manifest.v12.json"
HELPER="$REPO/scripts/export_tables.py"

# ---------------------------------------------------------------- venv
if [ ! -x "$DBT_VENV/bin/dbt" ] || ! "$DBT_VENV/bin/python" -c 'import jsonschema, duckdb' 2>/dev/null; then
    python3 -m venv "$DBT_VENV"
    "$DBT_VENV/bin/pip" install --quiet 'dbt-core~=1.11.0' 'dbt-duckdb~=1.11.0' duckdb jsonschema
fi
PY="$DBT_VENV/bin/python"
DBT="$DBT_VENV/bin/dbt"
"$DBT" --version

# ---------------------------------------------------------------- schema
"$PY" "$HELPER" schema "$SCHEMA"

# ---------------------------------------------------------------- helpers
mkdir -p "$DP_DBT_WORKDIR"

# fresh copy of a fixture project (without golden/) into the scratch dir
prepare() {
    local name="$1"
    W="$DP_DBT_WORKDIR/$name"
    G="$FIXTURES/$name/golden"
    rm -rf "$W" "$DP_DBT_WORKDIR/$name.duckdb" "$DP_DBT_WORKDIR/$name.duckdb.wal"
    mkdir -p "$W"
    (cd "$FIXTURES/$name" && tar --exclude=./golden -cf - .) | tar -xf - -C "$W"
    find "$G" -mindepth 1 -maxdepth 1 ! -name ls ! -name ls_json -exec rm -rf {} +
    find "$G/ls" "$G/ls_json" -name '[0-9]*.txt' -delete 2>/dev/null || true
    mkdir -p "$G/ls"
}

dbt_() { (cd "$W" && "$DBT" "$@" --profiles-dir .); }

# golden/<dir> <- target/compiled/<project>
copy_compiled() {
    local name="$1" dest="$2"
    rm -rf "$G/$dest"
    cp -r "$W/target/compiled/$name" "$G/$dest"
}

export_tables() { (cd "$W" && "$PY" "$HELPER" tables target/manifest.json "$DP_DBT_WORKDIR/$1.duckdb" "$G/$2"); }

# each_line FILE FN: FN NN LINE WORDS... for each non-empty line of FILE
# (NN = 01, 02, ...; WORDS: the line split as the shell splits it)
each_line() {
    local file="$1" fn="$2" n=0 line
    while IFS= read -r line || [ -n "$line" ]; do
        [ -z "$line" ] && continue
        n=$((n + 1))
        eval "set -- $line"
        "$fn" "$(printf '%02d' "$n")" "$line" "$@"
    done < "$file"
}

# golden/ls/NN.txt: the unique ids `dbt ls <line>` selects
ls_ids() {
    local out="$G/ls/$1.txt" line="$2"; shift 2
    dbt_ -q ls --resource-type all --output json --output-keys unique_id "$@" > "$W/ls.raw" || true
    "$PY" "$HELPER" ls "$W/ls.raw" "$out"
    echo "ls [$line] -> $(basename "$out") ($(wc -l < "$out") ids)"
}

# golden/ls_json/NN.txt: the raw stdout of `dbt ls --output json <line>`
ls_json() {
    local out="$G/ls_json/$1.txt" line="$2"; shift 2
    dbt_ -q ls --output json "$@" > "$out"
    echo "ls --output json [$line] -> $(basename "$out") ($(wc -l < "$out") lines)"
}

# per line of golden/ls/SELECTORS.txt and golden/ls_json/ARGS.txt (inputs)
run_ls() { each_line "$G/ls/SELECTORS.txt" ls_ids; }
run_ls_json() { each_line "$G/ls_json/ARGS.txt" ls_json; }

test_results() {
    dbt_ test "$@" || echo "NOTE: dbt test exited non-zero (failing tests are part of the golden)"
    "$PY" "$HELPER" test-results "$W/target/run_results.json" "$G/test_results.json"
}

# ---------------------------------------------------------------- jaffle
do_jaffle() {
    prepare jaffle
    dbt_ compile --no-partial-parse
    copy_compiled jaffle compiled
    cp "$W/target/manifest.json" "$G/manifest.json"
    "$PY" "$HELPER" validate "$SCHEMA" "$G/manifest.json"
    run_ls
    run_ls_json
    dbt_ seed
    dbt_ run
    export_tables jaffle tables
    test_results
}

# ---------------------------------------------------------------- advanced
do_advanced() {
    prepare advanced
    # compile against an empty database: is_incremental() is false
    dbt_ compile --no-partial-parse
    copy_compiled advanced compiled
    cp "$W/target/manifest.json" "$G/manifest.json"
    "$PY" "$HELPER" validate "$SCHEMA" "$G/manifest.json"
    run_ls
    # run 1: load up to 2024-01-15
    dbt_ run --vars '{cutoff: 2024-01-15}'
    export_tables advanced tables_run1
    # compile again now that fct_events exists: is_incremental() is true
    rm -rf "$W/target/compiled"
    dbt_ compile --vars '{cutoff: 2024-01-31}'
    copy_compiled advanced compiled_incremental
    # run 2: incremental up to 2024-01-31
    dbt_ run --vars '{cutoff: 2024-01-31}'
    export_tables advanced tables
    test_results --vars '{cutoff: 2024-01-31}'
    # full refresh must give the same tables as the incremental run
    dbt_ run --full-refresh --vars '{cutoff: 2024-01-31}'
    export_tables advanced tables_full_refresh
    diff -r "$G/tables" "$G/tables_full_refresh"
    echo "advanced: incremental == full refresh"
}

# ---------------------------------------------------------------- test_suite
# every data-test kind, passing and failing: `dbt test` after seed + run,
# and `dbt build` on a fresh database (skips behind error-severity failures)
do_test_suite() {
    prepare test_suite
    dbt_ parse --no-partial-parse
    run_ls
    dbt_ seed
    dbt_ run
    test_results
    rm -f "$DP_DBT_WORKDIR/test_suite.duckdb" "$DP_DBT_WORKDIR/test_suite.duckdb.wal"
    dbt_ build || echo "NOTE: dbt build exited non-zero (failing tests are part of the golden)"
    "$PY" "$HELPER" test-results "$W/target/run_results.json" "$G/build_results.json"
}

# ---------------------------------------------------------------- snapshots
# `dbt snapshot` three times, the sources (data/*.csv) replaced by
# steps/<n>/*.csv before each run: updates, hard deletes, an insert, a
# restore. The project's `snapshot_get_time` override reads the run's time
# from --vars, so the check strategy and hard deletes stamp rows with a known
# value. golden/step<n>/ holds every table after run n; step 3 is a
# `dbt build` (snapshots before the model that refs one).
do_snapshots() {
    prepare snapshots
    local step
    for step in 1 2 3; do
        cp "$FIXTURES/snapshots/steps/$step/"*.csv "$W/data/"
        local vars="{snapshot_time: '2030-01-0$step 00:00:00'}"
        if [ "$step" = 1 ]; then
            dbt_ run -s stg_customers --vars "$vars"
            dbt_ snapshot --vars "$vars"
        elif [ "$step" = 2 ]; then
            dbt_ snapshot --vars "$vars"
        else
            dbt_ build --vars "$vars"
        fi
        export_tables snapshots "step$step"
    done
}

# ---------------------------------------------------------------- state
# `state:` selection: the manifest of a parse is kept in state/, then
# changes/ is copied over the project (a body, a macro a model calls, a
# config, an alias set in dbt_project.yml, a new model) and each
# golden/ls/SELECTORS.txt line (all with --state state) is listed.
do_state() {
    prepare state
    dbt_ parse --no-partial-parse
    mkdir -p "$W/state"
    cp "$W/target/manifest.json" "$W/state/manifest.json"
    cp -r "$W/changes/." "$W/"
    run_ls
}

# ---------------------------------------------------------------- microbatch
# Two microbatch models built by days (one reads a ref'd view and a seed,
# one a source directly), with "now" frozen at 2024-01-05 12:00 UTC: dbt
# plans batches from its invocation time, which scripts/frozen_now.py pins
# (dbt has no flag for it). data/events.csv is replaced by steps/<n>/ before
# each step: 1 a first `dbt build` (batches from `begin`), 2 a `dbt run`
# after late-arriving rows (one inside the lookback window, one outside),
# 3 a backfill with --event-time-start/--event-time-end, 4 a backfill in
# which one batch of coded_events fails (a code that is not a number: a
# partial success), 5 `dbt retry` once the code is fixed (only that batch
# runs). golden/step<n>/ holds every table after step n and the run's
# batch_results.
do_microbatch() {
    prepare microbatch
    local step
    for step in 1 2 3 4 5; do
        cp "$FIXTURES/microbatch/steps/$step/events.csv" "$W/data/events.csv"
        local args=(run)
        [ "$step" = 1 ] && args=(build)
        [ "$step" = 3 ] && args=(run --event-time-start 2024-01-02 --event-time-end 2024-01-04)
        [ "$step" = 4 ] && args=(run --event-time-start 2024-01-03 --event-time-end 2024-01-06)
        [ "$step" = 5 ] && args=(retry)
        (cd "$W" && FROZEN_NOW=2024-01-05T12:00:00 "$PY" "$REPO/scripts/frozen_now.py" "${args[@]}" --profiles-dir .) ||
            echo "NOTE: dbt ${args[0]} exited non-zero (step 4's failed batch is part of the golden)"
        export_tables microbatch "step$step"
        "$PY" "$HELPER" batch-results "$W/target/run_results.json" "$G/step$step/batch_results.json"
    done
}

# ---------------------------------------------------------------- predicates
# Incremental models with incremental_predicates (merge, with a predicate on
# the table and one over both sides; delete+insert on one key and on two),
# and a microbatch model, run three times over a growing data/events.csv
# (steps/<n>/), with "now" frozen at 2024-01-09 12:00 UTC: each run loads
# the versions past the table's newest (the microbatch model rebuilds every
# day). golden/step<n>/ holds every table after step n.
do_predicates() {
    prepare predicates
    mkdir -p "$W/data"
    local step
    for step in 1 2 3; do
        cp "$FIXTURES/predicates/steps/$step/events.csv" "$W/data/events.csv"
        (cd "$W" && FROZEN_NOW=2024-01-09T12:00:00 "$PY" "$REPO/scripts/frozen_now.py" run --profiles-dir .)
        export_tables predicates "step$step"
    done
}

# ---------------------------------------------------------------- dbt_state
# `state:` selection against a manifest written by dbt itself: dbt parse's
# manifest.json is committed as golden/state/manifest.json (dp's --state),
# then changes/ is copied over the project (a body, a config, a macro a
# model calls, a contract's column type, a new model) and each
# golden/ls/SELECTORS.txt line is listed by dbt.
do_dbt_state() {
    prepare dbt_state
    dbt_ parse --no-partial-parse
    mkdir -p "$W/state" "$G/state"
    cp "$W/target/manifest.json" "$W/state/manifest.json"
    cp "$W/target/manifest.json" "$G/state/manifest.json"
    cp -r "$W/changes/." "$W/"
    run_ls
}

projects=("$@")
[ ${#projects[@]} -eq 0 ] && projects=(jaffle advanced test_suite snapshots state microbatch predicates dbt_state)
for p in "${projects[@]}"; do
    "do_$p"
done
echo "goldens written under $FIXTURES"
