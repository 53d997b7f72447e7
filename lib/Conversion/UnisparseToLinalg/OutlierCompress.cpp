//===- OutlierCompress.cpp - compress {pooling = outlier} -> linalg -------===//
//
// The outlier composites of unisparse.compress as structured ops. Every read
// is an indexing map; the token of an outlier is picked by a masked sum over
// the composite's slots (a == idx), not loaded at a computed index. One
// helper of OutlierCompressLowering per stage:
//
//   pooledHeads    x = heads pooled, one token per composite  [B, G, N, D]
//                  (a mean compress, Compress.cpp)
//   meanOverTokens center = mean over n of x                  [B, G, D]
//   tokenScores    score = sum_d (x - center)^2               [B, G, N]
//                  heat = x . probe, probe = the mean of the  [B, G, N]
//                  pooled queries over their tokens (hot > 0)
//   slotView       x, score, heat zero-padded to T * c tokens and expanded
//                  to [B, G, T, c(, D)]; slot a of composite t is real iff
//                  t * c + a < N (linalg.index in the bodies)
//   pickOutlier    idx_i = for i < r: the real slot, not taken by idx_0 ..
//                  idx_{i-1}, with the largest heat (i < hot) or score
//                  (i >= hot); ties to the lower slot. One reduction over a
//                  with two outputs (best value, its slot); the comparison
//                  is a total order, so the result does not depend on the
//                  reduction's order. c = none (past the tokens).
//   restCounts     the tokens of the rest (the real slots not taken), or of
//                  the whole composite when none is left
//   overRest       sums over the rest's slots of x, or of (x - mean)^2;
//                  divided by the counts: its mean and (spread) its
//                  per-coordinate variance
//   outlierToken   slot i + 1: the token at idx_i (a masked sum over a), or
//                  the mean when idx_i is none
//   the result     slot 0 the mean, slots 1 .. r the outliers, slot r + 1
//                  the spread (tensor.insert_slice per slot; into 16-bit
//                  composites each slot rounded once by a generic)
//
// The sums over a composite's slots (overRest, outlierToken) run over
// ascending slots; on the host (unisparse-to-cpu) as (b, g, t, a, d), the
// slot loop outside the coordinates, so that the loop over d vectorizes
// without reassociating them; the GPU pipeline's loops keep a innermost.
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
/// A generic over `dims` loops: `outs` (map `outDims`) combined with `ins`
/// (maps `inDims`) by `body`; the loops missing from `outDims` are
/// reductions. Returns result `result`.
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

Value addF(ImplicitLocOpBuilder &lb, Value acc, Value v) {
  return arith::AddFOp::create(lb, acc, v).getResult();
}

Value f32Constant(ImplicitLocOpBuilder &lb, float v) {
  return arith::ConstantOp::create(lb, lb.getF32FloatAttr(v));
}

/// `n` (an index) as f32.
Value indexToF32(ImplicitLocOpBuilder &lb, Value n) {
  return arith::SIToFPOp::create(
      lb, lb.getF32Type(), arith::IndexCastOp::create(lb, lb.getI64Type(), n));
}

/// The structured lowering of one outlier compress (see above).
class OutlierCompressLowering {
public:
  OutlierCompressLowering(CompressOp op, ImplicitLocOpBuilder &b,
                          bool hostLoops)
      : op(op), b(b), f32(b.getF32Type()), c(op.getSeqFactor()),
        r(op.getOutliers()), hot(op.getHot()), hostLoops(hostLoops) {
    SmallVector<OpFoldResult> out =
        tensor::getMixedSizes(b, b.getLoc(), op.getInit());
    bsz = out[0];
    groups = out[1];
    comps = out[2];
    dim = out[4];
    seq = tensor::getMixedSize(b, b.getLoc(), op.getInput(), 2);
    seqV = toValue(b, seq);
    perComp = {bsz, groups, comps};
  }

  /// The composites: `init` with every slot written.
  Value lower() {
    Value x = pooledHeads(b, op.getInput(), op.getHeadFactorAttr(),
                          op.getKvGroupAttr(), {bsz, groups, seq, dim});
    Value score = tokenScores(x, meanOverTokens(x, seq), /*distance=*/true);
    Value heat;
    if (hot > 0) {
      Value queries = op.getQueries();
      OpFoldResult qSeq = tensor::getMixedSize(b, b.getLoc(), queries, 2);
      Value probe = meanOverTokens(
          pooledHeads(b, queries, op.getHeadFactorAttr(),
                      b.getI64IntegerAttr(1), {bsz, groups, qSeq, dim}),
          qSeq);
      heat = tokenScores(x, probe, /*distance=*/false);
    }
    Value xs = slotView(x);
    Value scores = slotView(score);
    Value heats = hot > 0 ? slotView(heat) : Value();
    SmallVector<Value> idx;
    for (int64_t i = 0; i < r; ++i)
      idx.push_back(pickOutlier(i < hot ? heats : scores, idx));
    Value restCount = restSlots(scores, idx);
    Value count = restCounts(restCount);
    Value mean = divide(overRest(xs, restCount, idx, Value()), count);

    Value result = op.getInit();
    result = putSlot(result, mean, 0);
    for (int64_t i = 0; i < r; ++i)
      result = putSlot(result, outlierToken(xs, idx[i], mean), i + 1);
    if (op.getSpread())
      result = putSlot(
          result, divide(overRest(xs, restCount, idx, mean), count), r + 1);
    return result;
  }

private:
  CompressOp op;
  ImplicitLocOpBuilder &b;
  Type f32;
  int64_t c, r, hot;
  /// The host's loop order for the sums over slots (see slotLoops).
  bool hostLoops;
  OpFoldResult bsz, groups, comps, dim, seq;
  Value seqV;
  SmallVector<OpFoldResult> perComp;
  static constexpr float kNegInf = -std::numeric_limits<float>::infinity();

  Value zeros(ArrayRef<OpFoldResult> sizes) {
    return filledTensor(b, sizes, f32, b.getF32FloatAttr(0.0f));
  }

  /// The mean over dim 2 of `x: [B, G, n, D]` (`n` tokens): [B, G, D].
  Value meanOverTokens(Value x, OpFoldResult n) {
    Value sums = reduceGeneric(
        b, {x}, {{0, 1, 2, 3}}, {zeros({bsz, groups, dim})}, {0, 1, 3}, 4,
        [&](ImplicitLocOpBuilder &lb, ValueRange a) {
          linalg::YieldOp::create(lb, addF(lb, a[1], a[0]));
        });
    Value nF = indexToF32(b, toValue(b, n));
    return reduceGeneric(b, {}, {}, {sums}, {0, 1, 2}, 3,
                         [&](ImplicitLocOpBuilder &lb, ValueRange a) {
                           linalg::YieldOp::create(
                               lb,
                               arith::DivFOp::create(lb, a[0], nF).getResult());
                         });
  }

  /// Per token, d reduced ((b, g, n, d)): |x - v|^2 (`distance`) or x . v,
  /// for `v: [B, G, D]`.
  Value tokenScores(Value x, Value v, bool distance) {
    return reduceGeneric(
        b, {x, v}, {{0, 1, 2, 3}, {0, 1, 3}}, {zeros({bsz, groups, seq})},
        {0, 1, 2}, 4, [&](ImplicitLocOpBuilder &lb, ValueRange a) {
          Value term = distance ? arith::SubFOp::create(lb, a[0], a[1]) : a[0];
          Value prod = arith::MulFOp::create(lb, term, distance ? term : a[1]);
          linalg::YieldOp::create(lb, addF(lb, a[2], prod));
        });
  }

  /// `v: [B, G, N(, D)]` zero-padded to T * c tokens and viewed as
  /// [B, G, T, c(, D)].
  Value slotView(Value v) {
    OpFoldResult padded = affine::makeComposedFoldedAffineApply(
        b, b.getLoc(), getAffineSymbolExpr(0, b.getContext()) * c, {comps});
    auto sizes = tensor::getMixedSizes(b, b.getLoc(), v);
    sizes[2] = padded;
    Value p = insertDim(b, v, zeros(sizes), 2, b.getIndexAttr(0));
    return expandDim(b, p, 2, {comps, b.getIndexAttr(c)});
  }

  /// Slot `a` (loop dim) of composite `t` (loop dim) holds a token.
  Value real(ImplicitLocOpBuilder &lb, unsigned tDim, unsigned aDim) const {
    Value tok = arith::AddIOp::create(
        lb,
        arith::MulIOp::create(lb, linalg::IndexOp::create(lb, tDim),
                              arith::ConstantIndexOp::create(lb, c)),
        linalg::IndexOp::create(lb, aDim));
    return arith::CmpIOp::create(lb, arith::CmpIPredicate::slt, tok, seqV)
        .getResult();
  }

  /// Slot `a` is none of `taken` (slot indices).
  static Value free(ImplicitLocOpBuilder &lb, Value a, ValueRange taken) {
    Value ok = arith::ConstantOp::create(lb, lb.getBoolAttr(true));
    for (Value t : taken)
      ok = arith::AndIOp::create(
          lb, ok, arith::CmpIOp::create(lb, arith::CmpIPredicate::ne, a, t));
    return ok;
  }

  /// The next outlier of every composite ((b, g, t, a), a reduced): the
  /// real slot, none of `taken`, with the largest `value`, ties to the
  /// lower slot; c where there is none. [B, G, T] of index.
  Value pickOutlier(Value values, ArrayRef<Value> taken) {
    MLIRContext *ctx = b.getContext();
    SmallVector<Value> ins = {values};
    ins.append(taken.begin(), taken.end());
    SmallVector<AffineMap> maps = {dimsMap(ctx, 4, {0, 1, 2, 3})};
    maps.append(taken.size() + 2, dimsMap(ctx, 4, {0, 1, 2}));
    Value best = filledTensor(b, perComp, f32, b.getF32FloatAttr(kNegInf));
    Value none = filledTensor(b, perComp, b.getIndexType(), b.getIndexAttr(c));
    auto generic = linalg::GenericOp::create(
        b, TypeRange{best.getType(), none.getType()}, ins,
        ValueRange{best, none}, maps, iterators(3, 1),
        [&](OpBuilder &nb, Location loc, ValueRange a) {
          ImplicitLocOpBuilder lb(loc, nb);
          Value slot = linalg::IndexOp::create(lb, 3);
          Value v = a[0], curBest = a[a.size() - 2], curIdx = a.back();
          Value ok = arith::AndIOp::create(
              lb, real(lb, 2, 3), free(lb, slot, a.slice(1, a.size() - 3)));
          Value better =
              arith::CmpFOp::create(lb, arith::CmpFPredicate::OGT, v, curBest);
          Value tie = arith::AndIOp::create(
              lb,
              arith::CmpFOp::create(lb, arith::CmpFPredicate::OEQ, v, curBest),
              arith::CmpIOp::create(lb, arith::CmpIPredicate::slt, slot,
                                    curIdx));
          Value take = arith::AndIOp::create(
              lb, ok, arith::OrIOp::create(lb, better, tie));
          linalg::YieldOp::create(
              lb, ValueRange{arith::SelectOp::create(lb, take, v, curBest),
                             arith::SelectOp::create(lb, take, slot, curIdx)});
        });
    return generic.getResult(1);
  }

  /// The number of real slots that no outlier took ((b, g, t, a), a
  /// reduced; the slot view `scores` gives the loop its range), f32.
  Value restSlots(Value scores, ArrayRef<Value> idx) {
    SmallVector<Value> ins = {scores};
    ins.append(idx.begin(), idx.end());
    SmallVector<SmallVector<unsigned>> dims(ins.size(), {0, 1, 2});
    dims[0] = {0, 1, 2, 3};
    return reduceGeneric(
        b, ins, dims, {zeros(perComp)}, {0, 1, 2}, 4,
        [&](ImplicitLocOpBuilder &lb, ValueRange a) {
          Value slot = linalg::IndexOp::create(lb, 3);
          Value rest = arith::AndIOp::create(
              lb, real(lb, 2, 3), free(lb, slot, a.slice(1, a.size() - 2)));
          linalg::YieldOp::create(
              lb, addF(lb, a.back(),
                       arith::SelectOp::create(lb, rest, f32Constant(lb, 1.0f),
                                               f32Constant(lb, 0.0f))));
        });
  }

  /// The tokens the rest averages: `restCount`, or when it is 0 the
  /// composite's tokens min(c, N - t * c).
  Value restCounts(Value restCount) {
    return reduceGeneric(
        b, {restCount}, {{0, 1, 2}}, {zeros(perComp)}, {0, 1, 2}, 3,
        [&](ImplicitLocOpBuilder &lb, ValueRange a) {
          Value t = linalg::IndexOp::create(lb, 2);
          Value cV = arith::ConstantIndexOp::create(lb, c);
          Value left =
              arith::SubIOp::create(lb, seqV, arith::MulIOp::create(lb, t, cV));
          Value nF = indexToF32(lb, arith::MinSIOp::create(lb, left, cV));
          Value anyRest = arith::CmpFOp::create(lb, arith::CmpFPredicate::OGT,
                                                a[0], f32Constant(lb, 0.0f));
          linalg::YieldOp::create(
              lb, arith::SelectOp::create(lb, anyRest, a[0], nF).getResult());
        });
  }

  /// The loops of a sum over the slots a of [B, G, T, D] values: on the
  /// GPU (b, g, t, d, a), a innermost; on the host (b, g, t, a, d), a
  /// reduced outside the coordinates d, so that the loop over d (contiguous
  /// in xs) vectorizes without reassociating the sum, each element summed
  /// over ascending a as before. The loop dims of a and d, and the dims of
  /// xs [B, G, T, c, D] and of a [B, G, T, D] value.
  struct SlotLoops {
    unsigned a, d;
    SmallVector<unsigned> xs, perCoord;
  };
  SlotLoops slotLoops() const {
    if (hostLoops)
      return {3, 4, {0, 1, 2, 3, 4}, {0, 1, 2, 4}};
    return {4, 3, {0, 1, 2, 4, 3}, {0, 1, 2, 3}};
  }

  /// Sums over the rest's slots ((b, g, t, d, a) or (b, g, t, a, d): a
  /// reduced, slotLoops) of x, or with `mean` of (x - mean)^2:
  /// [B, G, T, D]. The rest is the real slots no outlier took, or every
  /// real slot when there is none (restCount = 0).
  Value overRest(Value xs, Value restCount, ArrayRef<Value> idx, Value mean) {
    SlotLoops loops = slotLoops();
    SmallVector<Value> ins = {xs, restCount};
    SmallVector<SmallVector<unsigned>> dims = {loops.xs, {0, 1, 2}};
    if (mean) {
      ins.push_back(mean);
      dims.push_back(loops.perCoord);
    }
    ins.append(idx.begin(), idx.end());
    dims.append(idx.size(), {0, 1, 2});
    unsigned first = mean ? 3 : 2;
    size_t taken = idx.size();
    return reduceGeneric(
        b, ins, dims, {zeros({bsz, groups, comps, dim})}, loops.perCoord, 5,
        [&](ImplicitLocOpBuilder &lb, ValueRange a) {
          Value slot = linalg::IndexOp::create(lb, loops.a);
          Value isReal = real(lb, 2, loops.a);
          Value anyRest = arith::CmpFOp::create(lb, arith::CmpFPredicate::OGT,
                                                a[1], f32Constant(lb, 0.0f));
          Value rest = arith::AndIOp::create(
              lb, isReal, free(lb, slot, a.slice(first, taken)));
          Value w = arith::SelectOp::create(lb, anyRest, rest, isReal);
          Value v = a[0];
          if (mean) {
            Value dv = arith::SubFOp::create(lb, v, a[2]);
            v = arith::MulFOp::create(lb, dv, dv);
          }
          linalg::YieldOp::create(
              lb,
              addF(lb, a.back(),
                   arith::SelectOp::create(lb, w, v, f32Constant(lb, 0.0f))));
        });
  }

  /// `sums / count` per composite, in place.
  Value divide(Value sums, Value count) {
    return reduceGeneric(
        b, {count}, {{0, 1, 2}}, {sums}, {0, 1, 2, 3}, 4,
        [&](ImplicitLocOpBuilder &lb, ValueRange a) {
          linalg::YieldOp::create(
              lb, arith::DivFOp::create(lb, a[1], a[0]).getResult());
        });
  }

  /// The token at slot `idx` of each composite (a reduced, slotLoops: a
  /// masked sum over the slots), or `mean` where `idx` is none (c).
  Value outlierToken(Value xs, Value idx, Value mean) {
    SlotLoops loops = slotLoops();
    return reduceGeneric(
        b, {xs, idx, mean}, {loops.xs, {0, 1, 2}, loops.perCoord},
        {zeros({bsz, groups, comps, dim})}, loops.perCoord, 5,
        [&](ImplicitLocOpBuilder &lb, ValueRange a) {
          Value slot = linalg::IndexOp::create(lb, loops.a);
          Value zero = f32Constant(lb, 0.0f);
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
          linalg::YieldOp::create(lb, addF(lb, a[3], v));
        });
  }

  /// `slot: [B, G, T, D]` inserted as slot `s` of `result` (rounded to
  /// its element type when that is not f32).
  Value putSlot(Value result, Value slot, int64_t s) {
    Type element = getElementTypeOrSelf(result.getType());
    if (element != f32) {
      SmallVector<OpFoldResult> sizes = {bsz, groups, comps, dim};
      Value narrow = tensor::EmptyOp::create(b, sizes, element);
      slot = reduceGeneric(b, {slot}, {{0, 1, 2, 3}}, {narrow}, {0, 1, 2, 3}, 4,
                           [&](ImplicitLocOpBuilder &lb, ValueRange a) {
                             linalg::YieldOp::create(
                                 lb, fromF32(lb, lb.getLoc(), a[0], a[1]));
                           });
    }
    SmallVector<OpFoldResult> offsets(5, b.getIndexAttr(0));
    offsets[3] = b.getIndexAttr(s);
    SmallVector<OpFoldResult> sizes = {bsz, groups, comps, b.getIndexAttr(1),
                                       dim};
    return tensor::InsertSliceOp::create(
        b, slot, result, offsets, sizes,
        SmallVector<OpFoldResult>(5, b.getIndexAttr(1)));
  }
};

struct OutlierCompressToLinalg : OpRewritePattern<CompressOp> {
  OutlierCompressToLinalg(MLIRContext *ctx, bool hostLoops)
      : OpRewritePattern(ctx), hostLoops(hostLoops) {}
  bool hostLoops;

  LogicalResult matchAndRewrite(CompressOp op,
                                PatternRewriter &rewriter) const override {
    if (op.getPooling() != Pooling::outlier || !op.hasPureTensorSemantics())
      return failure();
    ImplicitLocOpBuilder b(op.getLoc(), rewriter);
    rewriter.replaceOp(op, OutlierCompressLowering(op, b, hostLoops).lower());
    return success();
  }
};
} // namespace

void mlir::unisparse::populateOutlierCompressToLinalgPatterns(
    RewritePatternSet &patterns, bool hostLoops) {
  patterns.add<OutlierCompressToLinalg>(patterns.getContext(), hostLoops);
}
