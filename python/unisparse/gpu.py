"""The CUDA path: compiled estimation + the runtime's kernel.

The libraries are made by ``unisparse-compile --target=cuda`` (one per
configuration and shape signature; batch and sequence length stay dynamic):
on the spot where the tool is (the installed wheel carries it, so a GPU
machine without LLVM compiles too), or elsewhere ahead of time, and loaded
here next to ``libunisparse_runtime.so`` built with CUDA. Every call is queued on the
current PyTorch stream (the runtime's "current stream"), with no host
synchronisation, so it can be captured in a CUDA graph.

    lib = load_compiled("libattn.so", runtime="build-gpu/libunisparse_runtime.so")
    o, lse = lib.attention(q, k, v)                  # torch CUDA tensors
    scores, counts, indices = lib.layout(q, k)
    o, lse, counts, indices = lib.attention_layout(q, k, v)   # one estimation
"""

from __future__ import annotations

import array
import ctypes
import os
import pathlib

from . import _build
from . import _runtime as _runtime_mod
from ._core import UnisparseError
from ._memref import descriptor_type


def load_runtime(path) -> ctypes.CDLL:
    """Loads libunisparse_runtime built with CUDA (once per process,
    RTLD_GLOBAL), so that compiled libraries resolve mgpu* and unisparse_rt_*
    against it."""
    lib = _runtime_mod.load(path)
    if not lib.unisparse_rt_has_cuda():
        raise UnisparseError(f"the loaded runtime ({path}) was built without CUDA")
    return lib


def check_runtime():
    """Raises UnisparseError if the runtime recorded a failure (and clears it)."""
    _runtime_mod.check()


def tensor_descriptor(t):
    """An MLIR memref descriptor of a torch tensor (device pointer, element
    sizes and strides)."""
    desc = descriptor_type(t.dim())()
    ptr = t.data_ptr()
    desc.allocated = ptr
    desc.aligned = ptr
    desc.offset = 0
    for i in range(t.dim()):
        desc.sizes[i] = t.shape[i]
        desc.strides[i] = t.stride(i)
    return desc


def packed_descriptors(tensors):
    """The memref descriptors of `tensors` (as :func:`tensor_descriptor`
    makes them) packed back to back in one int64 buffer, and the address of
    each: a descriptor is all 8-byte fields (allocated, aligned, offset,
    sizes, strides), so its bytes are those of the struct. One buffer
    instead of a ctypes struct per tensor is most of the Python side of a
    call (about 3 of 11 us for five tensors). The buffer must outlive the
    call that reads the addresses."""
    values = []
    starts = []
    for t in tensors:
        starts.append(len(values))
        ptr = t.data_ptr()
        values += (ptr, ptr, 0)
        values += t.shape
        values += t.stride()
    buf = array.array("q", values)
    base = buf.buffer_info()[0]
    return buf, [base + 8 * i for i in starts]


def entry_point(lib, name):
    """The compiled entry ``_mlir_ciface_<name>`` of `lib` with its C types
    set (descriptor pointers in, nothing out), or None if `lib` has none."""
    try:
        fn = getattr(lib, "_mlir_ciface_" + name)
    except AttributeError:
        return None
    fn.restype = None
    return fn


class _Tensor(ctypes.Structure):
    """unisparse_tensor_t of runtime/include/unisparse/runtime/unisparse_runtime.h."""

    _fields_ = [
        ("data", ctypes.c_void_p),
        ("dtype", ctypes.c_int32),
        ("device", ctypes.c_int32),
        ("rank", ctypes.c_int32),
        ("sizes", ctypes.c_int64 * 4),
        ("strides", ctypes.c_int64 * 4),
    ]


class _Params(ctypes.Structure):
    _fields_ = [("block_size", ctypes.c_int64), ("causal", ctypes.c_int32), ("scale", ctypes.c_float)]


def _runtime_tensor(t):
    import torch

    codes = {torch.float32: 0, torch.float16: 1, torch.bfloat16: 2, torch.int32: 3}
    if t.dtype not in codes:
        raise TypeError(f"unsupported dtype {t.dtype}")
    desc = _Tensor()
    desc.data = t.data_ptr()
    desc.dtype = codes[t.dtype]
    desc.device = 1 if t.is_cuda else 0
    desc.rank = t.dim()
    for i in range(t.dim()):
        desc.sizes[i] = t.shape[i]
        desc.strides[i] = t.stride(i)
    return desc


def block_sparse_attention(q, k, v, counts, indices, block, causal=True, scale=0.0):
    """The runtime's block-sparse attention on CUDA tensors with a given layout
    (counts [B, Hg, NB], indices [B, Hg, NB, M], i32), on the current stream."""
    import torch

    o = torch.empty_like(q)
    lse = torch.empty(q.shape[:3], device=q.device, dtype=torch.float32)
    ts = [_runtime_tensor(t) for t in (q, k, v, counts, indices, o, lse)]
    params = _Params(block, 1 if causal else 0, scale)
    _runtime_mod.clear()
    status = _runtime_mod.loaded().unisparse_rt_block_sparse_attention(
        *[ctypes.byref(t) for t in ts], ctypes.byref(params), ctypes.c_void_p(torch.cuda.current_stream().cuda_stream)
    )
    if status != 0:
        check_runtime()
        raise UnisparseError(f"runtime status {status}")
    return o, lse


class CompiledCUDA:
    """A library compiled by ``unisparse-compile --target=cuda``."""

    def __init__(self, path, *, heads, kv_heads, head_dim, block, c_h=1, lib=None):
        """`lib`: the library at `path` if already loaded (after the
        runtime), else it is loaded here."""
        import torch  # noqa: F401  (the caller owns the CUDA context)

        self.path = pathlib.Path(path)
        self.heads, self.kv_heads, self.head_dim = heads, kv_heads, head_dim
        self.block, self.groups = block, heads // c_h
        self._lib = lib if lib is not None else _build.load_library(self.path)
        check_runtime()  # module loads happen in the library's constructors
        self._attention = entry_point(self._lib, "attention")
        self._layout = entry_point(self._lib, "layout")
        if self._attention is None or self._layout is None:
            raise UnisparseError(f"{self.path} is not a library of unisparse-compile --target=cuda")
        # None if built before the entry point existed.
        self._attention_layout = entry_point(self._lib, "attention_layout")

    def _call(self, fn, tensors):
        call_entry(fn, tensors)

    def check_inputs(self, q, k, v=None):
        """Raises ``TypeError`` / ``ValueError`` unless q, k (and v) are CUDA
        tensors of this library's shapes (``[B, H, N, D]``, unit innermost
        stride; the entry points read any other strides)."""
        import torch

        for name, x, h in (("q", q, self.heads), ("k", k, self.kv_heads), ("v", v, self.kv_heads)):
            if x is None and name == "v":
                continue
            if not isinstance(x, torch.Tensor) or not x.is_cuda:
                raise TypeError(f"{name} must be a CUDA tensor")
            shape = x.shape
            if len(shape) != 4 or shape[1] != h or shape[3] != self.head_dim:
                raise ValueError(f"{name} must have shape [B, {h}, N, {self.head_dim}], got {tuple(shape)}")
            if x.stride(3) != 1:
                raise ValueError(f"{name} must have a unit innermost stride")
        if k.shape[0] != q.shape[0] or k.shape[2] != q.shape[2]:
            raise ValueError(f"k {tuple(k.shape)} does not match q {tuple(q.shape)}")

    def attention(self, q, k, v):
        """(o, lse) of unisparse.attention; queued on the current stream."""
        import torch

        self.check_inputs(q, k, v)
        o = torch.empty_like(q)
        lse = torch.empty(q.shape[0], q.shape[1], q.shape[2], device=q.device, dtype=torch.float32)
        self._call(self._attention, [q, k, v, o, lse])
        return o, lse

    def layout_buffers(self, q, scores: bool = True):
        """Fresh outputs of the layout entry for queries like ``q``:
        ``[scores,] counts, indices`` (scores float32 ``[B, groups, NB,
        NB]``, counts int32 ``[B, groups, NB]``, indices int32 ``[B, groups,
        NB, NB]``)."""
        import torch

        b, n = q.shape[0], q.shape[2]
        nb = -(-n // self.block)
        dev = q.device
        out = [
            torch.empty(b, self.groups, nb, device=dev, dtype=torch.int32),
            torch.empty(b, self.groups, nb, nb, device=dev, dtype=torch.int32),
        ]
        if scores:
            out.insert(0, torch.empty(b, self.groups, nb, nb, device=dev, dtype=torch.float32))
        return out

    def layout(self, q, k):
        """(scores, counts, indices) of the estimation stages."""
        self.check_inputs(q, k)
        out = self.layout_buffers(q, scores=True)
        self.layout_into(q, k, out)
        return tuple(out)

    def layout_into(self, q, k, out):
        """The layout entry point on checked inputs and ready outputs
        (:meth:`check_inputs`, :meth:`layout_buffers`): what :meth:`layout`
        queues, without its allocations (e.g. to time the call alone)."""
        self._call(self._layout, [q, k, *out])

    def attention_layout(self, q, k, v):
        """(o, lse, counts, indices): :meth:`attention` and the block layout
        it used, from one estimation; queued on the current stream."""
        import torch

        if self._attention_layout is None:
            raise UnisparseError(
                f"{self.path} has no attention_layout entry point: it was built by an "
                f"older unisparse-compile; rebuild it (scripts/gpu/compile_all.py)"
            )
        self.check_inputs(q, k, v)
        o = torch.empty_like(q)
        lse = torch.empty(q.shape[0], q.shape[1], q.shape[2], device=q.device, dtype=torch.float32)
        counts, indices = self.layout_buffers(q, scores=False)
        self._call(self._attention_layout, [q, k, v, o, lse, counts, indices])
        return o, lse, counts, indices


#: The CUDA driver's handle of the legacy default stream (cuda.h).
CU_STREAM_LEGACY = 0x1


def call_entry(fn, tensors):
    """Calls the compiled entry point ``fn`` (an ``_mlir_ciface_*`` of a
    library built for CUDA) on torch CUDA tensors, queued on the current
    stream, and raises :class:`UnisparseError` if the runtime recorded a
    failure."""
    import torch

    buf, addresses = packed_descriptors(tensors)
    rt = _runtime_mod.loaded()
    rt.unisparse_rt_clear_error()
    # PyTorch's default stream is the legacy default stream, handle 0,
    # which the runtime reads as "no current stream" (the compiled code
    # would then use streams of its own, which do not wait for the
    # legacy stream, and synchronize the host at its end). Named
    # CU_STREAM_LEGACY, the compiled code queues on it in order, and the
    # call returns without waiting.
    stream = torch.cuda.current_stream().cuda_stream
    rt.unisparse_rt_set_current_stream(stream or CU_STREAM_LEGACY)
    try:
        # Pointers as c_void_p: without argtypes ctypes would pass a Python
        # int as a 32-bit C int.
        fn(*map(ctypes.c_void_p, addresses))
    finally:
        rt.unisparse_rt_set_current_stream(None)
    del buf  # read by the call above; kept alive until here
    check_runtime()


def _default_runtime() -> str:
    return os.environ.get("UNISPARSE_CUDA_RUNTIME", str(_build.runtime_path()))


def load_compiled(path, *, runtime=None, **signature) -> CompiledCUDA:
    """Loads a compiled CUDA library (loading the runtime first)."""
    load_runtime(runtime or _default_runtime())
    return CompiledCUDA(path, **signature)


def library_name(cfg, heads, kv_heads, head_dim, dtype) -> str:
    """The file name under which a library compiled ahead of time for this
    signature is looked up in ``$UNISPARSE_AOT_DIR`` (and written by
    ``scripts/gpu/compile_all.py``). The directory is the caller's explicit
    choice; the cache of :mod:`unisparse._build` keys on the compiler too."""
    import hashlib

    text = f"{cfg.mlir_attr()}|{heads}|{kv_heads}|{head_dim}|{dtype}"
    return f"unisparse_cuda_{hashlib.sha256(text.encode()).hexdigest()[:16]}.so"


def compile_gpu(cfg, heads, kv_heads, head_dim, dtype, device="cuda") -> CompiledCUDA:
    """The CUDA library for a signature, for :func:`unisparse.compile`.

    Looked up by :func:`library_name` in ``$UNISPARSE_AOT_DIR`` (libraries
    compiled ahead of time, e.g. on a machine with LLVM), else compiled into
    the cache with ``unisparse-compile --target=cuda`` when that tool is
    available (a machine with both LLVM and a GPU)."""
    import torch

    if not torch.cuda.is_available():
        raise RuntimeError(
            f"unisparse.compile(device={device!r}): no CUDA device is available (torch.cuda.is_available() is False)"
        )
    name = library_name(cfg, heads, kv_heads, head_dim, dtype)
    aot = os.environ.get("UNISPARSE_AOT_DIR")
    path = pathlib.Path(aot) / name if aot else None
    if path is None or not path.exists():
        if not _build.compiler_path().exists():
            raise NotImplementedError(
                f"no CUDA library {name} for {cfg.mlir_attr()}, heads={heads}, kv_heads={kv_heads}, "
                f"head_dim={head_dim}, dtype={dtype} in UNISPARSE_AOT_DIR={aot!r}, and no "
                f"unisparse-compile at {_build.compiler_path()} to build one: compile it where LLVM is "
                f"(scripts/gpu/compile_all.py or unisparse-compile --target=cuda) and set "
                f"UNISPARSE_AOT_DIR"
            )
        signature = f"{cfg.mlir_attr()}|{heads}|{kv_heads}|{head_dim}|{dtype}"
        load_runtime(_default_runtime())
        path, lib = _build.load_cached(
            "cuda",
            signature,
            [
                f"--config={cfg.mlir_attr()}",
                f"--heads={heads}",
                f"--kv-heads={kv_heads}",
                f"--head-dim={head_dim}",
                f"--dtype={dtype}",
                "--target=cuda",
            ],
        )
        return CompiledCUDA(
            path, heads=heads, kv_heads=kv_heads, head_dim=head_dim, block=cfg.block, c_h=cfg.c_h, lib=lib
        )
    return load_compiled(path, heads=heads, kv_heads=kv_heads, head_dim=head_dim, block=cfg.block, c_h=cfg.c_h)
