//===- GpuHostBuffers.cpp - host-side buffers of GPU code in device memory ===//

#include "unisparse/Dialect/Unisparse/Transforms/Passes.h"

#include "mlir/Dialect/GPU/IR/GPUDialect.h"
#include "mlir/Dialect/LLVMIR/LLVMDialect.h"
#include "mlir/Dialect/Linalg/IR/Linalg.h"
#include "mlir/Dialect/MemRef/IR/MemRef.h"
#include "mlir/IR/PatternMatch.h"

namespace mlir::unisparse {
#define GEN_PASS_DEF_UNISPARSEGPUCOPYKERNELS
#define GEN_PASS_DEF_UNISPARSEGPUHOSTBUFFERS
#define GEN_PASS_DEF_UNISPARSEGPUEXTERNSHAREDMEMORY
#define GEN_PASS_DEF_UNISPARSEGPUKERNELATTRIBUTES
#include "unisparse/Dialect/Unisparse/Transforms/Passes.h.inc"
} // namespace mlir::unisparse

using namespace mlir;

namespace {
bool onHost(Operation *op) {
  return !op->getParentOfType<gpu::LaunchOp>() &&
         !op->getParentOfType<gpu::GPUModuleOp>();
}

/// Whether `gpu.memcpy` copies `copy` correctly: gpu-to-llvm lowers it to a
/// flat copy of the source's elements between the two aligned pointers
/// (offsets and strides ignored), right only between identity layouts.
bool flatCopyIsExact(memref::CopyOp copy) {
  auto identity = [](Value v) {
    auto type = dyn_cast<MemRefType>(v.getType());
    return type && type.getLayout().isIdentity();
  };
  return identity(copy.getSource()) && identity(copy.getTarget());
}

/// Whether both sides of `copy` are ranked (linalg.copy takes no unranked
/// memref; such a copy is left to unisparse-gpu-host-buffers to refuse).
bool isRanked(memref::CopyOp copy) {
  return isa<MemRefType>(copy.getSource().getType()) &&
         isa<MemRefType>(copy.getTarget().getType());
}

struct UnisparseGpuCopyKernelsPass
    : unisparse::impl::UnisparseGpuCopyKernelsBase<
          UnisparseGpuCopyKernelsPass> {
  void runOnOperation() override {
    SmallVector<memref::CopyOp> work;
    getOperation()->walk([&](memref::CopyOp copy) {
      if (onHost(copy) && isRanked(copy) && !flatCopyIsExact(copy))
        work.push_back(copy);
    });
    IRRewriter rewriter(&getContext());
    for (memref::CopyOp copy : work) {
      rewriter.setInsertionPoint(copy);
      linalg::CopyOp::create(rewriter, copy.getLoc(), copy.getSource(),
                             copy.getTarget());
      rewriter.eraseOp(copy);
    }
  }
};

struct UnisparseGpuHostBuffersPass
    : unisparse::impl::UnisparseGpuHostBuffersBase<
          UnisparseGpuHostBuffersPass> {
  void runOnOperation() override {
    SmallVector<Operation *> work;
    WalkResult strided = getOperation()->walk([&](Operation *op) {
      if (!isa<memref::AllocOp, memref::DeallocOp, memref::CopyOp>(op) ||
          !onHost(op))
        return WalkResult::advance();
      auto copy = dyn_cast<memref::CopyOp>(op);
      if (copy && !flatCopyIsExact(copy)) {
        copy.emitOpError()
            << "copies between " << copy.getSource().getType() << " and "
            << copy.getTarget().getType()
            << ": gpu.memcpy lowers to a flat copy that ignores offsets and "
               "strides; run unisparse-gpu-copy-kernels before the loops "
               "are mapped";
        return WalkResult::interrupt();
      }
      work.push_back(op);
      return WalkResult::advance();
    });
    if (strided.wasInterrupted())
      return signalPassFailure();
    IRRewriter rewriter(&getContext());
    for (Operation *op : work) {
      rewriter.setInsertionPoint(op);
      Location loc = op->getLoc();
      if (auto alloc = dyn_cast<memref::AllocOp>(op)) {
        auto gpuAlloc = gpu::AllocOp::create(
            rewriter, loc, alloc.getType(), /*asyncToken=*/Type(), ValueRange{},
            alloc.getDynamicSizes(), alloc.getSymbolOperands(),
            /*hostShared=*/false);
        rewriter.replaceOp(alloc, gpuAlloc.getMemref());
      } else if (auto dealloc = dyn_cast<memref::DeallocOp>(op)) {
        gpu::DeallocOp::create(rewriter, loc, TypeRange{}, ValueRange{},
                               dealloc.getMemref());
        rewriter.eraseOp(dealloc);
      } else if (auto copy = dyn_cast<memref::CopyOp>(op)) {
        gpu::MemcpyOp::create(rewriter, loc, TypeRange{}, ValueRange{},
                              copy.getTarget(), copy.getSource());
        rewriter.eraseOp(copy);
      }
    }
  }
};

/// The symbol gpu.dynamic_shared_memory then lowers to (see the pass): the
/// alignment convert-gpu-to-nvvm gives it, in NVVM's shared address space.
constexpr StringLiteral kDynamicSharedMemory = "__unisparse_dynamic_smem";
constexpr uint64_t kAlignment = 16;
constexpr unsigned kSharedAddressSpace = 3;

struct UnisparseGpuKernelAttributesPass
    : unisparse::impl::UnisparseGpuKernelAttributesBase<
          UnisparseGpuKernelAttributesPass> {
  void runOnOperation() override {
    ModuleOp module = getOperation();
    auto record = module->getAttrOfType<DictionaryAttr>(
        unisparse::kKernelAttributesAttrName);
    if (!record)
      return;
    module->removeAttr(unisparse::kKernelAttributesAttrName);
    llvm::StringMap<gpu::GPUFuncOp> kernels;
    module.walk([&](gpu::GPUFuncOp func) {
      if (func.isKernel())
        kernels[func.getName()] = func;
    });
    for (NamedAttribute entry : record) {
      auto attrs = dyn_cast<DictionaryAttr>(entry.getValue());
      auto it = kernels.find(entry.getName().getValue());
      if (!attrs || it == kernels.end()) {
        module.emitError() << "unisparse.kernel_attributes: no outlined "
                              "kernel named '"
                           << entry.getName().getValue()
                           << "' or its attributes are not a dictionary";
        return signalPassFailure();
      }
      for (NamedAttribute attr : attrs)
        it->second->setAttr(attr.getName(), attr.getValue());
    }
  }
};

struct UnisparseGpuExternSharedMemoryPass
    : unisparse::impl::UnisparseGpuExternSharedMemoryBase<
          UnisparseGpuExternSharedMemoryPass> {
  void runOnOperation() override {
    getOperation()->walk([&](gpu::GPUModuleOp module) {
      bool uses = false;
      module.walk([&](gpu::DynamicSharedMemoryOp) { uses = true; });
      if (!uses || SymbolTable::lookupSymbolIn(module, kDynamicSharedMemory))
        return;
      OpBuilder b = OpBuilder::atBlockBegin(module.getBody());
      LLVM::GlobalOp::create(
          b, module.getLoc(), LLVM::LLVMArrayType::get(b.getI8Type(), 0),
          /*isConstant=*/false, LLVM::Linkage::External, kDynamicSharedMemory,
          /*value=*/Attribute(), kAlignment, kSharedAddressSpace);
    });
  }
};
} // namespace
