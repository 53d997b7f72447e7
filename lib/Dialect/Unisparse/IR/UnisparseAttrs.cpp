//===- UnisparseAttrs.cpp - #unisparse.config parsing and verification ----===//

#include "unisparse/Dialect/Unisparse/IR/UnisparseAttrs.h"
#include "unisparse/Dialect/Unisparse/IR/ShapeRules.h"

#include "llvm/ADT/APFloat.h"
#include "llvm/ADT/SmallString.h"
#include "llvm/ADT/StringExtras.h"
#include "llvm/ADT/StringSet.h"

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

//===----------------------------------------------------------------------===//
// `#unisparse.config<...>`: `<` struct(params) `>` by hand
//===----------------------------------------------------------------------===//
//
// The syntax and the messages of the generated struct(params) format, with
// one difference it cannot express: an omitted `refine` is
// `defaultRefine(causal)` and an omitted `refine_norm`
// `defaultRefineNorm(refine)`, and the printer omits them exactly when they
// equal those values, so that printing round-trips.

namespace {
/// The default of every field of `#unisparse.config` but `refine` and
/// `refine_norm` (UnisparseAttrs.td; python/unisparse/config.py `Config`).
struct ConfigDefaults {
  static constexpr int64_t block = 128, cQ = 16, cK = 32, cH = 1;
  static constexpr double tau = 0.9965;
  static constexpr int64_t localBlocks = 1;
  static constexpr bool sink = true;
  static constexpr int64_t minBlocks = 0, maxBlocks = 0;
  static constexpr bool causal = true;
  static constexpr double scale = 0.0;
  static constexpr Estimator estimator = Estimator::outlier;
  static constexpr QueryReduce queryReduce = QueryReduce::max;
  static constexpr int64_t qOutliers = 1, kOutliers = 2;
  static constexpr int64_t lastQ = 16, nOffsets = 16, rowsPerBlock = 8,
                           width = 1;
};
} // namespace

Attribute ConfigAttr::parse(AsmParser &parser, Type) {
  using D = ConfigDefaults;
  SMLoc loc = parser.getCurrentLocation();
  int64_t block = D::block, cQ = D::cQ, cK = D::cK, cH = D::cH;
  double tau = D::tau, scale = D::scale;
  int64_t localBlocks = D::localBlocks, minBlocks = D::minBlocks,
          maxBlocks = D::maxBlocks;
  bool sink = D::sink, causal = D::causal;
  Estimator estimator = D::estimator;
  QueryReduce queryReduce = D::queryReduce;
  int64_t qOutliers = D::qOutliers, kOutliers = D::kOutliers;
  std::optional<Refine> refine;
  int64_t lastQ = D::lastQ, nOffsets = D::nOffsets,
          rowsPerBlock = D::rowsPerBlock, width = D::width;
  std::optional<bool> refineNorm;

  llvm::StringSet<> seen;
  // Parses `= value` of parameter `key` into its variable.
  auto parseField = [&](StringRef key) -> LogicalResult {
    auto fail = [&](StringRef type) {
      parser.emitError(parser.getCurrentLocation(),
                       "failed to parse Unisparse_ConfigAttr parameter '")
          << key << "' which is to be a `" << type << "`";
      return failure();
    };
    auto intField = [&](int64_t &out) -> LogicalResult {
      FailureOr<int64_t> v = parseInt64Parameter(parser, key);
      if (failed(v))
        return fail("int64_t");
      out = *v;
      return success();
    };
    auto boolField = [&](bool &out) -> LogicalResult {
      FailureOr<bool> v = parseBoolKeyword(parser);
      if (failed(v))
        return fail("bool");
      out = *v;
      return success();
    };
    auto floatField = [&](double &out) -> LogicalResult {
      if (parser.parseFloat(out))
        return fail("::llvm::APFloat");
      return success();
    };
    auto enumField = [&](auto &out, uint32_t maxValue,
                         StringRef type) -> LogicalResult {
      using EnumT = std::remove_reference_t<decltype(out)>;
      FailureOr<EnumT> v = parseEnumParameter<EnumT>(parser, key, maxValue);
      if (failed(v))
        return fail(type);
      out = *v;
      return success();
    };
    if (!seen.insert(key).second)
      return parser.emitError(parser.getCurrentLocation(),
                              "duplicate or unknown struct parameter name: ")
             << key;
    if (parser.parseEqual())
      return failure();
    if (key == "block")
      return intField(block);
    if (key == "c_q")
      return intField(cQ);
    if (key == "c_k")
      return intField(cK);
    if (key == "c_h")
      return intField(cH);
    if (key == "tau")
      return floatField(tau);
    if (key == "local_blocks")
      return intField(localBlocks);
    if (key == "sink")
      return boolField(sink);
    if (key == "min_blocks")
      return intField(minBlocks);
    if (key == "max_blocks")
      return intField(maxBlocks);
    if (key == "causal")
      return boolField(causal);
    if (key == "scale")
      return floatField(scale);
    if (key == "estimator")
      return enumField(estimator, getMaxEnumValForEstimator(),
                       "::mlir::unisparse::Estimator");
    if (key == "query_reduce")
      return enumField(queryReduce, getMaxEnumValForQueryReduce(),
                       "::mlir::unisparse::QueryReduce");
    if (key == "q_outliers")
      return intField(qOutliers);
    if (key == "k_outliers")
      return intField(kOutliers);
    if (key == "refine") {
      Refine r;
      if (failed(enumField(r, getMaxEnumValForRefine(),
                           "::mlir::unisparse::Refine")))
        return failure();
      refine = r;
      return success();
    }
    if (key == "last_q")
      return intField(lastQ);
    if (key == "n_offsets")
      return intField(nOffsets);
    if (key == "rows_per_block")
      return intField(rowsPerBlock);
    if (key == "width")
      return intField(width);
    if (key == "refine_norm") {
      bool b;
      if (failed(boolField(b)))
        return failure();
      refineNorm = b;
      return success();
    }
    return parser.emitError(parser.getCurrentLocation(),
                            "duplicate or unknown struct parameter name: ")
           << key;
  };

  if (parser.parseLess())
    return {};
  StringRef key;
  if (succeeded(parser.parseOptionalKeyword(&key))) {
    if (failed(parseField(key)))
      return {};
    while (succeeded(parser.parseOptionalComma())) {
      if (parser.parseKeyword(&key)) {
        parser.emitError(parser.getCurrentLocation(),
                         "expected a parameter name in struct");
        return {};
      }
      if (failed(parseField(key)))
        return {};
    }
  }
  if (parser.parseGreater())
    return {};
  Refine resolvedRefine = refine.value_or(defaultRefine(causal));
  return parser.getChecked<ConfigAttr>(
      loc, parser.getContext(), block, cQ, cK, cH, llvm::APFloat(tau),
      localBlocks, sink, minBlocks, maxBlocks, causal, llvm::APFloat(scale),
      estimator, queryReduce, qOutliers, kOutliers, resolvedRefine, lastQ,
      nOffsets, rowsPerBlock, width,
      refineNorm.value_or(defaultRefineNorm(resolvedRefine)));
}

void ConfigAttr::print(AsmPrinter &printer) const {
  using D = ConfigDefaults;
  printer << "<";
  bool first = true;
  auto field = [&](StringRef key) -> AsmPrinter & {
    if (!first)
      printer << ", ";
    first = false;
    return printer << key << " = ";
  };
  auto intField = [&](StringRef key, int64_t value, int64_t dflt) {
    if (value != dflt)
      field(key) << value;
  };
  auto boolField = [&](StringRef key, bool value, bool dflt) {
    if (value != dflt)
      field(key) << (value ? "true" : "false");
  };
  auto floatField = [&](StringRef key, const llvm::APFloat &value,
                        double dflt) {
    if (!value.bitwiseIsEqual(llvm::APFloat(dflt))) {
      field(key);
      printShortestDouble(printer, value.convertToDouble());
    }
  };
  intField("block", getBlock(), D::block);
  intField("c_q", getCQ(), D::cQ);
  intField("c_k", getCK(), D::cK);
  intField("c_h", getCH(), D::cH);
  floatField("tau", getTau(), D::tau);
  intField("local_blocks", getLocalBlocks(), D::localBlocks);
  boolField("sink", getSink(), D::sink);
  intField("min_blocks", getMinBlocks(), D::minBlocks);
  intField("max_blocks", getMaxBlocks(), D::maxBlocks);
  boolField("causal", getCausal(), D::causal);
  floatField("scale", getScale(), D::scale);
  if (getEstimator() != D::estimator)
    field("estimator") << stringifyEstimator(getEstimator());
  if (getQueryReduce() != D::queryReduce)
    field("query_reduce") << stringifyQueryReduce(getQueryReduce());
  intField("q_outliers", getQOutliers(), D::qOutliers);
  intField("k_outliers", getKOutliers(), D::kOutliers);
  if (getRefine() != defaultRefine(getCausal()))
    field("refine") << stringifyRefine(getRefine());
  intField("last_q", getLastQ(), D::lastQ);
  intField("n_offsets", getNOffsets(), D::nOffsets);
  intField("rows_per_block", getRowsPerBlock(), D::rowsPerBlock);
  intField("width", getWidth(), D::width);
  boolField("refine_norm", getRefineNorm(), defaultRefineNorm(getRefine()));
  printer << ">";
}
