"""The session-11 table (ratio / rec_p1 / spans per run) from the logs of flat_cpu.sh.

python3 table.py [folder]
"""

import glob
import os
import re
import sys

D = sys.argv[1] if len(sys.argv) > 1 else os.path.dirname(os.path.abspath(__file__))
NAMES = {
    0: "baseline (`peaked`, refine_norm)",
    1: "oracle: true forced share",
    2: "oracle: true non-forced shape",
    4: "oracle: top-4 blocks verified exactly",
    19: "oracle: top-4 verified from the 8 probe rows' true masses",
    21: "the same, guarded by the outlier rows",
    7: "probe rows verify the top 4 blocks (outlier keys)",
    9: "probe rows verify the top 4 blocks (all keys)",
    13: "probe rows verify the top 4 blocks (all keys), guarded",
}
SINK = "`sink = false` (no patch)"
rows = {}
for f in sorted(glob.glob(os.path.join(D, "*_n8192.txt"))):
    base = os.path.basename(f)
    m = re.match(r"(flat|verify|sink|spread_(\w+?))_(peaked|structured)_s(\d)_n8192.txt", base)
    if not m:
        continue
    gen, seed = m.group(3), int(m.group(4))
    for line in open(f):
        p = line.split()
        if len(p) < 14 or not p[0].isdigit() or not p[1].startswith("tau="):
            continue
        tau = p[1].split(",")[0][4:]
        code = re.search(r"n_offsets=(\d+)", p[1])
        if m.group(1) in ("flat", "verify"):
            name = NAMES.get(int(code.group(1)) - 16 if code else 0)
        elif m.group(1) == "sink":
            name = SINK if "sink=False" in p[1] else NAMES[0]
        else:
            name = f"spread {m.group(2)}"
        ratio, ratio_f, p1, spans = p[5], p[6], p[8], p[11]
        rows.setdefault((name, tau), {})[(gen, seed)] = f"{ratio} ({ratio_f}) / {float(p1):.3f} / {spans.split('/')[0]}"
cols = [(g, s) for g in ("peaked", "structured") for s in (0, 1, 2)]
print("| variant | tau | " + " | ".join(f"{'`peaked`' if g == 'peaked' else 'project'} s{s}" for g, s in cols) + " |")
print("|---|---|" + "---|" * len(cols))
order = list(NAMES.values()) + ["spread cap8", "spread trunc", SINK]
for name, tau in sorted(rows, key=lambda r: (order.index(r[0]) if r[0] in order else 99, r[1])):
    r = rows[(name, tau)]
    print(f"| {name} | {tau} | " + " | ".join(r.get(c, "") for c in cols) + " |")
