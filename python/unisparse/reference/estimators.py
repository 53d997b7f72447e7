"""The estimator family: how a (query composite, key composite) pair gets
its logit (``mean`` pooling, XAttention's ``antidiag``, the outlier-aware
``antidiag_lse``), which composites each estimator reads, and the argument
rules of the estimation stages. The ``outlier`` estimator has its own
module, :mod:`unisparse.reference.outlier`."""

from __future__ import annotations

import numpy as np

from .. import rules
from ..rules import ESTIMATORS, QUERY_REDUCES
from .composites import compress, compress_strided

__all__ = ["ESTIMATORS", "QUERY_REDUCES", "check_estimation", "composites", "composite_logits"]


def check_estimation(block: int, c_q: int, c_k: int, estimator: str, query_reduce: str):
    """The argument rules of the estimation stages (shared by
    :func:`block_score` and the PyTorch transcription
    ``unisparse.estimate_torch``; those of ``unisparse.block_score`` in the
    dialect); raises ``ValueError`` (``TypeError`` for a non-integer size)."""
    rules.keyword("estimator", estimator, ESTIMATORS)
    rules.keyword("query_reduce", query_reduce, QUERY_REDUCES)
    block = rules.check_positive_int("block", block)
    c_q = rules.check_positive_int("c_q", c_q)
    c_k = rules.check_positive_int("c_k", c_k)
    rules.multiple_of("block", block, "c_q", c_q)
    rules.multiple_of("block", block, "c_k", c_k)
    rules.estimator_stride(estimator, c_q, c_k)
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
    x = np.stack(
        [np.matmul(qf[:, :, t0:t1, a], np.swapaxes(kf[:, :, :, a], -1, -2)) * scale for a in range(stride)], axis=-1
    )  # [B, Hg, tq, Tk, s]
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
    rules.keyword("estimator", estimator, ESTIMATORS)
    rules.estimator_stride(estimator, c_q, c_k)
    qc = compress_strided(q, c_q, head_factor=c_h, kv_group=1, reverse=True)
    kc = compress_strided(k, c_k, head_factor=c_h, kv_group=Hq // Hkv)
    return qc, kc
