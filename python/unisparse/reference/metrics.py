"""Metrics of a layout against dense attention: density, relative L2 error,
attention-mass recall."""

from __future__ import annotations

import math

import numpy as np

from .. import rules
from ._common import _as_4d, _ceil_div, _check_pos_int, _default_scale
from .attention import _softmax_stats
from .selection import layout_mask


def density(counts, N: int, block: int, causal: bool = True) -> float:
    """Visited (query block, key block) pairs / pairs of the dense block grid.

    The dense grid has ``NB * (NB + 1) / 2`` pairs per (batch, head group)
    when causal (lower triangle including the diagonal) and ``NB * NB``
    otherwise, ``NB = ceil(N / block)``.
    """
    counts = np.asarray(counts)
    NB = _ceil_div(N, block)
    if counts.ndim != 3 or counts.shape[2] != NB:
        raise ValueError(f"counts shape {counts.shape} must be [B, Hg, {NB}]")
    per = NB * (NB + 1) // 2 if causal else NB * NB
    denom = counts.shape[0] * counts.shape[1] * per
    return float(counts.sum(dtype=np.int64)) / denom if denom else 1.0


def relative_l2(x, ref) -> float:
    """``||x - ref||_2 / ||ref||_2`` in float64 (0 if both are zero, inf if only ref is)."""
    x = np.asarray(x, dtype=np.float64)
    ref = np.asarray(ref, dtype=np.float64)
    if x.shape != ref.shape:
        raise ValueError(f"shape mismatch: {x.shape} vs {ref.shape}")
    num = float(np.linalg.norm((x - ref).ravel()))
    den = float(np.linalg.norm(ref.ravel()))
    if den == 0.0:
        return 0.0 if num == 0.0 else math.inf
    return num / den


def attention_recall(q, k, counts, indices, block: int, causal: bool = True, scale=None) -> np.ndarray:
    """Per-row attention-mass recall of a layout.

    For every query row ``(b, h, i)``: the fraction of the dense (causal when
    ``causal``) softmax mass that falls on keys inside the row's selected
    blocks.  Returns float64 ``[B, Hq, N]``.  A row with no visible key has
    recall 1.  Summarise with :func:`recall_summary`.
    """
    q = _as_4d("q", q)
    k = _as_4d("k", k)
    B, Hq, N, D = q.shape
    if k.shape[0] != B or k.shape[2] != N or k.shape[3] != D:
        raise ValueError(f"k shape {k.shape} is inconsistent with q shape {q.shape}")
    rules.positive("kv_heads", k.shape[1])
    rules.gqa(Hq, k.shape[1])
    block = _check_pos_int("block", block)
    NB = _ceil_div(N, block)
    counts = np.asarray(counts)
    if counts.ndim != 3 or counts.shape[0] != B or counts.shape[2] != NB or Hq % max(1, counts.shape[1]):
        raise ValueError(f"counts shape {counts.shape} is inconsistent with q shape {q.shape}")
    Hg = counts.shape[1]
    bmask = layout_mask(counts, indices, NB)
    scale = _default_scale(scale, D)
    heads = np.arange(Hq)
    kv_of = heads // (Hq // k.shape[1])
    grp_of = heads // (Hq // Hg)
    qf = q.astype(np.float64, copy=False)
    kf = k.astype(np.float64, copy=False)[:, kv_of]
    recall = np.ones((B, Hq, N), dtype=np.float64)
    with np.errstate(divide="ignore", invalid="ignore", over="ignore"):
        for I in range(NB):
            i0, i1 = I * block, min(N, (I + 1) * block)
            jmax = i1 if causal else N
            logits = np.matmul(qf[:, :, i0:i1], np.swapaxes(kf[:, :, :jmax], -1, -2)) * scale
            if causal:
                vis = np.arange(jmax)[None, :] <= np.arange(i0, i1)[:, None]
            else:
                vis = np.ones((i1 - i0, jmax), dtype=bool)
            p, l, _ = _softmax_stats(logits, vis)
            tok = np.repeat(bmask[:, grp_of, I], block, axis=-1)[..., :jmax]  # [B, Hq, jmax]
            inside = (p * tok[:, :, None, :]).sum(axis=-1, keepdims=True)
            r = np.where(l == 0, 1.0, inside / np.where(l == 0, 1.0, l))
            recall[:, :, i0:i1] = r[..., 0]
    return recall


def recall_summary(recall, block: int | None = None, percentile: float = 1.0):
    """Summarise per-row recall as ``(mean, low percentile)``.

    With ``block=None`` both are scalars over all rows.  With a block size the
    rows of each query block are summarised separately and both results have
    shape ``[..., NB]`` (``recall`` is ``[..., N]``).  The percentile uses
    NumPy's default (linear) interpolation.
    """
    recall = np.asarray(recall, dtype=np.float64)
    if block is None:
        return float(recall.mean()), float(np.percentile(recall, percentile))
    block = _check_pos_int("block", block)
    N = recall.shape[-1]
    NB = _ceil_div(N, block)
    mean = np.empty(recall.shape[:-1] + (NB,))
    low = np.empty_like(mean)
    for I in range(NB):
        r = recall[..., I * block : min(N, (I + 1) * block)]
        mean[..., I] = r.mean(axis=-1)
        low[..., I] = np.percentile(r, percentile, axis=-1)
    return mean, low
