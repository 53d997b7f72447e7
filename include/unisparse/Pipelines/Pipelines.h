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

/// Whether `unisparse-to-nvptx` builds the outlier scoring kernel on wgmma:
/// asked for (`score-outlier-wgmma`) and `chip` sm_90a, the one chip with
/// wgmma (not sm_90, nor later ones). unisparse-compile's entry module asks
/// the same when it predicts the kernel's workspace.
inline bool outlierWgmmaFor(bool requested, llvm::StringRef chip) {
  return requested && chip == "sm_90a";
}

/// Options of `unisparse-to-nvptx`.
struct UnisparseToNVPTXPipelineOptions
    : public PassPipelineOptions<UnisparseToNVPTXPipelineOptions> {
  PassOptions::Option<std::string> chip{
      *this, "chip", llvm::cl::desc("GPU architecture of the cubin"),
      llvm::cl::init("sm_90a")};
  PassOptions::Option<std::string> features{
      *this, "features",
      llvm::cl::desc("PTX features (sm_90a needs +ptx80 or later)"),
      llvm::cl::init("+ptx80")};
  PassOptions::Option<std::string> format{
      *this, "format",
      llvm::cl::desc("gpu.binary format: bin (cubin, checked by ptxas at "
                     "compile time), fatbin, or isa (PTX, JIT at load)"),
      llvm::cl::init("bin")};
  PassOptions::Option<int64_t> threads{
      *this, "threads",
      llvm::cl::desc("Threads per block of the estimation kernels"),
      llvm::cl::init(128)};
  PassOptions::Option<std::string> scorePrecision{
      *this, "score-precision",
      llvm::cl::desc("Composites of the tensor-core scoring kernel: bf16 or "
                     "f16; f32 scores on CUDA cores (the structured path)"),
      llvm::cl::init("bf16")};
  PassOptions::Option<int64_t> scoreWarps{
      *this, "score-warps",
      llvm::cl::desc("Warps per CTA of the scoring kernel"), llvm::cl::init(4)};
  PassOptions::Option<int64_t> scoreWarpRows{
      *this, "score-warp-rows",
      llvm::cl::desc("Query composites per warp of the scoring kernel (16 "
                     "or 32)"),
      llvm::cl::init(32)};
  PassOptions::Option<int64_t> scoreKeyTile{
      *this, "score-key-tile",
      llvm::cl::desc("Key composites per workgroup-memory tile of the "
                     "scoring kernel"),
      llvm::cl::init(64)};
  PassOptions::Option<int64_t> scoreOutlierKeyTile{
      *this, "score-outlier-key-tile",
      llvm::cl::desc("Key composites per workgroup-memory tile of the "
                     "outlier estimator's scoring kernel"),
      llvm::cl::init(32)};
  PassOptions::Option<int64_t> scoreOutlierExp2Poly{
      *this, "score-outlier-exp2-poly",
      llvm::cl::desc("Of each 8 values of a row in the outlier scoring "
                     "kernel's pass 2, how many take their exponentials by a "
                     "polynomial on the FMA pipe (0..8)"),
      llvm::cl::init(2)};
  PassOptions::Option<bool> scoreOutlierTileFactors{
      *this, "score-outlier-tile-factors",
      llvm::cl::desc("The outlier scoring kernel's scores with each key "
                     "tile's scale factors computed once per tile"),
      llvm::cl::init(true)};
  PassOptions::Option<bool> scoreOutlierUnrollSlots{
      *this, "score-outlier-unroll-slots",
      llvm::cl::desc("The outlier scoring kernel's loops over the key slots "
                     "unrolled (the same bits)"),
      llvm::cl::init(false)};
  PassOptions::Option<bool> scoreOutlierWgmma{
      *this, "score-outlier-wgmma",
      llvm::cl::desc("The outlier scoring kernel's products on wgmma where "
                     "the chip is sm_90a (4 warps a CTA, head_dim a multiple "
                     "of 64; off by default: as fast as mma.sync, measured)"),
      llvm::cl::init(false)};
  PassOptions::Option<int64_t> scoreCtas{
      *this, "score-ctas",
      llvm::cl::desc("Persistent CTAs of the scoring kernel"),
      llvm::cl::init(264)};
  PassOptions::Option<int64_t> scoreMinCtasPerSm{
      *this, "score-min-ctas-per-sm",
      llvm::cl::desc("Scoring CTAs that should fit on one SM (a register "
                     "budget for ptxas); 0: none"),
      llvm::cl::init(0)};
  PassOptions::Option<std::string> scoreEpilogue{
      *this, "score-epilogue",
      llvm::cl::desc("Where the scoring kernel forms the block scores: fused "
                     "(per CTA tile) or separate (a second kernel)"),
      llvm::cl::init("separate")};
  PassOptions::Option<int64_t> scoreScratchBytes{
      *this, "score-scratch-bytes",
      llvm::cl::desc("Separate epilogue: bytes of scratch per chunk of the "
                     "scoring work (at least one unit per CTA; 0: every unit "
                     "at once)"),
      llvm::cl::init(256 << 20)};
  PassOptions::Option<std::string> scorePartials{
      *this, "score-partials",
      llvm::cl::desc("Type of the scoring kernel's per-key-block partial "
                     "sums in its scratch: f16 (half the bytes) or f32"),
      llvm::cl::init("f16")};
  PassOptions::Option<bool> refineKernels{
      *this, "refine-kernels",
      llvm::cl::desc("unisparse.slash_refine (16-bit q and k) as the built "
                     "refinement kernels; false: its loop lowering through "
                     "the generic GPU path (for debugging and comparison)"),
      llvm::cl::init(true)};
  PassOptions::Option<bool> scoreFuseQueryPooling{
      *this, "score-fuse-query-pooling",
      llvm::cl::desc("The mean estimator's scoring kernel pools its query "
                     "composites from the raw queries (no query compress "
                     "kernel); false keeps the compress kernel"),
      llvm::cl::init(true)};
  PassOptions::Option<bool> scorePrefetchQueries{
      *this, "score-prefetch-queries",
      llvm::cl::desc("With score-fuse-query-pooling, on sm_90 and later: "
                     "prefetch each tile's raw queries into L2 before "
                     "pooling them; false pools them with plain loads"),
      llvm::cl::init(true)};
  PassOptions::Option<int> optLevel{*this, "opt-level",
                                    llvm::cl::desc("NVVM optimization level"),
                                    llvm::cl::init(3)};
  PassOptions::Option<bool> decompose{
      *this, "decompose",
      llvm::cl::desc("Decompose unisparse.attention into its stages first"),
      llvm::cl::init(true)};
};

/// Compression, scoring and selection become GPU kernels (linalg -> parallel
/// loops tiled and mapped to blocks/threads -> gpu.launch -> NVVM ->
/// gpu.binary with a cubin for `chip`); block_sparse_attention becomes a call
/// of the runtime's CUDA kernel on device memrefs; host code is lowered to
/// LLVM with the mgpu* runtime calls (which libunisparse_runtime provides).
/// Buffers that bufferization creates are device allocations.
void buildUnisparseToNVPTXPipeline(
    OpPassManager &pm, const UnisparseToNVPTXPipelineOptions &options);

/// Registers `unisparse-to-cpu` and `unisparse-to-nvptx` with the global
/// pipeline registry.
void registerUnisparsePipelines();

/// Registers every dialect and external interface model that the unisparse
/// passes and pipelines create or need (bufferization models, LLVM
/// translation), so a tool or the C API can load them up front.
void registerUnisparseDependencies(DialectRegistry &registry);

} // namespace mlir::unisparse

#endif // UNISPARSE_PIPELINES_PIPELINES_H
