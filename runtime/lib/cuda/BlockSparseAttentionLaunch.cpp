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
#include "cuda/BlockSparseAttentionSm90Kernel.h"
#include "cuda/Driver.h"

#include <algorithm>
#include <cinttypes>
#include <cmath>
#include <cstdint>
#include <cstring>
#include <deque>
#include <mutex>
#include <vector>

// The kernels of BlockSparseAttention.cu, compiled to a fatbin and embedded
// by CMake (cmake/EmbedFile.cmake).
extern "C" const unsigned char unisparse_rt_bsa_fatbin[];
extern "C" const unsigned long long unisparse_rt_bsa_fatbin_size;
#if UNISPARSE_RT_HAVE_SM90
// The sm_90a kernels of BlockSparseAttentionSm90.cu (built only when the
// architecture list names 90a).
extern "C" const unsigned char unisparse_rt_bsa_sm90_fatbin[];
#endif

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

/// A driver failure not yet reported: the call's name and result.
struct LoadFailure {
  const char *call = nullptr;
  CUresult result = CUDA_SUCCESS;
  explicit operator bool() const { return call != nullptr; }
  /// Records it as the thread's error (with `detail`); returns false.
  bool report(const char *detail) const {
    return reportFailure(result, call, __FILE__, __LINE__, detail);
  }
};

struct LoadedKernels {
  CUcontext context = nullptr;
  CUmodule module = nullptr;
  CUfunction functions[2][2] = {}; ///< [isBf16][headDim == 128]
  /// The sm_90a kernels: loaded on first use on a device of compute
  /// capability 9.0 in a build that has them, never when mma.sync is forced.
  /// A failed load is remembered (sm90Failure), so AUTO falls back to
  /// mma.sync and only a forced sm_90a call reports it.
  bool sm90Tried = false;
  LoadFailure sm90Failure;
  CUmodule sm90Module = nullptr;
  CUfunction sm90Functions[2][2] = {};
  int ccMajor = 0, ccMinor = 0;
  int numSMs = 0; ///< the persistent sm_90a kernel's grid
};

struct KernelCache {
  std::mutex mutex;
  std::deque<LoadedKernels> loaded; ///< stable addresses
};

KernelCache &kernelCache() {
  static KernelCache *cache = new KernelCache; // leaked, see MgpuRuntime.cpp
  return *cache;
}

/// Loads one embedded module and its functions and raises their dynamic
/// shared-memory limit. On failure the module is unloaded and the failure
/// returned unreported: the caller decides whether it is an error (the
/// mma.sync kernels) or a reason to fall back (the sm_90a kernels in AUTO).
LoadFailure loadModule(const void *image, const char *const (&names)[2][2],
                       const int (&smemBytes)[2], CUmodule &module,
                       CUfunction (&functions)[2][2]) {
  CUresult r = api().cuModuleLoadData(&module, image);
  if (r != CUDA_SUCCESS) {
    module = nullptr;
    return {"cuModuleLoadData", r};
  }
  for (int isBf16 = 0; isBf16 < 2; ++isBf16) {
    for (int is128 = 0; is128 < 2; ++is128) {
      CUfunction &fn = functions[isBf16][is128];
      const int smem = smemBytes[is128];
      LoadFailure f;
      if ((r = api().cuModuleGetFunction(&fn, module, names[isBf16][is128])) !=
          CUDA_SUCCESS)
        f = {"cuModuleGetFunction", r};
      else if (smem > 48 * 1024 &&
               (r = api().cuFuncSetAttribute(
                    fn, CU_FUNC_ATTRIBUTE_MAX_DYNAMIC_SHARED_SIZE_BYTES,
                    smem)) != CUDA_SUCCESS)
        f = {"cuFuncSetAttribute", r};
      if (f) {
        api().cuModuleUnload(module);
        module = nullptr;
        return f;
      }
    }
  }
  return {};
}

/// The kernels of the current context (on `device`), loading the mma.sync
/// module on first use in this context; null (error recorded) on failure.
LoadedKernels *kernelsFor(CUcontext context, CUdevice device) {
  KernelCache &cache = kernelCache();
  std::lock_guard<std::mutex> lock(cache.mutex);
  for (LoadedKernels &k : cache.loaded)
    if (k.context == context)
      return &k;
  LoadedKernels k;
  k.context = context;
  if (!UNISPARSE_CU(cuDeviceGetAttribute, &k.ccMajor,
                    CU_DEVICE_ATTRIBUTE_COMPUTE_CAPABILITY_MAJOR, device) ||
      !UNISPARSE_CU(cuDeviceGetAttribute, &k.ccMinor,
                    CU_DEVICE_ATTRIBUTE_COMPUTE_CAPABILITY_MINOR, device) ||
      !UNISPARSE_CU(cuDeviceGetAttribute, &k.numSMs,
                    CU_DEVICE_ATTRIBUTE_MULTIPROCESSOR_COUNT, device))
    return nullptr;
  if (LoadFailure f = loadModule(
          unisparse_rt_bsa_fatbin, kKernelNames,
          {AttentionTraits<64>::kSmemBytes, AttentionTraits<128>::kSmemBytes},
          k.module, k.functions)) {
    f.report("loading the block-sparse attention kernels (built for CUDA "
             "architectures " UNISPARSE_RT_CUDA_ARCHITECTURES ")");
    return nullptr;
  }
  cache.loaded.push_back(k);
  return &cache.loaded.back();
}

/// Loads the sm_90a module of `k` on first call; false if it did not load
/// (the failure is kept in k.sm90Failure, unreported).
bool sm90Loaded(LoadedKernels &k) {
#if UNISPARSE_RT_HAVE_SM90
  std::lock_guard<std::mutex> lock(kernelCache().mutex);
  if (!k.sm90Tried) {
    k.sm90Tried = true;
    k.sm90Failure =
        loadModule(unisparse_rt_bsa_sm90_fatbin, kSm90KernelNames,
                   {Sm90Traits<64>::kSmemBytes, Sm90Traits<128>::kSmemBytes},
                   k.sm90Module, k.sm90Functions);
  }
  return !k.sm90Failure;
#else
  (void)k;
  return false;
#endif
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

/// The fields that both kernels' parameter blocks have: the outputs, the
/// layout, the sizes the kernels walk, GQA, causality and the scale.
template <typename Params>
void setSharedParams(Params &params, const AttentionTensors &t,
                     const AttentionProblem &p) {
  params.o = t.o->data;
  params.lse = static_cast<float *>(t.lse->data);
  params.counts = static_cast<const int32_t *>(t.counts->data);
  params.indices = static_cast<const int32_t *>(t.indices->data);
  copyStrides(params.oStride, *t.o, 3);
  copyStrides(params.lseStride, *t.lse, 3);
  copyStrides(params.countsStride, *t.counts, 3);
  copyStrides(params.indicesStride, *t.indices, 4);
  params.seqLen = int32_t(p.seqLen);
  params.numKBlocks = int32_t(p.numKBlocks);
  params.maxBlocks = int32_t(p.maxBlocks);
  params.qHeadsPerKVHead = int32_t(p.numQHeads / p.numKVHeads);
  params.qHeadsPerGroup = int32_t(p.numQHeads / p.numGroups);
  params.causal = p.causal ? 1 : 0;
  params.scaleLog2 = float(double(p.scale) * 1.4426950408889634);
}

//===----------------------------------------------------------------------===//
// The sm_90a kernel.
//===----------------------------------------------------------------------===//

/// Why the sm_90a kernel cannot serve this call, or null if it can.
const char *sm90Unsupported(const LoadedKernels &k, const AttentionTensors &t,
                            const AttentionProblem &p) {
#if !UNISPARSE_RT_HAVE_SM90
  (void)k, (void)t, (void)p;
  return "the runtime was built without sm_90a kernels "
         "(UNISPARSE_RUNTIME_CUDA_ARCHITECTURES "
         "= " UNISPARSE_RT_CUDA_ARCHITECTURES " has no 90a)";
#else
  if (k.ccMajor != 9 || k.ccMinor != 0)
    return "the device is not of compute capability 9.0";
  if (!api().cuTensorMapEncodeTiled)
    return "the CUDA driver has no cuTensorMapEncodeTiled (TMA needs a "
           "driver of CUDA 12.0 or later)";
  if (p.blockSize != 128)
    return "it takes block size 128 only";
  if (!allowsVec16(t))
    return "it needs 16-byte aligned q/k/v/o with [B, H, N] strides that "
           "are multiples of 8 elements (TMA)";
  return nullptr;
#endif
}

/// A TMA descriptor of a [B, H, N, D] tensor (unit stride along D): 4-D
/// {D, N, H, B}, boxes of 64 x 128, 128-byte swizzle, zeros out of range.
CUresult encodeTensorMap(CUtensorMap *map, const unisparse_tensor_t &t,
                         bool bf16) {
  cuuint64_t dims[4] = {cuuint64_t(t.sizes[3]), cuuint64_t(t.sizes[2]),
                        cuuint64_t(t.sizes[1]), cuuint64_t(t.sizes[0])};
  // Byte strides of N, H, B; a dimension of size 1 takes the packed stride
  // (any value is allowed for it, but TMA wants multiples of 16 bytes).
  cuuint64_t strides[3];
  cuuint64_t packed = cuuint64_t(t.sizes[3]) * 2;
  for (int i = 0; i < 3; ++i) {
    const int dim = 2 - i; // N, H, B
    strides[i] = t.sizes[dim] == 1 ? packed : cuuint64_t(t.strides[dim]) * 2;
    packed *= cuuint64_t(t.sizes[dim]);
  }
  cuuint32_t box[4] = {64, 128, 1, 1};
  cuuint32_t elementStrides[4] = {1, 1, 1, 1};
  return api().cuTensorMapEncodeTiled(
      map,
      bf16 ? CU_TENSOR_MAP_DATA_TYPE_BFLOAT16 : CU_TENSOR_MAP_DATA_TYPE_FLOAT16,
      4, t.data, dims, strides, box, elementStrides,
      CU_TENSOR_MAP_INTERLEAVE_NONE, CU_TENSOR_MAP_SWIZZLE_128B,
      CU_TENSOR_MAP_L2_PROMOTION_L2_256B, CU_TENSOR_MAP_FLOAT_OOB_FILL_NONE);
}

/// Launches the sm_90a kernel. `forced`: a failure to encode the tensor
/// maps is an error (else the caller falls back to mma.sync).
unisparse_status_t launchSm90(const LoadedKernels &k, const AttentionTensors &t,
                              const AttentionProblem &p, CUstream stream,
                              bool forced, bool &fellBack) {
  fellBack = false;
  const bool bf16 = p.dtype == UNISPARSE_DTYPE_BF16;
  const bool dim128 = p.headDim == 128;
  Sm90Params params;
  std::memset(&params, 0, sizeof(params));
  const struct {
    CUtensorMap *map;
    const unisparse_tensor_t *t;
    const char *name;
  } maps[] = {{&params.tmQ, t.q, "q"},
              {&params.tmK, t.k, "k"},
              {&params.tmV, t.v, "v"}};
  for (const auto &m : maps) {
    const CUresult r = encodeTensorMap(m.map, *m.t, bf16);
    if (r != CUDA_SUCCESS) {
      if (!forced) {
        fellBack = true;
        return UNISPARSE_STATUS_SUCCESS;
      }
      reportFailure(r, "cuTensorMapEncodeTiled", __FILE__, __LINE__, m.name);
      return UNISPARSE_STATUS_CUDA_ERROR;
    }
  }
  setSharedParams(params, t, p);
  params.numQTiles = int32_t((p.seqLen + 127) / 128);
  params.numQHeads = int32_t(p.numQHeads);
  params.batch = int32_t(p.batch);

  // One CTA per tile, or (persistent) at most one per SM; the persistent
  // kernel's tickets count up to tiles + CTAs.
  const int64_t tiles = int64_t(params.numQTiles) * p.numQHeads * p.batch;
  constexpr bool kPersistent = Sm90Traits<128>::kPersistent;
  static_assert(kPersistent == Sm90Traits<64>::kPersistent, "one grid kind");
  const int64_t ctas =
      kPersistent ? std::min<int64_t>(tiles, std::max(k.numSMs, 1)) : tiles;
  if (tiles + (kPersistent ? ctas : 0) > INT32_MAX && !forced) {
    fellBack = true; // mma.sync spreads the grid over x, y and z
    return UNISPARSE_STATUS_SUCCESS;
  }
  if (tiles + (kPersistent ? ctas : 0) > INT32_MAX)
    return setError(UNISPARSE_STATUS_NOT_SUPPORTED,
                    "q: %" PRId64 " query tiles x heads x batch exceed the "
                    "sm_90a kernel's grid",
                    tiles);
  const int threads =
      dim128 ? Sm90Traits<128>::kThreads : Sm90Traits<64>::kThreads;
  const int smem =
      dim128 ? Sm90Traits<128>::kSmemBytes : Sm90Traits<64>::kSmemBytes;
  // The persistent kernel's ticket counter: 4 bytes of the runtime's pool,
  // zeroed, freed after the launch, all ordered on the stream (so calls on
  // other streams have their own, and a captured graph records the
  // allocation, the memset and the free with the launch).
  CUdeviceptr counter = 0;
  if (kPersistent) {
    CUmemoryPool pool = devicePool();
    if (!pool || !UNISPARSE_CU(cuMemAllocFromPoolAsync, &counter,
                               sizeof(int32_t), pool, stream))
      return UNISPARSE_STATUS_CUDA_ERROR;
    params.tileCounter = reinterpret_cast<int32_t *>(counter);
    if (!UNISPARSE_CU(cuMemsetD32Async, counter, 0u, 1, stream)) {
      api().cuMemFreeAsync(counter, stream);
      return UNISPARSE_STATUS_CUDA_ERROR;
    }
  }
  void *args[] = {&params};
  const bool launched = UNISPARSE_CU(
      cuLaunchKernel, k.sm90Functions[bf16][dim128], unsigned(ctas), 1u, 1u,
      unsigned(threads), 1u, 1u, unsigned(smem), stream, args, nullptr);
  if (counter && !UNISPARSE_CU(cuMemFreeAsync, counter, stream))
    return UNISPARSE_STATUS_CUDA_ERROR;
  return launched ? UNISPARSE_STATUS_SUCCESS : UNISPARSE_STATUS_CUDA_ERROR;
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

  // 3. The kernel: sm_90a where it can serve the call (or where forced),
  // else mma.sync.
  LoadedKernels *kernels = kernelsFor(context, device);
  if (!kernels)
    return UNISPARSE_STATUS_CUDA_ERROR;
  const int32_t choice = unisparse_rt_get_cuda_attention_kernel();
  if (choice != UNISPARSE_CUDA_KERNEL_MMA_SYNC) {
    const char *why = sm90Unsupported(*kernels, t, p);
    const bool forced = choice == UNISPARSE_CUDA_KERNEL_SM90;
    if (why && forced)
      return setError(UNISPARSE_STATUS_NOT_SUPPORTED,
                      "the sm_90a attention kernel was forced "
                      "(UNISPARSE_CUDA_KERNEL_SM90), but %s",
                      why);
    if (!why && !sm90Loaded(*kernels)) {
      if (forced) {
        kernels->sm90Failure.report("loading the sm_90a attention kernels "
                                    "(forced: UNISPARSE_CUDA_KERNEL_SM90)");
        return UNISPARSE_STATUS_CUDA_ERROR;
      }
      why = "its module did not load"; // AUTO: mma.sync serves the call
    }
    if (!why) {
      bool fellBack = false;
      const unisparse_status_t s =
          launchSm90(*kernels, t, p, cuStream,
                     choice == UNISPARSE_CUDA_KERNEL_SM90, fellBack);
      if (!fellBack) {
        if (s == UNISPARSE_STATUS_SUCCESS)
          noteCudaAttentionKernel(UNISPARSE_CUDA_KERNEL_SM90);
        return s;
      }
    }
  }

  const bool bf16 = p.dtype == UNISPARSE_DTYPE_BF16;
  const bool dim128 = p.headDim == 128;
  CUfunction fn = kernels->functions[bf16][dim128];

  AttentionParams params = {};
  params.q = t.q->data;
  params.k = t.k->data;
  params.v = t.v->data;
  setSharedParams(params, t, p);
  copyStrides(params.qStride, *t.q, 3);
  copyStrides(params.kStride, *t.k, 3);
  copyStrides(params.vStride, *t.v, 3);
  params.blockSize = int32_t(p.blockSize);
  constexpr int kBlockM = AttentionTraits<64>::kBlockM;
  static_assert(kBlockM == AttentionTraits<128>::kBlockM, "one query tile");
  params.numQTiles = int32_t((p.seqLen + kBlockM - 1) / kBlockM);
  params.vec16 = allowsVec16(t) ? 1 : 0;

  // 4. Launch (asynchronous; kernel faults surface at the next sync).
  const unisparse_status_t s = dim128 ? launch<128>(fn, params, p, cuStream)
                                      : launch<64>(fn, params, p, cuStream);
  if (s == UNISPARSE_STATUS_SUCCESS)
    noteCudaAttentionKernel(UNISPARSE_CUDA_KERNEL_MMA_SYNC);
  return s;
}

unisparse_status_t synchronizeLegacyStream() {
  if (!ensureContext())
    return UNISPARSE_STATUS_CUDA_ERROR;
  if (!UNISPARSE_CU(cuStreamSynchronize, static_cast<CUstream>(nullptr)))
    return UNISPARSE_STATUS_CUDA_ERROR;
  return UNISPARSE_STATUS_SUCCESS;
}

} // namespace unisparse::rt::cuda
