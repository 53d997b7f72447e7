//===- ShapeRules.cpp - size rules as IR for builders ---------------------===//

#include "unisparse/Dialect/Unisparse/IR/ShapeRules.h"

#include "mlir/Dialect/Affine/IR/AffineOps.h"
#include "mlir/Dialect/Arith/IR/Arith.h"
#include "llvm/Support/MathExtras.h"

#include <cmath>
#include <limits>
#include <string>

using namespace mlir;
using namespace mlir::unisparse;

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
  // anything past the largest f32 would turn every logit into inf or NaN,
  // and a scale that rounds to 0 would select 1/sqrt(D).
  if (!(scale >= 0.0 && scale <= std::numeric_limits<float>::max()))
    return emit() << "'scale' must be non-negative and at most the largest "
                     "f32 (0: 1/sqrt(D)), found "
                  << formatShortestDouble(scale);
  if (scale > 0.0 && static_cast<float>(scale) == 0.0f)
    return emit() << "'scale' must not round to 0 in f32 (0 selects "
                     "1/sqrt(D)), found "
                  << formatShortestDouble(scale);
  return success();
}

LogicalResult mlir::unisparse::verifyBlockCount(EmitFn emit, StringRef name,
                                                int64_t value, StringRef note) {
  if (failed(verifyNonNegative(emit, name, value, note)))
    return failure();
  if (value <= kMaxBlockCount)
    return success();
  return emit() << "'" << name << "' must be at most 2^62 (a count of at "
                << "least the number of blocks already means all), found "
                << value;
}

LogicalResult mlir::unisparse::verifyMinMaxBlocks(EmitFn emit,
                                                  int64_t minBlocks,
                                                  int64_t maxBlocks) {
  if (failed(verifyBlockCount(emit, "min_blocks", minBlocks)) ||
      failed(verifyBlockCount(emit, "max_blocks", maxBlocks, "(0: no cap)")))
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

std::string mlir::unisparse::refinementKernelUnsupportedReason(
    Type element, int64_t qHeads, int64_t kvHeads, int64_t groups,
    int64_t headDim, int64_t width) {
  if (!element.isBF16() && !element.isF16()) {
    std::string found;
    llvm::raw_string_ostream os(found);
    os << element;
    return "q and k must be bf16 or f16 (tensor cores), found " + found;
  }
  if (ShapedType::isDynamic(qHeads) || ShapedType::isDynamic(kvHeads) ||
      ShapedType::isDynamic(groups))
    return "the head counts must be static";
  if (ShapedType::isDynamic(headDim) || headDim % 16 != 0)
    return "the head dimension must be a static multiple of 16";
  if (width > kRefineKernelMaxWidth)
    return "'width' must be at most " + std::to_string(kRefineKernelMaxWidth) +
           " (the probe kernel unrolls a sum per key block an offset's "
           "window reaches), found " +
           std::to_string(width);
  return "";
}

std::string
mlir::unisparse::outlierCompressKernelUnsupportedReason(int64_t headDim,
                                                        int64_t seqFactor) {
  if (ShapedType::isDynamic(headDim) || headDim % 32 != 0 || headDim > 256)
    return "the head dimension must be a static multiple of 32 up to 256 "
           "(a warp holds a token)";
  if (seqFactor > kOutlierCompressMaxLaneValues / (headDim / 32))
    return "seq_factor x head_dim / 32 must be at most " +
           std::to_string(kOutlierCompressMaxLaneValues) +
           " (a lane keeps its coordinates of the composite's tokens in "
           "registers; the kernel would spill), found " +
           std::to_string(seqFactor) + " x " + std::to_string(headDim) +
           " / 32";
  return "";
}

LogicalResult mlir::unisparse::verifyRefinement(
    EmitFn emit, Refine refine, int64_t block, bool causal, int64_t lastQ,
    int64_t nOffsets, int64_t rowsPerBlock, int64_t width, bool refineNorm) {
  if (failed(verifyPositive(emit, "last_q", lastQ)) ||
      failed(verifyPositive(emit, "n_offsets", nOffsets)) ||
      failed(verifyPositive(emit, "rows_per_block", rowsPerBlock)) ||
      failed(verifyNonNegative(emit, "width", width)))
    return failure();
  for (auto [name, value] : {std::pair<StringRef, int64_t>{"last_q", lastQ},
                             {"n_offsets", nOffsets},
                             {"rows_per_block", rowsPerBlock},
                             {"width", width}})
    if (value > kMaxRefineParam)
      return emit() << "'" << name << "' must be at most 2^20, found " << value;
  if (refine != Refine::slash) {
    if (refineNorm)
      return emit() << "'refine_norm' = true needs 'refine' = slash (it "
                       "normalises the slash refinement), found refine = "
                    << stringifyRefine(refine);
    return success();
  }
  if (rowsPerBlock > block)
    return emit() << "'rows_per_block' (" << rowsPerBlock
                  << ") must not exceed 'block' (" << block
                  << ") for 'refine' slash";
  if (!causal)
    return emit() << "'refine' slash needs 'causal' = true (the last queries "
                     "see every key), found causal = false";
  return success();
}

LogicalResult mlir::unisparse::verifyOutliers(EmitFn emit, Estimator estimator,
                                              int64_t cq, int64_t ck,
                                              int64_t qOutliers,
                                              int64_t kOutliers) {
  if (failed(verifyPositive(emit, "q_outliers", qOutliers)) ||
      failed(verifyPositive(emit, "k_outliers", kOutliers)))
    return failure();
  if (estimator != Estimator::outlier)
    return success();
  if (qOutliers >= cq)
    return emit() << "'q_outliers' (" << qOutliers
                  << ") must be smaller than 'c_q' (" << cq
                  << ") for 'estimator' outlier";
  if (kOutliers >= ck)
    return emit() << "'k_outliers' (" << kOutliers
                  << ") must be smaller than 'c_k' (" << ck
                  << ") for 'estimator' outlier";
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

//===----------------------------------------------------------------------===//
// Size rules
//===----------------------------------------------------------------------===//

int64_t StaticSizeArith::add(int64_t a, int64_t b) const {
  int64_t sum;
  if (a == kSizeOverflow || b == kSizeOverflow || llvm::AddOverflow(a, b, sum))
    return kSizeOverflow;
  return sum;
}

int64_t StaticSizeArith::mul(int64_t a, int64_t b) const {
  int64_t product;
  if (a == kSizeOverflow || b == kSizeOverflow ||
      llvm::MulOverflow(a, b, product))
    return kSizeOverflow;
  return product;
}

int64_t StaticSizeArith::ceilDiv(int64_t a, int64_t b) const {
  return a == kSizeOverflow ? kSizeOverflow : ceilDivOrDynamic(a, b);
}

namespace {
/// `x == kSizeOverflow` as an i1.
Value isSaturated(ImplicitLocOpBuilder &b, Value x) {
  return arith::CmpIOp::create(
      b, arith::CmpIPredicate::eq, x,
      arith::ConstantIntOp::create(b, kSizeOverflow, 64));
}

/// The static values of `x` and `y` when both are constants.
std::optional<std::pair<int64_t, int64_t>> constants(Value x, Value y) {
  std::optional<int64_t> a = getConstantIntValue(x), b = getConstantIntValue(y);
  if (a && b)
    return std::make_pair(*a, *b);
  return std::nullopt;
}
} // namespace

// Constant operands fold through StaticSizeArith, so the IR holds only the
// terms that depend on run-time sizes.

Value IRSizeArith::constant(int64_t c) const {
  return arith::ConstantIntOp::create(b, c, 64);
}

Value IRSizeArith::add(Value x, Value y) const {
  if (auto c = constants(x, y))
    return constant(StaticSizeArith().add(c->first, c->second));
  // Both are in [0, 2^63 - 1], so the i64 sum wraps to a negative value
  // exactly when it does not fit.
  Value sum = arith::AddIOp::create(b, x, y);
  Value wrapped =
      arith::CmpIOp::create(b, arith::CmpIPredicate::slt, sum, constant(0));
  return arith::SelectOp::create(b, wrapped, constant(kSizeOverflow), sum);
}

Value IRSizeArith::mul(Value x, Value y) const {
  if (auto c = constants(x, y))
    return constant(StaticSizeArith().mul(c->first, c->second));
  // The unsigned 128-bit product: it fits when the high half is 0 and the
  // low half is non-negative as an i64. A saturated factor stays saturated.
  auto product = arith::MulUIExtendedOp::create(b, x, y);
  Value fits = arith::AndIOp::create(
      b,
      arith::CmpIOp::create(b, arith::CmpIPredicate::eq, product.getHigh(),
                            constant(0)),
      arith::CmpIOp::create(b, arith::CmpIPredicate::sge, product.getLow(),
                            constant(0)));
  Value ok = fits;
  for (Value v : {x, y}) {
    std::optional<int64_t> c = getConstantIntValue(v);
    if (c && *c != kSizeOverflow)
      continue;
    ok = arith::AndIOp::create(
        b, ok,
        arith::CmpIOp::create(b, arith::CmpIPredicate::ne, v,
                              constant(kSizeOverflow)));
  }
  return arith::SelectOp::create(b, ok, product.getLow(),
                                 constant(kSizeOverflow));
}

Value IRSizeArith::ceilDiv(Value x, int64_t d) const {
  if (std::optional<int64_t> c = getConstantIntValue(x))
    return constant(StaticSizeArith().ceilDiv(*c, d));
  Value q = arith::CeilDivUIOp::create(b, x, constant(d));
  return arith::SelectOp::create(b, isSaturated(b, x), constant(kSizeOverflow),
                                 q);
}

Value IRSizeArith::min(Value x, Value y) const {
  if (auto c = constants(x, y))
    return constant(std::min(c->first, c->second));
  return arith::MinSIOp::create(b, x, y);
}

Value IRSizeArith::max(Value x, Value y) const {
  if (auto c = constants(x, y))
    return constant(std::max(c->first, c->second));
  return arith::MaxSIOp::create(b, x, y);
}

EstimationParams EstimationParams::of(ConfigAttr config) {
  return {config.getBlock(),     config.getCQ(),        config.getCK(),
          config.getCH(),        config.getEstimator(), config.getQueryReduce(),
          config.getQOutliers(), config.getKOutliers(), config.getRefine(),
          config.getLastQ(),     config.getNOffsets()};
}

CompositeParams CompositeParams::queriesOf(const EstimationParams &p) {
  switch (p.estimator) {
  case Estimator::mean:
    return {Pooling::mean, p.cQ};
  case Estimator::antidiag:
  case Estimator::antidiag_lse:
    return {Pooling::concat_reversed, p.cQ};
  case Estimator::outlier:
    return {Pooling::outlier, p.cQ, p.qOutliers, /*hot=*/0, /*spread=*/true};
  }
  llvm_unreachable("unknown estimator");
}

CompositeParams CompositeParams::keysOf(const EstimationParams &p) {
  switch (p.estimator) {
  case Estimator::mean:
    return {Pooling::mean, p.cK};
  case Estimator::antidiag:
  case Estimator::antidiag_lse:
    return {Pooling::concat, p.cK};
  case Estimator::outlier:
    return {Pooling::outlier, p.cK, p.kOutliers, /*hot=*/1,
            /*spread=*/false};
  }
  llvm_unreachable("unknown estimator");
}

LogicalResult mlir::unisparse::verifyBlockFits(EmitFn emit,
                                               const EstimationParams &p) {
  StaticSizeArith a;
  int64_t rq = p.block / p.cQ, rk = p.block / p.cK;
  if (a.mul(a.mul(rq, rk), 4) != kSizeOverflow)
    return success();
  return emit() << "'block' (" << p.block << ") is too large for 'c_q' ("
                << p.cQ << ") and 'c_k' (" << p.cK
                << "): one block's score map, " << rq << " x " << rk
                << " f32 values, needs more than 2^63 - 1 bytes";
}

int64_t mlir::unisparse::staticBytes(ShapedType type) {
  StaticSizeArith a;
  int64_t bits = type.getElementType().isIntOrFloat()
                     ? type.getElementType().getIntOrFloatBitWidth()
                     : 0;
  int64_t bytes = (bits + 7) / 8;
  if (!type.hasRank())
    return bytes;
  for (int64_t d : type.getShape())
    bytes = a.mul(bytes, ShapedType::isDynamic(d) ? 1 : d);
  return bytes;
}
