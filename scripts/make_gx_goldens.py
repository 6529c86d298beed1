"""Runs the ported suite tests/fixtures/gx/checkpoints/gx_port.yml with Great
Expectations 1.x itself (pandas datasource) over tests/fixtures/gx/seeds/gx_orders.csv
and writes tests/fixtures/gx/golden/results.json: per expectation, GX's
success, element_count, missing_count, unexpected_count and observed_value.
Run through scripts/make_gx_goldens.sh (it prepares the venv)."""

import json
import sys
from pathlib import Path

import great_expectations as gx
import pandas as pd
import yaml
from great_expectations.expectations.expectation_configuration import ExpectationConfiguration

root = Path(__file__).resolve().parent.parent / "tests" / "fixtures" / "gx"
spec = yaml.safe_load((root / "checkpoints" / "gx_port.yml").read_text())
df = pd.read_csv(root / "seeds" / "gx_orders.csv")

context = gx.get_context(mode="ephemeral")
asset = context.data_sources.add_pandas("pandas").add_dataframe_asset("gx_orders")
batch = asset.add_batch_definition_whole_dataframe("all").get_batch(batch_parameters={"dataframe": df})


def plain(v):
    if isinstance(v, float) and v != v:
        return None
    if hasattr(v, "item"):
        return v.item()
    if isinstance(v, (list, tuple)):
        return [plain(x) for x in v]
    return v


out = []
for validation in spec["validations"]:
    for item in validation["expectations"]:
        ((name, kwargs),) = item.items()
        cfg = ExpectationConfiguration(type=name, kwargs=dict(kwargs))
        res = batch.validate(cfg.to_domain_obj(), result_format="COMPLETE")
        r = res.result or {}
        out.append(
            {
                "type": name,
                "kwargs": kwargs,
                "success": bool(res.success),
                "element_count": plain(r.get("element_count")),
                "missing_count": plain(r.get("missing_count")),
                "unexpected_count": plain(r.get("unexpected_count")),
                "observed_value": plain(r.get("observed_value")),
                "exception": bool(res.exception_info and res.exception_info.get("raised_exception")),
            }
        )

golden = root / "golden" / "results.json"
golden.write_text(json.dumps({"great_expectations_version": gx.__version__, "results": out}, indent=2) + "\n")
print(f"wrote {golden} ({len(out)} expectations, GX {gx.__version__})", file=sys.stderr)
