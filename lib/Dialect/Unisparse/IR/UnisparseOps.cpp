//===- UnisparseOps.cpp - unisparse op verifiers, folders, effects --------===//
//
// Every verifier message names the operand (or attribute), what was expected
// and what was found. The size relations themselves live in ShapeRules.h.
//
//===----------------------------------------------------------------------===//

#include "unisparse/Dialect/Unisparse/IR/UnisparseOps.h"
#include "unisparse/Dialect/Unisparse/IR/ShapeRules.h"

#include "mlir/IR/Builders.h"
#include "mlir/IR/BuiltinTypes.h"
#include "mlir/IR/OpImplementation.h"
#include "mlir/IR/TypeUtilities.h"

#include <functional>

using namespace mlir;
using namespace mlir::unisparse;

bool mlir::unisparse::isAttentionElementType(Type type) {
  return type.isBF16() || type.isF16() || type.isF32();
}

namespace {
int64_t dimOf(Value v, unsigned i) {
  return cast<ShapedType>(v.getType()).getDimSize(i);
}

/// Names of the dimensions of a [B, H, N, D] / [B, H, N] / layout tensor.
constexpr const char *kQkvDims[] = {"batch", "heads", "sequence", "head_dim"};
constexpr const char *kLayoutDims[] = {"batch", "head groups", "query blocks",
                                       "key blocks"};

/// Shared checks of operand ranks, element types and sizes. Each method
/// emits one diagnostic naming the operand and the expected value.
class Checker {
public:
  explicit Checker(Operation *op) : op(op) {}

  /// The operand must be a ranked shaped value of `rank`.
  LogicalResult rank(Value v, StringRef name, int64_t rank) {
    auto type = dyn_cast<ShapedType>(v.getType());
    if (!type || !type.hasRank())
      return op->emitOpError()
             << "operand '" << name << "' must be a ranked tensor or memref";
    if (type.getRank() != rank)
      return op->emitOpError() << "operand '" << name << "' must have rank "
                               << rank << ", found rank " << type.getRank();
    return success();
  }

  /// The element type of `v` must be bf16, f16 or f32.
  LogicalResult attentionElement(Value v, StringRef name) {
    Type et = getElementTypeOrSelf(v.getType());
    if (isAttentionElementType(et))
      return success();
    return op->emitOpError() << "operand '" << name
                             << "' must have element type bf16, f16 or f32, "
                                "found "
                             << et;
  }

  /// The element type of `v` must be `expected`.
  LogicalResult element(Value v, StringRef name, Type expected) {
    Type et = getElementTypeOrSelf(v.getType());
    if (et == expected)
      return success();
    return op->emitOpError()
           << "operand '" << name << "' must have element type " << expected
           << ", found " << et;
  }

  /// The element type of `v` must be f32, bf16 or f16 (composites: summed
  /// in f32, stored in f32 or rounded once to a 16-bit type for tensor
  /// cores).
  LogicalResult compositeElement(Value v, StringRef name) {
    Type et = getElementTypeOrSelf(v.getType());
    if (isAttentionElementType(et))
      return success();
    return op->emitOpError() << "operand '" << name
                             << "' must have element type f32, bf16 or f16, "
                                "found "
                             << et;
  }

  /// The element type of `v` must equal that of `ref`.
  LogicalResult sameElement(Value v, StringRef name, Value ref,
                            StringRef refName) {
    Type et = getElementTypeOrSelf(v.getType());
    Type expected = getElementTypeOrSelf(ref.getType());
    if (et == expected)
      return success();
    return op->emitOpError()
           << "operand '" << name << "' must have the element type of '"
           << refName << "' (" << expected << "), found " << et;
  }

  /// Dimension `dim` of `v` must be `expected` (when both are static).
  LogicalResult dimIs(Value v, StringRef name, unsigned dim, int64_t expected,
                      StringRef what, StringRef why) {
    int64_t found = cast<ShapedType>(v.getType()).getDimSize(dim);
    if (compatibleDim(found, expected))
      return success();
    return op->emitOpError()
           << "operand '" << name << "' dim " << dim << " (" << what
           << ") must be " << expected << " " << why << ", found " << found;
  }

  /// Dimension `dim` of `v` must not be a static 0.
  LogicalResult nonEmptyDim(Value v, StringRef name, unsigned dim,
                            StringRef what) {
    if (cast<ShapedType>(v.getType()).getDimSize(dim) != 0)
      return success();
    return op->emitOpError() << "operand '" << name << "' dim " << dim << " ("
                             << what << ") must be at least 1, found 0";
  }

  /// Dimension `dim` of `v` must match dimension `refDim` of `ref`.
  LogicalResult dimMatches(Value v, StringRef name, unsigned dim, Value ref,
                           StringRef refName, unsigned refDim, StringRef what) {
    int64_t expected = cast<ShapedType>(ref.getType()).getDimSize(refDim);
    return dimIs(v, name, dim, expected, what,
                 ("to match '" + refName + "' dim " + Twine(refDim)).str());
  }

  // The attribute rules of ShapeRules.h, as "attribute '<name>' ...".
  LogicalResult positive(int64_t value, StringRef attr) {
    return verifyPositive(attribute(), attr, value);
  }

  LogicalResult blockCount(int64_t value, StringRef attr) {
    return verifyBlockCount(attribute(), attr, value);
  }

  LogicalResult blockFits(const EstimationParams &params) {
    return verifyBlockFits(attribute(), params);
  }

  /// Every operand's static size in bytes (a dynamic dim counts as 1) fits
  /// in an int64.
  LogicalResult operandsFit() {
    for (auto [i, v] : llvm::enumerate(op->getOperands())) {
      auto type = dyn_cast<ShapedType>(v.getType());
      if (type && staticBytes(type) == kSizeOverflow)
        return op->emitOpError()
               << "operand #" << i << " (" << type
               << ") has more than 2^63 - 1 bytes: its strides and offsets "
                  "cannot be addressed";
    }
    return success();
  }

  /// `bytes`, from a size rule of ShapeRules.h, fits in an int64.
  LogicalResult fits(int64_t bytes, StringRef what) {
    if (bytes != kSizeOverflow)
      return success();
    return op->emitOpError()
           << what
           << " need more than 2^63 - 1 bytes: sizes this large cannot be "
              "addressed (strides and offsets would overflow)";
  }

  LogicalResult multipleOf(int64_t value, StringRef attr, int64_t factor,
                           StringRef factorName) {
    return verifyMultipleOf(attribute(), attr, value, factorName, factor);
  }

  LogicalResult tau(double tau) { return verifyTau(attribute(), tau); }

  LogicalResult scale(double scale) { return verifyScale(attribute(), scale); }

  LogicalResult minMax(int64_t minBlocks, int64_t maxBlocks) {
    return verifyMinMaxBlocks(attribute(), minBlocks, maxBlocks);
  }

  LogicalResult estimatorStride(Estimator estimator, int64_t cq, int64_t ck) {
    return verifyEstimatorStride(attribute(), estimator, cq, ck);
  }

  /// `slots` (a static slot count of an outlier composite) holds `rest`
  /// fixed slots and between 1 and `size - 1` outliers.
  LogicalResult outlierSlots(Value v, StringRef name, int64_t rest,
                             int64_t size, StringRef sizeName) {
    int64_t slots = dimOf(v, 3);
    if (ShapedType::isDynamic(slots))
      return op->emitOpError() << "operand '" << name
                               << "' dim 3 (slots) must be static for the "
                                  "outlier estimator";
    int64_t outliers = slots - rest;
    if (outliers >= 1 && outliers < size)
      return success();
    return op->emitOpError()
           << "operand '" << name << "' dim 3 (slots) must hold " << rest
           << " + r slots with 1 <= r < '" << sizeName << "' (" << size
           << "), found " << slots;
  }

  LogicalResult refinement(int64_t block, int64_t lastQ, int64_t nOffsets,
                           int64_t rowsPerBlock, int64_t width) {
    return verifyRefinement(attribute(), Refine::slash, block, /*causal=*/true,
                            lastQ, nOffsets, rowsPerBlock, width);
  }

  /// `num` must be divisible by `den` when both are static.
  LogicalResult divides(int64_t num, StringRef numName, int64_t den,
                        StringRef denName) {
    if (ShapedType::isDynamic(num) || ShapedType::isDynamic(den) ||
        (den > 0 && num % den == 0))
      return success();
    return op->emitOpError()
           << numName << " (" << num << ") must be a multiple of " << denName
           << " (" << den << ")";
  }

private:
  /// Opens the op's diagnostic for an attribute rule.
  std::function<InFlightDiagnostic()> attribute() {
    return [this] { return op->emitOpError() << "attribute "; };
  }

  Operation *op;
};

/// Dimension `i` of `v`, a dynamic one as 1 (the least a non-empty problem
/// has): size rules on these give lower bounds.
int64_t dimOr1(Value v, unsigned i) {
  int64_t d = dimOf(v, i);
  return ShapedType::isDynamic(d) ? 1 : d;
}

/// Checks q/k/v/o/lse of an attention: ranks, element types, and that batch,
/// heads, sequence and head_dim agree; Hq must be a multiple of Hkv.
LogicalResult verifyQkvOut(Checker &c, Value q, Value k, Value v, Value o,
                           Value lse) {
  if (failed(c.rank(q, "q", 4)) || failed(c.rank(k, "k", 4)) ||
      failed(c.rank(v, "v", 4)) || failed(c.rank(o, "o", 4)) ||
      failed(c.rank(lse, "lse", 3)))
    return failure();
  if (failed(c.attentionElement(q, "q")) ||
      failed(c.sameElement(k, "k", q, "q")) ||
      failed(c.sameElement(v, "v", q, "q")) ||
      failed(c.sameElement(o, "o", q, "q")))
    return failure();
  Builder b(q.getContext());
  if (failed(c.element(lse, "lse", b.getF32Type())))
    return failure();
  // Heads, sequence and head_dim of an attention are at least 1 (a batch of
  // 0 is an empty computation and stays legal).
  for (unsigned d : {1u, 2u, 3u})
    if (failed(c.nonEmptyDim(q, "q", d, kQkvDims[d])))
      return failure();
  if (failed(c.nonEmptyDim(k, "k", 1, kQkvDims[1])))
    return failure();
  for (unsigned d : {0u, 2u, 3u})
    if (failed(c.dimMatches(k, "k", d, q, "q", d, kQkvDims[d])))
      return failure();
  for (unsigned d : {0u, 1u, 2u, 3u})
    if (failed(c.dimMatches(v, "v", d, k, "k", d, kQkvDims[d])))
      return failure();
  for (unsigned d : {0u, 1u, 2u, 3u})
    if (failed(c.dimMatches(o, "o", d, q, "q", d, kQkvDims[d])))
      return failure();
  for (unsigned d : {0u, 1u, 2u})
    if (failed(c.dimMatches(lse, "lse", d, q, "q", d, kQkvDims[d])))
      return failure();
  return c.divides(dimOf(q, 1), "query heads 'q' dim 1", dimOf(k, 1),
                   "kv heads 'k' dim 1");
}

/// Checks a `counts`/`indices` layout pair: ranks, i32 element types and that
/// the leading dims agree with each other.
LogicalResult verifyLayout(Checker &c, Value counts, Value indices) {
  if (failed(c.rank(counts, "counts", 3)) ||
      failed(c.rank(indices, "indices", 4)))
    return failure();
  Builder b(counts.getContext());
  if (failed(c.element(counts, "counts", b.getI32Type())) ||
      failed(c.element(indices, "indices", b.getI32Type())))
    return failure();
  for (unsigned d : {0u, 1u, 2u})
    if (failed(c.dimMatches(indices, "indices", d, counts, "counts", d,
                            kLayoutDims[d])))
      return failure();
  return success();
}
} // namespace

//===----------------------------------------------------------------------===//
// AttentionOp
//===----------------------------------------------------------------------===//

LogicalResult AttentionOp::verify() {
  Checker c(*this);
  if (failed(verifyQkvOut(c, getQ(), getK(), getV(), getOInit(), getLseInit())))
    return failure();
  if (failed(c.divides(dimOf(getQ(), 1), "query heads 'q' dim 1",
                       getConfig().getCH(), "'c_h' of the config")))
    return failure();
  Value q = getQ();
  AttentionSizes sizes{dimOr1(q, 1), dimOr1(getK(), 1), dimOr1(q, 3),
                       staticBytes(RankedTensorType::get(
                           {}, getElementTypeOrSelf(q.getType())))};
  return c.fits(attentionFootprintBytes(
                    StaticSizeArith(), EstimationParams::of(getConfig()), sizes,
                    dimOr1(q, 0), dimOr1(q, 2), ScoreMapTiling()),
                "q, k, v, o, lse and the estimation's workspace (untiled)");
}

/// The two forms of a destination-passing op: every shaped operand a
/// tensor and `tensorResults` results of the types of the inits, or every
/// shaped operand a memref and no results.
static LogicalResult verifyTensorOrBufferForm(DestinationStyleOpInterface op,
                                              StringRef resultNames) {
  Operation *operation = op.getOperation();
  auto shaped = llvm::make_filter_range(operation->getOperandTypes(),
                                        llvm::IsaPred<ShapedType>);
  bool allTensors = llvm::all_of(shaped, llvm::IsaPred<TensorType>);
  bool allMemrefs = llvm::all_of(shaped, llvm::IsaPred<BaseMemRefType>);
  if (!allTensors && !allMemrefs)
    return op->emitOpError("operands must be all tensors or all memrefs");
  unsigned inits = op.getNumDpsInits();
  if (allTensors && operation->getNumResults() != inits)
    return op->emitOpError()
           << "with tensor operands must have " << inits << " result"
           << (inits == 1 ? "" : "s") << " (" << resultNames << "), found "
           << operation->getNumResults();
  if (allMemrefs && operation->getNumResults() != 0)
    return op->emitOpError()
           << "with memref operands must have no results, found "
           << operation->getNumResults();
  if (allTensors) {
    for (auto [i, init] : llvm::enumerate(op.getDpsInits()))
      if (init.getType() != operation->getResult(i).getType())
        return op->emitOpError()
               << "result " << i << " must have the type of its init ("
               << init.getType() << "), found "
               << operation->getResult(i).getType();
  }
  return success();
}

/// Buffer form: reads its input buffers and writes its inits (which it
/// overwrites whole, without reading them). Tensor form: no effects.
static void overwritingBufferEffects(
    DestinationStyleOpInterface op,
    SmallVectorImpl<SideEffects::EffectInstance<MemoryEffects::Effect>>
        &effects) {
  for (OpOperand &operand : op->getOpOperands()) {
    if (!isa<BaseMemRefType>(operand.get().getType()))
      continue;
    if (op.isDpsInit(&operand))
      effects.emplace_back(MemoryEffects::Write::get(), &operand,
                           SideEffects::DefaultResource::get());
    else
      effects.emplace_back(MemoryEffects::Read::get(), &operand,
                           SideEffects::DefaultResource::get());
  }
}

//===----------------------------------------------------------------------===//
// CompressOp
//===----------------------------------------------------------------------===//

void CompressOp::getEffects(
    SmallVectorImpl<SideEffects::EffectInstance<MemoryEffects::Effect>>
        &effects) {
  overwritingBufferEffects(*this, effects);
}

LogicalResult CompressOp::verify() {
  Checker c(*this);
  if (failed(verifyTensorOrBufferForm(*this, "result")))
    return failure();
  int64_t sf = getSeqFactor(), hf = getHeadFactor(), kvg = getKvGroup();
  if (failed(c.positive(sf, "seq_factor")) ||
      failed(c.positive(hf, "head_factor")) ||
      failed(c.positive(kvg, "kv_group")))
    return failure();
  Value in = getInput(), init = getInit();
  Pooling pooling = getPooling();
  bool concat =
      pooling == Pooling::concat || pooling == Pooling::concat_reversed;
  bool outlier = pooling == Pooling::outlier;
  int64_t r = getOutliers(), hot = getHot();
  if (outlier) {
    if (failed(c.positive(r, "outliers")))
      return failure();
    if (r >= sf)
      return emitOpError() << "attribute 'outliers' (" << r
                           << ") must be smaller than 'seq_factor' (" << sf
                           << ")";
    if (hot < 0 || hot > r)
      return emitOpError() << "attribute 'hot' must be in [0, outliers = " << r
                           << "], found " << hot;
  } else if (r != 0 || hot != 0 || getSpread()) {
    return emitOpError() << "attributes 'outliers', 'hot' and 'spread' need "
                            "pooling = outlier, found pooling = "
                         << stringifyPooling(pooling);
  }
  if ((hot > 0) != static_cast<bool>(getQueries()))
    return emitOpError() << "operand 'queries' must be given exactly when "
                            "'hot' > 0 (hot outliers), found hot = "
                         << hot << (getQueries() ? " with" : " without")
                         << " queries";
  if (failed(c.rank(in, "input", 4)) ||
      failed(c.rank(init, "init", concat || outlier ? 5 : 4)) ||
      failed(c.attentionElement(in, "input")) ||
      failed(c.compositeElement(init, "init")))
    return failure();
  int64_t heads = dimOf(in, 1);
  int64_t expanded = ShapedType::isDynamic(heads) ? heads : heads * kvg;
  if (failed(c.divides(expanded, "input heads * kv_group", hf, "head_factor")))
    return failure();
  int64_t groups = ShapedType::isDynamic(expanded) ? expanded : expanded / hf;
  if (failed(c.dimMatches(init, "init", 0, in, "input", 0, "batch")) ||
      failed(c.dimIs(init, "init", 1, groups, "heads",
                     "(input heads * kv_group / head_factor)")) ||
      failed(c.dimIs(init, "init", 2, numComposites(dimOf(in, 2), sf),
                     "composites", "(ceil(input sequence / seq_factor))")) ||
      (concat && failed(c.dimIs(init, "init", 3, sf, "tokens per composite",
                                "(seq_factor, for concat pooling)"))) ||
      (outlier &&
       failed(c.dimIs(init, "init", 3, outlierSlots(r, getSpread()), "slots",
                      "(outliers + 1, + 1 with spread)"))) ||
      failed(c.dimMatches(init, "init", concat || outlier ? 4 : 3, in, "input",
                          3, "head_dim")))
    return failure();
  if (Value queries = getQueries()) {
    int64_t qHeads = ShapedType::isDynamic(groups) ? groups : groups * hf;
    if (failed(c.rank(queries, "queries", 4)) ||
        failed(c.attentionElement(queries, "queries")) ||
        failed(c.dimMatches(queries, "queries", 0, in, "input", 0, "batch")) ||
        failed(c.dimIs(queries, "queries", 1, qHeads, "heads",
                       "(the groups times head_factor)")) ||
        failed(
            c.dimMatches(queries, "queries", 3, in, "input", 3, "head_dim")) ||
        failed(c.nonEmptyDim(queries, "queries", 2, "sequence")))
      return failure();
  }
  StaticSizeArith a;
  CompositeParams params{pooling, sf, r, hot, getSpread()};
  Value queries = getQueries();
  return failure(
      failed(c.operandsFit()) ||
      failed(c.fits(compressionBytes(a, params,
                                     a.mul(dimOr1(init, 0), dimOr1(init, 1)),
                                     dimOr1(in, 2), dimOr1(in, 3),
                                     queries ? dimOr1(queries, 2) : 0),
                    "the composites and their padded buffers")));
}

LogicalResult CompressOp::fold(FoldAdaptor,
                               SmallVectorImpl<OpFoldResult> &results) {
  // Pooling by one token and one head with no head expansion is a copy.
  if (hasPureTensorSemantics() && getSeqFactor() == 1 && getHeadFactor() == 1 &&
      getKvGroup() == 1 && getPooling() == Pooling::mean &&
      getInput().getType() == getResult().getType()) {
    results.push_back(getInput());
    return success();
  }
  return failure();
}

//===----------------------------------------------------------------------===//
// BlockScoreOp
//===----------------------------------------------------------------------===//

void BlockScoreOp::getEffects(
    SmallVectorImpl<SideEffects::EffectInstance<MemoryEffects::Effect>>
        &effects) {
  overwritingBufferEffects(*this, effects);
}

LogicalResult BlockScoreOp::verify() {
  Checker c(*this);
  if (failed(verifyTensorOrBufferForm(*this, "scores")))
    return failure();
  int64_t block = getBlock(), cq = getCQ(), ck = getCK();
  if (failed(c.positive(block, "block")) || failed(c.positive(cq, "c_q")) ||
      failed(c.positive(ck, "c_k")) ||
      failed(c.multipleOf(block, "block", cq, "c_q")) ||
      failed(c.multipleOf(block, "block", ck, "c_k")) ||
      failed(c.scale(getScale().convertToDouble())))
    return failure();
  Value qc = getQc(), kc = getKc(), init = getInit();
  Type f32 = Builder(getContext()).getF32Type();
  Estimator estimator = getEstimator();
  bool anti = isAntidiagonal(estimator);
  int64_t rank = hasSlotComposites(estimator) ? 5 : 4;
  if (failed(c.estimatorStride(getEstimator(), cq, ck)))
    return failure();
  if (failed(c.rank(qc, "qc", rank)) || failed(c.rank(kc, "kc", rank)) ||
      failed(c.rank(init, "init", 4)) || failed(c.compositeElement(qc, "qc")) ||
      failed(c.sameElement(kc, "kc", qc, "qc")) ||
      failed(c.element(init, "init", f32)))
    return failure();
  if (anti && (failed(c.dimIs(qc, "qc", 3, cq, "slots",
                              "(c_q, the antidiagonal stride)")) ||
               failed(c.dimIs(kc, "kc", 3, ck, "slots",
                              "(c_k, the antidiagonal stride)"))))
    return failure();
  // Outlier composites: queries rest + rq rows + spread, keys rest + rk.
  if (estimator == Estimator::outlier &&
      (failed(c.outlierSlots(qc, "qc", 2, cq, "c_q")) ||
       failed(c.outlierSlots(kc, "kc", 1, ck, "c_k"))))
    return failure();
  int64_t kvGroup = getKvGroup();
  if (failed(c.positive(kvGroup, "kv_group")))
    return failure();
  if (kvGroup == 1 &&
      failed(c.dimMatches(kc, "kc", 1, qc, "qc", 1, "head groups")))
    return failure();
  int64_t qHeads = dimOf(qc, 1), kHeads = dimOf(kc, 1);
  if (kvGroup > 1 && !ShapedType::isDynamic(qHeads) &&
      (qHeads % kvGroup != 0 ||
       (!ShapedType::isDynamic(kHeads) && kHeads * kvGroup != qHeads)))
    return emitOpError() << "kv_group = " << kvGroup << " must divide the "
                         << qHeads << " head groups of qc, and kc must have "
                         << "their quotient of heads (kc has "
                         << (ShapedType::isDynamic(kHeads)
                                 ? std::string("?")
                                 : std::to_string(kHeads))
                         << ")";
  if (failed(c.dimMatches(kc, "kc", 0, qc, "qc", 0, "batch")) ||
      failed(
          c.dimMatches(kc, "kc", rank - 1, qc, "qc", rank - 1, "head_dim")) ||
      failed(c.dimMatches(init, "init", 0, qc, "qc", 0, "batch")) ||
      failed(c.dimMatches(init, "init", 1, qc, "qc", 1, "head groups")) ||
      failed(c.dimIs(init, "init", 2,
                     numBlocksOfComposites(dimOf(qc, 2), block, cq),
                     "query blocks", "(ceil(qc dim 2 / (block / c_q)))")) ||
      failed(c.dimIs(init, "init", 3,
                     numBlocksOfComposites(dimOf(kc, 2), block, ck),
                     "key blocks", "(ceil(kc dim 2 / (block / c_k)))")))
    return failure();
  EstimationParams params{block, cq, ck, 1, getEstimator(), getQueryReduce()};
  if (estimator == Estimator::outlier) {
    params.qOutliers = dimOf(qc, 3) - 2;
    params.kOutliers = dimOf(kc, 3) - 1;
  }
  StaticSizeArith a;
  return failure(
      failed(c.blockFits(params)) || failed(c.operandsFit()) ||
      failed(c.fits(scoreMapBytes(a, params,
                                  a.mul(dimOr1(init, 0), dimOr1(init, 1)),
                                  dimOr1(init, 2), dimOr1(init, 3)),
                    "the score map and its row buffers")));
}

//===----------------------------------------------------------------------===//
// BlockSelectOp
//===----------------------------------------------------------------------===//

void BlockSelectOp::getEffects(
    SmallVectorImpl<SideEffects::EffectInstance<MemoryEffects::Effect>>
        &effects) {
  overwritingBufferEffects(*this, effects);
}

LogicalResult BlockSelectOp::verify() {
  Checker c(*this);
  if (failed(verifyTensorOrBufferForm(*this, "counts, indices")))
    return failure();
  if (failed(c.tau(getTau().convertToDouble())) ||
      failed(c.blockCount(getLocalBlocks(), "local_blocks")) ||
      failed(c.minMax(getMinBlocks(), getMaxBlocks())) ||
      failed(c.operandsFit()))
    return failure();
  Value s = getScores();
  if (failed(c.rank(s, "scores", 4)) ||
      failed(c.element(s, "scores", Builder(getContext()).getF32Type())) ||
      failed(verifyLayout(c, getCountsInit(), getIndicesInit())))
    return failure();
  for (unsigned d : {0u, 1u, 2u})
    if (failed(c.dimMatches(getCountsInit(), "counts", d, s, "scores", d,
                            kLayoutDims[d])))
      return failure();
  return c.dimMatches(getIndicesInit(), "indices", 3, s, "scores", 3,
                      kLayoutDims[3]);
}

//===----------------------------------------------------------------------===//
// SlashRefineOp
//===----------------------------------------------------------------------===//

void SlashRefineOp::getEffects(
    SmallVectorImpl<SideEffects::EffectInstance<MemoryEffects::Effect>>
        &effects) {
  overwritingBufferEffects(*this, effects);
}

LogicalResult SlashRefineOp::verify() {
  Checker c(*this);
  if (failed(verifyTensorOrBufferForm(*this, "result")))
    return failure();
  int64_t block = getBlock();
  if (failed(c.positive(block, "block")) ||
      failed(c.refinement(block, getLastQ(), getNOffsets(), getRowsPerBlock(),
                          getWidth())) ||
      failed(c.blockCount(getLocalBlocks(), "local_blocks")) ||
      failed(c.scale(getScale().convertToDouble())))
    return failure();
  Value q = getQ(), k = getK(), s = getScores();
  if (failed(c.rank(q, "q", 4)) || failed(c.rank(k, "k", 4)) ||
      failed(c.rank(s, "scores", 4)) || failed(c.attentionElement(q, "q")) ||
      failed(c.sameElement(k, "k", q, "q")) ||
      failed(c.element(s, "scores", Builder(getContext()).getF32Type())))
    return failure();
  for (unsigned d : {1u, 2u, 3u})
    if (failed(c.nonEmptyDim(q, "q", d, kQkvDims[d])))
      return failure();
  if (failed(c.nonEmptyDim(k, "k", 1, kQkvDims[1])) ||
      failed(c.nonEmptyDim(s, "scores", 1, kLayoutDims[1])))
    return failure();
  for (unsigned d : {0u, 2u, 3u})
    if (failed(c.dimMatches(k, "k", d, q, "q", d, kQkvDims[d])))
      return failure();
  int64_t blocks = numBlocks(dimOf(q, 2), block);
  if (failed(c.divides(dimOf(q, 1), "query heads 'q' dim 1", dimOf(k, 1),
                       "kv heads 'k' dim 1")) ||
      failed(c.dimMatches(s, "scores", 0, q, "q", 0, kLayoutDims[0])) ||
      failed(c.divides(dimOf(q, 1), "query heads 'q' dim 1", dimOf(s, 1),
                       "head groups 'scores' dim 1")) ||
      failed(c.dimIs(s, "scores", 2, blocks, kLayoutDims[2],
                     "(ceil(q sequence / block))")) ||
      failed(c.dimIs(s, "scores", 3, blocks, kLayoutDims[3],
                     "(ceil(q sequence / block))")))
    return failure();
  StaticSizeArith a;
  return failure(
      failed(c.operandsFit()) ||
      failed(c.fits(refinementBytes(a, dimOr1(q, 0), dimOr1(q, 1), dimOr1(k, 1),
                                    dimOr1(s, 1), dimOr1(q, 2), dimOr1(q, 3),
                                    block, getLastQ(), getNOffsets(),
                                    /*hostLoops=*/true),
                    "the last rows' logits and the refinement's buffers")));
}

//===----------------------------------------------------------------------===//
// DenseLayoutOp
//===----------------------------------------------------------------------===//

LogicalResult DenseLayoutOp::verify() {
  Checker c(*this);
  return failure(failed(verifyLayout(c, getCountsInit(), getIndicesInit())) ||
                 failed(c.operandsFit()));
}

//===----------------------------------------------------------------------===//
// BlockSparseAttentionOp
//===----------------------------------------------------------------------===//

LogicalResult BlockSparseAttentionOp::verify() {
  Checker c(*this);
  if (failed(c.positive(getBlock(), "block")) ||
      failed(c.scale(getScale().convertToDouble())))
    return failure();
  if (failed(verifyTensorOrBufferForm(*this, "o, lse")))
    return failure();

  Value q = getQ(), counts = getCounts(), indices = getIndices();
  if (failed(verifyQkvOut(c, q, getK(), getV(), getOInit(), getLseInit())) ||
      failed(verifyLayout(c, counts, indices)) || failed(c.operandsFit()))
    return failure();
  int64_t numBlocks = ceilDivOrDynamic(dimOf(q, 2), getBlock());
  if (failed(c.dimMatches(counts, "counts", 0, q, "q", 0, "batch")) ||
      failed(c.divides(dimOf(q, 1), "query heads 'q' dim 1", dimOf(counts, 1),
                       "head groups 'counts' dim 1")) ||
      failed(c.dimIs(counts, "counts", 2, numBlocks, "query blocks",
                     "(ceil(q sequence / block))")))
    return failure();
  int64_t m = dimOf(indices, 3);
  if (!ShapedType::isDynamic(m) &&
      (m < 1 || (!ShapedType::isDynamic(numBlocks) && m > numBlocks)))
    return emitOpError() << "operand 'indices' dim 3 (key blocks) must be in "
                            "[1, "
                         << numBlocks << "] (ceil(q sequence / block)), found "
                         << m;
  return success();
}

void BlockSparseAttentionOp::getEffects(
    SmallVectorImpl<SideEffects::EffectInstance<MemoryEffects::Effect>>
        &effects) {
  // Tensor form: no side effects. Buffer form: reads every input buffer and
  // writes the two output buffers.
  for (OpOperand &operand : getOperation()->getOpOperands()) {
    if (!isa<BaseMemRefType>(operand.get().getType()))
      continue;
    effects.emplace_back(MemoryEffects::Read::get(), &operand,
                         SideEffects::DefaultResource::get());
    if (isDpsInit(&operand))
      effects.emplace_back(MemoryEffects::Write::get(), &operand,
                           SideEffects::DefaultResource::get());
  }
}

#define GET_OP_CLASSES
#include "unisparse/Dialect/Unisparse/IR/UnisparseOps.cpp.inc"
