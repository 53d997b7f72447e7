"""How a needle's other keys in a key composite relate to the rare outlier key (peaked generator, 8K, seeds 0-2):
for composites whose rare key is a needle key and that hold other needle keys, the cosine (and the projection
relative to |d_rare|^2) of the other keys' deviations from the rest mean against the rare key's: the needle keys'
smallest, and the largest over non-needle rest keys (what the cluster threshold of keyside.py separates).

    cd /work/main && PYTHONPATH=python python3 bench/logs/2026-12-05-cpu-s13-keyside/cosines.py
"""

import sys

import numpy as np

sys.path.insert(0, "python")
from unisparse.peaked import peaked_qkv  # noqa: E402
from unisparse.reference import outlier  # noqa: E402

for seed in (0, 1, 2):
    q, k, v, nd = peaked_qkv(1, 8, 2, 8192, 128, seed, peak=2.5)
    kc = outlier.compress_outlier(k, 32, 2, kv_group=4, hot=1, queries=q)[0]  # per kv head: [2, T, 3, D]
    nk = np.zeros(8192, bool)
    for n in nd:
        nk[n["k_start"] : n["k_stop"]] = True
    kt = np.repeat(k[0].astype(np.float64), 4, 0).reshape(8, 256, 32, 128)
    isr = (kt[:, :, :, None] == kc[:, :, None, 1:3]).all(-1)  # [8,T,32,2]
    rare = isr[..., 1]
    hot = isr[..., 0]
    cn, co = [], []
    for h in range(8):
        for t in range(256):
            nkt = nk[t * 32 : (t + 1) * 32]
            j = np.argmax(rare[h, t])
            if not nkt[j] or nkt.sum() < 2:
                continue
            # deviations from the rest mean (slot 0) and from the composite mean
            for ref in ("rest", "comp"):
                m = kc[h, t, 0] if ref == "rest" else kt[h, t].mean(0)
                d = kt[h, t] - m
                cs = d @ d[j] / (np.linalg.norm(d, axis=1) * np.linalg.norm(d[j]))
                pr = d @ d[j] / (d[j] @ d[j])
                others = np.arange(32) != j
                if ref == "rest":
                    cn.append(
                        (
                            cs[nkt & others].min(),
                            pr[nkt & others].min(),
                            cs[~nkt & ~hot[h, t]].max(),
                            pr[~nkt & ~hot[h, t]].max(),
                            nkt.sum(),
                        )
                    )
    cn = np.array(cn)
    print(
        seed,
        len(cn),
        "needle cos min: mean %.2f min %.2f; proj min: mean %.2f min %.2f; "
        "non-needle cos max: mean %.2f max %.2f; proj max: mean %.2f max %.2f"
        % (
            cn[:, 0].mean(),
            cn[:, 0].min(),
            cn[:, 1].mean(),
            cn[:, 1].min(),
            cn[:, 2].mean(),
            cn[:, 2].max(),
            cn[:, 3].mean(),
            cn[:, 3].max(),
        ),
    )
