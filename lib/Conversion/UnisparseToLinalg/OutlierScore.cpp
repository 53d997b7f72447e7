//===- OutlierScore.cpp - block_score {estimator = outlier} -> linalg -----===//
//
// The outlier estimator's scores as structured ops, on the slot map
// [B, Hg, Tq', nq, Tk', sk] (nq = rq + 1 query slots: the rest and the
// outlier rows; sk = rk + 1 key slots; Tq' = NBq * (block / c_q) and
// Tk' = NBk * (block / c_k), the map padded to whole blocks), one helper of
// OutlierScoreLowering per stage:
//
//   slotLogits       contraction (b, g, t, a, u, s, d), d reduced, into the
//                    map's [Tq, Tk] corner: X = qc[t, a] . kc[u, s]; then in
//                    place x = valid(t, u) ? X * scale + log w_s : -inf
//                    (w_0 = c_k - rk, w_s = 1)
//   rowMax, rowSum   per (t, a): the max over (u, s) (NaN left out, as in
//                    BlockScore.cpp) and the sum of exp(x - max) where valid
//   querySpread      per (t, a): the mean over d of qc's spread slot for
//                    a = 0, else 0 (a constant index in the indexing map)
//   keyNorms         per (u, s): |kc[u, s]|^2
//   correctedLogits  in place: y = valid ? x + scale^2 v k2 (1 - 2 p) / 2
//                    : -inf, p = exp(x - m1) / l1
//   slotMixture      (b, g, t, u, a, s), (a, s) reduced: A[t, u] = sum of
//                    omega_a exp(y - m2) / l2 where valid (omega_0 =
//                    (c_q - rq) / c_q, omega_a = 1 / c_q); rows of A sum to 1
//
// then blockScoresOfMap (BlockScoreStages.h) on A with unit row sums. The
// NumPy reference is unisparse.reference.outlier.block_score.
//
//===----------------------------------------------------------------------===//

#include "BlockScoreStages.h"
#include "LoweringUtils.h"
#include "unisparse/Conversion/UnisparseToLinalg/UnisparseToLinalg.h"
#include "unisparse/Dialect/Unisparse/IR/UnisparseOps.h"

#include <cmath>
#include <limits>

using namespace mlir;
using namespace mlir::unisparse;
using namespace mlir::unisparse::detail;

namespace {
/// The structured lowering of one outlier block_score (see above).
class OutlierScoreLowering {
public:
  OutlierScoreLowering(BlockScoreOp op, ImplicitLocOpBuilder &b)
      : op(op), b(b), ctx(op.getContext()), f32(b.getF32Type()),
        operands(scoreOperands(b, op)) {
    cq = op.getCQ();
    ck = op.getCK();
    int64_t sq = cast<ShapedType>(op.getQc().getType()).getDimSize(3);
    sk = cast<ShapedType>(op.getKc().getType()).getDimSize(3);
    nq = sq - 1;
    qOut = sq - 2;
    kOut = sk - 1;
    AffineExpr s0 = getAffineSymbolExpr(0, ctx);
    auto times = [&](OpFoldResult v, int64_t f) {
      return affine::makeComposedFoldedAffineApply(b, b.getLoc(), s0 * f, {v});
    };
    ArrayRef<OpFoldResult> s = operands.sSizes;
    tqPad = times(s[2], op.getBlock() / cq);
    tkPad = times(s[3], op.getBlock() / ck);
    mapSizes = {
        s[0], s[1], tqPad, b.getIndexAttr(nq), tkPad, b.getIndexAttr(sk)};
    rowSizes = {s[0], s[1], tqPad, b.getIndexAttr(nq)};
    id6 = AffineMap::getMultiDimIdentityMap(6, ctx);
    rowOf6 = dimsMap(ctx, 6, {0, 1, 2, 3});
    keyOf6 = dimsMap(ctx, 6, {0, 1, 4, 5});
    fm = arith::FastMathFlagsAttr::get(ctx, arith::FastMathFlags::reassoc |
                                                arith::FastMathFlags::contract);
  }

  /// The block scores of the op.
  Value lower() {
    Value x = slotLogits();
    Value m1 = rowMax(x);
    Value l1 = rowSum(x, m1);
    Value v = querySpread();
    Value k2 = keyNorms();
    Value y = correctedLogits(x, m1, l1, v, k2);
    Value m2 = rowMax(y);
    Value l2 = rowSum(y, m2);
    Value ones = filledTensor(b, {rowSizes[0], rowSizes[1], tqPad}, f32,
                              b.getF32FloatAttr(1.0f));
    return blockScoresOfMap(b, op, slotMixture(y, m2, l2), ones,
                            operands.mask.tq);
  }

private:
  BlockScoreOp op;
  ImplicitLocOpBuilder &b;
  MLIRContext *ctx;
  Type f32;
  ScoreOperands operands;
  int64_t cq, ck, sk, nq, qOut, kOut;
  OpFoldResult tqPad, tkPad;
  SmallVector<OpFoldResult> mapSizes, rowSizes;
  AffineMap id6, rowOf6, keyOf6;
  arith::FastMathFlagsAttr fm;
  static constexpr float kNegInf = -std::numeric_limits<float>::infinity();

  Value f32Constant(OpBuilder &nb, Location loc, float v) const {
    return arith::ConstantOp::create(nb, loc, nb.getF32FloatAttr(v));
  }

  /// valid(t, u) of the map's loops (b, g, t, a, u, s).
  Value valid(ImplicitLocOpBuilder &lb) const {
    return operands.mask.valid(lb, linalg::IndexOp::create(lb, 2),
                               linalg::IndexOp::create(lb, 4));
  }

  /// The map `m` rewritten in place by `f(args)` (args: `ins`, then the map
  /// element), -inf where the pair is not valid.
  Value inPlace(Value m, ValueRange ins, ArrayRef<AffineMap> inMaps,
                function_ref<Value(ImplicitLocOpBuilder &, ValueRange)> f) {
    SmallVector<AffineMap> maps(inMaps);
    maps.push_back(id6);
    return linalg::GenericOp::create(
               b, TypeRange{m.getType()}, ins, ValueRange{m}, maps,
               iterators(6, 0),
               [&](OpBuilder &nb, Location loc, ValueRange args) {
                 ImplicitLocOpBuilder lb(loc, nb);
                 Value v = f(lb, args);
                 linalg::YieldOp::create(
                     lb, arith::SelectOp::create(lb, valid(lb), v,
                                                 f32Constant(lb, loc, kNegInf))
                             .getResult());
               })
        .getResult(0);
  }

  /// The slot products into the [Tq, Tk] corner of a zeroed map, then the
  /// logits scale * X + log w_s in place.
  Value slotLogits() {
    SmallVector<OpFoldResult> zeros(6, b.getIndexAttr(0)),
        ones(6, b.getIndexAttr(1));
    ArrayRef<OpFoldResult> q = operands.qSizes;
    OpFoldResult nqA = b.getIndexAttr(nq);
    SmallVector<OpFoldResult> cornerSizes = {
        q[0], q[1], q[2], nqA, operands.tk, b.getIndexAttr(sk)};
    Value qr = sliceDim(b, op.getQc(), 3, b.getIndexAttr(0), nqA);
    Value map = filledTensor(b, mapSizes, f32, b.getF32FloatAttr(0.0f));
    Value corner =
        tensor::ExtractSliceOp::create(b, map, zeros, cornerSizes, ones);
    Value products =
        linalg::GenericOp::create(
            b, TypeRange{corner.getType()}, ValueRange{qr, op.getKc()},
            ValueRange{corner},
            ArrayRef<AffineMap>{dimsMap(ctx, 7, {0, 1, 2, 3, 6}),
                                dimsMap(ctx, 7, {0, 1, 4, 5, 6}),
                                dimsMap(ctx, 7, {0, 1, 2, 3, 4, 5})},
            iterators(6, 1),
            [fm = fm](OpBuilder &nb, Location loc, ValueRange args) {
              Value p = arith::MulFOp::create(nb, loc, toF32(nb, loc, args[0]),
                                              toF32(nb, loc, args[1]), fm);
              linalg::YieldOp::create(
                  nb, loc,
                  arith::AddFOp::create(nb, loc, args[2], p, fm).getResult());
            })
            .getResult(0);
    map = tensor::InsertSliceOp::create(b, products, map, zeros, cornerSizes,
                                        ones);
    Value logW0 = arith::ConstantOp::create(
        b, b.getF32FloatAttr(std::log(static_cast<float>(ck - kOut))));
    Value zero = f32Constant(b, b.getLoc(), 0.0f);
    Value scale = operands.scale;
    return inPlace(map, {}, {}, [&](ImplicitLocOpBuilder &lb, ValueRange args) {
      Value rest = arith::CmpIOp::create(lb, arith::CmpIPredicate::eq,
                                         linalg::IndexOp::create(lb, 5),
                                         arith::ConstantIndexOp::create(lb, 0));
      return arith::AddFOp::create(
                 lb, arith::MulFOp::create(lb, args[0], scale),
                 arith::SelectOp::create(lb, rest, logW0, zero))
          .getResult();
    });
  }

  /// Per (t, a): the max over (u, s), NaN left out (a NaN logit makes its
  /// row NaN through the sum anyway).
  Value rowMax(Value m) {
    auto maxFm = arith::FastMathFlagsAttr::get(
        ctx, arith::FastMathFlags::nnan | arith::FastMathFlags::nsz);
    return linalg::GenericOp::create(
               b,
               TypeRange{RankedTensorType::get(
                   llvm::map_to_vector(rowSizes, staticSize), f32)},
               ValueRange{m},
               ValueRange{
                   filledTensor(b, rowSizes, f32, b.getF32FloatAttr(kNegInf))},
               ArrayRef<AffineMap>{id6, rowOf6}, iterators(4, 2),
               [&](OpBuilder &nb, Location loc, ValueRange args) {
                 ImplicitLocOpBuilder lb(loc, nb);
                 Value isNum = arith::CmpFOp::create(
                     lb, arith::CmpFPredicate::ORD, args[0], args[0]);
                 Value v = arith::SelectOp::create(
                     lb, isNum, args[0], f32Constant(lb, loc, kNegInf));
                 linalg::YieldOp::create(
                     lb, arith::MaxNumFOp::create(lb, args[1], v, maxFm)
                             .getResult());
               })
        .getResult(0);
  }

  /// Per (t, a): the sum of exp(v - max) over the valid (u, s).
  Value rowSum(Value m, Value mx) {
    return linalg::GenericOp::create(
               b, TypeRange{mx.getType()}, ValueRange{m, mx},
               ValueRange{
                   filledTensor(b, rowSizes, f32, b.getF32FloatAttr(0.0f))},
               ArrayRef<AffineMap>{id6, rowOf6, rowOf6}, iterators(4, 2),
               [&](OpBuilder &nb, Location loc, ValueRange args) {
                 ImplicitLocOpBuilder lb(loc, nb);
                 Value e = math::ExpOp::create(
                     lb, arith::SubFOp::create(lb, args[0], args[1]));
                 e = arith::SelectOp::create(lb, valid(lb), e,
                                             f32Constant(lb, loc, 0.0f));
                 linalg::YieldOp::create(
                     lb, arith::AddFOp::create(lb, args[2], e, fm).getResult());
               })
        .getResult(0);
  }

  /// A sum over d (the last of five loops) of `term(x, loop indices)` into a
  /// tensor of `sizes` (the other four loops).
  Value sumOverD(Value in, AffineMap inMap, ArrayRef<OpFoldResult> sizes,
                 function_ref<Value(ImplicitLocOpBuilder &, Value)> term) {
    return linalg::GenericOp::create(
               b,
               TypeRange{RankedTensorType::get(
                   llvm::map_to_vector(sizes, staticSize), f32)},
               ValueRange{in},
               ValueRange{filledTensor(b, sizes, f32, b.getF32FloatAttr(0.0f))},
               ArrayRef<AffineMap>{inMap, dimsMap(ctx, 5, {0, 1, 2, 3})},
               iterators(4, 1),
               [&](OpBuilder &nb, Location loc, ValueRange args) {
                 ImplicitLocOpBuilder lb(loc, nb);
                 Value t = term(lb, toF32(lb, loc, args[0]));
                 linalg::YieldOp::create(
                     lb, arith::AddFOp::create(lb, args[1], t, fm).getResult());
               })
        .getResult(0);
  }

  /// The spread v of each query slot, [B, Hg, Tq', nq]: the mean over d of
  /// qc's spread slot for the rest (a = 0), 0 for an outlier row.
  Value querySpread() {
    ArrayRef<OpFoldResult> q = operands.qSizes;
    Value dF = arith::SIToFPOp::create(
        b, f32,
        arith::IndexCastOp::create(b, b.getI64Type(), toValue(b, q[4])));
    AffineMap spreadSlot = AffineMap::get(
        5, 0,
        {getAffineDimExpr(0, ctx), getAffineDimExpr(1, ctx),
         getAffineDimExpr(2, ctx), getAffineConstantExpr(nq, ctx),
         getAffineDimExpr(4, ctx)},
        ctx);
    Value v = sumOverD(
        op.getQc(), spreadSlot, {q[0], q[1], q[2], b.getIndexAttr(nq)},
        [&](ImplicitLocOpBuilder &lb, Value x) {
          Value first = arith::CmpIOp::create(
              lb, arith::CmpIPredicate::eq, linalg::IndexOp::create(lb, 3),
              arith::ConstantIndexOp::create(lb, 0));
          return arith::SelectOp::create(lb, first,
                                         arith::DivFOp::create(lb, x, dF),
                                         f32Constant(lb, lb.getLoc(), 0.0f))
              .getResult();
        });
    return insertDim(b, v,
                     filledTensor(b, rowSizes, f32, b.getF32FloatAttr(0.0f)), 2,
                     b.getIndexAttr(0));
  }

  /// The squared norm of each key slot, [B, Hg, Tk', sk].
  Value keyNorms() {
    ArrayRef<OpFoldResult> q = operands.qSizes;
    Value k2 = sumOverD(op.getKc(), AffineMap::getMultiDimIdentityMap(5, ctx),
                        {q[0], q[1], operands.tk, b.getIndexAttr(sk)},
                        [](ImplicitLocOpBuilder &lb, Value x) {
                          return arith::MulFOp::create(lb, x, x).getResult();
                        });
    return insertDim(b, k2,
                     filledTensor(b, {q[0], q[1], tkPad, b.getIndexAttr(sk)},
                                  f32, b.getF32FloatAttr(0.0f)),
                     2, b.getIndexAttr(0));
  }

  /// y = x + scale^2 v k2 (1 - 2 p) / 2 with p = exp(x - m1) / l1, in place
  /// of the logits `x`.
  Value correctedLogits(Value x, Value m1, Value l1, Value v, Value k2) {
    Value halfScale2 = arith::MulFOp::create(
        b, f32Constant(b, b.getLoc(), 0.5f),
        arith::MulFOp::create(b, operands.scale, operands.scale));
    return inPlace(
        x, {m1, l1, v, k2}, {rowOf6, rowOf6, rowOf6, keyOf6},
        [&](ImplicitLocOpBuilder &lb, ValueRange args) {
          // args: m1, l1, v, k2, x
          Value xv = args[4];
          Value p = arith::DivFOp::create(
              lb,
              math::ExpOp::create(lb, arith::SubFOp::create(lb, xv, args[0])),
              args[1]);
          Value damp = arith::SubFOp::create(
              lb, f32Constant(lb, lb.getLoc(), 1.0f),
              arith::MulFOp::create(lb, f32Constant(lb, lb.getLoc(), 2.0f), p));
          Value sigma = arith::MulFOp::create(
              lb, halfScale2, arith::MulFOp::create(lb, args[2], args[3]));
          return arith::AddFOp::create(lb, xv,
                                       arith::MulFOp::create(lb, sigma, damp))
              .getResult();
        });
  }

  /// A[t, u] = sum_a omega_a sum_s exp(y - m2) / l2 where valid:
  /// (b, g, t, u, a, s), (a, s) reduced.
  Value slotMixture(Value y, Value m2, Value l2) {
    ArrayRef<OpFoldResult> s = operands.sSizes;
    SmallVector<OpFoldResult> aSizes = {s[0], s[1], tqPad, tkPad};
    Value omegaRest = arith::ConstantOp::create(
        b, b.getF32FloatAttr(static_cast<float>(cq - qOut) /
                             static_cast<float>(cq)));
    Value omegaOut = arith::ConstantOp::create(
        b, b.getF32FloatAttr(1.0f / static_cast<float>(cq)));
    auto rowOfA = dimsMap(ctx, 6, {0, 1, 2, 4});
    return linalg::GenericOp::create(
               b,
               TypeRange{RankedTensorType::get(
                   llvm::map_to_vector(aSizes, staticSize), f32)},
               ValueRange{y, m2, l2},
               ValueRange{
                   filledTensor(b, aSizes, f32, b.getF32FloatAttr(0.0f))},
               ArrayRef<AffineMap>{dimsMap(ctx, 6, {0, 1, 2, 4, 3, 5}), rowOfA,
                                   rowOfA, dimsMap(ctx, 6, {0, 1, 2, 3})},
               iterators(4, 2),
               [&](OpBuilder &nb, Location loc, ValueRange args) {
                 ImplicitLocOpBuilder lb(loc, nb);
                 Value t = linalg::IndexOp::create(lb, 2);
                 Value u = linalg::IndexOp::create(lb, 3);
                 Value a = linalg::IndexOp::create(lb, 4);
                 Value e = math::ExpOp::create(
                     lb, arith::SubFOp::create(lb, args[0], args[1]));
                 Value first = arith::CmpIOp::create(
                     lb, arith::CmpIPredicate::eq, a,
                     arith::ConstantIndexOp::create(lb, 0));
                 Value w =
                     arith::SelectOp::create(lb, first, omegaRest, omegaOut);
                 Value share = arith::MulFOp::create(
                     lb, w, arith::DivFOp::create(lb, e, args[2]));
                 share =
                     arith::SelectOp::create(lb, operands.mask.valid(lb, t, u),
                                             share, f32Constant(lb, loc, 0.0f));
                 linalg::YieldOp::create(
                     lb,
                     arith::AddFOp::create(lb, args[3], share, fm).getResult());
               })
        .getResult(0);
  }
};

struct OutlierScoreToLinalg : OpRewritePattern<BlockScoreOp> {
  using OpRewritePattern::OpRewritePattern;

  LogicalResult matchAndRewrite(BlockScoreOp op,
                                PatternRewriter &rewriter) const override {
    if (!op.hasPureTensorSemantics() ||
        op.getEstimator() != Estimator::outlier || op.getKvGroup() != 1)
      return failure();
    ImplicitLocOpBuilder b(op.getLoc(), rewriter);
    rewriter.replaceOp(op, OutlierScoreLowering(op, b).lower());
    return success();
  }
};
} // namespace

void mlir::unisparse::populateOutlierScoreToLinalgPatterns(
    RewritePatternSet &patterns) {
  patterns.add<OutlierScoreToLinalg>(patterns.getContext());
}
