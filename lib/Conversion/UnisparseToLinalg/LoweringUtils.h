//===- LoweringUtils.h - helpers shared by the linalg lowerings -*- C++ -*-===//

#ifndef UNISPARSE_LIB_CONVERSION_UNISPARSETOLINALG_LOWERINGUTILS_H
#define UNISPARSE_LIB_CONVERSION_UNISPARSETOLINALG_LOWERINGUTILS_H

#include "mlir/Dialect/Affine/IR/AffineOps.h"
#include "mlir/Dialect/Arith/IR/Arith.h"
#include "mlir/Dialect/Arith/Utils/Utils.h"
#include "mlir/Dialect/Linalg/IR/Linalg.h"
#include "mlir/Dialect/Math/IR/Math.h"
#include "mlir/Dialect/SCF/IR/SCF.h"
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

/// Parallel iterators followed by reductions.
inline SmallVector<utils::IteratorType> iterators(unsigned parallel,
                                                  unsigned reduction) {
  SmallVector<utils::IteratorType> it(parallel, utils::IteratorType::parallel);
  it.append(reduction, utils::IteratorType::reduction);
  return it;
}

/// The static size of `ofr`, or ShapedType::kDynamic.
inline int64_t staticSize(OpFoldResult ofr) {
  if (std::optional<int64_t> v = getConstantIntValue(ofr))
    return *v;
  return ShapedType::kDynamic;
}

/// `value` with dimension `dim` split into `sizes` (a tensor.expand_shape;
/// the product of `sizes` must equal the old size).
inline Value expandDim(ImplicitLocOpBuilder &b, Value value, unsigned dim,
                       ArrayRef<OpFoldResult> sizes) {
  auto type = cast<RankedTensorType>(value.getType());
  SmallVector<OpFoldResult> outSizes =
      tensor::getMixedSizes(b, b.getLoc(), value);
  SmallVector<ReassociationIndices> reassociation;
  SmallVector<OpFoldResult> shape;
  for (unsigned i = 0, e = type.getRank(), out = 0; i < e; ++i) {
    ReassociationIndices group;
    if (i == dim) {
      for (OpFoldResult s : sizes) {
        group.push_back(out++);
        shape.push_back(s);
      }
    } else {
      group.push_back(out++);
      shape.push_back(outSizes[i]);
    }
    reassociation.push_back(group);
  }
  SmallVector<int64_t> staticShape = llvm::map_to_vector(shape, staticSize);
  auto resultType = RankedTensorType::get(staticShape, type.getElementType());
  return tensor::ExpandShapeOp::create(b, resultType, value, reassociation,
                                       shape);
}

/// `value` with dimensions [dim, dim + count) merged into one.
inline Value collapseDims(ImplicitLocOpBuilder &b, Value value, unsigned dim,
                          unsigned count) {
  auto type = cast<RankedTensorType>(value.getType());
  SmallVector<ReassociationIndices> reassociation;
  for (unsigned i = 0, e = type.getRank(); i < e;) {
    ReassociationIndices group;
    unsigned n = i == dim ? count : 1;
    for (unsigned k = 0; k < n; ++k)
      group.push_back(i++);
    reassociation.push_back(group);
  }
  return tensor::CollapseShapeOp::create(b, value, reassociation);
}

/// The slice [offset, offset + size) of dimension `dim` of `value`.
inline Value sliceDim(ImplicitLocOpBuilder &b, Value value, unsigned dim,
                      OpFoldResult offset, OpFoldResult size) {
  auto type = cast<RankedTensorType>(value.getType());
  SmallVector<OpFoldResult> sizes = tensor::getMixedSizes(b, b.getLoc(), value);
  SmallVector<OpFoldResult> offsets(type.getRank(), b.getIndexAttr(0));
  SmallVector<OpFoldResult> strides(type.getRank(), b.getIndexAttr(1));
  offsets[dim] = offset;
  sizes[dim] = size;
  return tensor::ExtractSliceOp::create(b, value, offsets, sizes, strides);
}

/// `slice` written back into `dest` at `offset` of dimension `dim` (the
/// inverse of sliceDim).
inline Value insertDim(ImplicitLocOpBuilder &b, Value slice, Value dest,
                       unsigned dim, OpFoldResult offset) {
  auto type = cast<RankedTensorType>(dest.getType());
  SmallVector<OpFoldResult> sizes = tensor::getMixedSizes(b, b.getLoc(), slice);
  SmallVector<OpFoldResult> offsets(type.getRank(), b.getIndexAttr(0));
  SmallVector<OpFoldResult> strides(type.getRank(), b.getIndexAttr(1));
  offsets[dim] = offset;
  return tensor::InsertSliceOp::create(b, slice, dest, offsets, sizes, strides);
}

/// The affine map (d0 .. d{n-1}) -> (d[results...]).
inline AffineMap dimsMap(MLIRContext *ctx, unsigned n,
                         ArrayRef<unsigned> results) {
  SmallVector<AffineExpr> exprs;
  for (unsigned r : results)
    exprs.push_back(getAffineDimExpr(r, ctx));
  return AffineMap::get(n, 0, exprs, ctx);
}

/// The heads of `input: [B, H, N, D]` pooled as `unisparse.compress` pools
/// them, one token per composite (`seq_factor = 1`, mean pooling): an f32
/// tensor of `sizes` ([B, H * kv_group / head_factor, N, D]). Compress.cpp.
Value pooledHeads(ImplicitLocOpBuilder &b, Value input, IntegerAttr headFactor,
                  IntegerAttr kvGroup, ArrayRef<OpFoldResult> sizes);

/// `x` as f32 (extended when narrower).
inline Value toF32(OpBuilder &b, Location loc, Value x) {
  if (x.getType().isF32())
    return x;
  return arith::ExtFOp::create(b, loc, b.getF32Type(), x);
}

/// `x` (f32) rounded to the type of `like` when that is narrower.
inline Value fromF32(OpBuilder &b, Location loc, Value x, Value like) {
  if (like.getType() == x.getType())
    return x;
  return arith::TruncFOp::create(b, loc, like.getType(), x);
}

/// Emits `for iv in [lb, ub) carrying iterArgs`; `body` returns the yields.
inline SmallVector<Value> forLoop(
    ImplicitLocOpBuilder &b, Value lb, Value ub, ValueRange iterArgs,
    function_ref<SmallVector<Value>(ImplicitLocOpBuilder &, Value, ValueRange)>
        body) {
  Value one = arith::ConstantIndexOp::create(b, 1);
  auto loop = scf::ForOp::create(
      b, lb, ub, one, iterArgs,
      [&](OpBuilder &nb, Location loc, Value iv, ValueRange args) {
        ImplicitLocOpBuilder lb2(loc, nb);
        scf::YieldOp::create(lb2, body(lb2, iv, args));
      });
  return loop.getResults();
}

} // namespace mlir::unisparse::detail

#endif // UNISPARSE_LIB_CONVERSION_UNISPARSETOLINALG_LOWERINGUTILS_H
