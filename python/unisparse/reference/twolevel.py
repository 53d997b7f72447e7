"""The two-level estimation of the NumPy reference: a first pass ranks the
blocks, exact logits of the last queries refine them.

The composite estimators (:func:`unisparse.reference.block_score`, the
outlier estimator of :mod:`unisparse.reference.outlier`) see a structure
only through composites; a **slash line** (query ``i`` attending to key
``i - o``, a positional echo at a fixed offset) is averaged away by any
pooling of consecutive queries or keys, because its phase changes from
token to token. The refinement reads it, and the vertical lines, from
exact attention rows, as MInference's vertical-slash estimate does:

1. :func:`last_rows`: the exact softmax of the last ``m`` queries of the
   sequence against every key they see, averaged over the query heads of
   the head group, gives the **vertical** evidence ``vert[j]`` (mean mass
   on key ``j``) and the **slash** evidence ``slash[d]`` (mean mass at
   offset ``d = i - j``), each exact probability counted once, for the
   one of the two that explains it better;
2. :func:`refine_scores`: for query block ``I`` and key block ``J`` the
   mean over the block's rows ``i`` of the evidence of the keys
   ``j in J, j <= i`` it sees, ``vert[j] + slash[i - j]``, each row
   divided by its sum (the keys that block ``I`` cannot see drop out of
   its softmax);
3. :func:`combine`: the block scores of the first pass ``s``, each row
   divided by its sum, and ``R``: ``max(s / sum_J s, R)``. A block that
   either level finds heavy ranks high; the top-p of
   :func:`unisparse.reference.block_select` then runs on these scores.

Everything is float64; causal only (the last queries of a sequence see
every key; non-causal attention has no last query that does). A
configuration asks for it with ``Config(refine="slash", last_q=...,
n_offsets=..., rows_per_block=..., width=...)`` (the defaults 16, 16, 8, 1
are the parameters measured in docs/Fidelity.md);
:func:`unisparse.reference.unisparse_attention` and the fidelity harness
then refine with :func:`refine`, and the compiled paths with the op
``unisparse.slash_refine``, of which this module is the oracle.
"""

from __future__ import annotations

import numpy as np

from ._common import _as_4d, _ceil_div, _check_pos_int, _default_scale

__all__ = [
    "last_rows",
    "slash_offsets",
    "probe_rows",
    "slash_scores",
    "combine",
    "refine",
]


def last_rows(q, k, last_q: int, c_h: int = 1, scale=None):
    """``(vert, slash)``, each float64 ``[B, Hg, N]`` (``Hg = Hq / c_h``),
    from the ``m = min(last_q, N)`` last queries ``i = N - m .. N - 1``.

    For every query head ``h`` (kv head ``h / (Hq / Hkv)``), ``p_h[i, j] =
    softmax_j(scale * q[h, i] . k[j])`` over ``j <= i``, and ``p[i, j]`` its
    mean over the ``c_h`` heads of group ``g`` divided by ``m`` (so that
    ``p`` sums to 1). The first evidence is ``v0[j] = sum_i p[i, j]`` (a
    key every row reads: a vertical line) and ``s0[d] = sum_i p[i, i - d]``
    (an offset every row reads: a slash line). Each pair ``(i, j)`` is then
    given to the one that explains it better: ``vert[j] = sum_i p[i, j]``
    over the pairs with ``v0[j] >= s0[i - j]``, ``slash[d] = sum_i p[i, i -
    d]`` over the others (a vertical line read by the ``m`` rows is also
    ``m`` offsets of weight ``1/m``; without this step it would reappear as
    a slash line there, and a slash line as ``m`` vertical keys). ``vert +
    slash`` sums to 1 over their entries."""
    q = _as_4d("q", q)
    k = _as_4d("k", k)
    m = _check_pos_int("last_q", last_q)
    c_h = _check_pos_int("c_h", c_h)
    B, Hq, N, D = q.shape
    Hkv = k.shape[1]
    if k.shape[0] != B or k.shape[2] != N or k.shape[3] != D or Hq % Hkv or Hq % c_h:
        raise ValueError(f"q {q.shape} and k {k.shape} are not a query / key pair with c_h = {c_h}")
    scale = _default_scale(scale, D)
    m = min(m, N)
    Hg = Hq // c_h
    vert = np.zeros((B, Hg, N))
    slash = np.zeros((B, Hg, N))
    if m == 0:
        return vert, slash
    rows = np.arange(N - m, N)
    j = np.arange(N)
    d = rows[:, None] - j[None, :]  # [m, N], >= 0 where visible
    vis = d >= 0
    dv = d[vis]
    G = Hq // Hkv
    norm = 1.0 / (m * c_h)
    for b in range(B):
        for g in range(Hg):
            ps = []
            for h in range(g * c_h, (g + 1) * c_h):
                x = (q[b, h, rows].astype(np.float64) @ k[b, h // G].astype(np.float64).T) * scale
                x = np.where(vis, x, -np.inf)
                p = np.exp(x - x.max(axis=1, keepdims=True))
                ps.append((p / p.sum(axis=1, keepdims=True))[vis])
            pv = np.sum(ps, axis=0) * norm  # the group's mean, on the visible (row, key) pairs
            jv = np.broadcast_to(j, (m, N))[vis]
            v0 = np.bincount(jv, weights=pv, minlength=N)
            s0 = np.bincount(dv, weights=pv, minlength=N)
            to_vert = v0[jv] >= s0[dv]
            vert[b, g] = np.bincount(jv, weights=np.where(to_vert, pv, 0.0), minlength=N)
            slash[b, g] = np.bincount(dv, weights=np.where(to_vert, 0.0, pv), minlength=N)
    return vert, slash


def slash_offsets(slash, n_offsets: int, min_offset: int) -> np.ndarray:
    """``[B, Hg, n_offsets]`` int64: the offsets ``d > min_offset`` with the
    largest slash evidence (:func:`last_rows`), largest first (ties: the
    smaller offset); ``-1`` past the offsets that have any."""
    slash = np.asarray(slash, dtype=np.float64)
    B, Hg, N = slash.shape
    ev = np.where(np.arange(N) > min_offset, slash, -np.inf)
    order = np.argsort(-ev, axis=-1, kind="stable")[..., :n_offsets]
    top = np.take_along_axis(ev, order, axis=-1)
    out = np.where(top > 0, order, -1)
    if out.shape[-1] < n_offsets:
        out = np.concatenate([out, np.full((B, Hg, n_offsets - out.shape[-1]), -1)], axis=-1)
    return out


def probe_rows(N: int, block: int, rows_per_block: int) -> np.ndarray:
    """``[NB, r]`` the probe rows of every query block: ``r =
    rows_per_block`` rows evenly spaced, ``I * block + (2 t + 1) * block //
    (2 r)``; ``-1`` for a row past ``N`` (a partial last block)."""
    NB = _ceil_div(N, block)
    t = np.arange(rows_per_block)
    rows = np.arange(NB)[:, None] * block + ((2 * t + 1) * block // (2 * rows_per_block))[None, :]
    return np.where(rows < N, rows, -1)


def slash_scores(
    q,
    k,
    offsets,
    block: int,
    rows_per_block: int,
    local_blocks: int,
    sink: bool,
    c_h: int = 1,
    width: int = 1,
    scale=None,
):
    """``E [B, Hg, NB, NB]``: each block's mass on the keys of the slash
    ``offsets``, from exact logits of the probe rows, **relative to the
    forced blocks**.

    For probe row ``i`` (:func:`probe_rows`) of query block ``I`` and query
    head ``h`` of group ``g``, with ``x_j = scale * q[h, i] . k[j]``: the
    forced keys ``F`` are those of block 0 (with ``sink``) and of blocks
    ``max(0, I - local_blocks) .. I``, up to ``j <= i``; the candidate keys
    ``C`` are ``j = i - d + e`` for ``d`` in ``offsets[g]`` (``>= 0``) and
    ``e`` in ``-width .. width``, with ``0 <= j <= i``, not in ``F``, each
    key once. ``E[I, J] = mean_{h, i} sum_{j in C, j in J} exp(x_j) /
    sum_{j in F} exp(x_j)``, the mean over the group's heads and the
    block's probe rows (zero for a block without one)."""
    q = _as_4d("q", q)
    k = _as_4d("k", k)
    B, Hq, N, D = q.shape
    G = Hq // k.shape[1]
    scale = _default_scale(scale, D)
    Hg = Hq // c_h
    NB = _ceil_div(N, block)
    rows = probe_rows(N, block, rows_per_block)  # [NB, r]
    valid = rows >= 0
    n_valid = np.maximum(valid.sum(-1), 1)
    I = np.broadcast_to(np.arange(NB)[:, None], rows.shape)
    ri = np.where(valid, rows, 0)
    lo = np.maximum(0, I - local_blocks) * block  # the local forced keys are lo .. i

    def is_forced(j):  # j [NB, r, n] keys of the rows
        return ((j // block == 0) & sink) | ((j >= lo[..., None]) & (j <= ri[..., None]))

    # the forced keys of each valid row, as ranges: [0, block) with sink, [lo, i]
    fidx = []
    for a, t in np.ndindex(rows.shape):
        if not valid[a, t]:
            fidx.append(np.zeros(0, dtype=np.int64))
            continue
        local = np.arange(lo[a, t], ri[a, t] + 1)
        fidx.append(np.union1d(np.arange(min(block, ri[a, t] + 1)), local) if sink else local)
    E = np.zeros((B, Hg, NB, NB))
    for b in range(B):
        for g in range(Hg):
            offs = offsets[b, g][offsets[b, g] >= 0]
            e = np.arange(-width, width + 1)
            cand = (ri[..., None, None] - offs[None, None, :, None] + e[None, None, None, :]).reshape(NB, -1, 1)[..., 0]
            cand = cand.reshape(rows.shape + (-1,))  # [NB, r, n]
            ok = (cand >= 0) & (cand <= ri[..., None]) & valid[..., None]
            cand = np.where(ok, cand, 0)
            ok &= ~is_forced(cand)
            # each key once: drop a candidate equal to an earlier one of its row
            srt = np.sort(np.where(ok, cand, -1), axis=-1)
            cand_u = np.where(np.diff(srt, axis=-1, prepend=-2) != 0, srt, -1)
            ok_u = cand_u >= 0
            cand_u = np.where(ok_u, cand_u, 0)
            for h in range(g * c_h, (g + 1) * c_h):
                kf = k[b, h // G].astype(np.float64)
                qi = q[b, h, ri.ravel()].astype(np.float64)  # [NB*r, D]
                xc = np.einsum("nd,nkd->nk", qi, kf[cand_u.reshape(len(qi), -1)]) * scale
                lse = np.empty(len(qi))  # log of the forced keys' exponential sum
                for n, fi in enumerate(fidx):
                    if not fi.size:  # a probe row past N (its candidates are masked)
                        lse[n] = np.inf
                        continue
                    xf = (kf[fi] @ qi[n]) * scale
                    mx = xf.max()
                    lse[n] = mx + np.log(np.exp(xf - mx).sum())
                w = np.exp(xc - lse[:, None])
                w = np.where(ok_u.reshape(len(qi), -1), w, 0.0).reshape(rows.shape + (-1,))
                Jc = cand_u // block
                for a in range(NB):
                    np.add.at(E[b, g, a], Jc[a].ravel(), (w[a] / n_valid[a]).ravel())
            E[b, g] /= c_h
    return E


def combine(s, R) -> np.ndarray:
    """``max(s / sum_J s, R)`` per row of the first pass's block scores ``s
    [B, Hg, NBq, NBk]`` (a row with a zero sum is taken as it is; a row
    with a NaN becomes NaN, so the selection keeps every block of it as for
    any NaN score)."""
    s = _as_4d("s", s).astype(np.float64)
    R = np.asarray(R, dtype=np.float64)
    if R.shape != s.shape:
        raise ValueError(f"refinement {R.shape} and scores {s.shape} differ in shape")
    tot = s.sum(axis=-1, keepdims=True)
    with np.errstate(invalid="ignore", divide="ignore"):
        sn = np.where(tot == 0, s, s / np.where(tot == 0, 1.0, tot))
    out = np.maximum(sn, R)
    return np.where(np.isnan(sn), np.nan, out)


def refine(
    s,
    q,
    k,
    block: int,
    last_q: int,
    c_h: int = 1,
    scale=None,
    local_blocks: int = 1,
    sink: bool = True,
    n_offsets: int = 16,
    rows_per_block: int = 8,
    width: int = 1,
    offsets=None,
    refine_norm: bool = False,
) -> np.ndarray:
    """The two-level scores (causal): :func:`combine` of the first pass
    ``s`` with the slash refinement: the ``n_offsets`` offsets beyond the
    forced blocks (``d > local_blocks * block``) with the largest slash
    evidence of the ``last_q`` last queries (:func:`last_rows`,
    :func:`slash_offsets`), their mass per block from the probe rows
    relative to the forced blocks (:func:`slash_scores`), times the share of
    the forced blocks in the first pass's row: ``R[I, J] = E[I, J] *
    sum_{J' forced} s[I, J'] / sum_J' s[I, J']``. With ``refine_norm``
    each row of it is divided by one plus its sum, ``R[I, J] / (1 + sum_J'
    R[I, J'])``: ``R`` is the candidates' mass relative to the forced keys
    (times their share of the first pass), and so unbounded where the first
    pass misses mass; normalised it is the candidates' share of the forced
    keys, the candidates and the rest (the rest taken from the first pass),
    at most 1 a row. ``offsets`` ``[B, Hg, n_offsets]``, when given,
    replaces the offsets picked from the evidence (a check's
    alternative)."""
    if offsets is None:
        _, slash = last_rows(q, k, last_q, c_h=c_h, scale=scale)
        offs = slash_offsets(slash, n_offsets, local_blocks * block)
    else:
        offs = np.asarray(offsets, dtype=np.int64)
    E = slash_scores(q, k, offs, block, rows_per_block, local_blocks, sink, c_h=c_h, width=width, scale=scale)
    s = _as_4d("s", s).astype(np.float64)
    NBq, NBk = s.shape[2:]
    Iq = np.arange(NBq)[:, None]
    Jk = np.arange(NBk)[None, :]
    forced = (Jk <= Iq) & (Jk >= np.maximum(0, Iq - local_blocks))
    if sink:
        forced = forced | (Jk == 0)
    with np.errstate(invalid="ignore", divide="ignore"):
        share = np.where(forced, s, 0.0).sum(-1, keepdims=True) / s.sum(-1, keepdims=True)
    R = E * np.nan_to_num(share, nan=0.0)
    if refine_norm:
        R = R / (1.0 + R.sum(-1, keepdims=True))
    return combine(s, R)


def refine_config(s, q, k, cfg, scale=None, **overrides) -> np.ndarray:
    """:func:`refine` with the refinement fields of ``cfg`` (a
    :class:`unisparse.Config` or anything with the same attributes: block,
    last_q, c_h, local_blocks, sink, n_offsets, rows_per_block, width,
    refine_norm); ``overrides`` replace some of them."""
    fields = dict(
        c_h=cfg.c_h,
        local_blocks=cfg.local_blocks,
        sink=cfg.sink,
        n_offsets=cfg.n_offsets,
        rows_per_block=cfg.rows_per_block,
        width=cfg.width,
        refine_norm=getattr(cfg, "refine_norm", False),
    )
    fields.update(overrides)
    return refine(s, q, k, cfg.block, cfg.last_q, scale=scale, **fields)
