//===- BlockSparseAttention.h - CPU block-sparse attention ------*- C++ -*-===//
//
// The CPU backend of unisparse_rt_block_sparse_attention.
//
//===----------------------------------------------------------------------===//

#ifndef UNISPARSE_RUNTIME_LIB_CPU_BLOCKSPARSEATTENTION_H
#define UNISPARSE_RUNTIME_LIB_CPU_BLOCKSPARSEATTENTION_H

#include "common/Validate.h"

namespace unisparse::rt::cpu {

/// Computes block-sparse attention on host tensors. Requires that
/// validateAttention and validateLayout succeeded. Fails only with
/// UNISPARSE_STATUS_OUT_OF_MEMORY (scratch space).
unisparse_status_t blockSparseAttention(const AttentionTensors &tensors,
                                        const AttentionProblem &problem);

} // namespace unisparse::rt::cpu

#endif // UNISPARSE_RUNTIME_LIB_CPU_BLOCKSPARSEATTENTION_H
