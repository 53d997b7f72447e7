"""PyTorch custom ops ``unisparse::attention`` and ``unisparse::layout``.

Importing this module (``import unisparse.torch_ops``, done by
:func:`unisparse.attention` on first use with tensors) registers

.. code-block:: text

    unisparse::attention(Tensor q, Tensor k, Tensor v, int block, int c_q, int c_k,
                         int c_h, float tau, int local_blocks, bool sink, int min_blocks,
                         int max_blocks, bool causal, float scale, str estimator,
                         str query_reduce) -> (Tensor o, Tensor lse)
    unisparse::layout(Tensor q, Tensor k, <same config scalars>) -> (Tensor counts, Tensor indices)

The configuration travels as scalar arguments (not as an opaque object) so
that the op is traceable: ``torch.compile(fullgraph=True)``, ``torch.export``
and ``torch.library.opcheck`` see an ordinary schema. ``o`` has the shape,
dtype and device of ``q``; ``lse`` is float32 ``[B, Hq, N]``; ``counts`` and
``indices`` are int32 ``[B, Hq / c_h, NB]`` and ``[B, Hq / c_h, NB, NB]``
with ``NB = ceil(N / block)``. Every output is freshly allocated and
contiguous.

Kernels: the CPU kernel views the tensors as NumPy arrays (bf16 through an
int16 view, no copy) and calls the configuration compiled ahead of time by
:func:`unisparse.compile` (cached per config, heads, head dim, dtype). The
CUDA kernel runs the library registered for the signature
(:func:`unisparse.register_compiled` of a ``unisparse.gpu.load_compiled``
library built by ``unisparse-compile --target=cuda``) and raises
``NotImplementedError`` naming what is missing otherwise. No backward: the autograd formula raises.
"""

from __future__ import annotations

import numpy as np
import torch

from ._core import AttentionResult, check_shapes
from .config import Config
from .registry import compile as _compile

__all__ = ["attention", "config_args", "config_from_args"]

_DTYPES = {torch.float32: "f32", torch.float16: "f16", torch.bfloat16: "bf16"}
_FIELDS = ("block", "c_q", "c_k", "c_h", "tau", "local_blocks", "sink", "min_blocks",
           "max_blocks", "causal", "scale", "estimator", "query_reduce")


def config_args(cfg: Config) -> tuple:
    """The scalar arguments of the ops for ``cfg``, in schema order."""
    return tuple(getattr(cfg, f) for f in _FIELDS)


def config_from_args(*args) -> Config:
    return Config.parse(dict(zip(_FIELDS, args)))


def check_inputs(c_h, q, k, v=None):
    """Validates tensors for the ops (kind, dtype, device, shape, contiguity)
    for head groups of ``c_h``; returns ``(B, Hq, Hkv, N, D)``."""
    named = (("q", q), ("k", k)) + ((("v", v),) if v is not None else ())
    for name, x in named:
        if not isinstance(x, torch.Tensor):
            raise TypeError(f"{name} must be a torch.Tensor, got {type(x).__name__}")
        if x.dtype not in _DTYPES:
            raise TypeError(f"{name} has unsupported dtype {x.dtype}: expected torch.float32, "
                            f"torch.float16 or torch.bfloat16")
    if len({x.dtype for _, x in named}) != 1:
        raise TypeError("q, k, v must have one dtype, got " + ", ".join(str(x.dtype) for _, x in named))
    if len({x.device for _, x in named}) != 1:
        raise ValueError("q, k, v must be on one device, got " + ", ".join(str(x.device) for _, x in named))
    if q.device.type not in ("cpu", "cuda", "meta"):
        raise ValueError(f"unsupported device {q.device}: expected cpu or cuda")
    vs = v.shape if v is not None else k.shape
    dims = check_shapes(tuple(q.shape), tuple(k.shape), tuple(vs), c_h)
    for name, x in named:
        if not x.is_contiguous():
            raise ValueError(f"{name} must be contiguous (call .contiguous() first); got strides {x.stride()}")
    return dims


def _np(t: torch.Tensor) -> np.ndarray:
    """A NumPy view of a contiguous CPU tensor (bf16 as uint16 bits)."""
    t = t.detach()
    if t.dtype == torch.bfloat16:
        return t.view(torch.int16).numpy().view(np.uint16)
    return t.numpy()


# --------------------------------------------------------------------------- #
# unisparse::attention
# --------------------------------------------------------------------------- #


@torch.library.custom_op("unisparse::attention", mutates_args=())
def _attention_op(q: torch.Tensor, k: torch.Tensor, v: torch.Tensor, block: int, c_q: int, c_k: int,
                  c_h: int, tau: float, local_blocks: int, sink: bool, min_blocks: int,
                  max_blocks: int, causal: bool, scale: float, estimator: str,
                  query_reduce: str) -> tuple[torch.Tensor, torch.Tensor]:
    cfg = config_from_args(block, c_q, c_k, c_h, tau, local_blocks, sink, min_blocks, max_blocks,
                           causal, scale, estimator, query_reduce)
    b, hq, hkv, n, d = check_inputs(cfg.c_h, q, k, v)
    if q.device.type != "cpu":
        raise ValueError(f"unisparse::attention: no kernel for device {q.device}")
    o = torch.empty((b, hq, n, d), dtype=q.dtype)
    lse = torch.empty((b, hq, n), dtype=torch.float32)
    kern = _compile(cfg, heads=hq, kv_heads=hkv, head_dim=d, dtype=_DTYPES[q.dtype], device="cpu")
    kern.attention(_np(q), _np(k), _np(v), _np(o), _np(lse))
    return o, lse


@_attention_op.register_kernel("cuda")
def _attention_cuda(q, k, v, block, c_q, c_k, c_h, tau, local_blocks, sink, min_blocks, max_blocks,
                    causal, scale, estimator, query_reduce):
    cfg = config_from_args(block, c_q, c_k, c_h, tau, local_blocks, sink, min_blocks, max_blocks,
                           causal, scale, estimator, query_reduce)
    _, hq, hkv, _, d = check_inputs(cfg.c_h, q, k, v)
    kern = _compile(cfg, heads=hq, kv_heads=hkv, head_dim=d, dtype=_DTYPES[q.dtype], device=str(q.device))
    o, lse = kern.attention(q, k, v)
    return o, lse


@_attention_op.register_fake
def _attention_fake(q, k, v, block, c_q, c_k, c_h, tau, local_blocks, sink, min_blocks, max_blocks,
                    causal, scale, estimator, query_reduce):
    # The scalars may be symbolic here (dynamic=True): no Config is built.
    b, hq, _, n, d = check_inputs(c_h, q, k, v)
    return q.new_empty((b, hq, n, d)), q.new_empty((b, hq, n), dtype=torch.float32)


def _setup_context(ctx, inputs, output):
    pass


def _backward(ctx, grad_o, grad_lse):
    raise NotImplementedError(
        "unisparse::attention has no backward: UniSparse is a forward-only (prefill) method; "
        "run it under torch.no_grad() / torch.inference_mode(), or use dense attention for training")


_attention_op.register_autograd(_backward, setup_context=_setup_context)


# --------------------------------------------------------------------------- #
# unisparse::layout
# --------------------------------------------------------------------------- #


@torch.library.custom_op("unisparse::layout", mutates_args=())
def _layout_op(q: torch.Tensor, k: torch.Tensor, block: int, c_q: int, c_k: int, c_h: int, tau: float,
               local_blocks: int, sink: bool, min_blocks: int, max_blocks: int, causal: bool,
               scale: float, estimator: str, query_reduce: str) -> tuple[torch.Tensor, torch.Tensor]:
    cfg = config_from_args(block, c_q, c_k, c_h, tau, local_blocks, sink, min_blocks, max_blocks,
                           causal, scale, estimator, query_reduce)
    _, hq, hkv, _, d = check_inputs(cfg.c_h, q, k)
    if q.device.type != "cpu":
        raise ValueError(f"unisparse::layout: no kernel for device {q.device}")
    kern = _compile(cfg, heads=hq, kv_heads=hkv, head_dim=d, dtype=_DTYPES[q.dtype], device="cpu")
    _, counts, indices = kern.layout(_np(q), _np(k))
    return torch.from_numpy(counts), torch.from_numpy(indices)


@_layout_op.register_kernel("cuda")
def _layout_cuda(q, k, block, c_q, c_k, c_h, tau, local_blocks, sink, min_blocks, max_blocks, causal,
                 scale, estimator, query_reduce):
    cfg = config_from_args(block, c_q, c_k, c_h, tau, local_blocks, sink, min_blocks, max_blocks,
                           causal, scale, estimator, query_reduce)
    _, hq, hkv, _, d = check_inputs(cfg.c_h, q, k)
    kern = _compile(cfg, heads=hq, kv_heads=hkv, head_dim=d, dtype=_DTYPES[q.dtype], device=str(q.device))
    _, counts, indices = kern.layout(q, k)
    return counts, indices


@_layout_op.register_fake
def _layout_fake(q, k, block, c_q, c_k, c_h, tau, local_blocks, sink, min_blocks, max_blocks, causal,
                 scale, estimator, query_reduce):
    b, hq, _, n, _ = check_inputs(c_h, q, k)
    nb = (n + block - 1) // block
    return (q.new_empty((b, hq // c_h, nb), dtype=torch.int32),
            q.new_empty((b, hq // c_h, nb, nb), dtype=torch.int32))


# --------------------------------------------------------------------------- #
# The tensor path of unisparse.attention
# --------------------------------------------------------------------------- #


def attention(q, k, v, cfg: Config, *, return_lse: bool = False, return_layout: bool = False):
    """:func:`unisparse.attention` for tensors (validated here, so that bad
    input fails before dispatch with the same messages as the op)."""
    b, hq, _, n, _ = check_inputs(cfg.c_h, q, k, v)
    args = config_args(cfg)
    o, lse = torch.ops.unisparse.attention(q, k, v, *args)
    if not (return_lse or return_layout):
        return o
    res = AttentionResult(output=o, lse=lse if return_lse else None)
    if return_layout:
        res.counts, res.indices = torch.ops.unisparse.layout(q, k, *args)
        nb = (n + cfg.block - 1) // cfg.block
        per = nb * (nb + 1) // 2 if cfg.causal else nb * nb
        denom = b * (hq // cfg.c_h) * per
        res.density = (res.counts.sum(dtype=torch.float32) / denom if denom
                       else torch.ones((), dtype=torch.float32, device=q.device))
    return res

