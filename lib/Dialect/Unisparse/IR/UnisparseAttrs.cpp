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
// equal those values, so that printing round-trips. One table of the fields
// (configFields) serves the parser and the printer.

namespace {
/// The fields of `#unisparse.config` as the parser fills them in and the
/// printer reads them, each initialised to its default: the one place the
/// defaults are written (python/unisparse/config.py `Config` repeats them;
/// test_rules.py checks that the two agree). `refine` and `refine_norm` are
/// unset while they are the values that `causal` and `refine` give them.
struct ConfigValues {
  int64_t block = 128, cQ = 16, cK = 32, cH = 1;
  double tau = 0.9965;
  int64_t localBlocks = 1;
  bool sink = true;
  int64_t minBlocks = 0, maxBlocks = 0;
  bool causal = true;
  double scale = 0.0;
  Estimator estimator = Estimator::outlier;
  QueryReduce queryReduce = QueryReduce::max;
  int64_t qOutliers = 1, kOutliers = 2;
  std::optional<Refine> refine;
  int64_t lastQ = 16, nOffsets = 16, rowsPerBlock = 8, width = 1;
  std::optional<bool> refineNorm;

  /// The values of `attr`, `refine` and `refine_norm` unset where they equal
  /// the values they resolve to.
  static ConfigValues of(ConfigAttr attr) {
    ConfigValues v{
        attr.getBlock(),        attr.getCQ(),         attr.getCK(),
        attr.getCH(),           attr.getTauValue(),   attr.getLocalBlocks(),
        attr.getSink(),         attr.getMinBlocks(),  attr.getMaxBlocks(),
        attr.getCausal(),       attr.getScaleValue(), attr.getEstimator(),
        attr.getQueryReduce(),  attr.getQOutliers(),  attr.getKOutliers(),
        attr.getRefine(),       attr.getLastQ(),      attr.getNOffsets(),
        attr.getRowsPerBlock(), attr.getWidth(),      attr.getRefineNorm()};
    if (v.refine == ConfigAttr::defaultRefine(v.causal))
      v.refine.reset();
    if (v.refineNorm == ConfigAttr::defaultRefineNorm(attr.getRefine()))
      v.refineNorm.reset();
    return v;
  }

  /// The attribute, `refine` and `refine_norm` resolved; verifier errors are
  /// reported at `loc`.
  ConfigAttr getChecked(AsmParser &parser, SMLoc loc) const {
    Refine r = refine.value_or(ConfigAttr::defaultRefine(causal));
    return parser.getChecked<ConfigAttr>(
        loc, parser.getContext(), block, cQ, cK, cH, llvm::APFloat(tau),
        localBlocks, sink, minBlocks, maxBlocks, causal, llvm::APFloat(scale),
        estimator, queryReduce, qOutliers, kOutliers, r, lastQ, nOffsets,
        rowsPerBlock, width,
        refineNorm.value_or(ConfigAttr::defaultRefineNorm(r)));
  }
};

/// How a field's value of type T is parsed and printed; `name` is the type
/// that the generated parser's error message names.
template <typename T> struct FieldType;

template <> struct FieldType<int64_t> {
  static constexpr StringLiteral name = "int64_t";
  static FailureOr<int64_t> parse(AsmParser &parser, StringRef key) {
    return parseInt64Parameter(parser, key);
  }
  static void print(AsmPrinter &printer, int64_t value) { printer << value; }
};

template <> struct FieldType<bool> {
  static constexpr StringLiteral name = "bool";
  static FailureOr<bool> parse(AsmParser &parser, StringRef) {
    return parseBoolKeyword(parser);
  }
  static void print(AsmPrinter &printer, bool value) {
    printer << (value ? "true" : "false");
  }
};

/// A float parameter: an APFloat in the attribute, printed in its shortest
/// round-trip form.
template <> struct FieldType<double> {
  static constexpr StringLiteral name = "::llvm::APFloat";
  static FailureOr<double> parse(AsmParser &parser, StringRef) {
    double value;
    if (parser.parseFloat(value))
      return failure();
    return value;
  }
  static void print(AsmPrinter &printer, double value) {
    printShortestDouble(printer, value);
  }
};

/// An enum parameter, written as its keyword (values 0 .. maxValue()).
template <typename EnumT, unsigned (*maxValue)()> struct EnumFieldType {
  static FailureOr<EnumT> parse(AsmParser &parser, StringRef key) {
    return parseEnumParameter<EnumT>(parser, key, maxValue());
  }
  static void print(AsmPrinter &printer, EnumT value) {
    printer << stringifyEnum(value);
  }
};

template <>
struct FieldType<Estimator>
    : EnumFieldType<Estimator, getMaxEnumValForEstimator> {
  static constexpr StringLiteral name = "::mlir::unisparse::Estimator";
};

template <>
struct FieldType<QueryReduce>
    : EnumFieldType<QueryReduce, getMaxEnumValForQueryReduce> {
  static constexpr StringLiteral name = "::mlir::unisparse::QueryReduce";
};

template <>
struct FieldType<Refine> : EnumFieldType<Refine, getMaxEnumValForRefine> {
  static constexpr StringLiteral name = "::mlir::unisparse::Refine";
};

/// A field whose default depends on other fields (`refine`, `refine_norm`):
/// unset while it is that default, printed only when set.
template <typename T> struct FieldType<std::optional<T>> : FieldType<T> {
  static void print(AsmPrinter &printer, const std::optional<T> &value) {
    FieldType<T>::print(printer, *value);
  }
};

/// The type of the member that `M` points to.
template <typename M> struct MemberType;
template <typename C, typename T> struct MemberType<T C::*> {
  using type = T;
};

/// One field of `#unisparse.config`: its keyword and how its member of
/// ConfigValues is parsed and printed.
struct ConfigField {
  StringLiteral key;
  /// Parses the value after `key =` into `values`.
  LogicalResult (*parse)(AsmParser &parser, StringRef key,
                         ConfigValues &values);
  /// Whether `values` holds the field's default (the printer omits it).
  bool (*isDefault)(const ConfigValues &values);
  void (*print)(AsmPrinter &printer, const ConfigValues &values);
};
} // namespace

/// Whether two values of a field are the same; floats bit for bit, as the
/// attribute compares them.
template <typename T> static bool sameValue(const T &lhs, const T &rhs) {
  return lhs == rhs;
}
static bool sameValue(double lhs, double rhs) {
  return llvm::bit_cast<uint64_t>(lhs) == llvm::bit_cast<uint64_t>(rhs);
}

/// The field `key` held in ConfigValues' member `Member`.
template <auto Member> static constexpr ConfigField field(StringLiteral key) {
  using Type = FieldType<typename MemberType<decltype(Member)>::type>;
  return ConfigField{
      key,
      [](AsmParser &parser, StringRef key,
         ConfigValues &values) -> LogicalResult {
        auto value = Type::parse(parser, key);
        if (failed(value))
          return parser.emitError(
                     parser.getCurrentLocation(),
                     "failed to parse Unisparse_ConfigAttr parameter '")
                 << key << "' which is to be a `" << Type::name << "`";
        values.*Member = *value;
        return success();
      },
      [](const ConfigValues &values) {
        return sameValue(values.*Member, ConfigValues().*Member);
      },
      [](AsmPrinter &printer, const ConfigValues &values) {
        Type::print(printer, values.*Member);
      }};
}

/// The fields, in the order the printer writes them (the parameters').
static constexpr ConfigField configFields[] = {
    field<&ConfigValues::block>("block"),
    field<&ConfigValues::cQ>("c_q"),
    field<&ConfigValues::cK>("c_k"),
    field<&ConfigValues::cH>("c_h"),
    field<&ConfigValues::tau>("tau"),
    field<&ConfigValues::localBlocks>("local_blocks"),
    field<&ConfigValues::sink>("sink"),
    field<&ConfigValues::minBlocks>("min_blocks"),
    field<&ConfigValues::maxBlocks>("max_blocks"),
    field<&ConfigValues::causal>("causal"),
    field<&ConfigValues::scale>("scale"),
    field<&ConfigValues::estimator>("estimator"),
    field<&ConfigValues::queryReduce>("query_reduce"),
    field<&ConfigValues::qOutliers>("q_outliers"),
    field<&ConfigValues::kOutliers>("k_outliers"),
    field<&ConfigValues::refine>("refine"),
    field<&ConfigValues::lastQ>("last_q"),
    field<&ConfigValues::nOffsets>("n_offsets"),
    field<&ConfigValues::rowsPerBlock>("rows_per_block"),
    field<&ConfigValues::width>("width"),
    field<&ConfigValues::refineNorm>("refine_norm"),
};

Attribute ConfigAttr::parse(AsmParser &parser, Type) {
  SMLoc loc = parser.getCurrentLocation();
  ConfigValues values;
  llvm::StringSet<> seen;
  // Parses `= value` of field `key` into `values`.
  auto parseField = [&](StringRef key) -> LogicalResult {
    auto unknown = [&] {
      return parser.emitError(parser.getCurrentLocation(),
                              "duplicate or unknown struct parameter name: ")
             << key;
    };
    if (!seen.insert(key).second)
      return unknown();
    if (parser.parseEqual())
      return failure();
    const ConfigField *entry = llvm::find_if(
        configFields, [&](const ConfigField &f) { return f.key == key; });
    if (entry == std::end(configFields))
      return unknown();
    return entry->parse(parser, key, values);
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
  return values.getChecked(parser, loc);
}

void ConfigAttr::print(AsmPrinter &printer) const {
  ConfigValues values = ConfigValues::of(*this);
  auto given = llvm::make_filter_range(
      configFields, [&](const ConfigField &f) { return !f.isDefault(values); });
  printer << "<";
  llvm::interleaveComma(given, printer, [&](const ConfigField &f) {
    printer << f.key << " = ";
    f.print(printer, values);
  });
  printer << ">";
}
