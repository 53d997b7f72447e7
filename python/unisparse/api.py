"""The public entry point :func:`attention` (and, re-exported,
:func:`compile` / :func:`register_compiled` of :mod:`unisparse.registry`).

``attention`` runs UniSparse attention on NumPy arrays or PyTorch tensors,
compiling (once per configuration, shape signature, dtype and device) on
first use.

Dtypes: ``float32``, ``float16`` and ``bfloat16``. NumPy has no bfloat16, so
bf16 NumPy data is passed as ``uint16`` bit patterns (or as ``ml_dtypes``'
``bfloat16``, which is viewed as such); bf16 PyTorch tensors are viewed, not
copied. Inputs must be C-contiguous: a strided input is rejected rather than
copied behind the caller's back (call ``.contiguous()``).

Devices: NumPy arrays and CPU tensors run on the CPU path
(:mod:`unisparse.cpu`); CUDA tensors on the CUDA path (:mod:`unisparse.gpu`),
with a library registered for the signature or found/compiled by
``unisparse.gpu.compile_gpu``.
"""

from __future__ import annotations

import sys

import numpy as np

from ._core import SUPPORTED_DTYPES, AttentionResult, canonical_dtype, check_shapes
from .config import Config
from .registry import compile, register_compiled

__all__ = ["compile", "attention", "AttentionResult", "register_compiled", "canonical_dtype"]


def _is_torch_tensor(x) -> bool:
    torch = sys.modules.get("torch")
    return torch is not None and isinstance(x, torch.Tensor)


def _numpy_dtype(x: np.ndarray) -> str:
    if x.dtype == np.float32:
        return "f32"
    if x.dtype == np.float16:
        return "f16"
    if x.dtype == np.uint16 or x.dtype.name == "bfloat16":
        return "bf16"
    raise TypeError(f"unsupported dtype {x.dtype}: expected {SUPPORTED_DTYPES} (bfloat16 NumPy data as uint16 bits)")


def attention(q, k, v, config: Config | None = None, *, return_lse: bool = False, return_layout: bool = False):
    """UniSparse attention of ``q [B, Hq, N, D]`` over ``k, v [B, Hkv, N, D]``.

    ``q``, ``k``, ``v`` are all NumPy arrays or all PyTorch tensors (CPU or
    CUDA), of one dtype (float32, float16,
    bfloat16; NumPy bf16 as ``uint16`` bits), C-contiguous. ``config`` defaults
    to ``Config()``. The configuration is compiled on first use and cached.

    Returns the output ``[B, Hq, N, D]`` (type and dtype of ``q``) or, when
    ``return_lse`` or ``return_layout`` is set, an :class:`AttentionResult`.
    PyTorch tensors go through the custom op ``torch.ops.unisparse.attention``
    (``torch.ops.unisparse.attention_layout`` with ``return_layout``), so the
    call traces under ``torch.compile``. The layout returned is the one the
    output was computed with (one estimation, not a second call). No autograd: UniSparse is a prefill method; the
    backward raises.

    Raises ``TypeError`` for a non-array input, mixed kinds or an unsupported
    or mismatched dtype; ``ValueError`` for bad shapes, head counts,
    non-contiguous inputs or mismatched/unsupported devices;
    ``NotImplementedError`` for a CUDA signature with no library;
    :class:`unisparse.UnisparseError` for a failure reported by the runtime.
    """
    cfg = Config() if config is None else config
    if not isinstance(cfg, Config):
        raise TypeError(f"config must be a unisparse.Config, got {type(cfg).__name__}")
    kinds = ["torch" if _is_torch_tensor(x) else "numpy" if isinstance(x, np.ndarray) else None for x in (q, k, v)]
    for name, x, kind in zip("qkv", (q, k, v), kinds):
        if kind is None:
            raise TypeError(f"{name} must be a torch.Tensor or a numpy.ndarray, got {type(x).__name__}")
    if len(set(kinds)) != 1:
        raise TypeError(
            f"q, k, v must all be torch tensors or all numpy arrays, got "
            f"{', '.join(type(x).__name__ for x in (q, k, v))}"
        )
    if kinds[0] == "torch":
        from . import torch_ops

        return torch_ops.attention(q, k, v, cfg, return_lse=return_lse, return_layout=return_layout)
    return _numpy_attention(q, k, v, cfg, return_lse, return_layout)


def _numpy_attention(q, k, v, cfg, return_lse, return_layout):
    dts = [_numpy_dtype(x) for x in (q, k, v)]
    if len(set(x.dtype for x in (q, k, v))) != 1:
        raise TypeError(f"q, k, v must have one dtype, got {q.dtype}, {k.dtype}, {v.dtype}")
    _, hq, hkv, n, d = check_shapes(q.shape, k.shape, v.shape, cfg.c_h)
    for name, x in (("q", q), ("k", k), ("v", v)):
        if not x.flags.c_contiguous:
            raise ValueError(f"{name} must be C-contiguous (np.ascontiguousarray makes a copy)")
    bf16_type = q.dtype if dts[0] == "bf16" and q.dtype != np.uint16 else None
    if bf16_type is not None:  # ml_dtypes.bfloat16: same bits, viewed
        q, k, v = (x.view(np.uint16) for x in (q, k, v))
    kern = compile(cfg, heads=hq, kv_heads=hkv, head_dim=d, dtype=dts[0], device="cpu")
    if return_layout:  # one estimation: the layout that the attention used
        o, lse, counts, indices = kern.attention_layout(q, k, v)
    else:
        o, lse = kern.attention(q, k, v)
    if bf16_type is not None:
        o = o.view(bf16_type)
    if not (return_lse or return_layout):
        return o
    res = AttentionResult(output=o, lse=lse if return_lse else None)
    if return_layout:
        from .reference import density

        res.counts, res.indices = counts, indices
        res.density = density(counts, n, cfg.block, cfg.causal)
    return res
