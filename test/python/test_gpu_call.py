"""The Python side of a compiled CUDA call (unisparse.gpu.call_entry), without
a GPU: the packed memref descriptors against the ctypes structs they replace,
and call_entry against a stand-in entry point (a small C library built here)
that reads the descriptors it is given, the runtime's current stream during
the call, and records a runtime error on request."""

import ctypes
import subprocess
import types

import pytest

torch = pytest.importorskip("torch")

from unisparse import _build, _runtime, gpu  # noqa: E402
from unisparse._core import UnisparseError  # noqa: E402

ENTRY_C = r"""
#include <stdint.h>
void *unisparse_rt_get_current_stream(void);
int32_t unisparse_rt_check_workspace(int64_t, int64_t, int64_t, int32_t);

/* What the last call saw: per descriptor (rank 4 or 3) its fields, then the
   runtime's current stream. */
int64_t seen[64];

static int64_t *copy(int64_t *dst, const int64_t *desc, int rank) {
  for (int i = 0; i < 3 + 2 * rank; ++i)
    *dst++ = desc[i];
  return dst;
}

/* (q, k: rank 4; scores rank 4; counts rank 3; indices rank 4), as
   _mlir_ciface_layout. A negative first size of q records an error. */
void _mlir_ciface_probe(const int64_t *q, const int64_t *k, const int64_t *s,
                        const int64_t *c, const int64_t *i) {
  int64_t *p = seen;
  p = copy(p, q, 4);
  p = copy(p, k, 4);
  p = copy(p, s, 4);
  p = copy(p, c, 3);
  p = copy(p, i, 4);
  *p = (int64_t)(intptr_t)unisparse_rt_get_current_stream();
  if (q[3] == 7) /* a batch of 7 asks for a failure */
    unisparse_rt_check_workspace(-5, 7, 64, 0);
}
"""


def _tensors(batch=2):
    g = torch.Generator().manual_seed(3)
    q = torch.randn(batch, 4, 96, 64, generator=g).to(torch.bfloat16)
    k = torch.randn(batch, 8, 2, 96, generator=g).transpose(1, 3)[:, :, :2]  # strided view
    scores = torch.empty(batch, 4, 3, 3)
    counts = torch.empty(batch, 4, 3, dtype=torch.int32)
    indices = torch.empty(batch, 4, 3, 3, dtype=torch.int32)[..., 1:]  # offset data pointer
    return [q, k, scores, counts, indices]


def _fields(t):
    return [t.data_ptr(), t.data_ptr(), 0, *t.shape, *t.stride()]


def test_packed_descriptors_match_the_structs():
    tensors = _tensors()
    buf, addresses = gpu.packed_descriptors(tensors)
    assert len(addresses) == len(tensors)
    for t, address in zip(tensors, addresses):
        want = bytes(gpu.tensor_descriptor(t))
        assert ctypes.string_at(address, len(want)) == want
    assert buf.itemsize == 8


@pytest.fixture(scope="module")
def probe(tmp_path_factory):
    rt = _runtime.load(_build.runtime_path())
    rt.unisparse_rt_get_current_stream.restype = ctypes.c_void_p
    d = tmp_path_factory.mktemp("probe")
    (d / "probe.c").write_text(ENTRY_C)
    subprocess.run(["cc", "-shared", "-fPIC", "-O1", "-o", str(d / "libprobe.so"), str(d / "probe.c")], check=True)
    lib = ctypes.CDLL(str(d / "libprobe.so"))
    return rt, lib, gpu.entry_point(lib, "probe")


@pytest.fixture
def default_stream(monkeypatch):
    """torch.cuda.current_stream() as on PyTorch's default stream (handle 0)."""
    monkeypatch.setattr(torch.cuda, "current_stream", lambda: types.SimpleNamespace(cuda_stream=0))


def test_call_entry_passes_every_descriptor_and_the_stream(probe, default_stream):
    rt, lib, fn = probe
    tensors = _tensors()
    gpu.call_entry(fn, tensors)
    seen = (ctypes.c_int64 * 64).in_dll(lib, "seen")
    want = [x for t in tensors for x in _fields(t)]
    assert list(seen[: len(want)]) == want
    # The legacy stream by name during the call, none after it.
    assert seen[len(want)] == gpu.CU_STREAM_LEGACY
    assert rt.unisparse_rt_get_current_stream() is None


def test_call_entry_raises_the_runtime_error(probe, default_stream):
    rt, _, fn = probe
    with pytest.raises(UnisparseError, match="B = 7"):
        gpu.call_entry(fn, _tensors(batch=7))
    assert rt.unisparse_rt_get_current_stream() is None
    assert rt.unisparse_rt_last_error() == 0  # raised and cleared
    # A stale error from before the call is not blamed on it.
    rt.unisparse_rt_check_workspace(ctypes.c_int64(-5), ctypes.c_int64(1), ctypes.c_int64(1), ctypes.c_int32(0))
    gpu.call_entry(fn, _tensors())
