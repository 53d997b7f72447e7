//===- MgpuRuntime.cpp - The mgpu* functions of compiled GPU host code ----===//
//
// MLIR's gpu-to-llvm lowering turns gpu.binary, gpu.launch_func, gpu.alloc,
// gpu.memcpy, gpu.wait, ... into calls of `mgpu*` functions, which upstream
// implements in libmlir_cuda_runtime (CudaRuntimeWrappers.cpp). The packaged
// LLVM ships no such library, so the runtime provides them, with the same C
// ABI, on the CUDA driver API (cuda/Driver.h). Differences from upstream:
//  - no abort on failure: every driver call is checked with UNISPARSE_CU, a
//    failure becomes the thread's sticky error and the function returns
//    null / does nothing; a call that only fails because an earlier one did
//    (a null module or function) records nothing over the root cause;
//  - the context is the current one if any (PyTorch's), else the primary
//    context of the default device, made current lazily (module loads run
//    in global constructors, before main);
//  - memory is stream-ordered (cuMemAllocFromPoolAsync / cuMemFreeAsync)
//    from the runtime's own pool, which keeps freed blocks reserved
//    (cuda::devicePool);
//  - the thread's current stream (unisparse_rt_set_current_stream) replaces
//    the streams the compiled code creates, and syncs/destroys of it are
//    no-ops, so compiled code can run inside CUDA graph capture;
//  - a launch with a zero grid dimension launches nothing.
//
//===----------------------------------------------------------------------===//

#include "common/Error.h"
#include "cuda/Driver.h"

#include <algorithm>
#include <cinttypes>
#include <cstdint>
#include <map>
#include <mutex>
#include <string>
#include <utility>
#include <vector>

using namespace unisparse::rt;
using namespace unisparse::rt::cuda;

namespace {

/// Dynamic shared memory above which a kernel must opt in (48 KiB).
constexpr int32_t kDefaultMaxDynamicSmem = 48 * 1024;

/// A managed allocation. (A type of this file, so that the container's
/// template code stays internal instead of being exported as std::vector
/// code.)
struct ManagedAllocation {
  void *ptr;
};

/// A device's launch limits (grid x/y/z, block x/y/z, then threads per
/// block), read from the driver once per device.
struct LaunchLimits {
  bool known = false;
  int values[7] = {};
};

/// mgpuModuleGetFunction's cache, the managed allocations and what launches
/// read once, leaked on purpose: compiled code calls mgpuModuleUnload from a
/// global destructor, possibly after this library's statics are gone.
struct State {
  std::mutex mutex;
  std::map<std::pair<CUmodule, std::string>, CUfunction> functions;
  /// Pointers from mgpuMemAlloc(isHostShared); few, so a plain vector.
  std::vector<ManagedAllocation> managed;
  /// Launch limits by device ordinal.
  std::vector<LaunchLimits> limits;
  /// The dynamic shared-memory limit already raised per function (bytes).
  std::map<CUfunction, int32_t> dynamicSmem;
};

State &state() {
  static State *s = new State;
  return *s;
}

CUstream asStream(void *stream) { return static_cast<CUstream>(stream); }

/// True if `stream` is the thread's current stream (syncs/destroys of it
/// are no-ops).
bool isCurrentStream(void *stream) {
  void *current = unisparse_rt_get_current_stream();
  return current && stream == current;
}

/// Checks that a launch dimension fits the driver's unsigned int.
bool fitsDim(int64_t x) { return x >= 0 && x <= int64_t(UINT32_MAX); }

bool checkLaunchDims(const char *entry, const int64_t (&dims)[9], int n) {
  for (int i = 0; i < n; ++i) {
    if (!fitsDim(dims[i])) {
      setError(UNISPARSE_STATUS_INVALID_ARGUMENT,
               "%s: launch dimension %d = %" PRId64 " is outside [0, 2^32 - 1]",
               entry, i, dims[i]);
      return false;
    }
  }
  return true;
}

/// The current device's launch limits, read once per device (each launch
/// asks for them; 7 driver queries a launch cost more host time than the
/// launch itself).
bool launchLimits(LaunchLimits &out) {
  static const CUdevice_attribute kAttributes[7] = {
      CU_DEVICE_ATTRIBUTE_MAX_GRID_DIM_X,
      CU_DEVICE_ATTRIBUTE_MAX_GRID_DIM_Y,
      CU_DEVICE_ATTRIBUTE_MAX_GRID_DIM_Z,
      CU_DEVICE_ATTRIBUTE_MAX_BLOCK_DIM_X,
      CU_DEVICE_ATTRIBUTE_MAX_BLOCK_DIM_Y,
      CU_DEVICE_ATTRIBUTE_MAX_BLOCK_DIM_Z,
      CU_DEVICE_ATTRIBUTE_MAX_THREADS_PER_BLOCK};
  CUdevice device;
  if (!UNISPARSE_CU(cuCtxGetDevice, &device))
    return false;
  State &s = state();
  {
    std::lock_guard<std::mutex> lock(s.mutex);
    if (device >= 0 && size_t(device) < s.limits.size() &&
        s.limits[device].known) {
      out = s.limits[device];
      return true;
    }
  }
  LaunchLimits read;
  for (int i = 0; i < 7; ++i)
    if (!UNISPARSE_CU(cuDeviceGetAttribute, &read.values[i], kAttributes[i],
                      device))
      return false;
  read.known = true;
  std::lock_guard<std::mutex> lock(s.mutex);
  if (s.limits.size() <= size_t(device))
    s.limits.resize(device + 1);
  s.limits[device] = read;
  out = read;
  return true;
}

/// Checks a launch (grid x/y/z, block x/y/z) against the current device's
/// limits: the driver would reject it with a bare CUDA_ERROR_INVALID_VALUE,
/// and compiled code cannot say which dimension was too large.
bool checkDeviceLimits(const char *entry, const int64_t (&dims)[9]) {
  static const char *const kNames[6] = {"grid x",  "grid y",  "grid z",
                                        "block x", "block y", "block z"};
  LaunchLimits limits;
  if (!launchLimits(limits))
    return false;
  for (int i = 0; i < 6; ++i) {
    if (dims[i] > limits.values[i]) {
      setError(UNISPARSE_STATUS_INVALID_ARGUMENT,
               "%s: %s dimension %" PRId64
               " exceeds the device limit %d (a long sequence needs its "
               "estimation loops mapped to grid x)",
               entry, kNames[i], dims[i], limits.values[i]);
      return false;
    }
  }
  const int maxThreads = limits.values[6];
  if (dims[3] * dims[4] * dims[5] > maxThreads) {
    setError(UNISPARSE_STATUS_INVALID_ARGUMENT,
             "%s: %" PRId64 " threads per block exceed the device limit %d",
             entry, dims[3] * dims[4] * dims[5], maxThreads);
    return false;
  }
  return true;
}

/// Raises `fn`'s dynamic shared-memory limit to `smem` bytes where it is
/// above the default 48 KiB, once per function and size (the attribute
/// stays set; compiled code launches the same kernels on every call).
bool allowDynamicSmem(CUfunction fn, int32_t smem) {
  if (smem <= kDefaultMaxDynamicSmem)
    return true;
  State &s = state();
  {
    std::lock_guard<std::mutex> lock(s.mutex);
    auto it = s.dynamicSmem.find(fn);
    if (it != s.dynamicSmem.end() && it->second >= smem)
      return true;
  }
  if (!UNISPARSE_CU(cuFuncSetAttribute, fn,
                    CU_FUNC_ATTRIBUTE_MAX_DYNAMIC_SHARED_SIZE_BYTES, smem))
    return false;
  std::lock_guard<std::mutex> lock(s.mutex);
  int32_t &raised = s.dynamicSmem[fn];
  raised = std::max(raised, smem);
  return true;
}

} // namespace

extern "C" {

//===----------------------------------------------------------------------===//
// Modules and functions.
//===----------------------------------------------------------------------===//

void *mgpuModuleLoad(void *data, int64_t /*size*/) {
  if (!data) {
    setError(UNISPARSE_STATUS_NULL_POINTER, "mgpuModuleLoad: image is null");
    return nullptr;
  }
  if (!ensureContext())
    return nullptr;
  CUmodule module = nullptr;
  if (!UNISPARSE_CU(cuModuleLoadData, &module, data))
    return nullptr;
  return module;
}

void *mgpuModuleLoadJIT(void *data, int32_t optLevel) {
  if (!data) {
    setError(UNISPARSE_STATUS_NULL_POINTER, "mgpuModuleLoadJIT: PTX is null");
    return nullptr;
  }
  if (!ensureContext())
    return nullptr;
  optLevel = optLevel < 0 ? 0 : optLevel > 4 ? 4 : optLevel;
  char log[2048] = "";
  CUjit_option options[] = {CU_JIT_ERROR_LOG_BUFFER,
                            CU_JIT_ERROR_LOG_BUFFER_SIZE_BYTES,
                            CU_JIT_OPTIMIZATION_LEVEL};
  void *values[] = {log, reinterpret_cast<void *>(uintptr_t(sizeof(log))),
                    reinterpret_cast<void *>(uintptr_t(optLevel))};
  CUmodule module = nullptr;
  const CUresult result =
      api().cuModuleLoadDataEx(&module, data, 3, options, values);
  if (result != CUDA_SUCCESS) {
    log[sizeof(log) - 1] = '\0';
    reportFailure(result, "cuModuleLoadDataEx", __FILE__, __LINE__,
                  log[0] ? log : "(empty JIT log)");
    return nullptr;
  }
  return module;
}

void mgpuModuleUnload(void *module) {
  if (!module)
    return; // the failed load already recorded why
  {
    State &s = state();
    std::lock_guard<std::mutex> lock(s.mutex);
    auto it = s.functions.lower_bound({static_cast<CUmodule>(module), ""});
    while (it != s.functions.end() && it->first.first == module) {
      // A later module's function may get the same handle.
      s.dynamicSmem.erase(it->second);
      it = s.functions.erase(it);
    }
  }
  if (!ensureContext())
    return;
  UNISPARSE_CU(cuModuleUnload, static_cast<CUmodule>(module));
}

void *mgpuModuleGetFunction(void *module, const char *name) {
  if (!module || !name) {
    setErrorIfClear(UNISPARSE_STATUS_NULL_POINTER,
                    "mgpuModuleGetFunction: %s is null",
                    module ? "the kernel name" : "the module");
    return nullptr;
  }
  const auto key =
      std::make_pair(static_cast<CUmodule>(module), std::string(name));
  State &s = state();
  {
    std::lock_guard<std::mutex> lock(s.mutex);
    auto it = s.functions.find(key);
    if (it != s.functions.end())
      return it->second;
  }
  if (!ensureContext())
    return nullptr;
  CUfunction function = nullptr;
  if (!UNISPARSE_CU(cuModuleGetFunction, &function, key.first, name))
    return nullptr;
  std::lock_guard<std::mutex> lock(s.mutex);
  s.functions.emplace(key, function);
  return function;
}

//===----------------------------------------------------------------------===//
// Launches.
//===----------------------------------------------------------------------===//

void mgpuLaunchKernel(void *function, int64_t gridX, int64_t gridY,
                      int64_t gridZ, int64_t blockX, int64_t blockY,
                      int64_t blockZ, int32_t smem, void *stream, void **params,
                      void **extra, int64_t /*paramsCount*/) {
  if (!function) {
    setErrorIfClear(UNISPARSE_STATUS_NULL_POINTER,
                    "mgpuLaunchKernel: the function is null");
    return;
  }
  const int64_t dims[9] = {gridX, gridY, gridZ, blockX, blockY, blockZ};
  if (!checkLaunchDims("mgpuLaunchKernel", dims, 6))
    return;
  if (gridX == 0 || gridY == 0 || gridZ == 0)
    return; // an empty grid: nothing to run
  if (!ensureContext() || !checkDeviceLimits("mgpuLaunchKernel", dims))
    return;
  CUfunction fn = static_cast<CUfunction>(function);
  if (!allowDynamicSmem(fn, smem))
    return;
  UNISPARSE_CU(cuLaunchKernel, fn, unsigned(gridX), unsigned(gridY),
               unsigned(gridZ), unsigned(blockX), unsigned(blockY),
               unsigned(blockZ), unsigned(smem), asStream(stream), params,
               extra);
}

void mgpuLaunchClusterKernel(void *function, int64_t clusterX, int64_t clusterY,
                             int64_t clusterZ, int64_t gridX, int64_t gridY,
                             int64_t gridZ, int64_t blockX, int64_t blockY,
                             int64_t blockZ, int32_t smem, void *stream,
                             void **params, void **extra) {
  if (!function) {
    setErrorIfClear(UNISPARSE_STATUS_NULL_POINTER,
                    "mgpuLaunchClusterKernel: the function is null");
    return;
  }
  const int64_t dims[9] = {gridX,  gridY,    gridZ,    blockX,  blockY,
                           blockZ, clusterX, clusterY, clusterZ};
  if (!checkLaunchDims("mgpuLaunchClusterKernel", dims, 9))
    return;
  if (gridX == 0 || gridY == 0 || gridZ == 0)
    return;
  if (!ensureContext() || !checkDeviceLimits("mgpuLaunchClusterKernel", dims))
    return;
  CUfunction fn = static_cast<CUfunction>(function);
  if (!allowDynamicSmem(fn, smem))
    return;
  // More than 8 CTAs per cluster is a non-portable size that must be
  // allowed explicitly (as upstream does).
  if (clusterX * clusterY * clusterZ > 8 &&
      !UNISPARSE_CU(cuFuncSetAttribute, fn,
                    CU_FUNC_ATTRIBUTE_NON_PORTABLE_CLUSTER_SIZE_ALLOWED, 1))
    return;
  CUlaunchAttribute attribute = {};
  attribute.id = CU_LAUNCH_ATTRIBUTE_CLUSTER_DIMENSION;
  attribute.value.clusterDim.x = unsigned(clusterX);
  attribute.value.clusterDim.y = unsigned(clusterY);
  attribute.value.clusterDim.z = unsigned(clusterZ);
  CUlaunchConfig config = {};
  config.gridDimX = unsigned(gridX);
  config.gridDimY = unsigned(gridY);
  config.gridDimZ = unsigned(gridZ);
  config.blockDimX = unsigned(blockX);
  config.blockDimY = unsigned(blockY);
  config.blockDimZ = unsigned(blockZ);
  config.sharedMemBytes = unsigned(smem);
  config.hStream = asStream(stream);
  config.attrs = &attribute;
  config.numAttrs = 1;
  UNISPARSE_CU(cuLaunchKernelEx, &config, fn, params, extra);
}

//===----------------------------------------------------------------------===//
// Streams and events.
//===----------------------------------------------------------------------===//

void *mgpuStreamCreate(void) {
  if (void *current = unisparse_rt_get_current_stream())
    return current;
  if (!ensureContext())
    return nullptr;
  CUstream stream = nullptr;
  if (!UNISPARSE_CU(cuStreamCreate, &stream, CU_STREAM_NON_BLOCKING))
    return nullptr;
  return stream;
}

void mgpuStreamSynchronize(void *stream) {
  if (isCurrentStream(stream))
    return; // stream order suffices; no host sync (capturable)
  if (!ensureContext())
    return;
  UNISPARSE_CU(cuStreamSynchronize, asStream(stream));
}

void mgpuStreamDestroy(void *stream) {
  if (!stream || isCurrentStream(stream))
    return; // the legacy stream, or the caller's current stream
  if (!ensureContext())
    return;
  UNISPARSE_CU(cuStreamDestroy, asStream(stream));
}

void *mgpuEventCreate(void) {
  if (!ensureContext())
    return nullptr;
  CUevent event = nullptr;
  if (!UNISPARSE_CU(cuEventCreate, &event, CU_EVENT_DISABLE_TIMING))
    return nullptr;
  return event;
}

void mgpuEventDestroy(void *event) {
  if (!event)
    return;
  if (!ensureContext())
    return;
  UNISPARSE_CU(cuEventDestroy, static_cast<CUevent>(event));
}

void mgpuEventSynchronize(void *event) {
  if (!event) {
    setErrorIfClear(UNISPARSE_STATUS_NULL_POINTER,
                    "mgpuEventSynchronize: the event is null");
    return;
  }
  if (!ensureContext())
    return;
  UNISPARSE_CU(cuEventSynchronize, static_cast<CUevent>(event));
}

void mgpuEventRecord(void *event, void *stream) {
  if (!event) {
    setErrorIfClear(UNISPARSE_STATUS_NULL_POINTER,
                    "mgpuEventRecord: the event is null");
    return;
  }
  if (!ensureContext())
    return;
  UNISPARSE_CU(cuEventRecord, static_cast<CUevent>(event), asStream(stream));
}

void mgpuStreamWaitEvent(void *stream, void *event) {
  if (!event) {
    setErrorIfClear(UNISPARSE_STATUS_NULL_POINTER,
                    "mgpuStreamWaitEvent: the event is null");
    return;
  }
  if (!ensureContext())
    return;
  UNISPARSE_CU(cuStreamWaitEvent, asStream(stream), static_cast<CUevent>(event),
               0);
}

//===----------------------------------------------------------------------===//
// Memory.
//===----------------------------------------------------------------------===//

void *mgpuMemAlloc(int64_t bytes, void *stream, int8_t isHostShared) {
  if (bytes < 0) {
    setError(UNISPARSE_STATUS_INVALID_ARGUMENT,
             "mgpuMemAlloc: bytes = %" PRId64 " is negative", bytes);
    return nullptr;
  }
  if (bytes == 0)
    return nullptr;
  if (!ensureContext())
    return nullptr;
  CUdeviceptr ptr = 0;
  if (isHostShared) {
    if (!UNISPARSE_CU(cuMemAllocManaged, &ptr, size_t(bytes),
                      CU_MEM_ATTACH_GLOBAL))
      return nullptr;
    State &s = state();
    std::lock_guard<std::mutex> lock(s.mutex);
    s.managed.push_back({reinterpret_cast<void *>(ptr)});
  } else {
    CUmemoryPool pool = devicePool();
    if (!pool || !UNISPARSE_CU(cuMemAllocFromPoolAsync, &ptr, size_t(bytes),
                               pool, asStream(stream)))
      return nullptr;
  }
  return reinterpret_cast<void *>(ptr);
}

void mgpuMemFree(void *ptr, void *stream) {
  if (!ptr)
    return;
  if (!ensureContext())
    return;
  bool managed = false;
  {
    State &s = state();
    std::lock_guard<std::mutex> lock(s.mutex);
    auto it =
        std::find_if(s.managed.begin(), s.managed.end(),
                     [&](const ManagedAllocation &m) { return m.ptr == ptr; });
    managed = it != s.managed.end();
    if (managed)
      s.managed.erase(it);
  }
  const CUdeviceptr dptr = reinterpret_cast<CUdeviceptr>(ptr);
  if (managed)
    UNISPARSE_CU(cuMemFree, dptr); // not stream-ordered: synchronous
  else
    UNISPARSE_CU(cuMemFreeAsync, dptr, asStream(stream));
}

void mgpuMemcpy(void *dst, void *src, int64_t bytes, void *stream) {
  if (bytes < 0) {
    setError(UNISPARSE_STATUS_INVALID_ARGUMENT,
             "mgpuMemcpy: bytes = %" PRId64 " is negative", bytes);
    return;
  }
  if (bytes == 0)
    return;
  if (!ensureContext())
    return;
  UNISPARSE_CU(cuMemcpyAsync, reinterpret_cast<CUdeviceptr>(dst),
               reinterpret_cast<CUdeviceptr>(src), size_t(bytes),
               asStream(stream));
}

void mgpuMemset32(void *dst, int32_t value, int64_t count, void *stream) {
  if (count < 0) {
    setError(UNISPARSE_STATUS_INVALID_ARGUMENT,
             "mgpuMemset32: count = %" PRId64 " is negative", count);
    return;
  }
  if (count == 0)
    return;
  if (!ensureContext())
    return;
  UNISPARSE_CU(cuMemsetD32Async, reinterpret_cast<CUdeviceptr>(dst),
               uint32_t(value), size_t(count), asStream(stream));
}

void mgpuMemset16(void *dst, int16_t value, int64_t count, void *stream) {
  if (count < 0) {
    setError(UNISPARSE_STATUS_INVALID_ARGUMENT,
             "mgpuMemset16: count = %" PRId64 " is negative", count);
    return;
  }
  if (count == 0)
    return;
  if (!ensureContext())
    return;
  UNISPARSE_CU(cuMemsetD16Async, reinterpret_cast<CUdeviceptr>(dst),
               uint16_t(value), size_t(count), asStream(stream));
}

void mgpuSetDefaultDevice(int32_t device) { setDefaultDevice(device); }

} // extern "C"
