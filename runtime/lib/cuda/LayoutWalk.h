//===- LayoutWalk.h - Layout walk and mask of both kernels -----*- C++ -*-===//
//
// Device code shared by the mma.sync kernel (BlockSparseAttention.cu) and the
// sm_90a kernel (BlockSparseAttentionSm90.cu): the walk over one layout row
// with its safety rules, and the one masking rule (lastVisibleKey).
//
// Layout safety: the layout lives on the device and is not validated on the
// host for CUDA tensors. A row's count is clamped to [0, M] (M <= NBk is
// validated on the host from the shapes), and every index outside [0, NBk)
// or not greater than the last visited one is skipped, so duplicates and
// unsorted entries cannot make a kernel visit a block twice or read outside
// K and V. A valid layout is unaffected by these rules.
//
//===----------------------------------------------------------------------===//

#ifndef UNISPARSE_RUNTIME_LIB_CUDA_LAYOUTWALK_H
#define UNISPARSE_RUNTIME_LIB_CUDA_LAYOUTWALK_H

#include <cstdint>

namespace unisparse::rt::cuda {

/// The key blocks of one layout row (b, g, I), in the order listed, after
/// the safety rules, up to the last block visible to the query rows (causal).
/// The row's stride along M and NBk are read from the kernel's parameters
/// (either kernel's parameter block: both name the layout fields alike).
struct BlockWalk {
  const int32_t *row; ///< indices[b, g, I, :]
  int count;          ///< counts[b, g, I] clamped to [0, M]
  int limit;          ///< last key block any query row may see
  int pos = -1;
  int last = -1;

  /// The next key block to visit in `j`; false at the end of the row.
  template <typename Params>
  __device__ __forceinline__ bool next(const Params &p, int &j) {
    while (++pos < count) {
      const int x = __ldg(row + int64_t(pos) * p.indicesStride[3]);
      if (x < 0 || x >= p.numKBlocks || x <= last)
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

/// The masking rule: query row `row` sees the keys up to this one, i.e.
/// none past the sequence and, under a causal mask, none after the row.
__device__ __forceinline__ int lastVisibleKey(int row, int seqLen, int causal) {
  return causal ? min(row, seqLen - 1) : seqLen - 1;
}

/// The count of layout row (b, group, qBlock) as stored (unclamped).
template <typename Params>
__device__ __forceinline__ int layoutRowCount(const Params &p, int b, int group,
                                              int qBlock) {
  return __ldg(p.counts + b * p.countsStride[0] + group * p.countsStride[1] +
               qBlock * p.countsStride[2]);
}

/// The entries of layout row (b, group, qBlock): indices[b, group, qBlock, :].
template <typename Params>
__device__ __forceinline__ const int32_t *
layoutRowIndices(const Params &p, int b, int group, int qBlock) {
  return p.indices + b * p.indicesStride[0] + group * p.indicesStride[1] +
         qBlock * p.indicesStride[2];
}

/// The walk of layout row (b, group, qBlock) for query rows up to `qLast`
/// (the last valid row of the caller's query tile), with the row's stored
/// count rawCount.

template <typename Params>
__device__ __forceinline__ BlockWalk layoutRow(const Params &p, int b,
                                               int group, int qBlock,
                                               int blockSize, int qLast,
                                               int rawCount) {
  return BlockWalk{layoutRowIndices(p, b, group, qBlock),
                   min(max(rawCount, 0), p.maxBlocks),
                   lastVisibleKey(qLast, p.seqLen, p.causal) / blockSize};
}

/// The walk of layout row (b, group, qBlock) for query rows up to `qLast`.
template <typename Params>
__device__ __forceinline__ BlockWalk layoutRow(const Params &p, int b,
                                               int group, int qBlock,
                                               int blockSize, int qLast) {
  return layoutRow(p, b, group, qBlock, blockSize, qLast,
                   layoutRowCount(p, b, group, qBlock));
}

/// Whether key `key` is hidden from query row `row` (lastVisibleKey).
__device__ __forceinline__ bool keyMasked(int key, int row, int seqLen,
                                          int causal) {
  return key > lastVisibleKey(row, seqLen, causal);
}

/// Whether a tile of keys [k0, k0 + keys) needs keyMasked at all for query
/// rows q0 and later: its last key is hidden from row q0.
__device__ __forceinline__ bool tileNeedsMask(int k0, int keys, int q0,
                                              int seqLen, int causal) {
  return keyMasked(k0 + keys - 1, q0, seqLen, causal);
}

} // namespace unisparse::rt::cuda

#endif // UNISPARSE_RUNTIME_LIB_CUDA_LAYOUTWALK_H
