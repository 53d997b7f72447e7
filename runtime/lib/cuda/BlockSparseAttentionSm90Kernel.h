//===- BlockSparseAttentionSm90Kernel.h - Hopper kernel ABI -----*- C++ -*-===//
//
// What the host launcher (BlockSparseAttentionLaunch.cpp) and the sm_90a
// kernels (BlockSparseAttentionSm90.cu) share: the parameter block with its
// TMA descriptors, the tile traits (every tuning knob of the Hopper kernel
// lives here) and the kernel names in its fatbin. Fixed-width types and
// CUtensorMap (cuda.h) only, so that both compilers agree on the layout.
//
//===----------------------------------------------------------------------===//

#ifndef UNISPARSE_RUNTIME_LIB_CUDA_BLOCKSPARSEATTENTIONSM90KERNEL_H
#define UNISPARSE_RUNTIME_LIB_CUDA_BLOCKSPARSEATTENTIONSM90KERNEL_H

#include <cuda.h>

#include <cstdint>

/// Build-time choice of the sm_90a kernel's grid (CMake option
/// UNISPARSE_RUNTIME_SM90_PERSISTENT sets it for the kernels and the host).
#ifndef UNISPARSE_SM90_PERSISTENT
#define UNISPARSE_SM90_PERSISTENT 0
#endif

/// Build-time choice of how many of the 16 eight-column groups of each
/// score block take exp2 on the FMA pipe (Exp2Poly.h) instead of the MUFU
/// unit, per head dim (CMake options UNISPARSE_RUNTIME_SM90_POLY_EXP2_D64 /
/// _D128; Sm90Traits::kPolyExp2Tiles).
#ifndef UNISPARSE_SM90_POLY_EXP2_D64
#define UNISPARSE_SM90_POLY_EXP2_D64 0
#endif
#ifndef UNISPARSE_SM90_POLY_EXP2_D128
#define UNISPARSE_SM90_POLY_EXP2_D128 0
#endif

/// Build-time choice of the K/V ring's depth per head dim (CMake options
/// UNISPARSE_RUNTIME_SM90_STAGES_D64 / _D128; Sm90Traits::kStages).
#ifndef UNISPARSE_SM90_STAGES_D64
#define UNISPARSE_SM90_STAGES_D64 3
#endif
#ifndef UNISPARSE_SM90_STAGES_D128
#define UNISPARSE_SM90_STAGES_D128 3
#endif

/// Build-time choice: the head-dim-64 kernel gets its softmax row sums from
/// the tensor cores (CMake option UNISPARSE_RUNTIME_SM90_ROWSUM_MMA;
/// Sm90Traits::kRowSumByMma).
#ifndef UNISPARSE_SM90_ROWSUM_MMA
#define UNISPARSE_SM90_ROWSUM_MMA 0
#endif

/// Build-time choice: the speculative softmax (CMake option
/// UNISPARSE_RUNTIME_SM90_SPEC_SOFTMAX, on by default;
/// Sm90Traits::kSpecSoftmax).
#ifndef UNISPARSE_SM90_SPEC_SOFTMAX
#define UNISPARSE_SM90_SPEC_SOFTMAX 1
#endif

/// Build-time choice: Q K^T in two 64-key halves with their own commit
/// groups (CMake option UNISPARSE_RUNTIME_SM90_SPLIT_S; Sm90Traits::kSplitS;
/// needs the speculative softmax).
#ifndef UNISPARSE_SM90_SPLIT_S
#define UNISPARSE_SM90_SPLIT_S 0
#endif

/// Build-time choices of the per-block ring handoff and the per-CTA edges
/// (CMake options UNISPARSE_RUNTIME_SM90_SLOT_ALL_LANES, _EARLY_START,
/// _WIDE_STORES; Sm90Traits::kSlotAllLanes, kEarlyStart, kWideStores). The
/// first is on (measured faster on 17 of 24 rows, NOTES.md "k18"); the
/// other two are off (measured slower on the dense rows).
#ifndef UNISPARSE_SM90_SLOT_ALL_LANES
#define UNISPARSE_SM90_SLOT_ALL_LANES 1
#endif
#ifndef UNISPARSE_SM90_EARLY_START
#define UNISPARSE_SM90_EARLY_START 0
#endif
#ifndef UNISPARSE_SM90_WIDE_STORES
#define UNISPARSE_SM90_WIDE_STORES 0
#endif

namespace unisparse::rt::cuda {

/// The Hopper kernel's parameter block (a __grid_constant__ parameter, so
/// that the TMA unit reads the tensor maps from parameter space). q, k and v
/// are reached only through their tensor maps: 4-D {D, N, H, B} (innermost
/// first), boxes of 64 columns x 128 rows, 128-byte swizzle, out-of-range
/// rows filled with zeros.
struct Sm90Params {
  CUtensorMap tmQ; ///< [B, Hq, N, D]
  CUtensorMap tmK; ///< [B, Hkv, N, D]
  CUtensorMap tmV; ///< [B, Hkv, N, D]
  /// The persistent kernel's ticket counter (zeroed before the launch; see
  /// Sm90Traits::kPersistent); unused by the one-CTA-per-tile kernel.
  int32_t *tileCounter;
  void *o;                ///< [B, Hq, N, D], written
  float *lse;             ///< [B, Hq, N], written
  const int32_t *counts;  ///< [B, Hg, NBq]
  const int32_t *indices; ///< [B, Hg, NBq, M]
  int64_t oStride[3];     ///< elements; o has unit stride along D
  int64_t lseStride[3];
  int64_t countsStride[3];
  int64_t indicesStride[4];
  int32_t seqLen;          ///< N
  int32_t numKBlocks;      ///< NBk = ceil(N / 128)
  int32_t maxBlocks;       ///< M, the length of an indices row
  int32_t numQTiles;       ///< ceil(N / 128)
  int32_t numQHeads;       ///< Hq
  int32_t batch;           ///< B
  int32_t qHeadsPerKVHead; ///< Hq / Hkv
  int32_t qHeadsPerGroup;  ///< Hq / Hg
  int32_t causal;          ///< 0 or 1
  float scaleLog2;         ///< softmax scale * log2(e)
};

/// Tile configuration of the Hopper kernel. The query tile and the key tile
/// are both one 128 x 128 layout block (the kernel takes S = 128 only), so
/// every index of the layout names exactly one K/V tile, and only the
/// diagonal block (causal) and a partial last block need a mask.
template <int HeadDim> struct Sm90Traits {
  static_assert(HeadDim == 64 || HeadDim == 128, "head dim 64 or 128");
  static constexpr int kHeadDim = HeadDim;
  static constexpr int kBlockM = 128;  ///< query rows per CTA (2 x 64)
  static constexpr int kBlockN = 128;  ///< keys per K/V tile = block size
  static constexpr int kConsumers = 2; ///< consumer warpgroups, 64 rows each
  static constexpr int kThreads = 128 * (1 + kConsumers);
  /// K/V pipeline depth (shared-memory stages, each one K and one V tile):
  /// 3 by default at both head dims (head dim 128 has room for no more).
  static constexpr int kStages =
      HeadDim == 64 ? UNISPARSE_SM90_STAGES_D64 : UNISPARSE_SM90_STAGES_D128;
  static_assert(kStages >= 2, "the ring needs two stages");
  /// Lazy softmax rescaling: the running max (log2 units) is moved, and O
  /// rescaled, only when a tile's max exceeds it by more than this.
  static constexpr float kRescaleThreshold = 8.0f;
  /// 2^kRescaleThreshold: the largest P the threshold allows.
  static constexpr float kRescaleBound = 256.0f;
  static_assert(kRescaleBound == float(1 << int(kRescaleThreshold)),
                "kRescaleBound is 2^kRescaleThreshold");
  /// Speculative softmax (every block after a row's first): P = exp2(S *
  /// scale - m) with the running reference max m, without the block's row
  /// max; a thread's partial row sum of P at most kRescaleBound proves
  /// every P of its row at most that bound, which is what the lazy rescale
  /// keeps (P <= 2^kRescaleThreshold). Where that proof fails for a thread
  /// of a warp (a P may exceed the bound, or a row has no reference max
  /// yet) the warp takes the row max of the kept S * scale - m and applies
  /// the lazy-rescale rule as the unspeculated softmax does. Drops the
  /// 64 FMNMX, 4 SHFL and the threshold compares from the critical path of
  /// every block, and the vote of the lazy rescale from the common path:
  /// 5-12 % faster on every benchmark row on the H200 (runtime/lib/cuda/
  /// NOTES.md, k17), so the default; off, every block takes its row max.
  static constexpr bool kSpecSoftmax = UNISPARSE_SM90_SPEC_SOFTMAX != 0;
  /// Q K^T as two m64n64 halves (keys 0-63, 64-127) with their own commit
  /// groups: the speculative softmax of the first half runs while the
  /// tensor cores compute the second.
  static constexpr bool kSplitS = UNISPARSE_SM90_SPLIT_S != 0;
  static_assert(!kSplitS || kSpecSoftmax,
                "the split Q K^T needs the speculative softmax");
  /// Every consumer thread reads the block slot of the next stage itself
  /// and arrives on the stage's "empty" barrier (arrival count 256), so
  /// that each read is ordered before the producer's next write of the
  /// slot by the reader's own arrive. Removes the shuffle of lane 0's read
  /// (LDS -> SHFL -> R2UR -> ISETP) from the start of every block's step.
  /// Else lane 0 of each warp reads and releases (arrival count 8).
  static constexpr bool kSlotAllLanes = UNISPARSE_SM90_SLOT_ALL_LANES != 0;
  /// The per-CTA start: the producer thread loads the layout row's count
  /// and first index and issues the Q and first K/V TMA copies right after
  /// the mbarrier initialization, before the CTA barrier and setmaxnreg,
  /// and the count and first index load in parallel (not one after the
  /// other). Else the producer starts its walk after the CTA barrier.
  static constexpr bool kEarlyStart = UNISPARSE_SM90_EARLY_START != 0;
  /// The epilogue stores O 16 bytes per thread: a 4 x 4 transpose of the
  /// packed pairs inside each quad (shuffles) gives each thread eight
  /// consecutive columns of one row, so a warp's store covers 8 rows x 64
  /// contiguous bytes (a quarter of the store instructions, whole
  /// sectors). Else each thread stores its 4-byte pairs.
  static constexpr bool kWideStores = UNISPARSE_SM90_WIDE_STORES != 0;
  /// A tile is stored as HeadDim / 64 slabs of 128 rows x 64 columns (128
  /// bytes per row, the width of the 128-byte swizzle), one TMA box each.
  static constexpr int kSlabs = HeadDim / 64;
  static constexpr int kSlabBytes = 128 * 64 * 2;
  static constexpr int kTileBytes = kSlabs * kSlabBytes;
  /// Registers per thread after setmaxnreg: the producer warpgroup gives
  /// its registers to the two consumer warpgroups (24*128 + 2*240*128 <=
  /// 64K registers).
  static constexpr int kProducerRegs = 24;
  static constexpr int kConsumerRegs = 240;
  /// exp2 on the FMA pipe (Exp2Poly.h, 8 FMA/ALU instructions) instead of
  /// the MUFU unit (one MUFU.EX2, a quarter-rate pipe: 8 cycles per warp)
  /// for kPolyExp2Tiles of the 16 eight-column groups of a score block,
  /// spread evenly (0: never, 16: always): the fraction kPolyExp2Tiles / 16
  /// of the exponentials moves from the MUFU unit to the issue slots.
  static constexpr int kPolyExp2Tiles = HeadDim == 64
                                            ? UNISPARSE_SM90_POLY_EXP2_D64
                                            : UNISPARSE_SM90_POLY_EXP2_D128;
  static_assert(kPolyExp2Tiles >= 0 && kPolyExp2Tiles <= kBlockN / 8,
                "kPolyExp2Tiles counts eight-column groups of a block");
  /// Row sums of P on the tensor cores (head dim 64 only): each V stage is
  /// followed by a 128 x 64 slab of ones, and O += P V is one m64n72k16
  /// wgmma per 16 keys whose last 8 columns read the ones (the slab sits
  /// one leading-byte offset after the V slab, where the second slab of a
  /// head-dim-128 V tile is), so O's columns 64..71 accumulate sum_k P[k]
  /// of the bf16/f16 P that multiplies V, rescaled with O. The softmax then
  /// drops its 64 FADD per thread and block (the issue slots that the
  /// MUFU-bound head-dim-64 softmax is short of) for 12.5 % more P V
  /// tensor work, and the epilogue its sum shuffles. Head dim 128 has no
  /// shared memory left for the ones (230,500 of 232,448 bytes).
  static constexpr bool kRowSumByMma =
      HeadDim == 64 && UNISPARSE_SM90_ROWSUM_MMA != 0;
  /// Columns of the O accumulator (the P V wgmma's N).
  static constexpr int kOCols = HeadDim + (kRowSumByMma ? 8 : 0);
  /// Persistent grid: one CTA per SM, each taking tiles one after another
  /// from a dynamic scheduler (an atomic ticket counter, tiles in
  /// scheduleTile's longest-first, kv-head-major order); the producer
  /// prefetches the next tile's first K/V block and then its Q while the
  /// consumers finish the current tile (Q is reloaded once both consumer
  /// warpgroups have waited for their last Q K^T). Else one CTA per tile.
  static constexpr bool kPersistent = UNISPARSE_SM90_PERSISTENT != 0;
  /// Q, kStages K tiles, kStages V stages, then the mbarriers (Q full; per
  /// stage K full, V full, empty; Q empty) and one 4-byte block slot per
  /// stage; 1 KiB of slack to align the tiles to 1024 bytes (the swizzle
  /// period).
  static constexpr int kBarrierBytes = 8 * (2 + 3 * kStages) + 4 * kStages;
  /// A V stage: the V tile, then (kRowSumByMma) the slab of ones.
  static constexpr int kVStageBytes =
      kTileBytes + (kRowSumByMma ? kSlabBytes : 0);
  static constexpr int kSmemBytes = 1024 + kTileBytes * (1 + kStages) +
                                    kVStageBytes * kStages + kBarrierBytes;
  static_assert(kSmemBytes <= 232448, "227 KiB of shared memory per CTA");
};

/// Kernel names in the sm_90a fatbin, indexed [isBf16][headDim == 128].
constexpr const char *kSm90KernelNames[2][2] = {
    {"unisparse_bsa_sm90_fwd_f16_d64", "unisparse_bsa_sm90_fwd_f16_d128"},
    {"unisparse_bsa_sm90_fwd_bf16_d64", "unisparse_bsa_sm90_fwd_bf16_d128"},
};

} // namespace unisparse::rt::cuda

#endif // UNISPARSE_RUNTIME_LIB_CUDA_BLOCKSPARSEATTENTIONSM90KERNEL_H
