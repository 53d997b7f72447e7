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

#include <atomic>
#include <cctype>
#include <cstdlib>
#include <cstring>

using namespace unisparse::rt;

namespace {

/// A value of UNISPARSE_CUDA_ATTENTION_KERNEL that names no kernel: every
/// CUDA call then fails saying so (a typo must not silently run, and be
/// timed as, the default kernel).
constexpr int32_t kInvalidChoice = -1;

bool equalsIgnoringCase(const char *a, const char *b) {
  for (; *a && *b; ++a, ++b)
    if (std::tolower(static_cast<unsigned char>(*a)) !=
        std::tolower(static_cast<unsigned char>(*b)))
      return false;
  return *a == *b;
}

/// The CUDA kernel choice: UNISPARSE_CUDA_ATTENTION_KERNEL at the first
/// use (auto | mma_sync | sm90, any case; unset or empty: auto), then
/// whatever unisparse_rt_set_cuda_attention_kernel sets.
std::atomic<int32_t> &kernelChoice() {
  static std::atomic<int32_t> choice{[] {
    const char *env = std::getenv("UNISPARSE_CUDA_ATTENTION_KERNEL");
    if (!env || !*env || equalsIgnoringCase(env, "auto"))
      return int32_t(UNISPARSE_CUDA_KERNEL_AUTO);
    if (equalsIgnoringCase(env, "mma_sync"))
      return int32_t(UNISPARSE_CUDA_KERNEL_MMA_SYNC);
    if (equalsIgnoringCase(env, "sm90"))
      return int32_t(UNISPARSE_CUDA_KERNEL_SM90);
    return kInvalidChoice;
  }()};
  return choice;
}

thread_local int32_t lastKernel = UNISPARSE_CUDA_KERNEL_AUTO;

} // namespace

#if UNISPARSE_RT_CUDA
namespace unisparse::rt::cuda {
void noteCudaAttentionKernel(int32_t kernel) { lastKernel = kernel; }
} // namespace unisparse::rt::cuda
#endif

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
    if (kernelChoice().load() == kInvalidChoice)
      return setError(UNISPARSE_STATUS_INVALID_ARGUMENT,
                      "UNISPARSE_CUDA_ATTENTION_KERNEL = '%s' names no "
                      "kernel: expected auto, mma_sync or sm90",
                      std::getenv("UNISPARSE_CUDA_ATTENTION_KERNEL"));
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

unisparse_status_t unisparse_rt_set_cuda_attention_kernel(int32_t kernel) {
  if (kernel != UNISPARSE_CUDA_KERNEL_AUTO &&
      kernel != UNISPARSE_CUDA_KERNEL_MMA_SYNC &&
      kernel != UNISPARSE_CUDA_KERNEL_SM90)
    return setError(UNISPARSE_STATUS_INVALID_ARGUMENT,
                    "kernel = %d, expected UNISPARSE_CUDA_KERNEL_AUTO (0), "
                    "_MMA_SYNC (1) or _SM90 (2)",
                    int(kernel));
  kernelChoice().store(kernel);
  return UNISPARSE_STATUS_SUCCESS;
}

int32_t unisparse_rt_get_cuda_attention_kernel(void) {
  return kernelChoice().load();
}

int32_t unisparse_rt_last_cuda_attention_kernel(void) { return lastKernel; }

} // extern "C"
