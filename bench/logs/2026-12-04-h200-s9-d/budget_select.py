"""Experiment (reference only, not in the dialect): top-p whose dropped-mass budget shrinks with the row's visible
blocks, ``1 - tau_row = (1 - tau) * min(1, sqrt(R / n_visible))``, run through the fidelity harness.

    python3 budget_select.py R -- <python -m unisparse.fidelity arguments>

``reference.block_select`` is replaced for the run by a copy whose threshold is ``float32(tau_row) * total`` per row
(everything else as the reference: forced blocks, min/max blocks, NaN rows, the visiting order). R = 0 is the plain
reference. Configs with ``tau`` in ``PLAIN`` keep the plain rule in the same run (the comparison).
"""

import math
import sys

import numpy as np

sys.path.insert(0, "python")
from unisparse import reference as ref  # noqa: E402
from unisparse.fidelity import harness  # noqa: E402
from unisparse.reference import selection  # noqa: E402

R = int(sys.argv[1])
PLAIN = {0.99, 0.997}
_orig = selection.block_select


def block_select(s, tau, local_blocks=1, sink=True, min_blocks=0, max_blocks=0, causal=True):
    if R == 0 or float(tau) in PLAIN or float(tau) >= 1.0 or min_blocks or max_blocks:
        return _orig(s, tau, local_blocks, sink, min_blocks, max_blocks, causal)
    s = np.asarray(s)
    B, Hg, NBq, NBk = s.shape
    visible, forced = selection._visible_and_forced(NBq, NBk, local_blocks, sink, causal)
    n_vis = visible.sum(-1)
    tau_row = np.float32([1.0 - (1.0 - float(tau)) * min(1.0, math.sqrt(R / max(1, n))) for n in n_vis])  # [NBq]
    shape = s.shape
    J = np.broadcast_to(np.arange(NBk), shape)
    s32 = s.astype(np.float32)
    vis_b = np.broadcast_to(visible, shape)
    s_vis = np.where(vis_b, s32, np.float32(0))
    total = np.cumsum(s_vis, axis=-1, dtype=np.float32)[..., -1]
    threshold = tau_row[None, None, :] * total
    category = np.broadcast_to(np.where(forced, 0, np.where(visible, 1, 2)), shape)
    neg = np.where(category == 1, -s32, np.float32(0))
    order = np.lexsort((J, neg, category), axis=-1)
    vals = np.take_along_axis(s_vis, order, axis=-1)
    kept_after = np.cumsum(vals, axis=-1, dtype=np.float32)
    kept_before = np.concatenate([np.zeros(shape[:-1] + (1,), dtype=np.float32), kept_after[..., :-1]], axis=-1)
    pos = np.arange(NBk)
    take = (kept_before < threshold[..., None]) | np.isnan(total)[..., None]
    take &= pos < n_vis[:, None]
    take |= pos < forced.sum(-1)[:, None]
    n_sel = np.cumprod(take, axis=-1).sum(axis=-1)
    selected = np.zeros(shape, dtype=bool)
    np.put_along_axis(selected, order, pos < n_sel[..., None], axis=-1)
    counts = selected.sum(-1).astype(np.int32)
    asc = np.argsort(~selected, axis=-1, kind="stable")
    indices = np.where(np.arange(NBk) < counts[..., None], asc, -1).astype(np.int32)
    return counts, indices


ref.block_select = block_select
harness.ref.block_select = block_select
from unisparse.fidelity.report import main  # noqa: E402

sys.argv = ["python -m unisparse.fidelity"] + sys.argv[sys.argv.index("--") + 1 :]
main()
