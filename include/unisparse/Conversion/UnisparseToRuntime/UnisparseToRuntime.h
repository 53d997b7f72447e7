//===- UnisparseToRuntime.h - block_sparse_attention to calls ---*- C++ -*-===//

#ifndef UNISPARSE_CONVERSION_UNISPARSETORUNTIME_UNISPARSETORUNTIME_H
#define UNISPARSE_CONVERSION_UNISPARSETORUNTIME_UNISPARSETORUNTIME_H

#include "mlir/Dialect/Arith/IR/Arith.h"
#include "mlir/Dialect/Func/IR/FuncOps.h"
#include "mlir/Dialect/MemRef/IR/MemRef.h"
#include "mlir/IR/PatternMatch.h"
#include "mlir/Pass/Pass.h"

namespace mlir::unisparse {

#define GEN_PASS_DECL_CONVERTUNISPARSETORUNTIMEPASS
#include "unisparse/Conversion/Passes.h.inc"

/// The runtime backends that block_sparse_attention can call.
enum class RuntimeTarget { CPU, CUDA };

/// The runtime entry point called for element type `elementType`
/// ("unisparse_rt_block_sparse_attention_f32",
/// "unisparse_rt_block_sparse_attention_cuda_bf16", ...).
std::string getRuntimeAttentionFunctionName(Type elementType,
                                            RuntimeTarget target);

/// Buffer-form block_sparse_attention -> func.call of the runtime.
void populateUnisparseToRuntimePatterns(RewritePatternSet &patterns,
                                        RuntimeTarget target);

} // namespace mlir::unisparse

#endif // UNISPARSE_CONVERSION_UNISPARSETORUNTIME_UNISPARSETORUNTIME_H
