//===- GpuMapLoops.cpp - tile and map parallel loops for the GPU ----------===//

#include "unisparse/Dialect/Unisparse/Transforms/Passes.h"

#include "mlir/Dialect/GPU/IR/GPUDialect.h"
#include "mlir/Dialect/GPU/Transforms/ParallelLoopMapper.h"
#include "mlir/Dialect/SCF/IR/SCF.h"
#include "mlir/Dialect/SCF/Transforms/Transforms.h"
#include "mlir/IR/Builders.h"

namespace mlir::unisparse {
#define GEN_PASS_DEF_UNISPARSEGPUMAPLOOPS
#include "unisparse/Dialect/Unisparse/Transforms/Passes.h.inc"
} // namespace mlir::unisparse

using namespace mlir;

namespace {
/// The GPU processor of dimension `dim` of a grid (outer loop) or of a block
/// (inner loop); dimensions past the third run sequentially.
gpu::Processor processorFor(unsigned dim, bool block) {
  static const gpu::Processor grid[] = {gpu::Processor::BlockX,
                                        gpu::Processor::BlockY,
                                        gpu::Processor::BlockZ};
  static const gpu::Processor threads[] = {gpu::Processor::ThreadX,
                                           gpu::Processor::ThreadY,
                                           gpu::Processor::ThreadZ};
  if (dim >= 3)
    return gpu::Processor::Sequential;
  return block ? grid[dim] : threads[dim];
}

void setMapping(scf::ParallelOp loop, bool grid) {
  OpBuilder b(loop);
  SmallVector<gpu::ParallelLoopDimMappingAttr> mapping;
  AffineMap id = b.getDimIdentityMap();
  for (unsigned i = 0, e = loop.getNumLoops(); i < e; ++i)
    mapping.push_back(b.getAttr<gpu::ParallelLoopDimMappingAttr>(
        processorFor(i, grid), id, id));
  (void)gpu::setMappingAttr(loop, mapping);
}

struct UnisparseGpuMapLoopsPass
    : unisparse::impl::UnisparseGpuMapLoopsBase<UnisparseGpuMapLoopsPass> {
  using Base::Base;

  void runOnOperation() override {
    if (threads <= 0) {
      getOperation()->emitError() << "threads must be positive, got " << threads;
      return signalPassFailure();
    }
    SmallVector<scf::ParallelOp> outermost;
    getOperation()->walk([&](scf::ParallelOp loop) {
      if (!loop->getParentOfType<scf::ParallelOp>() &&
          !loop->getParentOfType<gpu::LaunchOp>())
        outermost.push_back(loop);
    });
    for (scf::ParallelOp loop : outermost) {
      unsigned n = loop.getNumLoops();
      SmallVector<int64_t> tiles(n, 1);
      tiles.back() = threads;
      auto [outer, inner] =
          scf::tileParallelLoop(loop, tiles, /*noMinMaxBounds=*/true);
      // The inner loop keeps only its last (thread) dimension: the others
      // have one iteration. Collapse them so that threadIdx.x carries it.
      OpBuilder b(inner);
      Value zero = arith::ConstantIndexOp::create(b, inner.getLoc(), 0);
      for (unsigned i = 0; i + 1 < n; ++i)
        inner.getInductionVars()[i].replaceAllUsesWith(zero);
      auto single = scf::ParallelOp::create(
          b, inner.getLoc(), ValueRange{inner.getLowerBound().back()},
          ValueRange{inner.getUpperBound().back()},
          ValueRange{inner.getStep().back()}, ValueRange{});
      single.getBody()->getOperations().splice(
          single.getBody()->begin(), inner.getBody()->getOperations(),
          inner.getBody()->begin(), std::prev(inner.getBody()->end()));
      inner.getInductionVars().back().replaceAllUsesWith(
          single.getInductionVars()[0]);
      inner.erase();
      setMapping(outer, /*grid=*/true);
      setMapping(single, /*grid=*/false);
    }
  }
};
} // namespace
