"""Helpers shared by the stages of the reference: argument checks and sizes."""

from __future__ import annotations

import math

import numpy as np

# Upper bound (in elements) for the temporary score matrices built per chunk.
_CHUNK_ELEMS = 1 << 23


def _ceil_div(a: int, b: int) -> int:
    return -(-a // b)


def _check_pos_int(name: str, value, minimum: int = 1) -> int:
    if isinstance(value, (bool, np.bool_)) or not isinstance(value, (int, np.integer)):
        raise TypeError(f"{name} must be an integer, got {value!r}")
    if value < minimum:
        raise ValueError(f"{name} must be >= {minimum}, got {value}")
    return int(value)


def _as_4d(name: str, x) -> np.ndarray:
    x = np.asarray(x)
    if x.ndim != 4:
        raise ValueError(f"{name} must have rank 4, got shape {x.shape}")
    return x


def _default_scale(scale, D: int) -> float:
    if scale is None:
        return 1.0 / math.sqrt(D) if D > 0 else 1.0
    return float(scale)
