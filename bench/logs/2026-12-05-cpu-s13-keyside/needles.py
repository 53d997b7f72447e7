"""Which needle keys the key rest slot holds (peaked generator, 8K, 8 / 2 heads, seeds 0-2): per (query head, key
composite) whose reference rest holds a planted needle key, whether the rare outlier is a key of the same span, of
another needle, or no needle (and whether the hot key is a needle key), by the count of needle keys in the rest.

    cd /work/main && PYTHONPATH=python python3 bench/logs/2026-12-05-cpu-s13-keyside/needles.py
"""

import sys
from collections import Counter

import numpy as np

sys.path.insert(0, "python")
from unisparse.peaked import peaked_qkv  # noqa: E402
from unisparse.reference import outlier  # noqa: E402

for seed in (0, 1, 2):
    q, k, v, nd = peaked_qkv(1, 8, 2, 8192, 128, seed, peak=2.5)
    span = -np.ones(8192, int)
    for i, n in enumerate(nd):
        span[n["k_start"] : n["k_stop"]] = i
    kc = outlier.compress_outlier(k, 32, 2, kv_group=4, hot=1, queries=q)[0]
    kt = np.repeat(k[0].astype(np.float64), 4, 0).reshape(8, 256, 32, 128)
    isr = (kt[:, :, :, None] == kc[:, :, None, 1:3]).all(-1)
    cnt = Counter()
    for h in range(8):
        for t in range(256):
            sp = span[t * 32 : (t + 1) * 32]
            rest = ~isr[h, t].any(-1)
            if not (rest & (sp >= 0)).any():
                continue
            hotj, rarej = np.argmax(isr[h, t, :, 0]), np.argmax(isr[h, t, :, 1])
            rs = set(sp[rest & (sp >= 0)])
            kind = (
                "rare same span" if sp[rarej] in rs else "rare other needle" if sp[rarej] >= 0 else "rare not needle"
            ) + (", hot needle" if sp[hotj] >= 0 else "")
            cnt[(kind, int((rest & (sp >= 0)).sum()))] += 1
    print(seed, sorted(cnt.items()))
