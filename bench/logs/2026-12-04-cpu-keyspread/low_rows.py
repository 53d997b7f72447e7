"""The rows below 0.9 recall: true and estimated dropped mass (python3 low_rows.py N SEED CONFIG)."""

import sys

import numpy as np

sys.path.insert(0, "python")
from unisparse import reference as ref  # noqa: E402
from unisparse.estimate_torch import estimate  # noqa: E402
from unisparse.fidelity.harness import evaluate, parse_config, sample_rows  # noqa: E402
from unisparse.reference import twolevel  # noqa: E402
from unisparse.synthetic import structured_qkv  # noqa: E402

N, H, HK, seed = int(sys.argv[1]), 8, 2, int(sys.argv[2])
spec = sys.argv[3]
cfg = parse_config(spec)
q, k, v, nd = structured_qkv(1, H, HK, N, 128, seed=seed, peak=2.5, needles=16)
kw = cfg.reference_kwargs()
s = estimate(
    q,
    k,
    cfg.block,
    cfg.c_q,
    cfg.c_k,
    cfg.c_h,
    causal=True,
    scale=kw["scale"],
    estimator=cfg.estimator,
    query_reduce=cfg.query_reduce,
    q_outliers=cfg.q_outliers,
    k_outliers=cfg.k_outliers,
)
if "last_q" in spec:
    s = twolevel.refine_config(s, q, k, cfg, scale=kw["scale"])
counts, idx = ref.block_select(s, cfg.tau, local_blocks=cfg.local_blocks, sink=cfg.sink, causal=True)
mask = ref.layout_mask(counts, idx)[0]
rows = sample_rows(N, 128, 8, seed)
res = evaluate(q, k, v, [cfg], {cfg: (counts, idx)}, rows, device="cpu")
rec = res[cfg]["recall"]
bm = res["block_mass"]
print("density", ref.density(counts, N, 128, True), "mean", rec.mean(), "p1", np.percentile(rec, 1))
low = np.argwhere(rec < 0.9)
print("low rows", len(low))
agg = []
for h, r in low[:400]:
    i = rows[r]
    I = i // 128
    t = bm[h, r].astype(np.float64)
    t = t / t.sum()
    e = s[0, h, I].copy()
    e = np.where(np.isfinite(e), e, 0)
    e = e / e.sum()
    keep = mask[h, I]
    vis = np.arange(len(t)) <= I
    drop = vis & ~keep
    agg.append(
        (
            t[drop].sum(),
            e[drop].sum(),
            drop.sum(),
            (vis & keep).sum(),
            np.corrcoef(np.log(t[drop] + 1e-12), np.log(e[drop] + 1e-12))[0, 1] if drop.sum() > 2 else np.nan,
            # what exact top-p within the row would need
        )
    )
a = np.array(agg)
print("true mass dropped (median)", np.median(a[:, 0]), "est mass dropped (median)", np.median(a[:, 1]))
print(
    "dropped blocks median",
    np.median(a[:, 2]),
    "kept median",
    np.median(a[:, 3]),
    "logcorr median",
    np.nanmedian(a[:, 4]),
)
# per low row: how many more blocks (by est order) to reach recall .9
need = []
for h, r in low[:400]:
    i = rows[r]
    I = i // 128
    t = bm[h, r].astype(np.float64)
    t = t / t.sum()
    e = s[0, h, I].copy()
    e = np.where(np.isfinite(e), e, 0)
    keep = mask[h, I].copy()
    vis = np.arange(len(t)) <= I
    order = np.argsort(-np.where(vis & ~keep, e, -1))
    got = t[keep].sum()
    n = 0
    for j in order:
        if got >= 0.9 or not (vis[j] and not keep[j]):
            break
        got += t[j]
        n += 1
    # exact: blocks needed by true order
    tt = np.sort(np.where(vis & ~keep, t, 0))[::-1]
    g2 = t[keep].sum()
    n2 = 0
    for x in tt:
        if g2 >= 0.9:
            break
        g2 += x
        n2 += 1
    need.append((n, n2))
need = np.array(need)
print(
    "extra blocks to 0.9 by est order (median, p90)",
    np.median(need[:, 0]),
    np.percentile(need[:, 0], 90),
    " by true order",
    np.median(need[:, 1]),
    np.percentile(need[:, 1], 90),
)
