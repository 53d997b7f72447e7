//===- Attention.cpp - Block-sparse attention entry point -----------------===//
//
// unisparse_rt_block_sparse_attention: validates the arguments (common/),
// then dispatches on the device to a backend: cpu/, or cuda/ in builds with
// CUDA (UNISPARSE_RT_CUDA).
//
//===----------------------------------------------------------------------===//

#include "common/Error.h"
#include "common/Validate.h"
#include "cpu/BlockSparseAttention.h"
#if UNISPARSE_RT_CUDA
#include "cuda/BlockSparseAttention.h"
#endif

using namespace unisparse::rt;

extern "C" {

unisparse_status_t unisparse_rt_block_sparse_attention(
    const unisparse_tensor_t *q, const unisparse_tensor_t *k,
    const unisparse_tensor_t *v, const unisparse_tensor_t *counts,
    const unisparse_tensor_t *indices, const unisparse_tensor_t *o,
    const unisparse_tensor_t *lse, const unisparse_attention_params_t *params,
    void *stream) {
  // Shapes, dtypes, strides, devices and parameters: shared by all backends.
  const AttentionTensors tensors{q, k, v, counts, indices, o, lse};
  AttentionProblem problem;
  if (unisparse_status_t s = validateAttention(tensors, params, problem))
    return s;

  if (problem.device == UNISPARSE_DEVICE_CUDA) {
#if UNISPARSE_RT_CUDA
    // The layout lives on the device and is not read here: the kernel clamps
    // and skips bad entries instead (see cuda/BlockSparseAttention.cu).
    return cuda::blockSparseAttention(tensors, problem, stream);
#else
    return setError(UNISPARSE_STATUS_NOT_SUPPORTED,
                    "q: device = cuda, but this build of the runtime has no "
                    "CUDA backend for block-sparse attention (configure the "
                    "runtime with -DUNISPARSE_RUNTIME_ENABLE_CUDA=ON); pass "
                    "CPU tensors");
#endif
  }

  // CPU: no stream, a host-readable layout, then the kernel.
  if (stream)
    return setError(UNISPARSE_STATUS_INVALID_ARGUMENT,
                    "stream: %p, expected null for CPU tensors", stream);
  if (unisparse_status_t s = validateLayout(tensors, problem))
    return s;
  return cpu::blockSparseAttention(tensors, problem);
}

int32_t unisparse_rt_has_cuda(void) { return UNISPARSE_RT_CUDA ? 1 : 0; }

} // extern "C"
