"""ctypes views of MLIR memref descriptors and of the runtime's error API."""

from __future__ import annotations

import ctypes

import numpy as np

_DESCRIPTOR_TYPES: dict[int, type] = {}


def descriptor_type(rank: int) -> type:
    """The ctypes struct of MLIR's ranked memref descriptor of `rank`."""
    if rank not in _DESCRIPTOR_TYPES:

        class Descriptor(ctypes.Structure):
            _fields_ = [
                ("allocated", ctypes.c_void_p),
                ("aligned", ctypes.c_void_p),
                ("offset", ctypes.c_int64),
                ("sizes", ctypes.c_int64 * rank),
                ("strides", ctypes.c_int64 * rank),
            ]

        Descriptor.__name__ = f"MemRef{rank}D"
        _DESCRIPTOR_TYPES[rank] = Descriptor
    return _DESCRIPTOR_TYPES[rank]


def descriptor(array: np.ndarray):
    """A descriptor viewing `array` (any strides, in elements), kept alive by
    the caller holding `array`."""
    if array.strides and any(s % array.itemsize for s in array.strides):
        raise ValueError("array strides must be whole elements")
    desc = descriptor_type(array.ndim)()
    ptr = array.ctypes.data
    desc.allocated = ptr
    desc.aligned = ptr
    desc.offset = 0
    for i, (n, s) in enumerate(zip(array.shape, array.strides)):
        desc.sizes[i] = n
        desc.strides[i] = s // array.itemsize
    return desc


def bf16_from_f32(x: np.ndarray) -> np.ndarray:
    """Rounds float32 to bfloat16 (nearest even), returned as uint16 bits."""
    bits = np.ascontiguousarray(x, dtype=np.float32).view(np.uint32)
    rounding = ((bits >> 16) & 1) + 0x7FFF
    out = ((bits + rounding) >> 16).astype(np.uint16)
    nan = np.isnan(x)
    out[nan] = 0x7FC0
    return out


def f32_from_bf16(bits: np.ndarray) -> np.ndarray:
    """Widens bfloat16 bits (uint16) to float32."""
    return (np.asarray(bits, dtype=np.uint16).astype(np.uint32) << 16).view(np.float32)
