//===- Decompose.cpp - unisparse.attention -> stages ----------------------===//

#include "unisparse/Dialect/Unisparse/IR/UnisparseOps.h"
#include "unisparse/Dialect/Unisparse/Transforms/Passes.h"

#include "mlir/Dialect/Linalg/IR/Linalg.h"
#include "mlir/IR/PatternMatch.h"
#include "mlir/Transforms/GreedyPatternRewriteDriver.h"

namespace mlir::unisparse {
#define GEN_PASS_DEF_UNISPARSEDECOMPOSE
#include "unisparse/Dialect/Unisparse/Transforms/Passes.h.inc"
} // namespace mlir::unisparse

using namespace mlir;
using namespace mlir::unisparse;

namespace {
/// unisparse.attention -> its stages, through its AggregatedOpInterface
/// (Stages.h builds them, the same builders as the AOT entry module).
struct DecomposeAttention : OpRewritePattern<AttentionOp> {
  using OpRewritePattern::OpRewritePattern;

  LogicalResult matchAndRewrite(AttentionOp op,
                                PatternRewriter &rewriter) const override {
    auto aggregated =
        dyn_cast<linalg::AggregatedOpInterface>(op.getOperation());
    if (!aggregated)
      return rewriter.notifyMatchFailure(
          op, "AggregatedOpInterface is not registered "
              "(registerAggregatedOpInterfaceExternalModels)");
    FailureOr<SmallVector<Value>> stages =
        aggregated.decomposeOperation(rewriter);
    if (failed(stages))
      return rewriter.notifyMatchFailure(
          op, "decomposition needs static head counts (kv_group is an "
              "attribute)");
    rewriter.replaceOp(op, *stages);
    return success();
  }
};

struct UnisparseDecomposePass
    : unisparse::impl::UnisparseDecomposeBase<UnisparseDecomposePass> {
  void runOnOperation() override {
    RewritePatternSet patterns(&getContext());
    populateDecomposeAttentionPatterns(patterns);
    if (failed(applyPatternsGreedily(getOperation(), std::move(patterns))))
      return signalPassFailure();
    // Anything left could not be decomposed: say so rather than leave it.
    WalkResult result = getOperation()->walk([](AttentionOp op) {
      op.emitOpError("could not be decomposed: head counts must be static");
      return WalkResult::interrupt();
    });
    if (result.wasInterrupted())
      signalPassFailure();
  }
};
} // namespace

void mlir::unisparse::populateDecomposeAttentionPatterns(
    RewritePatternSet &patterns) {
  patterns.add<DecomposeAttention>(patterns.getContext());
}
