"""Stage 4 and the whole method: exact block-sparse attention over a layout,
dense attention, and :func:`unisparse_attention` (all four stages)."""

from __future__ import annotations

import numpy as np

from .. import rules
from . import twolevel
from ._common import _CHUNK_ELEMS, _as_4d, _ceil_div, _check_pos_int, _default_scale
from .scores import estimate
from .selection import block_select, layout_mask


def _check_qkv(q, k, v):
    q = _as_4d("q", q)
    k = _as_4d("k", k)
    v = _as_4d("v", v)
    B, Hq, N, D = q.shape
    if k.shape != v.shape:
        raise ValueError(f"k shape {k.shape} != v shape {v.shape}")
    if k.shape[0] != B or k.shape[2] != N or k.shape[3] != D:
        raise ValueError(f"k/v shape {k.shape} is inconsistent with q shape {q.shape}")
    rules.positive("kv_heads", k.shape[1])
    rules.gqa(Hq, k.shape[1])
    return q, k, v


def _softmax_stats(logits, mask):
    """Masked softmax pieces: (p, l, m_safe) with rows that see no key
    giving l == 0. A row that sees keys whose logits are all ``-inf`` (only
    -inf/NaN inputs make one) gives NaN, as dense attention does."""
    logits = np.where(mask, logits, -np.inf)
    m = logits.max(axis=-1, keepdims=True)
    sees_none = ~np.broadcast_to(mask, logits.shape).any(axis=-1, keepdims=True)
    m_safe = np.where(sees_none, 0.0, m)
    p = np.exp(logits - m_safe)
    l = p.sum(axis=-1, keepdims=True)
    return p, l, m_safe


def _attend(p, l, m_safe, vv, mask):
    """Normalised ``p @ vv`` and the LSE.

    A masked key contributes nothing even when its value is NaN/Inf (it is
    not part of the row's sum); a visible key with a non-finite value
    propagates it, as dense attention does.
    """
    bad = np.flatnonzero(~np.isfinite(vv).all(axis=(0, 1, 3)))
    if bad.size:
        v0 = vv.copy()
        v0[:, :, bad] = 0.0
        o = np.matmul(p, v0)
        mask = np.broadcast_to(mask, p.shape)
        for j in bad:
            contrib = p[..., j, None] * vv[:, :, j, None, :]
            o += np.where(mask[..., j, None], contrib, 0.0)
    else:
        o = np.matmul(p, vv)
    empty = l == 0
    o = np.where(empty, 0.0, o / np.where(empty, 1.0, l))
    lse = (m_safe + np.log(l))[..., 0]
    return o, lse


def block_sparse_attention(q, k, v, counts, indices, block: int, causal: bool = True, scale=None):
    """Exact attention restricted to the blocks of a layout.

    Parameters
    ----------
    q : ``[B, Hq, N, D]``; k, v : ``[B, Hkv, N, D]``.
    counts, indices : a layout ``[B, Hg, NBq]`` / ``[B, Hg, NBq, NBk]`` with
        ``NBq = NBk = ceil(N / block)`` and ``Hq % Hg == 0`` (validated by
        :func:`layout_mask`).
    block : block size in tokens.

    Returns
    -------
    ``o`` float64 ``[B, Hq, N, D]`` and ``lse`` float64 ``[B, Hq, N]``.

    Query ``i`` of head ``h`` attends to key ``j`` iff ``j // block`` is in
    the layout row ``(b, h // (Hq // Hg), i // block)`` and, when causal,
    ``j <= i``.  Query head ``h`` reads kv head ``h // (Hq // Hkv)``.  A row
    with no visible key gives ``o = 0`` and ``lse = -inf``.  NaN/Inf in a
    visible key or value propagates to the row as in dense attention; a key
    that is masked (unselected block or causal) contributes nothing, even if
    its value is not finite.
    """
    q, k, v = _check_qkv(q, k, v)
    block = _check_pos_int("block", block)
    B, Hq, N, D = q.shape
    Hkv = k.shape[1]
    NB = _ceil_div(N, block)
    counts = np.asarray(counts)
    indices = np.asarray(indices)
    if counts.ndim != 3 or counts.shape[0] != B or counts.shape[2] != NB:
        raise ValueError(f"counts shape {counts.shape} must be [B={B}, Hg, NBq={NB}]")
    Hg = counts.shape[1]
    if Hg == 0 or Hq % Hg != 0:
        raise ValueError(f"Hq = {Hq} must be a multiple of the number of head groups {Hg}")
    if indices.shape != (B, Hg, NB, NB):
        raise ValueError(f"indices shape {indices.shape} must be {(B, Hg, NB, NB)}")
    bmask = layout_mask(counts, indices, NB)
    scale = _default_scale(scale, D)

    heads = np.arange(Hq)
    kv_of = heads // (Hq // Hkv)
    grp_of = heads // (Hq // Hg)
    qf = q.astype(np.float64, copy=False)
    kf = k.astype(np.float64, copy=False)[:, kv_of]
    vf = v.astype(np.float64, copy=False)[:, kv_of]

    o = np.zeros((B, Hq, N, D), dtype=np.float64)
    lse = np.full((B, Hq, N), -np.inf, dtype=np.float64)
    with np.errstate(divide="ignore", invalid="ignore", over="ignore"):
        for I in range(NB):
            i0, i1 = I * block, min(N, (I + 1) * block)
            bm = bmask[:, grp_of, I]  # [B, Hq, NB]
            cols = np.flatnonzero(bm.any(axis=(0, 1)))
            if cols.size == 0:
                continue
            J0, J1 = int(cols[0]), int(cols[-1]) + 1
            j0, j1 = J0 * block, min(N, J1 * block)
            if causal:
                j1 = min(j1, i1)
            if j1 <= j0:
                continue
            tok = np.repeat(bm[..., J0:J1], block, axis=-1)[..., : j1 - j0]  # [B, Hq, len]
            mask = tok[:, :, None, :]
            if causal:
                mask = mask & (np.arange(j0, j1)[None, :] <= np.arange(i0, i1)[:, None])
            logits = np.matmul(qf[:, :, i0:i1], np.swapaxes(kf[:, :, j0:j1], -1, -2)) * scale
            p, l, m_safe = _softmax_stats(logits, mask)
            o[:, :, i0:i1], lse[:, :, i0:i1] = _attend(p, l, m_safe, vf[:, :, j0:j1], mask)
    return o, lse


def dense_attention(q, k, v, causal: bool = True, scale=None):
    """Exact dense (optionally causal: key ``j`` visible iff ``j <= i``) attention.

    Returns ``o`` float64 ``[B, Hq, N, D]`` and ``lse`` float64 ``[B, Hq, N]``
    (natural log, scale included).  GQA as in :func:`block_sparse_attention`.
    """
    q, k, v = _check_qkv(q, k, v)
    B, Hq, N, D = q.shape
    Hkv = k.shape[1]
    scale = _default_scale(scale, D)
    kv_of = np.arange(Hq) // (Hq // Hkv)
    qf = q.astype(np.float64, copy=False)
    kT = np.swapaxes(k.astype(np.float64, copy=False)[:, kv_of], -1, -2)
    vf = v.astype(np.float64, copy=False)[:, kv_of]
    o = np.zeros((B, Hq, N, D), dtype=np.float64)
    lse = np.full((B, Hq, N), -np.inf, dtype=np.float64)
    step = max(1, _CHUNK_ELEMS // max(1, B * Hq * N))
    j = np.arange(N)
    with np.errstate(divide="ignore", invalid="ignore", over="ignore"):
        for i0 in range(0, N, step):
            i1 = min(N, i0 + step)
            jmax = i1 if causal else N
            logits = np.matmul(qf[:, :, i0:i1], kT[..., :jmax]) * scale
            if causal:
                mask = j[None, :jmax] <= np.arange(i0, i1)[:, None]
            else:
                mask = np.ones((i1 - i0, jmax), dtype=bool)
            p, l, m_safe = _softmax_stats(logits, mask)
            o[:, :, i0:i1], lse[:, :, i0:i1] = _attend(p, l, m_safe, vf[:, :, :jmax], mask)
    return o, lse


def unisparse_attention(
    q,
    k,
    v,
    block: int = 128,
    c_q: int = 16,
    c_k: int = 32,
    c_h: int = 1,
    tau: float = 0.9965,
    local_blocks: int = 1,
    sink: bool = True,
    min_blocks: int = 0,
    max_blocks: int = 0,
    causal: bool = True,
    scale=None,
    estimator: str = "outlier",
    query_reduce: str = "max",
    q_outliers: int = 1,
    k_outliers: int = 2,
    refine: str = None,
    last_q: int = 16,
    n_offsets: int = 16,
    rows_per_block: int = 8,
    width: int = 1,
    refine_norm: bool = None,
):
    """UniSparse attention: compress -> block_score (-> the slash refinement
    with ``refine = "slash"``, :func:`unisparse.reference.twolevel.refine`)
    -> block_select -> block_sparse_attention.

    Queries are compressed with ``(seq_factor=c_q, head_factor=c_h,
    kv_group=1)`` and keys with ``(seq_factor=c_k, head_factor=c_h,
    kv_group=Hq // Hkv)``, giving ``Hg = Hq / c_h`` head groups (the
    antidiagonal estimators group tokens instead, see :func:`estimate`).
    The same ``scale`` is used for scoring and for the attention.

    The fields follow the rules of ``unisparse.Config`` (:mod:`unisparse.rules`;
    ``scale=None`` or 0 selects ``1 / sqrt(D)``) and have its defaults, the
    peaked configuration: ``refine`` and ``refine_norm`` omitted (``None``)
    follow ``causal`` (:func:`unisparse.rules.resolve_refine`).

    Returns ``(o, lse, counts, indices)``.
    """
    refine, refine_norm = rules.resolve_refine(causal, refine, refine_norm)
    rules.check_config(
        dict(
            block=block,
            c_q=c_q,
            c_k=c_k,
            c_h=c_h,
            tau=tau,
            local_blocks=local_blocks,
            sink=sink,
            min_blocks=min_blocks,
            max_blocks=max_blocks,
            causal=causal,
            scale=0.0 if scale is None else scale,
            estimator=estimator,
            query_reduce=query_reduce,
            q_outliers=q_outliers,
            k_outliers=k_outliers,
            refine=refine,
            last_q=last_q,
            n_offsets=n_offsets,
            rows_per_block=rows_per_block,
            width=width,
            refine_norm=refine_norm,
        )
    )
    q, k, v = _check_qkv(q, k, v)
    rules.head_groups(q.shape[1], c_h)
    s = estimate(
        q,
        k,
        block,
        c_q,
        c_k,
        c_h,
        causal=causal,
        scale=scale,
        estimator=estimator,
        query_reduce=query_reduce,
        q_outliers=q_outliers,
        k_outliers=k_outliers,
    )
    if refine == "slash":
        s = twolevel.refine(
            s,
            q,
            k,
            block,
            last_q,
            c_h=c_h,
            scale=scale,
            local_blocks=local_blocks,
            sink=sink,
            n_offsets=n_offsets,
            rows_per_block=rows_per_block,
            width=width,
            refine_norm=refine_norm,
        )
    counts, indices = block_select(
        s,
        tau,
        local_blocks=local_blocks,
        sink=sink,
        min_blocks=min_blocks,
        max_blocks=max_blocks,
        causal=causal,
    )
    o, lse = block_sparse_attention(q, k, v, counts, indices, block, causal=causal, scale=scale)
    return o, lse, counts, indices
