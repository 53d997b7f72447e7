"""The one libunisparse_runtime of the process, and its error reporting.

Compiled libraries (CPU or CUDA) resolve the runtime's symbols (the attention
kernels, ``mgpu*``, ``memrefCopy``) against the copy loaded here with
RTLD_GLOBAL, so a process loads exactly one runtime: the first path asked for
wins, and later requests reuse it.
"""

from __future__ import annotations

import ctypes
import pathlib

from . import _build
from ._core import UnisparseError

_lib: ctypes.CDLL | None = None


def load(path) -> ctypes.CDLL:
    """Loads the runtime from `path` unless one is loaded already."""
    global _lib
    if _lib is None:
        path = pathlib.Path(path)
        if not path.exists():
            raise UnisparseError(f"runtime library not found at {path}; build the project first")
        lib = _build.load_library(path, mode=ctypes.RTLD_GLOBAL)
        lib.unisparse_rt_last_error.restype = ctypes.c_int
        lib.unisparse_rt_last_error_message.restype = ctypes.c_char_p
        lib.unisparse_rt_clear_error.restype = None
        lib.unisparse_rt_has_cuda.restype = ctypes.c_int32
        lib.unisparse_rt_set_current_stream.argtypes = [ctypes.c_void_p]
        lib.unisparse_rt_set_current_stream.restype = None
        _lib = lib
    return _lib


def loaded() -> ctypes.CDLL:
    """The runtime loaded by :func:`load` (an error if none is)."""
    if _lib is None:
        raise UnisparseError("libunisparse_runtime is not loaded")
    return _lib


def clear():
    """Clears the thread's recorded runtime error (before a compiled call,
    so that a stale error is not blamed on it)."""
    loaded().unisparse_rt_clear_error()


def set_current_stream(stream):
    """The runtime's current CUDA stream for this thread (a CUstream handle
    as an int, or None)."""
    loaded().unisparse_rt_set_current_stream(stream)


def check():
    """Raises UnisparseError if the runtime recorded a failure on this thread
    (and clears it)."""
    status = _lib.unisparse_rt_last_error()
    if status != 0:
        message = _lib.unisparse_rt_last_error_message().decode()
        _lib.unisparse_rt_clear_error()
        raise UnisparseError(f"runtime error {status}: {message}")
