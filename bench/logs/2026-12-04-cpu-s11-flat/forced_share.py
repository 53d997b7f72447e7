"""Per head, the two-level estimate's forced share against the true one, and one row's non-forced blocks, on the
independent generator (issue 17, session 11).

    PYTHONPATH=python python3 forced_share.py [seed] [head,query block ...]

8K x 8 heads (Hkv 2), peak 2.5, the `peaked` preset with refine_norm at tau 0.995. Per head: whether it has the
sink, its sharpness, its recall (mean, p1), the forced blocks' (sink, diagonal, local) share of the mean row of each
query block, true and estimated (the first pass alone and refined), and the blocks the estimate and the truth keep
at tau 0.995 (forced first). Then for each (head, query block) given: its forced share and its non-forced blocks
ranked by the truth, with the estimate's shares.
"""

import sys

import numpy as np

sys.path.insert(0, "python")
from unisparse import reference as ref  # noqa: E402
from unisparse.fidelity.harness import evaluate, parse_config  # noqa: E402
from unisparse.peaked import peaked_qkv  # noqa: E402
from unisparse.reference import twolevel  # noqa: E402

seed = int(sys.argv[1]) if len(sys.argv) > 1 else 0
N, H, Hkv, blk = 8192, 8, 2, 128
pl = {}
q, k, v, nd = peaked_qkv(1, H, Hkv, N, 128, seed=seed, peak=2.5, needles=16, planted=pl)
sink = np.concatenate([pl["sink"][(0, kh)] for kh in range(Hkv)])
sharp = np.concatenate([pl["sharpness"][(0, kh)] for kh in range(Hkv)])
cfg = parse_config("c_k=32,estimator=outlier,query_reduce=max,tau=0.995,last_q=16,refine_norm=true")
sc = cfg.reference_kwargs()["scale"]
s = ref.estimate(q, k, blk, cfg.c_q, cfg.c_k, 1, causal=True, scale=sc, estimator="outlier", query_reduce="max")
rs = twolevel.refine_config(s, q, k, cfg, scale=sc)
lay = ref.block_select(rs, cfg.tau, local_blocks=1, sink=True)
res = evaluate(q, k, v, [cfg], {cfg: lay}, np.arange(N))
bm, rec = res["block_mass"], res[cfg]["recall"]
NB = N // blk
T = bm.reshape(H, NB, blk, NB).astype(np.float64).mean(2)
s, rs = s[0] / s[0].sum(-1, keepdims=True), rs[0] / rs[0].sum(-1, keepdims=True)
I, J = np.arange(NB)[:, None], np.arange(NB)[None, :]
F = (J == 0) | ((J <= I) & (J >= I - 1))
vis = J <= I


def kept(x, tau=0.995):
    o = np.argsort(np.where(F, -np.inf, -x), -1, kind="stable")
    c = np.cumsum(np.take_along_axis(x, o, -1), -1)
    return np.minimum((c < tau * c[:, -1:] * (1 - 1e-9)).sum(-1) + 1, I[:, 0] + 1)[2:].sum()


print(f"peaked seed {seed}, N {N}, Hq {H}: forced share of the mean row of a query block (blocks 2..)")
print(" head sink sharp rec_mean rec_p1 | forced share: true / first pass / refined | blocks kept: refined / truth")
for h in range(H):
    fs = [(x * F).sum(-1)[2:].mean() for x in (T[h], s[h], rs[h])]
    print(
        f" {h:4d} {int(sink[h]):4d} {sharp[h]:5.2f} {rec[h].mean():8.4f} {np.percentile(rec[h], 1):6.3f} | "
        f"{fs[0]:.3f} / {fs[1]:.3f} / {fs[2]:.3f} | {kept(rs[h])} / {kept(T[h])}"
    )
np.set_printoptions(linewidth=200, precision=4, suppress=True)
for arg in sys.argv[2:]:
    h, i = map(int, arg.split(","))
    x, t = np.where(vis[i], rs[h, i], 0), T[h, i]
    nf = ~F[i] & vis[i]
    o = np.argsort(-t[nf])[:8]
    print(
        f"head {h} (sink {bool(sink[h])}) query block {i}: forced share true {t[F[i]].sum():.3f}, "
        f"refined {x[F[i]].sum():.3f}"
    )
    print("  non-forced blocks by true mass:", np.flatnonzero(nf)[o])
    print("  their share of the non-forced mass, true:     ", (t[nf] / t[nf].sum())[o])
    print("  their share of the non-forced mass, estimate: ", (x[nf] / x[nf].sum())[o])
