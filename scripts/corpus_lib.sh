# Shared by scripts/corpus.sh, scripts/make_corpus_goldens.sh,
# scripts/make_macro_deps_goldens.sh and scripts/make_parse_manifest_goldens.sh
# (sourced): where the dbt compatibility
# corpus is, which packages each integration project needs, how to lay out a
# fresh copy of one, and the dbt oracle's venv.

# The venv of the dbt oracle (DBT_VENV, default /work/venv-dbt): dbt-core and
# dbt-duckdb 1.11 with duckdb, installed when missing; exports dbt's
# no-tracking, no-colour settings.
dbt_venv() {
  DBT_VENV="${DBT_VENV:-/work/venv-dbt}"
  export DO_NOT_TRACK=1 DBT_SEND_ANONYMOUS_USAGE_STATS=false DBT_USE_COLORS=false
  if [ ! -x "$DBT_VENV/bin/dbt" ] || ! "$DBT_VENV/bin/python" -c 'import duckdb' 2>/dev/null; then
    python3 -m venv "$DBT_VENV"
    "$DBT_VENV/bin/pip" install --quiet 'dbt-core~=1.11.0' 'dbt-duckdb~=1.11.0' duckdb jsonschema
  fi
}

# Sets CORPUS (unless set): ../shared/corpus from the main checkout,
# ../../shared/corpus from a worktree; exits 2 when there is none.
corpus_find() {
  local root="$1" c
  if [ -z "${CORPUS:-}" ]; then
    for c in "$root/../shared/corpus" "$root/../../shared/corpus"; do
      [ -d "$c" ] && CORPUS="$(cd "$c" && pwd)" && break
    done
  fi
  [ -d "${CORPUS:-}" ] || { echo "corpus folder not found; set CORPUS" >&2; exit 2; }
}

# Packages each integration project needs: name=corpus path.
packages_for() {
  case "$1" in
    dbt_utils) echo "dbt_utils=dbt_utils" ;;
    dbt_project_evaluator) echo "dbt_project_evaluator=dbt_project_evaluator exclude_package=dbt_project_evaluator/integration_tests/exclude_package dbt_utils=dbt_utils" ;;
    dbt_expectations) echo "dbt_expectations=dbt_expectations dbt_date=dbt_date" ;;
    dbt_audit_helper) echo "audit_helper=dbt_audit_helper dbt_utils=dbt_utils" ;;
    *) echo "unknown project $1" >&2; return 1 ;;
  esac
}

# corpus_copy PROJECT DIR: a fresh, writable copy of PROJECT's integration
# project in DIR, its packages laid under dbt_packages/ as `dbt deps` would.
corpus_copy() {
  local p="$1" dir="$2" pair name
  rm -rf "$dir"
  mkdir -p "$dir"
  (cd "$CORPUS/$p/integration_tests" && tar -cf - .) | tar -xf - -C "$dir"
  chmod -R u+w "$dir"
  mkdir -p "$dir/dbt_packages"
  for pair in $(packages_for "$p"); do
    name="${pair%%=*}"
    rm -rf "${dir:?}/dbt_packages/$name"
    # A package is its folder without its own integration project (dbt deps
    # copies it whole; dbt ignores folders outside the package's paths).
    mkdir -p "$dir/dbt_packages/$name"
    (cd "$CORPUS/${pair#*=}" && tar --exclude=./integration_tests -cf - .) | tar -xf - -C "$dir/dbt_packages/$name"
  done
}

# corpus_dbt_parse PROJECT DIR LOG: a fresh copy of PROJECT in DIR (as
# corpus_copy) parsed by the real dbt (`dbt parse --no-partial-parse` with a
# DuckDB profile; call dbt_venv first) into DIR/target/manifest.json; dbt's
# output goes to LOG.
corpus_dbt_parse() {
  local p="$1" dir="$2" log="$3"
  corpus_copy "$p" "$dir"
  corpus_profile "$dir" 1
  (cd "$dir" && "$DBT_VENV/bin/dbt" parse --no-partial-parse --profiles-dir . >"$log" 2>&1)
}

# corpus_profile DIR THREADS: DIR/profiles.yml for dbt-duckdb, its database
# file DIR/dp.duckdb (so relation names carry the database dp uses, "dp").
corpus_profile() {
  cat >"$1/profiles.yml" <<PROFILE
integration_tests:
  target: duckdb
  outputs:
    duckdb:
      type: duckdb
      path: $1/dp.duckdb
      threads: $2
PROFILE
}
