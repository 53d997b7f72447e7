//===- Validate.cpp - Argument checks for block-sparse attention ----------===//
//
// The checks run, in order: descriptors (null, rank, sizes, strides, data),
// dtypes, devices, scalar parameters, sizes across tensors, output overlap.
// validateLayout then checks the contents of counts and indices.
//
//===----------------------------------------------------------------------===//

#include "common/Validate.h"
#include "common/Error.h"

#include <cinttypes>
#include <cmath>
#include <cstdint>
#include <cstdio>
#include <initializer_list>
#include <utility>

namespace unisparse::rt {

namespace {

/// Names of the dimensions of each tensor argument, for messages.
const char *const kQDims[] = {"B", "Hq", "N", "D"};
const char *const kKVDims[] = {"B", "Hkv", "N", "D"};
const char *const kLseDims[] = {"B", "Hq", "N"};
const char *const kCountsDims[] = {"B", "Hg", "NBq"};
const char *const kIndicesDims[] = {"B", "Hg", "NBq", "M"};

/// Bytes of one element of a (valid) dtype.
int64_t elementSize(int32_t dtype) {
  return dtype == UNISPARSE_DTYPE_F16 || dtype == UNISPARSE_DTYPE_BF16 ? 2 : 4;
}

/// Formats the sizes of `t` as "[2, 4, 200, 64]" into `buf`.
const char *formatSizes(const unisparse_tensor_t &t, char *buf, size_t len) {
  size_t used = std::snprintf(buf, len, "[");
  for (int32_t i = 0; i < t.rank && used < len; ++i)
    used += std::snprintf(buf + used, len - used, "%s%" PRId64, i ? ", " : "",
                          t.sizes[i]);
  if (used < len)
    std::snprintf(buf + used, len - used, "]");
  return buf;
}

/// Checks one tensor descriptor on its own: not null, rank, non-negative
/// sizes and strides, an addressable extent, non-null and aligned data (data
/// may be null only for an empty tensor), a known device.
unisparse_status_t checkDescriptor(const char *name,
                                   const unisparse_tensor_t *t, int32_t rank,
                                   const char *const *dims) {
  if (!t)
    return setError(UNISPARSE_STATUS_NULL_POINTER,
                    "%s: tensor descriptor is null", name);
  if (t->rank != rank) {
    char shape[64];
    int used = std::snprintf(shape, sizeof(shape), "[");
    for (int32_t i = 0; i < rank; ++i)
      used += std::snprintf(shape + used, sizeof(shape) - used, "%s%s",
                            i ? ", " : "", dims[i]);
    std::snprintf(shape + used, sizeof(shape) - used, "]");
    return setError(UNISPARSE_STATUS_INVALID_RANK,
                    "%s: rank = %d, expected %d (%s)", name, t->rank, rank,
                    shape);
  }
  bool empty = false;
  for (int32_t i = 0; i < rank; ++i) {
    if (t->sizes[i] < 0)
      return setError(UNISPARSE_STATUS_SHAPE_MISMATCH,
                      "%s: sizes[%d] (%s) = %" PRId64 " is negative", name, i,
                      dims[i], t->sizes[i]);
    empty |= t->sizes[i] == 0;
  }
  // Strides: non-negative, and the largest element offset must fit in the
  // address space (in bytes, as int64).
  int64_t limit = INT64_MAX / 4;
  int64_t extent = 0;
  for (int32_t i = 0; i < rank; ++i) {
    int64_t stride = t->strides[i];
    if (stride < 0)
      return setError(UNISPARSE_STATUS_INVALID_STRIDE,
                      "%s: strides[%d] (%s) = %" PRId64
                      " is negative, expected >= 0",
                      name, i, dims[i], stride);
    if (empty || stride == 0 || t->sizes[i] <= 1)
      continue;
    if (t->sizes[i] - 1 > (limit - extent) / stride)
      return setError(UNISPARSE_STATUS_INVALID_STRIDE,
                      "%s: strides[%d] (%s) = %" PRId64
                      " makes the tensor's extent overflow int64",
                      name, i, dims[i], stride);
    extent += (t->sizes[i] - 1) * stride;
  }
  if (t->device != UNISPARSE_DEVICE_CPU && t->device != UNISPARSE_DEVICE_CUDA)
    return setError(UNISPARSE_STATUS_INVALID_ARGUMENT,
                    "%s: device = %d, expected %d (cpu) or %d (cuda)", name,
                    t->device, UNISPARSE_DEVICE_CPU, UNISPARSE_DEVICE_CUDA);
  if (!t->data && !empty)
    return setError(UNISPARSE_STATUS_NULL_POINTER,
                    "%s: data is null for a non-empty tensor", name);
  if (t->dtype >= UNISPARSE_DTYPE_F32 && t->dtype <= UNISPARSE_DTYPE_I32) {
    int64_t align = elementSize(t->dtype);
    if (reinterpret_cast<uintptr_t>(t->data) % align != 0)
      return setError(UNISPARSE_STATUS_INVALID_ARGUMENT,
                      "%s: data = %p is not aligned to its %s element size "
                      "(%" PRId64 " bytes)",
                      name, t->data, dtypeName(t->dtype), align);
  }
  return UNISPARSE_STATUS_SUCCESS;
}

/// Checks that sizes[dim] of `t` equals `expected`, taken from `from`.
unisparse_status_t expectSize(const char *name, const unisparse_tensor_t &t,
                              int dim, const char *const *dims,
                              int64_t expected, const char *from) {
  if (t.sizes[dim] == expected)
    return UNISPARSE_STATUS_SUCCESS;
  return setError(UNISPARSE_STATUS_SHAPE_MISMATCH,
                  "%s: sizes[%d] (%s) = %" PRId64 ", expected %" PRId64 " (%s)",
                  name, dim, dims[dim], t.sizes[dim], expected, from);
}

/// Checks that distinct indices of `t` (an output) address distinct
/// elements: sorted by stride, each stride must exceed the largest offset
/// reachable through the smaller ones. This rejects a zero stride on a
/// dimension of size > 1, which would make parallel writes race.
unisparse_status_t checkNoOverlap(const char *name,
                                  const unisparse_tensor_t &t) {
  int order[UNISPARSE_MAX_RANK];
  int n = 0;
  for (int32_t i = 0; i < t.rank; ++i) {
    if (t.sizes[i] == 0)
      return UNISPARSE_STATUS_SUCCESS; // empty: nothing is written
    if (t.sizes[i] > 1)
      order[n++] = i;
  }
  // Insertion sort of at most four dimensions by stride.
  for (int i = 1; i < n; ++i)
    for (int j = i; j > 0 && t.strides[order[j]] < t.strides[order[j - 1]]; --j)
      std::swap(order[j], order[j - 1]);
  int64_t reach = 0; // largest offset reachable by the dimensions so far
  for (int i = 0; i < n; ++i) {
    int d = order[i];
    if (t.strides[d] <= reach)
      return setError(UNISPARSE_STATUS_INVALID_STRIDE,
                      "%s: strides[%d] = %" PRId64
                      " makes the output overlap itself (expected > %" PRId64
                      ", the largest offset reachable through the smaller "
                      "strides); outputs must not alias",
                      name, d, t.strides[d], reach);
    reach += (t.sizes[d] - 1) * t.strides[d];
  }
  return UNISPARSE_STATUS_SUCCESS;
}

/// Reads element `idx` (rank-many indices) of a host i32 tensor.
int32_t readI32(const unisparse_tensor_t &t, const int64_t *idx) {
  int64_t offset = 0;
  for (int32_t i = 0; i < t.rank; ++i)
    offset += idx[i] * t.strides[i];
  return static_cast<const int32_t *>(t.data)[offset];
}

} // namespace

unisparse_status_t validateAttention(const AttentionTensors &tensors,
                                     const unisparse_attention_params_t *params,
                                     AttentionProblem &problem) {
  // Descriptors on their own.
  struct Arg {
    const char *name;
    const unisparse_tensor_t *t;
    int32_t rank;
    const char *const *dims;
  };
  const Arg args[] = {
      {"q", tensors.q, 4, kQDims},
      {"k", tensors.k, 4, kKVDims},
      {"v", tensors.v, 4, kKVDims},
      {"counts", tensors.counts, 3, kCountsDims},
      {"indices", tensors.indices, 4, kIndicesDims},
      {"o", tensors.o, 4, kQDims},
      {"lse", tensors.lse, 3, kLseDims},
  };
  for (const Arg &arg : args)
    if (unisparse_status_t s =
            checkDescriptor(arg.name, arg.t, arg.rank, arg.dims))
      return s;
  if (!params)
    return setError(UNISPARSE_STATUS_NULL_POINTER, "params: pointer is null");
  const unisparse_tensor_t &q = *tensors.q, &k = *tensors.k, &v = *tensors.v;
  const unisparse_tensor_t &counts = *tensors.counts;
  const unisparse_tensor_t &indices = *tensors.indices;
  const unisparse_tensor_t &o = *tensors.o, &lse = *tensors.lse;

  // Dtypes: q is f32/f16/bf16 and k, v, o match it; the layout is i32 and
  // lse is f32.
  if (q.dtype != UNISPARSE_DTYPE_F32 && q.dtype != UNISPARSE_DTYPE_F16 &&
      q.dtype != UNISPARSE_DTYPE_BF16)
    return setError(UNISPARSE_STATUS_UNSUPPORTED_DTYPE,
                    "q: dtype = %s (%d), expected f32, f16 or bf16",
                    dtypeName(q.dtype), q.dtype);
  for (const Arg &arg : {args[1], args[2], args[5]})
    if (arg.t->dtype != q.dtype)
      return setError(UNISPARSE_STATUS_UNSUPPORTED_DTYPE,
                      "%s: dtype = %s (%d), expected %s (the dtype of q)",
                      arg.name, dtypeName(arg.t->dtype), arg.t->dtype,
                      dtypeName(q.dtype));
  for (const Arg &arg : {args[3], args[4]})
    if (arg.t->dtype != UNISPARSE_DTYPE_I32)
      return setError(UNISPARSE_STATUS_UNSUPPORTED_DTYPE,
                      "%s: dtype = %s (%d), expected i32", arg.name,
                      dtypeName(arg.t->dtype), arg.t->dtype);
  if (lse.dtype != UNISPARSE_DTYPE_F32)
    return setError(UNISPARSE_STATUS_UNSUPPORTED_DTYPE,
                    "lse: dtype = %s (%d), expected f32", dtypeName(lse.dtype),
                    lse.dtype);

  // Devices: all on the device of q.
  for (const Arg &arg : args)
    if (arg.t->device != q.device)
      return setError(UNISPARSE_STATUS_DEVICE_MISMATCH,
                      "%s: device = %s, expected %s (the device of q); all "
                      "tensors must be on one device",
                      arg.name, deviceName(arg.t->device),
                      deviceName(q.device));

  // Scalar parameters.
  if (params->block_size <= 0)
    return setError(UNISPARSE_STATUS_INVALID_ARGUMENT,
                    "params: block_size = %" PRId64 ", expected > 0",
                    params->block_size);
  if (params->causal != 0 && params->causal != 1)
    return setError(UNISPARSE_STATUS_INVALID_ARGUMENT,
                    "params: causal = %d, expected 0 or 1", params->causal);
  if (!std::isfinite(params->scale))
    return setError(UNISPARSE_STATUS_INVALID_ARGUMENT,
                    "params: scale = %g, expected a finite value (<= 0 "
                    "selects 1/sqrt(D))",
                    static_cast<double>(params->scale));

  // Sizes of q, then every other tensor against them.
  const int64_t batch = q.sizes[0], numQHeads = q.sizes[1];
  const int64_t seqLen = q.sizes[2], headDim = q.sizes[3];
  if (numQHeads < 1 || seqLen < 1 || headDim < 1)
    return setError(UNISPARSE_STATUS_SHAPE_MISMATCH,
                    "q: sizes = [B, Hq, N, D] = [%" PRId64 ", %" PRId64
                    ", %" PRId64 ", %" PRId64 "], expected Hq, N, D >= 1",
                    batch, numQHeads, seqLen, headDim);
  const int64_t numKVHeads = k.sizes[1];
  if (unisparse_status_t s = expectSize("k", k, 0, kKVDims, batch, "B of q"))
    return s;
  if (numKVHeads < 1 || numQHeads % numKVHeads != 0)
    return setError(UNISPARSE_STATUS_SHAPE_MISMATCH,
                    "k: sizes[1] (Hkv) = %" PRId64
                    ", expected a divisor of Hq = %" PRId64 " (Hq %% Hkv == 0)",
                    numKVHeads, numQHeads);
  if (unisparse_status_t s = expectSize("k", k, 2, kKVDims, seqLen, "N of q"))
    return s;
  if (unisparse_status_t s = expectSize("k", k, 3, kKVDims, headDim, "D of q"))
    return s;
  for (int d = 0; d < 4; ++d)
    if (unisparse_status_t s =
            expectSize("v", v, d, kKVDims, k.sizes[d], "the same as k"))
      return s;
  for (int d = 0; d < 4; ++d)
    if (unisparse_status_t s =
            expectSize("o", o, d, kQDims, q.sizes[d], "the same as q"))
      return s;
  for (int d = 0; d < 3; ++d)
    if (unisparse_status_t s =
            expectSize("lse", lse, d, kLseDims, q.sizes[d], "from q"))
      return s;

  // The layout: counts [B, Hg, NBq], indices [B, Hg, NBq, M].
  const int64_t blockSize = params->block_size;
  const int64_t numBlocks = (seqLen - 1) / blockSize + 1;
  const int64_t numGroups = counts.sizes[1];
  if (unisparse_status_t s =
          expectSize("counts", counts, 0, kCountsDims, batch, "B of q"))
    return s;
  if (numGroups < 1 || numQHeads % numGroups != 0)
    return setError(UNISPARSE_STATUS_SHAPE_MISMATCH,
                    "counts: sizes[1] (Hg) = %" PRId64
                    ", expected a divisor of Hq = %" PRId64 " (Hq %% Hg == 0)",
                    numGroups, numQHeads);
  if (counts.sizes[2] != numBlocks) {
    char buf[96];
    return setError(UNISPARSE_STATUS_SHAPE_MISMATCH,
                    "counts: sizes = %s, expected [B, Hg, NBq] with NBq = "
                    "ceil(N / S) = ceil(%" PRId64 " / %" PRId64 ") = %" PRId64,
                    formatSizes(counts, buf, sizeof(buf)), seqLen, blockSize,
                    numBlocks);
  }
  for (int d = 0; d < 3; ++d)
    if (unisparse_status_t s = expectSize("indices", indices, d, kIndicesDims,
                                          counts.sizes[d], "from counts"))
      return s;
  const int64_t maxBlocks = indices.sizes[3];
  if (maxBlocks < 1 || maxBlocks > numBlocks)
    return setError(UNISPARSE_STATUS_SHAPE_MISMATCH,
                    "indices: sizes[3] (M) = %" PRId64
                    ", expected 1 <= M <= NBk = ceil(N / S) = %" PRId64,
                    maxBlocks, numBlocks);

  // Outputs are written in parallel: they must not overlap themselves.
  if (unisparse_status_t s = checkNoOverlap("o", o))
    return s;
  if (unisparse_status_t s = checkNoOverlap("lse", lse))
    return s;

  problem.batch = batch;
  problem.numQHeads = numQHeads;
  problem.numKVHeads = numKVHeads;
  problem.numGroups = numGroups;
  problem.seqLen = seqLen;
  problem.headDim = headDim;
  problem.blockSize = blockSize;
  problem.numQBlocks = numBlocks;
  problem.numKBlocks = numBlocks;
  problem.maxBlocks = maxBlocks;
  problem.causal = params->causal == 1;
  problem.scale = params->scale > 0.0f
                      ? params->scale
                      : static_cast<float>(1.0 / std::sqrt(double(headDim)));
  problem.dtype = static_cast<unisparse_dtype_t>(q.dtype);
  problem.device = static_cast<unisparse_device_t>(q.device);
  return UNISPARSE_STATUS_SUCCESS;
}

unisparse_status_t validateLayout(const AttentionTensors &tensors,
                                  const AttentionProblem &problem) {
  const unisparse_tensor_t &counts = *tensors.counts;
  const unisparse_tensor_t &indices = *tensors.indices;
  const int64_t maxBlocks = problem.maxBlocks;
  const int64_t numKBlocks = problem.numKBlocks;
  for (int64_t b = 0; b < problem.batch; ++b) {
    for (int64_t g = 0; g < problem.numGroups; ++g) {
      for (int64_t i = 0; i < problem.numQBlocks; ++i) {
        // The count of this row: in [0, M] (and M <= NBk).
        const int64_t at[4] = {b, g, i, 0};
        const int32_t count = readI32(counts, at);
        if (count < 0)
          return setError(UNISPARSE_STATUS_INVALID_LAYOUT,
                          "counts: counts[%" PRId64 ",%" PRId64 ",%" PRId64
                          "] = %d is negative, expected >= 0",
                          b, g, i, count);
        if (count > maxBlocks)
          return setError(UNISPARSE_STATUS_INVALID_LAYOUT,
                          "counts: counts[%" PRId64 ",%" PRId64 ",%" PRId64
                          "] = %d exceeds M = %" PRId64
                          ", the length of an indices row (the number of key "
                          "blocks is %" PRId64 ")",
                          b, g, i, count, maxBlocks, numKBlocks);
        // Its first `count` indices: in [0, NBk) and strictly ascending.
        int64_t prev = -1;
        for (int64_t j = 0; j < count; ++j) {
          const int64_t atj[4] = {b, g, i, j};
          const int32_t index = readI32(indices, atj);
          if (index < 0 || index >= numKBlocks)
            return setError(UNISPARSE_STATUS_INVALID_LAYOUT,
                            "indices: indices[%" PRId64 ",%" PRId64 ",%" PRId64
                            ",%" PRId64
                            "] = %d is outside [0, NBk) = [0, %" PRId64 ")",
                            b, g, i, j, index, numKBlocks);
          if (index <= prev)
            return setError(UNISPARSE_STATUS_INVALID_LAYOUT,
                            "indices: indices[%" PRId64 ",%" PRId64 ",%" PRId64
                            ",%" PRId64 "] = %d, expected > %" PRId64
                            " (indices[..,%" PRId64
                            "]): the first counts[%" PRId64 ",%" PRId64
                            ",%" PRId64 "] = %d entries must be strictly "
                            "ascending",
                            b, g, i, j, index, prev, j - 1, b, g, i, count);
          prev = index;
        }
      }
    }
  }
  return UNISPARSE_STATUS_SUCCESS;
}

} // namespace unisparse::rt
