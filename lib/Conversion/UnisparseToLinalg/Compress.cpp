//===- Compress.cpp - unisparse.compress -> linalg ------------------------===//
//
//   %sum  = linalg.generic (b, g, t, d, j, w):           (reduce over j, w)
//             n = t * sf + w
//             sum += n < N ? in[b, (g * hf + j) / kv_group, min(n, N - 1), d] : 0
//   %mean = linalg.generic (b, g, t, d): %sum / (hf * min(sf, N - t * sf))
//
// The input is read with tensor.extract at a clamped index, so nothing is
// padded or copied (on the GPU this is one kernel per generic, with d, the
// contiguous dimension, mapped to threads). The (j, w) window gets its extent
// from a shape-only operand, as the linalg pooling ops do.
//
//===----------------------------------------------------------------------===//

#include "LoweringUtils.h"
#include "unisparse/Conversion/UnisparseToLinalg/UnisparseToLinalg.h"
#include "unisparse/Dialect/Unisparse/IR/UnisparseOps.h"

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

    SmallVector<OpFoldResult> outSizes =
        tensor::getMixedSizes(b, b.getLoc(), op.getInit());
    OpFoldResult seq = tensor::getMixedSize(b, b.getLoc(), input, 2);
    Value seqV = toValue(b, seq);

    // Sum over the (head, token) window; tokens past N contribute 0.
    Value window = tensor::EmptyOp::create(
        b, ArrayRef<OpFoldResult>{b.getIndexAttr(hf), b.getIndexAttr(sf)}, f32);
    Value zeros = filledTensor(b, outSizes, f32, b.getF32FloatAttr(0.0f));
    AffineExpr bb, g, t, d, j, w;
    bindDims(ctx, bb, g, t, d, j, w);
    auto windowMap = AffineMap::get(6, 0, {j, w}, ctx);
    auto outMap = AffineMap::get(6, 0, {bb, g, t, d}, ctx);
    Value sum =
        linalg::GenericOp::create(
            b, TypeRange{zeros.getType()}, ValueRange{window}, ValueRange{zeros},
            ArrayRef<AffineMap>{windowMap, outMap}, iterators(4, 2),
            [&](OpBuilder &nb, Location loc, ValueRange args) {
              ImplicitLocOpBuilder lb(loc, nb);
              SmallVector<Value> iv = loopIndices(lb, 6);
              Value bi = iv[0], gi = iv[1], ti = iv[2], di = iv[3], ji = iv[4],
                    wi = iv[5];
              Value n = arith::AddIOp::create(
                  lb, arith::MulIOp::create(lb, ti, arith::ConstantIndexOp::create(lb, sf)),
                  wi);
              Value valid =
                  arith::CmpIOp::create(lb, arith::CmpIPredicate::slt, n, seqV);
              Value last = arith::SubIOp::create(
                  lb, seqV, arith::ConstantIndexOp::create(lb, 1));
              Value nc = arith::MinSIOp::create(lb, n, last);
              Value expanded = arith::AddIOp::create(
                  lb, arith::MulIOp::create(lb, gi, arith::ConstantIndexOp::create(lb, hf)),
                  ji);
              Value head = arith::DivUIOp::create(
                  lb, expanded, arith::ConstantIndexOp::create(lb, kvg));
              Value x = tensor::ExtractOp::create(lb, input,
                                                  ValueRange{bi, head, nc, di});
              if (x.getType() != f32)
                x = arith::ExtFOp::create(lb, f32, x);
              Value zero = arith::ConstantOp::create(lb, lb.getF32FloatAttr(0.0f));
              x = arith::SelectOp::create(lb, valid, x, zero);
              linalg::YieldOp::create(lb,
                                      arith::AddFOp::create(lb, args[1], x).getResult());
            })
            .getResult(0);

    // Divide by the number of real tokens times the heads of the group.
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
