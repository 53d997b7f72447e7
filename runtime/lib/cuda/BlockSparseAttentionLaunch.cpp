//===- BlockSparseAttentionLaunch.cpp - Launch the CUDA attention kernel --===//
//
// Host side of the CUDA backend: the checks that only CUDA tensors need, the
// per-context module of embedded kernels, the parameter block and the
// launch. No host synchronization and no read of device data.
//
//===----------------------------------------------------------------------===//

#include "common/Error.h"
#include "cuda/BlockSparseAttention.h"
#include "cuda/BlockSparseAttentionKernel.h"
#include "cuda/Driver.h"

#include <cinttypes>
#include <cmath>
#include <cstdint>
#include <mutex>
#include <vector>

// The kernels of BlockSparseAttention.cu, compiled to a fatbin and embedded
// by CMake (cmake/EmbedFile.cmake).
extern "C" const unsigned char unisparse_rt_bsa_fatbin[];
extern "C" const unsigned long long unisparse_rt_bsa_fatbin_size;

#ifndef UNISPARSE_RT_CUDA_ARCHITECTURES
#define UNISPARSE_RT_CUDA_ARCHITECTURES "?"
#endif

namespace unisparse::rt::cuda {

namespace {

struct NamedTensor {
  const char *name;
  const unisparse_tensor_t *t;
};

//===----------------------------------------------------------------------===//
// Checks.
//===----------------------------------------------------------------------===//

/// What the kernels support; needs no driver.
unisparse_status_t checkSupported(const AttentionTensors &t,
                                  const AttentionProblem &p) {
  if (p.dtype != UNISPARSE_DTYPE_F16 && p.dtype != UNISPARSE_DTYPE_BF16)
    return setError(UNISPARSE_STATUS_NOT_SUPPORTED,
                    "q: dtype = %s on cuda: the CUDA backend of block-sparse "
                    "attention supports f16 and bf16 (f32 runs on the CPU "
                    "backend)",
                    dtypeName(p.dtype));
  if (p.headDim != 64 && p.headDim != 128)
    return setError(UNISPARSE_STATUS_NOT_SUPPORTED,
                    "q: sizes[3] (D) = %" PRId64
                    " on cuda: the CUDA backend of block-sparse attention "
                    "supports head dims 64 and 128",
                    p.headDim);
  if (!isSupportedBlockSize(p.blockSize))
    return setError(UNISPARSE_STATUS_NOT_SUPPORTED,
                    "params: block_size = %" PRId64
                    " on cuda: the CUDA backend of block-sparse attention "
                    "supports block sizes 64 and 128",
                    p.blockSize);
  for (const NamedTensor &nt : {NamedTensor{"q", t.q}, NamedTensor{"k", t.k},
                                NamedTensor{"v", t.v}, NamedTensor{"o", t.o}})
    if (nt.t->strides[3] != 1)
      return setError(UNISPARSE_STATUS_INVALID_STRIDE,
                      "%s: strides[3] (D) = %" PRId64
                      ", expected 1 for a CUDA tensor (the kernel moves rows "
                      "of D contiguous elements)",
                      nt.name, nt.t->strides[3]);
  // Token indices and tile bounds are 32-bit in the kernel; B and Hq are
  // grid dimensions z and y.
  if (p.seqLen > INT32_MAX - 1024)
    return setError(UNISPARSE_STATUS_NOT_SUPPORTED,
                    "q: sizes[2] (N) = %" PRId64
                    " on cuda: the CUDA kernel indexes tokens with 32 bits",
                    p.seqLen);
  if (p.numQHeads > 65535 || p.batch > 65535)
    return setError(UNISPARSE_STATUS_NOT_SUPPORTED,
                    "q: B = %" PRId64 ", Hq = %" PRId64
                    " on cuda: each must be at most 65535 (grid dimensions)",
                    p.batch, p.numQHeads);
  return UNISPARSE_STATUS_SUCCESS;
}

/// Bytes from a tensor's data pointer to the end of its last element.
int64_t extentBytes(const unisparse_tensor_t &t) {
  int64_t last = 0;
  for (int32_t i = 0; i < t.rank; ++i)
    last += (t.sizes[i] - 1) * t.strides[i];
  const int64_t elem =
      t.dtype == UNISPARSE_DTYPE_F16 || t.dtype == UNISPARSE_DTYPE_BF16 ? 2 : 4;
  return (last + 1) * elem;
}

bool isEmpty(const unisparse_tensor_t &t) {
  for (int32_t i = 0; i < t.rank; ++i)
    if (t.sizes[i] == 0)
      return true;
  return false;
}

/// Every tensor's data must be memory the driver knows (not a plain host
/// pointer in a tensor that says device = cuda), device memory must be on
/// the current context's device, and the tensor must end inside its
/// allocation. One cuPointerGetAttributes per tensor.
unisparse_status_t checkPointers(const AttentionTensors &t, CUdevice device) {
  const NamedTensor tensors[] = {{"q", t.q},
                                 {"k", t.k},
                                 {"v", t.v},
                                 {"counts", t.counts},
                                 {"indices", t.indices},
                                 {"o", t.o},
                                 {"lse", t.lse}};
  for (const NamedTensor &nt : tensors) {
    const unisparse_tensor_t &tensor = *nt.t;
    if (isEmpty(tensor))
      continue;
    CUpointer_attribute attributes[] = {
        CU_POINTER_ATTRIBUTE_MEMORY_TYPE, CU_POINTER_ATTRIBUTE_DEVICE_ORDINAL,
        CU_POINTER_ATTRIBUTE_RANGE_START_ADDR, CU_POINTER_ATTRIBUTE_RANGE_SIZE,
        CU_POINTER_ATTRIBUTE_IS_MANAGED};
    // Zeroed 8-byte slots: each attribute writes at most 8 bytes, and the
    // little-endian value reads back whatever its width.
    uint64_t values[5] = {0, 0, 0, 0, 0};
    void *slots[5] = {&values[0], &values[1], &values[2], &values[3],
                      &values[4]};
    const CUdeviceptr ptr = reinterpret_cast<CUdeviceptr>(tensor.data);
    if (!UNISPARSE_CU(cuPointerGetAttributes, 5, attributes, slots, ptr))
      return UNISPARSE_STATUS_CUDA_ERROR;
    const uint32_t memoryType = uint32_t(values[0]);
    const int32_t ordinal = int32_t(uint32_t(values[1]));
    const uint64_t start = values[2], size = values[3];
    const bool managed = values[4] != 0;
    if (memoryType == 0)
      return setError(UNISPARSE_STATUS_DEVICE_MISMATCH,
                      "%s: data = %p is not memory the CUDA driver knows "
                      "(a host pointer in a tensor with device = cuda?)",
                      nt.name, tensor.data);
    if (memoryType == CU_MEMORYTYPE_DEVICE && !managed && ordinal != device)
      return setError(UNISPARSE_STATUS_DEVICE_MISMATCH,
                      "%s: data = %p is on CUDA device %d, expected device "
                      "%d (the device of the current context); all tensors "
                      "must be on one device",
                      nt.name, tensor.data, ordinal, int(device));
    if (size != 0) {
      const uint64_t extent = uint64_t(extentBytes(tensor));
      if (ptr < start || ptr - start > size || extent > size - (ptr - start))
        return setError(UNISPARSE_STATUS_INVALID_ARGUMENT,
                        "%s: the tensor spans %" PRIu64
                        " bytes from data = %p, past the end of its device "
                        "allocation (%" PRIu64 " bytes from 0x%" PRIx64 ")",
                        nt.name, extent, tensor.data, size, start);
    }
  }
  return UNISPARSE_STATUS_SUCCESS;
}

/// q, k, v and o can be moved in 16-byte chunks: aligned data, and strides
/// of the non-trivial outer dimensions that are multiples of 8 elements.
bool allowsVec16(const AttentionTensors &t) {
  for (const unisparse_tensor_t *tensor : {t.q, t.k, t.v, t.o}) {
    if (reinterpret_cast<uintptr_t>(tensor->data) % 16 != 0)
      return false;
    for (int i = 0; i < 3; ++i)
      if (tensor->sizes[i] > 1 && tensor->strides[i] % 8 != 0)
        return false;
  }
  return true;
}

//===----------------------------------------------------------------------===//
// The embedded kernels, loaded once per context.
//===----------------------------------------------------------------------===//

struct LoadedKernels {
  CUcontext context = nullptr;
  CUmodule module = nullptr;
  CUfunction functions[2][2] = {}; ///< [isBf16][headDim == 128]
};

struct KernelCache {
  std::mutex mutex;
  std::vector<LoadedKernels> loaded;
};

KernelCache &kernelCache() {
  static KernelCache *cache = new KernelCache; // leaked, see MgpuRuntime.cpp
  return *cache;
}

/// The kernel for (dtype, head dim) in the current context, loading the
/// module on first use in this context; null (error recorded) on failure.
CUfunction kernelFor(CUcontext context, bool bf16, bool dim128) {
  KernelCache &cache = kernelCache();
  std::lock_guard<std::mutex> lock(cache.mutex);
  for (const LoadedKernels &k : cache.loaded)
    if (k.context == context)
      return k.functions[bf16][dim128];
  LoadedKernels k;
  k.context = context;
  const CUresult result =
      api().cuModuleLoadData(&k.module, unisparse_rt_bsa_fatbin);
  if (result != CUDA_SUCCESS) {
    reportFailure(result, "cuModuleLoadData", __FILE__, __LINE__,
                  "loading the block-sparse attention kernels (built for "
                  "CUDA architectures " UNISPARSE_RT_CUDA_ARCHITECTURES ")");
    return nullptr;
  }
  for (int isBf16 = 0; isBf16 < 2; ++isBf16) {
    for (int is128 = 0; is128 < 2; ++is128) {
      CUfunction &fn = k.functions[isBf16][is128];
      const int smem = is128 ? AttentionTraits<128>::kSmemBytes
                             : AttentionTraits<64>::kSmemBytes;
      if (!UNISPARSE_CU(cuModuleGetFunction, &fn, k.module,
                        kKernelNames[isBf16][is128]) ||
          (smem > 48 * 1024 &&
           !UNISPARSE_CU(cuFuncSetAttribute, fn,
                         CU_FUNC_ATTRIBUTE_MAX_DYNAMIC_SHARED_SIZE_BYTES,
                         smem))) {
        api().cuModuleUnload(k.module);
        return nullptr;
      }
    }
  }
  cache.loaded.push_back(k);
  return k.functions[bf16][dim128];
}

//===----------------------------------------------------------------------===//
// Launch.
//===----------------------------------------------------------------------===//

template <int HeadDim>
unisparse_status_t launch(CUfunction fn, const AttentionParams &params,
                          const AttentionProblem &p, CUstream stream) {
  using Traits = AttentionTraits<HeadDim>;
  void *args[] = {const_cast<AttentionParams *>(&params)};
  if (!UNISPARSE_CU(cuLaunchKernel, fn, unsigned(params.numQTiles),
                    unsigned(p.numQHeads), unsigned(p.batch),
                    unsigned(Traits::kThreads), 1u, 1u,
                    unsigned(Traits::kSmemBytes), stream, args, nullptr))
    return UNISPARSE_STATUS_CUDA_ERROR;
  return UNISPARSE_STATUS_SUCCESS;
}

void copyStrides(int64_t *dst, const unisparse_tensor_t &t, int n) {
  for (int i = 0; i < n; ++i)
    dst[i] = t.strides[i];
}

} // namespace

unisparse_status_t blockSparseAttention(const AttentionTensors &t,
                                        const AttentionProblem &p,
                                        void *stream) {
  // 1. What the kernels support, before touching the driver.
  if (unisparse_status_t s = checkSupported(t, p))
    return s;
  if (p.batch == 0)
    return UNISPARSE_STATUS_SUCCESS; // nothing to compute or write

  // 2. Context, stream, and the tensors' memory.
  if (!ensureContext())
    return UNISPARSE_STATUS_CUDA_ERROR;
  CUstream cuStream = static_cast<CUstream>(
      stream ? stream : unisparse_rt_get_current_stream());
  CUcontext context = nullptr;
  CUdevice device = 0;
  if (!UNISPARSE_CU(cuCtxGetCurrent, &context) ||
      !UNISPARSE_CU(cuCtxGetDevice, &device))
    return UNISPARSE_STATUS_CUDA_ERROR;
  CUstreamCaptureStatus capture = CU_STREAM_CAPTURE_STATUS_NONE;
  if (!UNISPARSE_CU(cuStreamIsCapturing, cuStream, &capture))
    return UNISPARSE_STATUS_CUDA_ERROR;
  // While capturing, allocations made inside the graph are not inspectable
  // yet; the checks ran on the (uncaptured) calls made before, if any.
  if (capture == CU_STREAM_CAPTURE_STATUS_NONE)
    if (unisparse_status_t s = checkPointers(t, device))
      return s;

  // 3. The kernel and its parameters.
  const bool bf16 = p.dtype == UNISPARSE_DTYPE_BF16;
  const bool dim128 = p.headDim == 128;
  CUfunction fn = kernelFor(context, bf16, dim128);
  if (!fn)
    return UNISPARSE_STATUS_CUDA_ERROR;

  AttentionParams params = {};
  params.q = t.q->data;
  params.k = t.k->data;
  params.v = t.v->data;
  params.o = t.o->data;
  params.lse = static_cast<float *>(t.lse->data);
  params.counts = static_cast<const int32_t *>(t.counts->data);
  params.indices = static_cast<const int32_t *>(t.indices->data);
  copyStrides(params.qStride, *t.q, 3);
  copyStrides(params.kStride, *t.k, 3);
  copyStrides(params.vStride, *t.v, 3);
  copyStrides(params.oStride, *t.o, 3);
  copyStrides(params.lseStride, *t.lse, 3);
  copyStrides(params.countsStride, *t.counts, 3);
  copyStrides(params.indicesStride, *t.indices, 4);
  params.seqLen = int32_t(p.seqLen);
  params.blockSize = int32_t(p.blockSize);
  params.numKBlocks = int32_t(p.numKBlocks);
  params.maxBlocks = int32_t(p.maxBlocks);
  constexpr int kBlockM = AttentionTraits<64>::kBlockM;
  static_assert(kBlockM == AttentionTraits<128>::kBlockM, "one query tile");
  params.numQTiles = int32_t((p.seqLen + kBlockM - 1) / kBlockM);
  params.qHeadsPerKVHead = int32_t(p.numQHeads / p.numKVHeads);
  params.qHeadsPerGroup = int32_t(p.numQHeads / p.numGroups);
  params.causal = p.causal ? 1 : 0;
  params.vec16 = allowsVec16(t) ? 1 : 0;
  params.scaleLog2 = float(double(p.scale) * 1.4426950408889634);

  // 4. Launch (asynchronous; kernel faults surface at the next sync).
  return dim128 ? launch<128>(fn, params, p, cuStream)
                : launch<64>(fn, params, p, cuStream);
}

unisparse_status_t synchronizeLegacyStream() {
  if (!ensureContext())
    return UNISPARSE_STATUS_CUDA_ERROR;
  if (!UNISPARSE_CU(cuStreamSynchronize, static_cast<CUstream>(nullptr)))
    return UNISPARSE_STATUS_CUDA_ERROR;
  return UNISPARSE_STATUS_SUCCESS;
}

} // namespace unisparse::rt::cuda
