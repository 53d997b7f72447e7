//===- Compress.cpp - unisparse.compress -> linalg ------------------------===//
//
// Pooling as reductions over expanded views, so every read is described by an
// indexing map (nothing is read at a computed index, nothing is copied):
//
//   N = Tf * sf + rem   (Tf full composites, then 0 or 1 partial one)
//   full:  input[:, :, 0 : Tf*sf]   -> expand_shape [B, H, Tf, sf, D]
//   tail:  input[:, :, Tf*sf : N]   : [B, H, rem, D], summed into composite
//          Tf (the slice [Tf, T) of the destination has 1 composite when
//          rem > 0 and none when rem = 0; the map has no t dim)
//   each part: linalg.generic summing the (head, token) window into its
//          slice of the zeroed destination; then one elementwise generic
//          divides by the number of real tokens times the heads pooled.
//
// Concat pooling (the antidiagonal estimators' composites) reuses it: the
// heads pooled by a seq_factor = 1 compress, zero-padded, viewed as
// [B, G, T, sf, D] and copied with the slot map a (or sf - 1 - a).
//
// Head pooling: expanded head e = g * hf + j reads source head e / kv_group.
// With c = gcd(hf, kv_group), every source head is replicated r = kv_group / c
// times and groups of s = hf / c replicas are averaged (averaging identical
// copies is a no-op). So:
//   r = 1:        input heads expand to [G, s] and s is a reduction dim;
//   s = 1:        the destination heads expand to [H, r] and r is a broadcast;
//   both > 1:     the broadcast into [H, r], then [H * r] = [G, s] reduced.
//
//===----------------------------------------------------------------------===//

#include "LoweringUtils.h"
#include "unisparse/Conversion/UnisparseToLinalg/UnisparseToLinalg.h"
#include "unisparse/Dialect/Unisparse/IR/UnisparseOps.h"

#include <numeric>

using namespace mlir;
using namespace mlir::unisparse;
using namespace mlir::unisparse::detail;

namespace {
/// outs += the sum of ins over the dims missing from `outDims` (reductions),
/// ins extended to f32. d, the contiguous dim of both, is the innermost loop
/// (a parallel one), so the host vectorizes it; the tokens are still summed
/// in ascending order for every element.
Value sumGeneric(ImplicitLocOpBuilder &b, Value in, Value out, unsigned dims,
                 ArrayRef<unsigned> inDims, ArrayRef<unsigned> outDims) {
  MLIRContext *ctx = b.getContext();
  SmallVector<utils::IteratorType> its(dims, utils::IteratorType::reduction);
  for (unsigned d : outDims)
    its[d] = utils::IteratorType::parallel;
  return linalg::GenericOp::create(
             b, TypeRange{out.getType()}, ValueRange{in}, ValueRange{out},
             ArrayRef<AffineMap>{dimsMap(ctx, dims, inDims),
                                 dimsMap(ctx, dims, outDims)},
             its,
             [&](OpBuilder &nb, Location loc, ValueRange args) {
               Value x = toF32(nb, loc, args[0]);
               linalg::YieldOp::create(
                   nb, loc,
                   arith::AddFOp::create(nb, loc, args[1], x).getResult());
             })
      .getResult(0);
}

} // namespace

Value mlir::unisparse::detail::pooledHeads(ImplicitLocOpBuilder &b, Value input,
                                           IntegerAttr headFactor,
                                           IntegerAttr kvGroup,
                                           ArrayRef<OpFoldResult> sizes) {
  Type f32 = b.getF32Type();
  return CompressOp::create(
             b,
             RankedTensorType::get(llvm::map_to_vector(sizes, staticSize), f32),
             input, /*queries=*/Value(), tensor::EmptyOp::create(b, sizes, f32),
             b.getI64IntegerAttr(1), headFactor, kvGroup,
             PoolingAttr::get(b.getContext(), Pooling::mean),
             b.getI64IntegerAttr(0), b.getI64IntegerAttr(0),
             b.getBoolAttr(false))
      .getResult();
}

namespace {
/// `pooling = concat | concat_reversed`: the heads are pooled by a
/// `compress` with `seq_factor = 1` (lowered by the pattern below), the
/// result is zero-padded to T * sf tokens and viewed as [B, G, T, sf, D], and
/// one elementwise generic copies it into the destination, reading slot
/// sf - 1 - a for slot a when reversed (an indexing map, no computed loads).
struct ConcatCompressToLinalg : OpRewritePattern<CompressOp> {
  using OpRewritePattern::OpRewritePattern;

  LogicalResult matchAndRewrite(CompressOp op,
                                PatternRewriter &rewriter) const override {
    if ((op.getPooling() != Pooling::concat &&
         op.getPooling() != Pooling::concat_reversed) ||
        !op.hasPureTensorSemantics())
      return failure();
    ImplicitLocOpBuilder b(op.getLoc(), rewriter);
    MLIRContext *ctx = op.getContext();
    int64_t sf = op.getSeqFactor();
    Type f32 = b.getF32Type();
    SmallVector<OpFoldResult> outSizes =
        tensor::getMixedSizes(b, b.getLoc(), op.getInit());
    OpFoldResult seq = tensor::getMixedSize(b, b.getLoc(), op.getInput(), 2);
    Value heads = pooledHeads(b, op.getInput(), op.getHeadFactorAttr(),
                              op.getKvGroupAttr(),
                              {outSizes[0], outSizes[1], seq, outSizes[4]});
    OpFoldResult padded = affine::makeComposedFoldedAffineApply(
        b, b.getLoc(), getAffineSymbolExpr(0, ctx) * sf, {outSizes[2]});
    Value zeros =
        filledTensor(b, {outSizes[0], outSizes[1], padded, outSizes[4]}, f32,
                     b.getF32FloatAttr(0.0f));
    Value tokens = insertDim(b, heads, zeros, 2, b.getIndexAttr(0));
    Value view = expandDim(b, tokens, 2, {outSizes[2], b.getIndexAttr(sf)});
    AffineExpr a = getAffineDimExpr(3, ctx);
    AffineMap read = AffineMap::get(
        5, 0,
        {getAffineDimExpr(0, ctx), getAffineDimExpr(1, ctx),
         getAffineDimExpr(2, ctx),
         op.getPooling() == Pooling::concat_reversed ? (sf - 1) - a : a,
         getAffineDimExpr(4, ctx)},
        ctx);
    Value result = linalg::GenericOp::create(
                       b, TypeRange{op.getInit().getType()}, ValueRange{view},
                       ValueRange{op.getInit()},
                       ArrayRef<AffineMap>{
                           read, AffineMap::getMultiDimIdentityMap(5, ctx)},
                       iterators(5, 0),
                       [&](OpBuilder &nb, Location loc, ValueRange args) {
                         linalg::YieldOp::create(
                             nb, loc, fromF32(nb, loc, args[0], args[1]));
                       })
                       .getResult(0);
    rewriter.replaceOp(op, result);
    return success();
  }
};

struct CompressToLinalg : OpRewritePattern<CompressOp> {
  using OpRewritePattern::OpRewritePattern;

  LogicalResult matchAndRewrite(CompressOp op,
                                PatternRewriter &rewriter) const override {
    if (op.getPooling() != Pooling::mean || !op.hasPureTensorSemantics())
      return failure();
    ImplicitLocOpBuilder b(op.getLoc(), rewriter);
    MLIRContext *ctx = op.getContext();
    int64_t sf = op.getSeqFactor(), hf = op.getHeadFactor(),
            kvg = op.getKvGroup();
    int64_t common = std::gcd(hf, kvg);
    int64_t rep = kvg / common, grp = hf / common;
    Value input = op.getInput();
    Type f32 = b.getF32Type();

    OpFoldResult seq = tensor::getMixedSize(b, b.getLoc(), input, 2);
    OpFoldResult heads = tensor::getMixedSize(b, b.getLoc(), input, 1);
    OpFoldResult groups = tensor::getMixedSize(b, b.getLoc(), op.getInit(), 1);
    AffineExpr n = getAffineSymbolExpr(0, ctx);
    auto apply = [&](AffineExpr e) {
      return affine::makeComposedFoldedAffineApply(b, b.getLoc(), e, {seq});
    };
    OpFoldResult full = apply(n.floorDiv(sf));
    OpFoldResult fullTokens = apply(n.floorDiv(sf) * sf);
    OpFoldResult rem = apply(n % sf);
    OpFoldResult partialCount = apply(n.ceilDiv(sf) - n.floorDiv(sf));

    bool replicate = rep > 1 && grp == 1;
    unsigned tDim = replicate ? 3 : 2;

    // Sums of the pooled window of composites [t0, t0 + count), which hold
    // tokens [tok0, tok0 + count * width), into `sums`. The full composites
    // read an expanded view [B, H, T', W, D]; the partial one (count 0 or 1)
    // reads its tokens [B, H, W, D] directly, with no t dim in the map.
    auto pool = [&](Value sums, OpFoldResult t0, OpFoldResult count,
                    OpFoldResult tok0, OpFoldResult width,
                    bool partial) -> Value {
      if (isZeroInteger(count) || isZeroInteger(width))
        return sums;
      OpFoldResult tokens =
          partial ? width
                  : affine::makeComposedFoldedAffineApply(
                        b, b.getLoc(), n * getAffineSymbolExpr(1, ctx),
                        {count, width});
      Value view = sliceDim(b, input, 2, tok0, tokens);
      if (!partial)
        view = expandDim(b, view, 2, {count, width});
      // [B, G, T', D], or [B, H, r, T', D] when replicating.
      Value out = sliceDim(b, sums, tDim, t0, count);
      // Input dims for the loop dims (b, head, [j,] t, w, d) of each form.
      auto in = [&](unsigned bi, unsigned hi, std::optional<unsigned> ji,
                    unsigned ti, unsigned wi, unsigned di) {
        SmallVector<unsigned> dims = {bi, hi};
        if (ji)
          dims.push_back(*ji);
        if (!partial)
          dims.push_back(ti);
        dims.append({wi, di});
        return dims;
      };
      Value pooled;
      if (rep == 1 && grp == 1) {
        // (b, g, t, w, d)
        pooled =
            sumGeneric(b, view, out, 5, in(0, 1, {}, 2, 3, 4), {0, 1, 2, 4});
      } else if (rep == 1) {
        // (b, g, t, j, w, d): input heads [G, s].
        Value v = expandDim(b, view, 1, {groups, b.getIndexAttr(grp)});
        pooled = sumGeneric(b, v, out, 6, in(0, 1, 3, 2, 4, 5), {0, 1, 2, 5});
      } else {
        // (b, h, r, t, w, d): each source head broadcast to its r replicas.
        Value dest;
        if (grp == 1) {
          dest = out; // already [B, H, r, T', D]
        } else {
          SmallVector<OpFoldResult> sizes =
              tensor::getMixedSizes(b, b.getLoc(), out);
          SmallVector<OpFoldResult> tmpSizes = {
              sizes[0], heads, b.getIndexAttr(rep), sizes[2], sizes[3]};
          dest = filledTensor(b, tmpSizes, f32, b.getF32FloatAttr(0.0f));
        }
        Value rep5 = sumGeneric(b, view, dest, 6, in(0, 1, {}, 3, 4, 5),
                                {0, 1, 2, 3, 5});
        if (grp == 1) {
          pooled = rep5;
        } else {
          // (b, g, t, j, d): [H * r] = [G, s].
          Value merged = collapseDims(b, rep5, 1, 2); // [B, H * r, T', D]
          Value v = expandDim(b, merged, 1, {groups, b.getIndexAttr(grp)});
          pooled = sumGeneric(b, v, out, 5, {0, 1, 3, 2, 4}, {0, 1, 2, 4});
        }
      }
      return insertDim(b, pooled, sums, tDim, t0);
    };

    // The sums are f32 whatever the destination's type; a 16-bit
    // destination gets the mean rounded once, at the end.
    Value zero = arith::ConstantOp::create(b, b.getF32FloatAttr(0.0f));
    Value accInit = op.getInit();
    if (!getElementTypeOrSelf(accInit.getType()).isF32())
      accInit = tensor::EmptyOp::create(
          b, tensor::getMixedSizes(b, b.getLoc(), accInit), f32);
    Value sums =
        linalg::FillOp::create(b, ValueRange{zero}, ValueRange{accInit})
            .getResult(0);
    // When each source head is only replicated, the destination is viewed
    // as [B, H, r, T, D] (expanding the whole tensor keeps its layout
    // expandable after bufferization, which a strided slice's is not).
    if (replicate)
      sums = expandDim(b, sums, 1, {heads, b.getIndexAttr(rep)});
    sums = pool(sums, b.getIndexAttr(0), full, b.getIndexAttr(0),
                b.getIndexAttr(sf), /*partial=*/false);
    sums = pool(sums, full, partialCount, fullTokens, rem, /*partial=*/true);
    if (replicate)
      sums = collapseDims(b, sums, 1, 2);

    // Divide by the number of real tokens times the replicas pooled.
    Value seqV = toValue(b, seq);
    auto id4 = AffineMap::getMultiDimIdentityMap(4, ctx);
    // In place over the f32 sums, or from them into a 16-bit destination.
    bool narrow = accInit != op.getInit();
    SmallVector<Value> meanIns;
    if (narrow)
      meanIns.push_back(sums);
    SmallVector<AffineMap> meanMaps(narrow ? 2 : 1, id4);
    Value mean =
        linalg::GenericOp::create(
            b, TypeRange{op.getInit().getType()}, meanIns,
            ValueRange{narrow ? op.getInit() : sums}, meanMaps, iterators(4, 0),
            [&](OpBuilder &nb, Location loc, ValueRange args) {
              ImplicitLocOpBuilder lb(loc, nb);
              Value tIdx = linalg::IndexOp::create(lb, 2);
              Value sfV = arith::ConstantIndexOp::create(lb, sf);
              Value start = arith::MulIOp::create(lb, tIdx, sfV);
              Value rest = arith::SubIOp::create(lb, seqV, start);
              Value real = arith::MinSIOp::create(lb, rest, sfV);
              Value cnt = arith::MulIOp::create(
                  lb, real, arith::ConstantIndexOp::create(lb, grp));
              Value cntI = arith::IndexCastOp::create(lb, lb.getI64Type(), cnt);
              Value cntF = arith::SIToFPOp::create(lb, lb.getF32Type(), cntI);
              Value m = arith::DivFOp::create(lb, args[0], cntF);
              linalg::YieldOp::create(lb,
                                      fromF32(lb, lb.getLoc(), m, args.back()));
            })
            .getResult(0);
    rewriter.replaceOp(op, mean);
    return success();
  }
};
} // namespace

void mlir::unisparse::populateCompressToLinalgPatterns(
    RewritePatternSet &patterns, bool hostLoops) {
  patterns.add<CompressToLinalg, ConcatCompressToLinalg>(patterns.getContext());
  populateOutlierCompressToLinalgPatterns(patterns, hostLoops);
}
