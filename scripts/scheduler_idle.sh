#!/usr/bin/env bash
# What `dp scheduler` costs while idle: CPU time and resident memory of the
# scheduler process over a quiet window, with N pipelines defined (README,
# "Pipelines"). Each pipeline has a daily schedule 12 hours from now (so
# nothing fires during the window) and one shell task.
#
#   scripts/scheduler_idle.sh [N=1000] [WINDOW_SECONDS=30]
#
# DP_BIN picks the binary (default target/debug/dp; build it first).
set -euo pipefail
n="${1:-1000}"
window="${2:-30}"
root="$(cd "$(dirname "$0")/.." && pwd)"
dp="${DP_BIN:-$root/target/debug/dp}"
dir="$(mktemp -d)"
trap 'rm -rf "$dir"' EXIT
printf 'default_target = "dev"\n[project]\nname = "idle"\n[targets.dev]\nwarehouse = "./warehouse"\nschema = "main"\n' >"$dir/warehouse.toml"
mkdir -p "$dir/pipelines"
hour=$(( ($(date -u +%-H) + 12) % 24 ))
{
    echo "pipelines:"
    for i in $(seq 1 "$n"); do
        printf '  - name: p%04d\n    schedule: "%d %d * * *"\n    tasks:\n      - name: t\n        shell: echo %d\n' "$i" $((i % 60)) "$hour" "$i"
    done
} >"$dir/pipelines/many.yml"

start=$(date +%s.%N)
"$dp" --project-dir "$dir" pipeline list >/dev/null
list_s=$(awk -v a="$start" -v b="$(date +%s.%N)" 'BEGIN { printf "%.2f", b - a }')

start=$(date +%s.%N)
"$dp" --project-dir "$dir" scheduler 2>"$dir/scheduler.log" &
pid=$!
for _ in $(seq 1 600); do
    grep -q "scheduler started" "$dir/scheduler.log" 2>/dev/null && break
    sleep 0.1
done
grep -q "scheduler started" "$dir/scheduler.log" || { cat "$dir/scheduler.log" >&2; kill "$pid"; exit 1; }
ready_s=$(awk -v a="$start" -v b="$(date +%s.%N)" 'BEGIN { printf "%.2f", b - a }')
sleep 2
ticks() { awk '{print $14 + $15}' "/proc/$pid/stat"; }
rss_kb() { awk '/^VmRSS/ {print $2}' "/proc/$pid/status"; }
t0=$(ticks)
sleep "$window"
t1=$(ticks)
rss=$(rss_kb)
hz=$(getconf CLK_TCK)
kill -TERM "$pid"
wait "$pid" || true
echo "pipelines: $n ($dp)"
echo "dp pipeline list: ${list_s}s; scheduler ready after ${ready_s}s"
echo "idle CPU over ${window}s: $((t1 - t0)) ticks of 1/${hz}s ($(awk -v t=$((t1 - t0)) -v hz="$hz" -v w="$window" 'BEGIN { printf "%.3f", 100 * t / hz / w }')% of one core)"
echo "resident memory: $((rss / 1024)) MB"
