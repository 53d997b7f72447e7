//===- BlockSparseAttentionSm90.cu - Hopper block-sparse attention --------===//
//
// The sm_90a kernels of unisparse_rt_block_sparse_attention, FlashAttention-3
// style: TMA loads, wgmma, warp specialization. Device code only; CMake
// compiles this file for sm_90a into its own fatbin, which the runtime embeds
// and launches on compute capability 9.0 (BlockSparseAttentionLaunch.cpp; the
// mma.sync kernels of BlockSparseAttention.cu remain the fallback).
//
// One CTA = one 128-row query block (I) of one (query head h, batch b); it
// visits the key blocks that the layout row (b, h / (Hq / Hg), I) lists, each
// a 128 x D tile of K and of V. 384 threads in three warpgroups:
//  - the producer warpgroup (24 registers per thread after setmaxnreg): one
//    thread issues the TMA copies: Q once, then for every visited key block j
//    the K and V tiles at rows j * 128 of kv head h / (Hq / Hkv), into a ring
//    of kStages shared-memory stages; the layout row drives the coordinates,
//    and TMA fills rows past N with zeros. Each stage has a "K full", a
//    "V full" and an "empty" mbarrier.
//  - two consumer warpgroups (240 registers), 64 query rows each, on the same
//    K/V stages. Per key block: S = Q K^T (wgmma m64n128k16, Q and K from
//    shared memory, K-major, 128-byte swizzle), the mask only on the diagonal
//    block (causal) and on a partial last block, the online softmax in fp32
//    (exp2 with the scale folded in), then O += P V (wgmma with P from
//    registers: the S accumulator layout is the A-fragment layout, so P is
//    packed in place; V read MN-major). Inside a warpgroup, the softmax of
//    block j runs while the tensor cores compute P_{j-1} V_{j-1} and
//    S_j was issued before it (FlashAttention-3's intra-warpgroup overlap):
//    issue S_{j+1} = Q K_{j+1}^T, issue O += P_j V_j, wait for S_{j+1},
//    softmax into the other P buffer (P is double-buffered, so that no
//    wait for P_j V_j is needed before it), wait for P_j V_j, rescale O,
//    release stage j. The two warpgroups take turns to issue (ping-pong on
//    named barriers). The producer writes each stage's key block into a
//    shared slot (a negative code at the row's end) before it signals
//    "K full"; after that wait, lane 0 of each consumer warp reads the slot
//    and shuffles it to its warp (lane 0 is the thread that later releases
//    the stage, so every read of a slot is ordered before its next write
//    by the stage's own mbarriers).
//  - the epilogue writes O / l and LSE = (m + log2 l) ln 2 from registers.
// Tiles are ordered by kv head, then heaviest query blocks first (causal:
// the last ones), so that the resident CTAs share one kv head's K/V in L2.
// By default one CTA computes one tile (the hardware hands the next tile to
// the first free SM). Built with UNISPARSE_SM90_PERSISTENT = 1 the grid is
// persistent instead (Sm90Traits::kPersistent): one CTA per SM, and each
// CTA's producer takes the next tile from an atomic ticket counter when it
// reaches the end of a layout row, codes it into that row's end slot, and
// loads the next tile's first K/V block and (once both consumer
// warpgroups have done their last Q K^T and signalled "Q empty") its Q
// while the consumers finish the current tile and write its O.
//
// Bound it targets: per 128 x 128 block a CTA does 4 * 128 * 128 * D FLOP on
// tensor cores against 2 * 128 * D * 2 bytes of K/V (128 FLOP per byte, from
// L2 mostly), and 128 * 128 exp2 on the MUFU unit; the design point is the
// wgmma rate with the softmax hidden behind the GEMMs. At D = 64 the MUFU
// unit needs as many cycles per block as the tensor cores; build options
// (Sm90Traits, each off by default) move part of the exp2 to the FMA pipe
// (kPolyExp2Tiles, Exp2Poly.h) and the row sums of P to the tensor cores
// (kRowSumByMma: O += P [V | 1], freeing the issue slots the polynomial
// needs), and set the ring depth per head dim (kStages). Two more shorten
// each consumer warpgroup's serial path per block, which the ncu profile
// shows is what bounds the kernel: kSpecSoftmax (on by default, measured
// faster: the softmax of every block after a row's first with the running
// max, no row max unless a cheap check fails) and kSplitS (off, measured
// no faster: Q K^T in two halves, so that the first half's softmax
// overlaps the second's GEMM).
//
// Layout safety: LayoutWalk.h's walk and masking rule, shared with the
// mma.sync kernel (counts clamped to [0, M], indices outside [0, NBk) or
// not ascending skipped).
//
// Code by role (the PTX of mbarrier, TMA and wgmma is in Sm90Ptx.h):
// scheduleTile / nextTile (tile order, dynamic scheduler),
// Producer / ProducerStart with loadQ / loadKV (producer), Consumer (GEMMs,
// mask, softmax), MainLoop (turns, the K/V ring, end of row), epilogue.
//
//===----------------------------------------------------------------------===//

#include "cuda/BlockSparseAttentionSm90Kernel.h"
#include "cuda/Exp2Poly.h"
#include "cuda/LayoutWalk.h"
#include "cuda/PackHalf2.h"
#include "cuda/Sm90Ptx.h"

#include <cstdint>

namespace unisparse::rt::cuda {
namespace {

constexpr float kNegInf = -__builtin_huge_valf();
constexpr float kLn2 = 0.693147180559945309f;

//===----------------------------------------------------------------------===//
// Element types.
//===----------------------------------------------------------------------===//

struct Bf16 {
  static constexpr bool kIsBf16 = true;
  static __device__ __forceinline__ uint32_t pack(float lo, float hi) {
    return packBf16x2(lo, hi);
  }
};

struct F16 {
  static constexpr bool kIsBf16 = false;
  static __device__ __forceinline__ uint32_t pack(float lo, float hi) {
    return packF16x2(lo, hi);
  }
};

//===----------------------------------------------------------------------===//
// The CTA's resources: shared memory, mbarriers, named barriers.
//===----------------------------------------------------------------------===//

/// Named barriers (bar.sync / bar.arrive ids; 0 is __syncthreads()). The
/// two consumer warpgroups take turns to issue their GEMMs: warpgroup c
/// waits on kTurn0 + c and passes the turn by arriving on the other one's.
enum NamedBarrier : uint32_t {
  kBarrierCta = 0,
  kBarrierTurn0 = 1,
  kBarrierTurn1 = 2,
};

/// Shared-memory addresses (1024-byte aligned tiles): Q, kStages K tiles,
/// kStages V stages (the V tile, and with kRowSumByMma a slab of ones after
/// it), then the mbarriers and the ring's block slots. "Q full"
/// (TMA completes it) and "Q empty" (both consumer warpgroups have done
/// their last Q K^T of the tile: the persistent kernel's producer may load
/// the next Q). Per stage: "K full" and "V full" (the producer's TMA
/// completes them), "empty" (the consumers' release), and a slot holding
/// the key block in the stage or, at the end of the row, endOfRowSlot's code
/// of the CTA's next tile; written before "K full" is signalled.
template <typename Traits> struct Sm90Smem {
  uint32_t q, k, v, bars, slots;

  __device__ __forceinline__ static Sm90Smem at(uint32_t raw) {
    constexpr uint32_t kTile = Traits::kTileBytes;
    constexpr uint32_t kStages = Traits::kStages;
    Sm90Smem m;
    m.q = (raw + 1023u) & ~1023u;
    m.k = m.q + kTile;
    m.v = m.k + kStages * kTile;
    m.bars = m.v + kStages * uint32_t(Traits::kVStageBytes);
    m.slots = m.bars + 8u * (2 + 3 * kStages);
    return m;
  }
  __device__ __forceinline__ uint32_t kTile(int s) const {
    return k + uint32_t(s) * Traits::kTileBytes;
  }
  __device__ __forceinline__ uint32_t vTile(int s) const {
    return v + uint32_t(s) * Traits::kVStageBytes;
  }
  __device__ __forceinline__ uint32_t qFull() const { return bars; }
  __device__ __forceinline__ uint32_t kFull(int s) const {
    return bars + 8u * (1 + s);
  }
  __device__ __forceinline__ uint32_t vFull(int s) const {
    return bars + 8u * (1 + Traits::kStages + s);
  }
  __device__ __forceinline__ uint32_t empty(int s) const {
    return bars + 8u * (1 + 2 * Traits::kStages + s);
  }
  __device__ __forceinline__ uint32_t qEmpty() const {
    return bars + 8u * (1 + 3 * Traits::kStages);
  }
  __device__ __forceinline__ uint32_t slot(int s) const {
    return slots + 4u * s;
  }
};

/// Position in the K/V ring: use number `it` goes to stage it % kStages,
/// the (it / kStages)-th use of that stage (mbarrier phase parity).
template <typename Traits> struct RingPos {
  int it = 0;
  __device__ __forceinline__ int stage() const { return it % Traits::kStages; }
  __device__ __forceinline__ uint32_t parity() const {
    return uint32_t(it / Traits::kStages) & 1u;
  }
  /// The use after this one.
  __device__ __forceinline__ RingPos next() const { return RingPos{it + 1}; }
};

//===----------------------------------------------------------------------===//
// The tile scheduler: which query tile a CTA computes.
//===----------------------------------------------------------------------===//

struct Sm90Tile {
  int b, kvHead, h, qTile, group;
  int q0;    ///< first query row
  int qLast; ///< last valid query row
};

/// Tile `index` in the tile order: by (batch, kv head), then the heaviest
/// query blocks first (causal: the last ones), then the query heads of the
/// kv head. The CTAs resident at one time then work on one kv head's K/V
/// (N x D x 4 bytes), which stays in L2 however sparse and irregular the
/// layout rows are; and the next tile goes to whichever SM frees first
/// (the hardware's block scheduler, or nextTile's tickets), so the light
/// query blocks of each head fill the tail (longest first).
__device__ __forceinline__ Sm90Tile scheduleTile(const Sm90Params &p,
                                                 int index) {
  const int headsPerKV = p.qHeadsPerKVHead;
  const int perKVHead = p.numQTiles * headsPerKV;
  const int numKVHeads = p.numQHeads / headsPerKV;
  const int outer = index / perKVHead;
  const int inner = index % perKVHead;
  Sm90Tile t;
  t.b = outer / numKVHeads;
  t.kvHead = outer % numKVHeads;
  t.qTile = p.numQTiles - 1 - inner / headsPerKV;
  t.h = t.kvHead * headsPerKV + inner % headsPerKV;
  t.group = t.h / p.qHeadsPerGroup;
  t.q0 = t.qTile * 128;
  t.qLast = min(t.q0 + 127, p.seqLen - 1);
  return t;
}

/// The tiles of the launch: query tiles x query heads x batch.
__device__ __forceinline__ int numTiles(const Sm90Params &p) {
  return p.numQTiles * p.numQHeads * p.batch;
}

/// The CTA's tile after the current one, or -1 if there is none (asked by
/// the producer at the end of each layout row). One CTA per tile: none.
/// Persistent: the first gridDim.x tiles go to the CTAs by blockIdx.x,
/// every later one to the CTA whose producer asks first (a ticket from the
/// launch's zeroed counter), so in scheduleTile's order the CTA that runs
/// out of work first takes the heaviest tile left.
template <typename Traits>
__device__ __forceinline__ int nextTile(const Sm90Params &p) {
  if constexpr (Traits::kPersistent) {
    const int index = int(gridDim.x) + atomicAdd(p.tileCounter, 1);
    return index < numTiles(p) ? index : -1;
  } else {
    return -1;
  }
}

/// The block slot at the end of a row codes the CTA's next tile (-1:
/// none), below every key block (>= 0): slot = endOfRowSlot(next), next =
/// tileAfterRow(slot).
__device__ __forceinline__ int endOfRowSlot(int next) { return -2 - next; }
__device__ __forceinline__ int tileAfterRow(int slot) { return -2 - slot; }

//===----------------------------------------------------------------------===//
// Producer: one thread walks the layout rows and issues every TMA copy.
//===----------------------------------------------------------------------===//

/// The Q tile of t, completing on "Q full".
template <typename Traits>
__device__ __forceinline__ void
loadQ(const Sm90Params &p, const Sm90Smem<Traits> &sm, const Sm90Tile &t) {
  mbarArriveExpectTx(sm.qFull(), Traits::kTileBytes);
#pragma unroll
  for (int slab = 0; slab < Traits::kSlabs; ++slab)
    tmaLoad(sm.q + slab * Traits::kSlabBytes, &p.tmQ, sm.qFull(), slab * 64,
            t.q0, t.h, t.b);
}

/// The K and V tiles of key block j of t's kv head into `stage`.
template <typename Traits>
__device__ __forceinline__ void loadKV(const Sm90Params &p,
                                       const Sm90Smem<Traits> &sm,
                                       const Sm90Tile &t, int stage, int j) {
  constexpr int kSlabBytes = Traits::kSlabBytes;
  mbarArriveExpectTx(sm.kFull(stage), Traits::kTileBytes);
#pragma unroll
  for (int slab = 0; slab < Traits::kSlabs; ++slab)
    tmaLoad(sm.kTile(stage) + slab * kSlabBytes, &p.tmK, sm.kFull(stage),
            slab * 64, j * Traits::kBlockN, t.kvHead, t.b);
  mbarArriveExpectTx(sm.vFull(stage), Traits::kTileBytes);
#pragma unroll
  for (int slab = 0; slab < Traits::kSlabs; ++slab)
    tmaLoad(sm.vTile(stage) + slab * kSlabBytes, &p.tmV, sm.vFull(stage),
            slab * 64, j * Traits::kBlockN, t.kvHead, t.b);
}

/// The producer thread: per tile, the layout row's key blocks into the
/// ring (slot, K, V), then an end-of-row slot that names the next tile
/// (nextTile), whose blocks follow at once in the same ring. The first
/// tile's Q goes first; a later tile's Q goes after its first K/V block (or
/// its end slot), once both consumer warpgroups have signalled "Q empty"
/// for the tile before: so the next tile's first K/V and Q arrive while the
/// consumers finish the current one.
template <typename Traits> struct Producer {
  const Sm90Params &p;
  const Sm90Smem<Traits> &sm;
  RingPos<Traits> pos;

  /// Into the next stage: key block j of t (more), or the end of t's row,
  /// whose slot codes the CTA's next tile (returned in `next`).
  __device__ __forceinline__ void push(const Sm90Tile &t, bool more, int j,
                                       int &next) {
    const int stage = pos.stage();
    // Use u of this stage waits for the consumers' release of use u - 1
    // (parity (u - 1) & 1; for u = 0 it passes at once). The release
    // follows the consumers' read of the slot's previous value.
    mbarWait(sm.empty(stage), pos.parity() ^ 1u);
    pos = pos.next();
    if (more) {
      storeShared(sm.slot(stage), j);
      loadKV(p, sm, t, stage, j);
    } else { // the end of the row: a stage with no tiles, its slot coded
      next = nextTile<Traits>(p);
      storeShared(sm.slot(stage), endOfRowSlot(next));
      mbarArrive(sm.kFull(stage));
      // No consumer waits for it, but every use of a stage completes one
      // phase of each of its barriers (the parities count uses).
      mbarArrive(sm.vFull(stage));
    }
  }

  /// The rest of tile n's row from the walk's entry (more, j) on; its Q
  /// after the first stage if qPending. Returns the next tile (-1: none).
  __device__ __forceinline__ int row(const Sm90Tile &t, BlockWalk &walk,
                                     bool more, int j, uint32_t n,
                                     bool qPending) {
    int next = -1;
    for (;; more = walk.next(p, j)) {
      push(t, more, j, next);
      if (qPending) { // tile n waits for the release of tile n - 1's Q
        mbarWait(sm.qEmpty(), (n & 1u) ^ 1u);
        loadQ(p, sm, t);
        qPending = false;
      }
      if (!more)
        return next;
    }
  }

  /// Tiles n, n + 1, ... from tileIndex on (each with its Q but the first
  /// tile's, n = 0, which goes first).
  __device__ __forceinline__ void run(int tileIndex, uint32_t n) {
    for (; tileIndex >= 0; ++n) {
      const Sm90Tile t = scheduleTile(p, tileIndex);
      if (n == 0)
        loadQ(p, sm, t);
      BlockWalk walk = layoutRow(p, t.b, t.group, t.qTile, 128, t.qLast);
      int j = 0;
      const bool more = walk.next(p, j);
      tileIndex = row(t, walk, more, j, n, n > 0);
      if constexpr (!Traits::kPersistent)
        return; // one tile per CTA (tileIndex is -1)
    }
  }
};

/// The producer's start before the CTA barrier (Traits::kEarlyStart; the
/// producer thread, which also initializes the mbarriers): the layout
/// row's count is loaded and its first entry's line prefetched at once, so
/// that the walk's first read hits L1 when the count arrives (else the
/// entry's load waits for the count's), and after the mbarrier
/// initialization the first tile's Q and first stage are issued. finish()
/// walks the rest after the barrier. Else everything is left to finish().
template <typename Traits> struct ProducerStart {
  Sm90Tile t;
  int rawCount = 0;
  BlockWalk walk{};
  bool more = false; ///< the first stage holds a block (else the row's end)
  int j = 0, next = -1;

  /// Before the mbarrier initialization: the layout loads.
  __device__ __forceinline__ void load(const Sm90Params &p) {
    if constexpr (Traits::kEarlyStart) {
      prefetchTensorMap(&p.tmQ);
      prefetchTensorMap(&p.tmK);
      prefetchTensorMap(&p.tmV);
      t = scheduleTile(p, int(blockIdx.x));
      rawCount = layoutRowCount(p, t.b, t.group, t.qTile);
      if (p.maxBlocks > 0) // the row has an entry 0 (whatever the count)
        prefetchL1(layoutRowIndices(p, t.b, t.group, t.qTile));
    }
  }

  /// After the mbarrier initialization: Q and the first stage.
  __device__ __forceinline__ void issue(Producer<Traits> &prod) {
    if constexpr (Traits::kEarlyStart) {
      loadQ(prod.p, prod.sm, t);
      walk = layoutRow(prod.p, t.b, t.group, t.qTile, 128, t.qLast, rawCount);
      more = walk.next(prod.p, j);
      prod.push(t, more, j, next);
    }
  }

  /// After the CTA barrier: the rest of the CTA's tiles.
  __device__ __forceinline__ void finish(Producer<Traits> &prod) {
    if constexpr (Traits::kEarlyStart) {
      if (more)
        next = prod.row(t, walk, walk.next(prod.p, j), j, 0, false);
      prod.run(next, 1);
    } else {
      prefetchTensorMap(&prod.p.tmQ);
      prefetchTensorMap(&prod.p.tmK);
      prefetchTensorMap(&prod.p.tmV);
      prod.run(int(blockIdx.x), 0);
    }
  }
};

//===----------------------------------------------------------------------===//
// Consumers: 64 query rows per warpgroup; GEMMs and the online softmax.
//===----------------------------------------------------------------------===//

template <typename Elem, int HeadDim> struct Consumer {
  using Traits = Sm90Traits<HeadDim>;
  static constexpr int kSAcc = Traits::kBlockN / 2; ///< S accumulators
  /// O accumulators (with kRowSumByMma the last 4 hold the row sums).
  static constexpr int kOAcc = Traits::kOCols / 2;
  static constexpr int kKeySteps = Traits::kBlockN / 16;
  static constexpr int kDSteps = HeadDim / 16;
  using MmaS = Wgmma<Traits::kBlockN, Elem::kIsBf16>;
  using MmaO = Wgmma<Traits::kOCols, Elem::kIsBf16>;

  const Sm90Params &p;
  int consumer; ///< 0 or 1: rows consumer * 64 .. + 63 of the tile
  int lane;
  int row0;    ///< this thread's rows: row0 and row0 + 8
  int colBase; ///< this thread's first column within each 8-column group
  int qTile;
  uint64_t qDesc, kDesc, vDesc;

  float o[kOAcc];
  float s[kSAcc];
  /// P as A fragments (one per 16-key step), double-buffered: the P of the
  /// next block is packed while the previous P V still reads the other
  /// buffer, so no wait for that GEMM comes before the softmax.
  uint32_t pf[2][kKeySteps][4];
  float rowMax[2] = {kNegInf, kNegInf}; ///< log2 domain
  /// Row sums of P (with kRowSumByMma unused: the epilogue reads them from o).
  float rowSum[2] = {0.0f, 0.0f};

  __device__ __forceinline__ Consumer(const Sm90Params &params,
                                      const Sm90Smem<Traits> &sm,
                                      const Sm90Tile &t, int warpgroup)
      : p(params), consumer(warpgroup - 1) {
    const int tid = threadIdx.x % 128, warp = tid / 32;
    lane = tid % 32;
    row0 = t.q0 + consumer * 64 + warp * 16 + lane / 4;
    colBase = 2 * (lane % 4);
    qTile = t.qTile;
    // wgmma descriptors of this warpgroup's Q rows (64 rows x 128 bytes
    // per slab) and of the first K and V stages; a byte offset b moves a
    // descriptor by b >> 4 (the start address field, which holds every
    // shared-memory address of the CTA without carry).
    qDesc = smemDesc(sm.q + consumer * 64 * 128, 16, 1024);
    kDesc = smemDesc(sm.k, 16, 1024);
    vDesc = smemDesc(sm.v, Traits::kSlabBytes, 1024);
#pragma unroll
    for (int i = 0; i < kOAcc; ++i)
      o[i] = 0.0f;
  }

  /// S = Q K^T for the K tile of `stage` (issued, not waited for).
  __device__ __forceinline__ void issueS(int stage) {
    const uint64_t kStage = kDesc + ((stage * Traits::kTileBytes) >> 4);
#pragma unroll
    for (int kk = 0; kk < kDSteps; ++kk) {
      const uint32_t off = ((kk / 4) * Traits::kSlabBytes + (kk % 4) * 32) >> 4;
      MmaS::ss(s, qDesc + off, kStage + off, kk > 0);
    }
  }

  /// O += P V with P from buffer B, V the tile of `stage` (issued only).
  template <int B> __device__ __forceinline__ void issueO(int stage) {
    const uint64_t vStage = vDesc + ((stage * Traits::kVStageBytes) >> 4);
#pragma unroll
    for (int kk = 0; kk < kKeySteps; ++kk)
      MmaO::rs(o, pf[B][kk], vStage + ((kk * 16 * 128) >> 4));
  }

  /// Whether block j needs the mask: the diagonal block (causal) and a
  /// partial last block. With ascending layout rows it is the last one.
  __device__ __forceinline__ bool needsMask(int j) const {
    return tileNeedsMask(j * Traits::kBlockN, Traits::kBlockN,
                         qTile * Traits::kBlockM, p.seqLen, p.causal);
  }

  /// exp2 of one score of eight-column group T: on the FMA pipe for
  /// Traits::kPolyExp2Tiles of the 16 groups, spread evenly (the groups T
  /// with T * k mod 16 < k: exactly k of them), else on the MUFU unit.
  template <int T> static __device__ __forceinline__ float exp2Of(float x) {
    constexpr int kTiles = Traits::kPolyExp2Tiles;
    constexpr int kGroups = kSAcc / 4;
    if constexpr ((T * kTiles) % kGroups < kTiles)
      return exp2Poly(x);
    else
      return exp2Approx(x);
  }

  template <int T, int R>
  __device__ __forceinline__ void expPair(float base, float &sum) {
#pragma unroll
    for (int e = 0; e < 2; ++e) {
      float &x = s[4 * T + 2 * R + e];
      x = exp2Of<T>(fmaf(x, p.scaleLog2, -base));
      if constexpr (!Traits::kRowSumByMma)
        sum += x;
    }
  }

  template <int T, int R>
  __device__ __forceinline__ void expRow(float base, float &sum) {
    if constexpr (T < kSAcc / 4) {
      expPair<T, R>(base, sum);
      expRow<T + 1, R>(base, sum);
    }
  }

  /// The mask on accumulators [I0, I1): -inf for every score of a key past
  /// lastVisibleKey of its row.
  template <int I0, int I1> __device__ __forceinline__ void maskScores(int j) {
    // Per row, the last visible column offset within this thread's
    // columns (key j * kBlockN + colBase + offset): one compare with a
    // constant per score.
    int lastOffset[2];
#pragma unroll
    for (int r = 0; r < 2; ++r)
      lastOffset[r] = lastVisibleKey(row0 + 8 * r, p.seqLen, p.causal) -
                      j * Traits::kBlockN - colBase;
#pragma unroll
    for (int i = I0; i < I1; ++i)
      if ((i / 4) * 8 + i % 2 > lastOffset[(i / 2) % 2])
        s[i] = kNegInf;
  }

  /// The mask (Masked: every score of a key past lastVisibleKey of its
  /// row) and the online softmax of s in place; alpha receives the factors
  /// by which O must be rescaled.
  /// The max of row r (0, 1) of s over this thread's quad: the row's
  /// max over the whole key tile.
  __device__ __forceinline__ float quadRowMax(int r) const {
    float m = kNegInf;
#pragma unroll
    for (int t = 0; t < kSAcc / 4; ++t)
      m = fmaxf(m, fmaxf(s[4 * t + 2 * r], s[4 * t + 2 * r + 1]));
    m = fmaxf(m, __shfl_xor_sync(0xffffffffu, m, 1));
    return fmaxf(m, __shfl_xor_sync(0xffffffffu, m, 2));
  }

  /// What P is taken relative to: the reference max, or 0 for a row with
  /// no visible key yet (-inf), so that exp2 gives exact zeros (not NaN).
  __device__ __forceinline__ float rowBase(int r) const {
    return rowMax[r] == kNegInf ? 0.0f : rowMax[r];
  }

  template <bool Masked>
  __device__ __forceinline__ void softmax(int j, float (&alpha)[2]) {
    if constexpr (Masked)
      maskScores<0, kSAcc>(j);
#pragma unroll
    for (int r = 0; r < 2; ++r) {
      // The reference max (log2 domain) moves only when the tile's max
      // exceeds it by more than kRescaleThreshold (lazy rescaling: P stays
      // below 2^threshold, and most tiles leave O as it is).
      const float mTile = quadRowMax(r) * p.scaleLog2;
      if (!(mTile <= rowMax[r] + Traits::kRescaleThreshold)) {
        const float mNew = fmaxf(rowMax[r], mTile);
        alpha[r] = exp2Approx(rowMax[r] - (mNew == kNegInf ? 0.0f : mNew));
        rowMax[r] = mNew;
      } else {
        alpha[r] = 1.0f;
      }
      const float base = rowBase(r);
      float sum = 0.0f;
      if (r == 0)
        expRow<0, 0>(base, sum);
      else
        expRow<0, 1>(base, sum);
      if constexpr (!Traits::kRowSumByMma)
        rowSum[r] = rowSum[r] * alpha[r] + sum;
    }
  }

  /// Mask (where needed) and softmax of block j, P into buffer B. Two
  /// copies of the code: the unmasked one (every block but the last, with
  /// ascending layout rows) evaluates no mask.
  template <int B>
  __device__ __forceinline__ void softmaxBlock(int j, float (&alpha)[2]) {
    if (needsMask(j)) {
      softmax<true>(j, alpha);
      packP<B>();
    } else {
      softmax<false>(j, alpha);
      packP<B>();
    }
  }

  /// P into buffer B as bf16/f16 A fragments: the accumulators of n-tiles
  /// 2kk and 2kk + 1 form the A fragment of key step kk.
  template <int B> __device__ __forceinline__ void packP() {
#pragma unroll
    for (int kk = 0; kk < kKeySteps; ++kk)
#pragma unroll
      for (int q = 0; q < 4; ++q)
        pf[B][kk][q] = Elem::pack(s[8 * kk + 2 * q], s[8 * kk + 2 * q + 1]);
  }

  __device__ __forceinline__ void rescaleO(const float (&alpha)[2]) {
#pragma unroll
    for (int i = 0; i < kOAcc; ++i)
      o[i] *= alpha[(i / 2) % 2];
  }

  /// S = Q K^T for keys [64 H, 64 H + 64) of the K tile of `stage` into
  /// s[32 H ..] (Traits::kSplitS; issued only). The accumulators of an
  /// m64n64 wgmma are the first 32 of an m64n128 one, and the keys 64 H..
  /// start 64 rows (8 KiB) into each 128-row slab of the K tile.
  template <int H> __device__ __forceinline__ void issueSHalf(int stage) {
    using MmaHalf = Wgmma<Traits::kBlockN / 2, Elem::kIsBf16>;
    constexpr int kHalf = kSAcc / 2;
    const uint64_t kStage =
        kDesc + ((stage * Traits::kTileBytes + H * 64 * 128) >> 4);
    float (&acc)[kHalf] = *reinterpret_cast<float (*)[kHalf]>(&s[H * kHalf]);
#pragma unroll
    for (int kk = 0; kk < kDSteps; ++kk) {
      const uint32_t off = ((kk / 4) * Traits::kSlabBytes + (kk % 4) * 32) >> 4;
      MmaHalf::ss(acc, qDesc + off, kStage + off, kk > 0);
    }
  }

  /// fenceRegs on s[I0, I1) (after the wait for the wgmma that wrote them).
  template <int I0, int I1> __device__ __forceinline__ void fenceS() {
#pragma unroll
    for (int i = I0; i < I1; ++i)
      asm volatile("" : "+f"(s[i])::"memory");
  }

  /// The speculative exponentials of key steps [KK, KEnd) into P buffer B
  /// (Traits::kSpecSoftmax): x = S * scale - base[row] is kept in s (for
  /// the slow path; Scaled = false: s already holds x, and base is the
  /// slow path's shift), P = exp2(x - ...) packed and summed per row in
  /// column order.
  template <int B, bool Scaled, int KK, int KEnd>
  __device__ __forceinline__ void expSpec(const float (&base)[2],
                                          float (&sum)[2]) {
    if constexpr (KK < KEnd) {
#pragma unroll
      for (int q = 0; q < 4; ++q) {
        const int r = q % 2; // accumulator 8 KK + 2 q + h: row q % 2
        float e[2];
#pragma unroll
        for (int h = 0; h < 2; ++h) {
          float &x = s[8 * KK + 2 * q + h];
          if constexpr (Scaled)
            x = fmaf(x, p.scaleLog2, -base[r]);
          const float y = Scaled ? x : x - base[r];
          // Eight-column group 2 KK + q / 2.
          e[h] = q < 2 ? exp2Of<2 * KK>(y) : exp2Of<2 * KK + 1>(y);
          sum[r] += e[h];
        }
        pf[B][KK][q] = Elem::pack(e[0], e[1]);
      }
      expSpec<B, Scaled, KK + 1, KEnd>(base, sum);
    }
  }

  /// The end of a block's speculative softmax (P in buffer B, s = S *
  /// scale - base, this thread's partial row sums in sum). The speculation
  /// holds for a thread whose rows have a reference max and whose partial
  /// sums are at most kRescaleBound (so every P is). If it holds for the
  /// whole warp: alpha = 1, returns false. Else (warp-uniform) the slow
  /// path: per row the max of S * scale - base (quad shuffles), the lazy
  /// rescale rule of softmax() on it, the exponentials again from the kept
  /// x with the shift; returns true with alpha.
  template <int B>
  __device__ __forceinline__ bool
  finishSpec(const float (&base)[2], float (&sum)[2], float (&alpha)[2]) {
    const bool holds = rowMax[0] != kNegInf && rowMax[1] != kNegInf &&
                       sum[0] <= Traits::kRescaleBound &&
                       sum[1] <= Traits::kRescaleBound;
    if (__all_sync(0xffffffffu, holds)) {
#pragma unroll
      for (int r = 0; r < 2; ++r) {
        if constexpr (!Traits::kRowSumByMma)
          rowSum[r] += sum[r];
        alpha[r] = 1.0f;
      }
      return false;
    }
    float shift[2];
#pragma unroll
    for (int r = 0; r < 2; ++r) {
      // s holds S * scale - base: the block's max in the log2 domain is
      // the row max of s plus base; then softmax()'s rule, and a moved
      // reference max shifts P.
      const float mTile = quadRowMax(r) + base[r];
      if (!(mTile <= rowMax[r] + Traits::kRescaleThreshold)) {
        const float mNew = fmaxf(rowMax[r], mTile);
        const float newBase = mNew == kNegInf ? 0.0f : mNew;
        alpha[r] = exp2Approx(rowMax[r] - newBase);
        shift[r] = newBase - base[r];
        rowMax[r] = mNew;
      } else {
        alpha[r] = 1.0f;
        shift[r] = 0.0f;
      }
      sum[r] = 0.0f;
    }
    expSpec<B, false, 0, kKeySteps>(shift, sum);
    if constexpr (!Traits::kRowSumByMma) {
#pragma unroll
      for (int r = 0; r < 2; ++r)
        rowSum[r] = rowSum[r] * alpha[r] + sum[r];
    }
    return true;
  }

  /// The speculative softmax of block j into buffer B, from the wait for
  /// its S on (with kSplitS the first half's exponentials run while the
  /// second half is computed). Returns whether the slow path ran (then
  /// alpha holds the rescale factors of O; else they are 1).
  template <int B>
  __device__ __forceinline__ bool softmaxSpec(int j, float (&alpha)[2]) {
    float base[2], sum[2] = {0.0f, 0.0f};
#pragma unroll
    for (int r = 0; r < 2; ++r)
      base[r] = rowBase(r);
    const bool masked = needsMask(j);
    if constexpr (Traits::kSplitS) {
      constexpr int kHalf = kSAcc / 2;
      wgmmaWait<2>(); // the first half of S
      fenceS<0, kHalf>();
      if (masked)
        maskScores<0, kHalf>(j);
      expSpec<B, true, 0, kKeySteps / 2>(base, sum);
      // The second half. With a plain wait here ptxas put 31 of the first
      // half's 32 MUFU after it (register-only work moves across a wait
      // freely); a branch on the first half's partial sums (never
      // negative, so always the first way; the other way waits for all
      // groups, also correct) keeps them before it.
      if (__all_sync(0xffffffffu, !(sum[0] + sum[1] < 0.0f)))
        wgmmaWait<1>();
      else
        wgmmaWait<0>();
      fenceS<kHalf, kSAcc>();
      if (masked)
        maskScores<kHalf, kSAcc>(j);
      expSpec<B, true, kKeySteps / 2, kKeySteps>(base, sum);
    } else {
      wgmmaWait<1>(); // S of block j
      fenceS<0, kSAcc>();
      if (masked)
        maskScores<0, kSAcc>(j);
      expSpec<B, true, 0, kKeySteps>(base, sum);
    }
    return finishSpec<B>(base, sum, alpha);
  }
};

/// The ping-pong turns of the two consumer warpgroups (see NamedBarrier).
struct Turns {
  uint32_t mine, other;
  __device__ __forceinline__ explicit Turns(int consumer)
      : mine(kBarrierTurn0 + consumer), other(kBarrierTurn1 - consumer) {}
  __device__ __forceinline__ void wait() const {
    asm volatile("bar.sync %0, 256;\n" ::"r"(mine) : "memory");
  }
  __device__ __forceinline__ void pass() const {
    asm volatile("bar.arrive %0, 256;\n" ::"r"(other) : "memory");
  }
};

/// The consumer warpgroup's main loop over the blocks the producer puts in
/// the ring. Per block j (after the first): in its turn, issue S_{j} = Q
/// K_j^T and O += P_{j-1} V_{j-1}; pass the turn; wait for S_j; softmax it
/// into the other P buffer while P_{j-1} V_{j-1} runs; wait for that;
/// release its stage; rescale O if the max moved. Both warpgroups take one
/// turn per block plus one. The ring position carries over from tile to
/// tile (the persistent kernel's producer fills the ring without a break).
template <typename Elem, int HeadDim> struct MainLoop {
  using C = Consumer<Elem, HeadDim>;
  using Traits = typename C::Traits;
  C &c;
  const Sm90Smem<Traits> &sm;
  const Turns &turns;
  RingPos<Traits> &pos; ///< the block whose P is packed, not yet multiplied

  /// The key block in the ring at `at`, or (< 0) the end slot. Each read
  /// of a slot must be ordered before the producer's next write of it by
  /// the reader's own arrive on the stage's "empty" (ordering through the
  /// ping-pong barrier and another thread's arrive is what
  /// compute-sanitizer's racecheck reports as hazards). So either only
  /// lane 0 reads the slot, shuffles it to the warp and releases the
  /// stage, or (Traits::kSlotAllLanes) every thread reads it and arrives
  /// (all the same address: one broadcast read), which takes the shuffle
  /// off the path from "K full" to the branch on the block.
  __device__ __forceinline__ int blockAt(RingPos<Traits> at) const {
    mbarWait(sm.kFull(at.stage()), at.parity());
    if constexpr (Traits::kSlotAllLanes) {
      return loadShared(sm.slot(at.stage()));
    } else {
      int j = 0;
      if (c.lane == 0)
        j = loadShared(sm.slot(at.stage()));
      return __shfl_sync(0xffffffffu, j, 0);
    }
  }

  __device__ __forceinline__ void release(int stage) const {
    if (Traits::kSlotAllLanes || c.lane == 0)
      mbarArrive(sm.empty(stage));
  }

  /// The first block j: S, softmax, P into buffer 0 (O is still zero).
  __device__ __forceinline__ void first(int j) {
    turns.wait();
    wgmmaFence();
    c.issueS(pos.stage());
    wgmmaCommit();
    turns.pass();
    wgmmaWait<0>();
    fenceRegs(c.s);
    float alpha[2];
    c.template softmaxBlock<0>(j, alpha);
  }

  /// In this warpgroup's turn: S = Q K^T for the K tile of stage sStage
  /// (WithS; with kSplitS two halves, two commit groups) and O += P V with
  /// P buffer B and the V tile of `pos`; issued, not waited for.
  template <int B, bool WithS>
  __device__ __forceinline__ void issueTurn(int sStage) {
    const int stage = pos.stage();
    mbarWait(sm.vFull(stage), pos.parity());
    fenceRegs(c.o);
    fenceRegs(c.pf[B]);
    turns.wait();
    wgmmaFence();
    if constexpr (WithS && Traits::kSplitS) {
      c.template issueSHalf<0>(sStage);
      wgmmaCommit();
      c.template issueSHalf<1>(sStage);
      wgmmaCommit();
    } else if constexpr (WithS) {
      c.issueS(sStage);
      wgmmaCommit();
    }
    c.template issueO<B>(stage);
    wgmmaCommit();
    turns.pass();
  }

  /// The end slot at `end` (every Q K^T of the tile has been waited for):
  /// under the persistent kernel, releases its stage and Q (lane 0 of each
  /// warp, as for the stages), so that the producer can load the next
  /// tile's first K/V and Q during the last P V and the epilogue. Returns
  /// the next tile (-1: none).
  __device__ __forceinline__ int endRow(RingPos<Traits> end, int slot) {
    if constexpr (Traits::kPersistent) {
      release(end.stage());
      if (c.lane == 0)
        mbarArrive(sm.qEmpty());
      return tileAfterRow(slot);
    } else {
      return -1;
    }
  }

  /// One block with P in buffer B; at the row's end nothing is done and
  /// the end slot returned (negative), else the block.
  template <int B> __device__ __forceinline__ int step() {
    const RingPos<Traits> next = pos.next();
    const int jn = blockAt(next);
    if (jn < 0)
      return jn;
    issueTurn<B, true>(next.stage());
    float alpha[2];
    // Whether O may need the rescale: always without the speculative
    // softmax (the vote decides), else only after its slow path.
    bool mayRescale = true;
    if constexpr (Traits::kSpecSoftmax) {
      mayRescale = c.template softmaxSpec<1 - B>(jn, alpha);
    } else {
      wgmmaWait<1>(); // S of block jn is ready
      fenceRegs(c.s);
      c.template softmaxBlock<1 - B>(jn, alpha);
    }
    wgmmaWait<0>(); // P V of the previous block is done
    fenceRegs(c.o);
    fenceRegs(c.pf[B]);
    release(pos.stage());
    if (mayRescale &&
        __any_sync(0xffffffffu, alpha[0] != 1.0f || alpha[1] != 1.0f))
      c.rescaleO(alpha);
    pos = next;
    return jn;
  }

  /// The last P V, P in buffer B.
  template <int B> __device__ __forceinline__ void last() {
    issueTurn<B, false>(0);
    wgmmaWait<0>();
    fenceRegs(c.o);
    release(pos.stage());
  }

  /// The row's end after the block at pos, whose P is in buffer B: the end
  /// slot (endRow), then the last P V; pos moves past the end slot.
  /// Returns the next tile (-1: none).
  template <int B> __device__ __forceinline__ int finish(int slot) {
    const RingPos<Traits> end = pos.next();
    const int next = endRow(end, slot);
    last<B>();
    pos = end.next();
    return next;
  }

  /// The tile's blocks; returns the next tile (-1: none).
  __device__ __forceinline__ int run() {
    const int j = blockAt(pos);
    if (j < 0) {
      const int next = endRow(pos, j);
      pos = pos.next();
      return next;
    }
    first(j);
    // Unrolled by two so that each P buffer is a fixed register array.
    for (;;) {
      if (const int slot = step<0>(); slot < 0)
        return finish<0>(slot);
      if (const int slot = step<1>(); slot < 0)
        return finish<1>(slot);
    }
  }
};

/// a[idx] for a run-time idx in [0, 4) (three selects).
__device__ __forceinline__ uint32_t pick4(const uint32_t (&a)[4], int idx) {
  const uint32_t lo = idx & 1 ? a[1] : a[0];
  const uint32_t hi = idx & 1 ? a[3] : a[2];
  return idx & 2 ? hi : lo;
}

/// The 4 x 4 transpose inside each quad of the warp: thread q (= lane % 4)
/// passes in row q (w[k] = A[q][k]) and gets column q (A[k][q] in
/// component k). Round k takes A[q + k][q] from thread q + k (mod 4), which
/// sends its element (q + k) - k = its own index minus k: one shuffle per
/// round after the first, and a run-time rotation on each side.
__device__ __forceinline__ uint4 transposeQuad(const uint32_t (&w)[4],
                                               int lane) {
  const int q = lane % 4;
  uint32_t got[4]; // got[k] = A[(q + k) % 4][q]
  got[0] = pick4(w, q);
#pragma unroll
  for (int k = 1; k < 4; ++k)
    got[k] = __shfl_sync(0xffffffffu, pick4(w, (q - k) & 3),
                         (lane & ~3) | ((q + k) & 3));
  return uint4{pick4(got, (0 - q) & 3), pick4(got, (1 - q) & 3),
               pick4(got, (2 - q) & 3), pick4(got, (3 - q) & 3)};
}

/// Epilogue: O / l and LSE = (m + log2 l) ln 2 from registers (with
/// Traits::kWideStores 16 bytes per store after a quad transpose).
template <typename Elem, int HeadDim>
__device__ __forceinline__ void epilogue(Consumer<Elem, HeadDim> &c,
                                         const Sm90Tile &t) {
  const Sm90Params &p = c.p;
  if constexpr (Sm90Traits<HeadDim>::kRowSumByMma) {
    // O's last 8 columns (accumulators kOAcc - 4 ..): P times ones, the
    // whole row's sum in every column.
#pragma unroll
    for (int r = 0; r < 2; ++r)
      c.rowSum[r] = c.o[Consumer<Elem, HeadDim>::kOAcc - 4 + 2 * r];
  } else {
#pragma unroll
    for (int r = 0; r < 2; ++r) {
      c.rowSum[r] += __shfl_xor_sync(0xffffffffu, c.rowSum[r], 1);
      c.rowSum[r] += __shfl_xor_sync(0xffffffffu, c.rowSum[r], 2);
    }
  }
  // l == 0: the row saw no key: O = 0, LSE = -inf.
  float inv[2], lse[2];
#pragma unroll
  for (int r = 0; r < 2; ++r) {
    inv[r] = c.rowSum[r] == 0.0f ? 0.0f : 1.0f / c.rowSum[r];
    lse[r] = c.rowSum[r] == 0.0f ? kNegInf
                                 : (c.rowMax[r] + log2f(c.rowSum[r])) * kLn2;
  }
  uint16_t *oHead =
      static_cast<uint16_t *>(p.o) + t.b * p.oStride[0] + t.h * p.oStride[1];
#pragma unroll
  for (int r = 0; r < 2; ++r) {
    const int row = c.row0 + 8 * r;
    if constexpr (Sm90Traits<HeadDim>::kWideStores) {
      // Thread q = lane % 4 of a quad holds the pair at columns 8 i + 2 q
      // of every eight-column group i; after the transpose of each 4 x 4
      // block of pairs (groups 4 g .. 4 g + 3) it holds the four pairs of
      // group 4 g + q: 16 contiguous bytes. The shuffles run in every lane
      // (before the row check).
      uint4 out[HeadDim / 32];
#pragma unroll
      for (int g = 0; g < HeadDim / 32; ++g) {
        uint32_t w[4];
#pragma unroll
        for (int e = 0; e < 4; ++e) {
          const int i = 4 * g + e;
          w[e] = Elem::pack(c.o[4 * i + 2 * r] * inv[r],
                            c.o[4 * i + 2 * r + 1] * inv[r]);
        }
        out[g] = transposeQuad(w, c.lane);
      }
      if (row >= p.seqLen)
        continue;
      uint16_t *oRow = oHead + int64_t(row) * p.oStride[2] + 8 * (c.lane % 4);
#pragma unroll
      for (int g = 0; g < HeadDim / 32; ++g)
        *reinterpret_cast<uint4 *>(oRow + 32 * g) = out[g];
    } else {
      if (row >= p.seqLen)
        continue;
      uint16_t *oRow = oHead + int64_t(row) * p.oStride[2] + c.colBase;
#pragma unroll
      for (int i = 0; i < HeadDim / 8; ++i)
        *reinterpret_cast<uint32_t *>(oRow + 8 * i) = Elem::pack(
            c.o[4 * i + 2 * r] * inv[r], c.o[4 * i + 2 * r + 1] * inv[r]);
    }
    if (c.lane % 4 == 0)
      p.lse[t.b * p.lseStride[0] + t.h * p.lseStride[1] +
            int64_t(row) * p.lseStride[2]] = lse[r];
  }
}

//===----------------------------------------------------------------------===//
// The kernel body: roles by warpgroup.
//===----------------------------------------------------------------------===//

/// kRowSumByMma: every thread writes its share of the slabs of ones that
/// follow the V tiles (16 bytes at a time; the 128-byte swizzle does not
/// matter, every element is 1), then makes them visible to wgmma (the
/// async proxy) before the CTA barrier.
template <typename Elem, typename Traits>
__device__ __forceinline__ void fillOnes(const Sm90Smem<Traits> &sm) {
  constexpr int kChunks = Traits::kSlabBytes / 16;
  constexpr uint32_t kOnes = Elem::kIsBf16 ? 0x3f803f80u  // two bf16 1.0
                                           : 0x3c003c00u; // two f16 1.0
  for (int s = 0; s < Traits::kStages; ++s) {
    const uint32_t ones = sm.vTile(s) + Traits::kTileBytes;
    for (int i = int(threadIdx.x); i < kChunks; i += Traits::kThreads)
      asm volatile("st.shared.v4.b32 [%0], {%1, %1, %1, %1};\n" ::"r"(
                       ones + 16u * uint32_t(i)),
                   "r"(kOnes)
                   : "memory");
  }
  fenceProxyAsyncShared();
}

template <typename Elem, int HeadDim>
__device__ __forceinline__ void attentionSm90(const Sm90Params &p) {
  using Traits = Sm90Traits<HeadDim>;
  extern __shared__ unsigned char smemRaw[];
  const Sm90Smem<Traits> sm = Sm90Smem<Traits>::at(
      static_cast<uint32_t>(__cvta_generic_to_shared(smemRaw)));

  // Broadcast from lane 0, so that ptxas knows the index is warp-uniform:
  // the consumers' Q descriptors (and the turn's barrier ids) derived from
  // it then live in uniform registers, and the GEMM issue inside a turn
  // needs no R2UR / UMOV per wgmma (a turn from bar.sync to bar.arrive:
  // 87-90 -> 57-69 instructions at d = 128, 59 -> 48 at d = 64).
  const int warpgroup = __shfl_sync(0xffffffffu, int(threadIdx.x) / 128, 0);
  Producer<Traits> prod{p, sm};
  ProducerStart<Traits> start;
  if (threadIdx.x == 0) {
    start.load(p);
    mbarInit(sm.qFull(), 1);
    for (int s = 0; s < Traits::kStages; ++s) {
      mbarInit(sm.kFull(s), 1);
      mbarInit(sm.vFull(s), 1);
      // Every consumer thread, or lane 0 of each consumer warp.
      mbarInit(sm.empty(s),
               Traits::kConsumers * (Traits::kSlotAllLanes ? 128 : 4));
    }
    mbarInit(sm.qEmpty(), Traits::kConsumers * 4);
    mbarInitFence();
    start.issue(prod);
  }
  if constexpr (Traits::kRowSumByMma)
    fillOnes<Elem>(sm);
  __syncthreads();

  if (warpgroup == 0) {
    setMaxRegistersDec<Traits::kProducerRegs>();
    if (threadIdx.x == 0)
      start.finish(prod);
    return;
  }

  setMaxRegistersInc<Traits::kConsumerRegs>();
  const Turns turns(warpgroup - 1);
  if (warpgroup == 2)
    turns.pass(); // warpgroup 1 (consumer 0) goes first
  // The turns, the ring and the Q phases carry over from tile to tile.
  RingPos<Traits> pos;
  int tileIndex = int(blockIdx.x);
  for (uint32_t n = 0; tileIndex >= 0; ++n) {
    // Tells ptxas that the warp is converged at the top of every tile.
    // Without it, in the persistent build (a loop over tiles whose bound
    // comes from a shuffle) ptxas guarded each shuffle of the softmax with
    // a divergence check (BRA.DIV) and no longer interleaved the two rows'
    // max reductions, and it duplicated the first tile's code.
    __syncwarp();
    const Sm90Tile tile = scheduleTile(p, tileIndex);
    Consumer<Elem, HeadDim> c(p, sm, tile, warpgroup);
    mbarWait(sm.qFull(), n & 1u);
    tileIndex = MainLoop<Elem, HeadDim>{c, sm, turns, pos}.run();
    epilogue(c, tile);
  }
  if (warpgroup == 1)
    turns.wait(); // the last turn consumer 1 passed
}

} // namespace
} // namespace unisparse::rt::cuda

//===----------------------------------------------------------------------===//
// Entry points (names in kSm90KernelNames), one per dtype and head dim.
//===----------------------------------------------------------------------===//

using unisparse::rt::cuda::Sm90Params;
using unisparse::rt::cuda::Sm90Traits;

#define UNISPARSE_BSA_SM90_KERNEL(NAME, ELEM, DIM)                             \
  extern "C" __global__ void __launch_bounds__(Sm90Traits<DIM>::kThreads, 1)   \
      NAME(const __grid_constant__ Sm90Params params) {                        \
    unisparse::rt::cuda::attentionSm90<unisparse::rt::cuda::ELEM, DIM>(        \
        params);                                                               \
  }

UNISPARSE_BSA_SM90_KERNEL(unisparse_bsa_sm90_fwd_f16_d64, F16, 64)
UNISPARSE_BSA_SM90_KERNEL(unisparse_bsa_sm90_fwd_f16_d128, F16, 128)
UNISPARSE_BSA_SM90_KERNEL(unisparse_bsa_sm90_fwd_bf16_d64, Bf16, 64)
UNISPARSE_BSA_SM90_KERNEL(unisparse_bsa_sm90_fwd_bf16_d128, Bf16, 128)
