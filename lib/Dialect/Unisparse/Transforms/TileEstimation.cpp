//===- TileEstimation.cpp - tile block_score by query blocks --------------===//

#include "unisparse/Dialect/Unisparse/IR/UnisparseOps.h"
#include "unisparse/Dialect/Unisparse/Transforms/Passes.h"

#include "mlir/Dialect/SCF/Transforms/TileUsingInterface.h"
#include "mlir/Interfaces/TilingInterface.h"

namespace mlir::unisparse {
#define GEN_PASS_DEF_UNISPARSETILEESTIMATION
#include "unisparse/Dialect/Unisparse/Transforms/Passes.h.inc"
} // namespace mlir::unisparse

using namespace mlir;
using namespace mlir::unisparse;

namespace {
struct UnisparseTileEstimationPass
    : unisparse::impl::UnisparseTileEstimationBase<
          UnisparseTileEstimationPass> {
  using Base::Base;

  void runOnOperation() override {
    if (queryBlocks <= 0) {
      getOperation()->emitError()
          << "query-blocks must be positive, got " << queryBlocks;
      return signalPassFailure();
    }
    SmallVector<BlockScoreOp> work;
    getOperation()->walk([&](BlockScoreOp op) {
      // An op that is already a tile (it has a query offset) stays.
      if (!op.getQueryOffset() && op.hasPureTensorSemantics())
        work.push_back(op);
    });
    IRRewriter rewriter(&getContext());
    for (BlockScoreOp op : work)
      if (failed(tileToForall(rewriter,
                              cast<TilingInterface>(op.getOperation()),
                              {1, 1, queryBlocks})))
        return signalPassFailure();
  }
};
} // namespace

LogicalResult mlir::unisparse::tileToForall(RewriterBase &rewriter,
                                            TilingInterface op,
                                            ArrayRef<int64_t> tileSizes) {
  OpBuilder::InsertionGuard guard(rewriter);
  rewriter.setInsertionPoint(op);
  scf::SCFTilingOptions options;
  options.setLoopType(scf::SCFTilingOptions::LoopType::ForallOp);
  options.setTileSizes(
      llvm::map_to_vector(tileSizes, [&](int64_t s) -> OpFoldResult {
        return rewriter.getIndexAttr(s);
      }));
  FailureOr<scf::SCFTilingResult> tiled =
      scf::tileUsingSCF(rewriter, op, options);
  if (failed(tiled))
    return op->emitOpError("could not be tiled");
  rewriter.replaceOp(op, tiled->replacements);
  return success();
}
