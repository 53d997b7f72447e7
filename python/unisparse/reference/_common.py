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


def _default_scale(scale, D: int) -> float:
    """The softmax scale: ``scale`` checked by :func:`unisparse.rules.scale`,
    ``None`` or 0 (as in ``#unisparse.config``) for ``1 / sqrt(D)``."""
    scale = rules.check_scale_arg(scale)
    if scale is None:
        return 1.0 / math.sqrt(D) if D > 0 else 1.0
    return scale
