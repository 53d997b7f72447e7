//===- ShapeRules.h - rules shared by verifiers and builders ----*- C++ -*-===//
//
// The size relations between the operands of unisparse ops and the rules of
// their attributes, as free functions that the verifiers, the decomposition
// and the lowerings all use, so that a rule is written once. The Python
// package states the same rules, worded the same way, in
// python/unisparse/rules.py; test/python/test_rules.py checks that both
// accept and reject the same values for the same reason.
//
//===----------------------------------------------------------------------===//

#ifndef UNISPARSE_DIALECT_UNISPARSE_IR_SHAPERULES_H
#define UNISPARSE_DIALECT_UNISPARSE_IR_SHAPERULES_H

#include "unisparse/Dialect/Unisparse/IR/UnisparseAttrs.h"

#include "mlir/IR/Builders.h"
#include "mlir/IR/BuiltinTypes.h"
#include "mlir/IR/Diagnostics.h"
#include "mlir/IR/ImplicitLocOpBuilder.h"
#include "mlir/IR/OpDefinition.h"
#include <cstdint>
#include <limits>

namespace mlir::unisparse {

/// ceil(a / b) for a >= 0, b > 0; dynamic stays dynamic. Written without
/// `a + b - 1`, which overflows for sizes near 2^63.
inline int64_t ceilDivOrDynamic(int64_t a, int64_t b) {
  if (ShapedType::isDynamic(a))
    return ShapedType::kDynamic;
  return a / b + (a % b != 0 ? 1 : 0);
}

/// Number of composites of `n` tokens pooled by `factor`.
inline int64_t numComposites(int64_t n, int64_t factor) {
  return ceilDivOrDynamic(n, factor);
}

/// Number of blocks of a sequence of `t` composites of `factor` tokens each,
/// for block size `block` (a multiple of `factor`).
inline int64_t numBlocksOfComposites(int64_t t, int64_t block, int64_t factor) {
  return ceilDivOrDynamic(t, block / factor);
}

/// Number of blocks of `block` tokens in a sequence of `n` tokens.
inline int64_t numBlocks(int64_t n, int64_t block) {
  return ceilDivOrDynamic(n, block);
}

/// numComposites and numBlocks as OpFoldResults for builders: a constant when
/// `n` is, else an affine.apply (ceildiv) of it.
OpFoldResult numCompositesOfr(OpBuilder &b, Location loc, OpFoldResult n,
                              int64_t factor);
OpFoldResult numBlocksOfr(OpBuilder &b, Location loc, OpFoldResult n,
                          int64_t block);

/// True when a selection keeps every visible block whatever the scores:
/// tau >= 1, or min_blocks at least the number of key blocks (when static;
/// min_blocks <= max_blocks, so no cap binds). Then the layout is
/// dense_layout and the estimation is dead.
inline bool keepsEveryBlock(double tau, int64_t minBlocks,
                            int64_t numKeyBlocks) {
  return tau >= 1.0 ||
         (!ShapedType::isDynamic(numKeyBlocks) && minBlocks >= numKeyBlocks);
}

/// True if the two sizes can be equal (either is dynamic, or they match).
inline bool compatibleDim(int64_t a, int64_t b) {
  return ShapedType::isDynamic(a) || ShapedType::isDynamic(b) || a == b;
}

//===----------------------------------------------------------------------===//
// Attribute rules, shared by #unisparse.config's verifier and the op
// verifiers. Each returns failure after writing into the diagnostic that
// `emit()` opens what was expected and what was found, starting with the
// quoted attribute name; the caller's diagnostic says where (an op's starts
// with "attribute ").
//===----------------------------------------------------------------------===//

using EmitFn = function_ref<InFlightDiagnostic()>;

/// `value` > 0.
LogicalResult verifyPositive(EmitFn emit, StringRef name, int64_t value);
/// `value` >= 0; `note` (e.g. "(0: no cap)") follows "non-negative".
LogicalResult verifyNonNegative(EmitFn emit, StringRef name, int64_t value,
                                StringRef note = "");
/// `value` is a multiple of `factor` (> 0).
LogicalResult verifyMultipleOf(EmitFn emit, StringRef name, int64_t value,
                               StringRef factorName, int64_t factor);
/// tau in (0, 1].
LogicalResult verifyTau(EmitFn emit, double tau);
/// 0 <= scale <= the largest f32 (0: 1/sqrt(D)), so neither NaN nor
/// infinity, and a non-zero scale must not round to 0 in f32 (which would
/// select 1/sqrt(D) instead).
LogicalResult verifyScale(EmitFn emit, double scale);
/// Block counts (local_blocks, min_blocks, max_blocks) are at most 2^62: a
/// count of at least the number of blocks already means all of them, no
/// sequence has 2^62 blocks (see the size rules below), and a block index
/// plus such a count cannot overflow an int64 in the lowering.
constexpr int64_t kMaxBlockCount = int64_t(1) << 62;

/// `value` in [0, kMaxBlockCount]; `note` as for verifyNonNegative.
LogicalResult verifyBlockCount(EmitFn emit, StringRef name, int64_t value,
                               StringRef note = "");

/// min_blocks, max_blocks in [0, kMaxBlockCount], and min_blocks <=
/// max_blocks unless max_blocks = 0 (no cap).
LogicalResult verifyMinMaxBlocks(EmitFn emit, int64_t minBlocks,
                                 int64_t maxBlocks);

/// The head counts of an attention: heads (Hq), kv_heads (Hkv) and head_dim
/// positive, Hq a multiple of Hkv (GQA) and of the head-group size c_h.
LogicalResult verifyHeads(EmitFn emit, int64_t heads, int64_t kvHeads,
                          int64_t headDim, int64_t ch);

/// The antidiagonal estimators need c_q == c_k (the stride).
LogicalResult verifyEstimatorStride(EmitFn emit, Estimator estimator,
                                    int64_t cq, int64_t ck);

/// q_outliers and k_outliers are positive; the outlier estimator keeps
/// fewer outliers than a composite has tokens (q_outliers < c_q,
/// k_outliers < c_k).
LogicalResult verifyOutliers(EmitFn emit, Estimator estimator, int64_t cq,
                             int64_t ck, int64_t qOutliers, int64_t kOutliers);

/// The largest last_q, n_offsets, rows_per_block and width of the slash
/// refinement: the lowering keeps last_q rows of logits per head, places
/// probe rows with (2 t + 1) * rem / (2 rows_per_block), rem < 2
/// rows_per_block, and visits n_offsets * (2 width + 1) candidate keys per
/// probe row; values past any sequence length must not overflow its index
/// arithmetic.
constexpr int64_t kMaxRefineParam = int64_t(1) << 20;

/// The slash refinement's parameters (the config's fields with `refine`,
/// the attributes of unisparse.slash_refine): last_q, n_offsets and
/// rows_per_block positive, width non-negative, all four at most
/// kMaxRefineParam; with refine = slash also rows_per_block
/// <= block and causal attention (the last queries see every key);
/// refine_norm only with refine = slash (it normalises that refinement).
LogicalResult verifyRefinement(EmitFn emit, Refine refine, int64_t block,
                               bool causal, int64_t lastQ, int64_t nOffsets,
                               int64_t rowsPerBlock, int64_t width,
                               bool refineNorm = false);

/// Why unisparse.slash_refine with q and k of `element`, `qHeads` query,
/// `kvHeads` kv heads, `groups` head groups and head dimension `headDim`
/// (ShapedType::kDynamic where not static) has no GPU kernel, or an empty
/// string: the kernels need bf16 or f16 (tensor cores), static head counts
/// and a static head dimension that is a multiple of 16 (the mma k step),
/// and `width` at most kRefineKernelMaxWidth (the probe kernel carries a
/// sum per key block that an offset's 2 width + 1 keys of 8 probe rows can
/// reach, unrolled: a wider window would spill or not compile).
/// convert-unisparse-to-linalg leaves exactly these for the kernels.
constexpr int64_t kRefineKernelMaxWidth = 8;
std::string refinementKernelUnsupportedReason(Type element, int64_t qHeads,
                                              int64_t kvHeads, int64_t groups,
                                              int64_t headDim, int64_t width);

/// The most values of a composite's tokens a lane of the outlier compress
/// kernel keeps in registers: seqFactor x headDim / 32 (its coordinates of
/// every token), the kernel being unrolled over the tokens. ptxas 13.0
/// (sm_90a) compiles it without spills up to this at head dimensions 32 to
/// 256, queries (spread) and keys (hot outliers) alike; from 1.5 times it
/// the queries spill, from twice it all (docs/GPU.md, "The outlier
/// compress kernels").
constexpr int64_t kOutlierCompressMaxLaneValues = 128;

/// Why unisparse.compress {pooling = outlier} of an input with head
/// dimension `headDim` (ShapedType::kDynamic where not static) in
/// composites of `seqFactor` tokens has no GPU kernel
/// (OutlierCompressKernel.cpp), or an empty string: a warp holds a token,
/// so the head dimension must be a static multiple of 32 up to 256 (up to
/// 8 coordinates a lane), and a lane keeps its coordinates of the
/// composite's tokens in registers, so seqFactor x headDim / 32 must be at
/// most kOutlierCompressMaxLaneValues (at D 128: 32 tokens a composite).
/// convert-unisparse-to-linalg (gpu-kernels) leaves exactly these for it;
/// the others take the structured path.
std::string outlierCompressKernelUnsupportedReason(int64_t headDim,
                                                   int64_t seqFactor);

/// The number of slots of an outlier composite: the mean of the rest, the
/// `outliers` tokens, and (queries) the spread.
inline int64_t outlierSlots(int64_t outliers, bool spread) {
  return outliers + 1 + (spread ? 1 : 0);
}

/// True for the element types attention accepts: bf16, f16, f32.
bool isAttentionElementType(Type type);

//===----------------------------------------------------------------------===//
// Size rules: the bytes of the buffers that an attention's lowering creates.
//
// One definition, evaluated two ways: on static sizes (StaticSizeArith) by
// the verifiers, which reject shapes whose buffers could not even be
// addressed (a byte size beyond int64: strides and offsets would wrap in the
// lowering), and as IR (IRSizeArith) by the compiled entry points, which
// compute the workspace of the actual batch and sequence length before
// running and refuse what is out of bounds (buildEntryModule).
//
// The rule is an upper bound of what the lowering allocates, counted as if
// every buffer were live at once (the lowering frees some earlier):
//   compression  mean: qc [B, Hg, Tq, D] and kc [B, Hg, Tk, D] in f32;
//                antidiagonal (concatenated) composites: for each side three
//                [B, Hg, T * c, D] f32 buffers (heads pooled, zero-padded,
//                slotted); outlier composites (r outliers, `slots` = r + 1,
//                + 1 with spread), per (batch, head group) pair: the pooled
//                tokens N * D and their padded copy T * c * D, the pooled
//                queries Nq * D (hot outliers), the center and probe 2 * D,
//                the token scores and heats and their padded copies
//                2 * N + 2 * T * c, per outlier its best score and slot index
//                (i64) 3 * T, the rest's counts 2 * T, and T * D each for the
//                rest's sums and mean, the spread's, every outlier token
//                and every slot of the result: T * D * (4 + r + slots);
//   score map    for a tile of P (batch, head group) pairs and R = Iq * rq
//                query composites (Iq query blocks) against all
//                K = NBk * rk key composites, f32: the map P*R*K, its lanes
//                P*R*rk, row max and sum 2*P*R; antidiag_lse adds its slot
//                logits P*R*K*c_q and their max and sum 2*P*R*K; the
//                outlier estimator's map is one of slot pairs instead,
//                P*R*nq*K*sk (nq = q_outliers + 1 query slots, sk =
//                k_outliers + 1 key slots), with two (max, sum) pairs and
//                the spread per query slot 6*P*R*nq, the key slot norms
//                2*P*K*sk, the mixed map P*R*K and unit row sums P*R;
//                query_reduce = max adds P*R*NBk;
//   layout       scores f32 and indices i32 [B, Hg, NB, NB], counts [B, Hg,
//                NB].
//   GPU scoring  instead of a map, the tensor-core scoring kernel of
//                convert-unisparse-to-gpu keeps a scratch slot per CTA:
//                C = min(ctas, B * Hg * ceil(Tq / rows)) slots of `rows`
//                query composites, each with partial sums over
//                KT * (keyTile / rk) blocks and maxima over KT key tiles,
//                KT = ceil(Tk / keyTile): C * rows * KT * (keyTile / rk *
//                pb + 4) bytes, pb = 2 (f16 partial sums) or 4 (f32);
//                with the separate epilogue kernel, a slot per work unit
//                (a pair of causal CTA tiles, see separateUnitKeyTiles) of
//                a chunk of units, at most `chunkBytes` of them but at
//                least a unit per CTA (so it grows as N at most), and a
//                row sum per query composite of the unit's tiles; the
//                outlier estimator's kernel: C slots of 2 rows (its query
//                slots) per query composite, pb as its partial sums
//                (score-partials), plus its f32 key slot norms
//                (k_outliers + 1) * KT * keyTile and query spreads Tq per
//                (batch, head group);
// rq = block / c_q, rk = block / c_k, Tq = ceil(N / c_q), Tk = ceil(N / c_k),
// NB = ceil(N / block). Untiled (the linalg lowering of a whole
// block_score, as unisparse-to-nvptx does where the tensor-core kernel does
// not apply), the score map is one tile of P = B * Hg, Iq = NB; tiled by
// `unisparse-tile-estimation` (the CPU pipeline), P = 1 and Iq = its
// query-blocks option. Each buffer counts kBufferAlignment more bytes
// (allocations are rounded up to it). The runtime's attention kernel
// allocates and checks its own scratch and is not counted. Every product
// and sum saturates at kSizeOverflow.
//===----------------------------------------------------------------------===//

/// "Does not fit in an int64": where the size rules saturate.
constexpr int64_t kSizeOverflow = std::numeric_limits<int64_t>::max();

/// The alignment of the lowering's buffers: an allocation takes up to this
/// many bytes more than its contents.
constexpr int64_t kBufferAlignment = 64;

/// Saturating arithmetic on static sizes (values in [0, kSizeOverflow];
/// kSizeOverflow absorbs everything, even a factor 0).
struct StaticSizeArith {
  using Value = int64_t;
  Value constant(int64_t c) const { return c; }
  Value add(Value a, Value b) const;
  Value mul(Value a, Value b) const;
  Value ceilDiv(Value a, int64_t b) const;
  Value min(Value a, Value b) const { return a < b ? a : b; }
  Value max(Value a, Value b) const { return a < b ? b : a; }
};

/// The same arithmetic emitted as IR on i64 values (sizes known at run
/// time), with the same saturation.
struct IRSizeArith {
  using Value = ::mlir::Value;
  ImplicitLocOpBuilder &b;
  Value constant(int64_t c) const;
  Value add(Value a, Value b) const;
  Value mul(Value a, Value b) const;
  Value ceilDiv(Value a, int64_t b) const;
  Value min(Value a, Value b) const;
  Value max(Value a, Value b) const;
};

/// The configuration fields the size rules read (the outlier counts only
/// for the outlier estimator).
struct EstimationParams {
  int64_t block, cQ, cK, cH;
  Estimator estimator;
  QueryReduce queryReduce;
  int64_t qOutliers = 0, kOutliers = 0;
  /// The second level (unisparse.slash_refine) and its sizes.
  Refine refine = Refine::none;
  int64_t lastQ = 0, nOffsets = 0;
  static EstimationParams of(ConfigAttr config);
};

/// How `compress` forms one side's composites, as the size rules see it:
/// the pooling, the tokens per composite, and for outlier pooling the
/// outliers, how many of them are hot (found with the queries) and whether
/// the spread slot is written (the attributes of `unisparse.compress`).
struct CompositeParams {
  Pooling pooling;
  int64_t factor;
  int64_t outliers = 0, hot = 0;
  bool spread = false;
  /// The query side of an estimation with `p`.
  static CompositeParams queriesOf(const EstimationParams &p);
  /// The key side of an estimation with `p`.
  static CompositeParams keysOf(const EstimationParams &p);
};

/// The static part of an attention problem: heads, head dim and the element
/// size of q/k/v/o in bytes.
struct AttentionSizes {
  int64_t qHeads, kvHeads, headDim, elementBytes;
};

/// How many head groups share one set of key composites (block_score's
/// `kv_group`): with mean pooling, when every head group lies within one
/// kv head's queries (c_h divides Hq / Hkv) and c_h is a power of two (the
/// mean of c_h equal pooled keys is then exactly the pooled key), the keys
/// are pooled once per kv head and (Hq / Hkv) / c_h head groups share
/// them; otherwise 1 (each head group pools its own).
inline int64_t sharedKeyGroups(const EstimationParams &p, int64_t qHeads,
                               int64_t kvHeads) {
  if (p.estimator != Estimator::mean || kvHeads <= 0 || qHeads % kvHeads)
    return 1;
  int64_t g = qHeads / kvHeads;
  if (p.cH <= 0 || g % p.cH != 0 || (p.cH & (p.cH - 1)) != 0)
    return 1;
  return g / p.cH;
}

/// How the estimation materialises its scores, i.e. which score-map term
/// the size rule counts.
struct ScoreMapTiling {
  enum class Kind {
    whole,      ///< the whole map [B, Hg, NB * rq, NB * rk]
    queryTiles, ///< one (batch, head group, `queryBlocks` blocks) at a time
    ctaScratch, ///< the GPU scoring kernel's slots: `ctas` of `ctaRows` rows,
                ///< key tiles of `keyTile` composites (`separate`: a slot
                ///< per work unit of a chunk, for the separate epilogue
                ///< kernel)
    none,       ///< no estimation (every block kept)
  };
  Kind kind = Kind::whole;
  int64_t queryBlocks = 0;
  int64_t ctas = 0, ctaRows = 0, keyTile = 0;
  /// The separate epilogue kernel: slots for the units of one chunk, at
  /// most `chunkBytes` of them (0: every unit at once) but never less than
  /// one per CTA; `causal` pairs the query tiles of a unit.
  bool separate = false;
  int64_t chunkBytes = 0;
  bool causal = true;
  /// Bytes of one partial sum in the scratch (2: f16, 4: f32).
  int64_t partialBytes = 4;
  /// Scratch rows per query composite (the outlier kernel: its two query
  /// slots).
  int64_t rowSlots = 1;

  static ScoreMapTiling byQueryBlocks(int64_t queryBlocks) {
    return {Kind::queryTiles, queryBlocks};
  }
  static ScoreMapTiling byCtaScratch(int64_t ctas, int64_t ctaRows,
                                     int64_t keyTile, int64_t partialBytes) {
    ScoreMapTiling t{Kind::ctaScratch, 0, ctas, ctaRows, keyTile};
    t.partialBytes = partialBytes;
    return t;
  }
  /// The outlier estimator's kernel: `ctas` slots of two rows (the query
  /// slots) for each of `ctaComposites` query composites, partial sums of
  /// `partialBytes`.
  static ScoreMapTiling byOutlierScratch(int64_t ctas, int64_t ctaComposites,
                                         int64_t keyTile,
                                         int64_t partialBytes) {
    ScoreMapTiling t = byCtaScratch(ctas, ctaComposites, keyTile, partialBytes);
    t.rowSlots = 2;
    return t;
  }
  static ScoreMapTiling bySeparateScratch(int64_t ctas, int64_t ctaRows,
                                          int64_t keyTile, int64_t chunkBytes,
                                          bool causal, int64_t partialBytes) {
    return {Kind::ctaScratch, 0,      ctas,        ctaRows, keyTile, true,
            chunkBytes,       causal, partialBytes};
  }
};

/// The separate epilogue's work unit: causal, a pair of query tiles (tile
/// p and tile Q - 1 - p of a head, Q = `queryTiles`; the middle one of an
/// odd Q alone), whose visible keys add up to about Tk + one tile's; else
/// one query tile. Its scratch slot holds `rows` rows of partial sums and
/// maxima for this many key tiles, the pair's tiles packed one after the
/// other: for tile qt (last row t = (qt + 1) rows - 1) the kernel walks
/// kt(qt) = ceil(keys / keyTile) key tiles, keys <= ((t + 1) c_q - 1) / c_k
/// + 1, so a pair's (sum of (qt + 1) = Q + 1) walks at most
/// ((Q + 1) rows c_q - 2) / (c_k keyTile) + 2, and never more than twice
/// `keyTiles` (those of Tk).
template <typename A>
typename A::Value
separateUnitKeyTiles(const A &a, int64_t cQ, int64_t cK, int64_t rows,
                     int64_t keyTile, bool causal, typename A::Value queryTiles,
                     typename A::Value keyTiles) {
  if (!causal)
    return keyTiles;
  auto pairKeys =
      a.mul(a.add(queryTiles, a.constant(1)), a.constant(rows * cQ));
  return a.min(a.mul(keyTiles, a.constant(2)),
               a.add(a.ceilDiv(pairKeys, cK * keyTile), a.constant(2)));
}

/// CTA tiles per work unit of the separate epilogue: a causal pair, or one.
constexpr int64_t separateTilesPerUnit(bool causal) { return causal ? 2 : 1; }

/// Bytes of one work unit's scratch: per row of its slot (rows query
/// composites by `unitKeyTiles` key tiles) the partial sums of the
/// keyTile / rk blocks (`partialBytes` each) and the f32 max of each key
/// tile, and the f32 1 / the sum of each row of its tiles.
template <typename A>
typename A::Value separateUnitBytes(const A &a, int64_t rk, int64_t rows,
                                    int64_t keyTile, bool causal,
                                    int64_t partialBytes,
                                    typename A::Value unitKeyTiles) {
  return a.add(
      a.mul(unitKeyTiles, a.constant(rows * (keyTile / rk * partialBytes + 4))),
      a.constant(separateTilesPerUnit(causal) * rows * 4));
}

/// Bytes of the GPU scoring kernel's scratch slots (see ScoreMapTiling).
/// The separate epilogue's chunks hold `chunkBytes` / (one slot per CTA)
/// whole waves of units, at least one, at most every unit: bounded by
/// min(all units, max(a wave, chunkBytes)).
template <typename A>
typename A::Value
ctaScratchBytes(const A &a, const EstimationParams &p, const ScoreMapTiling &t,
                typename A::Value pairs, typename A::Value seqLen) {
  int64_t rk = p.block / p.cK;
  auto queryTiles = a.ceilDiv(a.ceilDiv(seqLen, p.cQ), t.ctaRows);
  auto keyTiles = a.ceilDiv(a.ceilDiv(seqLen, p.cK), t.keyTile);
  // Bytes per row and key tile: the partial sums and the max.
  auto perRow = a.constant(t.keyTile / rk * t.partialBytes + 4);
  auto align = a.constant(2 * kBufferAlignment);
  if (!t.separate) {
    auto slots = a.min(a.mul(pairs, queryTiles), a.constant(t.ctas));
    auto bytes = a.add(
        a.mul(a.mul(a.mul(slots, a.constant(t.ctaRows * t.rowSlots)), keyTiles),
              perRow),
        align);
    if (p.estimator != Estimator::outlier)
      return bytes;
    // The outlier kernel's f32 key slot norms, padded to whole key tiles,
    // and query spreads (per head group: at least the key heads').
    auto norms = a.mul(a.mul(pairs, a.constant(p.kOutliers + 1)),
                       a.mul(keyTiles, a.constant(t.keyTile)));
    auto spreads = a.mul(pairs, a.ceilDiv(seqLen, p.cQ));
    return a.add(bytes, a.add(a.mul(a.add(norms, spreads), a.constant(4)),
                              a.constant(2 * kBufferAlignment)));
  }
  auto units = a.mul(pairs, t.causal ? a.ceilDiv(queryTiles, 2) : queryTiles);
  // Three buffers: partial sums, maxima, row sums.
  align = a.constant(3 * kBufferAlignment);
  auto unitBytes = separateUnitBytes(
      a, rk, t.ctaRows, t.keyTile, t.causal, t.partialBytes,
      separateUnitKeyTiles(a, p.cQ, p.cK, t.ctaRows, t.keyTile, t.causal,
                           queryTiles, keyTiles));
  auto all = a.mul(units, unitBytes);
  if (t.chunkBytes == 0)
    return a.add(all, align);
  auto wave = a.mul(a.min(units, a.constant(t.ctas)), unitBytes);
  return a.add(a.min(all, a.max(wave, a.constant(t.chunkBytes))), align);
}

/// Bytes of the score map and its row buffers for `pairs` (batch, head
/// group) pairs, `queryBlocks` query blocks and `keyBlocks` key blocks.
template <typename A>
typename A::Value
scoreMapBytes(const A &a, const EstimationParams &p, typename A::Value pairs,
              typename A::Value queryBlocks, typename A::Value keyBlocks) {
  int64_t rq = p.block / p.cQ, rk = p.block / p.cK;
  auto rows = a.mul(pairs, a.mul(queryBlocks, a.constant(rq)));
  auto map = a.mul(rows, a.mul(keyBlocks, a.constant(rk)));
  auto floats = a.add(
      map, a.add(a.mul(rows, a.constant(rk)), a.mul(rows, a.constant(2))));
  if (p.estimator == Estimator::antidiag_lse)
    floats = a.add(
        floats, a.add(a.mul(map, a.constant(p.cQ)), a.mul(map, a.constant(2))));
  int64_t buffers = 4; // map, lanes, row max, row sum
  if (p.estimator == Estimator::antidiag_lse)
    buffers += 3;
  if (p.estimator == Estimator::outlier) {
    // The slot map, the six per query slot rows, the key slot norms (and
    // their padded copy), the mixed map and the unit row sums.
    int64_t nq = p.qOutliers + 1, sk = p.kOutliers + 1;
    auto keys = a.mul(pairs, a.mul(keyBlocks, a.constant(rk)));
    floats = a.add(a.add(a.mul(a.mul(map, a.constant(nq)), a.constant(sk)),
                         a.mul(rows, a.constant(6 * nq))),
                   a.add(a.mul(keys, a.constant(2 * sk)), a.add(map, rows)));
    buffers = 11;
  }
  if (p.queryReduce == QueryReduce::max) {
    floats = a.add(floats, a.mul(rows, keyBlocks));
    buffers += 1;
  }
  return a.add(a.mul(floats, a.constant(4)),
               a.constant(buffers * kBufferAlignment));
}

/// Bytes of one side's composites: `pairs` (batch, head group) pairs, `seq`
/// tokens pooled as `c` says, head dim `headDim`; `querySeq`: the tokens of
/// the queries that hot outliers read.
template <typename A>
typename A::Value compressionBytes(const A &a, const CompositeParams &c,
                                   typename A::Value pairs,
                                   typename A::Value seq, int64_t headDim,
                                   typename A::Value querySeq) {
  auto composites = a.ceilDiv(seq, c.factor);
  auto perPair = a.mul(composites, a.constant(headDim));
  int64_t buffers = 1;
  if (c.pooling == Pooling::concat || c.pooling == Pooling::concat_reversed) {
    perPair = a.mul(perPair, a.mul(a.constant(c.factor), a.constant(3)));
    buffers = 3;
  } else if (c.pooling == Pooling::outlier) {
    int64_t r = c.outliers, slots = r + 1 + (c.spread ? 1 : 0);
    auto padded = a.mul(composites, a.constant(c.factor));
    auto tokens = a.add(seq, padded);
    perPair = a.add(
        a.add(a.mul(tokens, a.constant(headDim)),
              a.add(a.mul(tokens, a.constant(2)), a.constant(2 * headDim))),
        a.add(a.mul(composites, a.constant(3 * r + 2)),
              a.mul(perPair, a.constant(4 + r + slots))));
    if (c.hot > 0)
      perPair = a.add(perPair, a.mul(querySeq, a.constant(headDim)));
    buffers = 12 + 3 * r;
  }
  return a.add(a.mul(a.mul(pairs, perPair), a.constant(4)),
               a.constant(buffers * kBufferAlignment));
}

/// Bytes of the layout and block scores of `pairs` pairs and `blocks`
/// query/key blocks.
template <typename A>
typename A::Value layoutBytes(const A &a, typename A::Value pairs,
                              typename A::Value blocks) {
  auto rows = a.mul(pairs, blocks);
  return a.add(a.mul(a.add(a.mul(rows, a.mul(blocks, a.constant(2))), rows),
                     a.constant(4)),
               a.constant(3 * kBufferAlignment));
}

/// Bytes of the slash refinement's buffers (the linalg lowering of
/// unisparse.slash_refine) for `batch` x `seqLen`, `qHeads` query heads in
/// `groups` head groups, head dim `headDim`, M = `lastQ` rows (padded when
/// the sequence is shorter) and NB = ceil(seqLen / block): the last rows of
/// q, M * D, their logits (the exponentials and shares in place) and row
/// max and sum, M * N + 2 M, per query head; per head group the shares,
/// M * N, and their copy padded by M - 1 on both sides, M * (N + 2 M), the
/// vertical evidence and its padded copy, 2 N + 2 M, the slash evidence
/// before and after the split and its masked copy, 3 (N + M), the
/// offsets (i64, 2 words each), the probe rows' scores NB * NB and the row
/// sums 2 * NB; with `hostLoops` (the CPU pipeline's lowering) also k
/// transposed, D * N per kv head (`kvHeads`), and one probe row's
/// forced-key logits, at most 2 N (its sink block and its local range, each
/// within the sequence).
template <typename A>
typename A::Value refinementBytes(const A &a, typename A::Value batch,
                                  int64_t qHeads, int64_t kvHeads,
                                  int64_t groups, typename A::Value seqLen,
                                  int64_t headDim, int64_t block, int64_t lastQ,
                                  int64_t nOffsets, bool hostLoops) {
  auto m = a.constant(lastQ);
  auto heads = a.mul(batch, a.constant(qHeads));
  auto pairs = a.mul(batch, a.constant(groups));
  auto blocks = a.ceilDiv(seqLen, block);
  auto perHead = a.add(a.mul(m, a.add(a.constant(headDim), seqLen)),
                       a.constant(2 * lastQ));
  auto padded = a.add(seqLen, a.constant(2 * lastQ));
  auto perGroup = a.add(
      a.add(a.mul(m, a.add(seqLen, padded)), a.mul(a.constant(2), padded)),
      a.add(a.mul(a.constant(3), a.add(seqLen, m)),
            a.add(a.constant(2 * nOffsets),
                  a.mul(blocks, a.add(blocks, a.constant(2))))));
  auto floats = a.add(a.mul(heads, perHead), a.mul(pairs, perGroup));
  if (!hostLoops)
    return a.add(a.mul(floats, a.constant(4)),
                 a.constant(14 * kBufferAlignment));
  auto host = a.add(a.mul(a.mul(batch, a.constant(kvHeads * headDim)), seqLen),
                    a.mul(a.constant(2), seqLen));
  return a.add(a.mul(a.add(floats, host), a.constant(4)),
               a.constant(17 * kBufferAlignment));
}

/// The estimation's workspace for `batch` x `seqLen` (bytes, saturating).
template <typename A>
typename A::Value
attentionWorkspaceBytes(const A &a, const EstimationParams &p,
                        const AttentionSizes &s, typename A::Value batch,
                        typename A::Value seqLen, ScoreMapTiling tiling) {
  auto pairs = a.mul(batch, a.constant(s.qHeads / p.cH));
  auto keyPairs =
      a.mul(batch, a.constant(s.qHeads / p.cH /
                              sharedKeyGroups(p, s.qHeads, s.kvHeads)));
  auto blocks = a.ceilDiv(seqLen, p.block);
  auto bytes = a.add(compressionBytes(a, CompositeParams::queriesOf(p), pairs,
                                      seqLen, s.headDim, seqLen),
                     compressionBytes(a, CompositeParams::keysOf(p), keyPairs,
                                      seqLen, s.headDim, seqLen));
  bytes = a.add(bytes, layoutBytes(a, pairs, blocks));
  if (p.refine == Refine::slash && tiling.kind != ScoreMapTiling::Kind::none)
    bytes = a.add(bytes, refinementBytes(a, batch, s.qHeads, s.kvHeads,
                                         s.qHeads / p.cH, seqLen, s.headDim,
                                         p.block, p.lastQ, p.nOffsets,
                                         /*hostLoops=*/tiling.kind ==
                                             ScoreMapTiling::Kind::queryTiles));
  switch (tiling.kind) {
  case ScoreMapTiling::Kind::whole:
    // Untiled, the linalg lowering reads shared key composites through a
    // copy broadcast to every head group (ShareKeysToLinalg).
    if (sharedKeyGroups(p, s.qHeads, s.kvHeads) > 1)
      bytes = a.add(bytes, compressionBytes(a, CompositeParams::keysOf(p),
                                            pairs, seqLen, s.headDim, seqLen));
    return a.add(bytes, scoreMapBytes(a, p, pairs, blocks, blocks));
  case ScoreMapTiling::Kind::queryTiles:
    return a.add(bytes,
                 scoreMapBytes(a, p, a.constant(1),
                               a.min(blocks, a.constant(tiling.queryBlocks)),
                               blocks));
  case ScoreMapTiling::Kind::ctaScratch:
    return a.add(bytes, ctaScratchBytes(a, p, tiling, pairs, seqLen));
  case ScoreMapTiling::Kind::none:
    break;
  }
  return bytes;
}

/// The workspace plus q, k, v, o and lse themselves: what must be
/// addressable for the lowering to be correct (bytes, saturating).
template <typename A>
typename A::Value
attentionFootprintBytes(const A &a, const EstimationParams &p,
                        const AttentionSizes &s, typename A::Value batch,
                        typename A::Value seqLen, ScoreMapTiling tiling) {
  auto tokens = a.mul(batch, seqLen);
  auto qo = a.mul(tokens, a.constant(s.qHeads));
  auto rowBytes = a.mul(a.constant(s.headDim), a.constant(s.elementBytes));
  auto tensors = a.add(a.mul(a.add(qo, a.mul(tokens, a.constant(s.kvHeads))),
                             a.mul(rowBytes, a.constant(2))),
                       a.mul(qo, a.constant(4)));
  return a.add(tensors,
               attentionWorkspaceBytes(a, p, s, batch, seqLen, tiling));
}

/// One block's score map, (block / c_q) x (block / c_k) f32 values, fits in
/// 2^63 - 1 bytes: the lowering's buffers of one block have static sizes,
/// which must not overflow (a larger `block` could not run anyway).
LogicalResult verifyBlockFits(EmitFn emit, const EstimationParams &p);

/// The static size of a shaped type in bytes (a dynamic dim counts as 1),
/// saturating; 0 for element types without a bit width.
int64_t staticBytes(ShapedType type);

} // namespace mlir::unisparse

#endif // UNISPARSE_DIALECT_UNISPARSE_IR_SHAPERULES_H
