//===- unisparse_runtime.h - UniSparse runtime C ABI ------------*- C -*-===//
//
// The C ABI of libunisparse_runtime. It builds without MLIR. It provides
//  (a) the block-sparse attention entry point for direct callers (Python, C/C++
//      embedders), taking strided tensor descriptors;
//  (b) the `_mlir_ciface_unisparse_rt_*` shims that code lowered by
//      `convert-unisparse-to-runtime` calls, taking MLIR memref descriptors;
//  (c) error reporting: every entry point returns a status code, and the
//      message of the most recent failure on the calling thread is kept.
//
// Nothing here aborts or exits on bad input.
//
//===----------------------------------------------------------------------===//

#ifndef UNISPARSE_RUNTIME_UNISPARSE_RUNTIME_H
#define UNISPARSE_RUNTIME_UNISPARSE_RUNTIME_H

#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

#if defined(_WIN32)
#define UNISPARSE_RT_EXPORT __declspec(dllexport)
#else
#define UNISPARSE_RT_EXPORT __attribute__((visibility("default")))
#endif

/// Status codes returned by every runtime entry point.
typedef enum unisparse_status {
  UNISPARSE_STATUS_SUCCESS = 0,
  UNISPARSE_STATUS_NULL_POINTER = 1,      ///< a required pointer is null
  UNISPARSE_STATUS_INVALID_RANK = 2,      ///< a tensor has the wrong rank
  UNISPARSE_STATUS_SHAPE_MISMATCH = 3,    ///< sizes disagree between tensors
  UNISPARSE_STATUS_UNSUPPORTED_DTYPE = 4, ///< dtype not supported / mixed
  UNISPARSE_STATUS_INVALID_STRIDE = 5,    ///< negative or overlapping strides
  UNISPARSE_STATUS_INVALID_LAYOUT = 6,    ///< counts/indices out of range
  UNISPARSE_STATUS_INVALID_ARGUMENT = 7,  ///< any other bad scalar argument
  UNISPARSE_STATUS_DEVICE_MISMATCH = 8,   ///< tensors on different devices
  UNISPARSE_STATUS_NOT_SUPPORTED = 9,     ///< valid but not built/supported
  UNISPARSE_STATUS_CUDA_ERROR = 10,       ///< a CUDA driver call failed
  UNISPARSE_STATUS_OUT_OF_MEMORY = 11,
} unisparse_status_t;

/// Element types.
typedef enum unisparse_dtype {
  UNISPARSE_DTYPE_F32 = 0,
  UNISPARSE_DTYPE_F16 = 1,
  UNISPARSE_DTYPE_BF16 = 2,
  UNISPARSE_DTYPE_I32 = 3,
} unisparse_dtype_t;

/// Where a tensor lives.
typedef enum unisparse_device {
  UNISPARSE_DEVICE_CPU = 0,
  UNISPARSE_DEVICE_CUDA = 1,
} unisparse_device_t;

#define UNISPARSE_MAX_RANK 4

/// A strided view of a tensor. Sizes and strides are in elements; only the
/// first `rank` entries are read.
typedef struct unisparse_tensor {
  void *data;
  int32_t dtype;  ///< unisparse_dtype_t
  int32_t device; ///< unisparse_device_t
  int32_t rank;
  int64_t sizes[UNISPARSE_MAX_RANK];
  int64_t strides[UNISPARSE_MAX_RANK];
} unisparse_tensor_t;

/// Scalar parameters of block-sparse attention.
typedef struct unisparse_attention_params {
  int64_t block_size; ///< square block size S (> 0)
  int32_t causal;     ///< 0 or 1: causal mask inside the diagonal block
  float scale;        ///< softmax scale; <= 0 selects 1/sqrt(D)
} unisparse_attention_params_t;

/// Exact block-sparse attention (see docs/Rationale.md for the semantics).
///
///   q       [B, Hq,  N, D]   f32 | f16 | bf16
///   k, v    [B, Hkv, N, D]   same dtype as q, Hq % Hkv == 0
///   counts  [B, Hg, NBq]     i32, Hq % Hg == 0, NBq = ceil(N / S)
///   indices [B, Hg, NBq, M]  i32, M <= NBk = ceil(N / S); the first
///                            counts[b,g,i] entries of each row are strictly
///                            ascending key-block indices in [0, NBk)
///   o       [B, Hq,  N, D]   same dtype as q (written)
///   lse     [B, Hq,  N]      f32, natural-log sum of exp(scale * q.k) over the
///                            visited keys (written; -inf for a row with none)
///
/// Query head h reads kv head h / (Hq / Hkv) and the layout of head group
/// h / (Hq / Hg). Accumulation is in f32. `stream` is a CUDA stream
/// (CUstream) for CUDA tensors and must be null for CPU tensors.
UNISPARSE_RT_EXPORT unisparse_status_t unisparse_rt_block_sparse_attention(
    const unisparse_tensor_t *q, const unisparse_tensor_t *k,
    const unisparse_tensor_t *v, const unisparse_tensor_t *counts,
    const unisparse_tensor_t *indices, const unisparse_tensor_t *o,
    const unisparse_tensor_t *lse, const unisparse_attention_params_t *params,
    void *stream);

/// The message of the most recent failure on this thread ("" if none).
UNISPARSE_RT_EXPORT const char *unisparse_rt_last_error_message(void);
/// The status of the most recent failure on this thread (sticky until
/// cleared), or UNISPARSE_STATUS_SUCCESS.
UNISPARSE_RT_EXPORT unisparse_status_t unisparse_rt_last_error(void);
/// Clears the sticky error of this thread.
UNISPARSE_RT_EXPORT void unisparse_rt_clear_error(void);
/// A static string naming a status code.
UNISPARSE_RT_EXPORT const char *unisparse_rt_status_string(unisparse_status_t);
/// 1 if the runtime was built with CUDA support, else 0.
UNISPARSE_RT_EXPORT int32_t unisparse_rt_has_cuda(void);

//===----------------------------------------------------------------------===//
// Entry points for compiled code (convert-unisparse-to-runtime).
//===----------------------------------------------------------------------===//

/// MLIR's ranked memref descriptor with a fully dynamic strided layout, as
/// passed by pointer by functions with `llvm.emit_c_interface`.
#define UNISPARSE_DEFINE_MEMREF(NAME, T, N)                                    \
  typedef struct NAME {                                                        \
    T *allocated;                                                              \
    T *aligned;                                                                \
    int64_t offset;                                                            \
    int64_t sizes[N];                                                          \
    int64_t strides[N];                                                        \
  } NAME;

UNISPARSE_DEFINE_MEMREF(unisparse_memref_4d_f32, float, 4)
UNISPARSE_DEFINE_MEMREF(unisparse_memref_4d_u16, uint16_t, 4)
UNISPARSE_DEFINE_MEMREF(unisparse_memref_3d_f32, float, 3)
UNISPARSE_DEFINE_MEMREF(unisparse_memref_3d_i32, int32_t, 3)
UNISPARSE_DEFINE_MEMREF(unisparse_memref_4d_i32, int32_t, 4)

/// Called by compiled host code for
///   func.func private @unisparse_rt_block_sparse_attention_<dtype>(
///       memref<?x?x?x?x<dtype>, strided<[?,?,?,?], offset: ?>> q, k, v,
///       memref<?x?x?xi32, strided<...>> counts,
///       memref<?x?x?x?xi32, strided<...>> indices,
///       memref<?x?x?x?x<dtype>, strided<...>> o,
///       memref<?x?x?xf32, strided<...>> lse,
///       i64 block_size, i32 causal, f32 scale) -> i32
///       attributes {llvm.emit_c_interface}
/// Returns the status; a failure is also recorded as this thread's sticky
/// error, which the embedding host reads after the compiled function returns.
UNISPARSE_RT_EXPORT int32_t _mlir_ciface_unisparse_rt_block_sparse_attention_f32(
    unisparse_memref_4d_f32 *q, unisparse_memref_4d_f32 *k,
    unisparse_memref_4d_f32 *v, unisparse_memref_3d_i32 *counts,
    unisparse_memref_4d_i32 *indices, unisparse_memref_4d_f32 *o,
    unisparse_memref_3d_f32 *lse, int64_t block_size, int32_t causal,
    float scale);
UNISPARSE_RT_EXPORT int32_t _mlir_ciface_unisparse_rt_block_sparse_attention_f16(
    unisparse_memref_4d_u16 *q, unisparse_memref_4d_u16 *k,
    unisparse_memref_4d_u16 *v, unisparse_memref_3d_i32 *counts,
    unisparse_memref_4d_i32 *indices, unisparse_memref_4d_u16 *o,
    unisparse_memref_3d_f32 *lse, int64_t block_size, int32_t causal,
    float scale);
UNISPARSE_RT_EXPORT int32_t _mlir_ciface_unisparse_rt_block_sparse_attention_bf16(
    unisparse_memref_4d_u16 *q, unisparse_memref_4d_u16 *k,
    unisparse_memref_4d_u16 *v, unisparse_memref_3d_i32 *counts,
    unisparse_memref_4d_i32 *indices, unisparse_memref_4d_u16 *o,
    unisparse_memref_3d_f32 *lse, int64_t block_size, int32_t causal,
    float scale);

#ifdef __cplusplus
} // extern "C"
#endif

#endif // UNISPARSE_RUNTIME_UNISPARSE_RUNTIME_H
