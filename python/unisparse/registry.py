"""Compiled objects per signature: :func:`compile` and
:func:`register_compiled`.

``compile`` builds a configuration ahead of time for fixed heads, head dim,
dtype and device (batch and sequence length stay dynamic) and returns the
compiled object, cached per signature in the process (and the library on
disk, see :mod:`unisparse._build`). The CPU back end is
:mod:`unisparse.cpu`; the CUDA one is :mod:`unisparse.gpu`: a library
loaded with ``unisparse.gpu.load_compiled`` and passed to
:func:`register_compiled` serves its signature, else ``compile_gpu`` finds
one in ``$UNISPARSE_AOT_DIR`` or compiles it where LLVM is.
"""

from __future__ import annotations

import threading
from typing import Any

from . import rules
from ._core import canonical_device, canonical_dtype
from .config import Config

__all__ = ["compile", "register_compiled"]

_COMPILED: dict[tuple, Any] = {}
_COMPILED_LOCK = threading.Lock()


def _key(config, heads, kv_heads, head_dim, dtype, device):
    cfg = Config() if config is None else config
    if not isinstance(cfg, Config):
        raise TypeError(f"config must be a unisparse.Config, got {type(cfg).__name__}")
    hq, hkv, d = (rules.integer(n, x) for n, x in (("heads", heads), ("kv_heads", kv_heads), ("head_dim", head_dim)))
    rules.check_heads(hq, hkv, d, cfg.c_h)
    return (cfg, hq, hkv, d, canonical_dtype(dtype), canonical_device(device))


def compile(
    config: Config | None = None, *, heads: int, kv_heads: int, head_dim: int, dtype="bf16", device: str = "cpu"
):
    """Compiles ``config`` ahead of time and returns the compiled object.

    Parameters
    ----------
    config : :class:`unisparse.Config` (default ``Config()``).
    heads, kv_heads, head_dim : query heads ``Hq``, key/value heads ``Hkv``
        (``Hq % Hkv == 0``, GQA) and head dim ``D``; batch and sequence
        length stay dynamic.
    dtype : ``"f32"``/``"f16"``/``"bf16"`` or an equivalent NumPy/PyTorch dtype.
    device : ``"cpu"`` or ``"cuda[:N]"``.

    Returns
    -------
    For the CPU a :class:`unisparse.cpu.CompiledCPU`, whose
    ``attention(q, k, v) -> (o, lse)`` and ``layout(q, k) -> (scores,
    counts, indices)`` take C-contiguous NumPy arrays (bf16 as ``uint16``
    bits); for CUDA a :class:`unisparse.gpu.CompiledCUDA` on CUDA tensors.
    Results are cached per (config, heads, kv_heads, head_dim, dtype,
    device) in the process, and the shared library on disk.
    """
    key = _key(config, heads, kv_heads, head_dim, dtype, device)
    compiled = _COMPILED.get(key)
    if compiled is not None:
        return compiled
    with _COMPILED_LOCK:
        compiled = _COMPILED.get(key)
        if compiled is None:
            cfg, hq, hkv, d, dt, dev = key
            if dev == "cpu":
                from .cpu import compile_cpu

                compiled = compile_cpu(cfg, hq, hkv, d, dt)
            else:
                from .gpu import compile_gpu

                compiled = compile_gpu(cfg, hq, hkv, d, dt, dev)
            _COMPILED[key] = compiled
    return compiled


def register_compiled(
    compiled, config: Config | None = None, *, heads: int, kv_heads: int, head_dim: int, dtype, device: str = "cuda"
):
    """Makes ``compiled`` (e.g. ``unisparse.gpu.load_compiled(...)`` of a
    library built by ``unisparse-compile``) the object that :func:`compile`
    returns for this signature, so that :func:`unisparse.attention` and
    ``torch.ops.unisparse.attention`` run it. A CUDA device ``"cuda"`` also
    serves ``"cuda:N"`` lookups only if registered for each; returns
    ``compiled``."""
    key = _key(config, heads, kv_heads, head_dim, dtype, device)
    with _COMPILED_LOCK:
        _COMPILED[key] = compiled
    return compiled
