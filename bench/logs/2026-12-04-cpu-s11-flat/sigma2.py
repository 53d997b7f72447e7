"""The first pass's spread correction on both generators: sigma2 = scale^2 v |k|^2 of the queries' rest slot against
every key slot (outlier.block_score), and the per-row sd of the exact logits it stands for (issue 17, session 11).

    PYTHONPATH=python python3 sigma2.py [N] [seed]
"""

import sys

import numpy as np

sys.path.insert(0, "python")
from unisparse.peaked import peaked_qkv  # noqa: E402
from unisparse.reference import outlier  # noqa: E402
from unisparse.synthetic import structured_qkv  # noqa: E402

N = int(sys.argv[1]) if len(sys.argv) > 1 else 8192
seed = int(sys.argv[2]) if len(sys.argv) > 2 else 0
H, Hkv, D = 8, 2, 128
sc = 1 / np.sqrt(D)
for name, gen in (("peaked", peaked_qkv), ("structured", structured_qkv)):
    q, k, v = gen(1, H, Hkv, N, D, seed=seed, peak=2.5, needles=16)[:3]
    qc = outlier.compress_outlier(q, 16, 1, spread=True)
    kc = outlier.compress_outlier(k, 32, 2, kv_group=H // Hkv, hot=1, queries=q)
    var = qc[0, :, :, 2].mean(-1)  # [H, Tq]: the rest slot's spread, per coordinate
    kn = (kc[0] ** 2).sum(-1)  # [H, Tk, 3]
    s2 = sc * sc * var[:, :, None] * np.median(kn.reshape(H, -1), -1)[:, None, None]
    s2_hot = sc * sc * var * np.median(kn[:, :, 1], -1)[:, None]
    # the exact logits' sd over a composite's rows, against the hot key of a random composite
    rng = np.random.default_rng(0)
    sds = []
    for h in range(H):
        for t in rng.integers(N // 32, N // 16, 8):
            u = rng.integers(0, t // 2)
            rows = q[0, h, t * 16 : t * 16 + 16].astype(np.float64)
            kk = kc[0, h, u, 1]
            sds.append(((rows @ kk) * sc).std())
    print(
        f"{name}: rest-slot spread v (per coordinate) median {np.median(var):.2f}; sigma2 against the median key slot "
        f"median {np.median(s2):.1f} (p90 {np.percentile(s2, 90):.1f}); against the hot slot median "
        f"{np.median(s2_hot):.1f}; exact logit sd over 16 rows vs a hot key: median {np.median(sds):.2f} "
        f"(variance {np.median(sds) ** 2:.1f})"
    )
