//===- ShapeRules.cpp - size rules as IR for builders ---------------------===//

#include "unisparse/Dialect/Unisparse/IR/ShapeRules.h"

#include "mlir/Dialect/Affine/IR/AffineOps.h"

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
