//===- ShapeRules.h - rules shared by verifiers and builders ----*- C++ -*-===//
//
// The size relations between the operands of unisparse ops and the rules of
// their attributes, as free functions that the verifiers, the decomposition
// and the lowerings all use, so that a rule is written once. The Python
// package states the same rules, worded the same way, in
// python/unisparse/rules.py; test/python/test_rules.py checks that both
// accept and reject the same values for the same reason.
//
//===----------------------------------------------------------------------===//

#ifndef UNISPARSE_DIALECT_UNISPARSE_IR_SHAPERULES_H
#define UNISPARSE_DIALECT_UNISPARSE_IR_SHAPERULES_H

#include "unisparse/Dialect/Unisparse/IR/UnisparseAttrs.h"

#include "mlir/IR/Builders.h"
#include "mlir/IR/BuiltinTypes.h"
#include "mlir/IR/Diagnostics.h"
#include "mlir/IR/OpDefinition.h"
#include <cstdint>

namespace mlir::unisparse {

/// ceil(a / b) for a >= 0, b > 0; dynamic stays dynamic. Written without
/// `a + b - 1`, which overflows for sizes near 2^63.
inline int64_t ceilDivOrDynamic(int64_t a, int64_t b) {
  if (ShapedType::isDynamic(a))
    return ShapedType::kDynamic;
  return a / b + (a % b != 0 ? 1 : 0);
}

/// Number of composites of `n` tokens pooled by `factor`.
inline int64_t numComposites(int64_t n, int64_t factor) {
  return ceilDivOrDynamic(n, factor);
}

/// Number of blocks of a sequence of `t` composites of `factor` tokens each,
/// for block size `block` (a multiple of `factor`).
inline int64_t numBlocksOfComposites(int64_t t, int64_t block, int64_t factor) {
  return ceilDivOrDynamic(t, block / factor);
}

/// Number of blocks of `block` tokens in a sequence of `n` tokens.
inline int64_t numBlocks(int64_t n, int64_t block) {
  return ceilDivOrDynamic(n, block);
}

/// numComposites and numBlocks as OpFoldResults for builders: a constant when
/// `n` is, else an affine.apply (ceildiv) of it.
OpFoldResult numCompositesOfr(OpBuilder &b, Location loc, OpFoldResult n,
                              int64_t factor);
OpFoldResult numBlocksOfr(OpBuilder &b, Location loc, OpFoldResult n,
                          int64_t block);

/// True when a selection keeps every visible block whatever the scores:
/// tau >= 1, or min_blocks at least the number of key blocks (when static;
/// min_blocks <= max_blocks, so no cap binds). Then the layout is
/// dense_layout and the estimation is dead.
inline bool keepsEveryBlock(double tau, int64_t minBlocks,
                            int64_t numKeyBlocks) {
  return tau >= 1.0 ||
         (!ShapedType::isDynamic(numKeyBlocks) && minBlocks >= numKeyBlocks);
}

/// True if the two sizes can be equal (either is dynamic, or they match).
inline bool compatibleDim(int64_t a, int64_t b) {
  return ShapedType::isDynamic(a) || ShapedType::isDynamic(b) || a == b;
}

//===----------------------------------------------------------------------===//
// Attribute rules, shared by #unisparse.config's verifier and the op
// verifiers. Each returns failure after writing into the diagnostic that
// `emit()` opens what was expected and what was found, starting with the
// quoted attribute name; the caller's diagnostic says where (an op's starts
// with "attribute ").
//===----------------------------------------------------------------------===//

using EmitFn = function_ref<InFlightDiagnostic()>;

/// `value` > 0.
LogicalResult verifyPositive(EmitFn emit, StringRef name, int64_t value);
/// `value` >= 0; `note` (e.g. "(0: no cap)") follows "non-negative".
LogicalResult verifyNonNegative(EmitFn emit, StringRef name, int64_t value,
                                StringRef note = "");
/// `value` is a multiple of `factor` (> 0).
LogicalResult verifyMultipleOf(EmitFn emit, StringRef name, int64_t value,
                               StringRef factorName, int64_t factor);
/// tau in (0, 1].
LogicalResult verifyTau(EmitFn emit, double tau);
/// 0 <= scale <= the largest f32 (0: 1/sqrt(D)); rejects NaN and infinity.
LogicalResult verifyScale(EmitFn emit, double scale);
/// min_blocks, max_blocks >= 0, and min_blocks <= max_blocks unless
/// max_blocks = 0 (no cap).
LogicalResult verifyMinMaxBlocks(EmitFn emit, int64_t minBlocks,
                                 int64_t maxBlocks);

/// The head counts of an attention: heads (Hq), kv_heads (Hkv) and head_dim
/// positive, Hq a multiple of Hkv (GQA) and of the head-group size c_h.
LogicalResult verifyHeads(EmitFn emit, int64_t heads, int64_t kvHeads,
                          int64_t headDim, int64_t ch);

/// The antidiagonal estimators need c_q == c_k (the stride).
LogicalResult verifyEstimatorStride(EmitFn emit, Estimator estimator,
                                    int64_t cq, int64_t ck);

/// True for the element types attention accepts: bf16, f16, f32.
bool isAttentionElementType(Type type);

} // namespace mlir::unisparse

#endif // UNISPARSE_DIALECT_UNISPARSE_IR_SHAPERULES_H
