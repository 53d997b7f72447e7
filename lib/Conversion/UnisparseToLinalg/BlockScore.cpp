//===- BlockScore.cpp - unisparse.block_score -> linalg -------------------===//
//
// Two passes over the composite logits, recomputed on the fly, so that the
// compressed map [B, Hg, Tq, Tk] is never materialised (at 128K tokens and
// c = 16 it would be 8 GiB for 32 heads):
//
//   %m, %l = linalg.generic (b, g, t, u), u reduced:        row statistics
//              x = masked(scale * qc[b,g,t,:] . kc[b,g,u,:])
//              m' = max(m, x);  l' = l * exp(m - m') + exp(x - m')
//   %s     = linalg.generic (b, g, I, J, i, j), (i, j) reduced: block sums
//              t = I * rq + i, u = J * rk + j   (rq = block / c_q, rk = block / c_k)
//              s += (t, u) in range and visible ? exp(x - m[t]) / l[t] : 0
//
// The causal mask at composite granularity: key composite u is visible from
// query composite t iff u * c_k <= (t + 1) * c_q - 1. Operands are read with
// tensor.extract at clamped indices; out-of-range and masked pairs add 0 and
// skip the dot product. Memory beyond the output: 2 * B * Hg * Tq floats.
//
//===----------------------------------------------------------------------===//

#include "LoweringUtils.h"
#include "unisparse/Conversion/UnisparseToLinalg/UnisparseToLinalg.h"
#include "unisparse/Dialect/Unisparse/IR/UnisparseOps.h"

#include "mlir/Dialect/SCF/IR/SCF.h"

#include <limits>

using namespace mlir;
using namespace mlir::unisparse;
using namespace mlir::unisparse::detail;

namespace {
/// Emission helpers for one block_score op.
struct ScoreEmitter {
  Value qc, kc, scale, headDim;
  int64_t cq, ck;
  bool causal;

  /// i1: (t, u) is visible.
  Value visible(ImplicitLocOpBuilder &b, Value t, Value u) const {
    if (!causal)
      return arith::ConstantIntOp::create(b, 1, 1);
    Value one = arith::ConstantIndexOp::create(b, 1);
    Value keyFirst =
        arith::MulIOp::create(b, u, arith::ConstantIndexOp::create(b, ck));
    Value queryLast = arith::SubIOp::create(
        b,
        arith::MulIOp::create(b, arith::AddIOp::create(b, t, one),
                              arith::ConstantIndexOp::create(b, cq)),
        one);
    return arith::CmpIOp::create(b, arith::CmpIPredicate::sle, keyFirst,
                                 queryLast);
  }

  /// scale * qc[bi, gi, t, :] . kc[bi, gi, u, :] (f32, ascending d).
  Value logit(ImplicitLocOpBuilder &b, Value bi, Value gi, Value t,
              Value u) const {
    Value c0 = arith::ConstantIndexOp::create(b, 0);
    Value c1 = arith::ConstantIndexOp::create(b, 1);
    Value zero = arith::ConstantOp::create(b, b.getF32FloatAttr(0.0f));
    auto loop = scf::ForOp::create(
        b, c0, headDim, c1, ValueRange{zero},
        [&](OpBuilder &nb, Location loc, Value d, ValueRange acc) {
          ImplicitLocOpBuilder lb(loc, nb);
          Value x = tensor::ExtractOp::create(lb, qc, ValueRange{bi, gi, t, d});
          Value y = tensor::ExtractOp::create(lb, kc, ValueRange{bi, gi, u, d});
          Value p = arith::MulFOp::create(lb, x, y);
          scf::YieldOp::create(lb, ValueRange{arith::AddFOp::create(lb, acc[0], p)});
        });
    return arith::MulFOp::create(b, loop.getResult(0), scale);
  }
};

struct BlockScoreToLinalg : OpRewritePattern<BlockScoreOp> {
  using OpRewritePattern::OpRewritePattern;

  LogicalResult matchAndRewrite(BlockScoreOp op,
                                PatternRewriter &rewriter) const override {
    ImplicitLocOpBuilder b(op.getLoc(), rewriter);
    MLIRContext *ctx = op.getContext();
    Type f32 = b.getF32Type();
    int64_t block = op.getBlock(), cq = op.getCQ(), ck = op.getCK();
    int64_t rq = block / cq, rk = block / ck;

    SmallVector<OpFoldResult> qSizes =
        tensor::getMixedSizes(b, b.getLoc(), op.getQc());
    OpFoldResult tk = tensor::getMixedSize(b, b.getLoc(), op.getKc(), 2);
    ScoreEmitter e{op.getQc(),
                   op.getKc(),
                   softmaxScale(b, op.getScale().convertToDouble(), qSizes[3]),
                   toValue(b, qSizes[3]),
                   cq,
                   ck,
                   op.getCausal()};
    Value tqV = toValue(b, qSizes[2]), tkV = toValue(b, tk);
    float negInf = -std::numeric_limits<float>::infinity();

    // Pass 1: online row max and row sum over all key composites.
    SmallVector<OpFoldResult> rowSizes = {qSizes[0], qSizes[1], qSizes[2]};
    Value maxInit = filledTensor(b, rowSizes, f32, b.getF32FloatAttr(negInf));
    Value sumInit = filledTensor(b, rowSizes, f32, b.getF32FloatAttr(0.0f));
    Value keys = tensor::EmptyOp::create(b, ArrayRef<OpFoldResult>{tk}, f32);
    AffineExpr bb, g, t, u;
    bindDims(ctx, bb, g, t, u);
    auto stats = linalg::GenericOp::create(
        b, TypeRange{maxInit.getType(), sumInit.getType()}, ValueRange{keys},
        ValueRange{maxInit, sumInit},
        ArrayRef<AffineMap>{AffineMap::get(4, 0, {u}, ctx),
                            AffineMap::get(4, 0, {bb, g, t}, ctx),
                            AffineMap::get(4, 0, {bb, g, t}, ctx)},
        iterators(3, 1), [&](OpBuilder &nb, Location loc, ValueRange args) {
          ImplicitLocOpBuilder lb(loc, nb);
          SmallVector<Value> iv = loopIndices(lb, 4);
          Value bi = iv[0], gi = iv[1], ti = iv[2], ui = iv[3];
          Value m = args[1], l = args[2];
          Value ninf = arith::ConstantOp::create(lb, lb.getF32FloatAttr(negInf));
          auto x = scf::IfOp::create(
              lb, e.visible(lb, ti, ui),
              [&](OpBuilder &tb, Location tl) {
                ImplicitLocOpBuilder ib(tl, tb);
                scf::YieldOp::create(ib, ValueRange{e.logit(ib, bi, gi, ti, ui)});
              },
              [&](OpBuilder &eb, Location el) {
                scf::YieldOp::create(eb, el, ValueRange{ninf});
              });
          Value xv = x.getResult(0);
          Value mNew = arith::MaximumFOp::create(lb, m, xv);
          // While the row has seen only masked keys, mNew is -inf: keep l.
          Value alive =
              arith::CmpFOp::create(lb, arith::CmpFPredicate::OGT, mNew, ninf);
          Value safeM = arith::SelectOp::create(
              lb, alive, mNew, arith::ConstantOp::create(lb, lb.getF32FloatAttr(0.0f)));
          Value rescaled = arith::MulFOp::create(
              lb, l, math::ExpOp::create(lb, arith::SubFOp::create(lb, m, safeM)));
          Value add = math::ExpOp::create(lb, arith::SubFOp::create(lb, xv, safeM));
          Value lNew = arith::SelectOp::create(
              lb, alive, arith::AddFOp::create(lb, rescaled, add), l);
          linalg::YieldOp::create(lb, ValueRange{mNew, lNew});
        });
    Value rowMax = stats.getResult(0), rowSum = stats.getResult(1);

    // Pass 2: block sums of the normalised map.
    Value window = tensor::EmptyOp::create(
        b, ArrayRef<OpFoldResult>{b.getIndexAttr(rq), b.getIndexAttr(rk)}, f32);
    Value zeroF = arith::ConstantOp::create(b, b.getF32FloatAttr(0.0f));
    Value blockZeros =
        linalg::FillOp::create(b, ValueRange{zeroF}, ValueRange{op.getInit()})
            .getResult(0);
    AffineExpr I, J, i, j;
    bindDims(ctx, bb, g, I, J, i, j);
    Value scores =
        linalg::GenericOp::create(
            b, TypeRange{op.getInit().getType()}, ValueRange{window},
            ValueRange{blockZeros},
            ArrayRef<AffineMap>{AffineMap::get(6, 0, {i, j}, ctx),
                                AffineMap::get(6, 0, {bb, g, I, J}, ctx)},
            iterators(4, 2),
            [&](OpBuilder &nb, Location loc, ValueRange args) {
              ImplicitLocOpBuilder lb(loc, nb);
              SmallVector<Value> iv = loopIndices(lb, 6);
              Value bi = iv[0], gi = iv[1], Ii = iv[2], Ji = iv[3], ii = iv[4],
                    ji = iv[5];
              Value ti = arith::AddIOp::create(
                  lb, arith::MulIOp::create(lb, Ii, arith::ConstantIndexOp::create(lb, rq)),
                  ii);
              Value ui = arith::AddIOp::create(
                  lb, arith::MulIOp::create(lb, Ji, arith::ConstantIndexOp::create(lb, rk)),
                  ji);
              Value inRange = arith::AndIOp::create(
                  lb, arith::CmpIOp::create(lb, arith::CmpIPredicate::slt, ti, tqV),
                  arith::CmpIOp::create(lb, arith::CmpIPredicate::slt, ui, tkV));
              Value take = arith::AndIOp::create(lb, inRange, e.visible(lb, ti, ui));
              auto p = scf::IfOp::create(
                  lb, take,
                  [&](OpBuilder &tb, Location tl) {
                    ImplicitLocOpBuilder ib(tl, tb);
                    Value x = e.logit(ib, bi, gi, ti, ui);
                    Value m = tensor::ExtractOp::create(ib, rowMax, ValueRange{bi, gi, ti});
                    Value l = tensor::ExtractOp::create(ib, rowSum, ValueRange{bi, gi, ti});
                    Value ex = math::ExpOp::create(ib, arith::SubFOp::create(ib, x, m));
                    scf::YieldOp::create(ib, ValueRange{arith::DivFOp::create(ib, ex, l)});
                  },
                  [&](OpBuilder &eb, Location el) {
                    scf::YieldOp::create(eb, el, ValueRange{zeroF});
                  });
              linalg::YieldOp::create(
                  lb, arith::AddFOp::create(lb, args[1], p.getResult(0)).getResult());
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
