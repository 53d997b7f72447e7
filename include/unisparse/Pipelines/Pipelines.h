//===- Pipelines.h - unisparse pass pipelines -------------------*- C++ -*-===//

#ifndef UNISPARSE_PIPELINES_PIPELINES_H
#define UNISPARSE_PIPELINES_PIPELINES_H

#include "mlir/IR/DialectRegistry.h"
#include "mlir/Pass/PassManager.h"
#include "mlir/Pass/PassOptions.h"

namespace mlir::unisparse {

/// Options of `unisparse-to-cpu`.
struct UnisparseToCPUPipelineOptions
    : public PassPipelineOptions<UnisparseToCPUPipelineOptions> {
  PassOptions::Option<bool> decompose{
      *this, "decompose",
      llvm::cl::desc("Decompose unisparse.attention into its stages first"),
      llvm::cl::init(true)};
  PassOptions::Option<bool> deallocate{
      *this, "deallocate",
      llvm::cl::desc("Insert buffer deallocations (buffer-deallocation-"
                     "pipeline)"),
      llvm::cl::init(true)};
};

/// Everything from `unisparse.attention` (or its stages) on tensors down to
/// the LLVM dialect for the host: decomposition, canonicalization, the
/// estimation stages through linalg/scf, one-shot bufferization (identity
/// layouts at function boundaries), block_sparse_attention as a call of the
/// runtime's CPU kernel, then loops, control flow and LLVM. The output holds
/// only upstream dialects.
void buildUnisparseToCPUPipeline(OpPassManager &pm,
                                 const UnisparseToCPUPipelineOptions &options);

/// Registers `unisparse-to-cpu` with the global pipeline registry.
void registerUnisparsePipelines();

/// Registers every dialect and external interface model that the unisparse
/// passes and pipelines create or need (bufferization models, LLVM
/// translation), so a tool or the C API can load them up front.
void registerUnisparseDependencies(DialectRegistry &registry);

} // namespace mlir::unisparse

#endif // UNISPARSE_PIPELINES_PIPELINES_H
