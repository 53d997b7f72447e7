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
//    softmax, wait for P_j V_j, rescale O, release stage j.
//  - the epilogue writes O / l and LSE = (m + log2 l) ln 2 from registers.
// CTAs are ordered by kv head, then heaviest query blocks first (causal: the
// last ones), so that the resident CTAs share one kv head's K/V in L2.
//
// Bound it targets: per 128 x 128 block a CTA does 4 * 128 * 128 * D FLOP on
// tensor cores against 2 * 128 * D * 2 bytes of K/V (128 FLOP per byte, from
// L2 mostly), and 128 * 128 exp2 on the MUFU unit; the design point is the
// wgmma rate with the softmax hidden behind the GEMMs.
//
// Layout safety: the same rules as the mma.sync kernel (counts clamped to
// [0, M], indices outside [0, NBk) or not ascending skipped).
//
//===----------------------------------------------------------------------===//

#include "cuda/BlockSparseAttentionSm90Kernel.h"
#include "cuda/PackHalf2.h"

#include <cuda_bf16.h>
#include <cuda_fp16.h>

#include <cstdint>
#include <cstring>

namespace unisparse::rt::cuda {
namespace {

constexpr float kNegInf = -__builtin_huge_valf();
constexpr float kLn2 = 0.693147180559945309f;

//===----------------------------------------------------------------------===//
// PTX wrappers: mbarrier, TMA, wgmma, setmaxnreg.
//===----------------------------------------------------------------------===//

__device__ __forceinline__ void mbarInit(uint32_t bar, uint32_t count) {
  asm volatile("mbarrier.init.shared::cta.b64 [%0], %1;\n" ::"r"(bar),
               "r"(count)
               : "memory");
}

__device__ __forceinline__ void mbarArriveExpectTx(uint32_t bar,
                                                   uint32_t bytes) {
  asm volatile(
      "mbarrier.arrive.expect_tx.shared::cta.b64 _, [%0], %1;\n" ::"r"(bar),
      "r"(bytes)
      : "memory");
}

__device__ __forceinline__ void mbarArrive(uint32_t bar) {
  asm volatile("mbarrier.arrive.shared::cta.b64 _, [%0];\n" ::"r"(bar)
               : "memory");
}

/// Waits until the phase of parity `parity` of the barrier has completed.
__device__ __forceinline__ void mbarWait(uint32_t bar, uint32_t parity) {
  uint32_t done = 0;
  do {
    asm volatile("{\n.reg .pred p;\n"
                 "mbarrier.try_wait.parity.shared::cta.b64 p, [%1], %2;\n"
                 "selp.u32 %0, 1, 0, p;\n}\n"
                 : "=r"(done)
                 : "r"(bar), "r"(parity)
                 : "memory");
  } while (!done);
}

/// One TMA box {64 columns, 128 rows, 1, 1} of a 4-D tensor map into shared
/// memory, completing on `bar` (complete_tx).
__device__ __forceinline__ void tmaLoad(uint32_t dst, const CUtensorMap *map,
                                        uint32_t bar, int c0, int c1, int c2,
                                        int c3) {
  asm volatile(
      "cp.async.bulk.tensor.4d.shared::cluster.global.tile.mbarrier::"
      "complete_tx::bytes [%0], [%1, {%3, %4, %5, %6}], [%2];\n" ::"r"(dst),
      "l"(reinterpret_cast<uint64_t>(map)), "r"(bar), "r"(c0), "r"(c1), "r"(c2),
      "r"(c3)
      : "memory");
}

__device__ __forceinline__ void prefetchTensorMap(const CUtensorMap *map) {
  asm volatile(
      "prefetch.tensormap [%0];\n" ::"l"(reinterpret_cast<uint64_t>(map))
      : "memory");
}

__device__ __forceinline__ void wgmmaFence() {
  asm volatile("wgmma.fence.sync.aligned;\n" ::: "memory");
}
__device__ __forceinline__ void wgmmaCommit() {
  asm volatile("wgmma.commit_group.sync.aligned;\n" ::: "memory");
}
template <int Pending> __device__ __forceinline__ void wgmmaWait() {
  asm volatile("wgmma.wait_group.sync.aligned %0;\n" ::"n"(Pending) : "memory");
}

/// Keeps the compiler from moving reads or writes of registers that an
/// in-flight wgmma owns across the wgmma fence / wait instructions.
template <int N> __device__ __forceinline__ void fenceRegs(float (&r)[N]) {
#pragma unroll
  for (int i = 0; i < N; ++i)
    asm volatile("" : "+f"(r[i])::"memory");
}
template <int N, int M>
__device__ __forceinline__ void fenceRegs(uint32_t (&r)[N][M]) {
#pragma unroll
  for (int i = 0; i < N; ++i)
#pragma unroll
    for (int j = 0; j < M; ++j)
      asm volatile("" : "+r"(r[i][j])::"memory");
}

/// A wgmma shared-memory descriptor with the 128-byte swizzle: start
/// address, leading and stride byte offsets (16-byte units).
__device__ __forceinline__ uint64_t smemDesc(uint32_t addr, uint32_t lbo,
                                             uint32_t sbo) {
  return uint64_t((addr & 0x3FFFF) >> 4) | (uint64_t(lbo >> 4) << 16) |
         (uint64_t(sbo >> 4) << 32) | (uint64_t(1) << 62);
}

__device__ __forceinline__ float exp2Approx(float x) {
  float y;
  asm("ex2.approx.ftz.f32 %0, %1;\n" : "=f"(y) : "f"(x));
  return y;
}

//===----------------------------------------------------------------------===//
// wgmma instructions: Wgmma<N, isBf16>::ss (A, B from shared memory, both
// K-major) and ::rs (A from registers, B MN-major), m64nNk16, f32 accumulate.
// d holds this thread's N / 2 accumulators: d[4t + e] is row
// warp * 16 + lane / 4 + 8 (e / 2), column 8t + 2 (lane % 4) + e % 2.
//===----------------------------------------------------------------------===//

template <int N, bool IsBf16> struct Wgmma;

// The operands of one specialization: this thread's NACC accumulators as
// "+f" operands, and the PTX register lists that name them.
#define UNISPARSE_ACC4(i)                                                      \
  "+f"(d[(i)]), "+f"(d[(i) + 1]), "+f"(d[(i) + 2]), "+f"(d[(i) + 3])
#define UNISPARSE_ACC16(i)                                                     \
  UNISPARSE_ACC4(i), UNISPARSE_ACC4((i) + 4), UNISPARSE_ACC4((i) + 8),         \
      UNISPARSE_ACC4((i) + 12)
#define UNISPARSE_ACC32 UNISPARSE_ACC16(0), UNISPARSE_ACC16(16)
#define UNISPARSE_ACC64                                                        \
  UNISPARSE_ACC32, UNISPARSE_ACC16(32), UNISPARSE_ACC16(48)
#define UNISPARSE_REGS32                                                       \
  "{%0, %1, %2, %3, %4, %5, %6, %7, %8, %9, %10, %11, %12, %13, %14, %15, "    \
  "%16, %17, %18, %19, %20, %21, %22, %23, %24, %25, %26, %27, %28, %29, "     \
  "%30, %31}"
#define UNISPARSE_REGS64                                                       \
  "{%0, %1, %2, %3, %4, %5, %6, %7, %8, %9, %10, %11, %12, %13, %14, %15, "    \
  "%16, %17, %18, %19, %20, %21, %22, %23, %24, %25, %26, %27, %28, %29, "     \
  "%30, %31, %32, %33, %34, %35, %36, %37, %38, %39, %40, %41, %42, %43, "     \
  "%44, %45, %46, %47, %48, %49, %50, %51, %52, %53, %54, %55, %56, %57, "     \
  "%58, %59, %60, %61, %62, %63}"

/// Wgmma<N, IS_BF16> for element type TYPE ("bf16" or "f16"), NACC = N / 2
/// accumulators named by REGS/ACC; SS_AB and RS_AB are the PTX operands of A
/// and B that follow them, SS_P and RS_P the predicate's operand.
#define UNISPARSE_WGMMA(N, IS_BF16, TYPE, NACC, REGS, ACC, SS_AB, SS_P, RS_AB, \
                        RS_P)                                                  \
  template <> struct Wgmma<N, IS_BF16> {                                       \
    /** d (+)= A B, A and B K-major in shared memory (descriptors). */         \
    static __device__ __forceinline__ void ss(float (&d)[NACC], uint64_t a,    \
                                              uint64_t b, int accumulate) {    \
      asm volatile("{\n.reg .pred p;\nsetp.ne.b32 p, " SS_P ", 0;\n"           \
                   "wgmma.mma_async.sync.aligned.m64n" #N "k16.f32." TYPE      \
                   "." TYPE " " REGS ", " SS_AB ", p, 1, 1, 0, 0;\n}\n"        \
                   : ACC                                                       \
                   : "l"(a), "l"(b), "r"(accumulate));                         \
    }                                                                          \
    /** d += A B, A from registers, B MN-major in shared memory. */            \
    static __device__ __forceinline__ void                                     \
    rs(float (&d)[NACC], const uint32_t (&a)[4], uint64_t b) {                 \
      asm volatile("{\n.reg .pred p;\nsetp.ne.b32 p, " RS_P ", 0;\n"           \
                   "wgmma.mma_async.sync.aligned.m64n" #N "k16.f32." TYPE      \
                   "." TYPE " " REGS ", " RS_AB ", p, 1, 1, 1;\n}\n"           \
                   : ACC                                                       \
                   : "r"(a[0]), "r"(a[1]), "r"(a[2]), "r"(a[3]), "l"(b),       \
                     "r"(1));                                                  \
    }                                                                          \
  };

#define UNISPARSE_WGMMA_N64(IS_BF16, TYPE)                                     \
  UNISPARSE_WGMMA(64, IS_BF16, TYPE, 32, UNISPARSE_REGS32, UNISPARSE_ACC32,    \
                  "%32, %33", "%34", "{%32, %33, %34, %35}, %36", "%37")
#define UNISPARSE_WGMMA_N128(IS_BF16, TYPE)                                    \
  UNISPARSE_WGMMA(128, IS_BF16, TYPE, 64, UNISPARSE_REGS64, UNISPARSE_ACC64,   \
                  "%64, %65", "%66", "{%64, %65, %66, %67}, %68", "%69")

UNISPARSE_WGMMA_N64(true, "bf16")
UNISPARSE_WGMMA_N128(true, "bf16")
UNISPARSE_WGMMA_N64(false, "f16")
UNISPARSE_WGMMA_N128(false, "f16")

#undef UNISPARSE_WGMMA_N128
#undef UNISPARSE_WGMMA_N64
#undef UNISPARSE_WGMMA
#undef UNISPARSE_REGS64
#undef UNISPARSE_REGS32
#undef UNISPARSE_ACC64
#undef UNISPARSE_ACC32
#undef UNISPARSE_ACC16
#undef UNISPARSE_ACC4

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
// The layout walk (the producer and every consumer thread walk the same row).
//===----------------------------------------------------------------------===//

struct BlockWalk {
  const int32_t *row;
  int64_t stride;
  int count;
  int numKBlocks;
  int limit; ///< last key block visible to the tile (causal: the diagonal)
  int pos = -1;
  int last = -1;

  /// The next key block to visit in `j`; false at the end of the row.
  __device__ __forceinline__ bool next(int &j) {
    while (++pos < count) {
      const int x = __ldg(row + int64_t(pos) * stride);
      if (x < 0 || x >= numKBlocks || x <= last)
        continue; // out of range, repeated or out of order: ignored
      last = x;
      if (x > limit) { // causal: this and every later block are hidden
        pos = count;
        return false;
      }
      j = x;
      return true;
    }
    return false;
  }
};

//===----------------------------------------------------------------------===//
// The kernel body.
//===----------------------------------------------------------------------===//

template <typename Elem, int HeadDim>
__device__ __forceinline__ void attentionSm90(const Sm90Params &p) {
  using Traits = Sm90Traits<HeadDim>;
  constexpr int D = HeadDim;
  constexpr int kStages = Traits::kStages;
  constexpr int kSlabBytes = Traits::kSlabBytes;
  constexpr int kTileBytes = Traits::kTileBytes;
  constexpr int kSAcc = Traits::kBlockN / 2; // S accumulators per thread
  constexpr int kOAcc = D / 2;               // O accumulators per thread
  constexpr int kKeySteps = Traits::kBlockN / 16;
  constexpr int kDSteps = D / 16;
  using MmaS = Wgmma<Traits::kBlockN, Elem::kIsBf16>;
  using MmaO = Wgmma<D, Elem::kIsBf16>;

  extern __shared__ unsigned char smemRaw[];
  const uint32_t smemBase =
      (static_cast<uint32_t>(__cvta_generic_to_shared(smemRaw)) + 1023u) &
      ~1023u;
  const uint32_t sQ = smemBase;
  const uint32_t sK = sQ + kTileBytes;             // kStages tiles
  const uint32_t sV = sK + kStages * kTileBytes;   // kStages tiles
  const uint32_t bars = sV + kStages * kTileBytes; // 8-byte mbarriers
  const uint32_t qBar = bars;
  auto fullK = [&](int s) { return bars + 8u * (1 + s); };
  auto fullV = [&](int s) { return bars + 8u * (1 + kStages + s); };
  auto empty = [&](int s) { return bars + 8u * (1 + 2 * kStages + s); };

  // CTA order: by (batch, kv head), then the heaviest query blocks first
  // (causal: the last ones), then the query heads of the kv head. The CTAs
  // resident at one time then work on one kv head's K/V (N x D x 4 bytes),
  // which stays in L2 however sparse and irregular the layout rows are; and
  // the light query blocks of each head fill the tail.
  const int headsPerKV = p.qHeadsPerKVHead;
  const int perKVHead = p.numQTiles * headsPerKV;
  const int numKVHeads = p.numQHeads / headsPerKV;
  const int outer = int(blockIdx.x) / perKVHead;
  const int inner = int(blockIdx.x) % perKVHead;
  const int b = outer / numKVHeads;
  const int kvHead = outer % numKVHeads;
  const int qTile = p.numQTiles - 1 - inner / headsPerKV;
  const int h = kvHead * headsPerKV + inner % headsPerKV;
  const int q0 = qTile * Traits::kBlockM;
  const int group = h / p.qHeadsPerGroup;

  const int rawCount =
      __ldg(p.counts + b * p.countsStride[0] + group * p.countsStride[1] +
            qTile * p.countsStride[2]);
  BlockWalk walk{p.indices + b * p.indicesStride[0] +
                     group * p.indicesStride[1] + qTile * p.indicesStride[2],
                 p.indicesStride[3], min(max(rawCount, 0), p.maxBlocks),
                 p.numKBlocks, p.causal ? qTile : p.numKBlocks - 1};

  const int warpgroup = threadIdx.x / 128;
  if (threadIdx.x == 0) {
    mbarInit(qBar, 1);
    for (int s = 0; s < kStages; ++s) {
      mbarInit(fullK(s), 1);
      mbarInit(fullV(s), 1);
      mbarInit(empty(s), Traits::kConsumers * 4); // lane 0 of each warp
    }
    asm volatile("fence.mbarrier_init.release.cluster;\n" ::: "memory");
  }
  __syncthreads();

  if (warpgroup == 0) {
    //===------------------------------------------------------------------===//
    // Producer: one thread issues every TMA copy.
    //===------------------------------------------------------------------===//
    asm volatile(
        "setmaxnreg.dec.sync.aligned.u32 %0;\n" ::"n"(Traits::kProducerRegs));
    if (threadIdx.x != 0)
      return;
    prefetchTensorMap(&p.tmQ);
    prefetchTensorMap(&p.tmK);
    prefetchTensorMap(&p.tmV);
    mbarArriveExpectTx(qBar, kTileBytes);
#pragma unroll
    for (int slab = 0; slab < Traits::kSlabs; ++slab)
      tmaLoad(sQ + slab * kSlabBytes, &p.tmQ, qBar, slab * 64, q0, h, b);
    int j = 0;
    for (int it = 0; walk.next(j); ++it) {
      const int stage = it % kStages;
      // Use u = it / kStages of this stage waits for the consumers' release
      // of use u - 1 (parity (u - 1) & 1; for u = 0 it passes at once).
      mbarWait(empty(stage), ((it / kStages) & 1) ^ 1);
      mbarArriveExpectTx(fullK(stage), kTileBytes);
#pragma unroll
      for (int slab = 0; slab < Traits::kSlabs; ++slab)
        tmaLoad(sK + stage * kTileBytes + slab * kSlabBytes, &p.tmK,
                fullK(stage), slab * 64, j * Traits::kBlockN, kvHead, b);
      mbarArriveExpectTx(fullV(stage), kTileBytes);
#pragma unroll
      for (int slab = 0; slab < Traits::kSlabs; ++slab)
        tmaLoad(sV + stage * kTileBytes + slab * kSlabBytes, &p.tmV,
                fullV(stage), slab * 64, j * Traits::kBlockN, kvHead, b);
    }
    return;
  }

  //===--------------------------------------------------------------------===//
  // Consumers: 64 query rows per warpgroup.
  //===--------------------------------------------------------------------===//
  asm volatile(
      "setmaxnreg.inc.sync.aligned.u32 %0;\n" ::"n"(Traits::kConsumerRegs));
  const int consumer = warpgroup - 1;
  const int tid = threadIdx.x % 128, warp = tid / 32, lane = tid % 32;
  const int row0 = q0 + consumer * 64 + warp * 16 + lane / 4; // and row0 + 8
  const int colBase = 2 * (lane % 4);

  float o[kOAcc];
#pragma unroll
  for (int i = 0; i < kOAcc; ++i)
    o[i] = 0.0f;
  float s[kSAcc];
  uint32_t pf[kKeySteps][4]; // P as A fragments, one per 16-key step
  float rowMax[2] = {kNegInf, kNegInf};
  float rowSum[2] = {0.0f, 0.0f};

  // The Q rows of this warpgroup (64 rows x 128 bytes per slab).
  const uint32_t qRows = sQ + consumer * 64 * 128;

  // wgmma descriptors of the Q rows and of the first K and V stages; a
  // byte offset b moves a descriptor by b >> 4 (the start address field,
  // which holds every shared-memory address of the CTA without carry).
  const uint64_t qDesc = smemDesc(qRows, 16, 1024);
  const uint64_t kDesc = smemDesc(sK, 16, 1024);
  const uint64_t vDesc = smemDesc(sV, kSlabBytes, 1024);

  // S = Q K^T for the K tile of `stage` (issued, not waited for).
  auto issueS = [&](int stage) {
    const uint64_t kStage = kDesc + ((stage * kTileBytes) >> 4);
#pragma unroll
    for (int kk = 0; kk < kDSteps; ++kk) {
      const uint32_t off = ((kk / 4) * kSlabBytes + (kk % 4) * 32) >> 4;
      MmaS::ss(s, qDesc + off, kStage + off, kk > 0);
    }
  };
  // O += P V for the V tile of `stage` (issued, not waited for).
  auto issueO = [&](int stage) {
    const uint64_t vStage = vDesc + ((stage * kTileBytes) >> 4);
#pragma unroll
    for (int kk = 0; kk < kKeySteps; ++kk)
      MmaO::rs(o, pf[kk], vStage + ((kk * 16 * 128) >> 4));
  };
  // Mask (only where needed), online softmax of s into pf; returns the
  // factors by which O must be rescaled.
  auto softmax = [&](int j, float (&alpha)[2]) {
    const int k0 = j * Traits::kBlockN;
    const bool needMask =
        (p.causal && j == qTile) || k0 + Traits::kBlockN > p.seqLen;
    if (needMask) {
#pragma unroll
      for (int i = 0; i < kSAcc; ++i) {
        const int key = k0 + (i / 4) * 8 + colBase + i % 2;
        const int row = row0 + 8 * ((i / 2) % 2);
        if (key >= p.seqLen || (p.causal && key > row))
          s[i] = kNegInf;
      }
    }
#pragma unroll
    for (int r = 0; r < 2; ++r) {
      float m = kNegInf;
#pragma unroll
      for (int t = 0; t < kSAcc / 4; ++t)
        m = fmaxf(m, fmaxf(s[4 * t + 2 * r], s[4 * t + 2 * r + 1]));
      m = fmaxf(m, __shfl_xor_sync(0xffffffffu, m, 1));
      m = fmaxf(m, __shfl_xor_sync(0xffffffffu, m, 2));
      // The reference max (log2 domain) moves only when the tile's max
      // exceeds it by more than kRescaleThreshold (lazy rescaling: P stays
      // below 2^threshold, and most tiles leave O as it is). A row with no
      // visible key keeps -inf and subtracts 0, so that exp2 gives exact
      // zeros (not NaN).
      const float mTile = m * p.scaleLog2;
      if (!(mTile <= rowMax[r] + Traits::kRescaleThreshold)) {
        const float mNew = fmaxf(rowMax[r], mTile);
        alpha[r] = exp2Approx(rowMax[r] - (mNew == kNegInf ? 0.0f : mNew));
        rowMax[r] = mNew;
      } else {
        alpha[r] = 1.0f;
      }
      const float base = rowMax[r] == kNegInf ? 0.0f : rowMax[r];
      float sum = 0.0f;
#pragma unroll
      for (int t = 0; t < kSAcc / 4; ++t) {
#pragma unroll
        for (int e = 0; e < 2; ++e) {
          float &x = s[4 * t + 2 * r + e];
          x = exp2Approx(fmaf(x, p.scaleLog2, -base));
          sum += x;
        }
      }
      rowSum[r] = rowSum[r] * alpha[r] + sum;
    }
  };
  // P as bf16/f16 A fragments: accumulators of n-tiles 2kk and 2kk + 1.
  auto packP = [&]() {
#pragma unroll
    for (int kk = 0; kk < kKeySteps; ++kk) {
      pf[kk][0] = Elem::pack(s[8 * kk + 0], s[8 * kk + 1]);
      pf[kk][1] = Elem::pack(s[8 * kk + 2], s[8 * kk + 3]);
      pf[kk][2] = Elem::pack(s[8 * kk + 4], s[8 * kk + 5]);
      pf[kk][3] = Elem::pack(s[8 * kk + 6], s[8 * kk + 7]);
    }
  };
  auto rescaleO = [&](const float (&alpha)[2]) {
#pragma unroll
    for (int i = 0; i < kOAcc; ++i)
      o[i] *= alpha[(i / 2) % 2];
  };
  auto release = [&](int stage) {
    if (lane == 0)
      mbarArrive(empty(stage));
  };

  // Ping-pong between the two consumer warpgroups: each issues its GEMMs
  // only in its turn (named barrier 1 + consumer, 256 threads: its own
  // bar.sync and the other warpgroup's bar.arrive), so that one
  // warpgroup's softmax runs while the other's GEMMs occupy the tensor
  // cores. Warpgroup 0 goes first; both take the same number of turns
  // (one per visited block, plus one), and warpgroup 0 consumes the last
  // arrive of warpgroup 1 at the end.
  const uint32_t myTurn = 1 + consumer, otherTurn = 2 - consumer;
  auto waitTurn = [&] {
    asm volatile("bar.sync %0, 256;\n" ::"r"(myTurn) : "memory");
  };
  auto passTurn = [&] {
    asm volatile("bar.arrive %0, 256;\n" ::"r"(otherTurn) : "memory");
  };
  if (consumer == 1)
    passTurn();

  mbarWait(qBar, 0);
  int j = 0;
  if (walk.next(j)) {
    int it = 0, stage = 0;
    mbarWait(fullK(0), 0);
    waitTurn();
    wgmmaFence();
    issueS(0);
    wgmmaCommit();
    passTurn();
    wgmmaWait<0>();
    fenceRegs(s);
    float alpha[2];
    softmax(j, alpha); // O is still zero: no rescale needed
    packP();
    int jn = 0;
    while (walk.next(jn)) {
      const int itn = it + 1, stn = itn % kStages;
      mbarWait(fullK(stn), (itn / kStages) & 1);
      mbarWait(fullV(stage), (it / kStages) & 1);
      fenceRegs(o);
      fenceRegs(pf);
      waitTurn();
      wgmmaFence();
      issueS(stn);
      wgmmaCommit();
      issueO(stage);
      wgmmaCommit();
      passTurn();
      wgmmaWait<1>(); // S of block jn is ready
      fenceRegs(s);
      softmax(jn, alpha);
      wgmmaWait<0>(); // P V of block j is done
      fenceRegs(o);
      fenceRegs(pf);
      release(stage);
      if (__any_sync(0xffffffffu, alpha[0] != 1.0f || alpha[1] != 1.0f))
        rescaleO(alpha);
      packP();
      it = itn;
      stage = stn;
      j = jn;
    }
    mbarWait(fullV(stage), (it / kStages) & 1);
    fenceRegs(o);
    fenceRegs(pf);
    waitTurn();
    wgmmaFence();
    issueO(stage);
    wgmmaCommit();
    passTurn();
    wgmmaWait<0>();
    fenceRegs(o);
    release(stage);
  }
  if (consumer == 0)
    waitTurn(); // the last turn warpgroup 1 passed

  // Epilogue: O / l and LSE from registers.
#pragma unroll
  for (int r = 0; r < 2; ++r) {
    rowSum[r] += __shfl_xor_sync(0xffffffffu, rowSum[r], 1);
    rowSum[r] += __shfl_xor_sync(0xffffffffu, rowSum[r], 2);
  }
  float inv[2], lse[2];
#pragma unroll
  for (int r = 0; r < 2; ++r) {
    inv[r] = rowSum[r] == 0.0f ? 0.0f : 1.0f / rowSum[r];
    lse[r] =
        rowSum[r] == 0.0f ? kNegInf : (rowMax[r] + log2f(rowSum[r])) * kLn2;
  }
  uint16_t *oHead =
      static_cast<uint16_t *>(p.o) + b * p.oStride[0] + h * p.oStride[1];
#pragma unroll
  for (int r = 0; r < 2; ++r) {
    const int row = row0 + 8 * r;
    if (row >= p.seqLen)
      continue;
    uint16_t *oRow = oHead + int64_t(row) * p.oStride[2] + colBase;
#pragma unroll
    for (int t = 0; t < kOAcc / 4; ++t)
      *reinterpret_cast<uint32_t *>(oRow + 8 * t) =
          Elem::pack(o[4 * t + 2 * r] * inv[r], o[4 * t + 2 * r + 1] * inv[r]);
    if (lane % 4 == 0)
      p.lse[b * p.lseStride[0] + h * p.lseStride[1] +
            int64_t(row) * p.lseStride[2]] = lse[r];
  }
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
