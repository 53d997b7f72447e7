//===- BlockSparseAttention.cu - Tensor-core block-sparse attention -------===//
//
// The CUDA kernels of unisparse_rt_block_sparse_attention, FlashAttention-2
// style on mma.sync (sm_80+; built for sm_90a). Device code only: CMake
// compiles this file into a fatbin that the runtime embeds and loads with the
// driver API (BlockSparseAttentionLaunch.cpp launches it).
//
// One CTA = kBlockM = 64 query rows of one (query head h, batch b); grid =
// (ceil(N / 64), Hq, B), 4 warps, each warp owning 16 query rows. The CTA
//  1. issues cp.async copies of its Q tile and of its first K/V tile;
//  2. loads Q into registers as MMA A fragments (ldmatrix), once;
//  3. walks the key blocks of its layout row (counts/indices read from device
//     memory, no host round trip), 64 keys at a time; for each K/V tile:
//     a. prefetches the next tile into the other shared-memory stage
//        (cp.async double buffering: the copy of tile t+1 overlaps the math
//        of tile t);
//     b. S = Q K^T on tensor cores (m16n8k16, fp32 accumulators), K fragments
//        by ldmatrix;
//     c. masks keys >= N and, in a tile that crosses the diagonal, keys j > i;
//     d. online softmax in fp32 with exp2f: scores are pre-multiplied by
//        scale * log2(e), the running max m and sum l live in registers, the
//        quad of threads sharing a row reduces with two shuffles;
//     e. O += P V on tensor cores: P is re-packed from the S accumulators
//        into A fragments in registers (no shared-memory round trip), V
//        fragments by ldmatrix.trans;
//  4. normalizes O by 1/l, stages it through shared memory (the Q tile's
//     space) for coalesced 16-byte stores, and writes LSE = (m + log2 l) ln 2.
//
// Bounds it targets: a 64 x 64 tile is 4 * 64 * 64 * D FLOP on tensor cores
// against 2 * 64 * D * 2 bytes of K and V: 64 FLOP per byte whatever D, and
// the K/V tiles are re-read by every query tile and every query head of a
// KV head, mostly from L2; so the kernel is meant to be tensor-core bound.
// mma.sync caps it well below the wgmma peak; measured on an H200 (see
// NOTES.md): ~215 effective TFLOP/s dense causal at D = 128, N = 32K, about
// 2/3 of FlashAttention-2 there. The wgmma/TMA/warp-specialized kernel of
// DESIGN.md section 4 is the next step.
//
// Layout safety: the layout walk and the masking rule are LayoutWalk.h's,
// shared with the sm_90a kernel (counts clamped to [0, M], indices outside
// [0, NBk) or not ascending skipped); the kernel never reads or writes
// outside the tensors.
//
//===----------------------------------------------------------------------===//

#include "cuda/BlockSparseAttentionKernel.h"
#include "cuda/LayoutWalk.h"
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
// PTX wrappers.
//===----------------------------------------------------------------------===//

__device__ __forceinline__ uint32_t smemAddress(const void *p) {
  return static_cast<uint32_t>(__cvta_generic_to_shared(p));
}

/// 16-byte asynchronous global -> shared copy that bypasses L1 (.cg); with
/// srcBytes = 0 it reads nothing and fills the 16 bytes with zeros.
__device__ __forceinline__ void cpAsync16(void *smem, const void *gmem,
                                          int srcBytes) {
  asm volatile("cp.async.cg.shared.global [%0], [%1], 16, %2;\n"
               :
               : "r"(smemAddress(smem)), "l"(gmem), "r"(srcBytes)
               : "memory");
}

__device__ __forceinline__ void cpAsyncCommit() {
  asm volatile("cp.async.commit_group;\n" ::: "memory");
}

/// Waits until at most `Pending` committed groups are still in flight.
template <int Pending> __device__ __forceinline__ void cpAsyncWait() {
  asm volatile("cp.async.wait_group %0;\n" ::"n"(Pending) : "memory");
}

/// Four 8x8 b16 matrices; lane l gives the address of row l % 8 of matrix
/// l / 8, and r[i] receives this lane's fragment of matrix i (row l / 4,
/// columns 2 (l % 4) and 2 (l % 4) + 1).
__device__ __forceinline__ void ldmatrixX4(uint32_t (&r)[4], const void *p) {
  asm volatile(
      "ldmatrix.sync.aligned.m8n8.x4.shared.b16 {%0, %1, %2, %3}, [%4];\n"
      : "=r"(r[0]), "=r"(r[1]), "=r"(r[2]), "=r"(r[3])
      : "r"(smemAddress(p))
      : "memory");
}

/// As ldmatrixX4, transposed: this lane receives rows 2 (l % 4) and
/// 2 (l % 4) + 1 of column l / 4 of each stored matrix.
__device__ __forceinline__ void ldmatrixX4Trans(uint32_t (&r)[4],
                                                const void *p) {
  asm volatile(
      "ldmatrix.sync.aligned.m8n8.x4.trans.shared.b16 {%0, %1, %2, %3}, "
      "[%4];\n"
      : "=r"(r[0]), "=r"(r[1]), "=r"(r[2]), "=r"(r[3])
      : "r"(smemAddress(p))
      : "memory");
}

//===----------------------------------------------------------------------===//
// Element types: the MMA instruction and the f32 -> element conversions.
//===----------------------------------------------------------------------===//

struct Bf16 {
  /// d += a * b, m16n8k16, f32 accumulators.
  static __device__ __forceinline__ void
  mma(float (&d)[4], const uint32_t (&a)[4], uint32_t b0, uint32_t b1) {
    asm("mma.sync.aligned.m16n8k16.row.col.f32.bf16.bf16.f32 "
        "{%0, %1, %2, %3}, {%4, %5, %6, %7}, {%8, %9}, "
        "{%0, %1, %2, %3};\n"
        : "+f"(d[0]), "+f"(d[1]), "+f"(d[2]), "+f"(d[3])
        : "r"(a[0]), "r"(a[1]), "r"(a[2]), "r"(a[3]), "r"(b0), "r"(b1));
  }
  /// Two floats rounded to nearest even, `lo` in the low 16 bits.
  static __device__ __forceinline__ uint32_t pack(float lo, float hi) {
    return packBf16x2(lo, hi);
  }
};

struct F16 {
  static __device__ __forceinline__ void
  mma(float (&d)[4], const uint32_t (&a)[4], uint32_t b0, uint32_t b1) {
    asm("mma.sync.aligned.m16n8k16.row.col.f32.f16.f16.f32 "
        "{%0, %1, %2, %3}, {%4, %5, %6, %7}, {%8, %9}, "
        "{%0, %1, %2, %3};\n"
        : "+f"(d[0]), "+f"(d[1]), "+f"(d[2]), "+f"(d[3])
        : "r"(a[0]), "r"(a[1]), "r"(a[2]), "r"(a[3]), "r"(b0), "r"(b1));
  }
  static __device__ __forceinline__ uint32_t pack(float lo, float hi) {
    return packF16x2(lo, hi);
  }
};

//===----------------------------------------------------------------------===//
// Tile movement: global <-> shared, 16 bytes (8 elements) per chunk.
//===----------------------------------------------------------------------===//

/// Copies rows [row0, row0 + Rows) of one head ([N, D], row pitch
/// `rowStride` elements) into a shared tile (row pitch kRowPitch). Rows at or
/// past `validRows` (i.e. >= N) are zero-filled and not read, so padding keys
/// contribute exact zeros to P V. Asynchronous (cp.async, the caller commits
/// and waits) when vec16, else synchronous element copies.
template <typename Traits, int Rows>
__device__ __forceinline__ void loadTile(uint16_t *smem, const uint16_t *head,
                                         int64_t rowStride, int row0,
                                         int validRows, bool vec16) {
  constexpr int kChunksPerRow = Traits::kHeadDim / 8;
  constexpr int kChunks = Rows * kChunksPerRow;
  static_assert(kChunks % Traits::kThreads == 0, "whole chunks per thread");
#pragma unroll
  for (int i = 0; i < kChunks / Traits::kThreads; ++i) {
    const int chunk = i * Traits::kThreads + threadIdx.x;
    const int r = chunk / kChunksPerRow, c = chunk % kChunksPerRow;
    uint16_t *dst = smem + r * Traits::kRowPitch + c * 8;
    const bool valid = r < validRows;
    // Invalid rows point at row0 (always valid) and read nothing.
    const uint16_t *src =
        head + int64_t(row0 + (valid ? r : 0)) * rowStride + c * 8;
    if (vec16) {
      cpAsync16(dst, src, valid ? 16 : 0);
    } else {
#pragma unroll
      for (int e = 0; e < 8; ++e)
        dst[e] = valid ? __ldg(src + e) : uint16_t(0);
    }
  }
}

/// Writes rows [0, validRows) of a shared tile (row pitch kRowPitch) to rows
/// [row0, row0 + validRows) of one head of O.
template <typename Traits>
__device__ __forceinline__ void storeTile(uint16_t *head, int64_t rowStride,
                                          const uint16_t *smem, int row0,
                                          int validRows, bool vec16) {
  constexpr int kChunksPerRow = Traits::kHeadDim / 8;
  constexpr int kChunks = Traits::kBlockM * kChunksPerRow;
  static_assert(kChunks % Traits::kThreads == 0, "whole chunks per thread");
#pragma unroll
  for (int i = 0; i < kChunks / Traits::kThreads; ++i) {
    const int chunk = i * Traits::kThreads + threadIdx.x;
    const int r = chunk / kChunksPerRow, c = chunk % kChunksPerRow;
    if (r >= validRows)
      continue;
    const uint16_t *src = smem + r * Traits::kRowPitch + c * 8;
    uint16_t *dst = head + int64_t(row0 + r) * rowStride + c * 8;
    if (vec16) {
      *reinterpret_cast<uint4 *>(dst) = *reinterpret_cast<const uint4 *>(src);
    } else {
#pragma unroll
      for (int e = 0; e < 8; ++e)
        dst[e] = src[e];
    }
  }
}

//===----------------------------------------------------------------------===//
// Key tiles: the layout walk (LayoutWalk.h), kBlockN keys at a time.
//===----------------------------------------------------------------------===//

/// Position in a layout row: the current key block and key tile within it.
/// Every thread of the CTA holds the same cursor (the walk is uniform).
struct TileCursor {
  int block = -1;   ///< current key block
  int tile = 0;     ///< key tile within the block
  int numTiles = 0; ///< key tiles of the block this CTA visits
};

/// Advances `cur` to the next key tile; false when the row is exhausted.
/// Blocks come from `walk` (the layout walk: its safety rules, and causality
/// for the rows q0 .. qLast), which only the newest cursor advances; the
/// tiles of a block stop at N and, causal, at qLast.
template <typename Traits>
__device__ __forceinline__ bool nextTile(TileCursor &cur, BlockWalk &walk,
                                         const AttentionParams &p, int qLast) {
  if (cur.tile + 1 < cur.numTiles) {
    ++cur.tile;
    return true;
  }
  int j = 0;
  if (!walk.next(p, j)) {
    cur.numTiles = 0;
    return false;
  }
  const int kStart = j * p.blockSize;
  const int kEnd =
      min(kStart + p.blockSize, lastVisibleKey(qLast, p.seqLen, p.causal) + 1);
  cur.block = j;
  cur.tile = 0;
  cur.numTiles = (kEnd - kStart + Traits::kBlockN - 1) / Traits::kBlockN;
  return true;
}

//===----------------------------------------------------------------------===//
// The kernel body.
//===----------------------------------------------------------------------===//

template <typename Elem, int HeadDim>
__device__ __forceinline__ void attention(const AttentionParams &p) {
  using Traits = AttentionTraits<HeadDim>;
  constexpr int D = HeadDim;
  constexpr int kBlockM = Traits::kBlockM, kBlockN = Traits::kBlockN;
  constexpr int kPitch = Traits::kRowPitch;
  constexpr int kDSteps = D / 16;         // k-steps of S = Q K^T
  constexpr int kNTiles = kBlockN / 8;    // n-tiles of S (8 keys each)
  constexpr int kKeySteps = kBlockN / 16; // k-steps of O += P V
  constexpr int kDTiles = D / 8;          // n-tiles of O (8 columns each)

  extern __shared__ __align__(16) unsigned char smemBytes[];
  uint16_t *sQ = reinterpret_cast<uint16_t *>(smemBytes);
  uint16_t *sK = sQ + Traits::kQElems;
  uint16_t *sV = sK + Traits::kStages * Traits::kTileElems;

  const int warp = threadIdx.x / 32, lane = threadIdx.x % 32;
  const int quadRow = lane / 4, quadCol = lane % 4; // MMA fragment coords
  const bool vec16 = p.vec16 != 0;

  // The heavy query tiles (the last ones, under a causal mask) go first.
  const int qTile = p.numQTiles - 1 - int(blockIdx.x);
  const int h = blockIdx.y, b = blockIdx.z;
  const int q0 = qTile * kBlockM;
  const int qRows = min(kBlockM, p.seqLen - q0);
  const int qLast = q0 + qRows - 1;
  const int qBlock = q0 / p.blockSize;
  const int kvHead = h / p.qHeadsPerKVHead;
  const int group = h / p.qHeadsPerGroup;

  const uint16_t *qHead =
      static_cast<const uint16_t *>(p.q) + b * p.qStride[0] + h * p.qStride[1];
  const uint16_t *kHead = static_cast<const uint16_t *>(p.k) +
                          b * p.kStride[0] + kvHead * p.kStride[1];
  const uint16_t *vHead = static_cast<const uint16_t *>(p.v) +
                          b * p.vStride[0] + kvHead * p.vStride[1];

  // 1. Q and the first K/V tile in flight (two cp.async groups).
  loadTile<Traits, kBlockM>(sQ, qHead, p.qStride[2], q0, qRows, vec16);
  cpAsyncCommit();
  BlockWalk walk = layoutRow(p, b, group, qBlock, p.blockSize, qLast);
  TileCursor cur;
  bool have = nextTile<Traits>(cur, walk, p, qLast);
  if (have) {
    const int k0 = cur.block * p.blockSize + cur.tile * kBlockN;
    const int kRows = min(kBlockN, p.seqLen - k0);
    loadTile<Traits, kBlockN>(sK, kHead, p.kStride[2], k0, kRows, vec16);
    loadTile<Traits, kBlockN>(sV, vHead, p.vStride[2], k0, kRows, vec16);
  }
  cpAsyncCommit();
  cpAsyncWait<1>(); // the Q group has landed (groups complete in order)
  __syncthreads();

  // 2. This warp's 16 Q rows as A fragments, for the whole loop. Matrices
  // of one ldmatrix.x4: rows 0-7 / 8-15 x columns 0-7 / 8-15 of the k-step.
  uint32_t qFrag[kDSteps][4];
#pragma unroll
  for (int kk = 0; kk < kDSteps; ++kk)
    ldmatrixX4(qFrag[kk],
               sQ + (warp * 16 + lane % 16) * kPitch + kk * 16 + lane / 16 * 8);

  // Running state of this thread's two rows (quadRow and quadRow + 8 of
  // the warp's 16): O accumulators, max (log2 domain) and partial sum.
  float acc[kDTiles][4];
#pragma unroll
  for (int t = 0; t < kDTiles; ++t)
    acc[t][0] = acc[t][1] = acc[t][2] = acc[t][3] = 0.0f;
  float rowMax[2] = {kNegInf, kNegInf};
  float rowSum[2] = {0.0f, 0.0f};

  // 3. The key tiles.
  int stage = 0;
  while (have) {
    // a. Prefetch the next tile into the other stage. That stage was last
    // read in the previous iteration, which ended with a barrier.
    TileCursor next = cur;
    const bool haveNext = nextTile<Traits>(next, walk, p, qLast);
    if (haveNext) {
      const int k1 = next.block * p.blockSize + next.tile * kBlockN;
      const int kRows = min(kBlockN, p.seqLen - k1);
      uint16_t *dK = sK + (stage ^ 1) * Traits::kTileElems;
      uint16_t *dV = sV + (stage ^ 1) * Traits::kTileElems;
      loadTile<Traits, kBlockN>(dK, kHead, p.kStride[2], k1, kRows, vec16);
      loadTile<Traits, kBlockN>(dV, vHead, p.vStride[2], k1, kRows, vec16);
    }
    cpAsyncCommit();  // possibly empty: keeps "all but the newest" meaningful
    cpAsyncWait<1>(); // this tile's group has landed
    __syncthreads();  // ... for every thread's copies

    const uint16_t *tK = sK + stage * Traits::kTileElems;
    const uint16_t *tV = sV + stage * Traits::kTileElems;
    const int k0 = cur.block * p.blockSize + cur.tile * kBlockN;

    // b. S = Q K^T. One ldmatrix.x4 gives the B fragments of two n-tiles:
    // keys 0-7 / 8-15 of the pair x head-dim columns 0-7 / 8-15 of the step.
    float s[kNTiles][4];
#pragma unroll
    for (int t = 0; t < kNTiles; ++t)
      s[t][0] = s[t][1] = s[t][2] = s[t][3] = 0.0f;
#pragma unroll
    for (int kk = 0; kk < kDSteps; ++kk) {
#pragma unroll
      for (int np = 0; np < kNTiles / 2; ++np) {
        uint32_t kFrag[4];
        ldmatrixX4(kFrag, tK + (np * 16 + lane % 8 + lane / 16 * 8) * kPitch +
                              kk * 16 + (lane / 8) % 2 * 8);
        Elem::mma(s[2 * np], qFrag[kk], kFrag[0], kFrag[1]);
        Elem::mma(s[2 * np + 1], qFrag[kk], kFrag[2], kFrag[3]);
      }
    }

    // c. Scale into the log2 domain; mask keys >= N and, where the tile
    // crosses the diagonal, keys after the query (j > i).
#pragma unroll
    for (int t = 0; t < kNTiles; ++t)
#pragma unroll
      for (int e = 0; e < 4; ++e)
        s[t][e] *= p.scaleLog2;
    if (tileNeedsMask(k0, kBlockN, q0, p.seqLen, p.causal)) {
#pragma unroll
      for (int t = 0; t < kNTiles; ++t)
#pragma unroll
        for (int e = 0; e < 4; ++e)
          if (keyMasked(k0 + t * 8 + quadCol * 2 + e % 2,
                        q0 + warp * 16 + quadRow + e / 2 * 8, p.seqLen,
                        p.causal))
            s[t][e] = kNegInf;
    }

    // d. Online softmax for the two rows (r = 0: elements 0, 1; r = 1:
    // elements 2, 3). A row with no visible key so far keeps m = -inf; it
    // subtracts 0 instead, so that exp2 gives exact zeros (not NaN).
#pragma unroll
    for (int r = 0; r < 2; ++r) {
      float m = rowMax[r];
#pragma unroll
      for (int t = 0; t < kNTiles; ++t)
        m = fmaxf(m, fmaxf(s[t][2 * r], s[t][2 * r + 1]));
      m = fmaxf(m, __shfl_xor_sync(0xffffffffu, m, 1));
      m = fmaxf(m, __shfl_xor_sync(0xffffffffu, m, 2));
      const float base = m == kNegInf ? 0.0f : m;
      const float alpha = exp2f(rowMax[r] - base);
      rowMax[r] = m;
      float sum = 0.0f;
#pragma unroll
      for (int t = 0; t < kNTiles; ++t) {
        s[t][2 * r] = exp2f(s[t][2 * r] - base);
        s[t][2 * r + 1] = exp2f(s[t][2 * r + 1] - base);
        sum += s[t][2 * r] + s[t][2 * r + 1];
      }
      rowSum[r] = rowSum[r] * alpha + sum;
#pragma unroll
      for (int t = 0; t < kDTiles; ++t) {
        acc[t][2 * r] *= alpha;
        acc[t][2 * r + 1] *= alpha;
      }
    }

    // e. O += P V. The accumulators of n-tiles 2kk and 2kk+1 are exactly the
    // A fragment of key step kk. One ldmatrix.x4.trans gives the B fragments
    // of two 8-column tiles of V: keys 0-7 / 8-15 x columns 0-7 / 8-15.
#pragma unroll
    for (int kk = 0; kk < kKeySteps; ++kk) {
      const uint32_t pFrag[4] = {
          Elem::pack(s[2 * kk][0], s[2 * kk][1]),
          Elem::pack(s[2 * kk][2], s[2 * kk][3]),
          Elem::pack(s[2 * kk + 1][0], s[2 * kk + 1][1]),
          Elem::pack(s[2 * kk + 1][2], s[2 * kk + 1][3]),
      };
#pragma unroll
      for (int dp = 0; dp < kDTiles / 2; ++dp) {
        uint32_t vFrag[4];
        ldmatrixX4Trans(vFrag, tV + (kk * 16 + lane % 16) * kPitch + dp * 16 +
                                   lane / 16 * 8);
        Elem::mma(acc[2 * dp], pFrag, vFrag[0], vFrag[1]);
        Elem::mma(acc[2 * dp + 1], pFrag, vFrag[2], vFrag[3]);
      }
    }

    __syncthreads(); // this stage may be overwritten from the next iteration
    cur = next;
    have = haveNext;
    stage ^= 1;
  }
  cpAsyncWait<0>(); // nothing is in flight here; drained for clarity

  // 4. Normalize, write LSE, stage O in the Q tile and store it.
#pragma unroll
  for (int r = 0; r < 2; ++r) {
    rowSum[r] += __shfl_xor_sync(0xffffffffu, rowSum[r], 1);
    rowSum[r] += __shfl_xor_sync(0xffffffffu, rowSum[r], 2);
  }
  // l == 0: the row saw no key: O = 0, LSE = -inf. A NaN l (NaN inputs)
  // propagates into both.
  float inv[2], lse[2];
#pragma unroll
  for (int r = 0; r < 2; ++r) {
    inv[r] = rowSum[r] == 0.0f ? 0.0f : 1.0f / rowSum[r];
    lse[r] =
        rowSum[r] == 0.0f ? kNegInf : (rowMax[r] + log2f(rowSum[r])) * kLn2;
  }
  if (quadCol == 0) {
    float *lseHead = p.lse + b * p.lseStride[0] + h * p.lseStride[1];
#pragma unroll
    for (int r = 0; r < 2; ++r) {
      const int row = q0 + warp * 16 + quadRow + r * 8;
      if (row < p.seqLen)
        lseHead[int64_t(row) * p.lseStride[2]] = lse[r];
    }
  }

  __syncthreads(); // every warp is done with sQ (its Q fragments are loaded)
  uint16_t *sO = sQ;
#pragma unroll
  for (int t = 0; t < kDTiles; ++t) {
#pragma unroll
    for (int r = 0; r < 2; ++r) {
      const int row = warp * 16 + quadRow + r * 8;
      *reinterpret_cast<uint32_t *>(sO + row * kPitch + t * 8 + quadCol * 2) =
          Elem::pack(acc[t][2 * r] * inv[r], acc[t][2 * r + 1] * inv[r]);
    }
  }
  __syncthreads();
  uint16_t *oHead =
      static_cast<uint16_t *>(p.o) + b * p.oStride[0] + h * p.oStride[1];
  storeTile<Traits>(oHead, p.oStride[2], sO, q0, qRows, vec16);
}

} // namespace
} // namespace unisparse::rt::cuda

//===----------------------------------------------------------------------===//
// Entry points (names in kKernelNames), one per dtype and head dim. The block
// size, causality, GQA and strides are run-time parameters.
//===----------------------------------------------------------------------===//

using unisparse::rt::cuda::AttentionParams;
using unisparse::rt::cuda::AttentionTraits;

#define UNISPARSE_BSA_KERNEL(NAME, ELEM, DIM)                                  \
  extern "C" __global__ void __launch_bounds__(AttentionTraits<DIM>::kThreads) \
      NAME(const __grid_constant__ AttentionParams params) {                   \
    unisparse::rt::cuda::attention<unisparse::rt::cuda::ELEM, DIM>(params);    \
  }

UNISPARSE_BSA_KERNEL(unisparse_bsa_fwd_f16_d64, F16, 64)
UNISPARSE_BSA_KERNEL(unisparse_bsa_fwd_f16_d128, F16, 128)
UNISPARSE_BSA_KERNEL(unisparse_bsa_fwd_bf16_d64, Bf16, 64)
UNISPARSE_BSA_KERNEL(unisparse_bsa_fwd_bf16_d128, Bf16, 128)
