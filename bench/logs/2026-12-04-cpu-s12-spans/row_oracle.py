"""Needle spans under the finest oracle: the exact top-p of each query ROW
(not block) on its true key-block masses.

For every needle of the project's generator (structured_qkv, the fidelity
harness's arguments) and every query head and row of the needle's query span,
the row's causal softmax (float64) summed into key blocks; the row keeps the
fewest blocks, largest first, whose mass reaches tau (the forced sink and
local blocks are kept too, as in the floor). A span counts as kept when every
(head, row) keeps every key block of the needle's key span, the metric of
unisparse.synthetic.needle_hits. Also printed: per needle the smallest mass a
(head, row) puts on the needle's key blocks (the least-read block), the
head and row where it happens.

usage: row_oracle.py N HQ HKV SEED PEAK [TAU ...]
"""

import sys

import numpy as np

from unisparse.synthetic import structured_qkv

N, Hq, Hkv, seed = (int(a) for a in sys.argv[1:5])
peak = float(sys.argv[5])
taus = [float(t) for t in sys.argv[6:]] or [0.9965]
D, block, local_blocks = 128, 128, 1
q, k, _, nd = structured_qkv(1, Hq, Hkv, N, D, seed=seed, peak=peak, needles=16)
q, k = q.astype(np.float64), k.astype(np.float64)
scale = 1.0 / np.sqrt(D)
G = Hq // Hkv
NB = (N + block - 1) // block
kept = {t: 0 for t in taus}
print(f"N={N} Hq={Hq} Hkv={Hkv} seed={seed} peak={peak} taus={taus}")
for n, x in enumerate(nd):
    rows = np.arange(x["q_start"], x["q_stop"])
    kb = np.arange(x["k_start"] // block, (x["k_stop"] - 1) // block + 1)
    ok = {t: True for t in taus}
    least = (np.inf, None, None, None)
    for h in range(Hq):
        lg = (q[0, h, rows] @ k[0, h // G, : rows[-1] + 1].T) * scale  # [r, keys]
        lg = np.where(np.arange(lg.shape[1])[None, :] <= rows[:, None], lg, -np.inf)
        p = np.exp(lg - lg.max(1, keepdims=True))
        p /= p.sum(1, keepdims=True)
        nbk = (rows[-1] // block) + 1
        pad = np.zeros((len(rows), nbk * block))
        pad[:, : p.shape[1]] = p
        m = pad.reshape(len(rows), nbk, block).sum(-1)  # [r, key blocks]
        for r, i in enumerate(rows):
            I = i // block
            mb = m[r, : I + 1]
            forced = np.zeros(I + 1, bool)
            forced[0] = True
            forced[max(0, I - local_blocks) :] = True
            for kbi in kb:
                if mb[kbi] < least[0]:
                    least = (mb[kbi], h, int(i), int(kbi))
            order = np.argsort(-mb, kind="stable")
            cum = np.cumsum(mb[order])
            for t in taus:
                nkeep = int(np.searchsorted(cum, t * cum[-1]) + 1)
                keep = forced.copy()
                keep[order[:nkeep]] = True
                if not keep[kb].all():
                    ok[t] = False
    for t in taus:
        kept[t] += ok[t]
    print(
        f"needle {n:2d} q [{x['q_start']},{x['q_stop']}) blocks {x['q_start'] // block}-{(x['q_stop'] - 1) // block}"
        f" k [{x['k_start']},{x['k_stop']}) key blocks {list(kb)}: kept "
        + " ".join(f"tau {t}: {ok[t]}" for t in taus)
        + f"; least mass {least[0]:.2e} (head {least[1]}, row {least[2]}, key block {least[3]})",
        flush=True,
    )
print("spans kept by the per-row exact top-p: " + ", ".join(f"tau {t}: {kept[t]}/16" for t in taus))
