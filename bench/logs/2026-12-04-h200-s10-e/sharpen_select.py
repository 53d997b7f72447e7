"""Experiment (reference only, not in the dialect): top-p on sharpened scores, s ** gamma per row, run through the
fidelity harness, to test whether the estimate's over-kept rows (rank_split.py: most rows reach recall 1.0 while a
few fall short) come from an estimate flatter than the truth.

    python3 sharpen_select.py -- <python -m unisparse.fidelity arguments>

``reference.block_select`` is wrapped for the run: a config's tau carries gamma in its fourth decimal (tau 0.9951 is
tau 0.995 at gamma GAMMAS[1]); the wrapper raises the scores to gamma and calls the reference with the rounded tau.
"""

import runpy
import sys

import numpy as np

sys.path.insert(0, "python")
from unisparse import reference as ref  # noqa: E402
from unisparse.reference import selection  # noqa: E402

GAMMAS = (1.0, 1.25, 1.5, 2.0)
_orig = selection.block_select


def block_select(s, tau, local_blocks=1, sink=True, min_blocks=0, max_blocks=0, causal=True):
    code = round(float(tau) * 10000) % 10
    base = round(float(tau), 3)
    s = np.asarray(s, dtype=np.float64)
    if code:
        s = np.power(np.maximum(s, 0.0), GAMMAS[code])
    return _orig(s, base, local_blocks, sink, min_blocks, max_blocks, causal)


ref.block_select = block_select
sys.argv = ["unisparse.fidelity"] + sys.argv[sys.argv.index("--") + 1 :]
runpy.run_module("unisparse.fidelity", run_name="__main__")
