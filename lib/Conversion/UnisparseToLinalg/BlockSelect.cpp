//===- BlockSelect.cpp - unisparse.block_select -> scf --------------------===//
//
// block_select: an scf.forall over the (b, g, I) rows (one GPU thread per row
// once mapped); each row works on its own slice of `indices` and `counts`:
//   1. clear the row of `indices` (it holds 0/1 "taken" flags meanwhile);
//   2. total = sum of the visible scores (ascending J, f32);
//   3. flag the forced blocks (sink, diagonal, local) and add their mass, or,
//      when tau >= 1, flag every visible block;
//   4. scf.while the kept mass is below tau * total (or fewer than
//      min_blocks are kept, or the total is NaN), below the max_blocks cap
//      (none for a NaN total) and blocks remain: flag the arg-max of the
//      unflagged visible scores (NaN lowest; ties: lowest J);
//   5. compact the flags into ascending indices in place, pad with -1, and
//      store the count.
// Step 4 is O(kept * NBk) per row, which beats a full sort when the layout
// is sparse.
//
//===----------------------------------------------------------------------===//

#include "LoweringUtils.h"
#include "unisparse/Conversion/UnisparseToLinalg/UnisparseToLinalg.h"
#include "unisparse/Dialect/Unisparse/IR/UnisparseOps.h"

#include "mlir/Dialect/SCF/IR/SCF.h"

using namespace mlir;
using namespace mlir::unisparse;
using namespace mlir::unisparse::detail;

namespace {
struct BlockSelectToScf : OpRewritePattern<BlockSelectOp> {
  using OpRewritePattern::OpRewritePattern;

  LogicalResult matchAndRewrite(BlockSelectOp op,
                                PatternRewriter &rewriter) const override {
    if (!op.hasPureTensorSemantics())
      return rewriter.notifyMatchFailure(op, "buffer form");
    ImplicitLocOpBuilder b(op.getLoc(), rewriter);
    Value scores = op.getScores();
    Type f32 = b.getF32Type(), i32 = b.getI32Type();
    bool causal = op.getCausal(), sink = op.getSink();
    double tau = op.getTau().convertToDouble();
    int64_t local = op.getLocalBlocks(), minBlocks = op.getMinBlocks(),
            maxBlocks = op.getMaxBlocks();

    Value c0 = arith::ConstantIndexOp::create(b, 0);
    Value c1 = arith::ConstantIndexOp::create(b, 1);
    OpFoldResult batch = tensor::getMixedSize(b, b.getLoc(), scores, 0);
    OpFoldResult groups = tensor::getMixedSize(b, b.getLoc(), scores, 1);
    OpFoldResult nbq = tensor::getMixedSize(b, b.getLoc(), scores, 2);
    OpFoldResult nbkOfr = tensor::getMixedSize(b, b.getLoc(), scores, 3);
    Value nbk = toValue(b, nbkOfr);

    // One row: `indices` is the row slice tensor<?xi32>; returns the count
    // (index) and the new row.
    auto rowBody = [&](ImplicitLocOpBuilder &b, Value bi, Value gi, Value row,
                       Value indices) -> SmallVector<Value> {
      Value zeroI32 = arith::ConstantIntOp::create(b, 0, 32);
      Value oneI32 = arith::ConstantIntOp::create(b, 1, 32);
      Value zeroF = arith::ConstantOp::create(b, b.getF32FloatAttr(0.0f));
      auto at = [&](Value j) { return SmallVector<Value>{j}; };
      auto sAt = [&](Value j) { return SmallVector<Value>{bi, gi, row, j}; };

      // Visible blocks: [0, nvis).
      Value nvis = nbk;
      if (causal)
        nvis =
            arith::MinSIOp::create(b, arith::AddIOp::create(b, row, c1), nbk);

      // 1. Clear the flags.
      indices = forLoop(b, c0, nbk, {indices},
                        [&](ImplicitLocOpBuilder &b, Value j, ValueRange a) {
                          return SmallVector<Value>{tensor::InsertOp::create(
                              b, zeroI32, a[0], at(j))};
                        })[0];

      // 2. Total visible mass.
      Value total = forLoop(
          b, c0, nvis, {zeroF},
          [&](ImplicitLocOpBuilder &b, Value j, ValueRange a) {
            Value s = tensor::ExtractOp::create(b, scores, sAt(j));
            return SmallVector<Value>{arith::AddFOp::create(b, a[0], s)};
          })[0];

      // 3. Forced blocks (or every visible block when tau >= 1).
      Value localC = arith::ConstantIndexOp::create(b, local);
      SmallVector<Value> st = forLoop(
          b, c0, nvis, {indices, c0, zeroF},
          [&](ImplicitLocOpBuilder &b, Value j, ValueRange a) {
            Value take;
            if (tau >= 1.0) {
              take = arith::ConstantIntOp::create(b, 1, 1);
            } else {
              Value notAfter =
                  arith::CmpIOp::create(b, arith::CmpIPredicate::sle, j, row);
              Value near = arith::CmpIOp::create(
                  b, arith::CmpIPredicate::sge,
                  arith::AddIOp::create(b, j, localC), row);
              take = arith::AndIOp::create(b, notAfter, near);
              if (sink)
                take = arith::OrIOp::create(
                    b, take,
                    arith::CmpIOp::create(b, arith::CmpIPredicate::eq, j, c0));
            }
            Value s = tensor::ExtractOp::create(b, scores, sAt(j));
            Value flag = arith::SelectOp::create(b, take, oneI32, zeroI32);
            Value idx = tensor::InsertOp::create(b, flag, a[0], at(j));
            Value cnt = arith::AddIOp::create(
                b, a[1], arith::SelectOp::create(b, take, c1, c0));
            Value kept = arith::AddFOp::create(
                b, a[2], arith::SelectOp::create(b, take, s, zeroF));
            return SmallVector<Value>{idx, cnt, kept};
          });

      // 4. Top-p: add the best remaining block while the mass is short.
      if (tau < 1.0) {
        Value threshold = arith::MulFOp::create(
            b, arith::ConstantOp::create(b, b.getF32FloatAttr(tau)), total);
        Value minC = arith::ConstantIndexOp::create(b, minBlocks);
        Value maxC = arith::ConstantIndexOp::create(b, maxBlocks);
        Value totalIsNaN =
            arith::CmpFOp::create(b, arith::CmpFPredicate::UNO, total, total);
        auto loop = scf::WhileOp::create(
            b, TypeRange{indices.getType(), b.getIndexType(), f32}, st,
            [&](OpBuilder &nb, Location loc, ValueRange a) {
              ImplicitLocOpBuilder w(loc, nb);
              // A row whose total is NaN (a NaN/Inf input reached the
              // scores) keeps every visible block, so the NaN reaches the
              // output exactly as in dense attention.
              Value need = arith::OrIOp::create(
                  w,
                  arith::CmpIOp::create(w, arith::CmpIPredicate::slt, a[1],
                                        minC),
                  arith::OrIOp::create(
                      w,
                      arith::CmpFOp::create(w, arith::CmpFPredicate::OLT, a[2],
                                            threshold),
                      totalIsNaN));
              Value more = arith::CmpIOp::create(w, arith::CmpIPredicate::slt,
                                                 a[1], nvis);
              Value go = arith::AndIOp::create(w, need, more);
              if (maxBlocks > 0)
                go = arith::AndIOp::create(
                    w, go,
                    arith::OrIOp::create(
                        w, totalIsNaN,
                        arith::CmpIOp::create(w, arith::CmpIPredicate::slt,
                                              a[1], maxC)));
              scf::ConditionOp::create(w, go, a);
            },
            [&](OpBuilder &nb, Location loc, ValueRange a) {
              ImplicitLocOpBuilder w(loc, nb);
              // Arg-max of the free visible scores under a total order: NaN
              // ranks below every number, ties go to the lowest J. The loop
              // runs only while a free visible block remains, and the first
              // free block is always a candidate, so no block is taken twice.
              Value falseV = arith::ConstantIntOp::create(w, 0, 1);
              SmallVector<Value> best = forLoop(
                  w, c0, nvis, {zeroF, c0, falseV},
                  [&](ImplicitLocOpBuilder &b, Value j, ValueRange m) {
                    Value flag = tensor::ExtractOp::create(b, a[0], at(j));
                    Value s = tensor::ExtractOp::create(b, scores, sAt(j));
                    Value isFree = arith::CmpIOp::create(
                        b, arith::CmpIPredicate::eq, flag, zeroI32);
                    Value bestIsNaN = arith::CmpFOp::create(
                        b, arith::CmpFPredicate::UNO, m[0], m[0]);
                    Value sIsNum = arith::CmpFOp::create(
                        b, arith::CmpFPredicate::ORD, s, s);
                    Value wins = arith::OrIOp::create(
                        b,
                        arith::CmpFOp::create(b, arith::CmpFPredicate::OGT, s,
                                              m[0]),
                        arith::AndIOp::create(b, bestIsNaN, sIsNum));
                    Value first = arith::XOrIOp::create(
                        b, m[2], arith::ConstantIntOp::create(b, 1, 1));
                    Value better = arith::AndIOp::create(
                        b, isFree, arith::OrIOp::create(b, first, wins));
                    return SmallVector<Value>{
                        arith::SelectOp::create(b, better, s, m[0]),
                        arith::SelectOp::create(b, better, j, m[1]),
                        arith::OrIOp::create(b, m[2], better)};
                  });
              Value idx =
                  tensor::InsertOp::create(w, oneI32, a[0], at(best[1]));
              Value cnt = arith::AddIOp::create(w, a[1], c1);
              Value kept = arith::AddFOp::create(w, a[2], best[0]);
              scf::YieldOp::create(w, ValueRange{idx, cnt, kept});
            });
        st = loop.getResults();
      }
      indices = st[0];
      Value count = st[1];

      // 5. Compact the flags into ascending indices (position <= J, so the
      // flag at J is read before anything overwrites it), then pad.
      indices = forLoop(
          b, c0, nvis, {indices, c0},
          [&](ImplicitLocOpBuilder &b, Value j, ValueRange a) {
            Value flag = tensor::ExtractOp::create(b, a[0], at(j));
            Value taken = arith::CmpIOp::create(b, arith::CmpIPredicate::ne,
                                                flag, zeroI32);
            Value old = tensor::ExtractOp::create(b, a[0], at(a[1]));
            Value jI32 = arith::IndexCastOp::create(b, i32, j);
            Value val = arith::SelectOp::create(b, taken, jI32, old);
            Value idx = tensor::InsertOp::create(b, val, a[0], at(a[1]));
            Value pos = arith::AddIOp::create(
                b, a[1], arith::SelectOp::create(b, taken, c1, c0));
            return SmallVector<Value>{idx, pos};
          })[0];
      Value minusOneI32 = arith::ConstantIntOp::create(b, -1, 32);
      indices = forLoop(b, count, nbk, {indices},
                        [&](ImplicitLocOpBuilder &b, Value j, ValueRange a) {
                          return SmallVector<Value>{tensor::InsertOp::create(
                              b, minusOneI32, a[0], at(j))};
                        })[0];
      return {count, indices};
    };

    // The rows in parallel.
    auto forall = scf::ForallOp::create(
        b, ArrayRef<OpFoldResult>{batch, groups, nbq},
        ValueRange{op.getCountsInit(), op.getIndicesInit()}, std::nullopt);
    {
      OpBuilder::InsertionGuard guard(b);
      b.setInsertionPointToStart(forall.getBody());
      Value bi = forall.getInductionVar(0), gi = forall.getInductionVar(1),
            row = forall.getInductionVar(2);
      Value countsOut = forall.getRegionIterArgs()[0];
      Value indicesOut = forall.getRegionIterArgs()[1];
      OpFoldResult one = b.getIndexAttr(1), zero = b.getIndexAttr(0);
      SmallVector<OpFoldResult> idxOffsets = {bi, gi, row, zero};
      SmallVector<OpFoldResult> idxSizes = {one, one, one, nbkOfr};
      SmallVector<OpFoldResult> idxStrides(4, one);
      auto rowType = RankedTensorType::get(
          {cast<ShapedType>(op.getIndicesInit().getType()).getDimSize(3)}, i32);
      Value idxRow = tensor::ExtractSliceOp::create(
          b, rowType, indicesOut, idxOffsets, idxSizes, idxStrides);
      SmallVector<OpFoldResult> cntOffsets = {bi, gi, row};
      SmallVector<OpFoldResult> cntSizes(3, one), cntStrides(3, one);
      auto cellType = RankedTensorType::get({1}, i32);
      Value cntCell = tensor::ExtractSliceOp::create(
          b, cellType, countsOut, cntOffsets, cntSizes, cntStrides);
      SmallVector<Value> res = rowBody(b, bi, gi, row, idxRow);
      Value countI32 = arith::IndexCastOp::create(b, i32, res[0]);
      cntCell = tensor::InsertOp::create(b, countI32, cntCell, ValueRange{c0});
      b.setInsertionPointToStart(forall.getTerminator().getBody());
      // In the order of the shared_outs (counts, indices): the single-trip
      // forall folder maps results to the terminator's ops by position.
      tensor::ParallelInsertSliceOp::create(b, cntCell, countsOut, cntOffsets,
                                            cntSizes, cntStrides);
      tensor::ParallelInsertSliceOp::create(b, res[1], indicesOut, idxOffsets,
                                            idxSizes, idxStrides);
    }
    rewriter.replaceOp(op, forall.getResults());
    return success();
  }
};

} // namespace

void mlir::unisparse::populateBlockSelectToLinalgPatterns(
    RewritePatternSet &patterns) {
  patterns.add<BlockSelectToScf>(patterns.getContext());
}
