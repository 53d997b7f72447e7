//===- DenseLayout.cpp - unisparse.dense_layout -> linalg -----------------===//
//
// dense_layout: two linalg.generic ops on linalg.index (counts, then the
// ascending indices padded with -1).
//
//===----------------------------------------------------------------------===//

#include "LoweringUtils.h"
#include "unisparse/Conversion/UnisparseToLinalg/UnisparseToLinalg.h"
#include "unisparse/Dialect/Unisparse/IR/UnisparseOps.h"

using namespace mlir;
using namespace mlir::unisparse;
using namespace mlir::unisparse::detail;

namespace {
struct DenseLayoutToLinalg : OpRewritePattern<DenseLayoutOp> {
  using OpRewritePattern::OpRewritePattern;

  LogicalResult matchAndRewrite(DenseLayoutOp op,
                                PatternRewriter &rewriter) const override {
    ImplicitLocOpBuilder b(op.getLoc(), rewriter);
    MLIRContext *ctx = op.getContext();
    bool causal = op.getCausal();
    Value nbk = tensor::DimOp::create(b, op.getIndicesInit(), 3);
    Type i32 = b.getI32Type();

    // counts[b, g, I] = causal ? min(I + 1, NBk) : NBk
    Value counts =
        linalg::GenericOp::create(
            b, TypeRange{op.getCountsInit().getType()}, ValueRange{},
            ValueRange{op.getCountsInit()},
            ArrayRef<AffineMap>{AffineMap::getMultiDimIdentityMap(3, ctx)},
            iterators(3, 0),
            [&](OpBuilder &nb, Location loc, ValueRange) {
              ImplicitLocOpBuilder lb(loc, nb);
              Value n = nbk;
              if (causal) {
                Value row = linalg::IndexOp::create(lb, 2);
                Value next = arith::AddIOp::create(
                    lb, row, arith::ConstantIndexOp::create(lb, 1));
                n = arith::MinSIOp::create(lb, next, nbk);
              }
              linalg::YieldOp::create(
                  lb, arith::IndexCastOp::create(lb, i32, n).getResult());
            })
            .getResult(0);

    // indices[b, g, I, J] = (!causal || J <= I) ? J : -1
    Value indices =
        linalg::GenericOp::create(
            b, TypeRange{op.getIndicesInit().getType()}, ValueRange{},
            ValueRange{op.getIndicesInit()},
            ArrayRef<AffineMap>{AffineMap::getMultiDimIdentityMap(4, ctx)},
            iterators(4, 0),
            [&](OpBuilder &nb, Location loc, ValueRange) {
              ImplicitLocOpBuilder lb(loc, nb);
              Value col = linalg::IndexOp::create(lb, 3);
              Value val = arith::IndexCastOp::create(lb, i32, col);
              if (causal) {
                Value row = linalg::IndexOp::create(lb, 2);
                Value visible = arith::CmpIOp::create(
                    lb, arith::CmpIPredicate::sle, col, row);
                val = arith::SelectOp::create(
                    lb, visible, val, arith::ConstantIntOp::create(lb, -1, 32));
              }
              linalg::YieldOp::create(lb, val);
            })
            .getResult(0);
    rewriter.replaceOp(op, {counts, indices});
    return success();
  }
};
} // namespace

void mlir::unisparse::populateDenseLayoutToLinalgPatterns(
    RewritePatternSet &patterns) {
  patterns.add<DenseLayoutToLinalg>(patterns.getContext());
}
