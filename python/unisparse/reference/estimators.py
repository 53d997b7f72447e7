"""The estimator family: how a (query composite, key composite) pair gets
its logit (``mean`` pooling, XAttention's ``antidiag``, the outlier-aware
``antidiag_lse``), which composites each estimator reads, and the argument
rules of the estimation stages."""

from __future__ import annotations

import numpy as np

from ..config import ESTIMATORS, QUERY_REDUCES
from ._common import _check_pos_int
from .composites import compress, compress_strided

__all__ = ["ESTIMATORS", "QUERY_REDUCES", "check_estimation", "composites", "composite_logits"]


def check_estimation(block: int, c_q: int, c_k: int, estimator: str, query_reduce: str):
    """The argument rules of the estimation stages (shared by
    :func:`block_score` and the PyTorch transcription
    ``unisparse.estimate_torch``); raises ``ValueError``."""
    if estimator not in ESTIMATORS:
        raise ValueError(f"estimator must be one of {ESTIMATORS}, got {estimator!r}")
    if query_reduce not in QUERY_REDUCES:
        raise ValueError(f"query_reduce must be one of {QUERY_REDUCES}, got {query_reduce!r}")
    block = _check_pos_int("block", block)
    c_q = _check_pos_int("c_q", c_q)
    c_k = _check_pos_int("c_k", c_k)
    if block % c_q or block % c_k:
        raise ValueError(f"block = {block} must be a multiple of c_q = {c_q} and c_k = {c_k}")
    if estimator != "mean" and c_q != c_k:
        raise ValueError(f"estimator {estimator!r} needs c_q == c_k, got c_q = {c_q}, c_k = {c_k}")
    return block, c_q, c_k


def composite_logits(qf, kf, t0, t1, scale, estimator):
    """Logits of query composites ``t0:t1`` against every key composite.

    ``mean``: ``[B, Hg, t1-t0, Tk]`` of ``scale * qc kcᵀ``.  Antidiagonal
    estimators: the per-slot logits ``scale * qc[t, a] . kc[u, a]``,
    combined over the ``s`` slots by their mean (``antidiag``) or
    log-mean-exp (``antidiag_lse``).
    """
    if estimator == "mean":
        return np.matmul(qf[:, :, t0:t1], np.swapaxes(kf, -1, -2)) * scale
    stride = qf.shape[3]
    x = np.stack([np.matmul(qf[:, :, t0:t1, a], np.swapaxes(kf[:, :, :, a], -1, -2)) * scale
                  for a in range(stride)], axis=-1)  # [B, Hg, tq, Tk, s]
    if estimator == "antidiag":
        return x.sum(axis=-1) / stride
    m = x.max(axis=-1)
    m_safe = np.where(np.isfinite(m), m, 0.0)
    return m_safe + np.log(np.exp(x - m_safe[..., None]).sum(axis=-1) / stride)


def composites(q, k, c_q: int, c_k: int, c_h: int, estimator: str):
    """The query and key composites that ``estimator`` scores, for
    ``q [B, Hq, N, D]`` and ``k [B, Hkv, N, D]``.

    ``mean``: :func:`compress` (queries ``kv_group = 1``, keys
    ``kv_group = Hq // Hkv``, both ``head_factor = c_h``), ``[B, Hg, T, D]``.
    Antidiagonal estimators: :func:`compress_strided` with stride
    ``c_q == c_k`` (queries reversed), ``[B, Hg, T, stride, D]``.
    """
    Hq, Hkv = q.shape[1], k.shape[1]
    if estimator == "mean":
        qc = compress(q, c_q, head_factor=c_h, kv_group=1)
        kc = compress(k, c_k, head_factor=c_h, kv_group=Hq // Hkv)
        return qc, kc
    if estimator not in ESTIMATORS:
        raise ValueError(f"estimator must be one of {ESTIMATORS}, got {estimator!r}")
    if c_q != c_k:
        raise ValueError(f"estimator {estimator!r} needs c_q == c_k (the stride), got {c_q} and {c_k}")
    qc = compress_strided(q, c_q, head_factor=c_h, kv_group=1, reverse=True)
    kc = compress_strided(k, c_k, head_factor=c_h, kv_group=Hq // Hkv)
    return qc, kc
