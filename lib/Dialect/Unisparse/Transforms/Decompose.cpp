//===- Decompose.cpp - unisparse.attention -> stages ----------------------===//

#include "unisparse/Dialect/Unisparse/IR/ShapeRules.h"
#include "unisparse/Dialect/Unisparse/IR/UnisparseOps.h"
#include "unisparse/Dialect/Unisparse/Transforms/Passes.h"

#include "mlir/Dialect/Affine/IR/AffineOps.h"
#include "mlir/Dialect/Tensor/IR/Tensor.h"
#include "mlir/Dialect/Utils/StaticValueUtils.h"
#include "mlir/IR/PatternMatch.h"
#include "mlir/Transforms/GreedyPatternRewriteDriver.h"

namespace mlir::unisparse {
#define GEN_PASS_DEF_UNISPARSEDECOMPOSE
#include "unisparse/Dialect/Unisparse/Transforms/Passes.h.inc"
} // namespace mlir::unisparse

using namespace mlir;
using namespace mlir::unisparse;

namespace {
/// ceil(size / factor) as an OpFoldResult (folded when static).
OpFoldResult ceilDiv(OpBuilder &b, Location loc, OpFoldResult size,
                     int64_t factor) {
  AffineExpr s0 = getAffineSymbolExpr(0, b.getContext());
  return affine::makeComposedFoldedAffineApply(b, loc, s0.ceilDiv(factor),
                                               {size});
}

/// A `tensor.empty` of the given mixed sizes.
Value emptyTensor(OpBuilder &b, Location loc, ArrayRef<OpFoldResult> sizes,
                  Type elementType) {
  return tensor::EmptyOp::create(b, loc, sizes, elementType);
}

struct DecomposeAttention : OpRewritePattern<AttentionOp> {
  using OpRewritePattern::OpRewritePattern;

  LogicalResult matchAndRewrite(AttentionOp op,
                                PatternRewriter &rewriter) const override {
    auto qType = cast<RankedTensorType>(op.getQ().getType());
    auto kType = cast<RankedTensorType>(op.getK().getType());
    int64_t hq = qType.getDimSize(1), hkv = kType.getDimSize(1);
    if (ShapedType::isDynamic(hq) || ShapedType::isDynamic(hkv))
      return rewriter.notifyMatchFailure(
          op, "decomposition needs static head counts (kv_group is an "
              "attribute)");
    ConfigAttr cfg = op.getConfig();
    Location loc = op.getLoc();
    Type f32 = rewriter.getF32Type(), i32 = rewriter.getI32Type();
    int64_t ch = cfg.getCH(), groups = hq / ch;

    OpFoldResult batch = tensor::getMixedSize(rewriter, loc, op.getQ(), 0);
    OpFoldResult seq = tensor::getMixedSize(rewriter, loc, op.getQ(), 2);
    OpFoldResult headDim = tensor::getMixedSize(rewriter, loc, op.getQ(), 3);
    OpFoldResult groupsOfr = rewriter.getIndexAttr(groups);
    OpFoldResult numBlocks = ceilDiv(rewriter, loc, seq, cfg.getBlock());

    auto scaleAttr = rewriter.getF64FloatAttr(cfg.getScaleValue());
    bool dense = cfg.getTauValue() >= 1.0;
    if (std::optional<int64_t> nb = getConstantIntValue(numBlocks))
      dense |= static_cast<int64_t>(cfg.getMinBlocks()) >= *nb;

    // Layout outputs.
    Value countsInit =
        emptyTensor(rewriter, loc, {batch, groupsOfr, numBlocks}, i32);
    Value indicesInit = emptyTensor(
        rewriter, loc, {batch, groupsOfr, numBlocks, numBlocks}, i32);
    Value counts, indices;
    if (dense) {
      auto layout = DenseLayoutOp::create(
          rewriter, loc, countsInit.getType(), indicesInit.getType(),
          countsInit, indicesInit, rewriter.getBoolAttr(cfg.getCausal()));
      counts = layout.getCounts();
      indices = layout.getIndices();
    } else {
      // Composite tokens of the queries and of the keys (brought to the query
      // heads by repeating each kv head Hq / Hkv times): means, or for the
      // antidiagonal estimators the tokens side by side, queries reversed.
      MLIRContext *ctx = rewriter.getContext();
      bool anti = isAntidiagonal(cfg.getEstimator());
      auto composites = [&](int64_t factor) {
        SmallVector<OpFoldResult> sizes = {batch, groupsOfr,
                                           ceilDiv(rewriter, loc, seq, factor)};
        if (anti)
          sizes.push_back(rewriter.getIndexAttr(factor));
        sizes.push_back(headDim);
        return emptyTensor(rewriter, loc, sizes, f32);
      };
      Value qcInit = composites(cfg.getCQ());
      Value kcInit = composites(cfg.getCK());
      auto qc = CompressOp::create(
          rewriter, loc, qcInit.getType(), op.getQ(), qcInit,
          rewriter.getI64IntegerAttr(cfg.getCQ()),
          rewriter.getI64IntegerAttr(ch), rewriter.getI64IntegerAttr(1),
          PoolingAttr::get(ctx,
                           anti ? Pooling::concat_reversed : Pooling::mean));
      auto kc = CompressOp::create(
          rewriter, loc, kcInit.getType(), op.getK(), kcInit,
          rewriter.getI64IntegerAttr(cfg.getCK()),
          rewriter.getI64IntegerAttr(ch), rewriter.getI64IntegerAttr(hq / hkv),
          PoolingAttr::get(ctx, anti ? Pooling::concat : Pooling::mean));
      Value scoresInit = emptyTensor(
          rewriter, loc, {batch, groupsOfr, numBlocks, numBlocks}, f32);
      auto scores = BlockScoreOp::create(
          rewriter, loc, scoresInit.getType(), qc.getResult(), kc.getResult(),
          scoresInit, /*query_offset=*/Value(),
          rewriter.getI64IntegerAttr(cfg.getBlock()),
          rewriter.getI64IntegerAttr(cfg.getCQ()),
          rewriter.getI64IntegerAttr(cfg.getCK()),
          rewriter.getBoolAttr(cfg.getCausal()), scaleAttr,
          EstimatorAttr::get(ctx, cfg.getEstimator()),
          QueryReduceAttr::get(ctx, cfg.getQueryReduce()));
      auto select = BlockSelectOp::create(
          rewriter, loc, countsInit.getType(), indicesInit.getType(),
          scores.getResult(), countsInit, indicesInit,
          rewriter.getF64FloatAttr(cfg.getTauValue()),
          rewriter.getI64IntegerAttr(cfg.getLocalBlocks()),
          rewriter.getBoolAttr(cfg.getSink()),
          rewriter.getI64IntegerAttr(cfg.getMinBlocks()),
          rewriter.getI64IntegerAttr(cfg.getMaxBlocks()),
          rewriter.getBoolAttr(cfg.getCausal()));
      counts = select.getCounts();
      indices = select.getIndices();
    }

    auto attention = BlockSparseAttentionOp::create(
        rewriter, loc, TypeRange{op.getO().getType(), op.getLse().getType()},
        op.getQ(), op.getK(), op.getV(), counts, indices, op.getOInit(),
        op.getLseInit(), rewriter.getI64IntegerAttr(cfg.getBlock()),
        rewriter.getBoolAttr(cfg.getCausal()), scaleAttr);
    rewriter.replaceOp(op, attention.getResults());
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
