//===- UnisparseAttrs.h - unisparse attributes ------------------*- C++ -*-===//

#ifndef UNISPARSE_DIALECT_UNISPARSE_IR_UNISPARSEATTRS_H
#define UNISPARSE_DIALECT_UNISPARSE_IR_UNISPARSEATTRS_H

#include "mlir/IR/Attributes.h"
#include "mlir/IR/BuiltinAttributes.h"
#include "mlir/IR/DialectImplementation.h"

namespace mlir::unisparse {
/// Prints `value` in its shortest form that parses back to the same double.
void printShortestDouble(AsmPrinter &printer, double value);
/// `value` in its shortest round-trip decimal form ("0.9", "-0.5").
std::string formatShortestDouble(double value);
/// Parses `true` or `false`.
FailureOr<bool> parseBoolKeyword(AsmParser &parser);
} // namespace mlir::unisparse

#include "unisparse/Dialect/Unisparse/IR/UnisparseEnums.h.inc"

namespace mlir::unisparse {
/// True for the estimators whose composites are `stride` concatenated tokens
/// (rank-5 composites; c_q == c_k == stride).
inline bool isAntidiagonal(Estimator e) { return e != Estimator::mean; }
} // namespace mlir::unisparse

#define GET_ATTRDEF_CLASSES
#include "unisparse/Dialect/Unisparse/IR/UnisparseAttrs.h.inc"

#endif // UNISPARSE_DIALECT_UNISPARSE_IR_UNISPARSEATTRS_H
