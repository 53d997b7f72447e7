"""UniSparse: training-free sparse attention for long-context prefill.

Submodules (imported lazily):

* :mod:`unisparse.reference` - NumPy reference of the exact semantics;
* :mod:`unisparse.synthetic` - structured synthetic Q/K/V generators.
"""

import importlib

__version__ = "0.1.0"

_SUBMODULES = ("reference", "synthetic")


def __getattr__(name):
    if name in _SUBMODULES:
        return importlib.import_module(f".{name}", __name__)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def __dir__():
    return sorted(list(globals()) + list(_SUBMODULES))
