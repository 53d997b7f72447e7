//===- BlockSparseAttentionKernel.h - Kernel ABI, tuning knobs --*- C++ -*-===//
//
// What the host launcher (BlockSparseAttentionLaunch.cpp, plain C++) and the
// kernels (BlockSparseAttention.cu, nvcc) share: the kernel parameter block,
// the tile traits (every tuning knob of the kernel lives here), and the
// kernel names in the embedded fatbin. Only fixed-width types, so that both
// compilers lay the parameter block out identically.
//
//===----------------------------------------------------------------------===//

#ifndef UNISPARSE_RUNTIME_LIB_CUDA_BLOCKSPARSEATTENTIONKERNEL_H
#define UNISPARSE_RUNTIME_LIB_CUDA_BLOCKSPARSEATTENTIONKERNEL_H

#include <cstdint>

namespace unisparse::rt::cuda {

/// The kernel's parameter block, passed by value (a __grid_constant__ kernel
/// parameter). Strides are in elements. q, k, v and o have unit stride along
/// D (checked on the host), so only their [B, H, N] strides are kept.
struct AttentionParams {
  const void *q;          ///< [B, Hq, N, D] f16 | bf16
  const void *k;          ///< [B, Hkv, N, D]
  const void *v;          ///< [B, Hkv, N, D]
  void *o;                ///< [B, Hq, N, D], written
  float *lse;             ///< [B, Hq, N], written
  const int32_t *counts;  ///< [B, Hg, NBq]
  const int32_t *indices; ///< [B, Hg, NBq, M]
  int64_t qStride[3];
  int64_t kStride[3];
  int64_t vStride[3];
  int64_t oStride[3];
  int64_t lseStride[3];
  int64_t countsStride[3];
  int64_t indicesStride[4];
  int32_t seqLen;          ///< N
  int32_t blockSize;       ///< S (64 or 128)
  int32_t numKBlocks;      ///< NBk = ceil(N / S)
  int32_t maxBlocks;       ///< M, the length of an indices row
  int32_t numQTiles;       ///< ceil(N / kBlockM) = gridDim.x
  int32_t qHeadsPerKVHead; ///< Hq / Hkv
  int32_t qHeadsPerGroup;  ///< Hq / Hg
  int32_t causal;          ///< 0 or 1
  /// 1 if q, k, v and o all have 16-byte aligned data and [B, H, N] strides
  /// that are multiples of 8 elements: rows are then moved with 16-byte
  /// cp.async / vector stores, otherwise element by element.
  int32_t vec16;
  float scaleLog2; ///< softmax scale * log2(e): scores go straight to exp2
};

/// The tile configuration of one kernel instantiation. Every tuning knob of
/// the kernel is here.
///
/// One CTA computes kBlockM query rows of one (batch, query head) against
/// the selected key blocks, kBlockN keys at a time. kBlockM = 64 for both
/// supported block sizes, so a CTA's query tile is the whole query block
/// when S = 64 and half of it when S = 128 (two CTAs share one layout row);
/// kBlockN = 64 divides S, so a key tile never straddles two key blocks.
/// Each of the kWarps warps owns 16 query rows (one m16 MMA row block).
template <int HeadDim> struct AttentionTraits {
  static_assert(HeadDim == 64 || HeadDim == 128, "head dim 64 or 128");
  static constexpr int kHeadDim = HeadDim;
  static constexpr int kBlockM = 64; ///< query rows per CTA
  static constexpr int kBlockN = 64; ///< keys per K/V tile
  static constexpr int kWarps = kBlockM / 16;
  static constexpr int kThreads = kWarps * 32;
  static constexpr int kStages = 2; ///< K/V shared-memory buffers (cp.async)
  /// Shared-memory rows are padded by 16 bytes: with a row pitch of
  /// (D + 8) * 2 bytes, the 8 row addresses of one ldmatrix phase fall into
  /// 8 different 16-byte bank groups (no bank conflicts), and every row start
  /// stays 16-byte aligned for cp.async.
  static constexpr int kRowPitch = HeadDim + 8; ///< elements
  static constexpr int kTileElems = kBlockN * kRowPitch;
  static constexpr int kQElems = kBlockM * kRowPitch;
  /// Q tile (reused to stage O), then kStages K tiles, then kStages V tiles.
  static constexpr int kSmemBytes = (kQElems + 2 * kStages * kTileElems) * 2;
};

/// The supported block sizes S (the query tile is kBlockM = 64 rows).
constexpr bool isSupportedBlockSize(int64_t s) { return s == 64 || s == 128; }

/// Kernel names in the embedded fatbin, indexed [isBf16][headDim == 128].
constexpr const char *kKernelNames[2][2] = {
    {"unisparse_bsa_fwd_f16_d64", "unisparse_bsa_fwd_f16_d128"},
    {"unisparse_bsa_fwd_bf16_d64", "unisparse_bsa_fwd_bf16_d128"},
};

} // namespace unisparse::rt::cuda

#endif // UNISPARSE_RUNTIME_LIB_CUDA_BLOCKSPARSEATTENTIONKERNEL_H
