//===- BlockSparseAttention.cpp - CPU block-sparse attention --------------===//
//
// Exact softmax attention of every query row over the keys of its selected
// key blocks, computed FlashAttention-style with an online softmax in f32.
//
// Work decomposition: one task per (batch, query head, query block); tasks are
// independent (disjoint rows of O and LSE) and each is run by exactly one
// thread with a fixed order of reductions, so the result does not depend on
// the number of threads. A task:
//  1. loads its query block (rows x D) into f32 scratch;
//  2. for each selected key block, in ascending order, and each tile of up to
//     kKeyTile keys in it:
//     a. loads the K tile transposed ([D][kKeyTile]) and the V tile
//        ([kt][D]) into f32 scratch, shared by all rows of the query block;
//     b. for each query row: s = scale * q.k over the tile, keys past the
//        causal bound (j > i) masked to -inf; running max m, running sum l
//        and accumulator acc rescaled by exp(m_old - m_new); acc += p V;
//  3. writes O = acc / l (rounded to the element type) and LSE = m + log(l).
// A row that sees no key gets O = 0 and LSE = -inf. NaN/Inf in the inputs are
// not special-cased: they propagate as in dense softmax attention.
//
//===----------------------------------------------------------------------===//

#include "cpu/BlockSparseAttention.h"
#include "common/Error.h"
#include "common/FloatConversion.h"
#include "common/Parallel.h"

#include <algorithm>
#include <cinttypes>
#include <cmath>
#include <cstdlib>
#include <limits>

namespace unisparse::rt::cpu {

namespace {

//===----------------------------------------------------------------------===//
// Tuning knobs.
//===----------------------------------------------------------------------===//

/// Keys per tile. The K^T and V tiles (kKeyTile x D floats each) stay in
/// L1/L2 while every row of the query block uses them.
constexpr int64_t kKeyTile = 64;
/// Register block of the two products: scores of kChunk keys, or kChunk
/// output columns, are accumulated in registers over the reduction.
constexpr int64_t kChunk = 16;
static_assert(kKeyTile % kChunk == 0, "tile must be a multiple of chunks");
/// Independent partial sums for the softmax denominator (fixed order, so
/// deterministic; lets the compiler vectorize the sum).
constexpr int kSumLanes = 8;
static_assert(kKeyTile % kSumLanes == 0, "tile must be a multiple of lanes");

constexpr float kNegInf = -std::numeric_limits<float>::infinity();

//===----------------------------------------------------------------------===//
// Element types: storage and conversion to/from f32.
//===----------------------------------------------------------------------===//

struct F32Elem {
  using Storage = float;
  static float load(float x) { return x; }
  static float store(float x) { return x; }
};
struct F16Elem {
  using Storage = uint16_t;
  static float load(uint16_t x) { return f16ToFloat(x); }
  static uint16_t store(float x) { return floatToF16(x); }
};
struct BF16Elem {
  using Storage = uint16_t;
  static float load(uint16_t x) { return bf16ToFloat(x); }
  static uint16_t store(float x) { return floatToBf16(x); }
};

//===----------------------------------------------------------------------===//
// Math helpers.
//===----------------------------------------------------------------------===//

/// exp(x) for x <= 0 (or NaN), vectorizable: a Cephes-style range reduction
/// x = n ln2 + r, |r| <= ln2/2, and a degree-7 polynomial (about 1 ulp).
/// exp(-inf) = 0, exp(NaN) = NaN; results below ~1.6e-38 flush to 0.
inline float expNonPositive(float x) {
  const bool underflow = x < -87.0f; // false for NaN
  const float xc = underflow ? -87.0f : x;
  // n = round(x / ln2) with the 1.5 * 2^23 trick; no float->int conversion,
  // so NaN stays well-defined (and poisons the result through the
  // polynomial).
  constexpr float kMagic = 12582912.0f;
  const float t = xc * 1.44269504088896341f + kMagic;
  const float fn = t - kMagic;
  float r = xc - fn * 0.693359375f;
  r = r - fn * -2.12194440e-4f;
  float y = 1.9875691500e-4f;
  y = y * r + 1.3981999507e-3f;
  y = y * r + 8.3334519073e-3f;
  y = y * r + 4.1665795894e-2f;
  y = y * r + 1.6666665459e-1f;
  y = y * r + 5.0000001201e-1f;
  y = y * (r * r) + r + 1.0f;
  // 2^n from the low bits of t (n in [-126, 0] here).
  const uint32_t n = floatBits(t) - floatBits(kMagic);
  const float result = y * bitsToFloat((n + 127u) << 23);
  // A select of computed values (not a branch), so loops vectorize.
  return underflow ? 0.0f : result;
}

//===----------------------------------------------------------------------===//
// Strided loads and stores of [B, H, N, D] tensors.
//===----------------------------------------------------------------------===//

template <typename Elem>
const typename Elem::Storage *headBase(const unisparse_tensor_t &t, int64_t b,
                                       int64_t h) {
  return static_cast<const typename Elem::Storage *>(t.data) +
         b * t.strides[0] + h * t.strides[1];
}

/// Loads rows [n0, n0 + rows) of head (b, h) as f32 into dst[rows][D].
template <typename Elem>
void loadRows(const unisparse_tensor_t &t, int64_t b, int64_t h, int64_t n0,
              int64_t rows, int64_t dim, float *dst) {
  const auto *base = headBase<Elem>(t, b, h);
  const int64_t sn = t.strides[2], sd = t.strides[3];
  for (int64_t r = 0; r < rows; ++r) {
    const auto *row = base + (n0 + r) * sn;
    float *out = dst + r * dim;
    if (sd == 1) {
      for (int64_t d = 0; d < dim; ++d)
        out[d] = Elem::load(row[d]);
    } else {
      for (int64_t d = 0; d < dim; ++d)
        out[d] = Elem::load(row[d * sd]);
    }
  }
}

/// Loads rows [n0, n0 + rows) of head (b, h) transposed into
/// dst[D][kKeyTile]; columns rows..kKeyTile-1 are zeroed.
template <typename Elem>
void loadRowsTransposed(const unisparse_tensor_t &t, int64_t b, int64_t h,
                        int64_t n0, int64_t rows, int64_t dim, float *dst) {
  const auto *base = headBase<Elem>(t, b, h);
  const int64_t sn = t.strides[2], sd = t.strides[3];
  for (int64_t r = 0; r < rows; ++r) {
    const auto *row = base + (n0 + r) * sn;
    for (int64_t d = 0; d < dim; ++d)
      dst[d * kKeyTile + r] = Elem::load(row[d * sd]);
  }
  for (int64_t d = 0; d < dim; ++d)
    for (int64_t r = rows; r < kKeyTile; ++r)
      dst[d * kKeyTile + r] = 0.0f;
}

/// Stores one f32 row into row n of head (b, h) of a [B, H, N, D] tensor.
template <typename Elem>
void storeRow(const unisparse_tensor_t &t, int64_t b, int64_t h, int64_t n,
              int64_t dim, const float *src) {
  auto *row = const_cast<typename Elem::Storage *>(headBase<Elem>(t, b, h)) +
              n * t.strides[2];
  const int64_t sd = t.strides[3];
  for (int64_t d = 0; d < dim; ++d)
    row[d * sd] = Elem::store(src[d]);
}

/// Reads element (i0, i1, i2, i3) of an i32 tensor of rank 3 or 4.
int32_t readI32(const unisparse_tensor_t &t, int64_t i0, int64_t i1, int64_t i2,
                int64_t i3 = 0) {
  int64_t offset = i0 * t.strides[0] + i1 * t.strides[1] + i2 * t.strides[2];
  if (t.rank == 4)
    offset += i3 * t.strides[3];
  return static_cast<const int32_t *>(t.data)[offset];
}

//===----------------------------------------------------------------------===//
// Per-thread scratch.
//===----------------------------------------------------------------------===//

/// Rounds a float count up to 64 bytes so that every region is aligned.
int64_t roundUp(int64_t n) { return (n + 15) / 16 * 16; }

/// The scratch of one worker, carved from one allocation.
struct Scratch {
  float *q;      ///< [rows][D] the query block (f32)
  float *acc;    ///< [rows][D] unnormalized output
  float *rowMax; ///< [rows] running max of the scaled scores
  float *rowSum; ///< [rows] running sum of exp(score - rowMax)
  float *seen;   ///< [rows] 1 once the row has seen a key
  float *keysT;  ///< [D][kKeyTile] K tile, transposed
  float *values; ///< [kKeyTile][D] V tile
  float *scores; ///< [kKeyTile] scores, then probabilities, of one row

  /// Floats needed for at most `rows` query rows of head dimension `dim`.
  static int64_t size(int64_t rows, int64_t dim) {
    return 2 * roundUp(rows * dim) + 3 * roundUp(rows) +
           2 * roundUp(kKeyTile * dim) + roundUp(kKeyTile);
  }

  Scratch(float *base, int64_t rows, int64_t dim) {
    q = base;
    acc = q + roundUp(rows * dim);
    rowMax = acc + roundUp(rows * dim);
    rowSum = rowMax + roundUp(rows);
    seen = rowSum + roundUp(rows);
    keysT = seen + roundUp(rows);
    values = keysT + roundUp(kKeyTile * dim);
    scores = values + roundUp(kKeyTile * dim);
  }
};

/// Everything a task needs; shared read-only by all workers.
struct Context {
  const AttentionTensors *tensors;
  const AttentionProblem *problem;
  float *scratch;        ///< numWorkers * scratchFloats floats
  int64_t scratchFloats; ///< floats per worker
  int64_t maxRows;       ///< rows of the largest query block
};

//===----------------------------------------------------------------------===//
// The kernel.
//===----------------------------------------------------------------------===//

/// Online-softmax update of query row r with the first `visible` keys of the
/// current tile (the others are masked).
void attendTile(const Scratch &ws, int64_t r, int64_t visible, int64_t dim,
                float scale) {
  float *s = ws.scores;
  // s = q . k for every key of the tile (fixed trip count over the tile; the
  // zero-padded columns past the tile end are masked below).
  const float *qRow = ws.q + r * dim;
  for (int64_t j0 = 0; j0 < kKeyTile; j0 += kChunk) {
    float chunk[kChunk] = {};
    for (int64_t d = 0; d < dim; ++d) {
      const float qd = qRow[d];
      const float *kd = ws.keysT + d * kKeyTile + j0;
      for (int64_t l = 0; l < kChunk; ++l)
        chunk[l] += qd * kd[l];
    }
    for (int64_t l = 0; l < kChunk; ++l)
      s[j0 + l] = chunk[l];
  }
  // Scale, mask keys j >= visible, and take the tile max in kSumLanes lanes
  // (NaN scores are skipped by the max but poison the row through exp).
  float laneMax[kSumLanes];
  for (int l = 0; l < kSumLanes; ++l)
    laneMax[l] = kNegInf;
  for (int64_t j0 = 0; j0 < kKeyTile; j0 += kSumLanes) {
    for (int l = 0; l < kSumLanes; ++l) {
      const float x = j0 + l < visible ? s[j0 + l] * scale : kNegInf;
      s[j0 + l] = x;
      laneMax[l] = x > laneMax[l] ? x : laneMax[l];
    }
  }
  float tileMax = kNegInf;
  for (int l = 0; l < kSumLanes; ++l)
    tileMax = laneMax[l] > tileMax ? laneMax[l] : tileMax;
  ws.seen[r] = 1.0f;
  const float oldMax = ws.rowMax[r];
  const float newMax = tileMax > oldMax ? tileMax : oldMax;
  if (newMax == kNegInf) {
    // Every visible score so far is -inf or NaN. A NaN poisons the row, as
    // in dense softmax; -inf scores add exp(-inf) = 0 next to any finite
    // score that follows, so the state stays empty.
    for (int64_t j = 0; j < visible; ++j) {
      if (std::isnan(s[j])) {
        ws.rowMax[r] = ws.rowSum[r] = std::numeric_limits<float>::quiet_NaN();
        std::fill(ws.acc + r * dim, ws.acc + (r + 1) * dim, ws.rowSum[r]);
        return;
      }
    }
    return;
  }
  // Rescale the running state to the new max (alpha = 0 the first time).
  float *acc = ws.acc + r * dim;
  const float alpha = expNonPositive(oldMax - newMax);
  if (alpha != 1.0f) {
    ws.rowSum[r] *= alpha;
    for (int64_t d = 0; d < dim; ++d)
      acc[d] *= alpha;
  }
  ws.rowMax[r] = newMax;
  // p = exp(s - m), summed in kSumLanes fixed lanes.
  float lanes[kSumLanes] = {};
  for (int64_t j0 = 0; j0 < kKeyTile; j0 += kSumLanes) {
    for (int l = 0; l < kSumLanes; ++l) {
      const float p = expNonPositive(s[j0 + l] - newMax);
      s[j0 + l] = p;
      lanes[l] += p;
    }
  }
  float sum = 0.0f;
  for (int l = 0; l < kSumLanes; ++l)
    sum += lanes[l];
  ws.rowSum[r] += sum;
  // acc += p V over the visible keys, kChunk columns at a time in registers
  // (the sum over keys is sequential in every column, whatever the chunking).
  int64_t d0 = 0;
  for (; d0 + kChunk <= dim; d0 += kChunk) {
    float chunk[kChunk];
    for (int64_t l = 0; l < kChunk; ++l)
      chunk[l] = acc[d0 + l];
    for (int64_t j = 0; j < visible; ++j) {
      const float p = s[j];
      const float *vj = ws.values + j * dim + d0;
      for (int64_t l = 0; l < kChunk; ++l)
        chunk[l] += p * vj[l];
    }
    for (int64_t l = 0; l < kChunk; ++l)
      acc[d0 + l] = chunk[l];
  }
  for (int64_t j = 0; j < visible; ++j) {
    const float p = s[j];
    const float *vj = ws.values + j * dim;
    for (int64_t d = d0; d < dim; ++d)
      acc[d] += p * vj[d];
  }
}

/// Runs one task: query block qb of head h of batch b.
template <typename Elem> void runTask(void *ctxPtr, int64_t task, int worker) {
  const Context &ctx = *static_cast<const Context *>(ctxPtr);
  const AttentionProblem &p = *ctx.problem;
  const AttentionTensors &t = *ctx.tensors;

  // Task -> (qb, b, h). The last query blocks come first: under a causal mask
  // they have the most keys, so handing them out early balances the load.
  const int64_t numHeads = p.batch * p.numQHeads;
  const int64_t qb = p.numQBlocks - 1 - task / numHeads;
  const int64_t b = (task % numHeads) / p.numQHeads;
  const int64_t h = task % p.numQHeads;
  const int64_t kvHead = h / (p.numQHeads / p.numKVHeads);
  const int64_t group = h / (p.numQHeads / p.numGroups);
  const int64_t dim = p.headDim, blockSize = p.blockSize;
  const int64_t q0 = qb * blockSize;
  const int64_t rows = std::min(blockSize, p.seqLen - q0);
  const int64_t lastRow = q0 + rows - 1;
  Scratch ws(ctx.scratch + worker * ctx.scratchFloats, ctx.maxRows, dim);

  // 1. The query block and a fresh running state.
  loadRows<Elem>(*t.q, b, h, q0, rows, dim, ws.q);
  std::fill(ws.acc, ws.acc + rows * dim, 0.0f);
  std::fill(ws.rowMax, ws.rowMax + rows, kNegInf);
  std::fill(ws.rowSum, ws.rowSum + rows, 0.0f);
  std::fill(ws.seen, ws.seen + rows, 0.0f);

  // 2. The selected key blocks, ascending, tile by tile.
  const int32_t count = readI32(*t.counts, b, group, qb);
  for (int32_t c = 0; c < count; ++c) {
    const int64_t keyBlock = readI32(*t.indices, b, group, qb, c);
    const int64_t kStart = keyBlock * blockSize;
    const int64_t kEnd = std::min(kStart + blockSize, p.seqLen);
    if (p.causal && kStart > lastRow)
      break; // this and all later blocks are entirely in the future
    for (int64_t t0 = kStart; t0 < kEnd; t0 += kKeyTile) {
      if (p.causal && t0 > lastRow)
        break;
      const int64_t tileKeys = std::min(kKeyTile, kEnd - t0);
      loadRowsTransposed<Elem>(*t.k, b, kvHead, t0, tileKeys, dim, ws.keysT);
      loadRows<Elem>(*t.v, b, kvHead, t0, tileKeys, dim, ws.values);
      for (int64_t r = 0; r < rows; ++r) {
        // Causal: key t0 + j is visible from query q0 + r iff j <= q0 + r - t0.
        const int64_t visible =
            p.causal ? std::min(tileKeys, q0 + r - t0 + 1) : tileKeys;
        if (visible > 0)
          attendTile(ws, r, visible, dim, p.scale);
      }
    }
  }

  // 3. Normalize and write O and LSE.
  const unisparse_tensor_t &lse = *t.lse;
  float *lseBase =
      static_cast<float *>(lse.data) + b * lse.strides[0] + h * lse.strides[1];
  for (int64_t r = 0; r < rows; ++r) {
    float *acc = ws.acc + r * dim;
    const float sum = ws.rowSum[r];
    float rowLse;
    if (ws.seen[r] == 0.0f) {
      // No visible key: O = 0, LSE = log(0).
      std::fill(acc, acc + dim, 0.0f);
      rowLse = kNegInf;
    } else if (sum == 0.0f) {
      // Visible keys, all with score -inf: dense softmax gives 0/0.
      std::fill(acc, acc + dim, std::numeric_limits<float>::quiet_NaN());
      rowLse = kNegInf;
    } else {
      for (int64_t d = 0; d < dim; ++d)
        acc[d] /= sum;
      rowLse = ws.rowMax[r] + std::log(sum);
    }
    storeRow<Elem>(*t.o, b, h, q0 + r, dim, acc);
    lseBase[(q0 + r) * lse.strides[2]] = rowLse;
  }
}

template <typename Elem>
unisparse_status_t run(const AttentionTensors &tensors,
                       const AttentionProblem &problem) {
  const int64_t numTasks =
      problem.batch * problem.numQHeads * problem.numQBlocks;
  if (numTasks == 0)
    return UNISPARSE_STATUS_SUCCESS;
  const int64_t maxRows = std::min(problem.blockSize, problem.seqLen);
  // Bound the scratch before computing its size, so the product cannot
  // overflow (sizes are validated, but a zero-stride input may be huge).
  if (maxRows > (int64_t(1) << 40) / problem.headDim)
    return setError(UNISPARSE_STATUS_OUT_OF_MEMORY,
                    "block-sparse attention: scratch for a query block of "
                    "%" PRId64 " rows x D = %" PRId64 " is too large",
                    maxRows, problem.headDim);
  const int64_t scratchFloats = Scratch::size(maxRows, problem.headDim);
  const int numWorkers = defaultNumWorkers(numTasks);
  const size_t bytes = size_t(numWorkers) * size_t(scratchFloats) * 4;
  auto *scratch = static_cast<float *>(std::aligned_alloc(64, bytes));
  if (!scratch)
    return setError(UNISPARSE_STATUS_OUT_OF_MEMORY,
                    "block-sparse attention: cannot allocate %zu bytes of "
                    "scratch for %d threads",
                    bytes, numWorkers);
  Context ctx{&tensors, &problem, scratch, scratchFloats, maxRows};
  parallelFor(numTasks, numWorkers, runTask<Elem>, &ctx);
  std::free(scratch);
  return UNISPARSE_STATUS_SUCCESS;
}

} // namespace

unisparse_status_t blockSparseAttention(const AttentionTensors &tensors,
                                        const AttentionProblem &problem) {
  switch (problem.dtype) {
  case UNISPARSE_DTYPE_F32:
    return run<F32Elem>(tensors, problem);
  case UNISPARSE_DTYPE_F16:
    return run<F16Elem>(tensors, problem);
  case UNISPARSE_DTYPE_BF16:
    return run<BF16Elem>(tensors, problem);
  default:
    return setError(UNISPARSE_STATUS_UNSUPPORTED_DTYPE,
                    "block-sparse attention: dtype = %s on the CPU",
                    dtypeName(problem.dtype));
  }
}

} // namespace unisparse::rt::cpu
