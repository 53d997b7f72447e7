//===- MemRefShims.cpp - Entry points for compiled MLIR code --------------===//
//
// The `_mlir_ciface_unisparse_rt_block_sparse_attention_<dtype>` functions
// called by code lowered through convert-unisparse-to-runtime. Each converts
// its memref descriptors (data = aligned + offset, sizes, strides) into
// unisparse_tensor_t views of CPU memory and calls the main entry point.
//
//===----------------------------------------------------------------------===//

#include "common/Error.h"

#include <cstdint>

namespace {

/// Builds a CPU tensor view of a memref descriptor. A null descriptor or a
/// null aligned pointer gives a tensor with null data (rejected, with the
/// argument's name, by validation unless the memref is empty).
template <typename MemRef, int Rank>
unisparse_tensor_t toTensor(const MemRef *m, unisparse_dtype_t dtype) {
  unisparse_tensor_t t = {};
  t.dtype = dtype;
  t.device = UNISPARSE_DEVICE_CPU;
  t.rank = Rank;
  if (!m)
    return t;
  t.data = m->aligned ? static_cast<void *>(m->aligned + m->offset) : nullptr;
  for (int i = 0; i < Rank; ++i) {
    t.sizes[i] = m->sizes[i];
    t.strides[i] = m->strides[i];
  }
  return t;
}

/// Checks the descriptor pointers, converts them and calls
/// unisparse_rt_block_sparse_attention.
template <typename MemRef4D>
int32_t callAttention(const char *entry, unisparse_dtype_t dtype, MemRef4D *q,
                      MemRef4D *k, MemRef4D *v, unisparse_memref_3d_i32 *counts,
                      unisparse_memref_4d_i32 *indices, MemRef4D *o,
                      unisparse_memref_3d_f32 *lse, int64_t blockSize,
                      int32_t causal, float scale) {
  const void *descriptors[] = {q, k, v, counts, indices, o, lse};
  const char *names[] = {"q", "k", "v", "counts", "indices", "o", "lse"};
  for (int i = 0; i < 7; ++i)
    if (!descriptors[i])
      return unisparse::rt::setError(UNISPARSE_STATUS_NULL_POINTER,
                                     "%s: memref descriptor of %s is null",
                                     entry, names[i]);
  const unisparse_tensor_t tq = toTensor<MemRef4D, 4>(q, dtype);
  const unisparse_tensor_t tk = toTensor<MemRef4D, 4>(k, dtype);
  const unisparse_tensor_t tv = toTensor<MemRef4D, 4>(v, dtype);
  const unisparse_tensor_t tCounts =
      toTensor<unisparse_memref_3d_i32, 3>(counts, UNISPARSE_DTYPE_I32);
  const unisparse_tensor_t tIndices =
      toTensor<unisparse_memref_4d_i32, 4>(indices, UNISPARSE_DTYPE_I32);
  const unisparse_tensor_t to = toTensor<MemRef4D, 4>(o, dtype);
  const unisparse_tensor_t tLse =
      toTensor<unisparse_memref_3d_f32, 3>(lse, UNISPARSE_DTYPE_F32);
  const unisparse_attention_params_t params{blockSize, causal, scale};
  return unisparse_rt_block_sparse_attention(&tq, &tk, &tv, &tCounts, &tIndices,
                                             &to, &tLse, &params,
                                             /*stream=*/nullptr);
}

} // namespace

extern "C" {

int32_t _mlir_ciface_unisparse_rt_block_sparse_attention_f32(
    unisparse_memref_4d_f32 *q, unisparse_memref_4d_f32 *k,
    unisparse_memref_4d_f32 *v, unisparse_memref_3d_i32 *counts,
    unisparse_memref_4d_i32 *indices, unisparse_memref_4d_f32 *o,
    unisparse_memref_3d_f32 *lse, int64_t block_size, int32_t causal,
    float scale) {
  return callAttention("unisparse_rt_block_sparse_attention_f32",
                       UNISPARSE_DTYPE_F32, q, k, v, counts, indices, o, lse,
                       block_size, causal, scale);
}

int32_t _mlir_ciface_unisparse_rt_block_sparse_attention_f16(
    unisparse_memref_4d_u16 *q, unisparse_memref_4d_u16 *k,
    unisparse_memref_4d_u16 *v, unisparse_memref_3d_i32 *counts,
    unisparse_memref_4d_i32 *indices, unisparse_memref_4d_u16 *o,
    unisparse_memref_3d_f32 *lse, int64_t block_size, int32_t causal,
    float scale) {
  return callAttention("unisparse_rt_block_sparse_attention_f16",
                       UNISPARSE_DTYPE_F16, q, k, v, counts, indices, o, lse,
                       block_size, causal, scale);
}

int32_t _mlir_ciface_unisparse_rt_block_sparse_attention_bf16(
    unisparse_memref_4d_u16 *q, unisparse_memref_4d_u16 *k,
    unisparse_memref_4d_u16 *v, unisparse_memref_3d_i32 *counts,
    unisparse_memref_4d_i32 *indices, unisparse_memref_4d_u16 *o,
    unisparse_memref_3d_f32 *lse, int64_t block_size, int32_t causal,
    float scale) {
  return callAttention("unisparse_rt_block_sparse_attention_bf16",
                       UNISPARSE_DTYPE_BF16, q, k, v, counts, indices, o, lse,
                       block_size, causal, scale);
}

} // extern "C"
