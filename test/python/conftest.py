"""Shared helpers for the Python tests.

The compiled-path tests need the CMake build (``build/bin/unisparse-opt`` and
``build/lib/libunisparse_runtime.so``, or ``$UNISPARSE_BUILD_DIR``); they fail
with a clear message without it rather than skipping, so that CI cannot pass
without running them. GPU tests skip where CUDA is not available.
"""

import importlib.util
import pathlib
import sys

import numpy as np
import pytest

ROOT = pathlib.Path(__file__).resolve().parents[2]
if str(ROOT / "python") not in sys.path:
    sys.path.insert(0, str(ROOT / "python"))

from unisparse._memref import bf16_from_f32, f32_from_bf16  # noqa: E402


def gpu_scripts(*names):
    """The modules `names` of scripts/gpu/ (configs, check, compile_all, ...),
    imported with that directory on sys.path and sys.path restored after
    (compile_all adds its own directory on import)."""
    saved = list(sys.path)
    sys.path.insert(0, str(ROOT / "scripts/gpu"))
    try:
        return [importlib.import_module(name) for name in names]
    finally:
        sys.path[:] = saved


def cuda_available() -> bool:
    if importlib.util.find_spec("torch") is None:
        return False
    import torch

    return torch.cuda.is_available()


requires_cuda = pytest.mark.skipif(not cuda_available(), reason="needs a CUDA GPU")


def to_np_dtype(x, dtype):
    """float data -> the NumPy form of `dtype` (bf16 as uint16 bits)."""
    if dtype == "f32":
        return np.ascontiguousarray(x, np.float32)
    if dtype == "f16":
        return np.ascontiguousarray(x, np.float16)
    return bf16_from_f32(np.asarray(x, np.float32))


def widen(x, dtype):
    """The NumPy form of `dtype` -> float64 (exactly the values the kernel sees)."""
    return f32_from_bf16(x).astype(np.float64) if dtype == "bf16" else np.asarray(x, np.float64)


TOL = {"f32": 2e-5, "f16": 2e-3, "bf16": 1.5e-2}


def sum_order_atol(*terms, out_eps=2.0**-23):
    """Tolerance for comparing two evaluations of ``sum_i c_i * sum(t_i)``
    whose float32 reductions run in different orders (eager vs Inductor, one
    thread count vs another): ``terms`` are ``(tensor, c)`` pairs.

    Any order of a float32 sum of ``n`` terms errs by at most
    ``gamma_{n-1} * sum|x|`` with ``gamma_k = k u / (1 - k u)``, ``u = 2^-24``
    (Higham, Accuracy and Stability of Numerical Algorithms, eq. 4.4), so two
    orders differ by at most twice that. The result is then rounded to its
    dtype (``out_eps``: float32 2^-23, bfloat16 2^-7) once per evaluation,
    which adds ``out_eps * |result|``. The bound does not depend on the
    order either evaluation used, so it holds on any machine.
    """
    u = 2.0**-24
    atol, total = 0.0, 0.0
    for t, c in terms:
        a = t.detach().double().abs()
        n = max(t.numel() - 1, 1)
        gamma = n * u / (1 - n * u)
        atol += 2 * gamma * abs(c) * float(a.sum())
        total += abs(c) * float(t.detach().double().sum())
    return atol + out_eps * abs(total)
