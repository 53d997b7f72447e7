//===- BlockScore.cpp - unisparse.block_score -> linalg -------------------===//
//
//   %l   = linalg.generic (b, g, t, u, d): sum_d qc[b,g,t,d] * kc[b,g,u,d]
//   %max = linalg.generic (b, g, t, u): max_u of masked(scale * l)
//   %sum = linalg.generic (b, g, t, u): sum_u of exp(masked(scale * l) - max)
//   %a   = linalg.generic (b, g, t, u): exp(masked(scale * l) - max) / sum
//   %ap  = tensor.pad %a to whole blocks (zeros)
//   %s   = linalg.generic (b, g, I, J, i, j): sum of ap[b, g, I*rq+i, J*rk+j]
//
// with rq = block / c_q, rk = block / c_k composites per block, and the
// causal mask "key composite u is visible from query composite t iff
// u * c_k <= (t + 1) * c_q - 1". Masked entries contribute exactly 0.
// This CPU form materialises the composite map; the GPU pipeline tiles it.
//
//===----------------------------------------------------------------------===//

#include "LoweringUtils.h"
#include "unisparse/Conversion/UnisparseToLinalg/UnisparseToLinalg.h"
#include "unisparse/Dialect/Unisparse/IR/UnisparseOps.h"

#include "mlir/Dialect/Math/IR/Math.h"

#include <limits>

using namespace mlir;
using namespace mlir::unisparse;
using namespace mlir::unisparse::detail;

namespace {
/// i1: key composite `u` is masked for query composite `t`.
Value isMasked(ImplicitLocOpBuilder &b, bool causal, int64_t cq, int64_t ck) {
  if (!causal)
    return arith::ConstantIntOp::create(b, 0, 1);
  Value t = linalg::IndexOp::create(b, 2);
  Value u = linalg::IndexOp::create(b, 3);
  Value keyFirst =
      arith::MulIOp::create(b, u, arith::ConstantIndexOp::create(b, ck));
  Value one = arith::ConstantIndexOp::create(b, 1);
  Value queryLast = arith::SubIOp::create(
      b,
      arith::MulIOp::create(b, arith::AddIOp::create(b, t, one),
                            arith::ConstantIndexOp::create(b, cq)),
      one);
  return arith::CmpIOp::create(b, arith::CmpIPredicate::sgt, keyFirst,
                               queryLast);
}

struct BlockScoreToLinalg : OpRewritePattern<BlockScoreOp> {
  using OpRewritePattern::OpRewritePattern;

  LogicalResult matchAndRewrite(BlockScoreOp op,
                                PatternRewriter &rewriter) const override {
    ImplicitLocOpBuilder b(op.getLoc(), rewriter);
    MLIRContext *ctx = op.getContext();
    Type f32 = b.getF32Type();
    int64_t block = op.getBlock(), cq = op.getCQ(), ck = op.getCK();
    int64_t rq = block / cq, rk = block / ck;
    bool causal = op.getCausal();

    SmallVector<OpFoldResult> qSizes =
        tensor::getMixedSizes(b, b.getLoc(), op.getQc());
    SmallVector<OpFoldResult> kSizes =
        tensor::getMixedSizes(b, b.getLoc(), op.getKc());
    SmallVector<OpFoldResult> sSizes =
        tensor::getMixedSizes(b, b.getLoc(), op.getInit());
    Value scale = softmaxScale(b, op.getScale().convertToDouble(), qSizes[3]);

    // Composite logits.
    SmallVector<OpFoldResult> mapSizes = {qSizes[0], qSizes[1], qSizes[2],
                                          kSizes[2]};
    Value zeros = filledTensor(b, mapSizes, f32, b.getF32FloatAttr(0.0f));
    AffineExpr bb, g, t, u, d;
    bindDims(ctx, bb, g, t, u, d);
    Value logits =
        linalg::GenericOp::create(
            b, TypeRange{zeros.getType()}, ValueRange{op.getQc(), op.getKc()},
            ValueRange{zeros},
            ArrayRef<AffineMap>{AffineMap::get(5, 0, {bb, g, t, d}, ctx),
                                AffineMap::get(5, 0, {bb, g, u, d}, ctx),
                                AffineMap::get(5, 0, {bb, g, t, u}, ctx)},
            iterators(4, 1),
            [&](OpBuilder &nb, Location loc, ValueRange args) {
              Value p = arith::MulFOp::create(nb, loc, args[0], args[1]);
              linalg::YieldOp::create(
                  nb, loc, arith::AddFOp::create(nb, loc, args[2], p).getResult());
            })
            .getResult(0);

    float negInf = -std::numeric_limits<float>::infinity();
    auto id4 = AffineMap::getMultiDimIdentityMap(4, ctx);
    auto rowMap = AffineMap::get(4, 0, {bb, g, t}, ctx);
    SmallVector<OpFoldResult> rowSizes = {qSizes[0], qSizes[1], qSizes[2]};
    // scale * logit, or -inf where masked.
    auto maskedLogit = [&](ImplicitLocOpBuilder &lb, Value logit) {
      Value scaled = arith::MulFOp::create(lb, logit, scale);
      Value ninf = arith::ConstantOp::create(lb, lb.getF32FloatAttr(negInf));
      return arith::SelectOp::create(lb, isMasked(lb, causal, cq, ck), ninf,
                                     scaled)
          .getResult();
    };

    // Row max.
    Value maxInit = filledTensor(b, rowSizes, f32, b.getF32FloatAttr(negInf));
    Value rowMax =
        linalg::GenericOp::create(
            b, TypeRange{maxInit.getType()}, ValueRange{logits},
            ValueRange{maxInit}, ArrayRef<AffineMap>{id4, rowMap},
            iterators(3, 1),
            [&](OpBuilder &nb, Location loc, ValueRange args) {
              ImplicitLocOpBuilder lb(loc, nb);
              Value x = maskedLogit(lb, args[0]);
              linalg::YieldOp::create(lb, arith::MaximumFOp::create(lb, args[1], x)
                                              .getResult());
            })
            .getResult(0);

    // exp(x - max) (masked entries give exp(-inf) = 0).
    auto expShifted = [&](ImplicitLocOpBuilder &lb, Value logit, Value max) {
      Value x = maskedLogit(lb, logit);
      return math::ExpOp::create(lb, arith::SubFOp::create(lb, x, max))
          .getResult();
    };

    // Row sum.
    Value sumInit = filledTensor(b, rowSizes, f32, b.getF32FloatAttr(0.0f));
    Value rowSum =
        linalg::GenericOp::create(
            b, TypeRange{sumInit.getType()}, ValueRange{logits, rowMax},
            ValueRange{sumInit}, ArrayRef<AffineMap>{id4, rowMap, rowMap},
            iterators(3, 1),
            [&](OpBuilder &nb, Location loc, ValueRange args) {
              ImplicitLocOpBuilder lb(loc, nb);
              Value e = expShifted(lb, args[0], args[1]);
              linalg::YieldOp::create(lb,
                                      arith::AddFOp::create(lb, args[2], e)
                                          .getResult());
            })
            .getResult(0);

    // Normalised composite attention map.
    Value probs =
        linalg::GenericOp::create(
            b, TypeRange{logits.getType()}, ValueRange{logits, rowMax, rowSum},
            ValueRange{tensor::EmptyOp::create(b, mapSizes, f32)},
            ArrayRef<AffineMap>{id4, rowMap, rowMap, id4}, iterators(4, 0),
            [&](OpBuilder &nb, Location loc, ValueRange args) {
              ImplicitLocOpBuilder lb(loc, nb);
              Value e = expShifted(lb, args[0], args[1]);
              linalg::YieldOp::create(lb,
                                      arith::DivFOp::create(lb, e, args[2])
                                          .getResult());
            })
            .getResult(0);

    // Pad to whole blocks and sum each block.
    Value padded = padHigh(b, probs,
                           {qSizes[0], qSizes[1], mul(b, sSizes[2], rq),
                            mul(b, sSizes[3], rk)});
    Value window = tensor::EmptyOp::create(
        b, ArrayRef<OpFoldResult>{b.getIndexAttr(rq), b.getIndexAttr(rk)}, f32);
    Value blockZeros =
        linalg::FillOp::create(
            b, arith::ConstantOp::create(b, b.getF32FloatAttr(0.0f)).getResult(),
            op.getInit())
            .getResult(0);
    AffineExpr I, J, i, j;
    bindDims(ctx, bb, g, I, J, i, j);
    Value scores =
        linalg::GenericOp::create(
            b, TypeRange{op.getInit().getType()}, ValueRange{padded, window},
            ValueRange{blockZeros},
            ArrayRef<AffineMap>{
                AffineMap::get(6, 0, {bb, g, I * rq + i, J * rk + j}, ctx),
                AffineMap::get(6, 0, {i, j}, ctx),
                AffineMap::get(6, 0, {bb, g, I, J}, ctx)},
            iterators(4, 2),
            [&](OpBuilder &nb, Location loc, ValueRange args) {
              linalg::YieldOp::create(
                  nb, loc,
                  arith::AddFOp::create(nb, loc, args[2], args[0]).getResult());
            })
            .getResult(0);
    rewriter.replaceOp(op, scores);
    return success();
  }
};
} // namespace

void mlir::unisparse::populateBlockScoreToLinalgPatterns(
    RewritePatternSet &patterns) {
  patterns.add<BlockScoreToLinalg>(patterns.getContext());
}
