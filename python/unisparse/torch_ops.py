"""PyTorch custom ops ``unisparse::attention``, ``unisparse::layout`` and
``unisparse::attention_layout``.

Importing this module (``import unisparse.torch_ops``, done by
:func:`unisparse.attention` on first use with tensors) registers

.. code-block:: text

    unisparse::attention(Tensor q, Tensor k, Tensor v, <config>) -> (Tensor o, Tensor lse)
    unisparse::layout(Tensor q, Tensor k, <config>) -> (Tensor counts, Tensor indices)
    unisparse::attention_layout(Tensor q, Tensor k, Tensor v, <config>)
        -> (Tensor o, Tensor lse, Tensor counts, Tensor indices)

where ``<config>`` is one scalar argument per field of :class:`unisparse.Config`,
in the order of ``dataclasses.fields(Config)`` and of its type (``int block,
int c_q, ..., float tau, ..., str query_reduce``): the schema and the packing
(:func:`config_args`, :func:`config_from_args`) are derived from the
dataclass (:data:`CONFIG_SCHEMA`), so a new field needs no change here.

The configuration travels as scalar arguments (not as an opaque object) so
that the op is traceable: ``torch.compile(fullgraph=True)``, ``torch.export``
and ``torch.library.opcheck`` see an ordinary schema. ``o`` has the shape,
dtype and device of ``q``; ``lse`` is float32 ``[B, Hq, N]``; ``counts`` and
``indices`` are int32 ``[B, Hq / c_h, NB]`` and ``[B, Hq / c_h, NB, NB]``
with ``NB = ceil(N / block)``. ``attention_layout`` returns what
``attention`` returns and the layout it used, from one estimation. Every
output is freshly allocated and contiguous.

Kernels: the CPU kernel views the tensors as NumPy arrays (bf16 through an
int16 view, no copy) and calls the configuration compiled ahead of time by
:func:`unisparse.compile` (cached per config, heads, head dim, dtype). The
CUDA kernel runs the library registered for the signature
(:func:`unisparse.register_compiled` of a ``unisparse.gpu.load_compiled``
library built by ``unisparse-compile --target=cuda``) and raises
``NotImplementedError`` naming what is missing otherwise. No backward: the autograd formula raises.
"""

from __future__ import annotations

import dataclasses

import numpy as np
import torch

from ._core import AttentionResult, check_shapes
from .config import Config
from .registry import compile as _compile

__all__ = ["attention", "config_args", "config_from_args", "CONFIG_SCHEMA"]

_DTYPES = {torch.float32: "f32", torch.float16: "f16", torch.bfloat16: "bf16"}

#: The fields of Config, in schema order, and their schema types.
_FIELDS = tuple(f.name for f in dataclasses.fields(Config))
_SCHEMA_TYPES = {"int": "int", "float": "float", "bool": "bool", "str": "str"}
#: ``"int block, int c_q, ..., str query_reduce"``: the configuration part of
#: every op's schema.
CONFIG_SCHEMA = ", ".join(f"{_SCHEMA_TYPES[f.type]} {f.name}" for f in dataclasses.fields(Config))


def _schema(tensors: str, results: str) -> str:
    return f"({tensors}, {CONFIG_SCHEMA}) -> ({results})"


def config_args(cfg: Config) -> tuple:
    """The scalar arguments of the ops for ``cfg``, in schema order."""
    return tuple(getattr(cfg, name) for name in _FIELDS)


def config_from_args(*args) -> Config:
    """The :class:`Config` of the ops' scalar arguments (inverse of
    :func:`config_args`)."""
    return Config(**dict(zip(_FIELDS, args, strict=True)))


def _field(args, name):
    """Field ``name`` of the scalar arguments (possibly symbolic, in a fake
    implementation, where no Config is built)."""
    return args[_FIELDS.index(name)]


def check_inputs(c_h, q, k, v=None):
    """Validates tensors for the ops (kind, dtype, device, shape, contiguity)
    for head groups of ``c_h``; returns ``(B, Hq, Hkv, N, D)``."""
    named = (("q", q), ("k", k)) + ((("v", v),) if v is not None else ())
    for name, x in named:
        if not isinstance(x, torch.Tensor):
            raise TypeError(f"{name} must be a torch.Tensor, got {type(x).__name__}")
        if x.dtype not in _DTYPES:
            raise TypeError(
                f"{name} has unsupported dtype {x.dtype}: expected torch.float32, torch.float16 or torch.bfloat16"
            )
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
# The ops: one CPU kernel, one CUDA kernel and one fake implementation each
# --------------------------------------------------------------------------- #


def _kernel(cfg, q, k, v=None, *, cpu_op=None):
    """The compiled object for the tensors' signature: the CPU one for the
    CPU kernel of op ``cpu_op`` (which PyTorch also dispatches other devices
    without a kernel to), else the CUDA one."""
    _, hq, hkv, _, d = check_inputs(cfg.c_h, q, k, v)
    if cpu_op is not None and q.device.type != "cpu":
        raise ValueError(f"unisparse::{cpu_op}: no kernel for device {q.device}")
    device = "cpu" if cpu_op is not None else str(q.device)
    return _compile(cfg, heads=hq, kv_heads=hkv, head_dim=d, dtype=_DTYPES[q.dtype], device=device)


@torch.library.custom_op(
    "unisparse::attention", mutates_args=(), schema=_schema("Tensor q, Tensor k, Tensor v", "Tensor o, Tensor lse")
)
def _attention_op(q, k, v, *args):
    kern = _kernel(config_from_args(*args), q, k, v, cpu_op="attention")
    o = torch.empty(q.shape, dtype=q.dtype)
    lse = torch.empty(q.shape[:3], dtype=torch.float32)
    kern.attention(_np(q), _np(k), _np(v), _np(o), _np(lse))
    return o, lse


@_attention_op.register_kernel("cuda")
def _attention_cuda(q, k, v, *args):
    return _kernel(config_from_args(*args), q, k, v).attention(q, k, v)


@_attention_op.register_fake
def _attention_fake(q, k, v, *args):
    b, hq, _, n, d = check_inputs(_field(args, "c_h"), q, k, v)
    return q.new_empty((b, hq, n, d)), q.new_empty((b, hq, n), dtype=torch.float32)


@torch.library.custom_op(
    "unisparse::layout", mutates_args=(), schema=_schema("Tensor q, Tensor k", "Tensor counts, Tensor indices")
)
def _layout_op(q, k, *args):
    kern = _kernel(config_from_args(*args), q, k, cpu_op="layout")
    _, counts, indices = kern.layout(_np(q), _np(k))
    return torch.from_numpy(counts), torch.from_numpy(indices)


@_layout_op.register_kernel("cuda")
def _layout_cuda(q, k, *args):
    _, counts, indices = _kernel(config_from_args(*args), q, k).layout(q, k)
    return counts, indices


def _fake_layout(q, k, args, v=None):
    b, hq, _, n, _ = check_inputs(_field(args, "c_h"), q, k, v)
    hg, nb = hq // _field(args, "c_h"), (n + _field(args, "block") - 1) // _field(args, "block")
    return (q.new_empty((b, hg, nb), dtype=torch.int32), q.new_empty((b, hg, nb, nb), dtype=torch.int32))


@_layout_op.register_fake
def _layout_fake(q, k, *args):
    return _fake_layout(q, k, args)


@torch.library.custom_op(
    "unisparse::attention_layout",
    mutates_args=(),
    schema=_schema("Tensor q, Tensor k, Tensor v", "Tensor o, Tensor lse, Tensor counts, Tensor indices"),
)
def _attention_layout_op(q, k, v, *args):
    kern = _kernel(config_from_args(*args), q, k, v, cpu_op="attention_layout")
    o = torch.empty(q.shape, dtype=q.dtype)
    lse = torch.empty(q.shape[:3], dtype=torch.float32)
    _, _, counts, indices = kern.attention_layout(_np(q), _np(k), _np(v), _np(o), _np(lse))
    return o, lse, torch.from_numpy(counts), torch.from_numpy(indices)


@_attention_layout_op.register_kernel("cuda")
def _attention_layout_cuda(q, k, v, *args):
    return _kernel(config_from_args(*args), q, k, v).attention_layout(q, k, v)


@_attention_layout_op.register_fake
def _attention_layout_fake(q, k, v, *args):
    o, lse = _attention_fake(q, k, v, *args)
    return (o, lse) + _fake_layout(q, k, args, v)


def _setup_context(ctx, inputs, output):
    pass


def _backward(ctx, *grads):
    raise NotImplementedError(
        "unisparse::attention has no backward: UniSparse is a forward-only (prefill) method; "
        "run it under torch.no_grad() / torch.inference_mode(), or use dense attention for training"
    )


_attention_op.register_autograd(_backward, setup_context=_setup_context)
_attention_layout_op.register_autograd(_backward, setup_context=_setup_context)


# --------------------------------------------------------------------------- #
# The tensor path of unisparse.attention
# --------------------------------------------------------------------------- #


def attention(q, k, v, cfg: Config, *, return_lse: bool = False, return_layout: bool = False):
    """:func:`unisparse.attention` for tensors (validated here, so that bad
    input fails before dispatch with the same messages as the op)."""
    b, hq, _, n, _ = check_inputs(cfg.c_h, q, k, v)
    args = config_args(cfg)
    if not return_layout:
        o, lse = torch.ops.unisparse.attention(q, k, v, *args)
        return AttentionResult(output=o, lse=lse) if return_lse else o
    # One estimation: the layout that the attention used.
    o, lse, counts, indices = torch.ops.unisparse.attention_layout(q, k, v, *args)
    res = AttentionResult(output=o, lse=lse if return_lse else None, counts=counts, indices=indices)
    nb = (n + cfg.block - 1) // cfg.block
    per = nb * (nb + 1) // 2 if cfg.causal else nb * nb
    denom = b * (hq // cfg.c_h) * per
    res.density = (
        counts.sum(dtype=torch.float32) / denom if denom else torch.ones((), dtype=torch.float32, device=q.device)
    )
    return res
