"""The CPU path: compile a configuration ahead of time and run it on NumPy.

``compile_cpu`` runs ``unisparse-compile --target=cpu`` (which builds the
entry module for the configuration, runs ``unisparse-to-cpu`` and links a
shared library) and loads the library with ctypes next to
``libunisparse_runtime``. The tools are found in ``$UNISPARSE_BUILD_DIR``
(default: ``<repo>/build``); libraries are cached by :mod:`unisparse._build`.
"""

from __future__ import annotations

import ctypes
import pathlib

import numpy as np

from . import _build, _memref, _runtime, rules
from ._core import UnisparseError
from .config import Config

__all__ = ["CompiledCPU", "compile_cpu", "runtime", "UnisparseError"]


def runtime() -> ctypes.CDLL:
    """libunisparse_runtime (loaded once per process, RTLD_GLOBAL)."""
    return _runtime.load(_build.runtime_path())


_NP_DTYPES = {"f32": np.float32, "f16": np.float16, "bf16": np.uint16}


def _check_outputs(outputs: dict, inputs: dict):
    """The kernel writes `outputs` in place: each must be writable (a
    read-only array, e.g. over ``bytes``, would crash the process or change an
    immutable object) and overlap no input and no other output (the kernel
    reads its inputs while it writes, so an alias gives wrong results)."""
    for name, x in outputs.items():
        if not x.flags.writeable:
            raise ValueError(f"{name} must be a writable array (it receives the result in place)")
    names = list(outputs.items())
    for i, (name, x) in enumerate(names):
        for other, y in names[i + 1 :] + list(inputs.items()):
            if np.may_share_memory(x, y):
                raise ValueError(
                    f"{name} overlaps {other} in memory: the outputs must not alias each other or an input"
                )


class CompiledCPU:
    """A configuration compiled for the CPU for fixed heads, head dim, dtype."""

    def __init__(self, cfg: Config, hq: int, hkv: int, head_dim: int, dtype: str, lib_path, lib=None):
        """`lib`: the library at `lib_path` if already loaded (else it is
        loaded here, after the runtime)."""
        self.cfg, self.hq, self.hkv, self.head_dim, self.dtype = cfg, hq, hkv, head_dim, dtype
        self.hg = hq // cfg.c_h
        self.lib_path = pathlib.Path(lib_path)
        runtime()
        self._lib = lib if lib is not None else _build.load_library(self.lib_path)
        self._attention = self._lib._mlir_ciface_attention
        self._layout = self._lib._mlir_ciface_layout
        self._attention_layout = self._lib._mlir_ciface_attention_layout
        for fn in (self._attention, self._layout, self._attention_layout):
            fn.restype = None

    def _check_qk(self, q, k, v=None):
        want = _NP_DTYPES[self.dtype]
        for name, x, h in (("q", q, self.hq), ("k", k, self.hkv)) + ((("v", v, self.hkv),) if v is not None else ()):
            if not isinstance(x, np.ndarray) or x.dtype != want:
                raise TypeError(
                    f"{name} must be a numpy array of dtype {np.dtype(want)} "
                    f"({self.dtype}), got {getattr(x, 'dtype', type(x))}"
                )
            if x.ndim != 4 or x.shape[1] != h or x.shape[3] != self.head_dim:
                raise ValueError(f"{name} must have shape [B, {h}, N, {self.head_dim}], got {x.shape}")
        if k.shape[0] != q.shape[0] or k.shape[2] != q.shape[2]:
            raise ValueError(f"k shape {k.shape} does not match q shape {q.shape} in batch/sequence")
        if v is not None and v.shape != k.shape:
            raise ValueError(f"v shape {v.shape} must equal k shape {k.shape}")

    def attention(self, q, k, v, o=None, lse=None):
        """Returns (o, lse) for q [B, Hq, N, D], k, v [B, Hkv, N, D].

        ``o`` ([B, Hq, N, D], the dtype of q) and ``lse`` ([B, Hq, N],
        float32), when given, are C-contiguous arrays that receive the results
        in place (the PyTorch op passes views of the tensors it allocated).
        """
        return self._run(self._attention, q, k, v, {"o": o, "lse": lse})

    def attention_layout(self, q, k, v, o=None, lse=None, counts=None, indices=None):
        """Returns (o, lse, counts, indices): :meth:`attention` and the block
        layout it used (int32 [B, Hg, NB] and [B, Hg, NB, NB], as
        :meth:`layout` gives them), from one estimation. Given outputs
        receive the results in place, as in :meth:`attention`."""
        return self._run(self._attention_layout, q, k, v, {"o": o, "lse": lse, "counts": counts, "indices": indices})

    def _run(self, fn, q, k, v, outputs):
        self._check_qk(q, k, v)
        b, _, n, _ = q.shape
        nb = -(-n // self.cfg.block)
        # Fresh outputs start as NaN (layouts as -7) so that an element the
        # kernel fails to write cannot pass for a result.
        specs = {
            "o": (q.shape, q.dtype, 0x7FC0 if self.dtype == "bf16" else np.nan),
            "lse": ((b, self.hq, n), np.float32, np.nan),
            "counts": ((b, self.hg, nb), np.int32, -7),
            "indices": ((b, self.hg, nb, nb), np.int32, -7),
        }
        for name, x in outputs.items():
            shape, dt, fill = specs[name]
            if x is None:
                outputs[name] = x = np.full(shape, fill, dtype=dt)
            if not isinstance(x, np.ndarray) or x.shape != shape or x.dtype != dt:
                raise ValueError(
                    f"{name} must be a numpy array {shape} of dtype {np.dtype(dt)}, "
                    f"got {getattr(x, 'shape', type(x))} {getattr(x, 'dtype', '')}"
                )
        for name, x in (("q", q), ("k", k), ("v", v), *outputs.items()):
            if not x.flags.c_contiguous:
                raise ValueError(f"{name} must be C-contiguous")
        _check_outputs(outputs, {"q": q, "k": k, "v": v})
        results = tuple(outputs.values())
        if b == 0 or n == 0:
            return results
        descs = [_memref.descriptor(x) for x in (q, k, v, *results)]
        _runtime.clear()
        fn(*[ctypes.byref(x) for x in descs])
        _runtime.check()
        return results

    def layout(self, q, k):
        """Returns (scores, counts, indices) of the estimation stages."""
        self._check_qk(q, k)
        for name, x in (("q", q), ("k", k)):
            if not x.flags.c_contiguous:
                raise ValueError(f"{name} must be C-contiguous")
        b, _, n, _ = q.shape
        nb = -(-n // self.cfg.block)
        scores = np.full((b, self.hg, nb, nb), np.nan, dtype=np.float32)
        counts = np.full((b, self.hg, nb), -7, dtype=np.int32)
        indices = np.full((b, self.hg, nb, nb), -7, dtype=np.int32)
        if b == 0 or n == 0:
            return scores, counts, indices
        descs = [_memref.descriptor(x) for x in (q, k, scores, counts, indices)]
        _runtime.clear()
        self._layout(*[ctypes.byref(x) for x in descs])
        _runtime.check()
        return scores, counts, indices


def compile_cpu(cfg: Config, hq: int, hkv: int, head_dim: int, dtype: str = "f32") -> CompiledCPU:
    """Compiles `cfg` for the CPU with ``unisparse-compile --target=cpu``
    (cached by signature and compiler, see :mod:`unisparse._build`) and
    loads it."""
    rules.check_heads(hq, hkv, head_dim, cfg.c_h)
    if dtype not in _NP_DTYPES:
        raise ValueError(f"dtype must be one of {sorted(_NP_DTYPES)}, got {dtype!r}")
    signature = f"{cfg.mlir_attr()}|{hq}|{hkv}|{head_dim}|{dtype}"
    runtime()  # first: the library resolves the runtime's symbols against it
    path, lib = _build.load_cached(
        "cpu",
        signature,
        [
            f"--config={cfg.mlir_attr()}",
            f"--heads={hq}",
            f"--kv-heads={hkv}",
            f"--head-dim={head_dim}",
            f"--dtype={dtype}",
            "--target=cpu",
            f"--link-runtime={_build.build_dir() / 'lib'}",
        ],
    )
    return CompiledCPU(cfg, hq, hkv, head_dim, dtype, path, lib)
