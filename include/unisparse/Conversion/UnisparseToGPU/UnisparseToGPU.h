//===- UnisparseToGPU.h - estimation stages to GPU kernels ------*- C++ -*-===//

#ifndef UNISPARSE_CONVERSION_UNISPARSETOGPU_UNISPARSETOGPU_H
#define UNISPARSE_CONVERSION_UNISPARSETOGPU_UNISPARSETOGPU_H

#include "mlir/Dialect/Arith/IR/Arith.h"
#include "mlir/Dialect/Bufferization/IR/Bufferization.h"
#include "mlir/Dialect/GPU/IR/GPUDialect.h"
#include "mlir/Dialect/LLVMIR/LLVMDialect.h"
#include "mlir/Dialect/LLVMIR/NVVMDialect.h"
#include "mlir/Dialect/Linalg/IR/Linalg.h"
#include "mlir/Dialect/Math/IR/Math.h"
#include "mlir/Dialect/MemRef/IR/MemRef.h"
#include "mlir/Dialect/NVGPU/IR/NVGPUDialect.h"
#include "mlir/Dialect/SCF/IR/SCF.h"
#include "mlir/Dialect/Tensor/IR/Tensor.h"
#include "mlir/Dialect/Vector/IR/VectorOps.h"
#include "mlir/IR/PatternMatch.h"
#include "mlir/Pass/Pass.h"
#include "llvm/ADT/DenseMap.h"
#include "llvm/ADT/SetVector.h"

namespace mlir::unisparse {

#define GEN_PASS_DECL_CONVERTUNISPARSETOGPUPASS
#define GEN_PASS_DECL_UNISPARSENARROWCOMPOSITESPASS
#include "unisparse/Conversion/Passes.h.inc"

/// Tile knobs of the scoring kernel (the pass options).
struct ScoreKernelOptions {
  /// Warps per CTA.
  int64_t warps = 4;
  /// Query composites per warp: 16 or 32 (one or two m16 MMA tiles; 16
  /// halves the registers a warp holds, so more warps fit per SM).
  int64_t warpRows = 32;
  /// Key composites per workgroup-memory tile (a multiple of 16).
  int64_t keyTile = 64;
  /// The outlier estimator's kernel's key tile (its own: a tile holds every
  /// key slot; 32 keeps its registers unspilled and two CTAs per SM).
  int64_t outlierKeyTile = 32;
  /// The outlier scoring kernel's pass 2 on unmasked key tiles: of each 8
  /// consecutive values of a row, this many take their exponentials (all of
  /// them: the slot 0 rows' p and sum terms, the slot 1 rows' sum terms) by a
  /// polynomial on the FMA pipe instead of ex2.approx on the MUFU (0..8).
  int64_t outlierExp2Poly = 2;
  /// The outlier scoring kernel's scores: a thread per (query block, key
  /// tile) computing the tile's per-row scale factors once for its blocks,
  /// instead of a thread per (query block, key block) computing them per
  /// block.
  bool outlierTileFactors = true;
  /// The outlier scoring kernel's loops over the key slots unrolled: one
  /// basic block a key tile, so that ptxas may issue a slot's mma.sync and
  /// ldmatrix among the previous slot's epilogue and load the A fragments
  /// once for all slots (the same operations in the same order: the same
  /// bits).
  bool outlierUnrollSlots = false;
  /// The outlier scoring kernel's products on wgmma (sm_90a only): both
  /// operands from workgroup memory (the key stages slot major and the
  /// query tile in the 128-byte swizzle), a key slot's products issued
  /// before the previous slot's epilogue; the slots unrolled. Applies with
  /// 4 warps a CTA and a head dimension that is a multiple of 64. Off by
  /// default: on the H100 it scores as fast as mma.sync (the kernel is
  /// bound by its epilogue's dependent chains, not by the operands' loads).
  bool outlierWgmma = false;
  /// Persistent CTAs (the grid); each owns one scratch slot.
  int64_t ctas = 264;
  /// CTAs that should fit on one SM at once (nvvm.minctasm: ptxas keeps
  /// the registers within 64K / (this * threads)); 0 leaves it to ptxas.
  int64_t minCtasPerSm = 0;
  /// The scores by a second, memory-bound kernel from per-query-composite
  /// scratch rows instead of at the end of each CTA tile from a slot per
  /// CTA.
  bool separateEpilogue = true;
  /// Separate epilogue: the scoring and epilogue launches run over chunks
  /// of work units (causal pairs of CTA tiles) whose scratch fits in this
  /// many bytes, but at least one unit per CTA (so the scratch grows at
  /// most as N); 0: one chunk of every unit (the scratch grows as N * NBk).
  int64_t scratchBytes = 256 << 20;
  /// The per-key-block partial sums P in the scratch as f16 (P lies in
  /// [0, rk] relative to an integer max: 2^-11 relative rounding, half the
  /// bytes the key loop writes and the epilogue reads) instead of f32.
  bool halfPartials = true;
  /// Element type of the composites on tensor cores (bf16 or f16).
  Type compositeType;
  /// The query composites of mean pooling pooled by the scoring kernel from
  /// the raw queries as it loads its tile (the query compress and its
  /// buffer disappear), where FusedQueryPooling finds the pattern.
  bool fuseQueryPooling = true;
  /// With fuseQueryPooling: each tile's raw queries are prefetched into L2
  /// (prefetch.global.L2, which LLVM 22's NVPTX back end selects from sm_90
  /// on) before they are pooled.
  bool prefetchQueries = true;
};

/// The query compresses whose pooling the scoring kernel takes over
/// (`ScoreKernelOptions::fuseQueryPooling`): a buffer-form block_score of
/// the mean estimator that the tensor-core kernel takes (and whose fused
/// query tile fits in workgroup memory) reads query composites from a
/// memref.alloc that only one mean-pooling compress (tokens c_q) writes,
/// earlier in the same block, with nothing between them that may write the
/// compress's input, and that only deallocations use besides. Decided for
/// a whole module before any op is lowered (lowering the key compress
/// between them would hide the pattern).
class FusedQueryPooling {
public:
  FusedQueryPooling() = default;
  FusedQueryPooling(Operation *root, const ScoreKernelOptions &options);

  /// The compress whose queries `score` pools, or null.
  Operation *queriesOf(Operation *score) const {
    return compressOf.lookup(score);
  }
  /// Whether a scoring kernel pools the queries of `compress`.
  bool pools(Operation *compress) const { return fused.contains(compress); }
  /// After the scoring ops are lowered: erases each fused compress, its
  /// destination and the destination's deallocations (a compress whose
  /// destination something else still reads is left alone).
  void eraseFused();

private:
  llvm::DenseMap<Operation *, Operation *> compressOf;
  llvm::SetVector<Operation *> fused;
};

/// Why the scoring kernel for `op` (a block_score the tensor-core kernel
/// takes with `options`) cannot pool its query composites from raw queries
/// of type `input` itself, or an empty string when it can.
std::string queryPoolingUnsupportedReason(Operation *op,
                                          const ScoreKernelOptions &options,
                                          MemRefType input);

/// Why `op` (a block_score) cannot use the tensor-core kernel with
/// `options` (its composites rounded to `options.compositeType`), or an
/// empty string when it can.
std::string tensorCoreScoreUnsupportedReason(Operation *op,
                                             const ScoreKernelOptions &options);

/// Why `op` (a block_score of the outlier estimator) cannot use the
/// outlier estimator's tensor-core kernel with `options` (its composites
/// rounded to `options.compositeType`), or an empty string when it can.
std::string outlierScoreUnsupportedReason(Operation *op,
                                          const ScoreKernelOptions &options);

/// Query composites per CTA tile of the outlier scoring kernel (16 a
/// warp); its scratch slot holds two rows (the query slots) for each.
int64_t outlierScoreCtaComposites(const ScoreKernelOptions &options);

/// Query composites per warp of the scoring kernel for `op` (a
/// block_score): `options.warpRows` for mean pooling; 16 for the
/// antidiagonal estimators, whose key loop holds a slot's accumulators
/// (and, for antidiag_lse, the running exponentials) besides the mean's
/// state: with 32 rows ptxas spills and one CTA fits per SM (its stages
/// carry the query composites too).
int64_t scoreWarpRows(Operation *op, const ScoreKernelOptions &options);

/// Buffer-form mean-pooling and concatenating compress -> a bandwidth-bound
/// kernel (except those whose pooling `fused` gives to a scoring kernel).
void populateCompressToGPUPatterns(RewritePatternSet &patterns,
                                   const FusedQueryPooling &fused);
/// Buffer-form compress {pooling = outlier} -> the outlier compress kernels
/// (OutlierCompressKernel.cpp; an error for one that
/// outlierCompressKernelUnsupportedReason rejects).
void populateOutlierCompressToGPUPatterns(RewritePatternSet &patterns);
/// Buffer-form block_score with 16-bit composites -> the tensor-core kernel
/// (an error for one that tensorCoreScoreUnsupportedReason rejects); the
/// kernel pools its query composites itself where `fused` says so.
void populateBlockScoreToGPUPatterns(RewritePatternSet &patterns,
                                     const ScoreKernelOptions &options,
                                     const FusedQueryPooling &fused);
/// Buffer-form block_score of the outlier estimator with 16-bit
/// composites -> the outlier scoring kernels (OutlierScoreKernel.cpp; an
/// error for one that outlierScoreUnsupportedReason rejects).
void populateOutlierScoreToGPUPatterns(RewritePatternSet &patterns,
                                       const ScoreKernelOptions &options);
/// Buffer-form block_select -> one warp per row (a CTA of one warp).
void populateBlockSelectToGPUPatterns(RewritePatternSet &patterns);
/// Buffer-form slash_refine with 16-bit q and k -> the refinement kernels
/// (the last rows and the probe rows on tensor cores).
void populateSlashRefineToGPUPatterns(RewritePatternSet &patterns);

} // namespace mlir::unisparse

#endif // UNISPARSE_CONVERSION_UNISPARSETOGPU_UNISPARSETOGPU_H
