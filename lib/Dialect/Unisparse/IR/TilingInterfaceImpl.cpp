//===- TilingInterfaceImpl.cpp - TilingInterface for unisparse ops --------===//
//
// Iteration domains (all loops parallel):
//   compress      (b, t, d) over the result [B, G, T, D]: a tile of
//                 composites [t0, t0 + ts) reads tokens
//                 [t0 * sf, min((t0 + ts) * sf, N)), so its last composite
//                 is partial exactly when the whole op's is. Heads stay
//                 whole (a head tile would have to align with kv groups).
//   block_score   (b, g, I) over the result [B, Hg, NBq, NBk]: a tile of query
//                 blocks [I0, I0 + Is) reads its query composites and, when
//                 causal, only the key composites its last block can see,
//                 [0, min(Tk, (off + I0 + Is) * rk)) (off: the op's own query
//                 offset in blocks). Its scores for the key blocks past those
//                 are 0 by definition (masked), so the tile is a fill of 0
//                 and a block_score with `query_offset` into its first
//                 columns. Softmax rows need every visible key, so neither
//                 the key blocks nor head_dim are loops. With kv_group,
//                 head groups tile by 1 (one key head) or by multiples of
//                 kv_group.
//   block_select, dense_layout
//                 (b, g): a row's selection depends on its query block index,
//                 so rows are not split.
//
//===----------------------------------------------------------------------===//

#include "unisparse/Dialect/Unisparse/IR/TilingInterfaceImpl.h"
#include "unisparse/Dialect/Unisparse/IR/ShapeRules.h"
#include "unisparse/Dialect/Unisparse/IR/UnisparseOps.h"

#include "mlir/Dialect/Affine/IR/AffineOps.h"
#include "mlir/Dialect/Arith/Utils/Utils.h"
#include "mlir/Dialect/Linalg/IR/Linalg.h"
#include "mlir/Dialect/Tensor/IR/Tensor.h"
#include "mlir/Dialect/Utils/StructuredOpsUtils.h"
#include "mlir/Interfaces/TilingInterface.h"

using namespace mlir;
using namespace mlir::unisparse;

namespace {
/// The ranges [0, size of dim d of `v`) for d in `dims`.
SmallVector<Range> domainOf(OpBuilder &b, Location loc, Value v,
                            ArrayRef<unsigned> dims) {
  SmallVector<Range> ranges;
  for (unsigned d : dims)
    ranges.push_back(Range{b.getIndexAttr(0),
                           tensor::getMixedSize(b, loc, v, d),
                           b.getIndexAttr(1)});
  return ranges;
}

/// extract_slice of `v` at `offsets` / `sizes`, unit strides.
Value slice(OpBuilder &b, Location loc, Value v, ArrayRef<OpFoldResult> offsets,
            ArrayRef<OpFoldResult> sizes, SmallVector<Operation *> &slices) {
  SmallVector<OpFoldResult> strides(offsets.size(), b.getIndexAttr(1));
  auto op = tensor::ExtractSliceOp::create(b, loc, v, offsets, sizes, strides);
  slices.push_back(op);
  return op.getResult();
}

/// `offsets`/`sizes` of a tile over the loops `loopDims` (result dims), the
/// other result dims whole.
void resultTile(OpBuilder &b, Location loc, Value result,
                ArrayRef<unsigned> loopDims, ArrayRef<OpFoldResult> offsets,
                ArrayRef<OpFoldResult> sizes,
                SmallVector<OpFoldResult> &resultOffsets,
                SmallVector<OpFoldResult> &resultSizes) {
  resultSizes = tensor::getMixedSizes(b, loc, result);
  resultOffsets.assign(resultSizes.size(), b.getIndexAttr(0));
  for (auto [i, d] : llvm::enumerate(loopDims)) {
    resultOffsets[d] = offsets[i];
    resultSizes[d] = sizes[i];
  }
}

OpFoldResult apply(OpBuilder &b, Location loc, AffineExpr e,
                   ArrayRef<OpFoldResult> operands) {
  return affine::makeComposedFoldedAffineApply(b, loc, e, operands);
}

/// The elements of a tile [offset, offset + size) of groups of `factor`
/// elements, in a dim of `total` elements: min(size * factor,
/// total - offset * factor) (the last group may be partial).
OpFoldResult tileElements(OpBuilder &b, Location loc, OpFoldResult offset,
                          OpFoldResult size, OpFoldResult total,
                          int64_t factor) {
  AffineExpr s0, s1, s2;
  bindSymbols(b.getContext(), s0, s1, s2);
  return affine::makeComposedFoldedAffineMin(
      b, loc,
      AffineMap::get(0, 3, {s0 * factor, s2 - s1 * factor}, b.getContext()),
      {size, offset, total});
}

/// DPS init `n` of `op`: its sizes are the iteration domain and tile shapes.
Value initOf(Operation *op, unsigned n) {
  return cast<DestinationStyleOpInterface>(op).getDpsInitOperand(n)->get();
}

/// What the unisparse ops share: every loop is parallel and is the dimension
/// `Derived::kLoops[i]` of the op's inits; a result tile spans the other
/// dimensions whole.
template <typename Derived, typename OpTy>
struct ParallelTiling : TilingInterface::ExternalModel<Derived, OpTy> {
  SmallVector<utils::IteratorType> getLoopIteratorTypes(Operation *) const {
    return SmallVector<utils::IteratorType>(std::size(Derived::kLoops),
                                            utils::IteratorType::parallel);
  }

  SmallVector<Range> getIterationDomain(Operation *op, OpBuilder &b) const {
    return domainOf(b, op->getLoc(), initOf(op, 0), Derived::kLoops);
  }

  LogicalResult
  getResultTilePosition(Operation *op, OpBuilder &b, unsigned resultNumber,
                        ArrayRef<OpFoldResult> offsets,
                        ArrayRef<OpFoldResult> sizes,
                        SmallVector<OpFoldResult> &resultOffsets,
                        SmallVector<OpFoldResult> &resultSizes) const {
    resultTile(b, op->getLoc(), initOf(op, resultNumber), Derived::kLoops,
               offsets, sizes, resultOffsets, resultSizes);
    return success();
  }
};

//===----------------------------------------------------------------------===//
// compress
//===----------------------------------------------------------------------===//

struct CompressTiling : ParallelTiling<CompressTiling, CompressOp> {
  static constexpr unsigned kLoops[] = {0, 2, 3};

  FailureOr<TilingResult>
  getTiledImplementation(Operation *op, OpBuilder &b,
                         ArrayRef<OpFoldResult> offsets,
                         ArrayRef<OpFoldResult> sizes) const {
    auto c = cast<CompressOp>(op);
    Location loc = op->getLoc();
    // The loops are (b, t, d) of a rank-4 destination; concat pooling's
    // rank-5 one is not tiled (yet), nor outlier pooling, whose center and
    // probe are means over the whole sequence.
    if (c.getPooling() != Pooling::mean)
      return op->emitOpError(
          "tiling of concat or outlier pooling is not implemented");
    int64_t sf = c.getSeqFactor();
    OpFoldResult seq = tensor::getMixedSize(b, loc, c.getInput(), 2);
    // Tokens of composites [t0, t0 + ts).
    OpFoldResult tokStart = apply(
        b, loc, getAffineSymbolExpr(0, b.getContext()) * sf, {offsets[1]});
    OpFoldResult tokens = tileElements(b, loc, offsets[1], sizes[1], seq, sf);
    SmallVector<Operation *> slices;
    OpFoldResult zero = b.getIndexAttr(0);
    Value in =
        slice(b, loc, c.getInput(), {offsets[0], zero, tokStart, offsets[2]},
              {sizes[0], tensor::getMixedSize(b, loc, c.getInput(), 1), tokens,
               sizes[2]},
              slices);
    SmallVector<OpFoldResult> outOffsets, outSizes;
    resultTile(b, loc, c.getInit(), kLoops, offsets, sizes, outOffsets,
               outSizes);
    Value init = slice(b, loc, c.getInit(), outOffsets, outSizes, slices);
    Operation *tiled =
        mlir::clone(b, op, {init.getType()}, ValueRange{in, init});
    return TilingResult{
        {tiled}, SmallVector<Value>(tiled->getResults()), slices};
  }
};

//===----------------------------------------------------------------------===//
// block_score
//===----------------------------------------------------------------------===//

struct BlockScoreTiling : ParallelTiling<BlockScoreTiling, BlockScoreOp> {
  static constexpr unsigned kLoops[] = {0, 1, 2};

  FailureOr<TilingResult>
  getTiledImplementation(Operation *op, OpBuilder &b,
                         ArrayRef<OpFoldResult> offsets,
                         ArrayRef<OpFoldResult> sizes) const {
    auto s = cast<BlockScoreOp>(op);
    Location loc = op->getLoc();
    MLIRContext *ctx = b.getContext();
    int64_t rq = s.getBlock() / s.getCQ(), rk = s.getBlock() / s.getCK();
    AffineExpr s0, s1, s2, s3;
    bindSymbols(ctx, s0, s1, s2, s3);
    OpFoldResult zero = b.getIndexAttr(0);
    OpFoldResult tq = tensor::getMixedSize(b, loc, s.getQc(), 2);
    OpFoldResult tk = tensor::getMixedSize(b, loc, s.getKc(), 2);
    // Antidiagonal and outlier estimators: rank-5 composites
    // [B, Hg, T, slots, D], the slots kept whole.
    bool anti = hasSlotComposites(s.getEstimator());
    OpFoldResult headDim =
        tensor::getMixedSize(b, loc, s.getQc(), anti ? 4 : 3);
    OpFoldResult ownOffset =
        s.getQueryOffset() ? OpFoldResult(s.getQueryOffset()) : zero;

    // Query composites of blocks [I0, I0 + Is).
    OpFoldResult qStart = apply(b, loc, s0 * rq, {offsets[2]});
    OpFoldResult qCount = tileElements(b, loc, offsets[2], sizes[2], tq, rq);
    // Keys: all, or (causal) those before the end of the tile's last block.
    OpFoldResult keys = tk;
    if (s.getCausal())
      keys = affine::makeComposedFoldedAffineMin(
          b, loc,
          AffineMap::get(0, 4, {(s0.floorDiv(rq) + s1 + s2) * rk, s3}, ctx),
          {ownOffset, offsets[2], sizes[2], tk});
    OpFoldResult keyBlocks = apply(b, loc, s0.ceilDiv(rk), {keys});

    // Key composites shared by kv_group head groups: a tile of one head
    // group reads one key head (the tile's op shares nothing), a tile of a
    // multiple of kv_group head groups (aligned, as the tiles' offsets are
    // multiples of their size) reads their quotient and shares as the op.
    int64_t kvGroup = s.getKvGroup(), tiledKvGroup = 1;
    OpFoldResult keyHead = offsets[1], keyHeads = sizes[1];
    if (kvGroup > 1) {
      std::optional<int64_t> groupTile = getConstantIntValue(sizes[1]);
      if (!groupTile || (*groupTile != 1 && *groupTile % kvGroup != 0)) {
        op->emitOpError() << "with kv_group = " << kvGroup
                          << ", head groups tile by 1 or by a multiple of "
                          << kvGroup;
        return failure();
      }
      keyHead = apply(b, loc, s0.floorDiv(kvGroup), {offsets[1]});
      keyHeads = b.getIndexAttr(*groupTile == 1 ? 1 : *groupTile / kvGroup);
      tiledKvGroup = *groupTile == 1 ? 1 : kvGroup;
    }

    SmallVector<Operation *> slices, tiledOps;
    auto composites = [&](Value c, OpFoldResult start, OpFoldResult count,
                          OpFoldResult head, OpFoldResult heads) {
      SmallVector<OpFoldResult> offs = {offsets[0], head, start, zero};
      SmallVector<OpFoldResult> lens = {sizes[0], heads, count};
      if (anti) {
        offs.push_back(zero);
        lens.push_back(tensor::getMixedSize(b, loc, c, 3));
      }
      lens.push_back(headDim);
      return slice(b, loc, c, offs, lens, slices);
    };
    Value qc = composites(s.getQc(), qStart, qCount, offsets[1], sizes[1]);
    Value kc = composites(s.getKc(), zero, keys, keyHead, keyHeads);
    SmallVector<OpFoldResult> outOffsets, outSizes;
    resultTile(b, loc, s.getInit(), kLoops, offsets, sizes, outOffsets,
               outSizes);
    Value init = slice(b, loc, s.getInit(), outOffsets, outSizes, slices);
    Value queryOffset = getValueOrCreateConstantIndexOp(
        b, loc, apply(b, loc, s0 + s1, {ownOffset, qStart}));

    Value dest = init;
    SmallVector<OpFoldResult> cornerSizes = {sizes[0], sizes[1], sizes[2],
                                             keyBlocks};
    if (s.getCausal()) {
      // Zero the tile, then score its first keyBlocks columns.
      Value zeroF = arith::ConstantOp::create(b, loc, b.getF32FloatAttr(0.0f));
      auto fill = linalg::FillOp::create(b, loc, zeroF, init);
      tiledOps.push_back(fill);
      dest = slice(b, loc, fill.getResult(0),
                   SmallVector<OpFoldResult>(4, zero), cornerSizes, slices);
    }
    auto tiled = BlockScoreOp::create(
        b, loc, dest.getType(), qc, kc, dest, queryOffset, s.getBlockAttr(),
        s.getCQAttr(), s.getCKAttr(), s.getCausalAttr(), s.getScaleAttr(),
        s.getEstimatorAttr(), s.getQueryReduceAttr(),
        b.getI64IntegerAttr(tiledKvGroup));
    tiledOps.push_back(tiled);
    Value result = tiled.getResult();
    if (s.getCausal()) {
      SmallVector<OpFoldResult> ones(4, b.getIndexAttr(1));
      result = tensor::InsertSliceOp::create(
          b, loc, result, tiledOps.front()->getResult(0),
          SmallVector<OpFoldResult>(4, zero), cornerSizes, ones);
    }
    return TilingResult{tiledOps, {result}, slices};
  }
};

//===----------------------------------------------------------------------===//
// block_select, dense_layout: rows of (batch, head group)
//===----------------------------------------------------------------------===//

/// Tiles (b, g) of an op whose DPS inits are layout tensors (counts rank 3,
/// indices rank 4) and whose other operands are [B, Hg, ...] tensors.
template <typename OpTy>
struct LayoutTiling : ParallelTiling<LayoutTiling<OpTy>, OpTy> {
  static constexpr unsigned kLoops[] = {0, 1};

  FailureOr<TilingResult>
  getTiledImplementation(Operation *op, OpBuilder &b,
                         ArrayRef<OpFoldResult> offsets,
                         ArrayRef<OpFoldResult> sizes) const {
    Location loc = op->getLoc();
    SmallVector<Operation *> slices;
    SmallVector<Value> operands;
    SmallVector<Type> resultTypes;
    for (OpOperand &operand : op->getOpOperands()) {
      SmallVector<OpFoldResult> tileOffsets, tileSizes;
      resultTile(b, loc, operand.get(), kLoops, offsets, sizes, tileOffsets,
                 tileSizes);
      operands.push_back(
          slice(b, loc, operand.get(), tileOffsets, tileSizes, slices));
      if (cast<DestinationStyleOpInterface>(op).isDpsInit(&operand))
        resultTypes.push_back(operands.back().getType());
    }
    Operation *tiled = mlir::clone(b, op, resultTypes, operands);
    return TilingResult{
        {tiled}, SmallVector<Value>(tiled->getResults()), slices};
  }
};
} // namespace

void mlir::unisparse::registerTilingInterfaceExternalModels(
    DialectRegistry &registry) {
  registry.addExtension(+[](MLIRContext *ctx, UnisparseDialect *) {
    CompressOp::attachInterface<CompressTiling>(*ctx);
    BlockScoreOp::attachInterface<BlockScoreTiling>(*ctx);
    BlockSelectOp::attachInterface<LayoutTiling<BlockSelectOp>>(*ctx);
    DenseLayoutOp::attachInterface<LayoutTiling<DenseLayoutOp>>(*ctx);
  });
}
