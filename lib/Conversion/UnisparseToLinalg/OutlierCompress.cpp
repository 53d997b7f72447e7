//===- OutlierCompress.cpp - compress {pooling = outlier} -> linalg -------===//
//
// The outlier composites of unisparse.compress as structured ops. Every read
// is an indexing map; the token of an outlier is picked by a masked sum over
// the composite's slots (a == idx), not loaded at a computed index:
//
//   x      = heads pooled, one token per composite     [B, G, N, D] (f32)
//   center = mean over n of x                          [B, G, D]
//   score  = sum_d (x - center)^2                       [B, G, N]
//   heat   = x . probe, probe = mean of the pooled     [B, G, N]  (hot > 0)
//            queries over their tokens
//   views  = x, score, heat zero-padded to T * c tokens and expanded to
//            [B, G, T, c(, D)]; slot a of composite t is real iff
//            t * c + a < N (linalg.index in the bodies)
//   idx_i  = for i < r: the real slot, not taken by idx_0 .. idx_{i-1}, with
//            the largest heat (i < hot) or score (i >= hot); ties to the
//            lower slot. One reduction over a with two outputs (best value,
//            its slot); the comparison is a total order, so the result does
//            not depend on the reduction's order. c = none (past the tokens).
//   rest   = the real slots not taken, or all real slots when none is left;
//            its mean and (spread) per-coordinate variance by reductions
//            over a
//   result = slot 0 the mean of the rest, slot i + 1 the token at idx_i (a
//            masked sum over a) or the mean when idx_i is none, slot r + 1
//            the spread (tensor.insert_slice per slot)
//
// The NumPy reference is unisparse.reference.outlier.compress_outlier (the
// same selection; sums in f32 here, f64 there).
//
//===----------------------------------------------------------------------===//

#include "LoweringUtils.h"
#include "unisparse/Conversion/UnisparseToLinalg/UnisparseToLinalg.h"
#include "unisparse/Dialect/Unisparse/IR/UnisparseOps.h"

#include <limits>

using namespace mlir;
using namespace mlir::unisparse;
using namespace mlir::unisparse::detail;

namespace {
/// A parallel generic over `dims` loops with one reduction: `out` (map
/// `outDims`) combined with `ins` by `body`; the loops missing from
/// `outDims` are reductions.
Value reduceGeneric(ImplicitLocOpBuilder &b, ValueRange ins,
                    ArrayRef<SmallVector<unsigned>> inDims, ValueRange outs,
                    ArrayRef<unsigned> outDims, unsigned dims,
                    function_ref<void(ImplicitLocOpBuilder &, ValueRange)> body,
                    unsigned result = 0) {
  MLIRContext *ctx = b.getContext();
  SmallVector<AffineMap> maps;
  for (ArrayRef<unsigned> d : inDims)
    maps.push_back(dimsMap(ctx, dims, d));
  for (size_t i = 0; i < outs.size(); ++i)
    maps.push_back(dimsMap(ctx, dims, outDims));
  SmallVector<utils::IteratorType> its(dims, utils::IteratorType::reduction);
  for (unsigned d : outDims)
    its[d] = utils::IteratorType::parallel;
  return linalg::GenericOp::create(
             b, ValueRange(outs).getTypes(), ins, outs, maps, its,
             [&](OpBuilder &nb, Location loc, ValueRange args) {
               ImplicitLocOpBuilder lb(loc, nb);
               body(lb, args);
             })
      .getResult(result);
}

struct OutlierCompressToLinalg : OpRewritePattern<CompressOp> {
  using OpRewritePattern::OpRewritePattern;

  LogicalResult matchAndRewrite(CompressOp op,
                                PatternRewriter &rewriter) const override {
    if (op.getPooling() != Pooling::outlier || !op.hasPureTensorSemantics())
      return failure();
    ImplicitLocOpBuilder b(op.getLoc(), rewriter);
    Type f32 = b.getF32Type(), idxT = b.getIndexType();
    int64_t c = op.getSeqFactor(), r = op.getOutliers(), hot = op.getHot();
    float negInf = -std::numeric_limits<float>::infinity();
    SmallVector<OpFoldResult> out =
        tensor::getMixedSizes(b, b.getLoc(), op.getInit());
    OpFoldResult bsz = out[0], groups = out[1], comps = out[2], dim = out[4];
    OpFoldResult seq = tensor::getMixedSize(b, b.getLoc(), op.getInput(), 2);
    Value seqV = toValue(b, seq);
    Value zero = arith::ConstantOp::create(b, b.getF32FloatAttr(0.0f));
    auto zeros = [&](ArrayRef<OpFoldResult> sizes) {
      return filledTensor(b, sizes, f32, b.getF32FloatAttr(0.0f));
    };
    auto add = [](ImplicitLocOpBuilder &lb, Value acc, Value v) {
      return arith::AddFOp::create(lb, acc, v).getResult();
    };
    // The mean over dim 2 of a [B, G, n, D] tensor of n tokens.
    auto meanOverTokens = [&](Value x, OpFoldResult n) {
      Value sums = reduceGeneric(
          b, {x}, {{0, 1, 2, 3}}, {zeros({bsz, groups, dim})}, {0, 1, 3}, 4,
          [&](ImplicitLocOpBuilder &lb, ValueRange a) {
            linalg::YieldOp::create(lb, add(lb, a[1], a[0]));
          });
      Value nF = arith::SIToFPOp::create(
          b, f32, arith::IndexCastOp::create(b, b.getI64Type(), toValue(b, n)));
      auto id = AffineMap::getMultiDimIdentityMap(3, b.getContext());
      return linalg::GenericOp::create(
                 b, TypeRange{sums.getType()}, ValueRange{}, ValueRange{sums},
                 ArrayRef<AffineMap>{id}, iterators(3, 0),
                 [&](OpBuilder &nb, Location loc, ValueRange a) {
                   linalg::YieldOp::create(
                       nb, loc,
                       arith::DivFOp::create(nb, loc, a[0], nF).getResult());
                 })
          .getResult(0);
    };

    Value x = pooledHeads(b, op.getInput(), op.getHeadFactorAttr(),
                          op.getKvGroupAttr(), {bsz, groups, seq, dim});
    Value center = meanOverTokens(x, seq);
    // (b, g, n, d), d reduced: |x - center|^2 and x . probe.
    auto perToken = [&](Value v, bool squaredDistance) {
      return reduceGeneric(
          b, {x, v}, {{0, 1, 2, 3}, {0, 1, 3}}, {zeros({bsz, groups, seq})},
          {0, 1, 2}, 4, [&](ImplicitLocOpBuilder &lb, ValueRange a) {
            Value term =
                squaredDistance ? arith::SubFOp::create(lb, a[0], a[1]) : a[0];
            Value prod =
                arith::MulFOp::create(lb, term, squaredDistance ? term : a[1]);
            linalg::YieldOp::create(lb, add(lb, a[2], prod));
          });
    };
    Value score = perToken(center, /*squaredDistance=*/true);
    Value heat;
    if (hot > 0) {
      Value queries = op.getQueries();
      OpFoldResult qSeq = tensor::getMixedSize(b, b.getLoc(), queries, 2);
      Value probe = meanOverTokens(
          pooledHeads(b, queries, op.getHeadFactorAttr(),
                      b.getI64IntegerAttr(1), {bsz, groups, qSeq, dim}),
          qSeq);
      heat = perToken(probe, /*squaredDistance=*/false);
    }

    // Zero-padded to T * c tokens, viewed as [B, G, T, c(, D)].
    OpFoldResult padded = affine::makeComposedFoldedAffineApply(
        b, b.getLoc(), getAffineSymbolExpr(0, b.getContext()) * c, {comps});
    auto slotsOf = [&](Value v) {
      auto sizes = tensor::getMixedSizes(b, b.getLoc(), v);
      sizes[2] = padded;
      Value p = insertDim(b, v, zeros(sizes), 2, b.getIndexAttr(0));
      return expandDim(b, p, 2, {comps, b.getIndexAttr(c)});
    };
    Value xs = slotsOf(x), scores = slotsOf(score);
    Value heats = hot > 0 ? slotsOf(heat) : Value();
    // Slot `a` (loop dim) of composite `t` (loop dim) holds a token.
    auto real = [&](ImplicitLocOpBuilder &lb, unsigned tDim, unsigned aDim) {
      Value tok = arith::AddIOp::create(
          lb,
          arith::MulIOp::create(lb, linalg::IndexOp::create(lb, tDim),
                                arith::ConstantIndexOp::create(lb, c)),
          linalg::IndexOp::create(lb, aDim));
      return arith::CmpIOp::create(lb, arith::CmpIPredicate::slt, tok, seqV)
          .getResult();
    };
    // Slot `a` is none of `taken` (the leading block arguments).
    auto free = [&](ImplicitLocOpBuilder &lb, Value a, ValueRange taken) {
      Value ok = arith::ConstantOp::create(lb, lb.getBoolAttr(true));
      for (Value t : taken)
        ok = arith::AndIOp::create(
            lb, ok, arith::CmpIOp::create(lb, arith::CmpIPredicate::ne, a, t));
      return ok;
    };

    // The outliers, one reduction over the slots each: (b, g, t, a).
    SmallVector<OpFoldResult> perComp = {bsz, groups, comps};
    SmallVector<Value> idx;
    for (int64_t i = 0; i < r; ++i) {
      SmallVector<Value> ins = {i < hot ? heats : scores};
      ins.append(idx);
      MLIRContext *ctx = b.getContext();
      SmallVector<AffineMap> maps = {dimsMap(ctx, 4, {0, 1, 2, 3})};
      maps.append(idx.size() + 2, dimsMap(ctx, 4, {0, 1, 2}));
      Value best = filledTensor(b, perComp, f32, b.getF32FloatAttr(negInf));
      Value none = filledTensor(b, perComp, idxT, b.getIndexAttr(c));
      auto generic = linalg::GenericOp::create(
          b, TypeRange{best.getType(), none.getType()}, ins,
          ValueRange{best, none}, maps, iterators(3, 1),
          [&](OpBuilder &nb, Location loc, ValueRange a) {
            ImplicitLocOpBuilder lb(loc, nb);
            Value slot = linalg::IndexOp::create(lb, 3);
            Value v = a[0], curBest = a[a.size() - 2], curIdx = a.back();
            Value ok = arith::AndIOp::create(
                lb, real(lb, 2, 3), free(lb, slot, a.slice(1, a.size() - 3)));
            Value better = arith::CmpFOp::create(lb, arith::CmpFPredicate::OGT,
                                                 v, curBest);
            Value tie = arith::AndIOp::create(
                lb,
                arith::CmpFOp::create(lb, arith::CmpFPredicate::OEQ, v,
                                      curBest),
                arith::CmpIOp::create(lb, arith::CmpIPredicate::slt, slot,
                                      curIdx));
            Value take = arith::AndIOp::create(
                lb, ok, arith::OrIOp::create(lb, better, tie));
            linalg::YieldOp::create(
                lb,
                ValueRange{arith::SelectOp::create(lb, take, v, curBest),
                           arith::SelectOp::create(lb, take, slot, curIdx)});
          });
      idx.push_back(generic.getResult(1));
    }

    // The rest: its token count (or, when empty, the composite's), then its
    // mean and spread: (b, g, t, d, a), a reduced.
    auto restWeight = [&](ImplicitLocOpBuilder &lb, ValueRange taken,
                          Value anyRest) {
      Value slot = linalg::IndexOp::create(lb, 4);
      Value isReal = real(lb, 2, 4);
      Value rest = arith::AndIOp::create(lb, isReal, free(lb, slot, taken));
      return arith::SelectOp::create(lb, anyRest, rest, isReal).getResult();
    };
    // (b, g, t, a), a reduced; the slot view gives the loop its range.
    SmallVector<Value> countIns = {scores};
    countIns.append(idx);
    SmallVector<SmallVector<unsigned>> countDims(countIns.size(), {0, 1, 2});
    countDims[0] = {0, 1, 2, 3};
    Value restCount = reduceGeneric(
        b, countIns, countDims, {zeros(perComp)}, {0, 1, 2}, 4,
        [&](ImplicitLocOpBuilder &lb, ValueRange a) {
          Value slot = linalg::IndexOp::create(lb, 3);
          Value rest = arith::AndIOp::create(
              lb, real(lb, 2, 3), free(lb, slot, a.slice(1, a.size() - 2)));
          Value one = arith::ConstantOp::create(lb, lb.getF32FloatAttr(1.0f));
          linalg::YieldOp::create(
              lb,
              add(lb, a.back(), arith::SelectOp::create(lb, rest, one, zero)));
        });
    // Tokens of the composite: min(c, N - t * c).
    Value count = reduceGeneric(
        b, {restCount}, {{0, 1, 2}}, {zeros(perComp)}, {0, 1, 2}, 3,
        [&](ImplicitLocOpBuilder &lb, ValueRange a) {
          Value t = linalg::IndexOp::create(lb, 2);
          Value cV = arith::ConstantIndexOp::create(lb, c);
          Value left =
              arith::SubIOp::create(lb, seqV, arith::MulIOp::create(lb, t, cV));
          Value n = arith::MinSIOp::create(lb, left, cV);
          Value nF = arith::SIToFPOp::create(
              lb, lb.getF32Type(),
              arith::IndexCastOp::create(lb, lb.getI64Type(), n));
          Value anyRest =
              arith::CmpFOp::create(lb, arith::CmpFPredicate::OGT, a[0], zero);
          linalg::YieldOp::create(
              lb, arith::SelectOp::create(lb, anyRest, a[0], nF).getResult());
        });
    // Sums over the rest's slots of f(x, mean) (mean: null for the sum).
    auto overRest = [&](Value mean) {
      SmallVector<Value> ins = {xs, restCount};
      SmallVector<SmallVector<unsigned>> dims = {{0, 1, 2, 4, 3}, {0, 1, 2}};
      if (mean) {
        ins.push_back(mean);
        dims.push_back({0, 1, 2, 3});
      }
      ins.append(idx);
      dims.append(idx.size(), {0, 1, 2});
      unsigned first = mean ? 3 : 2;
      return reduceGeneric(
          b, ins, dims, {zeros({bsz, groups, comps, dim})}, {0, 1, 2, 3}, 5,
          [&](ImplicitLocOpBuilder &lb, ValueRange a) {
            Value anyRest = arith::CmpFOp::create(lb, arith::CmpFPredicate::OGT,
                                                  a[1], zero);
            Value w = restWeight(lb, a.slice(first, idx.size()), anyRest);
            Value v = a[0];
            if (mean) {
              Value dv = arith::SubFOp::create(lb, v, a[2]);
              v = arith::MulFOp::create(lb, dv, dv);
            }
            linalg::YieldOp::create(
                lb, add(lb, a.back(), arith::SelectOp::create(lb, w, v, zero)));
          });
    };
    auto divide = [&](Value sums) {
      return reduceGeneric(
          b, {count}, {{0, 1, 2}}, {sums}, {0, 1, 2, 3}, 4,
          [&](ImplicitLocOpBuilder &lb, ValueRange a) {
            linalg::YieldOp::create(
                lb, arith::DivFOp::create(lb, a[1], a[0]).getResult());
          });
    };
    Value mean = divide(overRest(Value()));

    // The result, slot by slot.
    Value result = op.getInit();
    auto put = [&](Value slot, int64_t s) {
      SmallVector<OpFoldResult> offsets(5, b.getIndexAttr(0));
      offsets[3] = b.getIndexAttr(s);
      SmallVector<OpFoldResult> sizes = {bsz, groups, comps, b.getIndexAttr(1),
                                         dim};
      result = tensor::InsertSliceOp::create(
          b, slot, result, offsets, sizes,
          SmallVector<OpFoldResult>(5, b.getIndexAttr(1)));
    };
    put(mean, 0);
    for (int64_t i = 0; i < r; ++i) {
      // (b, g, t, d, a), a reduced: the token at idx_i, or the mean.
      Value token = reduceGeneric(
          b, {xs, idx[i], mean}, {{0, 1, 2, 4, 3}, {0, 1, 2}, {0, 1, 2, 3}},
          {zeros({bsz, groups, comps, dim})}, {0, 1, 2, 3}, 5,
          [&](ImplicitLocOpBuilder &lb, ValueRange a) {
            Value slot = linalg::IndexOp::create(lb, 4);
            Value none =
                arith::CmpIOp::create(lb, arith::CmpIPredicate::eq, a[1],
                                      arith::ConstantIndexOp::create(lb, c));
            Value at =
                arith::CmpIOp::create(lb, arith::CmpIPredicate::eq, slot, a[1]);
            Value first =
                arith::CmpIOp::create(lb, arith::CmpIPredicate::eq, slot,
                                      arith::ConstantIndexOp::create(lb, 0));
            // The mean once (at slot 0) when there is no outlier.
            Value v = arith::SelectOp::create(
                lb, none, arith::SelectOp::create(lb, first, a[2], zero),
                arith::SelectOp::create(lb, at, a[0], zero));
            linalg::YieldOp::create(lb, add(lb, a[3], v));
          });
      put(token, i + 1);
    }
    if (op.getSpread())
      put(divide(overRest(mean)), r + 1);
    rewriter.replaceOp(op, result);
    return success();
  }
};
} // namespace

void mlir::unisparse::populateOutlierCompressToLinalgPatterns(
    RewritePatternSet &patterns) {
  patterns.add<OutlierCompressToLinalg>(patterns.getContext());
}
