//===- BlockScoreStages.h - shared block_score lowering pieces --*- C++ -*-===//
//
// The pieces of the linalg lowering of unisparse.block_score that every
// estimator shares: the validity of a composite pair (mask) and the block
// sums of a normalised composite map per query reduction. BlockScore.cpp
// lowers the estimators with one softmax per query composite;
// OutlierScore.cpp the outlier estimator's two-pass one.
//
//===----------------------------------------------------------------------===//

#ifndef UNISPARSE_LIB_CONVERSION_UNISPARSETOLINALG_BLOCKSCORESTAGES_H
#define UNISPARSE_LIB_CONVERSION_UNISPARSETOLINALG_BLOCKSCORESTAGES_H

#include "unisparse/Dialect/Unisparse/IR/UnisparseOps.h"

#include "mlir/Dialect/Arith/IR/Arith.h"
#include "mlir/IR/ImplicitLocOpBuilder.h"

namespace mlir::unisparse::detail {

/// The validity test of composite pair (t, u) inside a generic body.
struct Mask {
  Value tq, tk, offset; // offset: of qc's first composite in the sequence
  int64_t cq, ck;
  bool causal;

  Value valid(ImplicitLocOpBuilder &b, Value t, Value u) const {
    Value ok = arith::AndIOp::create(
        b, arith::CmpIOp::create(b, arith::CmpIPredicate::slt, t, tq),
        arith::CmpIOp::create(b, arith::CmpIPredicate::slt, u, tk));
    if (!causal)
      return ok;
    Value one = arith::ConstantIndexOp::create(b, 1);
    Value keyFirst =
        arith::MulIOp::create(b, u, arith::ConstantIndexOp::create(b, ck));
    if (offset)
      t = arith::AddIOp::create(b, t, offset);
    Value queryLast = arith::SubIOp::create(
        b,
        arith::MulIOp::create(b, arith::AddIOp::create(b, t, one),
                              arith::ConstantIndexOp::create(b, cq)),
        one);
    return arith::AndIOp::create(
        b, ok,
        arith::CmpIOp::create(b, arith::CmpIPredicate::sle, keyFirst,
                              queryLast));
  }
};

/// What every block_score lowering starts from: the sizes of `qc` and of
/// the init, the number of key composites, the softmax scale (f32) and the
/// mask of the op's causality and query offset.
struct ScoreOperands {
  SmallVector<OpFoldResult> qSizes, sSizes;
  OpFoldResult tk;
  Value scale;
  Mask mask;
};
ScoreOperands scoreOperands(ImplicitLocOpBuilder &b, BlockScoreOp op);

/// The block scores of a composite map `probs: [B, Hg, NBq * rq, NBk * rk]`
/// (rq = block / c_q, rk = block / c_k) for `op`'s init and query
/// reduction: per (query block, key block), the shares `probs / rowSum` of
/// the real query composites (t < `tq`; padded rows add nothing) summed over
/// the block's key composites, then summed (query_reduce = sum) or maxed
/// (max) over its query composites. `rowSum: [B, Hg, NBq * rq]`.
Value blockScoresOfMap(ImplicitLocOpBuilder &b, BlockScoreOp op, Value probs,
                       Value rowSum, Value tq);

} // namespace mlir::unisparse::detail

#endif // UNISPARSE_LIB_CONVERSION_UNISPARSETOLINALG_BLOCKSCORESTAGES_H
