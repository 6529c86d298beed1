#!/usr/bin/env bash
# Builds each integration project of the dbt compatibility corpus with dp and
# compares node statuses with dbt-duckdb's reference run.
#
#   scripts/corpus.sh [project ...]      (default: all four)
#
# Environment:
#   CORPUS   the corpus folder             (default: ../shared/corpus from the repo root)
#   DP       the dp binary                 (default: target/debug/dp)
#   OUT      scratch folder for the copies (default: /tmp/dp-corpus)
#   PRESEED  0 (default): `dp build` alone, as the reference run did.
#            1: `dp seed` first (to tell a seed-order problem from another).
#
# For each project it copies `<folder>/integration_tests` to $OUT/<folder>, lays
# the packages under dbt_packages/ as the corpus README says, runs `dp build`,
# and writes $OUT/<folder>.statuses.json (unique_id -> dp status; nodes dp never
# reported are "missing") and $OUT/<folder>.log. It prints, per project: nodes,
# passing under dbt-duckdb, passing under dp (of those dbt-duckdb passes), and
# the most frequent first lines of dp's error messages.
set -uo pipefail

root="$(cd "$(dirname "$0")/.." && pwd)"
. "$root/scripts/corpus_lib.sh"
corpus_find "$root"
DP="${DP:-$root/target/debug/dp}"
OUT="${OUT:-/tmp/dp-corpus}"
PRESEED="${PRESEED:-0}"
case "$DP" in /*) ;; *) DP="$root/$DP" ;; esac

projects=("$@")
[ ${#projects[@]} -eq 0 ] && projects=(dbt_utils dbt_project_evaluator dbt_expectations dbt_audit_helper)

[ -x "$DP" ] || { echo "dp binary not found at $DP (build it: cargo build)" >&2; exit 2; }
mkdir -p "$OUT"

printf '%-24s %6s %12s %12s\n' project nodes dbt-duckdb dp
summary=""
for p in "${projects[@]}"; do
  dir="$OUT/$p"
  corpus_copy "$p" "$dir"
  if [ "$PRESEED" = 1 ]; then
    (cd "$dir" && timeout 1200 "$DP" seed --threads 2) >"$OUT/$p.seed.log" 2>&1
  fi
  rm -f "$dir/target/run_results.json"
  (cd "$dir" && timeout 1200 "$DP" build --threads 2) >"$OUT/$p.log" 2>&1
  rc=$?
  python3 - "$dir" "$CORPUS/expected/${p}_expected_status.json" "$OUT/$p.statuses.json" "$p" "$rc" <<'PY'
import json, sys, collections, os
d, exp_path, out_path, name, rc = sys.argv[1:6]
expected = json.load(open(exp_path))
got = {}
msgs = {}
rr = os.path.join(d, "target", "run_results.json")
if os.path.exists(rr):
    for r in json.load(open(rr))["results"]:
        got[r["unique_id"]] = r["status"]
        msgs[r["unique_id"]] = r.get("message") or ""
statuses = {uid: got.get(uid, "missing") for uid in expected}
json.dump(statuses, open(out_path, "w"), indent=1, sort_keys=True)
ok = {"success", "pass", "no-op"}
ref_pass = [u for u, s in expected.items() if s in ok]
dp_pass = [u for u in ref_pass if statuses[u] in ok or (statuses[u] == expected[u])]
print(f"{name:<24} {len(expected):>6} {len(ref_pass):>12} {len(dp_pass):>12}")
causes = collections.Counter()
for u in ref_pass:
    if statuses[u] in ok:
        continue
    m = (msgs.get(u) or statuses[u]).strip().splitlines()
    causes[(m[0] if m else statuses[u])[:150]] += 1
if not got:
    log = open(os.path.join(os.path.dirname(out_path), name + ".log"), errors="replace").read().strip().splitlines()
    print(f"    dp build stopped before running any node (exit {rc}); first errors:")
    errs = [l for l in log if l.startswith("error") or ": Compilation Error" in l or "Database Error" in l]
    for l in (errs or log[-3:])[:4]:
        print(f"      {l[:220]}")
for c, n in causes.most_common(8):
    print(f"    {n:>4}  {c}")
PY
done
