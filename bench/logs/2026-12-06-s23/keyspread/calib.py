"""Experiment (reference only, an oracle): the two-level refinement with the probe rows' exact partition function.

At 128K with Hq 8 / Hkv 2 the default misses the tail on the project's generator at peak 2.5, and the low rows'
missed mass is background noise (docs/Fidelity.md, "The default on issue 17's grid"): the first pass gives the
background too little of a row, so its forced share (the sink and local blocks) is too high and top-p stops before
the background. The probe rows see the forced keys exactly; if they also knew their whole row's exponential sum
Z_all (here exactly, over every key they see: N^2 D / 16 multiply-adds a head, an oracle; a sample of keys would be
the affordable form), the first pass's row could be calibrated to it. Per query block I, with phi_I the mean over
the group's heads and the block's probe rows of Z_forced / Z_all:

  E'[I, J]  = E[I, J] phi_I                    the candidates' share of the row (E: relative to the forced keys)
  rho_I     = max(0, 1 - phi_I - sum_J E'[I, J])   the rest's share
  s'[I, J]  = sn phi_I / f_I  on forced blocks, sn rho_I / (1 - f_I) elsewhere (sn = s / sum s, f_I its forced share)
  scores    = max(s', E')

    PYTHONPATH=python python3 calib.py -- <python -m unisparse.fidelity arguments>   (every two-level config)
"""

import runpy
import sys

import numpy as np

sys.path.insert(0, "python")
from unisparse.reference import twolevel  # noqa: E402
from unisparse.reference._common import _as_4d, _ceil_div, _default_scale  # noqa: E402


def forced_share(q, k, block, rows_per_block, local_blocks, sink, c_h=1, scale=None):
    """phi [B, Hg, NB]: mean over the group's heads and the block's probe rows of Z_forced / Z_all."""
    B, Hq, N, D = q.shape
    G = Hq // k.shape[1]
    scale = _default_scale(scale, D)
    Hg, NB = Hq // c_h, _ceil_div(N, block)
    rows = twolevel.probe_rows(N, block, rows_per_block)  # [NB, r]
    valid = rows >= 0
    ri = np.where(valid, rows, 0).ravel()
    I = np.repeat(np.arange(NB), rows.shape[1])
    lo = np.maximum(0, I - local_blocks) * block
    j = np.arange(N)
    phi = np.zeros((B, Hg, NB))
    for b in range(B):
        for h in range(Hq):
            kf = k[b, h // G].astype(np.float64)
            ratio = np.empty(len(ri))
            for c0 in range(0, len(ri), 512):
                sl = slice(c0, c0 + 512)
                x = (q[b, h, ri[sl]].astype(np.float64) @ kf.T) * scale  # [n, N]
                seen = j[None, :] <= ri[sl, None]
                x = np.where(seen, x, -np.inf)
                m = x.max(-1, keepdims=True)
                e = np.exp(x - m)
                forced = seen & ((j[None, :] >= lo[sl, None]) | ((j[None, :] < block) & sink))
                ratio[sl] = np.where(forced, e, 0).sum(-1) / e.sum(-1)
            ratio = np.where(valid.ravel(), ratio, 0).reshape(rows.shape)
            phi[b, h // c_h] += ratio.sum(-1) / np.maximum(valid.sum(-1), 1) / c_h
    return phi


_refine = twolevel.refine


def refine(
    s,
    q,
    k,
    block,
    last_q,
    c_h=1,
    scale=None,
    local_blocks=1,
    sink=True,
    n_offsets=16,
    rows_per_block=8,
    width=1,
    offsets=None,
    refine_norm=False,
):
    _, slash = twolevel.last_rows(q, k, last_q, c_h=c_h, scale=scale)
    offs = twolevel.slash_offsets(slash, n_offsets, local_blocks * block)
    E = twolevel.slash_scores(q, k, offs, block, rows_per_block, local_blocks, sink, c_h=c_h, width=width, scale=scale)
    phi = forced_share(_as_4d("q", q), _as_4d("k", k), block, rows_per_block, local_blocks, sink, c_h, scale)
    s = _as_4d("s", s).astype(np.float64)
    NBq, NBk = s.shape[2:]
    Iq, Jk = np.arange(NBq)[:, None], np.arange(NBk)[None, :]
    forced = (Jk <= Iq) & (Jk >= np.maximum(0, Iq - local_blocks))
    if sink:
        forced = forced | (Jk == 0)
    with np.errstate(invalid="ignore", divide="ignore"):
        sn = s / s.sum(-1, keepdims=True)
        f = np.where(forced, sn, 0.0).sum(-1, keepdims=True)
        Ep = E * phi[..., None]
        rho = np.maximum(0.0, 1.0 - phi[..., None] - Ep.sum(-1, keepdims=True))
        out = np.where(forced, sn * phi[..., None] / f, sn * rho / (1.0 - f))
    out = np.where(np.isfinite(out), out, sn)
    return np.maximum(out, Ep)


twolevel.refine = refine
sys.argv = ["unisparse.fidelity"] + sys.argv[sys.argv.index("--") + 1 :]
runpy.run_module("unisparse.fidelity", run_name="__main__")
