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
/// Parses the integer of parameter `name`; one that does not fit in int64_t
/// gives "'<name>' must fit in a signed 64-bit integer, found <value>" (the
/// wording of python/unisparse/rules.py).
FailureOr<int64_t> parseInt64Parameter(AsmParser &parser, StringRef name);
/// Emits "'<name>' must be one of <keywords>, found <keyword>".
InFlightDiagnostic emitUnknownKeyword(AsmParser &parser, SMLoc loc,
                                      StringRef name,
                                      ArrayRef<StringRef> keywords,
                                      StringRef found);
} // namespace mlir::unisparse

#include "unisparse/Dialect/Unisparse/IR/UnisparseEnums.h.inc"

namespace mlir::unisparse {
/// Parses the keyword of enum parameter `name` (values 0 .. `maxValue`); an
/// unknown keyword gives "'<name>' must be one of a, b, c, found x".
template <typename EnumT>
FailureOr<EnumT> parseEnumParameter(AsmParser &parser, StringRef name,
                                    uint32_t maxValue) {
  SMLoc loc = parser.getCurrentLocation();
  StringRef keyword;
  if (failed(parser.parseKeyword(&keyword)))
    return failure();
  if (std::optional<EnumT> value = symbolizeEnum<EnumT>(keyword))
    return *value;
  SmallVector<StringRef> keywords;
  for (uint32_t i = 0; i <= maxValue; ++i)
    keywords.push_back(stringifyEnum(static_cast<EnumT>(i)));
  return emitUnknownKeyword(parser, loc, name, keywords, keyword);
}
} // namespace mlir::unisparse

namespace mlir::unisparse {
/// True for the estimators whose composites are `stride` concatenated tokens
/// (rank-5 composites; c_q == c_k == stride).
inline bool isAntidiagonal(Estimator e) {
  return e == Estimator::antidiag || e == Estimator::antidiag_lse;
}
/// True for the estimators whose composites have a slot dimension
/// ([B, Hg, T, slots, D], rank 5): the antidiagonal ones and `outlier`.
inline bool hasSlotComposites(Estimator e) { return e != Estimator::mean; }
} // namespace mlir::unisparse

#define GET_ATTRDEF_CLASSES
#include "unisparse/Dialect/Unisparse/IR/UnisparseAttrs.h.inc"

#endif // UNISPARSE_DIALECT_UNISPARSE_IR_UNISPARSEATTRS_H
