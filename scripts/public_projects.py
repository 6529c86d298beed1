#!/usr/bin/env python3
"""Public dbt projects, fetched from GitHub, built by real dbt and by dp.

    scripts/public_projects.py MIRROR_DIR [name ...]

MIRROR_DIR holds the projects' git mirrors as the workplace's `fetch` tool
lays them (<owner>+<repo>/repo); run `fetch github:<owner>/<repo>` for each
project below first. Nothing is committed from them: several have no licence.

For each project: a fresh copy built with dbt-core 1.11 + dbt-duckdb 1.11
(the venv of scripts/make_dbt_goldens.sh, DBT_VENV), then with dp
(DP, default target/debug/dp), the same commands in the same order (a
node's status is the last one a command gave it). It
prints, per project, the nodes passing under dbt and how many of them pass
under dp, and the tables (seeds, models, snapshots) whose rows are equal,
compared as tests/it/corpus.rs compares them; then every difference.
"""
import csv
import io
import json
import math
import os
import shutil
import subprocess
import sys
import tarfile

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
DBT_VENV = os.environ.get("DBT_VENV", "/work/venv-dbt")
DP = os.environ.get("DP", os.path.join(REPO, "target/debug/dp"))
OUT = os.environ.get("OUT", "/tmp/dp-public")
sys.path.insert(0, os.path.join(REPO, "scripts"))
from export_tables import render  # noqa: E402

# name: (mirror, folder in the repo, packages {name: (mirror, folder)}, commands)
PROJECTS = {
    "jaffle_shop": ("dbt-labs+jaffle_shop", "", {}, [["build"]]),
    "jaffle_shop_duckdb": ("dbt-labs+jaffle_shop_duckdb", "", {}, [["build"]]),
    "jaffle-shop": (
        "dbt-labs+jaffle-shop",
        "",
        {"dbt_utils": ("corpus", "dbt_utils"), "dbt_date": ("corpus", "dbt_date"), "audit_helper": ("corpus", "dbt_audit_helper")},
        [["seed", "--full-refresh", "--vars", '{"load_source_data": true}'], ["build"]],
    ),
    "dbt-date": ("godatadriven+dbt-date", "integration_tests", {"dbt_date": ("godatadriven+dbt-date", "")}, [["build"]]),
    # as its run_test.sh: the source tables first, then seed, run and test
    "dbt-codegen": (
        "dbt-labs+dbt-codegen",
        "integration_tests",
        {"codegen": ("dbt-labs+dbt-codegen", ""), "dbt_utils": ("corpus", "dbt_utils")},
        [["run-operation", "create_source_table"], ["seed", "--full-refresh"], ["run"], ["test"]],
    ),
    "dbt-profiler": ("data-mie+dbt-profiler", "integration_tests", {"dbt_profiler": ("data-mie+dbt-profiler", ""), "dbt_utils": ("corpus", "dbt_utils"), "dbt_expectations": ("corpus", "dbt_expectations"), "dbt_date": ("corpus", "dbt_date")}, [["build"]]),
}


def extract(mirror_dir, mirror, folder, dest):
    if mirror == "corpus":
        corpus = os.path.join(REPO, "..", "shared", "corpus")
        if not os.path.isdir(corpus):
            corpus = os.path.join(REPO, "..", "..", "shared", "corpus")
        shutil.copytree(os.path.join(corpus, folder), dest, ignore=shutil.ignore_patterns("integration_tests"))
        return
    git = os.path.join(mirror_dir, mirror, "repo")
    # jaffle-shop's two largest seeds are missing from fetched snapshots: its
    # jaffle-data comes from jafgen instead (see jaffle_data()).
    data = subprocess.run(["git", "--git-dir", git, "archive", "HEAD", "--", ".", ":!seeds/jaffle-data"], check=True, capture_output=True).stdout
    tmp = dest + ".all"
    with tarfile.open(fileobj=io.BytesIO(data)) as t:
        t.extractall(tmp, filter="data")
    shutil.move(os.path.join(tmp, folder) if folder else tmp, dest)
    shutil.rmtree(tmp, ignore_errors=True)


def jaffle_data():
    """A year of jaffle-shop data from PyPI jafgen 0.4.14 (JAFFLE_DATA to reuse one)."""
    d = os.environ.get("JAFFLE_DATA", os.path.expanduser("~/.cache/dp-public/jaffle-data"))
    if not os.path.isdir(d):
        venv = os.path.expanduser("~/.cache/dp-public/jafgen")
        if not os.path.exists(os.path.join(venv, "bin", "jafgen")):
            subprocess.run([sys.executable, "-m", "venv", venv], check=True)
            subprocess.run([os.path.join(venv, "bin", "pip"), "install", "--quiet", "jafgen==0.4.14"], check=True)
        parent = os.path.dirname(d)
        os.makedirs(parent, exist_ok=True)
        subprocess.run([os.path.join(venv, "bin", "jafgen"), "1"], cwd=parent, check=True)
    return d


def prepare(mirror_dir, name, dest):
    mirror, folder, packages, _ = PROJECTS[name]
    shutil.rmtree(dest, ignore_errors=True)
    extract(mirror_dir, mirror, folder, dest)
    if name == "jaffle-shop":
        shutil.copytree(jaffle_data(), os.path.join(dest, "seeds", "jaffle-data"))
    for pkg, (m, f) in packages.items():
        p = os.path.join(dest, "dbt_packages", pkg)
        shutil.rmtree(p, ignore_errors=True)
        extract(mirror_dir, m, f, p)
        shutil.rmtree(os.path.join(p, "integration_tests"), ignore_errors=True)
    import yaml

    with open(os.path.join(dest, "dbt_project.yml")) as f:
        profile = yaml.safe_load(f).get("profile") or "default"
    with open(os.path.join(dest, "profiles.yml"), "w") as f:
        f.write(f"{profile}:\n  target: duckdb\n  outputs:\n    duckdb:\n      type: duckdb\n      path: {dest}/dp.duckdb\n      threads: 2\n")


def statuses(dest):
    try:
        with open(os.path.join(dest, "target", "run_results.json")) as f:
            return {r["unique_id"]: r["status"] for r in json.load(f)["results"]}
    except (OSError, ValueError):
        return {}


def canon(c):
    try:
        x = float(c)
        if math.isfinite(x) and not c.startswith("+"):
            return "%.6e" % x
    except ValueError:
        pass
    if len(c) > 10 and c[10] in "T " and c[4] == "-" and c[7] == "-" and c[:4].isdigit():
        t = c[:-6] if c.endswith("+00:00") else c
        return t[:10] + " " + t[11:]
    if c.startswith("['") and c.endswith("']"):
        return "[" + c[2:-2].replace("', '", ", ") + "]"
    return c


def table(header, rows):
    return [h.lower() for h in header], sorted([canon(c) for c in r] for r in rows)


def main(argv):
    if len(argv) < 2:
        sys.exit(__doc__)
    mirror_dir, names = argv[1], argv[2:] or list(PROJECTS)
    import duckdb

    os.makedirs(OUT, exist_ok=True)
    env = dict(os.environ, DO_NOT_TRACK="1", DBT_SEND_ANONYMOUS_USAGE_STATS="false", DBT_USE_COLORS="false", NO_COLOR="1")
    report = []
    for name in names:
        ref, mine = os.path.join(OUT, name + ".dbt"), os.path.join(OUT, name + ".dp")
        for f in (ref + ".log", mine + ".log"):
            if os.path.exists(f):
                os.remove(f)
        prepare(mirror_dir, name, ref)
        prepare(mirror_dir, name, mine)
        # a node's status is its last one over the commands (seed, then run, then test)
        s_ref, s_dp = {}, {}
        for cmd in PROJECTS[name][3]:
            for d in (ref, mine):
                if os.path.exists(os.path.join(d, "target", "run_results.json")):
                    os.remove(os.path.join(d, "target", "run_results.json"))
            with open(ref + ".log", "a") as log:
                subprocess.run([os.path.join(DBT_VENV, "bin", "dbt"), *cmd, "--profiles-dir", "."], cwd=ref, env=env, stdout=log, stderr=log)
            with open(mine + ".log", "a") as log:
                subprocess.run([DP, *cmd], cwd=mine, env=env, stdout=log, stderr=log)
            s_ref.update(statuses(ref))
            s_dp.update(statuses(mine))
        try:
            with open(os.path.join(ref, "target", "manifest.json")) as f:
                manifest = json.load(f)
        except OSError:
            report.append((name, 0, 0, 0, 0, 0, [f"dbt itself failed: see {ref}.log"]))
            continue
        ok = ("success", "pass", "no-op")
        passing = [u for u, s in s_ref.items() if s in ok]
        both = [u for u in passing if s_dp.get(u) in ok]
        differ = [f"status {u}: dbt {s_ref[u]}, dp {s_dp.get(u, 'missing')}" for u in sorted(passing) if u not in both]
        con = duckdb.connect(os.path.join(ref, "dp.duckdb"), read_only=True)
        equal = tables = 0
        os.chdir(ref)
        for uid, n in sorted(manifest["nodes"].items()):
            if n["resource_type"] not in ("model", "seed", "snapshot") or s_ref.get(uid) != "success":
                continue
            if n["config"].get("materialized") == "ephemeral":
                continue
            tables += 1
            try:
                cur = con.execute(f"select * from {n['relation_name']}")
            except duckdb.Error:
                tables -= 1
                continue
            want = table([d[0] for d in cur.description], [[render(v) for v in r] for r in cur.fetchall()])
            o = subprocess.run([DP, "sql", "--format", "csv", "-e", f'select * from "{n["schema"]}"."{n["alias"]}"'], cwd=mine, env=env, capture_output=True, text=True)
            if o.returncode:
                differ.append(f"rows {uid}: {(o.stderr.strip().splitlines() or [''])[0]}")
                continue
            rows = list(csv.reader(io.StringIO(o.stdout)))
            got = table(rows[0] if rows else [], rows[1:])
            if got == want:
                equal += 1
            elif got[0] != want[0]:
                differ.append(f"rows {uid}: columns {got[0]}, dbt {want[0]}")
            else:
                first = next(((a, b) for a, b in zip(got[1], want[1]) if a != b), None)
                differ.append(f"rows {uid}: {len(got[1])} rows, dbt {len(want[1])}; first difference {first}")
        con.close()
        os.chdir(REPO)
        report.append((name, len(s_ref), len(passing), len(both), tables, equal, differ))
    print(f"{'project':<20} {'nodes':>6} {'dbt passing':>12} {'dp passing':>11} {'tables':>7} {'equal rows':>11}")
    for name, nodes, passing, both, tables, equal, _ in report:
        print(f"{name:<20} {nodes:>6} {passing:>12} {both:>11} {tables:>7} {equal:>11}")
    for name, *_, differ in report:
        for d in differ:
            print(f"{name}: {d}")


if __name__ == "__main__":
    main(sys.argv)
