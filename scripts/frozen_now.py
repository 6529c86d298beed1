#!/usr/bin/env python3
"""Runs dbt (argv = dbt's arguments) with its invocation time pinned to
$FROZEN_NOW (ISO, UTC), so microbatch models plan the same batches on every
run. dbt has no flag for this: MicrobatchModelRunner asks
dbt_common.invocation.get_invocation_started_at(), imported into
dbt.task.run, for "now". Used by scripts/make_dbt_goldens.sh microbatch."""
import datetime
import os
import sys

import dbt.task.run as run

now = datetime.datetime.fromisoformat(os.environ["FROZEN_NOW"])
run.get_invocation_started_at = lambda: now

from dbt.cli.main import cli  # noqa: E402

sys.argv = ["dbt"] + sys.argv[1:]
sys.exit(cli())
