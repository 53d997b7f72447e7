"""The public entry points: :func:`compile` and :func:`attention`.

``compile`` builds a configuration ahead of time for fixed heads, head dim,
dtype and device (batch and sequence length stay dynamic) and returns the
compiled object; ``attention`` runs UniSparse attention on NumPy arrays or
PyTorch tensors, compiling (once per configuration, shape signature, dtype and
device) on first use.

Dtypes: ``float32``, ``float16`` and ``bfloat16``. NumPy has no bfloat16, so
bf16 NumPy data is passed as ``uint16`` bit patterns (or as ``ml_dtypes``'
``bfloat16``, which is viewed as such); bf16 PyTorch tensors are viewed, not
copied. Inputs must be C-contiguous: a strided input is rejected rather than
copied behind the caller's back (call ``.contiguous()``).

Devices: the CPU path is :mod:`unisparse.cpu`. The CUDA path lives in
``unisparse.gpu`` (built on ``unisparse-compile`` and the runtime's CUDA
kernels, compiled ahead of time elsewhere): a library loaded with
``unisparse.gpu.load_compiled`` and passed to :func:`register_compiled` serves
its signature; an unregistered CUDA signature, or a build without
``unisparse.gpu``, raises :class:`NotImplementedError` naming what is missing
(see :func:`_compile_cuda`).
"""

from __future__ import annotations

import dataclasses
import importlib
import sys
import threading
from typing import Any

import numpy as np

from .config import Config

__all__ = ["compile", "attention", "AttentionResult", "register_compiled", "canonical_dtype", "gpu_module"]

_DTYPE_NAMES = {
    "f32": "f32", "float32": "f32", "fp32": "f32", "float": "f32",
    "f16": "f16", "float16": "f16", "fp16": "f16", "half": "f16",
    "bf16": "bf16", "bfloat16": "bf16",
}
_SUPPORTED = "float32, float16 or bfloat16"


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
            raise TypeError(f"unsupported dtype {dtype!r}: expected {_SUPPORTED}") from None
        if name == "uint16":
            name = "bf16"
    if name not in _DTYPE_NAMES:
        raise TypeError(f"unsupported dtype {dtype!r}: expected {_SUPPORTED}")
    return _DTYPE_NAMES[name]


def _canonical_device(device) -> str:
    text = str(device)
    if text == "cpu" or text == "cuda" or (text.startswith("cuda:") and text[5:].isdigit()):
        return text
    raise ValueError(f"unsupported device {device!r}: expected 'cpu' or 'cuda[:N]'")


def gpu_module(purpose: str):
    """``unisparse.gpu``, or :class:`NotImplementedError` naming what is missing."""
    try:
        return importlib.import_module("unisparse.gpu")
    except ModuleNotFoundError as e:
        if e.name not in ("unisparse.gpu",):
            raise
        raise NotImplementedError(
            f"{purpose} needs the CUDA path (the module unisparse.gpu, built on unisparse-compile "
            f"and the runtime's CUDA kernels), which is not available in this build; use CPU "
            f"tensors / NumPy arrays (device='cpu') for now") from None


def _compile_cuda(cfg, hq, hkv, d, dt, dev):
    """A CUDA compiled object for the signature, from ``unisparse.gpu``.

    A GPU machine has no LLVM: CUDA libraries are compiled elsewhere with
    ``unisparse-compile --target=cuda`` and loaded with
    ``unisparse.gpu.load_compiled``; :func:`register_compiled` makes such a
    library the one :func:`compile` (and so :func:`attention` and the
    PyTorch op) use for its signature. If ``unisparse.gpu`` also offers
    ``compile_gpu(config, heads, kv_heads, head_dim, dtype, device)`` (an
    in-process compiler), it is used for signatures nobody registered.
    The compiled object must provide ``attention(q, k, v) -> (o, lse)`` and
    ``layout(q, k) -> (scores, counts, indices)`` on contiguous CUDA tensors,
    queued on the current stream (as ``unisparse.gpu.CompiledCUDA`` does).
    """
    gpu = gpu_module(f"unisparse.compile(device={dev!r})")
    if hasattr(gpu, "compile_gpu"):
        return gpu.compile_gpu(cfg, hq, hkv, d, dt, dev)
    raise NotImplementedError(
        f"no CUDA library registered for {cfg.mlir_attr()} with heads={hq}, kv_heads={hkv}, "
        f"head_dim={d}, dtype={dt}, device={dev!r}, and unisparse.gpu cannot compile in process "
        f"(no compile_gpu): compile it with `unisparse-compile --target=cuda`, load it with "
        f"unisparse.gpu.load_compiled(...) and pass it to unisparse.register_compiled(...)")


_COMPILED: dict[tuple, Any] = {}
_COMPILED_LOCK = threading.Lock()


def _check_positive(name, value):
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value <= 0:
        raise ValueError(f"{name} must be a positive int, got {value!r}")
    return int(value)


def compile(config: Config | None = None, *, heads: int, kv_heads: int, head_dim: int,
            dtype="bf16", device: str = "cpu"):
    """Compiles ``config`` ahead of time and returns the compiled object.

    Parameters
    ----------
    config : :class:`unisparse.Config` (default ``Config()``).
    heads, kv_heads, head_dim : query heads ``Hq``, key/value heads ``Hkv``
        (``Hq % Hkv == 0``, GQA) and head dim ``D``; batch and sequence
        length stay dynamic.
    dtype : ``"f32"``/``"f16"``/``"bf16"`` or an equivalent NumPy/PyTorch dtype.
    device : ``"cpu"`` (today) or ``"cuda[:N]"`` (needs ``unisparse.gpu``).

    Returns
    -------
    For the CPU a :class:`unisparse.cpu.CompiledCPU`, whose
    ``attention(q, k, v) -> (o, lse)`` and ``layout(q, k) -> (scores,
    counts, indices)`` take C-contiguous NumPy arrays (bf16 as ``uint16``
    bits). Results are cached per (config, heads, kv_heads, head_dim, dtype,
    device) in the process, and the shared library on disk.
    """
    cfg = Config() if config is None else config
    if not isinstance(cfg, Config):
        raise TypeError(f"config must be a unisparse.Config, got {type(cfg).__name__}")
    hq = _check_positive("heads", heads)
    hkv = _check_positive("kv_heads", kv_heads)
    d = _check_positive("head_dim", head_dim)
    if hq % hkv:
        raise ValueError(f"heads ({hq}) must be a multiple of kv_heads ({hkv})")
    if hq % cfg.c_h:
        raise ValueError(f"heads ({hq}) must be a multiple of Config.c_h ({cfg.c_h})")
    dt = canonical_dtype(dtype)
    dev = _canonical_device(device)
    key = (cfg, hq, hkv, d, dt, dev)
    compiled = _COMPILED.get(key)
    if compiled is not None:
        return compiled
    with _COMPILED_LOCK:
        compiled = _COMPILED.get(key)
        if compiled is None:
            if dev == "cpu":
                from .cpu import compile_cpu
                compiled = compile_cpu(cfg, hq, hkv, d, dt)
            else:
                compiled = _compile_cuda(cfg, hq, hkv, d, dt, dev)
            _COMPILED[key] = compiled
    return compiled


def _key(config, heads, kv_heads, head_dim, dtype, device):
    cfg = Config() if config is None else config
    if not isinstance(cfg, Config):
        raise TypeError(f"config must be a unisparse.Config, got {type(cfg).__name__}")
    return (cfg, _check_positive("heads", heads), _check_positive("kv_heads", kv_heads),
            _check_positive("head_dim", head_dim), canonical_dtype(dtype), _canonical_device(device))


def register_compiled(compiled, config: Config | None = None, *, heads: int, kv_heads: int,
                      head_dim: int, dtype, device: str = "cuda"):
    """Makes ``compiled`` (e.g. ``unisparse.gpu.load_compiled(...)`` of a
    library built by ``unisparse-compile``) the object that :func:`compile`
    returns for this signature, so that :func:`attention` and
    ``torch.ops.unisparse.attention`` run it. A CUDA device ``"cuda"`` also
    serves ``"cuda:N"`` lookups only if registered for each; returns
    ``compiled``."""
    key = _key(config, heads, kv_heads, head_dim, dtype, device)
    with _COMPILED_LOCK:
        _COMPILED[key] = compiled
    return compiled


@dataclasses.dataclass
class AttentionResult:
    """What :func:`attention` returns when ``return_lse`` or ``return_layout`` is set.

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


def _is_torch_tensor(x) -> bool:
    torch = sys.modules.get("torch")
    return torch is not None and isinstance(x, torch.Tensor)


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
        raise ValueError(f"sequence length mismatch: q has N = {n}, k/v have N = {ks[2]} "
                         f"(UniSparse is self-attention prefill: key and query lengths must be equal)")
    if ks[3] != d:
        raise ValueError(f"head_dim mismatch: q has {d}, k/v have {ks[3]}")
    hkv = ks[1]
    if hq == 0 or hkv == 0 or d == 0:
        raise ValueError(f"heads and head_dim must be positive, got q {tuple(qs)}, k {tuple(ks)}")
    if hq % hkv:
        raise ValueError(f"query heads ({hq}) must be a multiple of key/value heads ({hkv}) (GQA)")
    if hq % c_h:
        raise ValueError(f"query heads ({hq}) must be a multiple of Config.c_h ({c_h})")
    return b, hq, hkv, n, d


def _numpy_dtype(x: np.ndarray) -> str:
    if x.dtype == np.float32:
        return "f32"
    if x.dtype == np.float16:
        return "f16"
    if x.dtype == np.uint16 or x.dtype.name == "bfloat16":
        return "bf16"
    raise TypeError(f"unsupported dtype {x.dtype}: expected {_SUPPORTED} "
                    f"(bfloat16 NumPy data as uint16 bits)")


def attention(q, k, v, config: Config | None = None, *, return_lse: bool = False,
              return_layout: bool = False):
    """UniSparse attention of ``q [B, Hq, N, D]`` over ``k, v [B, Hkv, N, D]``.

    ``q``, ``k``, ``v`` are all NumPy arrays or all PyTorch tensors (CPU
    today; CUDA needs ``unisparse.gpu``), of one dtype (float32, float16,
    bfloat16; NumPy bf16 as ``uint16`` bits), C-contiguous. ``config`` defaults
    to ``Config()``. The configuration is compiled on first use and cached.

    Returns the output ``[B, Hq, N, D]`` (type and dtype of ``q``) or, when
    ``return_lse`` or ``return_layout`` is set, an :class:`AttentionResult`.
    PyTorch tensors go through the custom op ``torch.ops.unisparse.attention``
    (and ``torch.ops.unisparse.layout`` for the layout), so the call traces
    under ``torch.compile``. No autograd: UniSparse is a prefill method; the
    backward raises.

    Raises ``TypeError`` for a non-array input, mixed kinds or an unsupported
    or mismatched dtype; ``ValueError`` for bad shapes, head counts,
    non-contiguous inputs or mismatched/unsupported devices;
    ``NotImplementedError`` for CUDA inputs until ``unisparse.gpu`` exists;
    :class:`unisparse.UnisparseError` for a failure reported by the runtime.
    """
    cfg = Config() if config is None else config
    if not isinstance(cfg, Config):
        raise TypeError(f"config must be a unisparse.Config, got {type(cfg).__name__}")
    kinds = ["torch" if _is_torch_tensor(x) else "numpy" if isinstance(x, np.ndarray) else None
             for x in (q, k, v)]
    for name, x, kind in zip("qkv", (q, k, v), kinds):
        if kind is None:
            raise TypeError(f"{name} must be a torch.Tensor or a numpy.ndarray, got {type(x).__name__}")
    if len(set(kinds)) != 1:
        raise TypeError(f"q, k, v must all be torch tensors or all numpy arrays, got "
                        f"{', '.join(type(x).__name__ for x in (q, k, v))}")
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
    o, lse = kern.attention(q, k, v)
    if bf16_type is not None:
        o = o.view(bf16_type)
    if not (return_lse or return_layout):
        return o
    res = AttentionResult(output=o, lse=lse if return_lse else None)
    if return_layout:
        from .reference import density
        _, res.counts, res.indices = kern.layout(q, k)
        res.density = density(res.counts, n, cfg.block, cfg.causal)
    return res
