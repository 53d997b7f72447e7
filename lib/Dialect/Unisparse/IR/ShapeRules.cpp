//===- ShapeRules.cpp - size rules as IR for builders ---------------------===//

#include "unisparse/Dialect/Unisparse/IR/ShapeRules.h"

#include "mlir/Dialect/Affine/IR/AffineOps.h"

#include <limits>

using namespace mlir;

OpFoldResult mlir::unisparse::numCompositesOfr(OpBuilder &b, Location loc,
                                               OpFoldResult n, int64_t factor) {
  if (std::optional<int64_t> v = getConstantIntValue(n))
    return b.getIndexAttr(numComposites(*v, factor));
  AffineExpr s0 = getAffineSymbolExpr(0, b.getContext());
  return affine::makeComposedFoldedAffineApply(b, loc, s0.ceilDiv(factor), {n});
}

OpFoldResult mlir::unisparse::numBlocksOfr(OpBuilder &b, Location loc,
                                           OpFoldResult n, int64_t block) {
  return numCompositesOfr(b, loc, n, block);
}

LogicalResult mlir::unisparse::verifyPositive(EmitFn emit, StringRef name,
                                              int64_t value) {
  if (value > 0)
    return success();
  return emit() << "'" << name << "' must be positive, found " << value;
}

LogicalResult mlir::unisparse::verifyNonNegative(EmitFn emit, StringRef name,
                                                 int64_t value,
                                                 StringRef note) {
  if (value >= 0)
    return success();
  InFlightDiagnostic diag = emit();
  diag << "'" << name << "' must be non-negative";
  if (!note.empty())
    diag << " " << note;
  return diag << ", found " << value;
}

LogicalResult mlir::unisparse::verifyMultipleOf(EmitFn emit, StringRef name,
                                                int64_t value,
                                                StringRef factorName,
                                                int64_t factor) {
  if (value % factor == 0)
    return success();
  return emit() << "'" << name << "' (" << value << ") must be a multiple of '"
                << factorName << "' (" << factor << ")";
}

LogicalResult mlir::unisparse::verifyTau(EmitFn emit, double tau) {
  if (tau > 0.0 && tau <= 1.0)
    return success();
  return emit() << "'tau' must be in (0, 1], found "
                << formatShortestDouble(tau);
}

LogicalResult mlir::unisparse::verifyScale(EmitFn emit, double scale) {
  // The runtime and the kernels take the scale as an f32: infinity, NaN and
  // anything past the largest f32 would turn every logit into inf or NaN.
  if (scale >= 0.0 && scale <= std::numeric_limits<float>::max())
    return success();
  return emit() << "'scale' must be non-negative and at most the largest f32 "
                   "(0: 1/sqrt(D)), found "
                << formatShortestDouble(scale);
}

LogicalResult mlir::unisparse::verifyMinMaxBlocks(EmitFn emit,
                                                  int64_t minBlocks,
                                                  int64_t maxBlocks) {
  if (failed(verifyNonNegative(emit, "min_blocks", minBlocks)) ||
      failed(verifyNonNegative(emit, "max_blocks", maxBlocks, "(0: no cap)")))
    return failure();
  if (maxBlocks == 0 || minBlocks <= maxBlocks)
    return success();
  return emit() << "'min_blocks' (" << minBlocks
                << ") must not exceed 'max_blocks' (" << maxBlocks << ")";
}

LogicalResult mlir::unisparse::verifyHeads(EmitFn emit, int64_t heads,
                                           int64_t kvHeads, int64_t headDim,
                                           int64_t ch) {
  if (failed(verifyPositive(emit, "heads", heads)) ||
      failed(verifyPositive(emit, "kv_heads", kvHeads)) ||
      failed(verifyPositive(emit, "head_dim", headDim)))
    return failure();
  if (heads % kvHeads)
    return emit() << "query heads (" << heads
                  << ") must be a multiple of key/value heads (" << kvHeads
                  << ") (GQA)";
  if (heads % ch)
    return emit() << "query heads (" << heads
                  << ") must be a multiple of 'c_h' (" << ch << ")";
  return success();
}

LogicalResult mlir::unisparse::verifyEstimatorStride(EmitFn emit,
                                                     Estimator estimator,
                                                     int64_t cq, int64_t ck) {
  if (!isAntidiagonal(estimator) || cq == ck)
    return success();
  return emit() << "'estimator' " << stringifyEstimator(estimator)
                << " needs 'c_q' == 'c_k' (the stride), found " << cq << " and "
                << ck;
}
