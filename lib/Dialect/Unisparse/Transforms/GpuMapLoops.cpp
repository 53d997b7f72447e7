//===- GpuMapLoops.cpp - tile and map parallel loops for the GPU ----------===//

#include "unisparse/Dialect/Unisparse/Transforms/Passes.h"

#include "mlir/Dialect/GPU/IR/GPUDialect.h"
#include "mlir/Dialect/GPU/Transforms/ParallelLoopMapper.h"
#include "mlir/Dialect/SCF/IR/SCF.h"
#include "mlir/Dialect/SCF/Transforms/Transforms.h"
#include "mlir/Dialect/SCF/Utils/Utils.h"
#include "mlir/IR/Builders.h"
#include "mlir/IR/PatternMatch.h"

namespace mlir::unisparse {
#define GEN_PASS_DEF_UNISPARSEGPUMAPLOOPS
#include "unisparse/Dialect/Unisparse/Transforms/Passes.h.inc"
} // namespace mlir::unisparse

using namespace mlir;

namespace {
/// Maps the one dimension of `loop` to `processor`.
void setMapping(scf::ParallelOp loop, gpu::Processor processor) {
  OpBuilder b(loop);
  AffineMap id = b.getDimIdentityMap();
  (void)gpu::setMappingAttr(
      loop, {b.getAttr<gpu::ParallelLoopDimMappingAttr>(processor, id, id)});
}

struct UnisparseGpuMapLoopsPass
    : unisparse::impl::UnisparseGpuMapLoopsBase<UnisparseGpuMapLoopsPass> {
  using Base::Base;

  void runOnOperation() override {
    if (threads <= 0) {
      getOperation()->emitError()
          << "threads must be positive, got " << threads;
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
      setMapping(single, gpu::Processor::ThreadX);
      // All grid dimensions become one linearized blockIdx.x (limit 2^31 - 1)
      // rather than x/y/z: blockIdx.y and .z stop at 65535, which a composite
      // count T = ceil(N / c) passes at N = 65535 * c (half a million tokens
      // at c = 8). The launch checks the product against the device limit.
      if (n > 1) {
        IRRewriter rewriter(outer);
        std::vector<unsigned> all(n);
        for (unsigned i = 0; i < n; ++i)
          all[i] = i;
        collapseParallelLoops(rewriter, outer, {all});
        outer = single->getParentOfType<scf::ParallelOp>();
      }
      setMapping(outer, gpu::Processor::BlockX);
    }
  }
};
} // namespace
