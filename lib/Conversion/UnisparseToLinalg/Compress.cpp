//===- Compress.cpp - unisparse.compress -> linalg ------------------------===//
//
//   %p   = tensor.pad %in to T * seq_factor tokens (zeros)
//   %sum = linalg.generic (b, g, t, d, j, w):
//            in[b, (g * hf + j) floordiv kv_group, t * sf + w, d]   (reduce j, w)
//   %out = linalg.generic (b, g, t, d): %sum / (hf * min(sf, N - t * sf))
//
// The (j, w) window is given its extent by a shape-only operand, as the
// linalg pooling ops do.
//
//===----------------------------------------------------------------------===//

#include "LoweringUtils.h"
#include "unisparse/Conversion/UnisparseToLinalg/UnisparseToLinalg.h"
#include "unisparse/Dialect/Unisparse/IR/UnisparseOps.h"

#include "mlir/Dialect/Math/IR/Math.h"

using namespace mlir;
using namespace mlir::unisparse;
using namespace mlir::unisparse::detail;

namespace {
struct CompressToLinalg : OpRewritePattern<CompressOp> {
  using OpRewritePattern::OpRewritePattern;

  LogicalResult matchAndRewrite(CompressOp op,
                                PatternRewriter &rewriter) const override {
    ImplicitLocOpBuilder b(op.getLoc(), rewriter);
    MLIRContext *ctx = op.getContext();
    int64_t sf = op.getSeqFactor(), hf = op.getHeadFactor(),
            kvg = op.getKvGroup();
    Value input = op.getInput();
    Type f32 = b.getF32Type();

    // Pad the sequence to a whole number of composites.
    SmallVector<OpFoldResult> outSizes =
        tensor::getMixedSizes(b, b.getLoc(), op.getInit());
    SmallVector<OpFoldResult> padSizes =
        tensor::getMixedSizes(b, b.getLoc(), input);
    OpFoldResult seq = padSizes[2];
    padSizes[2] = mul(b, outSizes[2], sf);
    Value padded = padHigh(b, input, padSizes);

    // Sum over the (head, token) window.
    Value window = tensor::EmptyOp::create(
        b, ArrayRef<OpFoldResult>{b.getIndexAttr(hf), b.getIndexAttr(sf)}, f32);
    Value zeros = filledTensor(b, outSizes, f32, b.getF32FloatAttr(0.0f));
    AffineExpr bb, g, t, d, j, w;
    bindDims(ctx, bb, g, t, d, j, w);
    auto inMap = AffineMap::get(6, 0, {bb, (g * hf + j).floorDiv(kvg), t * sf + w, d}, ctx);
    auto windowMap = AffineMap::get(6, 0, {j, w}, ctx);
    auto outMap = AffineMap::get(6, 0, {bb, g, t, d}, ctx);
    Value sum =
        linalg::GenericOp::create(
            b, TypeRange{zeros.getType()}, ValueRange{padded, window},
            ValueRange{zeros}, ArrayRef<AffineMap>{inMap, windowMap, outMap},
            iterators(4, 2),
            [&](OpBuilder &nb, Location loc, ValueRange args) {
              Value x = args[0];
              if (x.getType() != f32)
                x = arith::ExtFOp::create(nb, loc, f32, x);
              Value acc = arith::AddFOp::create(nb, loc, args[2], x);
              linalg::YieldOp::create(nb, loc, acc);
            })
            .getResult(0);

    // Divide by the number of real tokens times the heads of the group.
    Value seqV = toValue(b, seq);
    auto id4 = AffineMap::getMultiDimIdentityMap(4, ctx);
    Value mean =
        linalg::GenericOp::create(
            b, TypeRange{op.getInit().getType()}, ValueRange{sum},
            ValueRange{op.getInit()}, ArrayRef<AffineMap>{id4, id4},
            iterators(4, 0),
            [&](OpBuilder &nb, Location loc, ValueRange args) {
              ImplicitLocOpBuilder lb(loc, nb);
              Value tIdx = linalg::IndexOp::create(lb, 2);
              Value sfV = arith::ConstantIndexOp::create(lb, sf);
              Value start = arith::MulIOp::create(lb, tIdx, sfV);
              Value rest = arith::SubIOp::create(lb, seqV, start);
              Value n = arith::MinSIOp::create(lb, rest, sfV);
              Value cnt = arith::MulIOp::create(
                  lb, n, arith::ConstantIndexOp::create(lb, hf));
              Value cntI = arith::IndexCastOp::create(lb, lb.getI64Type(), cnt);
              Value cntF = arith::SIToFPOp::create(lb, lb.getF32Type(), cntI);
              Value res = arith::DivFOp::create(lb, args[0], cntF);
              linalg::YieldOp::create(lb, res);
            })
            .getResult(0);
    rewriter.replaceOp(op, mean);
    return success();
  }
};
} // namespace

void mlir::unisparse::populateCompressToLinalgPatterns(
    RewritePatternSet &patterns) {
  patterns.add<CompressToLinalg>(patterns.getContext());
}
