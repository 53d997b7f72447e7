//===- Driver.h - The CUDA driver API, loaded at run time -------*- C++ -*-===//
//
// The runtime reaches the CUDA driver through a table of function pointers
// that is filled from libcuda.so.1 with dlopen/dlsym at the first CUDA call,
// so that the library links and loads on machines without a driver (its CPU
// path keeps working there; CUDA calls fail with UNISPARSE_STATUS_CUDA_ERROR
// and a message). Every driver call goes through UNISPARSE_CU, which records
// a failure as the thread's sticky error (common/Error.h) and never aborts.
//
//===----------------------------------------------------------------------===//

#ifndef UNISPARSE_RUNTIME_LIB_CUDA_DRIVER_H
#define UNISPARSE_RUNTIME_LIB_CUDA_DRIVER_H

#include "unisparse/runtime/unisparse_runtime.h"

#include <cuda.h>

namespace unisparse::rt::cuda {

/// The driver functions the runtime uses. cuda.h maps some names to
/// versioned symbols (cuMemFree -> cuMemFree_v2, ...); the table stores and
/// looks up the versioned ones, matching the declarations of this cuda.h.
#define UNISPARSE_CUDA_DRIVER_FUNCTIONS(X)                                     \
  X(cuInit)                                                                    \
  X(cuGetErrorName)                                                            \
  X(cuGetErrorString)                                                          \
  X(cuDeviceGet)                                                               \
  X(cuDevicePrimaryCtxRetain)                                                  \
  X(cuCtxGetCurrent)                                                           \
  X(cuCtxSetCurrent)                                                           \
  X(cuCtxGetDevice)                                                            \
  X(cuDeviceGetAttribute)                                                      \
  X(cuModuleLoadData)                                                          \
  X(cuModuleLoadDataEx)                                                        \
  X(cuModuleUnload)                                                            \
  X(cuModuleGetFunction)                                                       \
  X(cuFuncSetAttribute)                                                        \
  X(cuLaunchKernel)                                                            \
  X(cuLaunchKernelEx)                                                          \
  X(cuStreamCreate)                                                            \
  X(cuStreamDestroy)                                                           \
  X(cuStreamSynchronize)                                                       \
  X(cuStreamWaitEvent)                                                         \
  X(cuStreamIsCapturing)                                                       \
  X(cuEventCreate)                                                             \
  X(cuEventDestroy)                                                            \
  X(cuEventRecord)                                                             \
  X(cuEventSynchronize)                                                        \
  X(cuMemAllocAsync)                                                           \
  X(cuMemAllocFromPoolAsync)                                                   \
  X(cuMemPoolCreate)                                                           \
  X(cuMemPoolSetAttribute)                                                     \
  X(cuMemPoolGetAttribute)                                                     \
  X(cuMemAllocManaged)                                                         \
  X(cuMemFreeAsync)                                                            \
  X(cuMemFree)                                                                 \
  X(cuMemGetInfo)                                                              \
  X(cuMemcpyAsync)                                                             \
  X(cuMemsetD32Async)                                                          \
  X(cuMemsetD16Async)                                                          \
  X(cuPointerGetAttributes)

/// Functions that only some features need (null when the driver lacks
/// them; the feature then reports itself unsupported): TMA descriptors for
/// the sm_90a attention kernel (drivers of CUDA 12.0 and later).
#define UNISPARSE_CUDA_DRIVER_OPTIONAL_FUNCTIONS(X) X(cuTensorMapEncodeTiled)

struct DriverApi {
#define UNISPARSE_CUDA_DRIVER_MEMBER(fn) decltype(&::fn) fn = nullptr;
  UNISPARSE_CUDA_DRIVER_FUNCTIONS(UNISPARSE_CUDA_DRIVER_MEMBER)
  UNISPARSE_CUDA_DRIVER_OPTIONAL_FUNCTIONS(UNISPARSE_CUDA_DRIVER_MEMBER)
#undef UNISPARSE_CUDA_DRIVER_MEMBER
};

/// The table. Only valid after loadDriver() (or ensureContext()) succeeded.
const DriverApi &api();

/// Opens libcuda.so.1, resolves every function and runs cuInit(0), once per
/// process. On failure (now or at the first attempt) records
/// UNISPARSE_STATUS_CUDA_ERROR and returns false.
bool loadDriver();

/// Records the failure of a driver call: `call` is the function's name; the
/// message adds cuGetErrorName/String, `detail` (if any) and file:line.
/// Returns false.
bool reportFailure(CUresult result, const char *call, const char *file,
                   int line, const char *detail = nullptr);

/// True if `result` is CUDA_SUCCESS, else reportFailure(...).
inline bool check(CUresult result, const char *call, const char *file,
                  int line) {
  return result == CUDA_SUCCESS || reportFailure(result, call, file, line);
}

/// Calls driver function `fn` with the given arguments and evaluates to true
/// on success; on failure the thread's sticky error becomes
/// UNISPARSE_STATUS_CUDA_ERROR with "<fn> failed: <name> (<string>) at
/// <file>:<line>". The only way the runtime calls the driver.
#define UNISPARSE_CU(fn, ...)                                                  \
  ::unisparse::rt::cuda::check(::unisparse::rt::cuda::api().fn(__VA_ARGS__),   \
                               #fn, __FILE__, __LINE__)

/// Makes sure the driver is initialized and a context is current on the
/// calling thread: the current one if any (e.g. PyTorch's), else the primary
/// context of the default device (retained once, then made current). Called
/// first by every entry point that needs the driver, so the context is
/// created lazily, also when that happens in a global constructor.
bool ensureContext();

/// Free memory of the current context's device (cuMemGetInfo, after
/// ensureContext) into `freeBytes`, and `measured = true`; but while
/// `stream` (if not null) is being captured into a CUDA graph, nothing is
/// queried (cuMemGetInfo is no stream operation) and `measured = false`.
/// Memory the runtime's pool holds reserved but unused counts as free.
/// False with the error recorded on failure.
bool deviceFreeMemory(void *stream, size_t &freeBytes, bool &measured);

/// True if the runtime's pool on the current context's device (after
/// ensureContext) holds at least `bytes` reserved but unused, so that a
/// workspace of that size needs no new device memory: two pool attribute
/// reads, no cuMemGetInfo (a round trip to the driver's resource manager).
/// False when it does not, while `stream` (if not null) is being captured
/// into a CUDA graph (nothing is queried then, as in deviceFreeMemory), or
/// when a query fails (the error recorded).
bool poolHoldsUnused(void *stream, int64_t bytes);

/// The runtime's own stream-ordered memory pool on the current context's
/// device (after ensureContext), created on first use. Freed blocks stay
/// reserved in it up to UNISPARSE_CUDA_POOL_RELEASE bytes (unset: all of
/// them, as PyTorch's caching allocator keeps its blocks), so that a call
/// does not map its buffers anew after every synchronization, as the
/// device's default pool (release threshold 0) would. Null with the error
/// recorded on failure (also for a malformed UNISPARSE_CUDA_POOL_RELEASE).
CUmemoryPool devicePool();

/// Sets the default device (mgpuSetDefaultDevice) and makes its primary
/// context current on this thread unless the current context is already on
/// that device.
bool setDefaultDevice(int32_t ordinal);

/// Records a failure that follows from an earlier one (e.g. a null module
/// after a failed load) only if no error is pending, so that the sticky
/// error keeps the root cause. Printf-style.
void setErrorIfClear(unisparse_status_t status, const char *fmt, ...)
#if defined(__GNUC__)
    __attribute__((format(printf, 2, 3)))
#endif
    ;

} // namespace unisparse::rt::cuda

#endif // UNISPARSE_RUNTIME_LIB_CUDA_DRIVER_H
