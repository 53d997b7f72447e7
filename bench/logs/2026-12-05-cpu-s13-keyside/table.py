"""The session-13 keyside table from the run.sh logs: per variant (and tau), ratio (ratio_f) / rec_p1 / spans / lost
for each (generator, seed) at N, plus the session-12 oracles (bench/logs/2026-12-04-cpu-s12-unscented/or_*).

python3 table.py [N]
"""

import glob
import os
import re
import sys

D = os.path.dirname(os.path.abspath(__file__))
S12 = os.path.join(D, "..", "2026-12-04-cpu-s12-unscented")
N = sys.argv[1] if len(sys.argv) > 1 else "8192"
NAMES = {
    0: "baseline (the default's first pass)",
    1: "kr1_pc: Gaussian along the rest keys' own PC",
    2: "k2_pc: two-point (3 moments) along the own PC",
    3: "k2_far: two-point along the farthest rest key",
    4: "k2_qpc: two-point along the PC in the queries' metric",
    5: "kr1_qpc: Gaussian along the PC in the queries' metric",
    6: "hot2: a third key outlier, the second hot key",
    7: "k2_qpc_q0: k2_qpc for the query rest slot only",
    8: "k2_far_q0: k2_far for the query rest slot only",
    10: "k2_pc_q0: k2_pc for the query rest slot only",
    11: "kr1_far: Gaussian along the farthest rest key",
    12: "k2_farq: two-point along the rest key farthest in the queries' metric",
    13: "kclu0: the rare slot = mean of its cluster (free)",
    14: "kclu0h: the hot and rare slots = their clusters' means (free)",
    15: "kclu: the rare key's cluster as a fourth slot",
    16: "kclu0 + k2_qpc on the remaining rest",
    17: "kclu0 + k2_pc on the remaining rest",
    18: "kclu0 + k2_far on the remaining rest",
    19: "kclu0h + k2_qpc on the remaining rest",
    20: "kclu0h + k2_far on the remaining rest",
    21: "oracle: key rest slot exact (this file's; = s12's code 17)",
    22: "oracle: key rest slot exact on local pairs only (within 256 tokens)",
    23: "oracle: key rest slot exact on non-local pairs only",
    24: "oracle: key rest slot exact where the rest holds needle keys",
    25: "oracle: key rest slot exact where the rest holds keys of the query's topic",
    26: "oracle: key rest slot exact on pairs none of local / needle / topic",
    27: "kw0: the rare key weighs 1 + its cluster (members out of the rest) (free)",
    28: "kw0h: the same for the hot and the rare key (free)",
    29: "kw0 + k2_far on the remaining rest",
    30: "kw0 + k2_qpc on the remaining rest",
    31: "kw0 + k2_pc on the remaining rest",
    32: "kw0 + k2_far, the latter for the query rest slot only",
    33: "kw0_far + ut_px (s12's free query-side sigma points)",
    34: "ut_px alone (check: = s12's code 4)",
    117: "s12 oracle: key rest slot exact (log-sum-exp of its 30 keys)",
    118: "s12 oracle: rows and keys exact (the first pass's target)",
}
rows = {}
files = sorted(glob.glob(os.path.join(D, f"*_n{N}.txt"))) + sorted(glob.glob(os.path.join(S12, f"or_*_n{N}.txt")))
for f in files:
    m = re.match(r"(\w+?)_(peaked|structured)_s(\d)_n\d+.txt", os.path.basename(f))
    if not m:
        continue
    s12 = f.startswith(S12)
    gen, seed = m.group(2), int(m.group(3))
    for line in open(f):
        p = line.split()
        if len(p) < 16 or not p[0].isdigit() or not p[1].startswith("tau="):
            continue
        tau = p[1].split(",")[0][4:]
        code = int(re.search(r"max_blocks=(\d+)", p[1]).group(1)) - 1000
        if s12:
            if code not in (17, 18):
                continue
            code += 100
        name = NAMES.get(code, f"code {code}")
        if m.group(1).startswith("t") and not s12:  # run with KS_THETA = 0.<digits of the prefix>
            name += f" [theta 0.{m.group(1)[1:]}]"
        extra = re.findall(r"(c=\d+/\d+|r=\d/\d)", p[1])
        if extra and extra != ["c=16/32", "r=1/2"]:
            name += " [" + ", ".join(extra) + "]"
        cost, ratio, ratio_f, p1, spans, lost = p[2], p[5], p[6], p[8], p[11], p[13]
        cell = f"{ratio} ({ratio_f}) / {float(p1):.3f} / {spans.split('/')[0]} / {lost}"
        rows.setdefault((code, name, tau), {})[(gen, seed)] = cell
cols = [(g, s) for g in ("peaked", "structured") for s in (0, 1, 2)]
print("| variant | tau | " + " | ".join(f"{'`peaked`' if g == 'peaked' else 'project'} s{s}" for g, s in cols) + " |")
print("|---|---|" + "---|" * len(cols))
for key in sorted(rows, key=lambda r: (r[0] >= 100, r[0], r[1], r[2])):
    r = rows[key]
    print(f"| {key[1]} | {key[2]} | " + " | ".join(r.get(c, "") for c in cols) + " |")
