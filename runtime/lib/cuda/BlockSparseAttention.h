//===- BlockSparseAttention.h - CUDA block-sparse attention -----*- C++ -*-===//
//
// The CUDA backend of unisparse_rt_block_sparse_attention (compiled only
// when the runtime is built with CUDA).
//
//===----------------------------------------------------------------------===//

#ifndef UNISPARSE_RUNTIME_LIB_CUDA_BLOCKSPARSEATTENTION_H
#define UNISPARSE_RUNTIME_LIB_CUDA_BLOCKSPARSEATTENTION_H

#include "common/Validate.h"

namespace unisparse::rt::cuda {

/// Launches block-sparse attention on CUDA tensors, asynchronously, on
/// `stream` (a CUstream; null: the thread's current stream if set, else the
/// legacy default stream). Requires a successful validateAttention. Checks,
/// before any launch: what the kernels support (f16/bf16, D in {64, 128},
/// S in {64, 128}, unit stride along D), and, unless `stream` is being
/// captured into a graph, that each tensor's data is memory the driver knows
/// on the current context's device and that its extent lies inside its
/// allocation. The layout's values are not checked on the host (they live on
/// the device): the kernel clamps and skips bad entries (see
/// BlockSparseAttention.cu).
unisparse_status_t blockSparseAttention(const AttentionTensors &tensors,
                                        const AttentionProblem &problem,
                                        void *stream);

/// Records, for unisparse_rt_last_cuda_attention_kernel, which kernel the
/// calling thread's last successful launch used (defined in Attention.cpp).
void noteCudaAttentionKernel(int32_t kernel);

/// Waits for the legacy default stream (used by the memref shims when no
/// current stream is set).
unisparse_status_t synchronizeLegacyStream();

} // namespace unisparse::rt::cuda

#endif // UNISPARSE_RUNTIME_LIB_CUDA_BLOCKSPARSEATTENTION_H
