"""Experiment (reference only, not in the dialect): the two-level refinement with vertical lines as well as slash
lines, run through the fidelity harness. diagnose --generator peaked found one-token vertical lines 39-49% of the low
rows' missed mass in heads without a sink; the last queries' evidence (twolevel.last_rows) already splits into
vertical and slash, and the refinement uses only the slash part. Here the NV keys of largest vertical evidence
(outside the sink block) are candidates of every probe row that sees them (outside its forced keys), their mass
relative to the forced keys added to the slash refinement's E (a key that is also a slash candidate counts twice:
rare, and an experiment).

    python3 vertical_refine.py -- <python -m unisparse.fidelity arguments>

A config's n_offsets carries NV: n_offsets = 16 + i uses 16 slash offsets and NVS[i % 4] vertical keys (n_offsets
is in the harness's cache key for the refinement, tau is not); i >= 4 also normalises the refinement: R = E f / (1 +
e f) with f the first pass's forced share and e = sum_J E (the row's candidate mass relative to its forced keys),
instead of R = E f, which the first try showed exploding where the first pass misses a vertical line by e^40 (a
block of R >> 1 then takes the whole row).
"""

import runpy
import sys

import numpy as np

sys.path.insert(0, "python")
from unisparse.reference import twolevel  # noqa: E402
from unisparse.reference._common import _default_scale  # noqa: E402

NVS = (0, 8, 32, 128)


def vertical_scores(q, k, verticals, block, rows_per_block, local_blocks, sink, c_h, scale):
    """E_v [B, Hg, NB, NB]: each block's mass on the vertical keys, as slash_scores computes it for the slash
    candidates (mean over the group's heads and the block's probe rows, relative to the forced keys)."""
    B, Hq, N, D = q.shape
    G = Hq // k.shape[1]
    Hg = Hq // c_h
    NB = -(-N // block)
    rows = twolevel.probe_rows(N, block, rows_per_block)
    valid = rows >= 0
    n_valid = np.maximum(valid.sum(-1), 1)
    ri = np.where(valid, rows, 0).ravel()
    lo = (np.maximum(0, np.arange(NB)[:, None] - local_blocks) * block + 0 * rows).ravel()
    E = np.zeros((B, Hg, NB, NB))
    for b in range(B):
        for g in range(Hg):
            V = verticals[b, g]
            V = V[V >= 0]
            if not V.size:
                continue
            ok = (V[None, :] <= ri[:, None]) & valid.ravel()[:, None]
            forced = ((V[None, :] // block == 0) & sink) | ((V[None, :] >= lo[:, None]) & (V[None, :] <= ri[:, None]))
            ok &= ~forced
            for h in range(g * c_h, (g + 1) * c_h):
                kf = k[b, h // G].astype(np.float64)
                qi = q[b, h, ri].astype(np.float64)
                xv = (qi @ kf[V].T) * scale
                lse = np.empty(len(qi))
                for n in range(len(qi)):
                    fi = np.arange(lo[n], ri[n] + 1)
                    if sink:
                        fi = np.union1d(np.arange(min(block, ri[n] + 1)), fi)
                    xf = (kf[fi] @ qi[n]) * scale
                    mx = xf.max()
                    lse[n] = mx + np.log(np.exp(xf - mx).sum())
                w = np.where(ok, np.exp(xv - lse[:, None]), 0.0).reshape(NB, -1, len(V))
                for a in range(NB):
                    np.add.at(E[b, g, a], np.broadcast_to(V // block, w[a].shape).ravel(), (w[a] / n_valid[a]).ravel())
            E[b, g] /= c_h
    return E


def refine_config(s, q, k, cfg, scale=None, **overrides):
    code = max(0, cfg.n_offsets - 16)
    nv, norm = NVS[code % 4], code >= 4
    scale = _default_scale(scale, q.shape[-1])
    vert, slash = twolevel.last_rows(q, k, cfg.last_q, c_h=cfg.c_h, scale=scale)
    offs = twolevel.slash_offsets(slash, 16, cfg.local_blocks * cfg.block)
    E = twolevel.slash_scores(
        q, k, offs, cfg.block, cfg.rows_per_block, cfg.local_blocks, cfg.sink, c_h=cfg.c_h, width=cfg.width, scale=scale
    )
    if nv:
        ev = np.where(np.arange(q.shape[2]) >= cfg.block, vert, -np.inf)
        order = np.argsort(-ev, axis=-1, kind="stable")[..., :nv]
        V = np.where(np.take_along_axis(ev, order, axis=-1) > 0, order, -1)
        E = E + vertical_scores(q, k, V, cfg.block, cfg.rows_per_block, cfg.local_blocks, cfg.sink, cfg.c_h, scale)
    s = np.asarray(s, dtype=np.float64)
    NBq, NBk = s.shape[2:]
    Iq, Jk = np.arange(NBq)[:, None], np.arange(NBk)[None, :]
    forced = (Jk <= Iq) & (Jk >= np.maximum(0, Iq - cfg.local_blocks))
    if cfg.sink:
        forced = forced | (Jk == 0)
    with np.errstate(invalid="ignore", divide="ignore"):
        share = np.where(forced, s, 0.0).sum(-1, keepdims=True) / s.sum(-1, keepdims=True)
    share = np.nan_to_num(share, nan=0.0)
    R = E * share
    if norm:
        R = R / (1.0 + R.sum(-1, keepdims=True))
    return twolevel.combine(s, R)


twolevel.refine_config = refine_config
sys.argv = ["unisparse.fidelity"] + sys.argv[sys.argv.index("--") + 1 :]
runpy.run_module("unisparse.fidelity", run_name="__main__")
