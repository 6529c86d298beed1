"""Great Expectations 1.x baseline of benches/checkpoints.rs: runs a sample of
checkpoints/bench_checkpoint.yml (the first K expectations, spread over its
relations) with GX's pandas datasource over the same bronze files, and prints
one JSON line: {gx_version, expectations, load_s, validate_s}.

    python benches/gx_baseline.py <project dir> <K>
"""
import glob
import json
import sys
import time
from pathlib import Path

import great_expectations as gx
import pandas as pd
import yaml
from great_expectations.expectations.expectation_configuration import ExpectationConfiguration

proj = Path(sys.argv[1])
k = int(sys.argv[2])
spec = yaml.safe_load((proj / "checkpoints" / "bench_checkpoint.yml").read_text())
files = {
    "customers": ("bronze/postgres/customers/*/customers.parquet", "parquet"),
    "products": ("bronze/postgres/products/*/products.parquet", "parquet"),
    "orders": ("bronze/postgres/orders/*/orders.parquet", "parquet"),
    "transactions": ("bronze/files/sales/*/transactions.parquet", "parquet"),
}
t0 = time.perf_counter()
frames = {}
for name, (pattern, fmt) in files.items():
    paths = sorted(glob.glob(str(proj / pattern)))
    read = pd.read_parquet if fmt == "parquet" else pd.read_csv
    frames[name] = pd.concat([read(p) for p in paths], ignore_index=True)
context = gx.get_context(mode="ephemeral")
ds = context.data_sources.add_pandas("pandas")
batches = {}
for name, df in frames.items():
    asset = ds.add_dataframe_asset(name)
    batches[name] = asset.add_batch_definition_whole_dataframe("all").get_batch(batch_parameters={"dataframe": df})
load_s = time.perf_counter() - t0

per = max(1, k // len(spec["validations"]))
t0 = time.perf_counter()
n = 0
for v in spec["validations"]:
    table = v["relation"].split(".")[-1]
    for item in v["expectations"][:per]:
        ((name, kwargs),) = item.items()
        kwargs = dict(kwargs)
        if "row_condition" in kwargs:
            kwargs["condition_parser"] = "pandas"
        cfg = ExpectationConfiguration(type=name, kwargs=kwargs)
        batches[table].validate(cfg.to_domain_obj())
        n += 1
validate_s = time.perf_counter() - t0
print(json.dumps({"gx_version": gx.__version__, "expectations": n, "load_s": load_s, "validate_s": validate_s}))
