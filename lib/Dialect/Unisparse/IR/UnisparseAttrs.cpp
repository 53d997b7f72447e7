//===- UnisparseAttrs.cpp - #unisparse.config parsing and verification ----===//

#include "unisparse/Dialect/Unisparse/IR/UnisparseAttrs.h"

#include "llvm/ADT/APFloat.h"
#include "llvm/ADT/SmallString.h"

using namespace mlir;
using namespace mlir::unisparse;

#include "unisparse/Dialect/Unisparse/IR/UnisparseEnums.cpp.inc"

std::string mlir::unisparse::formatShortestDouble(double value) {
  llvm::SmallString<32> text;
  llvm::APFloat(value).toString(text);
  // Keep a decimal point so the value reads as a float.
  if (text.find_first_of(".eEnN") == llvm::StringRef::npos)
    text += ".0";
  return std::string(text);
}

void mlir::unisparse::printShortestDouble(AsmPrinter &printer, double value) {
  printer << formatShortestDouble(value);
}

FailureOr<bool> mlir::unisparse::parseBoolKeyword(AsmParser &parser) {
  if (succeeded(parser.parseOptionalKeyword("true")))
    return true;
  if (succeeded(parser.parseOptionalKeyword("false")))
    return false;
  return parser.emitError(parser.getCurrentLocation(),
                          "expected 'true' or 'false'");
}

LogicalResult ConfigAttr::verify(function_ref<InFlightDiagnostic()> emitError,
                                 int64_t block, int64_t cQ, int64_t cK,
                                 int64_t cH, llvm::APFloat tauF,
                                 int64_t localBlocks, bool sink,
                                 int64_t minBlocks, int64_t maxBlocks,
                                 bool causal, llvm::APFloat scaleF,
                                 Estimator estimator, QueryReduce queryReduce) {
  double tau = tauF.convertToDouble(), scale = scaleF.convertToDouble();
  auto positive = [&](int64_t v, StringRef name) -> LogicalResult {
    if (v > 0)
      return success();
    return emitError() << "'" << name << "' must be positive, found " << v;
  };
  if (failed(positive(block, "block")) || failed(positive(cQ, "c_q")) ||
      failed(positive(cK, "c_k")) || failed(positive(cH, "c_h")))
    return failure();
  if (block % cQ != 0)
    return emitError() << "'block' (" << block
                       << ") must be a multiple of 'c_q' (" << cQ << ")";
  if (block % cK != 0)
    return emitError() << "'block' (" << block
                       << ") must be a multiple of 'c_k' (" << cK << ")";
  if (!(tau > 0.0 && tau <= 1.0))
    return emitError() << "'tau' must be in (0, 1], found "
                       << formatShortestDouble(tau);
  if (localBlocks < 0)
    return emitError() << "'local_blocks' must be non-negative, found "
                       << localBlocks;
  if (minBlocks < 0)
    return emitError() << "'min_blocks' must be non-negative, found "
                       << minBlocks;
  if (maxBlocks < 0)
    return emitError() << "'max_blocks' must be non-negative (0: no cap), "
                          "found "
                       << maxBlocks;
  if (maxBlocks > 0 && minBlocks > maxBlocks)
    return emitError() << "'min_blocks' (" << minBlocks
                       << ") must not exceed 'max_blocks' (" << maxBlocks
                       << ")";
  if (!(scale >= 0.0))
    return emitError() << "'scale' must be non-negative (0: 1/sqrt(D)), found "
                       << formatShortestDouble(scale);
  if (isAntidiagonal(estimator) && cQ != cK)
    return emitError() << "'estimator' " << stringifyEstimator(estimator)
                       << " needs 'c_q' == 'c_k' (the stride), found " << cQ
                       << " and " << cK;
  return success();
}
