"""Where the key composites' log-mass error lives (peaked generator, seed S, N): for every visible (query
composite rest mean q_bar, key composite) pair of every head, e = the exact log-sum-exp over the composite's 32
keys - the estimate's (log-sum-exp over its slots); weighted by the share of the row's exact mass that the
reference's rest holds. Categorises the pairs by what the key
composite's rest holds (planted components): needle keys, keys of the query's topic, local window (near diagonal),
slash offset. Prints the share of the weighted error per category, for base and a few codes.

    cd /work/main && PYTHONPATH=python python3 bench/logs/2026-12-05-cpu-s13-keyside/diag.py [seed] [N] [codes,...]
"""

import importlib.util
import math
import sys

import numpy as np

seed = int(sys.argv[1]) if len(sys.argv) > 1 else 2
N = int(sys.argv[2]) if len(sys.argv) > 2 else 8192
MODES_ARG = sys.argv[3] if len(sys.argv) > 3 else None
sys.argv = ["x", "--", "--help"]
sys.path.insert(0, "python")
from unisparse.peaked import peaked_qkv  # noqa: E402
from unisparse.reference import outlier  # noqa: E402

H, Hk = 8, 2
pl = {}
q, k, v, nd = peaked_qkv(1, H, Hk, N, 128, seed, peak=2.5, planted=pl)
spec = importlib.util.spec_from_file_location("ks", "bench/logs/2026-12-05-cpu-s13-keyside/keyside.py")
ks = importlib.util.module_from_spec(spec)
spec.loader.exec_module(ks)
sc = 1 / math.sqrt(128)
qc = outlier.compress_outlier(q, 16, 1, spread=True)
qb = qc[0, :, :, 0]  # [H, Tq, D]
Tq, Tk = N // 16, N // 32
vis = np.arange(Tk)[None, :] * 32 <= (np.arange(Tq)[:, None] + 1) * 16 - 1
kt = np.repeat(k.astype(np.float64), H // Hk, 1).reshape(1, H, Tk, 32, 128)[0]
needle_key = np.zeros(N, bool)
for n in nd:
    needle_key[n["k_start"] : n["k_stop"]] = True
MODES = MODES_ARG.split(",") if MODES_ARG else ["base", "k2_pc", "k2_far", "k2_qpc", "kclu0", "kclu0h", "kclu0_qpc"]
ks.MODE = "base"
kc = ks.compress_outlier(k, 32, 2, kv_group=H // Hk, hot=1, queries=q)[0]
rk = ~(kt[:, :, :, None, :] == kc[:, :, None, 1:3, :]).all(-1).any(-1)  # [H, Tk, 32]: the reference's rest
zall = np.einsum("htd,hucd->htuc", qb, kt) * sc
lse = np.log(np.exp(zall - zall.max(-1, keepdims=True)).sum(-1)) + zall.max(-1)  # the composite's exact log-mass
zv = np.where(vis[None, :, :, None], zall, -np.inf)
M = zv.max((-2, -1), keepdims=True)
zr = np.where(rk[:, None], zv, -np.inf)
with np.errstate(divide="ignore"):
    lse_r = np.log(np.exp(zr - M).sum(-1)) + M[..., 0]
share = np.exp(lse_r - M[..., 0]) / np.exp(zv - M).sum((-2, -1))[..., None]  # the rest's exact share of the row
res = {}
for m in MODES:
    ks.MODE = m
    kv = ks.compress_outlier(k, 32, 2, kv_group=H // Hk, hot=1, queries=q)[0]
    E = ks.EXT
    y = np.einsum("htd,husd->htus", qb, kv) * sc + E["lw"][0][:, None]
    d = ks._direction(m)
    if d is not None:
        yu = np.einsum("htd,hud->htu", qb, E["u"][0]) * sc
        if m.startswith("kr1"):
            y[..., 0] += 0.5 * yu**2 * E["m2"][0][:, None]
        else:
            a, b, w = (E[n][0][:, None] for n in "abw")
            y = np.concatenate([y, (y[..., 0] + b * yu + np.log(1 - w))[..., None]], -1)
            y[..., 0] += a * yu + np.log(w)
    est = np.log(np.exp(y - y.max(-1, keepdims=True)).sum(-1)) + y.max(-1)
    res[m] = np.where(vis[None], lse - est, 0.0)
# categories of (head, key composite, query composite)
kh = np.arange(H) // (H // Hk)
cat = {}
rest_needle = np.array([[needle_key[u * 32 : u * 32 + 32][rk[h, u]].sum() for u in range(Tk)] for h in range(H)])
cat["needle keys in rest"] = np.broadcast_to(rest_needle[:, None, :] > 0, share.shape)
topic_hit = np.zeros((H, Tq, Tk), bool)
for h in range(H):
    ktop, qtop = pl["topic"][(0, kh[h])]
    qt = qtop[np.arange(Tq) * 16]
    kt_ = ktop.reshape(Tk, 32)
    for u in range(Tk):
        tops = kt_[u][rk[h, u] & (kt_[u] >= 0)]
        topic_hit[h, :, u] = np.isin(qt, tops)
cat["query's topic key in rest"] = topic_hit
dist = (np.arange(Tq)[:, None] * 16 + 8) - (np.arange(Tk)[None, :] * 32 + 16)
cat["local (key comp. within 256 tokens)"] = np.broadcast_to(dist < 256, share.shape)
slash = np.zeros((H, Tq, Tk), bool)
for h in range(H):
    for off in pl["slash"][(0, kh[h])]:
        slash[h] |= np.abs(dist - off) < 24
cat["slash offset (+-24)"] = slash
wsum = share.sum()
print(f"peaked seed {seed} N {N}: share-weighted error of the key rest slot's log-mass (exact - estimate)")
print(f"{'category':40s} {'pairs':>7s} {'w-share':>8s} " + " ".join(f"{m[:9]:>9s}" for m in res))
allm = np.broadcast_to(vis[None], share.shape)
for name, c in [("all visible pairs", allm)] + list(cat.items()):
    c = c & allm
    w = share * c
    print(
        f"{name:40s} {int(c.sum()):7d} {w.sum() / wsum:8.3f} "
        + " ".join(f"{(res[m] * w).sum() / max(w.sum(), 1e-300):9.3f}" for m in res)
    )
none = allm & ~np.any([c for c in cat.values()], 0)
w = share * none
print(
    f"{'none of these':40s} {int(none.sum()):7d} {w.sum() / wsum:8.3f} "
    + " ".join(f"{(res[m] * w).sum() / max(w.sum(), 1e-300):9.3f}" for m in res)
)
print("unweighted mean error (all visible): " + " ".join(f"{m} {res[m][allm].mean():.3f}" for m in res))
print(
    "mean |error| weighted:               " + " ".join(f"{m} {(np.abs(res[m]) * share).sum() / wsum:.3f}" for m in res)
)
