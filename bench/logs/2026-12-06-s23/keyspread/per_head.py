"""Per-head density, recall and floor of the default (CPU, float64): which heads hold a run's excess.

    PYTHONPATH=python python3 per_head.py N HEADS KV_HEADS PEAK SEED

For each query head h of batch 0: the layout's density (its head group's), the mean and 1st-percentile recall of
the harness's sampled rows, and the head's own floor: the exact top-p's density on the head's true block masses at
the head's mean recall (the harness's oracle_curve and floor_at on that head alone).
"""

import sys

import numpy as np

sys.path.insert(0, "python")
from unisparse import Config  # noqa: E402
from unisparse import reference as ref  # noqa: E402
from unisparse.fidelity import harness as H  # noqa: E402

N, heads, kv, peak, seed = int(sys.argv[1]), int(sys.argv[2]), int(sys.argv[3]), float(sys.argv[4]), int(sys.argv[5])
cfg = Config()
q, k, v, nd = H.GENERATORS["structured"](1, heads, kv, N, 128, seed, peak, 16)
lays = H.layouts(q, k, [cfg])
rows = H.sample_rows(N, cfg.block, 8 if N > 8192 else None, seed)
res = H.evaluate(q, k, v, [cfg], lays, rows)
counts, indices = lays[cfg]
rec = res[cfg]["recall"]
print(f"N={N} Hq={heads} Hkv={kv} peak={peak} seed={seed}: density {ref.density(counts, N, cfg.block):.3f}")
print("head  density  floor  ratio  rec_mean  rec_p1")
for h in range(heads):
    dens = ref.density(counts[:, h : h + 1], N, cfg.block)
    curve = H.oracle_curve(res["block_mass"][h : h + 1], rows, N, cfg.block, cfg.block)
    fl = H.floor_at(curve, float(rec[h].mean()))
    ratio, p1 = dens / max(fl, 1e-12), np.percentile(rec[h], 1)
    print(f"{h:4d}  {dens:7.3f}  {fl:5.3f}  {ratio:5.2f}  {rec[h].mean():8.4f}  {p1:6.3f}")
