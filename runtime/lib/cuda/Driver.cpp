//===- Driver.cpp - The CUDA driver API, loaded at run time ---------------===//
//
// Loads libcuda.so.1 once, turns failed driver calls into sticky runtime
// errors, and manages the lazily created context (see Driver.h).
//
//===----------------------------------------------------------------------===//

#include "cuda/Driver.h"
#include "common/Environment.h"
#include "common/Error.h"

#include <atomic>
#include <cerrno>
#include <cstdarg>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <dlfcn.h>
#include <mutex>
#include <vector>

namespace unisparse::rt::cuda {

namespace {

DriverApi table;

#define UNISPARSE_STRINGIFY_(x) #x
/// Stringifies after macro expansion: cuMemFree -> "cuMemFree_v2".
#define UNISPARSE_STRINGIFY(x) UNISPARSE_STRINGIFY_(x)

/// The outcome of loading the driver, computed once.
struct LoadState {
  bool ok = false;
  /// Why the library or a symbol could not be loaded ("" if it could).
  char message[512] = "";
  CUresult initResult = CUDA_SUCCESS;
};

const LoadState &loadState() {
  // Leaked on purpose: compiled code unloads its modules from global
  // destructors, which may run after this library's statics are destroyed.
  static const LoadState *state = [] {
    auto *s = new LoadState;
    void *lib = dlopen("libcuda.so.1", RTLD_NOW | RTLD_LOCAL);
    if (!lib) {
      const char *why = dlerror();
      std::snprintf(s->message, sizeof(s->message),
                    "cannot load the CUDA driver library libcuda.so.1 (%s); "
                    "CUDA tensors and the mgpu* functions need an NVIDIA "
                    "driver",
                    why ? why : "unknown reason");
      return s;
    }
    const char *missing = nullptr;
#define UNISPARSE_CUDA_DRIVER_LOAD(fn)                                         \
  table.fn = reinterpret_cast<decltype(table.fn)>(                             \
      dlsym(lib, UNISPARSE_STRINGIFY(fn)));                                    \
  if (!table.fn && !missing)                                                   \
    missing = UNISPARSE_STRINGIFY(fn);
    UNISPARSE_CUDA_DRIVER_FUNCTIONS(UNISPARSE_CUDA_DRIVER_LOAD)
#undef UNISPARSE_CUDA_DRIVER_LOAD
#define UNISPARSE_CUDA_DRIVER_LOAD_OPTIONAL(fn)                                \
  table.fn = reinterpret_cast<decltype(table.fn)>(                             \
      dlsym(lib, UNISPARSE_STRINGIFY(fn)));
    UNISPARSE_CUDA_DRIVER_OPTIONAL_FUNCTIONS(
        UNISPARSE_CUDA_DRIVER_LOAD_OPTIONAL)
#undef UNISPARSE_CUDA_DRIVER_LOAD_OPTIONAL
    if (missing) {
      std::snprintf(s->message, sizeof(s->message),
                    "the CUDA driver library libcuda.so.1 has no function %s "
                    "(the runtime was built with CUDA %d.%d; update the "
                    "driver)",
                    missing, CUDA_VERSION / 1000, CUDA_VERSION % 1000 / 10);
      return s;
    }
    s->initResult = table.cuInit(0);
    s->ok = s->initResult == CUDA_SUCCESS;
    return s;
  }();
  return *state;
}

const char *baseName(const char *path) {
  const char *slash = std::strrchr(path, '/');
  return slash ? slash + 1 : path;
}

/// The default device (mgpuSetDefaultDevice) and the primary contexts this
/// runtime retained, by ordinal (retained once, never released, like
/// upstream's wrappers). Leaked for the same reason as the load state.
std::atomic<int32_t> defaultDevice{0};

struct PrimaryContexts {
  std::mutex mutex;
  std::vector<CUcontext> byOrdinal;
};

PrimaryContexts &primaryContexts() {
  static PrimaryContexts *contexts = new PrimaryContexts;
  return *contexts;
}

/// The primary context of device `ordinal`, retained on first use; null
/// (error recorded) on failure.
CUcontext retainPrimary(int32_t ordinal) {
  PrimaryContexts &pc = primaryContexts();
  std::lock_guard<std::mutex> lock(pc.mutex);
  if (ordinal >= 0 && size_t(ordinal) < pc.byOrdinal.size() &&
      pc.byOrdinal[ordinal])
    return pc.byOrdinal[ordinal];
  CUdevice device;
  if (!UNISPARSE_CU(cuDeviceGet, &device, ordinal))
    return nullptr;
  CUcontext context = nullptr;
  if (!UNISPARSE_CU(cuDevicePrimaryCtxRetain, &context, device))
    return nullptr;
  if (pc.byOrdinal.size() <= size_t(ordinal))
    pc.byOrdinal.resize(ordinal + 1, nullptr);
  pc.byOrdinal[ordinal] = context;
  return context;
}

bool makePrimaryCurrent(int32_t ordinal) {
  CUcontext context = retainPrimary(ordinal);
  return context && UNISPARSE_CU(cuCtxSetCurrent, context);
}

} // namespace

const DriverApi &api() { return table; }

bool loadDriver() {
  const LoadState &state = loadState();
  if (state.ok)
    return true;
  if (state.message[0]) {
    setError(UNISPARSE_STATUS_CUDA_ERROR, "%s", state.message);
    return false;
  }
  return reportFailure(state.initResult, "cuInit", __FILE__, __LINE__);
}

bool reportFailure(CUresult result, const char *call, const char *file,
                   int line, const char *detail) {
  const char *name = nullptr, *text = nullptr;
  if (table.cuGetErrorName &&
      table.cuGetErrorName(result, &name) != CUDA_SUCCESS)
    name = nullptr;
  if (table.cuGetErrorString &&
      table.cuGetErrorString(result, &text) != CUDA_SUCCESS)
    text = nullptr;
  setError(UNISPARSE_STATUS_CUDA_ERROR, "%s failed: %s = %d (%s)%s%s at %s:%d",
           call, name ? name : "CUresult", int(result),
           text ? text : "unknown error", detail ? ": " : "",
           detail ? detail : "", baseName(file), line);
  return false;
}

bool ensureContext() {
  if (!loadDriver())
    return false;
  CUcontext context = nullptr;
  if (!UNISPARSE_CU(cuCtxGetCurrent, &context))
    return false;
  return context || makePrimaryCurrent(defaultDevice.load());
}

namespace {
/// Whether `stream` (if not null) is being captured into a CUDA graph, into
/// `capturing`. False with the error recorded on failure.
bool isCapturing(void *stream, bool &capturing) {
  capturing = false;
  if (!stream)
    return true;
  CUstreamCaptureStatus capture = CU_STREAM_CAPTURE_STATUS_NONE;
  if (!UNISPARSE_CU(cuStreamIsCapturing, static_cast<CUstream>(stream),
                    &capture))
    return false;
  capturing = capture != CU_STREAM_CAPTURE_STATUS_NONE;
  return true;
}

/// The bytes the runtime's pool holds reserved but unused, into `bytes`.
/// False with the error recorded on failure.
bool poolUnusedBytes(cuuint64_t &bytes) {
  bytes = 0;
  CUmemoryPool pool = devicePool();
  if (!pool)
    return false;
  cuuint64_t reserved = 0, used = 0;
  if (!UNISPARSE_CU(cuMemPoolGetAttribute, pool,
                    CU_MEMPOOL_ATTR_RESERVED_MEM_CURRENT, &reserved) ||
      !UNISPARSE_CU(cuMemPoolGetAttribute, pool,
                    CU_MEMPOOL_ATTR_USED_MEM_CURRENT, &used))
    return false;
  if (reserved > used)
    bytes = reserved - used;
  return true;
}
} // namespace

bool deviceFreeMemory(void *stream, size_t &freeBytes, bool &measured) {
  measured = false;
  bool capturing = false;
  if (!ensureContext() || !isCapturing(stream, capturing))
    return false;
  if (capturing)
    return true;
  size_t totalBytes = 0;
  measured = true;
  if (!UNISPARSE_CU(cuMemGetInfo, &freeBytes, &totalBytes))
    return false;
  cuuint64_t unused = 0;
  if (!poolUnusedBytes(unused))
    return false;
  freeBytes += size_t(unused);
  return true;
}

bool poolHoldsUnused(void *stream, int64_t bytes) {
  bool capturing = false;
  cuuint64_t unused = 0;
  return bytes >= 0 && isCapturing(stream, capturing) && !capturing &&
         poolUnusedBytes(unused) && unused >= uint64_t(bytes);
}

namespace {
/// The runtime's pools by device ordinal, leaked on purpose (freed blocks
/// may be released after this library's statics are gone).
struct Pools {
  std::mutex mutex;
  std::vector<CUmemoryPool> byDevice;
};

Pools &pools() {
  static Pools *p = new Pools;
  return *p;
}

/// UNISPARSE_CUDA_POOL_RELEASE: unset or empty keeps every freed block
/// (UINT64_MAX); else a byte count (digits only). False if malformed.
bool releaseThreshold(cuuint64_t &bytes) {
  uint64_t value = UINT64_MAX;
  if (byteCountFromEnvironment("UNISPARSE_CUDA_POOL_RELEASE", value) ==
      ByteCountVar::malformed)
    return false;
  bytes = value;
  return true;
}
} // namespace

CUmemoryPool devicePool() {
  CUdevice device;
  if (!UNISPARSE_CU(cuCtxGetDevice, &device))
    return nullptr;
  Pools &p = pools();
  std::lock_guard<std::mutex> lock(p.mutex);
  if (device >= 0 && size_t(device) < p.byDevice.size() && p.byDevice[device])
    return p.byDevice[device];
  cuuint64_t threshold = 0;
  if (!releaseThreshold(threshold)) {
    setError(UNISPARSE_STATUS_INVALID_ARGUMENT,
             "UNISPARSE_CUDA_POOL_RELEASE = '%s' is not a byte count",
             std::getenv("UNISPARSE_CUDA_POOL_RELEASE"));
    return nullptr;
  }
  CUmemPoolProps props = {};
  props.allocType = CU_MEM_ALLOCATION_TYPE_PINNED;
  props.location.type = CU_MEM_LOCATION_TYPE_DEVICE;
  props.location.id = device;
  CUmemoryPool pool = nullptr;
  if (!UNISPARSE_CU(cuMemPoolCreate, &pool, &props))
    return nullptr;
  if (!UNISPARSE_CU(cuMemPoolSetAttribute, pool,
                    CU_MEMPOOL_ATTR_RELEASE_THRESHOLD, &threshold))
    return nullptr;
  if (p.byDevice.size() <= size_t(device))
    p.byDevice.resize(device + 1, nullptr);
  p.byDevice[device] = pool;
  return pool;
}

bool setDefaultDevice(int32_t ordinal) {
  if (!loadDriver())
    return false;
  CUdevice device;
  if (!UNISPARSE_CU(cuDeviceGet, &device, ordinal))
    return false;
  defaultDevice.store(ordinal);
  CUcontext context = nullptr;
  if (!UNISPARSE_CU(cuCtxGetCurrent, &context))
    return false;
  if (context) {
    CUdevice current;
    if (!UNISPARSE_CU(cuCtxGetDevice, &current))
      return false;
    if (current == device)
      return true;
  }
  return makePrimaryCurrent(ordinal);
}

void setErrorIfClear(unisparse_status_t status, const char *fmt, ...) {
  if (unisparse_rt_last_error() != UNISPARSE_STATUS_SUCCESS)
    return;
  char message[512];
  va_list args;
  va_start(args, fmt);
  std::vsnprintf(message, sizeof(message), fmt, args);
  va_end(args);
  setError(status, "%s", message);
}

} // namespace unisparse::rt::cuda
