//===- UnisparseCanonicalize.cpp - canonicalization patterns --------------===//

#include "unisparse/Dialect/Unisparse/IR/ShapeRules.h"
#include "unisparse/Dialect/Unisparse/IR/UnisparseOps.h"

#include "mlir/IR/PatternMatch.h"

using namespace mlir;
using namespace mlir::unisparse;

namespace {
/// A selection that keeps every visible block (keepsEveryBlock) does not
/// need scores: it is `dense_layout`. The score computation feeding it
/// becomes dead and is erased with it.
struct SelectAllToDenseLayout : OpRewritePattern<BlockSelectOp> {
  using OpRewritePattern::OpRewritePattern;

  LogicalResult matchAndRewrite(BlockSelectOp op,
                                PatternRewriter &rewriter) const override {
    if (!op.hasPureTensorSemantics())
      return rewriter.notifyMatchFailure(op, "buffer form");
    int64_t numKeyBlocks =
        cast<ShapedType>(op.getScores().getType()).getDimSize(3);
    if (!keepsEveryBlock(op.getTau().convertToDouble(), op.getMinBlocks(),
                         numKeyBlocks))
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
