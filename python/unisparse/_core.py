"""The core every other module builds on: the error type, dtype and device
names, shape checks and the result type. Imports only :mod:`unisparse.rules`.

Layers (each imports only from the layers above it in this list):

1. ``rules`` (the rules of a configuration and of head counts), ``_core``
   (this module), ``config`` (the configuration);
2. ``_runtime``, ``_memref``, ``_build`` (the runtime loader, memref
   descriptors, the compile-and-cache module);
3. ``cpu``, ``gpu`` (the back ends);
4. ``registry`` (``compile`` / ``register_compiled``);
5. ``torch_ops`` (the PyTorch custom ops);
6. ``api`` (``attention``), ``integrations``, the tools (``demo``,
   ``fidelity``).
"""

from __future__ import annotations

import dataclasses
from typing import Any

import numpy as np

from . import rules


class UnisparseError(RuntimeError):
    """A failure reported by the UniSparse runtime or compiler."""


_DTYPE_NAMES = {
    "f32": "f32",
    "float32": "f32",
    "fp32": "f32",
    "float": "f32",
    "f16": "f16",
    "float16": "f16",
    "fp16": "f16",
    "half": "f16",
    "bf16": "bf16",
    "bfloat16": "bf16",
}
SUPPORTED_DTYPES = "float32, float16 or bfloat16"


def canonical_dtype(dtype) -> str:
    """``"f32"``, ``"f16"`` or ``"bf16"`` for a dtype given as a string, a
    NumPy dtype (``uint16`` means bf16 bits) or a ``torch.dtype``."""
    if isinstance(dtype, str):
        name = dtype.lower()
    elif type(dtype).__module__ == "torch":  # torch.dtype, without importing torch
        name = str(dtype).removeprefix("torch.")
    else:
        try:
            name = np.dtype(dtype).name
        except TypeError:
            raise TypeError(f"unsupported dtype {dtype!r}: expected {SUPPORTED_DTYPES}") from None
        if name == "uint16":
            name = "bf16"
    if name not in _DTYPE_NAMES:
        raise TypeError(f"unsupported dtype {dtype!r}: expected {SUPPORTED_DTYPES}")
    return _DTYPE_NAMES[name]


def canonical_device(device) -> str:
    text = str(device)
    if text == "cpu" or text == "cuda" or (text.startswith("cuda:") and text[5:].isdigit()):
        return text
    raise ValueError(f"unsupported device {device!r}: expected 'cpu' or 'cuda[:N]'")


def check_shapes(qs, ks, vs, c_h: int):
    """Validates q/k/v shapes (tuples) against each other and the head-group
    size ``c_h``; returns ``(B, Hq, Hkv, N, D)``. Shared by the NumPy path,
    the PyTorch op and its fake implementation (where the sizes, and ``c_h``
    under ``dynamic=True``, may be symbolic)."""
    for name, s in (("q", qs), ("k", ks), ("v", vs)):
        if len(s) != 4:
            raise ValueError(f"{name} must have rank 4 [batch, heads, seq, head_dim], got shape {tuple(s)}")
    b, hq, n, d = qs
    if tuple(ks) != tuple(vs):
        raise ValueError(f"k shape {tuple(ks)} must equal v shape {tuple(vs)}")
    if ks[0] != b:
        raise ValueError(f"batch mismatch: q has {b}, k/v have {ks[0]}")
    if ks[2] != n:
        raise ValueError(
            f"sequence length mismatch: q has N = {n}, k/v have N = {ks[2]} "
            f"(UniSparse is self-attention prefill: key and query lengths must be equal)"
        )
    if ks[3] != d:
        raise ValueError(f"head_dim mismatch: q has {d}, k/v have {ks[3]}")
    hkv = ks[1]
    rules.check_heads(hq, hkv, d, c_h)
    return b, hq, hkv, n, d


@dataclasses.dataclass
class AttentionResult:
    """What :func:`unisparse.attention` returns when ``return_lse`` or
    ``return_layout`` is set.

    Attributes
    ----------
    output : ``[B, Hq, N, D]``, same type and dtype as ``q``.
    lse : float32 ``[B, Hq, N]`` natural-log log-sum-exp of each row (scale
        included; ``-inf`` for a row that sees no key), or ``None`` unless
        ``return_lse``.
    counts, indices : the block layout, int32 ``[B, Hg, NB]`` and
        ``[B, Hg, NB, NB]`` (``Hg = Hq / c_h``, ``NB = ceil(N / block)``;
        row ``(b, g, I)`` keeps key blocks ``indices[b, g, I, :counts[b, g, I]]``,
        ascending, the rest ``-1``), or ``None`` unless ``return_layout``.
    density : kept (query block, key block) pairs over the pairs of the
        dense (causal: lower-triangular) block grid, or ``None`` unless
        ``return_layout``. A Python float for NumPy inputs, a 0-dim float32
        tensor for PyTorch inputs (so that it traces under ``torch.compile``).
    """

    output: Any
    lse: Any = None
    counts: Any = None
    indices: Any = None
    density: Any = None
