"""UniSparse: training-free sparse attention for long-context prefill.

Public API (see docs/Python.md):

* :class:`unisparse.Config` - the knobs of the method;
* :func:`unisparse.compile` - compile a configuration ahead of time for
  fixed heads / head dim / dtype / device;
* :func:`unisparse.attention` - run it on NumPy arrays or PyTorch tensors
  (returns the output, or an :class:`unisparse.AttentionResult` with the LSE
  and the block layout);
* :func:`unisparse.register_compiled` - serve a signature with a library
  compiled elsewhere (the CUDA path: ``unisparse.gpu.load_compiled``);
* :class:`unisparse.UnisparseError` - a failure reported by the compiler or
  the runtime.

Submodules (imported lazily, none of them imports torch unless asked):

* :mod:`unisparse.reference` - NumPy reference of the exact semantics;
* :mod:`unisparse.synthetic` - structured synthetic Q/K/V generators;
* :mod:`unisparse.cpu` - the CPU ahead-of-time path;
* :mod:`unisparse.gpu` - the CUDA path (libraries built by unisparse-compile);
* :mod:`unisparse.torch_ops` - the ``torch.ops.unisparse.*`` custom ops;
* :mod:`unisparse.integrations.hf` - ``attn_implementation="unisparse"``
  for Hugging Face transformers;
* :mod:`unisparse.fidelity` - the fidelity harness
  (``python -m unisparse.fidelity``).
"""

import importlib

from ._core import AttentionResult, UnisparseError
from .api import attention
from .config import Config
from .registry import compile, register_compiled

__version__ = "0.1.0"

__all__ = ["Config", "compile", "attention", "register_compiled", "AttentionResult", "UnisparseError", "__version__"]

_SUBMODULES = ("reference", "synthetic", "cpu", "gpu", "registry", "torch_ops", "integrations", "fidelity")


def __getattr__(name):
    if name in _SUBMODULES:
        return importlib.import_module(f".{name}", __name__)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def __dir__():
    return sorted(list(globals()) + list(_SUBMODULES))
