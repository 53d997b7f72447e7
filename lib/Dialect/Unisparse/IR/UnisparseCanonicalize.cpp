//===- UnisparseCanonicalize.cpp - canonicalization patterns --------------===//

#include "unisparse/Dialect/Unisparse/IR/UnisparseOps.h"

#include "mlir/IR/PatternMatch.h"

using namespace mlir;
using namespace mlir::unisparse;

namespace {
/// A selection that keeps every visible block does not need scores:
/// `block_select` with tau = 1, or with `min_blocks` at least the (static)
/// number of key blocks (min_blocks <= max_blocks, so no cap can bind), is
/// `dense_layout`. The score computation feeding it
/// becomes dead and is erased with it.
struct SelectAllToDenseLayout : OpRewritePattern<BlockSelectOp> {
  using OpRewritePattern::OpRewritePattern;

  LogicalResult matchAndRewrite(BlockSelectOp op,
                                PatternRewriter &rewriter) const override {
    int64_t numKeyBlocks =
        cast<ShapedType>(op.getScores().getType()).getDimSize(3);
    bool keepsAll = op.getTau().convertToDouble() >= 1.0 ||
                    (!ShapedType::isDynamic(numKeyBlocks) &&
                     static_cast<int64_t>(op.getMinBlocks()) >= numKeyBlocks);
    if (!keepsAll)
      return rewriter.notifyMatchFailure(op, "selection is not dense");
    rewriter.replaceOpWithNewOp<DenseLayoutOp>(
        op, op.getCounts().getType(), op.getIndices().getType(),
        op.getCountsInit(), op.getIndicesInit(), op.getCausalAttr());
    return success();
  }
};
} // namespace

void BlockSelectOp::getCanonicalizationPatterns(RewritePatternSet &results,
                                                MLIRContext *context) {
  results.add<SelectAllToDenseLayout>(context);
}
