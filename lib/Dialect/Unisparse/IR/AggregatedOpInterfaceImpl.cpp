//===- AggregatedOpInterfaceImpl.cpp - unisparse.attention -> stages ------===//

#include "unisparse/Dialect/Unisparse/IR/ShapeRules.h"
#include "unisparse/Dialect/Unisparse/IR/Stages.h"
#include "unisparse/Dialect/Unisparse/IR/UnisparseOps.h"

#include "mlir/Dialect/Linalg/IR/Linalg.h"
#include "mlir/Dialect/Tensor/IR/Tensor.h"
#include "mlir/Dialect/Utils/StaticValueUtils.h"

using namespace mlir;
using namespace mlir::unisparse;

namespace {
Value emptyTensor(OpBuilder &b, Location loc, ArrayRef<OpFoldResult> sizes,
                  Type elementType) {
  return tensor::EmptyOp::create(b, loc, sizes, elementType);
}

/// Static dim `i` of `v`, or failure.
FailureOr<int64_t> staticDim(Value v, unsigned i) {
  int64_t size = cast<ShapedType>(v.getType()).getDimSize(i);
  if (ShapedType::isDynamic(size))
    return failure();
  return size;
}
} // namespace

FailureOr<AttentionShape> mlir::unisparse::getAttentionShape(OpBuilder &b,
                                                             Location loc,
                                                             Value q, Value k) {
  FailureOr<int64_t> hq = staticDim(q, 1), hkv = staticDim(k, 1);
  if (failed(hq) || failed(hkv))
    return failure();
  return AttentionShape{tensor::getMixedSize(b, loc, q, 0),
                        tensor::getMixedSize(b, loc, q, 2),
                        tensor::getMixedSize(b, loc, q, 3), *hq, *hkv};
}

EstimationValues mlir::unisparse::buildEstimation(
    OpBuilder &b, Location loc, ConfigAttr cfg, const AttentionShape &shape,
    Value q, Value k, Value scoresInit, Value countsInit, Value indicesInit) {
  Type f32 = b.getF32Type();
  int64_t ch = cfg.getCH();
  OpFoldResult batch = shape.batch, seq = shape.seq, headDim = shape.headDim;
  OpFoldResult groups = b.getIndexAttr(shape.heads / ch);

  // Composite tokens of the queries and of the keys (brought to the query
  // heads by repeating each kv head Hq / Hkv times), as the estimator reads
  // them (CompositeParams, shared with the size rules): means; for the
  // antidiagonal estimators the tokens side by side, queries reversed; for
  // the outlier estimator the outlier composites (queries with their
  // spread, keys with one hot token, found with the queries).
  MLIRContext *ctx = b.getContext();
  EstimationParams params = EstimationParams::of(cfg);
  auto compress = [&](Value x, const CompositeParams &c, int64_t kvGroup,
                      int64_t headFactor, int64_t heads) {
    SmallVector<OpFoldResult> sizes = {batch, b.getIndexAttr(heads),
                                       numCompositesOfr(b, loc, seq, c.factor)};
    if (c.pooling == Pooling::concat || c.pooling == Pooling::concat_reversed)
      sizes.push_back(b.getIndexAttr(c.factor));
    if (c.pooling == Pooling::outlier)
      sizes.push_back(b.getIndexAttr(outlierSlots(c.outliers, c.spread)));
    sizes.push_back(headDim);
    Value init = emptyTensor(b, loc, sizes, f32);
    return CompressOp::create(
               b, loc, init.getType(), x, c.hot > 0 ? q : Value(), init,
               b.getI64IntegerAttr(c.factor), b.getI64IntegerAttr(headFactor),
               b.getI64IntegerAttr(kvGroup), PoolingAttr::get(ctx, c.pooling),
               b.getI64IntegerAttr(c.outliers), b.getI64IntegerAttr(c.hot),
               b.getBoolAttr(c.spread))
        .getResult();
  };
  Value qc =
      compress(q, CompositeParams::queriesOf(params), 1, ch, shape.heads / ch);
  // Key composites: one set per head group, each kv head brought to the
  // query heads (repeated Hq / Hkv times) and pooled over the group's
  // heads; or, where the head groups of a kv head would all get the same
  // composites, one set per kv head that they share (block_score kv_group).
  int64_t share = sharedKeyGroups(params, shape.heads, shape.kvHeads);
  Value kc =
      share > 1
          ? compress(k, CompositeParams::keysOf(params), 1, 1, shape.kvHeads)
          : compress(k, CompositeParams::keysOf(params),
                     shape.heads / shape.kvHeads, ch, shape.heads / ch);
  if (!scoresInit) {
    OpFoldResult blocks = numBlocksOfr(b, loc, seq, cfg.getBlock());
    scoresInit = emptyTensor(b, loc, {batch, groups, blocks, blocks}, f32);
  }
  auto scores = BlockScoreOp::create(
      b, loc, scoresInit.getType(), qc, kc, scoresInit,
      /*query_offset=*/Value(), b.getI64IntegerAttr(cfg.getBlock()),
      b.getI64IntegerAttr(cfg.getCQ()), b.getI64IntegerAttr(cfg.getCK()),
      b.getBoolAttr(cfg.getCausal()), b.getF64FloatAttr(cfg.getScaleValue()),
      EstimatorAttr::get(ctx, cfg.getEstimator()),
      QueryReduceAttr::get(ctx, cfg.getQueryReduce()),
      b.getI64IntegerAttr(share));
  // The second level: the first pass's scores refined from exact logits of
  // the last queries and the probe rows (the selection reads these).
  Value selected = scores.getResult();
  if (cfg.getRefine() == Refine::slash) {
    Value refinedInit =
        emptyTensor(b, loc, tensor::getMixedSizes(b, loc, selected), f32);
    selected = SlashRefineOp::create(b, loc, TypeRange{selected.getType()}, q,
                                     k, selected, refinedInit,
                                     b.getI64IntegerAttr(cfg.getBlock()),
                                     b.getI64IntegerAttr(cfg.getLastQ()),
                                     b.getI64IntegerAttr(cfg.getNOffsets()),
                                     b.getI64IntegerAttr(cfg.getRowsPerBlock()),
                                     b.getI64IntegerAttr(cfg.getWidth()),
                                     b.getI64IntegerAttr(cfg.getLocalBlocks()),
                                     b.getBoolAttr(cfg.getSink()),
                                     b.getF64FloatAttr(cfg.getScaleValue()),
                                     b.getBoolAttr(cfg.getRefineNorm()))
                   .getResult();
  }
  auto select = BlockSelectOp::create(
      b, loc, TypeRange{countsInit.getType(), indicesInit.getType()}, selected,
      countsInit, indicesInit, b.getF64FloatAttr(cfg.getTauValue()),
      b.getI64IntegerAttr(cfg.getLocalBlocks()), b.getBoolAttr(cfg.getSink()),
      b.getI64IntegerAttr(cfg.getMinBlocks()),
      b.getI64IntegerAttr(cfg.getMaxBlocks()), b.getBoolAttr(cfg.getCausal()));
  return EstimationValues{selected, select.getCounts(), select.getIndices()};
}

EstimationValues mlir::unisparse::buildLayout(OpBuilder &b, Location loc,
                                              ConfigAttr cfg,
                                              const AttentionShape &shape,
                                              OpFoldResult blocks, Value q,
                                              Value k, Value countsInit,
                                              Value indicesInit) {
  std::optional<int64_t> staticBlocks = getConstantIntValue(blocks);
  if (keepsEveryBlock(cfg.getTauValue(), cfg.getMinBlocks(),
                      staticBlocks ? *staticBlocks : ShapedType::kDynamic)) {
    auto layout = DenseLayoutOp::create(
        b, loc, countsInit.getType(), indicesInit.getType(), countsInit,
        indicesInit, b.getBoolAttr(cfg.getCausal()));
    return EstimationValues{Value(), layout.getCounts(), layout.getIndices()};
  }
  OpFoldResult groups = b.getIndexAttr(shape.heads / cfg.getCH());
  Value scoresInit = emptyTensor(b, loc, {shape.batch, groups, blocks, blocks},
                                 b.getF32Type());
  return buildEstimation(b, loc, cfg, shape, q, k, scoresInit, countsInit,
                         indicesInit);
}

SmallVector<Value, 2> mlir::unisparse::buildBlockSparseAttention(
    OpBuilder &b, Location loc, ConfigAttr cfg, Value q, Value k, Value v,
    Value counts, Value indices, Value oInit, Value lseInit) {
  auto attention = BlockSparseAttentionOp::create(
      b, loc, TypeRange{oInit.getType(), lseInit.getType()}, q, k, v, counts,
      indices, oInit, lseInit, b.getI64IntegerAttr(cfg.getBlock()),
      b.getBoolAttr(cfg.getCausal()), b.getF64FloatAttr(cfg.getScaleValue()));
  return SmallVector<Value, 2>(attention.getResults());
}

namespace {
struct AttentionDecomposition
    : linalg::AggregatedOpInterface::ExternalModel<AttentionDecomposition,
                                                   AttentionOp> {
  FailureOr<SmallVector<Value>> decomposeOperation(Operation *operation,
                                                   OpBuilder &b) const {
    auto op = cast<AttentionOp>(operation);
    ConfigAttr cfg = op.getConfig();
    Location loc = op.getLoc();
    FailureOr<AttentionShape> shape =
        getAttentionShape(b, loc, op.getQ(), op.getK());
    if (failed(shape))
      return failure();
    Type i32 = b.getI32Type();
    OpFoldResult groups = b.getIndexAttr(shape->heads / cfg.getCH());
    OpFoldResult blocks = numBlocksOfr(b, loc, shape->seq, cfg.getBlock());
    OpFoldResult batch = shape->batch;
    Value countsInit = emptyTensor(b, loc, {batch, groups, blocks}, i32);
    Value indicesInit =
        emptyTensor(b, loc, {batch, groups, blocks, blocks}, i32);
    EstimationValues layout =
        buildLayout(b, loc, cfg, *shape, blocks, op.getQ(), op.getK(),
                    countsInit, indicesInit);
    return SmallVector<Value>(buildBlockSparseAttention(
        b, loc, cfg, op.getQ(), op.getK(), op.getV(), layout.counts,
        layout.indices, op.getOInit(), op.getLseInit()));
  }
};
} // namespace

void mlir::unisparse::registerAggregatedOpInterfaceExternalModels(
    DialectRegistry &registry) {
  registry.addExtension(+[](MLIRContext *ctx, UnisparseDialect *) {
    AttentionOp::attachInterface<AttentionDecomposition>(*ctx);
  });
}
