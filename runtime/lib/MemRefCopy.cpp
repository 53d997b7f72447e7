//===- MemRefCopy.cpp - memrefCopy for compiled host code -----------------===//
//
// `finalize-memref-to-llvm` lowers a memref.copy between non-contiguous
// memrefs to a call of `memrefCopy`, which upstream ships in
// libmlir_c_runner_utils. Compiled UniSparse code links only this runtime (a
// GPU machine has no LLVM), so the runtime provides the symbol itself, with
// the same C ABI: the element size and two unranked descriptors.
//
//===----------------------------------------------------------------------===//

#include "common/Error.h"
#include "unisparse/runtime/unisparse_runtime.h"

#include <cinttypes>
#include <cstring>
#include <vector>

namespace {
/// MLIR's unranked memref: rank + pointer to a ranked descriptor
/// {allocated, aligned, offset, sizes[rank], strides[rank]}.
struct UnrankedMemRef {
  int64_t rank;
  void *descriptor;
};

struct View {
  char *base;
  const int64_t *sizes;
  const int64_t *strides;
};

View view(const UnrankedMemRef &m, int64_t elemSize) {
  auto *words = static_cast<int64_t *>(m.descriptor);
  char *aligned = reinterpret_cast<char *>(words[1]);
  int64_t offset = words[2];
  return {aligned + offset * elemSize, words + 3, words + 3 + m.rank};
}
} // namespace

extern "C" UNISPARSE_RT_EXPORT void
memrefCopy(int64_t elemSize, UnrankedMemRef *src, UnrankedMemRef *dst) {
  // Compiled code has no way to report a failure from here: a bad call is
  // recorded as the thread's error (unisparse_rt_last_error), which the
  // caller of the compiled entry point checks.
  using namespace unisparse::rt;
  if (!src || !dst || !src->descriptor || !dst->descriptor) {
    setError(UNISPARSE_STATUS_NULL_POINTER,
             "memrefCopy: a null memref descriptor (src %p, dst %p)",
             static_cast<void *>(src), static_cast<void *>(dst));
    return;
  }
  if (src->rank != dst->rank || src->rank < 0) {
    setError(UNISPARSE_STATUS_INVALID_ARGUMENT,
             "memrefCopy: source rank %" PRId64 " and destination rank %" PRId64
             " differ",
             src->rank, dst->rank);
    return;
  }
  if (elemSize <= 0) {
    setError(UNISPARSE_STATUS_INVALID_ARGUMENT,
             "memrefCopy: element size %" PRId64 " is not positive", elemSize);
    return;
  }
  int64_t rank = src->rank;
  View s = view(*src, elemSize), d = view(*dst, elemSize);
  if (rank == 0) {
    std::memcpy(d.base, s.base, elemSize);
    return;
  }
  for (int64_t i = 0; i < rank; ++i) {
    if (s.sizes[i] != d.sizes[i]) {
      setError(UNISPARSE_STATUS_INVALID_ARGUMENT,
               "memrefCopy: dimension %" PRId64 " has size %" PRId64
               " in the source and %" PRId64 " in the destination",
               i, s.sizes[i], d.sizes[i]);
      return;
    }
  }
  for (int64_t i = 0; i < rank; ++i)
    if (s.sizes[i] == 0)
      return;
  // Walk every index; copy runs of the innermost dimension at once when both
  // sides are unit-stride there.
  std::vector<int64_t> index(rank, 0);
  int64_t inner = s.sizes[rank - 1];
  bool contiguousInner = s.strides[rank - 1] == 1 && d.strides[rank - 1] == 1;
  while (true) {
    int64_t so = 0, doff = 0;
    for (int64_t i = 0; i < rank - 1; ++i) {
      so += index[i] * s.strides[i];
      doff += index[i] * d.strides[i];
    }
    if (contiguousInner) {
      std::memmove(d.base + doff * elemSize, s.base + so * elemSize,
                   inner * elemSize);
    } else {
      for (int64_t j = 0; j < inner; ++j)
        std::memmove(d.base + (doff + j * d.strides[rank - 1]) * elemSize,
                     s.base + (so + j * s.strides[rank - 1]) * elemSize,
                     elemSize);
    }
    int64_t i = rank - 2;
    for (; i >= 0; --i) {
      if (++index[i] < s.sizes[i])
        break;
      index[i] = 0;
    }
    if (i < 0)
      return;
  }
}
