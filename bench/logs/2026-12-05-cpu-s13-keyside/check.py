"""Check: code 9 (cbase, this file's block_score with no key change) equals the reference first pass, every code
runs without NaN; then, per code, how far the key rest slot's log-mass against the query composites' rest means is
from the exact log-sum-exp of its 30 keys (the per-pair error the fidelity runs average over), 2K tokens, 4 heads.

    cd /work/main && PYTHONPATH=python python3 bench/logs/2026-12-05-cpu-s13-keyside/check.py [generator] [N]
"""

import importlib.util
import math
import sys

import numpy as np

gen = sys.argv[1] if len(sys.argv) > 1 else "peaked"
N = int(sys.argv[2]) if len(sys.argv) > 2 else 2048
sys.argv = ["x", "--", "--help"]
sys.path.insert(0, "python")
from unisparse.fidelity.harness import GENERATORS  # noqa: E402
from unisparse.reference import outlier  # noqa: E402

q, k, v, nd = GENERATORS[gen](1, 4, 2, N, 128, 0, 2.5, 16)
ref = outlier.estimate(q, k, 128, 16, 32, query_reduce="max")
spec = importlib.util.spec_from_file_location("ks", "bench/logs/2026-12-05-cpu-s13-keyside/keyside.py")
ks = importlib.util.module_from_spec(spec)
spec.loader.exec_module(ks)
for m in [n for n in ks.NAMES if not n.startswith("or_k_")]:
    ks.MODE = m
    s = outlier.estimate(q, k, 128, 16, 32, query_reduce="max")
    print(f"{m:10s} max|s - ref| {np.nanmax(np.abs(s - ref)):.3e} nan {int(np.isnan(s).sum())}")
# per-pair error of the key rest slot's log-mass against q_bar (all visible pairs, all heads)
sc = 1 / math.sqrt(128)
qc = outlier.compress_outlier(q, 16, 1, spread=True)
qb = qc[:, :, :, 0]  # [1, 4, Tq, D]
print("per-pair log-mass error of the key rest slot vs exact LSE (q_bar of every query composite, visible pairs):")
print(f"{'mode':10s} {'mean':>8s} {'mean|e|':>8s} {'p90|e|':>8s} {'w-mean|e|':>9s}   (w: weight exp(LSE) / row)")
for m in ["base", "kr1_pc", "k2_pc", "k2_far", "k2_qpc", "kr1_qpc", "kr1_far", "k2_farq"]:
    ks.MODE = m
    kc = ks.compress_outlier(k, 32, 2, kv_group=2, hot=1, queries=q)
    kt = np.repeat(k.astype(np.float64), 2, 1).reshape(1, 4, -1, 32, 128)
    kr = ~(kt[:, :, :, :, None, :] == kc[:, :, :, None, 1:3, :]).all(-1).any(-1)
    z = np.einsum("bhtd,bhucd->bhtuc", qb, kt) * sc
    z = np.where(kr[:, :, None], z, -np.inf)
    mz = z.max(-1, keepdims=True)
    lse = np.log(np.exp(z - mz).sum(-1)) + mz[..., 0]  # [1, 4, Tq, Tk]
    xb = np.einsum("bhtd,bhud->bhtu", qb, kc[:, :, :, 0]) * sc + math.log(30)
    if m == "base":
        est = xb
    else:
        E = ks.EXT
        yu = np.einsum("bhtd,bhud->bhtu", qb, E["u"]) * sc
        if m.startswith("kr1"):
            est = xb + 0.5 * yu**2 * E["m2"][:, :, None]
        else:
            a, b, w = (E[n][:, :, None] for n in "abw")
            est = xb + np.logaddexp(np.log(w) + a * yu, np.log(1 - w) + b * yu)
    Tq, Tk = qb.shape[2], kc.shape[2]
    vis = np.arange(Tk)[None, :] * 32 <= (np.arange(Tq)[:, None] + 1) * 16 - 1
    e = (est - lse)[..., vis]
    # weight: the rest slot's share of the row's exact mass (pairs that matter)
    wgt = np.exp(np.where(vis, lse, -np.inf) - np.max(np.where(vis, lse, -np.inf), -1, keepdims=True))[..., vis]
    print(
        f"{m:10s} {e.mean():8.3f} {np.abs(e).mean():8.3f} {np.quantile(np.abs(e), 0.9):8.3f}"
        f" {(np.abs(e) * wgt).sum() / wgt.sum():9.3f}"
    )
