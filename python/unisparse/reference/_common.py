"""Helpers shared by the stages of the reference: argument checks and sizes."""

from __future__ import annotations

import math

import numpy as np

from .. import rules

# Upper bound (in elements) for the temporary score matrices built per chunk.
_CHUNK_ELEMS = 1 << 23


def _ceil_div(a: int, b: int) -> int:
    return -(-a // b)


def _check_pos_int(name: str, value, minimum: int = 1) -> int:
    """An integer argument, positive (``minimum = 1``) or non-negative
    (``minimum = 0``), by the rules of :mod:`unisparse.rules`."""
    if minimum == 0:
        return rules.check_non_negative_int(name, value)
    return rules.check_positive_int(name, value)


def _as_4d(name: str, x) -> np.ndarray:
    x = np.asarray(x)
    if x.ndim != 4:
        raise ValueError(f"{name} must have rank 4, got shape {x.shape}")
    return x


def composite_shapes(qc, kc, rank: int, estimator: str):
    """``qc``, ``kc`` as arrays of rank ``rank`` with matching batch, head
    groups and head dim, and ``(B, Hg, Tq, Tk, D)``; raises ``ValueError``."""
    qc = np.asarray(qc)
    kc = np.asarray(kc)
    if qc.ndim != rank or kc.ndim != rank:
        raise ValueError(f"estimator {estimator!r} takes rank-{rank} composites, got shapes {qc.shape} and {kc.shape}")
    B, Hg, Tq = qc.shape[:3]
    D = qc.shape[-1]
    if kc.shape[:2] != (B, Hg) or kc.shape[-1] != D:
        raise ValueError(f"kc shape {kc.shape} is inconsistent with qc shape {qc.shape}")
    return qc, kc, (B, Hg, Tq, kc.shape[2], D)


def block_sums(p, nbq: int, rq: int, NBk: int, rk: int, query_reduce: str) -> np.ndarray:
    """The block scores of a map ``p [B, Hg, tq, Tk]`` over ``nbq`` query
    blocks of ``rq`` composites (the last may be partial) and ``NBk`` key
    blocks of ``rk``: the sum over each block's key composites, then the sum
    or the max over its query composites."""
    B, Hg, tq, Tk = p.shape
    rpad, kpad = nbq * rq - tq, NBk * rk - Tk
    if rpad or kpad:
        p = np.pad(p, ((0, 0), (0, 0), (0, rpad), (0, kpad)))
    pb = p.reshape(B, Hg, nbq, rq, NBk, rk).sum(axis=5)
    return pb.sum(axis=3) if query_reduce == "sum" else pb.max(axis=3)


def _default_scale(scale, D: int) -> float:
    """The softmax scale: ``scale`` checked by :func:`unisparse.rules.scale`,
    ``None`` or 0 (as in ``#unisparse.config``) for ``1 / sqrt(D)``."""
    scale = rules.check_scale_arg(scale)
    if scale is None:
        return 1.0 / math.sqrt(D) if D > 0 else 1.0
    return scale
