"""The session-12 table from the logs of run_cpu.sh / run_oracle.sh / run_k1.sh: per variant and tau, ratio
(ratio_f) / rec_p1 / spans / lost for each (generator, seed).

python3 table.py [N]
"""

import glob
import os
import re
import sys

D = os.path.dirname(os.path.abspath(__file__))
N = sys.argv[1] if len(sys.argv) > 1 else "8192"
NAMES = [
    "baseline (`peaked`: lognormal, isotropic v)",
    "ut_pc: 2 sigma points, own principal dir., + residual",
    "ut_pc0: the same, no residual correction",
    "ut_all: 2 sigma points of all 16 rows, no outlier row",
    "ut_px: 2 sigma points along q_out - q_bar, + residual",
    "var_g1: lognormal, shared rank-1 + iso. covariance",
    "var_g2: the same, rank 2",
    "ut_g1: 2 sigma points along the shared u_1, + residual",
    "ut_g2: 4 sigma points along shared u_1, u_2, + residual",
    "var_pc: lognormal, own rank-1 + iso. covariance",
    "ut_px0: ut_px without the residual correction",
    "oracle: exact mean over the rows (same key slots)",
    "oracle (all rows; = the above)",
    "kvln: base + key-side lognormal spread (free)",
    "kvmax: base + key-side spread, bounded by the max (free)",
    "kvmax_pc: kvmax + ut_pc",
    "kvmax_px: kvmax + ut_px (free)",
    "oracle: key rest slot exact (log-sum-exp of its tokens), query side baseline",
    "oracle: rows and keys exact (the first pass's target)",
    "kut: key rest slot as 2 sigma points, own PC, + bounded residual",
    "kut_pc: kut + ut_pc (both sides unscented)",
]
rows = {}
for f in sorted(glob.glob(os.path.join(D, f"*_n{N}.txt"))):
    m = re.match(r"(ut|oracle|k1|kv|or|kut|kout)_(peaked|structured)_s(\d)_n\d+.txt", os.path.basename(f))
    if not m:
        continue
    gen, seed = m.group(2), int(m.group(3))
    for line in open(f):
        p = line.split()
        if len(p) < 16 or not p[0].isdigit() or not p[1].startswith("tau="):
            continue
        tau = p[1].split(",")[0][4:]
        code = int(re.search(r"max_blocks=(\d+)", p[1]).group(1)) - 1000
        r = re.search(r"r=(\d)/(\d)", p[1])
        cq = re.search(r"c=(\d+)/", p[1]).group(1)
        name = NAMES[code] + ("" if r.group(2) == "2" else f" [k_outliers {r.group(2)}]")
        if r.group(2) not in "12":
            name = name.replace(" [k_", " [rare k_")
        name += "" if cq == "16" else f" [c_q {cq}]"
        cost, ratio, ratio_f, p1, spans, lost = p[2], p[5], p[6], p[8], p[11], p[13]
        cell = f"{ratio} ({ratio_f}) / {float(p1):.3f} / {spans.split('/')[0]} / {lost}"
        if tau == "0.98" or tau == "0.99":
            name += " (oracle tau sweep)"
        rows.setdefault((name, tau), {})[(gen, seed)] = cell
cols = [(g, s) for g in ("peaked", "structured") for s in (0, 1, 2)]
print("| variant | tau | " + " | ".join(f"{'`peaked`' if g == 'peaked' else 'project'} s{s}" for g, s in cols) + " |")
print("|---|---|" + "---|" * len(cols))
for name, tau in sorted(
    rows, key=lambda r: (r[0].count("[") + r[0].count("(o"), NAMES.index(re.split(r" \[| \(o", r[0])[0]), r[1])
):
    r = rows[(name, tau)]
    print(f"| {name} | {tau} | " + " | ".join(r.get(c, "") for c in cols) + " |")
