"""Check: unscented.py's code 0 (base) reproduces the reference's outlier first pass; print every variant's scores'
distance from it (2K tokens, peaked generator, seed 0)."""

import sys

sys.argv = ["x", "--", "--help"]
sys.path.insert(0, "python")
import numpy as np  # noqa: E402

from unisparse.peaked import peaked_qkv  # noqa: E402
from unisparse.reference import outlier  # noqa: E402

orig_c, orig_b = outlier.compress_outlier, outlier.block_score
q, k, v, nd = peaked_qkv(1, 4, 2, 2048, 128, 0, peak=2.5)
ref = outlier.estimate(q, k, 128, 16, 32, query_reduce="max")
import importlib.util  # noqa: E402

spec = importlib.util.spec_from_file_location("u", "bench/logs/2026-12-04-cpu-s12-unscented/unscented.py")
u = importlib.util.module_from_spec(spec)
try:
    spec.loader.exec_module(u)
except SystemExit:
    pass
for m in u.NAMES:
    u.MODE = m
    s = outlier.estimate(q, k, 128, 16, 32, query_reduce="max")
    print(m, np.nanmax(np.abs(s - ref)), np.isnan(s).sum(), np.isnan(ref).sum())
