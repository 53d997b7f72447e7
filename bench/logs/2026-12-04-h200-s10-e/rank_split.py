"""Where an estimator's excess density over the exact top-p comes from: ranking within a row, or how recall is
spread over rows (issue 17, session 10).

    python3 rank_split.py --n 32768 --heads 32 --kv-heads 8 --peak 2.5 --seed 0 --generator peaked \\
        --config c_k=32,estimator=outlier,query_reduce=max,tau=0.995,last_q=16 [--device cuda]

For each (head, query block) with sampled rows, d = the rows' mean dense mass per key block (as the harness's
oracle_curve uses): n_est = the blocks the layout keeps, r = their mass in d (the row's recall), n_rank = the
fewest blocks of d's own order that reach r (so n_est / n_rank is the ranking's cost in that row alone). Over all
rows: ratio (as the harness: density / the exact top-p's at the same mean recall), rank_ratio = sum n_est / sum
n_rank (ranking only: the same per-row recall), and what is left (ratio / rank_ratio: the spread of recall over
rows against a uniform tau). Then per head: its sharpness (the exact top-p's blocks at tau 0.9 per row, of the
visible), n_est, n_rank, its ranking ratio and its share of the excess blocks.
"""

import argparse
import sys

import numpy as np

sys.path[:0] = ["python"]
from unisparse import reference as ref  # noqa: E402
from unisparse.fidelity.harness import (  # noqa: E402
    GENERATORS,
    evaluate,
    floor_at,
    layouts,
    oracle_curve,
    parse_config,
    sample_rows,
)


def main():
    p = argparse.ArgumentParser()
    p.add_argument("--n", type=int, default=8192)
    p.add_argument("--heads", type=int, default=8)
    p.add_argument("--kv-heads", type=int, default=2)
    p.add_argument("--peak", type=float, default=2.5)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--generator", default="peaked")
    p.add_argument("--config", required=True)
    p.add_argument("--device", default=None)
    p.add_argument("--rows-per-block", type=int, default=8)
    a = p.parse_args()
    cfg = parse_config(a.config)
    q, k, v, _ = GENERATORS[a.generator](1, a.heads, a.kv_heads, a.n, 128, a.seed, a.peak, 16)
    lay = layouts(q, k, [cfg], device=a.device)[cfg]
    rows = sample_rows(a.n, cfg.block, a.rows_per_block if a.n > 8192 else None, a.seed)
    res = evaluate(q, k, v, [cfg], {cfg: lay}, rows, device=a.device)
    bmf = res["block_mass"]  # [Hq, R, NBf] at the finest block (= cfg.block here)
    Hq, R, NB = bmf.shape
    mask = ref.layout_mask(lay[0][:1], lay[1][:1])[0]  # [Hg, NB, NB]
    rec = res[cfg]["recall"]
    curve = oracle_curve(bmf, rows, a.n, cfg.block, cfg.block)
    dens = lay[0][0].sum() * cfg.c_h / (Hq * NB * (NB + 1) / 2)
    floor = floor_at(curve, rec.mean())
    n_est = np.zeros(Hq)
    n_rank = np.zeros(Hq)
    n_rank_f = np.zeros(Hq)  # the same with the layout's forced blocks counted first (as ratio_f's floor)
    n_90 = np.zeros(Hq)
    n_vis = np.zeros(Hq)
    for I in range(NB):
        sel = np.flatnonzero(rows // cfg.block == I)
        if not sel.size:
            continue
        d = bmf[:, sel, : I + 1].astype(np.float64).mean(axis=1)  # [Hq, I+1]
        kept = mask[np.arange(Hq) // cfg.c_h, I, : I + 1]  # [Hq, I+1]
        r = (d * kept).sum(-1)
        cum = np.cumsum(-np.sort(-d, axis=-1), axis=-1)
        n_est += kept.sum(-1)
        n_rank += np.minimum((cum < r[:, None] * (1 - 1e-9)).sum(-1) + 1, I + 1)
        J = np.arange(I + 1)
        forced = ((J == 0) & cfg.sink) | (J >= I - cfg.local_blocks)
        fmass = d[:, forced].sum(-1)
        cum_f = fmass[:, None] + np.cumsum(-np.sort(-d[:, ~forced], axis=-1), axis=-1)
        need_f = np.where(fmass >= r * (1 - 1e-9), 0, (cum_f < r[:, None] * (1 - 1e-9)).sum(-1) + 1)
        n_rank_f += forced.sum() + np.minimum(need_f, (~forced).sum())
        n_90 += np.minimum((cum < 0.9 * cum[:, -1:] * (1 - 1e-9)).sum(-1) + 1, I + 1)
        n_vis += I + 1
    rank_ratio = n_est.sum() / n_rank.sum()
    print(
        f"{a.generator} N={a.n} Hq={a.heads} peak={a.peak} seed={a.seed} {a.config}: density {dens:.4f}, "
        f"floor {floor:.4f}, ratio {dens / floor:.3f}; recall mean {rec.mean():.4f} p1 {np.percentile(rec, 1):.4f}; "
        f"sampled blocks: n_est {n_est.sum():.0f}, n_rank {n_rank.sum():.0f}, rank_ratio "
        f"{rank_ratio:.3f} = the forced blocks {n_rank_f.sum() / n_rank.sum():.3f} x the rest's ranking "
        f"{n_est.sum() / n_rank_f.sum():.3f}, left for the spread over rows {dens / floor / rank_ratio:.3f}; "
        f"recall percentiles 1/10/50/90: {np.percentile(rec, [1, 10, 50, 90]).round(4).tolist()}",
        flush=True,
    )
    excess = n_est - n_rank
    print(" head  sharp(top-p .9 / visible)  n_est/visible  n_rank/visible  rank_ratio  excess share  recall_mean")
    for h in np.argsort(-(n_est / n_rank)):
        print(
            f" {h:4d}  {n_90[h] / n_vis[h]:10.4f}  {n_est[h] / n_vis[h]:13.4f}  {n_rank[h] / n_vis[h]:14.4f}  "
            f"{n_est[h] / n_rank[h]:10.3f}  {excess[h] / excess.sum():12.1%}  {rec[h].mean():11.4f}"
        )


if __name__ == "__main__":
    main()
