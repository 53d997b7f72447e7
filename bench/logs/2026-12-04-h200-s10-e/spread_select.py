"""Experiment (reference only, not in the dialect): a top-p budget per row that follows how spread the row's
estimate is, run through the fidelity harness. diagnose --generator peaked found the rows that stop short in heads
without a sink (flat rows) while rows with a sink over-keep, so: frac = exp(entropy of the row's estimated block
shares) / visible blocks, and 1 - tau_row = (1 - tau) * (median frac / frac) ** alpha (the median row keeps tau; a
flatter row a larger tau), tau_row rounded to the nearest of LEVELS and each level's rows taken from the reference's
block_select at that tau.

    python3 spread_select.py -- <python -m unisparse.fidelity arguments>

A config's tau carries alpha in its fourth decimal (0.9951: ALPHAS[1]). With SPREAD=forced in the environment the
row's signal is instead the estimate's share in the forced blocks (sink, diagonal, local): 1 - tau_row = (1 - tau) *
(share / median share) ** alpha, so a row whose estimate puts little on its forced blocks (a head without a sink)
gets a larger tau.
"""

import os
import runpy
import sys

import numpy as np

sys.path.insert(0, "python")
from unisparse import reference as ref  # noqa: E402
from unisparse.reference import selection  # noqa: E402

ALPHAS = (0.0, 0.5, 1.0, 2.0)
LEVELS = np.array([0.98, 0.985, 0.99, 0.993, 0.995, 0.996, 0.997, 0.998, 0.999, 0.9995])
_orig = selection.block_select


def block_select(s, tau, local_blocks=1, sink=True, min_blocks=0, max_blocks=0, causal=True):
    code = round(float(tau) * 10000) % 10
    base = round(float(tau), 3)
    if not code:
        return _orig(s, base, local_blocks, sink, min_blocks, max_blocks, causal)
    s = np.asarray(s, dtype=np.float64)
    NBq, NBk = s.shape[-2:]
    visible, forced = selection._visible_and_forced(NBq, NBk, local_blocks, sink, causal)
    p = np.where(visible, np.maximum(s, 0.0), 0.0)
    p = p / np.maximum(p.sum(-1, keepdims=True), 1e-300)
    with np.errstate(divide="ignore", invalid="ignore"):
        h = -np.where(p > 0, p * np.log(p), 0.0).sum(-1)
    frac = np.exp(h) / np.maximum(visible.sum(-1), 1)
    ref_frac = np.median(frac)
    tau_row = 1.0 - (1.0 - base) * (ref_frac / frac) ** ALPHAS[code]
    if os.environ.get("SPREAD") == "forced":
        share = np.maximum(np.where(forced, p, 0.0).sum(-1), 1e-12)
        tau_row = 1.0 - (1.0 - base) * (share / np.median(share)) ** ALPHAS[code]
    level = np.abs(tau_row[..., None] - LEVELS).argmin(-1)
    counts = indices = None
    for i in np.unique(level):
        c, x = _orig(s, float(LEVELS[i]), local_blocks, sink, min_blocks, max_blocks, causal)
        if counts is None:
            counts, indices = c.copy(), x.copy()
        rows = level == i
        counts[rows] = c[rows]
        indices[rows] = x[rows]
    return counts, indices


ref.block_select = block_select
sys.argv = ["unisparse.fidelity"] + sys.argv[sys.argv.index("--") + 1 :]
runpy.run_module("unisparse.fidelity", run_name="__main__")
