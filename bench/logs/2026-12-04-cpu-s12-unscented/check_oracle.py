"""Check: code 18 (or_qk, rows and keys exact) equals the dense truth (mean over a query composite's rows of the
softmax mass per key block, max over the block's composites) and codes 0 / 11 / 17 / 19 / 20 run (1K tokens, peaked,
seed 0). Prints the max |difference| from the reference first pass (base: 0 up to rounding)."""

import sys  # noqa: E402

sys.argv = ["x", "--", "--help"]
sys.path.insert(0, "python")
import importlib.util  # noqa: E402

import numpy as np  # noqa: E402

from unisparse.peaked import peaked_qkv  # noqa: E402
from unisparse.reference import outlier  # noqa: E402

q, k, v, nd = peaked_qkv(1, 4, 2, 1024, 128, 0, peak=2.5)
ref = outlier.estimate(q, k, 128, 16, 32, query_reduce="max")
spec = importlib.util.spec_from_file_location("u", "bench/logs/2026-12-04-cpu-s12-unscented/unscented.py")
u = importlib.util.module_from_spec(spec)
try:
    spec.loader.exec_module(u)
except SystemExit:
    pass
for m in ["base", "or_rest", "or_k", "or_qk"]:
    u.MODE = m
    s = outlier.estimate(q, k, 128, 16, 32, query_reduce="max")
    print(
        m,
        np.nanmax(np.abs(s - ref)),
        np.isnan(s).sum(),
        np.nansum(s, -1)[0, 0, :4],
        u.KR.sum(-1).min(),
        u.KR.sum(-1).max(),
    )
# or_qk against the dense truth: the max over query composites of the block mass
import math  # noqa: E402

qq, kk = q.astype(np.float64), np.repeat(k.astype(np.float64), 2, 1)
L = np.einsum("bhnd,bhmd->bhnm", qq, kk) / math.sqrt(128)
N = 1024
L = np.where(np.tril(np.ones((N, N), bool)), L, -np.inf)
P = np.exp(L - L.max(-1, keepdims=True))
P /= P.sum(-1, keepdims=True)
M = P.reshape(1, 4, 64, 16, 8, 128).sum(-1).mean(3)  # [b,h,Tq,NBk]
T = M.reshape(1, 4, 8, 8, 8).max(3)
u.MODE = "or_qk"
s = outlier.estimate(q, k, 128, 16, 32, query_reduce="max")
print("or_qk vs dense", np.nanmax(np.abs(s - T)))
for m in ["kut", "kut_pc", "kvmax"]:
    u.MODE = m
    s = outlier.estimate(q, k, 128, 16, 32, query_reduce="max")
    print(m, np.nanmax(np.abs(s - ref)), np.isnan(s).sum(), np.nanmax(np.abs(s - T)), u.KRES.mean(), u.KA.std())
