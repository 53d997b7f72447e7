"""Diagnostic: how close each unscented.py variant's composite-level row (A[t, u] = sum over the query composite's
slots of the estimated softmax mass on key composite u) is to the oracle's (code 11: the exact mean over the
composite's rows of softmax over the same key slots): total variation |A - A_or|_1 / 2 per query composite,
mean / p90 / p99 over composites and heads, and the share of composites whose top key composite differs.
    python3 diag_tv.py N generator seed"""
import importlib.util
import sys

import numpy as np

N, G, S = int(sys.argv[1]), sys.argv[2], int(sys.argv[3])
sys.argv = ["x", "--", "--help"]
sys.path.insert(0, "python")
from unisparse.reference import outlier  # noqa: E402
from unisparse.fidelity.harness import GENERATORS  # noqa: E402

spec = importlib.util.spec_from_file_location("u", "bench/logs/2026-12-04-cpu-s12-unscented/unscented.py")
u = importlib.util.module_from_spec(spec)
try:
    spec.loader.exec_module(u)
except SystemExit:
    pass
q, k, v, nd = GENERATORS[G](1, 8, 2, N, 128, S, 2.5, 16)
rows = []
u.block_sums = lambda A, *a: (rows.append(A.copy()), np.zeros(A.shape[:2] + (a[0], a[2])))[1]
res = {}
for m in u.NAMES:
    if m == "or_all":
        continue
    rows.clear()
    u.MODE = m
    outlier.estimate(q, k, 128, 16, 32, query_reduce="max")
    res[m] = np.concatenate(rows, 2)  # [B, H, Tq, Tk]
ref = res["or_rest"]
valid = np.isfinite(ref).all(-1)
for m, A in res.items():
    tv = 0.5 * np.abs(np.nan_to_num(A) - np.nan_to_num(ref)).sum(-1)[valid]
    flip = (np.nanargmax(np.nan_to_num(A, nan=-1), -1) != np.nanargmax(np.nan_to_num(ref, nan=-1), -1))[valid]
    print(f"{G} s{S} N{N} {m:8s} TV mean {tv.mean():.3f} p90 {np.percentile(tv, 90):.3f} p99 {np.percentile(tv, 99):.3f}  top-composite differs {flip.mean():.3f}")
