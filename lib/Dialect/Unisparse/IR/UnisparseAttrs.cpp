//===- UnisparseAttrs.cpp - #unisparse.config parsing and verification ----===//

#include "unisparse/Dialect/Unisparse/IR/UnisparseAttrs.h"
#include "unisparse/Dialect/Unisparse/IR/ShapeRules.h"

#include "llvm/ADT/APFloat.h"
#include "llvm/ADT/SmallString.h"
#include "llvm/ADT/StringExtras.h"

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

FailureOr<int64_t> mlir::unisparse::parseInt64Parameter(AsmParser &parser,
                                                        StringRef name) {
  SMLoc loc = parser.getCurrentLocation();
  APInt value;
  OptionalParseResult result = parser.parseOptionalInteger(value);
  if (!result.has_value())
    return parser.emitError(loc, "expected integer value");
  if (failed(*result))
    return failure();
  if (value.getSignificantBits() > 64)
    return parser.emitError(loc)
           << "'" << name << "' must fit in a signed 64-bit integer, found "
           << llvm::toString(value, /*Radix=*/10, /*Signed=*/true);
  return value.getSExtValue();
}

InFlightDiagnostic mlir::unisparse::emitUnknownKeyword(
    AsmParser &parser, SMLoc loc, StringRef name, ArrayRef<StringRef> keywords,
    StringRef found) {
  return parser.emitError(loc)
         << "'" << name << "' must be one of " << llvm::join(keywords, ", ")
         << ", found " << found;
}

LogicalResult ConfigAttr::verify(
    function_ref<InFlightDiagnostic()> emitError, int64_t block, int64_t cQ,
    int64_t cK, int64_t cH, llvm::APFloat tauF, int64_t localBlocks, bool sink,
    int64_t minBlocks, int64_t maxBlocks, bool causal, llvm::APFloat scaleF,
    Estimator estimator, QueryReduce queryReduce, int64_t qOutliers,
    int64_t kOutliers, Refine refine, int64_t lastQ, int64_t nOffsets,
    int64_t rowsPerBlock, int64_t width, bool refineNorm) {
  double tau = tauF.convertToDouble(), scale = scaleF.convertToDouble();
  if (failed(verifyPositive(emitError, "block", block)) ||
      failed(verifyPositive(emitError, "c_q", cQ)) ||
      failed(verifyPositive(emitError, "c_k", cK)) ||
      failed(verifyPositive(emitError, "c_h", cH)) ||
      failed(verifyMultipleOf(emitError, "block", block, "c_q", cQ)) ||
      failed(verifyMultipleOf(emitError, "block", block, "c_k", cK)) ||
      failed(verifyTau(emitError, tau)) ||
      failed(verifyBlockCount(emitError, "local_blocks", localBlocks)) ||
      failed(verifyMinMaxBlocks(emitError, minBlocks, maxBlocks)) ||
      failed(verifyScale(emitError, scale)))
    return failure();
  return failure(
      failed(verifyEstimatorStride(emitError, estimator, cQ, cK)) ||
      failed(verifyBlockFits(
          emitError,
          EstimationParams{block, cQ, cK, cH, estimator, queryReduce})) ||
      failed(
          verifyOutliers(emitError, estimator, cQ, cK, qOutliers, kOutliers)) ||
      failed(verifyRefinement(emitError, refine, block, causal, lastQ, nOffsets,
                              rowsPerBlock, width, refineNorm)));
}
