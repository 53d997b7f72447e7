//===- Passes.h - unisparse transform passes --------------------*- C++ -*-===//

#ifndef UNISPARSE_DIALECT_UNISPARSE_TRANSFORMS_PASSES_H
#define UNISPARSE_DIALECT_UNISPARSE_TRANSFORMS_PASSES_H

#include "mlir/Dialect/Affine/IR/AffineOps.h"
#include "mlir/Dialect/Arith/IR/Arith.h"
#include "mlir/Dialect/GPU/IR/GPUDialect.h"
#include "mlir/Dialect/LLVMIR/LLVMDialect.h"
#include "mlir/Dialect/Linalg/IR/Linalg.h"
#include "mlir/Dialect/Math/IR/Math.h"
#include "mlir/Dialect/MemRef/IR/MemRef.h"
#include "mlir/Dialect/SCF/IR/SCF.h"
#include "mlir/Dialect/Tensor/IR/Tensor.h"
#include "mlir/Dialect/Vector/IR/VectorOps.h"
#include "mlir/IR/DialectRegistry.h"
#include "mlir/IR/PatternMatch.h"
#include "mlir/Interfaces/TilingInterface.h"
#include "mlir/Pass/Pass.h"

namespace mlir::unisparse {

#define GEN_PASS_DECL
#include "unisparse/Dialect/Unisparse/Transforms/Passes.h.inc"

/// The module attribute in which a pass records attributes for kernels it
/// builds, by kernel name, for unisparse-gpu-kernel-attributes to set on
/// the outlined gpu.func.
inline constexpr llvm::StringLiteral kKernelAttributesAttrName =
    "unisparse.kernel_attributes";

/// Patterns rewriting unisparse.attention into its stages.
void populateDecomposeAttentionPatterns(RewritePatternSet &patterns);

/// Tiles `op` with `tileSizes` (0: loop not tiled) into an scf.forall through
/// scf::tileUsingSCF and replaces it; emits an error on failure.
LogicalResult tileToForall(RewriterBase &rewriter, TilingInterface op,
                           ArrayRef<int64_t> tileSizes);

/// Attaches the BufferizableOpInterface to unisparse.block_sparse_attention
/// (the only unisparse op that survives until bufferization).
void registerBufferizableOpInterfaceExternalModels(DialectRegistry &registry);

#define GEN_PASS_REGISTRATION
#include "unisparse/Dialect/Unisparse/Transforms/Passes.h.inc"

} // namespace mlir::unisparse

#endif // UNISPARSE_DIALECT_UNISPARSE_TRANSFORMS_PASSES_H
