"""Experiment (reference only, not in the dialect): per-row calibrations of the two-level scores for the independent
generator's excess density (issue 17, session 11), run through the fidelity harness.

    python3 flat_refine.py -- <python -m unisparse.fidelity arguments>

A config's n_offsets carries the variant: n_offsets = 16 + code (16 slash offsets are always used; n_offsets is in
the harness's cache key for the refinement, tau is not). The baseline (code 0) is the `peaked` preset with
refine_norm. Codes 1-3 are ORACLES (they read the dense block masses, so they are upper bounds, not estimators):

    0  baseline: twolevel.refine with refine_norm
    1  oracle forced share: the baseline's row rescaled so that its forced blocks (sink, diagonal, local) hold the
       true forced share, the non-forced blocks keeping their estimated shape
    2  oracle ranking: the baseline's forced share, the non-forced blocks in the true shape
    3  oracle: the true block masses (the floor with forced blocks)
    4-6  oracle verification: the baseline's top 4 / 8 / 16 non-forced blocks take their true mass relative to the
       true forced mass, times the baseline's forced share; the other blocks keep the baseline's score
    21 = 19 guarded by the first pass's outlier query rows (outlier_rows_share)
    19-20 oracle verification of the top 4 / 8 blocks from the probe rows' true masses only (8 rows a block)
    13-16 as 7-12 (GUARDED), each block at least the first pass's outlier query rows' share (outlier_rows_share)
    7-12 verification by the probe rows (an estimator): the same with the probe rows' exact mass on the block's keys
       relative to the forced keys; VERIFY gives M and which keys (the first pass's outlier tokens or all)
"""

import os
import runpy
import sys

import numpy as np

sys.path.insert(0, "python")
from unisparse.reference import twolevel  # noqa: E402
from unisparse.reference._common import _default_scale  # noqa: E402

_orig_refine = twolevel.refine
_truth = {}


def true_block_mass(q, k, block, scale, rows=None):
    """[B, Hq, NB, NB]: the mean over each query block's rows (all, or ``rows [NB, r]``, -1 for none) of the dense
    softmax mass per key block (causal)."""
    key = (q.shape, float(q[0, 0, -1, 0]), float(k[0, 0, -1, 0]), rows is None)
    if key in _truth:
        return _truth[key]
    B, Hq, N, D = q.shape
    G = Hq // k.shape[1]
    NB = -(-N // block)
    T = np.zeros((B, Hq, NB, NB))
    for b in range(B):
        for h in range(Hq):
            kf = k[b, h // G].astype(np.float64)
            for I in range(NB):
                r0, r1 = I * block, min(N, (I + 1) * block)
                ri = np.arange(r0, r1) if rows is None else rows[I][rows[I] >= 0]
                x = (q[b, h, ri].astype(np.float64) @ kf[:r1].T) * scale
                x = np.where(np.arange(r1)[None, :] > ri[:, None], -np.inf, x)
                p = np.exp(x - x.max(1, keepdims=True))
                p /= p.sum(1, keepdims=True)
                pad = np.zeros((len(ri), (I + 1) * block))
                pad[:, :r1] = p
                T[b, h, I, : I + 1] = pad.reshape(len(ri), I + 1, block).sum(-1).mean(0)
    _truth[key] = T
    return T


def forced_mask(NB, local_blocks, sink):
    Iq, Jk = np.arange(NB)[:, None], np.arange(NB)[None, :]
    f = (Jk <= Iq) & (Jk >= np.maximum(0, Iq - local_blocks))
    return f | (Jk == 0) if sink else f


def refine_config(s, q, k, cfg, scale=None, **overrides):
    code = max(0, cfg.n_offsets - 16)
    scale = _default_scale(scale, q.shape[-1])
    kw = dict(
        c_h=cfg.c_h,
        local_blocks=cfg.local_blocks,
        sink=cfg.sink,
        n_offsets=16,
        rows_per_block=cfg.rows_per_block,
        width=cfg.width,
        refine_norm=cfg.refine_norm,
    )
    x = _orig_refine(s, q, k, cfg.block, cfg.last_q, scale=scale, **kw)
    if code == 0:
        return x
    NB = x.shape[-1]
    F = forced_mask(NB, cfg.local_blocks, cfg.sink)
    vis = np.tril(np.ones((NB, NB), bool))
    T = true_block_mass(q, k, cfg.block, scale)
    T = T.reshape(T.shape[0], -1, cfg.c_h, NB, NB).mean(2)
    x = np.where(vis, x, 0.0)
    x = x / x.sum(-1, keepdims=True)
    xf = np.where(F, x, 0).sum(-1, keepdims=True)
    tf = np.where(F, T, 0).sum(-1, keepdims=True)
    if code == 1:
        return np.where(F, x * tf / xf, x * (1 - tf) / np.maximum(1 - xf, 1e-300))
    if code == 2:
        return np.where(F, x, T * (1 - xf) / np.maximum(1 - tf, 1e-300))
    if code == 3:
        return T
    if code in (4, 5, 6):
        # the top-M non-forced blocks of the baseline take their true mass relative to the forced blocks, times the
        # baseline's forced share (what an exact probe of the whole block against the forced keys would give)
        M = {4: 4, 5: 8, 6: 16}[code]
        rank = np.argsort(np.argsort(-np.where(F | ~vis, -np.inf, x), -1, kind="stable"), -1, kind="stable")
        top = (rank < M) & ~F & vis
        return np.where(top, T * xf / np.maximum(tf, 1e-300), x)
    if code in (19, 20, 21):
        # the oracle verification of the top 4 / 8 blocks from the probe rows' true masses alone (8 rows a block);
        # 21: top 4, guarded by the first pass's outlier rows
        M = {19: 4, 20: 8, 21: 4}[code]
        probes = twolevel.probe_rows(q.shape[2], cfg.block, cfg.rows_per_block)
        T8 = true_block_mass(q, k, cfg.block, scale, rows=probes)
        t8f = np.where(F, T8, 0).sum(-1, keepdims=True)
        rank = np.argsort(np.argsort(-np.where(F | ~vis, -np.inf, x), -1, kind="stable"), -1, kind="stable")
        top = (rank < M) & ~F & vis
        out = np.where(top, T8 * xf / np.maximum(t8f, 1e-300), x)
        return np.maximum(out, outlier_rows_share(s, q, k, cfg, scale)) if code == 21 else out
    if code in VERIFY:
        M, keys = VERIFY[code]
        return verify(x, q, k, cfg, scale, M, keys, F, vis)
    if code in GUARDED:
        M, keys = GUARDED[code]
        v = verify(x, q, k, cfg, scale, M, keys, F, vis)
        return np.maximum(v, outlier_rows_share(s, q, k, cfg, scale))
    raise ValueError(code)


#: code -> (M, which keys of the top-M blocks the probe rows read: "outlier" = the first pass's outlier tokens of the
#: block's key composites, "all" = every key of the block)
VERIFY = {7: (4, "outlier"), 8: (8, "outlier"), 9: (4, "all"), 10: (8, "all"), 11: (16, "outlier"), 12: (2, "all")}


#: code -> (M, keys) of verify, the result guarded by the first pass's outlier query rows (outlier_rows_share)
GUARDED = {13: (4, "all"), 14: (8, "outlier"), 15: (4, "outlier"), 16: (16, "outlier")}


def outlier_rows_share(s, q, k, cfg, scale):
    """The first pass's outlier query rows alone: per query block the max over its composites of the outlier row's
    softmax over the key slots (exact row, no spread), weighted 1 / c_q as in the first pass, in the units of the
    normalised first-pass row (divided by sum_J s). A block that a minority row (a needle's) reads keeps at least
    that; zero extra multiply-adds (the first pass computes these softmaxes)."""
    from unisparse.reference import outlier

    qc = outlier.compress_outlier(q, cfg.c_q, cfg.q_outliers, head_factor=cfg.c_h, spread=True)
    qc[:, :, :, 0] = qc[:, :, :, 1]  # the rest slot replaced by the outlier row: the composite is that row
    qc[:, :, :, -1] = 0.0
    kc = outlier.compress_outlier(
        k, cfg.c_k, cfg.k_outliers, head_factor=cfg.c_h, kv_group=q.shape[1] // k.shape[1], hot=1, queries=q
    )
    so = outlier.block_score(qc, kc, cfg.block, cfg.c_q, cfg.c_k, causal=True, scale=scale, query_reduce="max")
    s = np.asarray(s, dtype=np.float64)
    return so / cfg.c_q / s.sum(-1, keepdims=True)


def outlier_tokens(q, k, c_k, k_outliers, G):
    """[B, Hq, Tk, r] the tokens compress_outlier keeps apart in every key composite of every query head (one hot,
    the rest rare; the same choice as the reference: c_h = 1, kv_group = G)."""
    B, Hq, N, D = q.shape
    T = -(-N // c_k)
    out = np.zeros((B, Hq, T, k_outliers), dtype=np.int64)
    for b in range(B):
        for h in range(Hq):
            kf = k[b, h // G].astype(np.float64)
            probe = q[b, h].astype(np.float64).mean(0)
            score = ((kf - kf.mean(0)) ** 2).sum(-1)
            heat = kf @ probe
            pad = T * c_k - N
            score = np.concatenate([score, np.full(pad, -np.inf)]).reshape(T, c_k)
            heat = np.concatenate([heat, np.full(pad, -np.inf)]).reshape(T, c_k)
            hot = np.argmax(heat, -1)
            score[np.arange(T), hot] = -np.inf
            rare = np.argsort(-score, -1, kind="stable")[:, : k_outliers - 1]
            tok = np.concatenate([hot[:, None], rare], -1) + (np.arange(T) * c_k)[:, None]
            out[b, h] = np.minimum(tok, N - 1)
    return out


def verify(x, q, k, cfg, scale, M, keys, F, vis):
    """The top-M non-forced blocks of x (normalised rows) verified by the probe rows: each probe row's exact
    softmax over the forced keys and the probed keys (``keys`` of the top-M blocks) gives the forced blocks' and
    the verified blocks' shares of what the first pass leaves outside the other blocks (1 - rest, rest = x's mass
    in the unverified non-forced blocks), averaged over the probe rows; the other blocks keep x. c_h = 1 only."""
    assert cfg.c_h == 1
    B, Hq, N, D = q.shape
    G = Hq // k.shape[1]
    block, NB = cfg.block, x.shape[-1]
    rows = twolevel.probe_rows(N, block, cfg.rows_per_block)
    valid = rows >= 0
    xf = np.where(F, x, 0).sum(-1)  # [B, Hq, NB]
    cand_score = np.where(F | ~vis, -np.inf, x)
    top = np.argsort(-cand_score, -1, kind="stable")[..., :M]  # [B, Hq, NB, M]
    tok = outlier_tokens(q, k, cfg.c_k, cfg.k_outliers, G) if keys == "outlier" else None
    per = block // cfg.c_k
    out = x.copy()
    for b in range(B):
        for h in range(Hq):
            kf = k[b, h // G].astype(np.float64)
            for I in range(2, NB):
                Js = [J for J in top[b, h, I] if np.isfinite(cand_score[b, h, I, J])]
                if not Js:
                    continue
                if keys == "outlier":
                    kj = np.unique(tok[b, h, np.concatenate([np.arange(J * per, (J + 1) * per) for J in Js])].ravel())
                else:
                    kj = np.concatenate([np.arange(J * block, min(N, (J + 1) * block)) for J in Js])
                ri = rows[I][valid[I]]
                qi = q[b, h, ri].astype(np.float64)
                lo = max(0, I - cfg.local_blocks) * block
                # each probe row's exact softmax over the forced keys and the probed keys, scaled to the share of
                # the row the first pass leaves outside the unverified blocks (1 - rest): no division by the
                # forced mass alone
                rest = 1.0 - xf[b, h, I] - x[b, h, I, Js].sum()
                Pm = np.zeros(NB)
                Fm = 0.0
                for n, i in enumerate(ri):
                    fi = np.arange(lo, i + 1)
                    if cfg.sink:
                        fi = np.union1d(np.arange(block), fi)
                    lf = (kf[fi] @ qi[n]) * scale
                    lp = (kf[kj] @ qi[n]) * scale
                    mx = max(lf.max(), lp.max())
                    ef, ep = np.exp(lf - mx), np.exp(lp - mx)
                    z = ef.sum() + ep.sum()
                    Fm += ef.sum() / z / len(ri)
                    np.add.at(Pm, kj // block, ep / z / len(ri))
                for J in Js:
                    out[b, h, I, J] = (1.0 - rest) * Pm[J]
                # the forced blocks keep their relative shape, scaled to their exact share
                fb = F[I] & vis[I]
                out[b, h, I, fb] = x[b, h, I, fb] * (1.0 - rest) * Fm / max(xf[b, h, I], 1e-300)
    return out


twolevel.refine_config = refine_config
if os.environ.get("FLAT_NO_RUN") is None:
    sys.argv = ["unisparse.fidelity"] + sys.argv[sys.argv.index("--") + 1 :]
    runpy.run_module("unisparse.fidelity", run_name="__main__")
