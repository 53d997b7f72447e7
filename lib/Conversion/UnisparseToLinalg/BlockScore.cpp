//===- BlockScore.cpp - unisparse.block_score -> linalg -------------------===//
//
// Structured ops only: every operand is read through an indexing map, the
// logits come from one contraction, and the block sums are a reduction over
// an expanded view of the normalised map. With rq = block / c_q and
// rk = block / c_k, the map is padded to whole blocks,
// [Tq', Tk'] = [NBq * rq, NBk * rk], so that it expands exactly:
//
//   %L  = fill 0 : [B, Hg, Tq', Tk']
//   %L  = insert_slice (linalg.generic contraction (b, g, t, u, d), d reduced:
//           L[b, g, t, u] += qc[b, g, t, d] * kc[b, g, u, d]) into %L[.., :Tq,
//           :Tk]
//   %m  = max of x = scale * L, masked, NaN left out, in two exact steps:
//           linalg.generic (b, g, t, J, j), J reduced, over expand_shape L :
//           [B, Hg, Tq', NBk, rk] into [B, Hg, Tq', rk]; then j reduced
//   %E  = linalg.generic (b, g, t, u): valid ? exp(x - m) : 0   (in place)
//   %l  = linalg.generic (b, g, t, u), u reduced: sum of E
//   %s  = linalg.generic (b, g, I, J, i, j), (i, j) reduced, over
//           expand_shape E : [B, Hg, NBq, rq, NBk, rk]: sum of E / l
//
// "valid" is t < Tq, u < Tk and, when causal, the composite-granularity mask:
// key composite u is visible from query composite t iff
// u * c_k <= (t + query_offset + 1) * c_q - 1 (linalg.index in the bodies, no
// loads at computed indices). Each logit is a dot product in ascending d; each
// element is computed by the same sequence of operations wherever it sits, so
// equal inputs give bit-equal block scores (ties stay ties).
//
// The map costs 4 * B * Hg * Tq' * Tk' bytes; tiling the consumers by query
// block (TilingInterface) and fusing the producers bounds it by a tile.
//
//===----------------------------------------------------------------------===//

#include "BlockScoreStages.h"
#include "LoweringUtils.h"
#include "unisparse/Conversion/UnisparseToLinalg/UnisparseToLinalg.h"
#include "unisparse/Dialect/Unisparse/IR/UnisparseOps.h"

#include <functional>
#include <limits>

using namespace mlir;
using namespace mlir::unisparse;
using namespace mlir::unisparse::detail;

namespace {
/// The structured lowering of one block_score, one helper per stage: the
/// composite logits of its estimator into the padded map, the row
/// statistics (max, exp, sums) and the block sums of its query reduction.
class BlockScoreLowering {
public:
  BlockScoreLowering(BlockScoreOp op, ImplicitLocOpBuilder &b)
      : op(op), b(b), ctx(op.getContext()), f32(b.getF32Type()), cq(op.getCQ()),
        ck(op.getCK()), rq(op.getBlock() / cq), rk(op.getBlock() / ck) {
    ScoreOperands operands = scoreOperands(b, op);
    qSizes = operands.qSizes;
    sSizes = operands.sSizes;
    OpFoldResult tk = operands.tk;
    scale = operands.scale;
    mask = operands.mask;
    AffineExpr s0 = getAffineSymbolExpr(0, ctx);
    auto times = [&](OpFoldResult v, int64_t f) {
      return affine::makeComposedFoldedAffineApply(b, b.getLoc(), s0 * f, {v});
    };
    mapSizes = {sSizes[0], sSizes[1], times(sSizes[2], rq),
                times(sSizes[3], rk)};
    rowSizes.assign(mapSizes.begin(), mapSizes.begin() + 3);
    cornerSizes = {qSizes[0], qSizes[1], qSizes[2], tk};
    // The dot product, the row sums and the block sums may be reassociated
    // and fused (vector lanes, FMA): the order is the backend's, the same
    // for every element, so equal inputs still give equal results.
    fm = arith::FastMathFlagsAttr::get(ctx, arith::FastMathFlags::reassoc |
                                                arith::FastMathFlags::contract);
  }

  /// The scores: the estimator's logits in the padded map, then the row
  /// statistics and the block sums.
  Value lower() {
    SmallVector<OpFoldResult> zeros(4, b.getIndexAttr(0)),
        ones(4, b.getIndexAttr(1));
    Value map = filledTensor(b, mapSizes, f32, b.getF32FloatAttr(0.0f));
    Value corner =
        tensor::ExtractSliceOp::create(b, map, zeros, cornerSizes, ones);
    Value logits = compositeLogits(corner);
    map =
        tensor::InsertSliceOp::create(b, logits, map, zeros, cornerSizes, ones);
    Value rowMax = maskedRowMax(map);
    Value probs = exponentials(map, rowMax);
    return blockSums(probs, rowSums(probs));
  }

private:
  BlockScoreOp op;
  ImplicitLocOpBuilder &b;
  MLIRContext *ctx;
  Type f32;
  int64_t cq, ck, rq, rk;
  SmallVector<OpFoldResult> qSizes, sSizes, mapSizes, rowSizes, cornerSizes;
  Value scale;
  Mask mask;
  arith::FastMathFlagsAttr fm;
  static constexpr float kNegInf = -std::numeric_limits<float>::infinity();

  /// The body of a reduction out += in0 * in1 (16-bit composites, the GPU's
  /// tensor-core inputs, are multiplied in f32).
  std::function<void(OpBuilder &, Location, ValueRange)> multiplyAdd() {
    return [fm = fm](OpBuilder &nb, Location loc, ValueRange args) {
      Value p = arith::MulFOp::create(nb, loc, toF32(nb, loc, args[0]),
                                      toF32(nb, loc, args[1]), fm);
      linalg::YieldOp::create(
          nb, loc, arith::AddFOp::create(nb, loc, args[2], p, fm).getResult());
    };
  }

  /// The body of a max reduction: out = max(out, in).
  static void maxOf(OpBuilder &nb, Location loc, ValueRange args) {
    linalg::YieldOp::create(
        nb, loc,
        arith::MaximumFOp::create(nb, loc, args[1], args[0]).getResult());
  }

  /// The logits of the estimator into `corner` ([B, Hg, Tq, Tk]).
  Value compositeLogits(Value corner) {
    switch (op.getEstimator()) {
    case Estimator::mean:
      return meanLogits(corner);
    case Estimator::antidiag:
      return antidiagLogits(corner);
    case Estimator::antidiag_lse:
      return antidiagLseLogits(corner);
    case Estimator::outlier: // OutlierScore.cpp: a map of slot pairs
      break;
    }
    llvm_unreachable("unknown estimator");
  }

  /// mean: (b, g, t, u, d): L[t, u] = qc[t] . kc[u].
  Value meanLogits(Value corner) {
    return linalg::GenericOp::create(
               b, TypeRange{corner.getType()},
               ValueRange{op.getQc(), op.getKc()}, ValueRange{corner},
               ArrayRef<AffineMap>{dimsMap(ctx, 5, {0, 1, 2, 4}),
                                   dimsMap(ctx, 5, {0, 1, 3, 4}),
                                   dimsMap(ctx, 5, {0, 1, 2, 3})},
               iterators(4, 1), multiplyAdd())
        .getResult(0);
  }

  /// antidiag: (b, g, t, u, a, d): L[t, u] = sum_a qc[t, a] . kc[u, a] / s,
  /// the mean of the antidiagonal (qc holds its slots reversed).
  Value antidiagLogits(Value corner) {
    Value logits = linalg::GenericOp::create(
                       b, TypeRange{corner.getType()},
                       ValueRange{op.getQc(), op.getKc()}, ValueRange{corner},
                       ArrayRef<AffineMap>{dimsMap(ctx, 6, {0, 1, 2, 4, 5}),
                                           dimsMap(ctx, 6, {0, 1, 3, 4, 5}),
                                           dimsMap(ctx, 6, {0, 1, 2, 3})},
                       iterators(4, 2), multiplyAdd())
                       .getResult(0);
    Value inv = arith::ConstantOp::create(
        b, b.getF32FloatAttr(1.0f / static_cast<float>(cq)));
    return linalg::GenericOp::create(
               b, TypeRange{corner.getType()}, ValueRange{}, ValueRange{logits},
               ArrayRef<AffineMap>{AffineMap::getMultiDimIdentityMap(4, ctx)},
               iterators(4, 0),
               [&](OpBuilder &nb, Location loc, ValueRange args) {
                 linalg::YieldOp::create(
                     nb, loc,
                     arith::MulFOp::create(nb, loc, args[0], inv).getResult());
               })
        .getResult(0);
  }

  /// antidiag_lse: (b, g, t, u, a, d): the slot logits X[t, u, a]; then over
  /// a: m = max X, e = sum exp(scale * (X - m)), and L = m + log(e / s) /
  /// scale, so that scale * L is the log-mean-exp of the scaled slot logits.
  Value antidiagLseLogits(Value corner) {
    SmallVector<OpFoldResult> slotSizes(cornerSizes);
    slotSizes.push_back(b.getIndexAttr(cq));
    Value slots = filledTensor(b, slotSizes, f32, b.getF32FloatAttr(0.0f));
    slots = linalg::GenericOp::create(
                b, TypeRange{slots.getType()},
                ValueRange{op.getQc(), op.getKc()}, ValueRange{slots},
                ArrayRef<AffineMap>{dimsMap(ctx, 6, {0, 1, 2, 4, 5}),
                                    dimsMap(ctx, 6, {0, 1, 3, 4, 5}),
                                    dimsMap(ctx, 6, {0, 1, 2, 3, 4})},
                iterators(5, 1), multiplyAdd())
                .getResult(0);
    auto id5 = AffineMap::getMultiDimIdentityMap(5, ctx);
    auto tile = dimsMap(ctx, 5, {0, 1, 2, 3});
    Value slotMax = linalg::GenericOp::create(
                        b, TypeRange{corner.getType()}, ValueRange{slots},
                        ValueRange{filledTensor(b, cornerSizes, f32,
                                                b.getF32FloatAttr(kNegInf))},
                        ArrayRef<AffineMap>{id5, tile}, iterators(4, 1), maxOf)
                        .getResult(0);
    Value slotSum =
        linalg::GenericOp::create(
            b, TypeRange{corner.getType()}, ValueRange{slots, slotMax},
            ValueRange{
                filledTensor(b, cornerSizes, f32, b.getF32FloatAttr(0.0f))},
            ArrayRef<AffineMap>{id5, tile, tile}, iterators(4, 1),
            [&](OpBuilder &nb, Location loc, ValueRange args) {
              ImplicitLocOpBuilder lb(loc, nb);
              Value d = arith::SubFOp::create(lb, args[0], args[1]);
              Value e =
                  math::ExpOp::create(lb, arith::MulFOp::create(lb, d, scale));
              linalg::YieldOp::create(
                  lb, arith::AddFOp::create(lb, args[2], e).getResult());
            })
            .getResult(0);
    Value inv = arith::ConstantOp::create(
        b, b.getF32FloatAttr(1.0f / static_cast<float>(cq)));
    auto id4 = AffineMap::getMultiDimIdentityMap(4, ctx);
    return linalg::GenericOp::create(
               b, TypeRange{corner.getType()}, ValueRange{slotMax, slotSum},
               ValueRange{corner}, ArrayRef<AffineMap>{id4, id4, id4},
               iterators(4, 0),
               [&](OpBuilder &nb, Location loc, ValueRange args) {
                 ImplicitLocOpBuilder lb(loc, nb);
                 Value lg = math::LogOp::create(
                     lb, arith::MulFOp::create(lb, args[1], inv));
                 linalg::YieldOp::create(
                     lb, arith::AddFOp::create(
                             lb, args[0], arith::DivFOp::create(lb, lg, scale))
                             .getResult());
               })
        .getResult(0);
  }

  /// Row max of the masked, scaled logits of `map`.
  Value maskedRowMax(Value map) {
    auto rowMap = dimsMap(ctx, 4, {0, 1, 2});
    auto id4 = AffineMap::getMultiDimIdentityMap(4, ctx);
    // Row max of the masked, scaled logits, NaN logits left out: a NaN
    // logit makes its E, hence the row sum and every share of the row, NaN
    // anyway, so m need not carry it. With no NaN reaching the max and the
    // sign of a zero maximum irrelevant (x - (+0) == x - (-0)), it may be
    // `nnan, nsz`. It runs in two steps, both exact (max is): per lane j of
    // the key blocks, over [B, Hg, Tq', NBk, rk] with J reduced and j
    // innermost and parallel, so the host vectorizes it as an elementwise
    // loop; then over the rk lanes.
    auto maxFm = arith::FastMathFlagsAttr::get(
        ctx, arith::FastMathFlags::nnan | arith::FastMathFlags::nsz);
    SmallVector<OpFoldResult> laneSizes(rowSizes);
    laneSizes.push_back(b.getIndexAttr(rk));
    Value lanes =
        linalg::GenericOp::create(
            b,
            TypeRange{RankedTensorType::get(
                llvm::map_to_vector(laneSizes, staticSize), f32)},
            ValueRange{expandDim(b, map, 3, {sSizes[3], b.getIndexAttr(rk)})},
            ValueRange{
                filledTensor(b, laneSizes, f32, b.getF32FloatAttr(kNegInf))},
            ArrayRef<AffineMap>{AffineMap::getMultiDimIdentityMap(5, ctx),
                                dimsMap(ctx, 5, {0, 1, 2, 4})},
            {utils::IteratorType::parallel, utils::IteratorType::parallel,
             utils::IteratorType::parallel, utils::IteratorType::reduction,
             utils::IteratorType::parallel},
            [&](OpBuilder &nb, Location loc, ValueRange args) {
              ImplicitLocOpBuilder lb(loc, nb);
              Value t = linalg::IndexOp::create(lb, 2);
              Value u = arith::AddIOp::create(
                  lb,
                  arith::MulIOp::create(lb, linalg::IndexOp::create(lb, 3),
                                        arith::ConstantIndexOp::create(lb, rk)),
                  linalg::IndexOp::create(lb, 4));
              Value x = arith::MulFOp::create(lb, args[0], scale);
              Value ninf =
                  arith::ConstantOp::create(lb, lb.getF32FloatAttr(kNegInf));
              Value isNum =
                  arith::CmpFOp::create(lb, arith::CmpFPredicate::ORD, x, x);
              Value use =
                  arith::AndIOp::create(lb, mask.valid(lb, t, u), isNum);
              x = arith::SelectOp::create(lb, use, x, ninf);
              linalg::YieldOp::create(
                  lb,
                  arith::MaxNumFOp::create(lb, args[1], x, maxFm).getResult());
            })
            .getResult(0);
    Value rowMax =
        linalg::GenericOp::create(
            b,
            TypeRange{RankedTensorType::get(
                llvm::map_to_vector(rowSizes, staticSize), f32)},
            ValueRange{lanes},
            ValueRange{
                filledTensor(b, rowSizes, f32, b.getF32FloatAttr(kNegInf))},
            ArrayRef<AffineMap>{id4, rowMap}, iterators(3, 1),
            [&](OpBuilder &nb, Location loc, ValueRange args) {
              linalg::YieldOp::create(
                  nb, loc,
                  arith::MaxNumFOp::create(nb, loc, args[1], args[0], maxFm)
                      .getResult());
            })
            .getResult(0);

    return rowMax;
  }

  /// exp(x - m) where valid, 0 elsewhere, in place of `map`.
  Value exponentials(Value map, Value rowMax) {
    auto rowMap = dimsMap(ctx, 4, {0, 1, 2});
    auto id4 = AffineMap::getMultiDimIdentityMap(4, ctx);
    Value probs =
        linalg::GenericOp::create(
            b, TypeRange{map.getType()}, ValueRange{rowMax}, ValueRange{map},
            ArrayRef<AffineMap>{rowMap, id4}, iterators(4, 0),
            [&](OpBuilder &nb, Location loc, ValueRange args) {
              ImplicitLocOpBuilder lb(loc, nb);
              Value t = linalg::IndexOp::create(lb, 2);
              Value u = linalg::IndexOp::create(lb, 3);
              Value x = arith::MulFOp::create(lb, args[1], scale);
              Value e = math::ExpOp::create(
                  lb, arith::SubFOp::create(lb, x, args[0]));
              Value zero =
                  arith::ConstantOp::create(lb, lb.getF32FloatAttr(0.0f));
              linalg::YieldOp::create(
                  lb, arith::SelectOp::create(lb, mask.valid(lb, t, u), e, zero)
                          .getResult());
            })
            .getResult(0);

    return probs;
  }

  /// The row sums of `probs`.
  Value rowSums(Value probs) {
    auto rowMap = dimsMap(ctx, 4, {0, 1, 2});
    auto id4 = AffineMap::getMultiDimIdentityMap(4, ctx);
    Value rowSum =
        linalg::GenericOp::create(
            b,
            TypeRange{RankedTensorType::get(
                llvm::map_to_vector(rowSizes, staticSize), f32)},
            ValueRange{probs},
            ValueRange{filledTensor(b, rowSizes, f32, b.getF32FloatAttr(0.0f))},
            ArrayRef<AffineMap>{id4, rowMap}, iterators(3, 1),
            [&](OpBuilder &nb, Location loc, ValueRange args) {
              linalg::YieldOp::create(
                  nb, loc,
                  arith::AddFOp::create(nb, loc, args[1], args[0], fm)
                      .getResult());
            })
            .getResult(0);

    return rowSum;
  }

  /// The block scores: the sum (or, with query_reduce = max, the max over
  /// the query composites) of E / l over each block.
  Value blockSums(Value probs, Value rowSum) {
    return blockScoresOfMap(b, op, probs, rowSum, mask.tq);
  }
};

/// Key composites shared by kv_group head groups, lowered as what they
/// mean: kc broadcast to one head per head group (linalg.broadcast over a
/// new dim after the heads, then the two collapsed), the op then scoring
/// with kv_group = 1. (The pipelines tile block_score by one head group
/// first, which needs no copy: the tile reads its key head.)
struct ShareKeysToLinalg : OpRewritePattern<BlockScoreOp> {
  ShareKeysToLinalg(MLIRContext *ctx) : OpRewritePattern(ctx, /*benefit=*/2) {}

  LogicalResult matchAndRewrite(BlockScoreOp op,
                                PatternRewriter &rewriter) const override {
    int64_t kvGroup = op.getKvGroup();
    if (!op.hasPureTensorSemantics() || kvGroup == 1)
      return rewriter.notifyMatchFailure(op, "no shared keys");
    ImplicitLocOpBuilder b(op.getLoc(), rewriter);
    Value kc = op.getKc();
    auto type = cast<RankedTensorType>(kc.getType());
    SmallVector<OpFoldResult> sizes = tensor::getMixedSizes(b, b.getLoc(), kc);
    sizes.insert(sizes.begin() + 2, b.getIndexAttr(kvGroup));
    Value init =
        tensor::EmptyOp::create(b, sizes, type.getElementType()).getResult();
    Value wide = linalg::BroadcastOp::create(b, kc, init, ArrayRef<int64_t>{2})
                     .getResult()
                     .front();
    SmallVector<ReassociationIndices> groups = {{0}, {1, 2}};
    for (int64_t d = 3, e = type.getRank() + 1; d < e; ++d)
      groups.push_back({d});
    Value shared = tensor::CollapseShapeOp::create(b, wide, groups);
    auto wideOp = BlockScoreOp::create(
        b, op.getResultTypes(), op.getQc(), shared, op.getInit(),
        op.getQueryOffset(), op.getBlockAttr(), op.getCQAttr(), op.getCKAttr(),
        op.getCausalAttr(), op.getScaleAttr(), op.getEstimatorAttr(),
        op.getQueryReduceAttr(), b.getI64IntegerAttr(1));
    rewriter.replaceOp(op, wideOp.getResults());
    return success();
  }
};

struct BlockScoreToLinalg : OpRewritePattern<BlockScoreOp> {
  using OpRewritePattern::OpRewritePattern;

  LogicalResult matchAndRewrite(BlockScoreOp op,
                                PatternRewriter &rewriter) const override {
    if (!op.hasPureTensorSemantics())
      return rewriter.notifyMatchFailure(op, "buffer form");
    if (op.getKvGroup() != 1)
      return rewriter.notifyMatchFailure(op, "shared keys: ShareKeysToLinalg");
    if (op.getEstimator() == Estimator::outlier)
      return rewriter.notifyMatchFailure(op, "lowered by OutlierScore.cpp");
    ImplicitLocOpBuilder b(op.getLoc(), rewriter);
    rewriter.replaceOp(op, BlockScoreLowering(op, b).lower());
    return success();
  }
};
} // namespace

ScoreOperands mlir::unisparse::detail::scoreOperands(ImplicitLocOpBuilder &b,
                                                     BlockScoreOp op) {
  SmallVector<OpFoldResult> qSizes =
      tensor::getMixedSizes(b, b.getLoc(), op.getQc());
  SmallVector<OpFoldResult> sSizes =
      tensor::getMixedSizes(b, b.getLoc(), op.getInit());
  OpFoldResult tk = tensor::getMixedSize(b, b.getLoc(), op.getKc(), 2);
  Value scale = softmaxScale(b, op.getScale().convertToDouble(), qSizes.back());
  int64_t cq = op.getCQ(), ck = op.getCK();
  Mask mask{toValue(b, qSizes[2]), toValue(b, tk), op.getQueryOffset(), cq, ck,
            op.getCausal()};
  return {qSizes, sSizes, tk, scale, mask};
}

Value mlir::unisparse::detail::blockScoresOfMap(ImplicitLocOpBuilder &b,
                                                BlockScoreOp op, Value probs,
                                                Value rowSum, Value tqV) {
  MLIRContext *ctx = op.getContext();
  Type f32 = b.getF32Type();
  int64_t rq = op.getBlock() / op.getCQ(), rk = op.getBlock() / op.getCK();
  SmallVector<OpFoldResult> sSizes =
      tensor::getMixedSizes(b, b.getLoc(), op.getInit());
  auto fm = arith::FastMathFlagsAttr::get(
      ctx, arith::FastMathFlags::reassoc | arith::FastMathFlags::contract);
  auto maxOf = [](OpBuilder &nb, Location loc, ValueRange args) {
    linalg::YieldOp::create(
        nb, loc,
        arith::MaximumFOp::create(nb, loc, args[1], args[0]).getResult());
  };
  // Block sums of E / l over [B, Hg, NBq, rq, NBk, rk]; padded query rows
  // (l = 0) add nothing.
  Value blocks = expandDim(b, probs, 3, {sSizes[3], b.getIndexAttr(rk)});
  blocks = expandDim(b, blocks, 2, {sSizes[2], b.getIndexAttr(rq)});
  Value sums = expandDim(b, rowSum, 2, {sSizes[2], b.getIndexAttr(rq)});
  Value zeroF = arith::ConstantOp::create(b, b.getF32FloatAttr(0.0f));
  Value blockZeros =
      linalg::FillOp::create(b, ValueRange{zeroF}, ValueRange{op.getInit()})
          .getResult(0);
  // E / l of a real query row (padded rows, l = 0, give 0), added up; the
  // query composite is I * rq + i with i the loop dim `iDim`.
  auto addShare = [&](unsigned iDim) {
    return [&, iDim](OpBuilder &nb, Location loc, ValueRange args) {
      ImplicitLocOpBuilder lb(loc, nb);
      Value I = linalg::IndexOp::create(lb, 2);
      Value i = linalg::IndexOp::create(lb, iDim);
      Value t = arith::AddIOp::create(
          lb,
          arith::MulIOp::create(lb, I, arith::ConstantIndexOp::create(lb, rq)),
          i);
      Value real = arith::CmpIOp::create(lb, arith::CmpIPredicate::slt, t, tqV);
      Value p = arith::DivFOp::create(lb, args[0], args[1]);
      Value zero = arith::ConstantOp::create(lb, lb.getF32FloatAttr(0.0f));
      p = arith::SelectOp::create(lb, real, p, zero);
      linalg::YieldOp::create(
          lb, arith::AddFOp::create(lb, args[2], p, fm).getResult());
    };
  };
  Value scores;
  if (op.getQueryReduce() == QueryReduce::sum) {
    // (b, g, I, J, i, j), (i, j) reduced.
    scores = linalg::GenericOp::create(
                 b, TypeRange{op.getInit().getType()}, ValueRange{blocks, sums},
                 ValueRange{blockZeros},
                 ArrayRef<AffineMap>{dimsMap(ctx, 6, {0, 1, 2, 4, 3, 5}),
                                     dimsMap(ctx, 6, {0, 1, 2, 4}),
                                     dimsMap(ctx, 6, {0, 1, 2, 3})},
                 iterators(4, 2), addShare(4))
                 .getResult(0);
  } else {
    // Per query composite: (b, g, I, i, J, j), j reduced, into
    // [B, Hg, NBq, rq, NBk]; then the max over i (shares are >= 0, so the
    // zero fill is the identity).
    SmallVector<OpFoldResult> rowSizes = {sSizes[0], sSizes[1], sSizes[2],
                                          b.getIndexAttr(rq), sSizes[3]};
    Value perRow = filledTensor(b, rowSizes, f32, b.getF32FloatAttr(0.0f));
    perRow = linalg::GenericOp::create(
                 b, TypeRange{perRow.getType()}, ValueRange{blocks, sums},
                 ValueRange{perRow},
                 ArrayRef<AffineMap>{dimsMap(ctx, 6, {0, 1, 2, 3, 4, 5}),
                                     dimsMap(ctx, 6, {0, 1, 2, 3}),
                                     dimsMap(ctx, 6, {0, 1, 2, 3, 4})},
                 iterators(5, 1), addShare(3))
                 .getResult(0);
    scores = linalg::GenericOp::create(
                 b, TypeRange{op.getInit().getType()}, ValueRange{perRow},
                 ValueRange{blockZeros},
                 ArrayRef<AffineMap>{dimsMap(ctx, 5, {0, 1, 2, 4, 3}),
                                     dimsMap(ctx, 5, {0, 1, 2, 3})},
                 iterators(4, 1), maxOf)
                 .getResult(0);
  }
  return scores;
}
void mlir::unisparse::populateBlockScoreToLinalgPatterns(
    RewritePatternSet &patterns) {
  patterns.add<ShareKeysToLinalg, BlockScoreToLinalg>(patterns.getContext());
  populateOutlierScoreToLinalgPatterns(patterns);
}
