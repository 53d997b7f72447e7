//===- Pipelines.cpp - unisparse-to-cpu and dependency registration -------===//

#include "unisparse/Pipelines/Pipelines.h"
#include "unisparse/Conversion/Passes.h"
#include "unisparse/Dialect/Unisparse/IR/Stages.h"
#include "unisparse/Dialect/Unisparse/IR/TilingInterfaceImpl.h"
#include "unisparse/Dialect/Unisparse/IR/UnisparseOps.h"
#include "unisparse/Dialect/Unisparse/Transforms/Passes.h"

#include "mlir/Conversion/ArithToLLVM/ArithToLLVM.h"
#include "mlir/Conversion/ControlFlowToLLVM/ControlFlowToLLVM.h"
#include "mlir/Conversion/FuncToLLVM/ConvertFuncToLLVM.h"
#include "mlir/Conversion/GPUCommon/GPUToLLVM.h"
#include "mlir/Conversion/IndexToLLVM/IndexToLLVM.h"
#include "mlir/Conversion/MathToLLVM/MathToLLVM.h"
#include "mlir/Conversion/MemRefToLLVM/MemRefToLLVM.h"
#include "mlir/Conversion/NVVMToLLVM/NVVMToLLVM.h"
#include "mlir/Conversion/Passes.h"
#include "mlir/Conversion/UBToLLVM/UBToLLVM.h"
#include "mlir/Conversion/VectorToLLVM/ConvertVectorToLLVM.h"
#include "mlir/Dialect/Affine/IR/AffineOps.h"
#include "mlir/Dialect/Arith/IR/Arith.h"
#include "mlir/Dialect/Arith/Transforms/BufferDeallocationOpInterfaceImpl.h"
#include "mlir/Dialect/Arith/Transforms/BufferizableOpInterfaceImpl.h"
#include "mlir/Dialect/Bufferization/IR/Bufferization.h"
#include "mlir/Dialect/Bufferization/Pipelines/Passes.h"
#include "mlir/Dialect/Bufferization/Transforms/FuncBufferizableOpInterfaceImpl.h"
#include "mlir/Dialect/Bufferization/Transforms/Passes.h"
#include "mlir/Dialect/ControlFlow/IR/ControlFlow.h"
#include "mlir/Dialect/ControlFlow/Transforms/BufferDeallocationOpInterfaceImpl.h"
#include "mlir/Dialect/Func/IR/FuncOps.h"
#include "mlir/Dialect/GPU/IR/GPUDialect.h"
#include "mlir/Dialect/GPU/Pipelines/Passes.h"
#include "mlir/Dialect/GPU/Transforms/Passes.h"
#include "mlir/Dialect/Index/IR/IndexDialect.h"
#include "mlir/Dialect/LLVMIR/LLVMDialect.h"
#include "mlir/Dialect/LLVMIR/NVVMDialect.h"
#include "mlir/Dialect/Linalg/IR/Linalg.h"
#include "mlir/Dialect/Linalg/Passes.h"
#include "mlir/Dialect/Linalg/Transforms/BufferizableOpInterfaceImpl.h"
#include "mlir/Dialect/Math/IR/Math.h"
#include "mlir/Dialect/MemRef/IR/MemRef.h"
#include "mlir/Dialect/MemRef/Transforms/AllocationOpInterfaceImpl.h"
#include "mlir/Dialect/MemRef/Transforms/Passes.h"
#include "mlir/Dialect/NVGPU/IR/NVGPUDialect.h"
#include "mlir/Dialect/SCF/IR/SCF.h"
#include "mlir/Dialect/SCF/Transforms/BufferDeallocationOpInterfaceImpl.h"
#include "mlir/Dialect/SCF/Transforms/BufferizableOpInterfaceImpl.h"
#include "mlir/Dialect/SCF/Transforms/Passes.h"
#include "mlir/Dialect/Tensor/IR/Tensor.h"
#include "mlir/Dialect/Tensor/Transforms/BufferizableOpInterfaceImpl.h"
#include "mlir/Dialect/UB/IR/UBOps.h"
#include "mlir/Dialect/Vector/IR/VectorOps.h"
#include "mlir/Pass/PassRegistry.h"
#include "mlir/Target/LLVM/NVVM/Target.h"
#include "mlir/Target/LLVMIR/Dialect/Builtin/BuiltinToLLVMIRTranslation.h"
#include "mlir/Target/LLVMIR/Dialect/GPU/GPUToLLVMIRTranslation.h"
#include "mlir/Target/LLVMIR/Dialect/LLVMIR/LLVMToLLVMIRTranslation.h"
#include "mlir/Target/LLVMIR/Dialect/NVVM/NVVMToLLVMIRTranslation.h"
#include "mlir/Transforms/Passes.h"

using namespace mlir;
using namespace mlir::unisparse;

namespace {
/// The part both targets share: the tensor level (stages, canonical forms,
/// estimation in linalg/scf), one-shot bufferization with identity layouts at
/// function boundaries (hosts pass plain descriptors), attention as a call of
/// the `runtimeTarget` backend, and (optionally) buffer deallocation.
/// What the GPU pipeline asks of the tensor level.
struct GpuEstimationOptions {
  std::string scorePrecision;
  int64_t warps, warpRows, keyTile, outlierKeyTile;
  bool refineKernels;
};

void addTensorAndBufferPasses(OpPassManager &pm, bool decompose,
                              StringRef runtimeTarget, bool deallocate,
                              bool tile,
                              const GpuEstimationOptions *gpu = nullptr) {
  if (decompose)
    pm.addPass(createUnisparseDecompose());
  pm.addPass(createCanonicalizerPass());
  if (tile) {
    pm.addPass(createUnisparseTileEstimation());
    pm.addPass(createCanonicalizerPass());
  }
  // GPU: composites of the tensor-core scoring rounded to 16 bits; that
  // scoring and the selection stay ops (their buffer forms become built
  // kernels after bufferization), the rest goes through linalg.
  ConvertUnisparseToLinalgPassOptions linalg;
  if (gpu) {
    UnisparseNarrowCompositesPassOptions narrow;
    narrow.type = gpu->scorePrecision;
    narrow.warps = gpu->warps;
    narrow.warpRows = gpu->warpRows;
    narrow.keyTile = gpu->keyTile;
    narrow.outlierKeyTile = gpu->outlierKeyTile;
    if (gpu->scorePrecision != "f32")
      pm.addPass(createUnisparseNarrowCompositesPass(narrow));
    linalg.gpuKernels = true;
    linalg.gpuRefineKernels = gpu->refineKernels;
  }
  pm.addPass(createConvertUnisparseToLinalgPass(linalg));
  pm.addPass(createCanonicalizerPass());

  bufferization::OneShotBufferizePassOptions bufferize;
  bufferize.bufferizeFunctionBoundaries = true;
  bufferize.functionBoundaryTypeConversion =
      bufferization::LayoutMapOption::IdentityLayoutMap;
  pm.addPass(bufferization::createOneShotBufferizePass(bufferize));
  // An extract_slice/insert_slice pair computed in place bufferizes to a copy
  // between two equal subviews: CSE makes them one value and the copy folds.
  pm.addPass(createCSEPass());
  pm.addPass(createCanonicalizerPass());
  ConvertUnisparseToRuntimePassOptions runtime;
  runtime.target = runtimeTarget.str();
  pm.addPass(createConvertUnisparseToRuntimePass(runtime));
  if (deallocate)
    bufferization::buildBufferDeallocationPipeline(pm);
  // bufferization.clone (from deallocation) -> memref.alloc + memref.copy.
  pm.addPass(createConvertBufferizationToMemRefPass());
}
} // namespace

void mlir::unisparse::buildUnisparseToCPUPipeline(
    OpPassManager &pm, const UnisparseToCPUPipelineOptions &options) {
  addTensorAndBufferPasses(pm, options.decompose, "cpu", options.deallocate,
                           /*tile=*/true);
  // Arithmetic the host vectorizer can handle instead of one expf call per
  // element of the score map.
  pm.addPass(createUnisparseApproximateExp());

  // Loops, then LLVM.
  pm.addPass(createConvertLinalgToLoopsPass());
  pm.addPass(createForallToForLoopPass());
  pm.addPass(memref::createExpandStridedMetadataPass());
  pm.addPass(createLowerAffinePass());
  pm.addPass(createSCFToControlFlowPass());
  // aligned_alloc, not malloc + an inttoptr-aligned pointer: LLVM's alias
  // analysis sees through neither the inttoptr nor its provenance, so with
  // malloc no reduction into a heap buffer (row max, row sums, block sums)
  // is promoted to a register, and none vectorizes.
  FinalizeMemRefToLLVMConversionPassOptions memrefToLLVM;
  memrefToLLVM.useAlignedAlloc = true;
  pm.addPass(createFinalizeMemRefToLLVMConversionPass(memrefToLLVM));
  pm.addPass(createConvertMathToLLVMPass());
  pm.addPass(createArithToLLVMConversionPass());
  pm.addPass(createConvertIndexToLLVMPass());
  pm.addPass(createConvertFuncToLLVMPass());
  pm.addPass(createConvertControlFlowToLLVMPass());
  pm.addPass(createReconcileUnrealizedCastsPass());
}

/// MLIR 22's gpu-lower-to-nvvm-pipeline (buildLowerToNVVMPassPipeline) with
/// its gpu-module-to-binary replaced by unisparse-gpu-module-to-binary (the
/// same options; the modules serialized in parallel): the passes and options
/// of `mlir-opt --pass-pipeline='builtin.module(gpu-lower-to-nvvm-pipeline{
/// cubin-chip=... cubin-features=... cubin-format=... opt-level=...})'
/// --dump-pass-pipeline`, in its order (test/Pipelines/nvvm-pipeline.mlir
/// checks the two dumps against each other).
static void addLowerToNVVMPipeline(OpPassManager &pm,
                                   const gpu::GPUToNVVMPipelineOptions &o) {
  // The common part: NVGPU, outlining, vector/scf/func to LLVM, the target.
  pm.addPass(createConvertNVGPUToNVVMPass());
  pm.addPass(createGpuKernelOutliningPass());
  pm.addPass(createConvertVectorToSCFPass());
  pm.addPass(createSCFToControlFlowPass());
  pm.addPass(createConvertNVVMToLLVMPass());
  pm.addPass(createConvertFuncToLLVMPass());
  pm.addPass(memref::createExpandStridedMetadataPass());
  GpuNVVMAttachTargetOptions target;
  target.triple = o.cubinTriple;
  target.chip = o.cubinChip;
  target.features = o.cubinFeatures;
  target.optLevel = o.optLevel;
  target.cmdOptions = o.cmdOptions;
  pm.addPass(createGpuNVVMAttachTarget(target));
  pm.addPass(createLowerAffinePass());
  pm.addPass(createArithToLLVMConversionPass());
  ConvertIndexToLLVMPassOptions index;
  index.indexBitwidth = o.indexBitWidth;
  pm.addPass(createConvertIndexToLLVMPass(index));
  pm.addPass(createCanonicalizerPass());
  pm.addPass(createCSEPass());
  // The kernels: GPU to NVVM, each step nested on the gpu.modules.
  ConvertGpuOpsToNVVMOpsOptions kernels;
  kernels.useBarePtrCallConv = o.kernelUseBarePtrCallConv;
  kernels.indexBitwidth = o.indexBitWidth;
  kernels.allowPatternRollback = o.allowPatternRollback;
  pm.addNestedPass<gpu::GPUModuleOp>(createConvertGpuOpsToNVVMOps(kernels));
  pm.addNestedPass<gpu::GPUModuleOp>(createCanonicalizerPass());
  pm.addNestedPass<gpu::GPUModuleOp>(createCSEPass());
  pm.addNestedPass<gpu::GPUModuleOp>(createReconcileUnrealizedCastsPass());
  // The host: launches to runtime calls, the modules to binaries.
  GpuToLLVMConversionPassOptions host;
  host.hostBarePtrCallConv = o.hostUseBarePtrCallConv;
  host.kernelBarePtrCallConv = o.kernelUseBarePtrCallConv;
  pm.addPass(createGpuToLLVMConversionPass(host));
  UnisparseGpuModuleToBinaryOptions binary;
  binary.compilationTarget = o.cubinFormat;
  pm.addPass(createUnisparseGpuModuleToBinary(binary));
  pm.addPass(createConvertMathToLLVMPass());
  pm.addPass(createCanonicalizerPass());
  pm.addPass(createCSEPass());
  pm.addPass(createReconcileUnrealizedCastsPass());
}

void mlir::unisparse::buildUnisparseToNVPTXPipeline(
    OpPassManager &pm, const UnisparseToNVPTXPipelineOptions &options) {
  // As for the CPU, but scoring and selection become built GPU kernels and
  // attention calls the runtime's CUDA kernel.
  GpuEstimationOptions estimation{
      options.scorePrecision,      options.scoreWarps,
      options.scoreWarpRows,       options.scoreKeyTile,
      options.scoreOutlierKeyTile, options.refineKernels};
  addTensorAndBufferPasses(pm, options.decompose, "cuda",
                           /*deallocate=*/true, /*tile=*/false, &estimation);
  ConvertUnisparseToGPUPassOptions gpu;
  gpu.warps = options.scoreWarps;
  gpu.warpRows = options.scoreWarpRows;
  gpu.keyTile = options.scoreKeyTile;
  gpu.outlierKeyTile = options.scoreOutlierKeyTile;
  gpu.outlierExp2Poly = options.scoreOutlierExp2Poly;
  gpu.outlierTileFactors = options.scoreOutlierTileFactors;
  gpu.outlierUnrollSlots = options.scoreOutlierUnrollSlots;
  gpu.outlierWgmma = outlierWgmmaFor(options.scoreOutlierWgmma, options.chip);
  gpu.ctas = options.scoreCtas;
  gpu.minCtasPerSm = options.scoreMinCtasPerSm;
  gpu.epilogue = options.scoreEpilogue;
  gpu.scratchBytes = options.scoreScratchBytes;
  gpu.partials = options.scorePartials;
  gpu.fuseQueryPooling = options.scoreFuseQueryPooling;
  // LLVM 22's NVPTX back end selects prefetch.global.L2 from sm_90 on.
  std::string chipName = options.chip;
  StringRef chip(chipName);
  unsigned sm = 0;
  gpu.prefetchQueries =
      options.scorePrefetchQueries && chip.consume_front("sm_") &&
      !chip.take_while(llvm::isDigit).getAsInteger(10, sm) && sm >= 90;
  pm.addPass(createConvertUnisparseToGPUPass(gpu));
  // Host copies through strided views (bufferized insert_slices) as kernels:
  // gpu.memcpy would copy them flat, to the wrong elements.
  pm.addPass(createUnisparseGpuCopyKernels());

  // Estimation loops -> parallel loops -> blocks x threads -> gpu.launch.
  pm.addPass(createConvertLinalgToParallelLoopsPass());
  pm.addPass(createForallToParallelLoopPass());
  pm.addPass(createCanonicalizerPass());
  UnisparseGpuMapLoopsOptions map;
  map.threads = options.threads;
  pm.addPass(createUnisparseGpuMapLoops(map));
  pm.addPass(createConvertParallelLoopToGpuPass());
  pm.addPass(createLowerAffinePass());
  pm.addPass(createCanonicalizerPass());
  pm.addPass(createUnisparseGpuHostBuffers());
  // The canonicalizer hoists the kernels' constants out of the launch bodies
  // (to the function's entry block); outlining would pass each one as a
  // kernel parameter, and ptxas could then neither fold the constant offsets
  // into the instructions nor turn divisions by them into multiplies.
  pm.addPass(createGpuLaunchSinkIndexComputationsPass());
  pm.addPass(createGpuKernelOutliningPass());
  pm.addPass(createUnisparseGpuKernelAttributes());
  pm.addPass(createUnisparseGpuExternSharedMemory());
  // The entry points each hold the estimation: one module per kernel, not
  // one per entry point (ptxas time, library size, module loads).
  pm.addPass(createUnisparseGpuDedupModules());
  pm.addNestedPass<func::FuncOp>(createGpuAsyncRegionPass());

  // NVVM, the cubin, and the host side (mgpu* calls): MLIR's
  // gpu-lower-to-nvvm-pipeline with the modules serialized in parallel.
  gpu::GPUToNVVMPipelineOptions nvvm;
  nvvm.cubinChip = options.chip;
  nvvm.cubinFeatures = options.features;
  nvvm.cubinFormat = options.format;
  nvvm.optLevel = options.optLevel;
  addLowerToNVVMPipeline(pm, nvvm);
}

void mlir::unisparse::registerUnisparsePipelines() {
  PassPipelineRegistration<UnisparseToNVPTXPipelineOptions>(
      "unisparse-to-nvptx",
      "Lower unisparse ops to GPU kernels in an sm_90a cubin plus host LLVM; "
      "attention runs in the runtime's CUDA kernel",
      buildUnisparseToNVPTXPipeline);
  PassPipelineRegistration<UnisparseToCPUPipelineOptions>(
      "unisparse-to-cpu",
      "Lower unisparse ops on tensors to the LLVM dialect for the host; "
      "attention runs in the runtime's CPU kernel",
      buildUnisparseToCPUPipeline);
}

void mlir::unisparse::registerUnisparseDependencies(DialectRegistry &registry) {
  registry.insert<UnisparseDialect, affine::AffineDialect, arith::ArithDialect,
                  gpu::GPUDialect, NVVM::NVVMDialect, nvgpu::NVGPUDialect,
                  vector::VectorDialect, index::IndexDialect, ub::UBDialect,
                  bufferization::BufferizationDialect, cf::ControlFlowDialect,
                  func::FuncDialect, linalg::LinalgDialect, LLVM::LLVMDialect,
                  math::MathDialect, memref::MemRefDialect, scf::SCFDialect,
                  tensor::TensorDialect>();
  unisparse::registerBufferizableOpInterfaceExternalModels(registry);
  unisparse::registerTilingInterfaceExternalModels(registry);
  unisparse::registerAggregatedOpInterfaceExternalModels(registry);
  arith::registerBufferizableOpInterfaceExternalModels(registry);
  arith::registerBufferDeallocationOpInterfaceExternalModels(registry);
  bufferization::func_ext::registerBufferizableOpInterfaceExternalModels(
      registry);
  cf::registerBufferDeallocationOpInterfaceExternalModels(registry);
  linalg::registerBufferizableOpInterfaceExternalModels(registry);
  memref::registerAllocationOpInterfaceExternalModels(registry);
  scf::registerBufferizableOpInterfaceExternalModels(registry);
  scf::registerBufferDeallocationOpInterfaceExternalModels(registry);
  tensor::registerBufferizableOpInterfaceExternalModels(registry);
  // convert-gpu-to-nvvm and friends lower the ops inside kernels through the
  // dialects' ConvertToLLVM interfaces.
  arith::registerConvertArithToLLVMInterface(registry);
  cf::registerConvertControlFlowToLLVMInterface(registry);
  registerConvertFuncToLLVMInterface(registry);
  index::registerConvertIndexToLLVMInterface(registry);
  registerConvertMathToLLVMInterface(registry);
  registerConvertMemRefToLLVMInterface(registry);
  registerConvertNVVMToLLVMInterface(registry);
  ub::registerConvertUBToLLVMInterface(registry);
  vector::registerConvertVectorToLLVMInterface(registry);
  gpu::registerConvertGpuToLLVMInterface(registry);
  // gpu-module-to-binary: the NVVM target and the LLVM IR translations.
  NVVM::registerNVVMTargetInterfaceExternalModels(registry);
  registerBuiltinDialectTranslation(registry);
  registerLLVMDialectTranslation(registry);
  registerNVVMDialectTranslation(registry);
  registerGPUDialectTranslation(registry);
  gpu::registerOffloadingLLVMTranslationInterfaceExternalModels(registry);
}
