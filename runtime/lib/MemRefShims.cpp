//===- MemRefShims.cpp - Entry points for compiled MLIR code --------------===//
//
// The `_mlir_ciface_unisparse_rt_block_sparse_attention_<dtype>` and
// `..._cuda_<dtype>` functions called by code lowered through
// convert-unisparse-to-runtime. Each converts its memref descriptors (data =
// aligned + offset, sizes, strides) into unisparse_tensor_t views of CPU
// (resp. CUDA device) memory and calls the main entry point.
//
//===----------------------------------------------------------------------===//

#include "common/Error.h"
#if UNISPARSE_RT_CUDA
#include "cuda/BlockSparseAttention.h"
#endif

#include <cstdint>

namespace {

/// Builds a tensor view of a memref descriptor. A null descriptor or a null
/// aligned pointer gives a tensor with null data (rejected, with the
/// argument's name, by validation unless the memref is empty).
template <typename MemRef, int Rank>
unisparse_tensor_t toTensor(const MemRef *m, unisparse_dtype_t dtype,
                            unisparse_device_t device) {
  unisparse_tensor_t t = {};
  t.dtype = dtype;
  t.device = device;
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
/// unisparse_rt_block_sparse_attention (with a null stream: for CUDA, the
/// thread's current stream or the legacy default stream).
template <typename MemRef4D>
int32_t callAttention(const char *entry, unisparse_dtype_t dtype,
                      unisparse_device_t device, MemRef4D *q, MemRef4D *k,
                      MemRef4D *v, unisparse_memref_3d_i32 *counts,
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
  const unisparse_tensor_t tq = toTensor<MemRef4D, 4>(q, dtype, device);
  const unisparse_tensor_t tk = toTensor<MemRef4D, 4>(k, dtype, device);
  const unisparse_tensor_t tv = toTensor<MemRef4D, 4>(v, dtype, device);
  const unisparse_tensor_t tCounts =
      toTensor<unisparse_memref_3d_i32, 3>(counts, UNISPARSE_DTYPE_I32, device);
  const unisparse_tensor_t tIndices = toTensor<unisparse_memref_4d_i32, 4>(
      indices, UNISPARSE_DTYPE_I32, device);
  const unisparse_tensor_t to = toTensor<MemRef4D, 4>(o, dtype, device);
  const unisparse_tensor_t tLse =
      toTensor<unisparse_memref_3d_f32, 3>(lse, UNISPARSE_DTYPE_F32, device);
  const unisparse_attention_params_t params{blockSize, causal, scale};
  return unisparse_rt_block_sparse_attention(&tq, &tk, &tv, &tCounts, &tIndices,
                                             &to, &tLse, &params,
                                             /*stream=*/nullptr);
}

/// The CUDA shims: launch on the current stream; with none, on the legacy
/// default stream, then wait for it (compiled code issues its later work on
/// its own non-blocking streams, which do not wait for the legacy stream).
int32_t
callCudaAttention(const char *entry, unisparse_dtype_t dtype,
                  unisparse_memref_4d_u16 *q, unisparse_memref_4d_u16 *k,
                  unisparse_memref_4d_u16 *v, unisparse_memref_3d_i32 *counts,
                  unisparse_memref_4d_i32 *indices, unisparse_memref_4d_u16 *o,
                  unisparse_memref_3d_f32 *lse, int64_t blockSize,
                  int32_t causal, float scale) {
  const int32_t status =
      callAttention(entry, dtype, UNISPARSE_DEVICE_CUDA, q, k, v, counts,
                    indices, o, lse, blockSize, causal, scale);
#if UNISPARSE_RT_CUDA
  if (status == UNISPARSE_STATUS_SUCCESS && !unisparse_rt_get_current_stream())
    return unisparse::rt::cuda::synchronizeLegacyStream();
#endif
  return status;
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
                       UNISPARSE_DTYPE_F32, UNISPARSE_DEVICE_CPU, q, k, v,
                       counts, indices, o, lse, block_size, causal, scale);
}

int32_t _mlir_ciface_unisparse_rt_block_sparse_attention_f16(
    unisparse_memref_4d_u16 *q, unisparse_memref_4d_u16 *k,
    unisparse_memref_4d_u16 *v, unisparse_memref_3d_i32 *counts,
    unisparse_memref_4d_i32 *indices, unisparse_memref_4d_u16 *o,
    unisparse_memref_3d_f32 *lse, int64_t block_size, int32_t causal,
    float scale) {
  return callAttention("unisparse_rt_block_sparse_attention_f16",
                       UNISPARSE_DTYPE_F16, UNISPARSE_DEVICE_CPU, q, k, v,
                       counts, indices, o, lse, block_size, causal, scale);
}

int32_t _mlir_ciface_unisparse_rt_block_sparse_attention_bf16(
    unisparse_memref_4d_u16 *q, unisparse_memref_4d_u16 *k,
    unisparse_memref_4d_u16 *v, unisparse_memref_3d_i32 *counts,
    unisparse_memref_4d_i32 *indices, unisparse_memref_4d_u16 *o,
    unisparse_memref_3d_f32 *lse, int64_t block_size, int32_t causal,
    float scale) {
  return callAttention("unisparse_rt_block_sparse_attention_bf16",
                       UNISPARSE_DTYPE_BF16, UNISPARSE_DEVICE_CPU, q, k, v,
                       counts, indices, o, lse, block_size, causal, scale);
}

int32_t _mlir_ciface_unisparse_rt_block_sparse_attention_cuda_f16(
    unisparse_memref_4d_u16 *q, unisparse_memref_4d_u16 *k,
    unisparse_memref_4d_u16 *v, unisparse_memref_3d_i32 *counts,
    unisparse_memref_4d_i32 *indices, unisparse_memref_4d_u16 *o,
    unisparse_memref_3d_f32 *lse, int64_t block_size, int32_t causal,
    float scale) {
  return callCudaAttention("unisparse_rt_block_sparse_attention_cuda_f16",
                           UNISPARSE_DTYPE_F16, q, k, v, counts, indices, o,
                           lse, block_size, causal, scale);
}

int32_t _mlir_ciface_unisparse_rt_block_sparse_attention_cuda_bf16(
    unisparse_memref_4d_u16 *q, unisparse_memref_4d_u16 *k,
    unisparse_memref_4d_u16 *v, unisparse_memref_3d_i32 *counts,
    unisparse_memref_4d_i32 *indices, unisparse_memref_4d_u16 *o,
    unisparse_memref_3d_f32 *lse, int64_t block_size, int32_t causal,
    float scale) {
  return callCudaAttention("unisparse_rt_block_sparse_attention_cuda_bf16",
                           UNISPARSE_DTYPE_BF16, q, k, v, counts, indices, o,
                           lse, block_size, causal, scale);
}

} // extern "C"
