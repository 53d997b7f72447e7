//===- OutlierScore.cpp - block_score {estimator = outlier} -> linalg -----===//
//
// The outlier estimator's scores as structured ops, on the slot map
// [B, Hg, Tq', nq, Tk', sk] (nq = rq + 1 query slots: the rest and the
// outlier rows; sk = rk + 1 key slots; Tq' = NBq * (block / c_q) and
// Tk' = NBk * (block / c_k), the map padded to whole blocks):
//
//   %X  = contraction (b, g, t, a, u, s, d), d reduced, into the map's
//         [Tq, Tk] corner: X = qc[t, a] . kc[u, s]
//   %x  = in place: valid(t, u) ? X * scale + log w_s : -inf
//         (w_0 = c_k - rk, w_s = 1)
//   %m1, %l1 = per (t, a): max over (u, s) (NaN left out, as in
//         BlockScore.cpp) and sum of exp(x - m1) where valid
//   %v  = per (t, a): the mean over d of qc's spread slot for a = 0, else 0
//   %k2 = per (u, s): |kc[u, s]|^2
//   %y  = in place: valid ? x + scale^2 v k2 (1 - 2 exp(x - m1) / l1) / 2
//                         : -inf
//   %m2, %l2 = the same reductions of y
//   %A  = (b, g, t, u, a, s), (a, s) reduced: omega_a exp(y - m2) / l2
//         where valid (omega_0 = (c_q - rq) / c_q, omega_a = 1 / c_q)
//   scores = blockScoresOfMap(A) (BlockScoreStages.h): rows of A sum to 1
//
// The NumPy reference is unisparse.reference.outlier.block_score.
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
struct OutlierScoreToLinalg : OpRewritePattern<BlockScoreOp> {
  using OpRewritePattern::OpRewritePattern;

  LogicalResult matchAndRewrite(BlockScoreOp op,
                                PatternRewriter &rewriter) const override {
    if (!op.hasPureTensorSemantics() || op.getEstimator() != Estimator::outlier)
      return failure();
    ImplicitLocOpBuilder b(op.getLoc(), rewriter);
    MLIRContext *ctx = op.getContext();
    Type f32 = b.getF32Type();
    int64_t cq = op.getCQ(), ck = op.getCK();
    int64_t rq = op.getBlock() / cq, rk = op.getBlock() / ck;
    int64_t sq = cast<ShapedType>(op.getQc().getType()).getDimSize(3);
    int64_t sk = cast<ShapedType>(op.getKc().getType()).getDimSize(3);
    int64_t nq = sq - 1, qOut = sq - 2, kOut = sk - 1;
    float negInf = -std::numeric_limits<float>::infinity();

    ScoreOperands ops = scoreOperands(b, op);
    OpFoldResult headDim = ops.qSizes[4];
    AffineExpr s0 = getAffineSymbolExpr(0, ctx);
    auto times = [&](OpFoldResult v, int64_t f) {
      return affine::makeComposedFoldedAffineApply(b, b.getLoc(), s0 * f, {v});
    };
    OpFoldResult tqPad = times(ops.sSizes[2], rq),
                 tkPad = times(ops.sSizes[3], rk);
    OpFoldResult nqA = b.getIndexAttr(nq), skA = b.getIndexAttr(sk);
    SmallVector<OpFoldResult> mapSizes = {ops.sSizes[0], ops.sSizes[1], tqPad,
                                          nqA,           tkPad,         skA};
    SmallVector<OpFoldResult> rowSizes = {ops.sSizes[0], ops.sSizes[1], tqPad,
                                          nqA};
    auto fm = arith::FastMathFlagsAttr::get(
        ctx, arith::FastMathFlags::reassoc | arith::FastMathFlags::contract);
    auto maxFm = arith::FastMathFlagsAttr::get(
        ctx, arith::FastMathFlags::nnan | arith::FastMathFlags::nsz);
    Value zeroF = arith::ConstantOp::create(b, b.getF32FloatAttr(0.0f));
    Value ninf = arith::ConstantOp::create(b, b.getF32FloatAttr(negInf));

    // The slot products into the [Tq, Tk] corner of the zeroed map.
    Value qr = sliceDim(b, op.getQc(), 3, b.getIndexAttr(0), nqA);
    SmallVector<OpFoldResult> cornerSizes = {
        ops.qSizes[0], ops.qSizes[1], ops.qSizes[2], nqA, ops.tk, skA};
    Value map = filledTensor(b, mapSizes, f32, b.getF32FloatAttr(0.0f));
    SmallVector<OpFoldResult> zeros6(6, b.getIndexAttr(0)),
        ones6(6, b.getIndexAttr(1));
    Value corner =
        tensor::ExtractSliceOp::create(b, map, zeros6, cornerSizes, ones6);
    Value products =
        linalg::GenericOp::create(
            b, TypeRange{corner.getType()}, ValueRange{qr, op.getKc()},
            ValueRange{corner},
            ArrayRef<AffineMap>{dimsMap(ctx, 7, {0, 1, 2, 3, 6}),
                                dimsMap(ctx, 7, {0, 1, 4, 5, 6}),
                                dimsMap(ctx, 7, {0, 1, 2, 3, 4, 5})},
            iterators(6, 1),
            [&](OpBuilder &nb, Location loc, ValueRange args) {
              Value x = toF32(nb, loc, args[0]), y = toF32(nb, loc, args[1]);
              Value p = arith::MulFOp::create(nb, loc, x, y, fm);
              linalg::YieldOp::create(
                  nb, loc,
                  arith::AddFOp::create(nb, loc, args[2], p, fm).getResult());
            })
            .getResult(0);
    map = tensor::InsertSliceOp::create(b, products, map, zeros6, cornerSizes,
                                        ones6);

    auto id6 = AffineMap::getMultiDimIdentityMap(6, ctx);
    auto rowOf6 = dimsMap(ctx, 6, {0, 1, 2, 3});
    auto keyOf6 = dimsMap(ctx, 6, {0, 1, 4, 5});
    // valid(t, u) of the map's loops (b, g, t, a, u, s).
    auto valid = [&](ImplicitLocOpBuilder &lb) {
      return ops.mask.valid(lb, linalg::IndexOp::create(lb, 2),
                            linalg::IndexOp::create(lb, 4));
    };
    // The map rewritten in place by `f(args)`, masked to -inf.
    auto inPlace =
        [&](Value m, ValueRange ins, ArrayRef<AffineMap> inMaps,
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
                           lb, arith::SelectOp::create(lb, valid(lb), v, ninf)
                                   .getResult());
                     })
              .getResult(0);
        };
    // Per (t, a): the max over (u, s), NaN left out, and the sum of
    // exp(v - max) where valid.
    auto rowMax = [&](Value m) {
      return linalg::GenericOp::create(
                 b,
                 TypeRange{RankedTensorType::get(
                     llvm::map_to_vector(rowSizes, staticSize), f32)},
                 ValueRange{m},
                 ValueRange{
                     filledTensor(b, rowSizes, f32, b.getF32FloatAttr(negInf))},
                 ArrayRef<AffineMap>{id6, rowOf6}, iterators(4, 2),
                 [&](OpBuilder &nb, Location loc, ValueRange args) {
                   ImplicitLocOpBuilder lb(loc, nb);
                   Value isNum = arith::CmpFOp::create(
                       lb, arith::CmpFPredicate::ORD, args[0], args[0]);
                   Value v = arith::SelectOp::create(lb, isNum, args[0], ninf);
                   linalg::YieldOp::create(
                       lb, arith::MaxNumFOp::create(lb, args[1], v, maxFm)
                               .getResult());
                 })
          .getResult(0);
    };
    auto rowSum = [&](Value m, Value mx) {
      return linalg::GenericOp::create(
                 b, TypeRange{mx.getType()}, ValueRange{m, mx},
                 ValueRange{
                     filledTensor(b, rowSizes, f32, b.getF32FloatAttr(0.0f))},
                 ArrayRef<AffineMap>{id6, rowOf6, rowOf6}, iterators(4, 2),
                 [&](OpBuilder &nb, Location loc, ValueRange args) {
                   ImplicitLocOpBuilder lb(loc, nb);
                   Value e = math::ExpOp::create(
                       lb, arith::SubFOp::create(lb, args[0], args[1]));
                   e = arith::SelectOp::create(lb, valid(lb), e, zeroF);
                   linalg::YieldOp::create(
                       lb,
                       arith::AddFOp::create(lb, args[2], e, fm).getResult());
                 })
          .getResult(0);
    };

    // Logits: scale * X + log w_s.
    Value logW0 = arith::ConstantOp::create(
        b, b.getF32FloatAttr(std::log(static_cast<float>(ck - kOut))));
    Value x =
        inPlace(map, {}, {}, [&](ImplicitLocOpBuilder &lb, ValueRange args) {
          Value s = linalg::IndexOp::create(lb, 5);
          Value rest =
              arith::CmpIOp::create(lb, arith::CmpIPredicate::eq, s,
                                    arith::ConstantIndexOp::create(lb, 0));
          return arith::AddFOp::create(
                     lb, arith::MulFOp::create(lb, args[0], ops.scale),
                     arith::SelectOp::create(lb, rest, logW0, zeroF))
              .getResult();
        });
    Value m1 = rowMax(x);
    Value l1 = rowSum(x, m1);

    // The spread of query slot 0 (the mean over d of the spread slot), and
    // the squared norms of the key slots, both padded to the map's size.
    Value dF = arith::SIToFPOp::create(
        b, f32,
        arith::IndexCastOp::create(b, b.getI64Type(), toValue(b, headDim)));
    // A sum over d (the last loop) of `term(x, loop indices)` into a
    // tensor of `sizes` (the other four loops).
    auto sumOverD =
        [&](Value in, AffineMap inMap, ArrayRef<OpFoldResult> sizes,
            function_ref<Value(ImplicitLocOpBuilder &, Value)> term) {
          return linalg::GenericOp::create(
                     b,
                     TypeRange{RankedTensorType::get(
                         llvm::map_to_vector(sizes, staticSize), f32)},
                     ValueRange{in},
                     ValueRange{
                         filledTensor(b, sizes, f32, b.getF32FloatAttr(0.0f))},
                     ArrayRef<AffineMap>{inMap, dimsMap(ctx, 5, {0, 1, 2, 3})},
                     iterators(4, 1),
                     [&](OpBuilder &nb, Location loc, ValueRange args) {
                       ImplicitLocOpBuilder lb(loc, nb);
                       Value t = term(lb, toF32(lb, loc, args[0]));
                       linalg::YieldOp::create(
                           lb, arith::AddFOp::create(lb, args[1], t, fm)
                                   .getResult());
                     })
              .getResult(0);
        };
    AffineMap spreadSlot = AffineMap::get(
        5, 0,
        {getAffineDimExpr(0, ctx), getAffineDimExpr(1, ctx),
         getAffineDimExpr(2, ctx), getAffineConstantExpr(sq - 1, ctx),
         getAffineDimExpr(4, ctx)},
        ctx);
    Value v = sumOverD(
        op.getQc(), spreadSlot,
        {ops.qSizes[0], ops.qSizes[1], ops.qSizes[2], nqA},
        [&](ImplicitLocOpBuilder &lb, Value x) {
          Value first = arith::CmpIOp::create(
              lb, arith::CmpIPredicate::eq, linalg::IndexOp::create(lb, 3),
              arith::ConstantIndexOp::create(lb, 0));
          return arith::SelectOp::create(
                     lb, first, arith::DivFOp::create(lb, x, dF), zeroF)
              .getResult();
        });
    v = insertDim(b, v, filledTensor(b, rowSizes, f32, b.getF32FloatAttr(0.0f)),
                  2, b.getIndexAttr(0));
    Value k2 = sumOverD(op.getKc(), AffineMap::getMultiDimIdentityMap(5, ctx),
                        {ops.qSizes[0], ops.qSizes[1], ops.tk, skA},
                        [&](ImplicitLocOpBuilder &lb, Value x) {
                          return arith::MulFOp::create(lb, x, x).getResult();
                        });
    k2 = insertDim(b, k2,
                   filledTensor(b, {ops.qSizes[0], ops.qSizes[1], tkPad, skA},
                                f32, b.getF32FloatAttr(0.0f)),
                   2, b.getIndexAttr(0));

    // The spread-corrected logits, in place.
    Value halfScale2 = arith::MulFOp::create(
        b, arith::ConstantOp::create(b, b.getF32FloatAttr(0.5f)),
        arith::MulFOp::create(b, ops.scale, ops.scale));
    Value y = inPlace(
        x, {m1, l1, v, k2}, {rowOf6, rowOf6, rowOf6, keyOf6},
        [&](ImplicitLocOpBuilder &lb, ValueRange args) {
          // args: m1, l1, v, k2, x
          Value xv = args[4];
          Value p = arith::DivFOp::create(
              lb,
              math::ExpOp::create(lb, arith::SubFOp::create(lb, xv, args[0])),
              args[1]);
          Value one = arith::ConstantOp::create(lb, lb.getF32FloatAttr(1.0f));
          Value two = arith::ConstantOp::create(lb, lb.getF32FloatAttr(2.0f));
          Value damp =
              arith::SubFOp::create(lb, one, arith::MulFOp::create(lb, two, p));
          Value sigma = arith::MulFOp::create(
              lb, halfScale2, arith::MulFOp::create(lb, args[2], args[3]));
          return arith::AddFOp::create(lb, xv,
                                       arith::MulFOp::create(lb, sigma, damp))
              .getResult();
        });
    Value m2 = rowMax(y);
    Value l2 = rowSum(y, m2);

    // A[t, u] = sum_a omega_a sum_s exp(y - m2) / l2: (b, g, t, u, a, s).
    SmallVector<OpFoldResult> aSizes = {ops.sSizes[0], ops.sSizes[1], tqPad,
                                        tkPad};
    Value omegaRest = arith::ConstantOp::create(
        b, b.getF32FloatAttr(static_cast<float>(cq - qOut) /
                             static_cast<float>(cq)));
    Value omegaOut = arith::ConstantOp::create(
        b, b.getF32FloatAttr(1.0f / static_cast<float>(cq)));
    auto yMap = dimsMap(ctx, 6, {0, 1, 2, 4, 3, 5});
    auto rowOfA = dimsMap(ctx, 6, {0, 1, 2, 4});
    Value shares =
        linalg::GenericOp::create(
            b,
            TypeRange{RankedTensorType::get(
                llvm::map_to_vector(aSizes, staticSize), f32)},
            ValueRange{y, m2, l2},
            ValueRange{filledTensor(b, aSizes, f32, b.getF32FloatAttr(0.0f))},
            ArrayRef<AffineMap>{yMap, rowOfA, rowOfA,
                                dimsMap(ctx, 6, {0, 1, 2, 3})},
            iterators(4, 2),
            [&](OpBuilder &nb, Location loc, ValueRange args) {
              ImplicitLocOpBuilder lb(loc, nb);
              Value t = linalg::IndexOp::create(lb, 2);
              Value u = linalg::IndexOp::create(lb, 3);
              Value a = linalg::IndexOp::create(lb, 4);
              Value e = math::ExpOp::create(
                  lb, arith::SubFOp::create(lb, args[0], args[1]));
              Value first =
                  arith::CmpIOp::create(lb, arith::CmpIPredicate::eq, a,
                                        arith::ConstantIndexOp::create(lb, 0));
              Value w = arith::SelectOp::create(lb, first, omegaRest, omegaOut);
              Value share = arith::MulFOp::create(
                  lb, w, arith::DivFOp::create(lb, e, args[2]));
              share = arith::SelectOp::create(lb, ops.mask.valid(lb, t, u),
                                              share, zeroF);
              linalg::YieldOp::create(
                  lb,
                  arith::AddFOp::create(lb, args[3], share, fm).getResult());
            })
            .getResult(0);
    Value ones = filledTensor(b, {ops.sSizes[0], ops.sSizes[1], tqPad}, f32,
                              b.getF32FloatAttr(1.0f));
    rewriter.replaceOp(op, blockScoresOfMap(b, op, shares, ones, ops.mask.tq));
    return success();
  }
};
} // namespace

void mlir::unisparse::populateOutlierScoreToLinalgPatterns(
    RewritePatternSet &patterns) {
  patterns.add<OutlierScoreToLinalg>(patterns.getContext());
}
