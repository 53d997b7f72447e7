//===- LoweringUtils.h - helpers shared by the linalg lowerings -*- C++ -*-===//

#ifndef UNISPARSE_LIB_CONVERSION_UNISPARSETOLINALG_LOWERINGUTILS_H
#define UNISPARSE_LIB_CONVERSION_UNISPARSETOLINALG_LOWERINGUTILS_H

#include "mlir/Dialect/Affine/IR/AffineOps.h"
#include "mlir/Dialect/Arith/IR/Arith.h"
#include "mlir/Dialect/Arith/Utils/Utils.h"
#include "mlir/Dialect/Math/IR/Math.h"
#include "mlir/Dialect/Linalg/IR/Linalg.h"
#include "mlir/Dialect/Tensor/IR/Tensor.h"
#include "mlir/IR/ImplicitLocOpBuilder.h"

#include <cmath>

namespace mlir::unisparse::detail {

/// `value` as an index Value.
inline Value toValue(ImplicitLocOpBuilder &b, OpFoldResult ofr) {
  return getValueOrCreateConstantIndexOp(b, b.getLoc(), ofr);
}

/// A tensor of `sizes` filled with `value`.
inline Value filledTensor(ImplicitLocOpBuilder &b, ArrayRef<OpFoldResult> sizes,
                          Type elementType, TypedAttr value) {
  Value empty = tensor::EmptyOp::create(b, sizes, elementType);
  Value cst = arith::ConstantOp::create(b, value);
  return linalg::FillOp::create(b, cst, empty).getResult(0);
}

/// The softmax scale as an f32 Value: `scale`, or 1/sqrt(headDim) when
/// `scale` is 0.
inline Value softmaxScale(ImplicitLocOpBuilder &b, double scale,
                          OpFoldResult headDim) {
  if (scale > 0.0)
    return arith::ConstantOp::create(b, b.getF32FloatAttr(scale));
  if (std::optional<int64_t> d = getConstantIntValue(headDim))
    return arith::ConstantOp::create(
        b, b.getF32FloatAttr(1.0 / std::sqrt(static_cast<double>(*d))));
  Value d = arith::IndexCastOp::create(b, b.getI64Type(), toValue(b, headDim));
  Value df = arith::SIToFPOp::create(b, b.getF32Type(), d);
  Value one = arith::ConstantOp::create(b, b.getF32FloatAttr(1.0f));
  Value sqrt = math::SqrtOp::create(b, df);
  return arith::DivFOp::create(b, one, sqrt);
}

/// `linalg.index 0 .. n-1` inside a linalg.generic body.
inline SmallVector<Value> loopIndices(ImplicitLocOpBuilder &b, unsigned n) {
  SmallVector<Value> ivs;
  for (unsigned i = 0; i < n; ++i)
    ivs.push_back(linalg::IndexOp::create(b, i));
  return ivs;
}

/// Parallel iterators followed by reductions.
inline SmallVector<utils::IteratorType> iterators(unsigned parallel,
                                                  unsigned reduction) {
  SmallVector<utils::IteratorType> it(parallel, utils::IteratorType::parallel);
  it.append(reduction, utils::IteratorType::reduction);
  return it;
}

} // namespace mlir::unisparse::detail

#endif // UNISPARSE_LIB_CONVERSION_UNISPARSETOLINALG_LOWERINGUTILS_H
