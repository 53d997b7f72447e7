//===- Validate.h - Argument checks for block-sparse attention --*- C++ -*-===//
//
// Checks shared by the CPU and CUDA backends. Each check returns a status and,
// on failure, records a message naming the argument, the expected value and
// the value found (see common/Error.h).
//
//===----------------------------------------------------------------------===//

#ifndef UNISPARSE_RUNTIME_LIB_COMMON_VALIDATE_H
#define UNISPARSE_RUNTIME_LIB_COMMON_VALIDATE_H

#include "unisparse/runtime/unisparse_runtime.h"

#include <cstdint>

namespace unisparse::rt {

/// The tensor arguments of unisparse_rt_block_sparse_attention.
struct AttentionTensors {
  const unisparse_tensor_t *q;
  const unisparse_tensor_t *k;
  const unisparse_tensor_t *v;
  const unisparse_tensor_t *counts;
  const unisparse_tensor_t *indices;
  const unisparse_tensor_t *o;
  const unisparse_tensor_t *lse;
};

/// The problem sizes and resolved parameters of a validated call.
struct AttentionProblem {
  int64_t batch = 0;      ///< B
  int64_t numQHeads = 0;  ///< Hq
  int64_t numKVHeads = 0; ///< Hkv
  int64_t numGroups = 0;  ///< Hg (heads sharing one layout)
  int64_t seqLen = 0;     ///< N
  int64_t headDim = 0;    ///< D
  int64_t blockSize = 0;  ///< S
  int64_t numQBlocks = 0; ///< NBq = ceil(N / S)
  int64_t numKBlocks = 0; ///< NBk = ceil(N / S)
  int64_t maxBlocks = 0;  ///< M, the length of an indices row
  bool causal = false;
  float scale = 0.0f; ///< resolved: 1/sqrt(D) if params->scale <= 0
  unisparse_dtype_t dtype = UNISPARSE_DTYPE_F32;
  unisparse_device_t device = UNISPARSE_DEVICE_CPU;
};

/// Checks everything that can be checked without reading tensor contents:
/// null pointers, ranks, sizes, strides, dtypes, devices, and the scalar
/// parameters. On success fills `problem`.
unisparse_status_t validateAttention(const AttentionTensors &tensors,
                                     const unisparse_attention_params_t *params,
                                     AttentionProblem &problem);

/// Checks the contents of counts and indices (counts in [0, M], the first
/// counts[b,g,i] entries of each indices row strictly ascending in [0, NBk)).
/// Both must be readable from the host. Requires a successful
/// validateAttention.
unisparse_status_t validateLayout(const AttentionTensors &tensors,
                                  const AttentionProblem &problem);

} // namespace unisparse::rt

#endif // UNISPARSE_RUNTIME_LIB_COMMON_VALIDATE_H
