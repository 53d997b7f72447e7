//===- unisparse_runtime.h - UniSparse runtime C ABI ------------*- C -*-===//
//
// The C ABI of libunisparse_runtime. It builds without MLIR. It provides
//  (a) the block-sparse attention entry point for direct callers (Python, C/C++
//      embedders), taking strided tensor descriptors;
//  (b) the `_mlir_ciface_unisparse_rt_*` shims that code lowered by
//      `convert-unisparse-to-runtime` calls, taking MLIR memref descriptors;
//  (c) error reporting: every entry point returns a status code, and the
//      message of the most recent failure on the calling thread is kept.
//
// Nothing here aborts or exits on bad input.
//
//===----------------------------------------------------------------------===//

#ifndef UNISPARSE_RUNTIME_UNISPARSE_RUNTIME_H
#define UNISPARSE_RUNTIME_UNISPARSE_RUNTIME_H

#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

#if defined(_WIN32)
#define UNISPARSE_RT_EXPORT __declspec(dllexport)
#else
#define UNISPARSE_RT_EXPORT __attribute__((visibility("default")))
#endif

/// Status codes returned by every runtime entry point.
typedef enum unisparse_status {
  UNISPARSE_STATUS_SUCCESS = 0,
  UNISPARSE_STATUS_NULL_POINTER = 1,      ///< a required pointer is null
  UNISPARSE_STATUS_INVALID_RANK = 2,      ///< a tensor has the wrong rank
  UNISPARSE_STATUS_SHAPE_MISMATCH = 3,    ///< sizes disagree between tensors
  UNISPARSE_STATUS_UNSUPPORTED_DTYPE = 4, ///< dtype not supported / mixed
  UNISPARSE_STATUS_INVALID_STRIDE = 5,    ///< negative or overlapping strides
  UNISPARSE_STATUS_INVALID_LAYOUT = 6,    ///< counts/indices out of range
  UNISPARSE_STATUS_INVALID_ARGUMENT = 7,  ///< any other bad scalar argument
  UNISPARSE_STATUS_DEVICE_MISMATCH = 8,   ///< tensors on different devices
  UNISPARSE_STATUS_NOT_SUPPORTED = 9,     ///< valid but not built/supported
  UNISPARSE_STATUS_CUDA_ERROR = 10,       ///< a CUDA driver call failed
  UNISPARSE_STATUS_OUT_OF_MEMORY = 11,
} unisparse_status_t;

/// Element types.
typedef enum unisparse_dtype {
  UNISPARSE_DTYPE_F32 = 0,
  UNISPARSE_DTYPE_F16 = 1,
  UNISPARSE_DTYPE_BF16 = 2,
  UNISPARSE_DTYPE_I32 = 3,
} unisparse_dtype_t;

/// Where a tensor lives.
typedef enum unisparse_device {
  UNISPARSE_DEVICE_CPU = 0,
  UNISPARSE_DEVICE_CUDA = 1,
} unisparse_device_t;

#define UNISPARSE_MAX_RANK 4

/// A strided view of a tensor. Sizes and strides are in elements; only the
/// first `rank` entries are read.
typedef struct unisparse_tensor {
  void *data;
  int32_t dtype;  ///< unisparse_dtype_t
  int32_t device; ///< unisparse_device_t
  int32_t rank;
  int64_t sizes[UNISPARSE_MAX_RANK];
  int64_t strides[UNISPARSE_MAX_RANK];
} unisparse_tensor_t;

/// Scalar parameters of block-sparse attention.
typedef struct unisparse_attention_params {
  int64_t block_size; ///< square block size S (> 0)
  int32_t causal;     ///< 0 or 1: causal mask inside the diagonal block
  float scale;        ///< softmax scale; <= 0 selects 1/sqrt(D)
} unisparse_attention_params_t;

/// Exact block-sparse attention (see docs/Rationale.md for the semantics).
///
///   q       [B, Hq,  N, D]   f32 | f16 | bf16
///   k, v    [B, Hkv, N, D]   same dtype as q, Hq % Hkv == 0
///   counts  [B, Hg, NBq]     i32, Hq % Hg == 0, NBq = ceil(N / S)
///   indices [B, Hg, NBq, M]  i32, M <= NBk = ceil(N / S); the first
///                            counts[b,g,i] entries of each row are strictly
///                            ascending key-block indices in [0, NBk)
///   o       [B, Hq,  N, D]   same dtype as q (written)
///   lse     [B, Hq,  N]      f32, natural-log sum of exp(scale * q.k) over the
///                            visited keys (written; -inf for a row with none)
///
/// Query head h reads kv head h / (Hq / Hkv) and the layout of head group
/// h / (Hq / Hg). Accumulation is in f32. `stream` is a CUDA stream
/// (CUstream) for CUDA tensors and must be null for CPU tensors.
///
/// CUDA tensors (device = cuda, all of them; device pointers of the current
/// context's device): f16 or bf16, D in {64, 128}, S in {64, 128}, unit
/// stride along D; anything else is rejected with a status before any
/// launch. The call is asynchronous: it queues the kernel on `stream` (null:
/// the thread's current stream, see unisparse_rt_set_current_stream, else
/// the legacy default stream) and returns. The layout lives on the device
/// and is not checked on the host: the kernel clamps each count to [0, M]
/// and skips every index outside [0, NBk) or not greater than the previous
/// visited one (duplicates, unsorted entries), so a bad layout cannot make
/// it access memory outside the tensors; a valid layout is unaffected.
UNISPARSE_RT_EXPORT unisparse_status_t unisparse_rt_block_sparse_attention(
    const unisparse_tensor_t *q, const unisparse_tensor_t *k,
    const unisparse_tensor_t *v, const unisparse_tensor_t *counts,
    const unisparse_tensor_t *indices, const unisparse_tensor_t *o,
    const unisparse_tensor_t *lse, const unisparse_attention_params_t *params,
    void *stream);

/// The message of the most recent failure on this thread ("" if none).
UNISPARSE_RT_EXPORT const char *unisparse_rt_last_error_message(void);
/// The status of the most recent failure on this thread (sticky until
/// cleared), or UNISPARSE_STATUS_SUCCESS.
UNISPARSE_RT_EXPORT unisparse_status_t unisparse_rt_last_error(void);
/// Clears the sticky error of this thread.
UNISPARSE_RT_EXPORT void unisparse_rt_clear_error(void);
/// A static string naming a status code.
UNISPARSE_RT_EXPORT const char *unisparse_rt_status_string(unisparse_status_t);
/// 1 if the runtime was built with CUDA support, else 0.
UNISPARSE_RT_EXPORT int32_t unisparse_rt_has_cuda(void);

/// The CUDA kernels of block-sparse attention.
typedef enum unisparse_cuda_kernel {
  /// The sm_90a kernel (TMA, wgmma, warp specialization) on devices of
  /// compute capability 9.0 for the problems it takes (S = 128, 16-byte
  /// aligned q/k/v/o with strides that are multiples of 8 elements), else
  /// the mma.sync kernel. The default.
  UNISPARSE_CUDA_KERNEL_AUTO = 0,
  /// Always the mma.sync kernel (sm_80 and newer).
  UNISPARSE_CUDA_KERNEL_MMA_SYNC = 1,
  /// Always the sm_90a kernel; a call it cannot serve fails with
  /// UNISPARSE_STATUS_NOT_SUPPORTED.
  UNISPARSE_CUDA_KERNEL_SM90 = 2,
} unisparse_cuda_kernel_t;

/// Chooses the CUDA attention kernel for the whole process (for tests and
/// benchmarks). The initial choice comes from the environment variable
/// UNISPARSE_CUDA_ATTENTION_KERNEL = auto | mma_sync | sm90 (any case; unset
/// or empty: auto); any other value makes every CUDA attention call fail
/// with UNISPARSE_STATUS_INVALID_ARGUMENT naming it (and the getter return
/// -1) until this function sets a valid choice.
/// Returns UNISPARSE_STATUS_INVALID_ARGUMENT for a value outside the enum.
UNISPARSE_RT_EXPORT unisparse_status_t
unisparse_rt_set_cuda_attention_kernel(int32_t kernel);
/// The current choice (a unisparse_cuda_kernel_t).
UNISPARSE_RT_EXPORT int32_t unisparse_rt_get_cuda_attention_kernel(void);
/// The kernel that the calling thread's most recent successful CUDA
/// attention launch used: UNISPARSE_CUDA_KERNEL_MMA_SYNC or _SM90, or
/// UNISPARSE_CUDA_KERNEL_AUTO (0) if none.
UNISPARSE_RT_EXPORT int32_t unisparse_rt_last_cuda_attention_kernel(void);

/// Sets the calling thread's current CUDA stream (a CUstream; null = none).
/// The caller keeps ownership of the stream. While one is set:
///  - CUDA block-sparse attention called with a null `stream`, and the
///    `_mlir_ciface_..._cuda_*` shims, launch on it;
///  - mgpuStreamCreate returns it instead of creating a stream, and
///    mgpuStreamSynchronize / mgpuStreamDestroy on it do nothing; events,
///    memory operations and launches work as usual.
/// Compiled host code then issues all its work in stream order on that one
/// stream with no host synchronization, so it can be captured into a CUDA
/// graph. Without one, compiled code uses real streams and real syncs.
UNISPARSE_RT_EXPORT void unisparse_rt_set_current_stream(void *cuStream);
/// The calling thread's current CUDA stream, or null if none is set.
UNISPARSE_RT_EXPORT void *unisparse_rt_get_current_stream(void);

//===----------------------------------------------------------------------===//
// Entry points for compiled code (convert-unisparse-to-runtime).
//===----------------------------------------------------------------------===//

/// MLIR's ranked memref descriptor with a fully dynamic strided layout, as
/// passed by pointer by functions with `llvm.emit_c_interface`.
#define UNISPARSE_DEFINE_MEMREF(NAME, T, N)                                    \
  typedef struct NAME {                                                        \
    T *allocated;                                                              \
    T *aligned;                                                                \
    int64_t offset;                                                            \
    int64_t sizes[N];                                                          \
    int64_t strides[N];                                                        \
  } NAME;

UNISPARSE_DEFINE_MEMREF(unisparse_memref_4d_f32, float, 4)
UNISPARSE_DEFINE_MEMREF(unisparse_memref_4d_u16, uint16_t, 4)
UNISPARSE_DEFINE_MEMREF(unisparse_memref_3d_f32, float, 3)
UNISPARSE_DEFINE_MEMREF(unisparse_memref_3d_i32, int32_t, 3)
UNISPARSE_DEFINE_MEMREF(unisparse_memref_4d_i32, int32_t, 4)

/// Called by compiled host code for
///   func.func private @unisparse_rt_block_sparse_attention_<dtype>(
///       memref<?x?x?x?x<dtype>, strided<[?,?,?,?], offset: ?>> q, k, v,
///       memref<?x?x?xi32, strided<...>> counts,
///       memref<?x?x?x?xi32, strided<...>> indices,
///       memref<?x?x?x?x<dtype>, strided<...>> o,
///       memref<?x?x?xf32, strided<...>> lse,
///       i64 block_size, i32 causal, f32 scale) -> i32
///       attributes {llvm.emit_c_interface}
/// Returns the status; a failure is also recorded as this thread's sticky
/// error, which the embedding host reads after the compiled function returns.
UNISPARSE_RT_EXPORT int32_t
_mlir_ciface_unisparse_rt_block_sparse_attention_f32(
    unisparse_memref_4d_f32 *q, unisparse_memref_4d_f32 *k,
    unisparse_memref_4d_f32 *v, unisparse_memref_3d_i32 *counts,
    unisparse_memref_4d_i32 *indices, unisparse_memref_4d_f32 *o,
    unisparse_memref_3d_f32 *lse, int64_t block_size, int32_t causal,
    float scale);
UNISPARSE_RT_EXPORT int32_t
_mlir_ciface_unisparse_rt_block_sparse_attention_f16(
    unisparse_memref_4d_u16 *q, unisparse_memref_4d_u16 *k,
    unisparse_memref_4d_u16 *v, unisparse_memref_3d_i32 *counts,
    unisparse_memref_4d_i32 *indices, unisparse_memref_4d_u16 *o,
    unisparse_memref_3d_f32 *lse, int64_t block_size, int32_t causal,
    float scale);
UNISPARSE_RT_EXPORT int32_t
_mlir_ciface_unisparse_rt_block_sparse_attention_bf16(
    unisparse_memref_4d_u16 *q, unisparse_memref_4d_u16 *k,
    unisparse_memref_4d_u16 *v, unisparse_memref_3d_i32 *counts,
    unisparse_memref_4d_i32 *indices, unisparse_memref_4d_u16 *o,
    unisparse_memref_3d_f32 *lse, int64_t block_size, int32_t causal,
    float scale);

/// The CUDA counterparts of the shims above, for compiled GPU host code: the
/// memref descriptors hold device pointers (all tensors on the current CUDA
/// context's device). They launch on the thread's current stream
/// (unisparse_rt_set_current_stream) and return without waiting; with no
/// current stream they launch on the legacy default stream and synchronize
/// it before returning, so that work the compiled code issues afterwards on
/// its own (non-blocking) streams sees the results. Returns the status.
/// Without a CUDA backend (unisparse_rt_has_cuda() == 0) they return
/// UNISPARSE_STATUS_NOT_SUPPORTED.
UNISPARSE_RT_EXPORT int32_t
_mlir_ciface_unisparse_rt_block_sparse_attention_cuda_f16(
    unisparse_memref_4d_u16 *q, unisparse_memref_4d_u16 *k,
    unisparse_memref_4d_u16 *v, unisparse_memref_3d_i32 *counts,
    unisparse_memref_4d_i32 *indices, unisparse_memref_4d_u16 *o,
    unisparse_memref_3d_f32 *lse, int64_t block_size, int32_t causal,
    float scale);
UNISPARSE_RT_EXPORT int32_t
_mlir_ciface_unisparse_rt_block_sparse_attention_cuda_bf16(
    unisparse_memref_4d_u16 *q, unisparse_memref_4d_u16 *k,
    unisparse_memref_4d_u16 *v, unisparse_memref_3d_i32 *counts,
    unisparse_memref_4d_i32 *indices, unisparse_memref_4d_u16 *o,
    unisparse_memref_3d_f32 *lse, int64_t block_size, int32_t causal,
    float scale);

//===----------------------------------------------------------------------===//
// The memory guard and allocator of compiled code.
//===----------------------------------------------------------------------===//

// Every entry point that unisparse-compile builds first computes the bytes
// of the buffers its estimation will allocate for the actual batch and
// sequence length (the compiler's size rule; docs/Limits.md) and calls
// unisparse_rt_check_workspace; it runs only on success. Its host
// allocations then go through unisparse_rt_alloc / unisparse_rt_free, and a
// failed allocation makes it free what it holds (unisparse_rt_alloc_scope_
// abort) and return with the error recorded.

/// The workspace bound for `device` (a unisparse_device_t), in bytes: the
/// value of the environment variable UNISPARSE_WORKSPACE_LIMIT (a byte
/// count) when set; else, for the CPU, the smaller of the available memory
/// (MemAvailable of /proc/meminfo) and what the address-space limit
/// (RLIMIT_AS) leaves, plus the bytes of the freed blocks the thread keeps
/// (unisparse_rt_free); for CUDA, the free memory of the current context's
/// device (INT64_MAX without a CUDA backend, and while the thread's current
/// stream is being captured into a CUDA graph: the query is no stream
/// operation, so it is skipped and only the allocations are checked). -1
/// with a recorded error if it cannot be determined (a malformed variable, a
/// CUDA failure).
UNISPARSE_RT_EXPORT int64_t unisparse_rt_workspace_limit(int32_t device);

/// Succeeds if a workspace of `bytes` (INT64_MAX: the size overflowed) fits
/// the bound of unisparse_rt_workspace_limit; else records and returns
/// UNISPARSE_STATUS_OUT_OF_MEMORY with a message naming `batch`, `seqLen`,
/// the size and the bound. For CUDA without UNISPARSE_WORKSPACE_LIMIT, bytes
/// that the runtime's memory pool holds reserved and unused fit without the
/// free-memory query (the bound counts them as free: the same outcome).
UNISPARSE_RT_EXPORT int32_t unisparse_rt_check_workspace(int64_t bytes,
                                                         int64_t batch,
                                                         int64_t seqLen,
                                                         int32_t device);

/// `bytes` aligned to `alignment` (a power of two, 0 for the default),
/// tracked as a live block of the calling thread; null with
/// UNISPARSE_STATUS_OUT_OF_MEMORY recorded if it cannot be had (or
/// UNISPARSE_STATUS_INVALID_ARGUMENT for a malformed UNISPARSE_HOST_CACHE).
UNISPARSE_RT_EXPORT void *unisparse_rt_alloc(int64_t bytes, int64_t alignment);
/// Frees a block of unisparse_rt_alloc (or any malloc'ed pointer; null is
/// ignored). A tracked block of 64 KiB or more is kept for the next
/// unisparse_rt_alloc of its size and alignment in this thread, up to
/// UNISPARSE_HOST_CACHE bytes (a byte count; unset: 256 MiB; 0: none kept;
/// docs/Limits.md), and freed when the thread exits.
UNISPARSE_RT_EXPORT void unisparse_rt_free(void *ptr);
/// Opens a scope of the thread's tracked blocks; returns its mark.
UNISPARSE_RT_EXPORT int64_t unisparse_rt_alloc_scope_begin(void);
/// Closes the scope of `mark` normally: its blocks are no longer tracked.
UNISPARSE_RT_EXPORT void unisparse_rt_alloc_scope_end(int64_t mark);
/// Closes the scope of `mark` after a failure: frees every block allocated
/// in it that is still live.
UNISPARSE_RT_EXPORT void unisparse_rt_alloc_scope_abort(int64_t mark);
/// The number of blocks the calling thread's scopes track (for tests).
UNISPARSE_RT_EXPORT int64_t unisparse_rt_live_allocations(void);
/// The peak of the bytes the calling thread's scopes held at once since the
/// last reset; nonzero `reset` starts a new measurement (for tests that
/// check the compiler's workspace rule against what the code allocates).
UNISPARSE_RT_EXPORT int64_t unisparse_rt_peak_allocated_bytes(int32_t reset);

//===----------------------------------------------------------------------===//
// GPU module loading and launch for compiled host code.
//===----------------------------------------------------------------------===//

// The functions that MLIR's gpu-to-llvm lowering calls (upstream ships them in
// libmlir_cuda_runtime, which the packaged LLVM lacks), on the CUDA driver
// API, with upstream's C ABI. Present only in builds with CUDA
// (unisparse_rt_has_cuda() == 1). The driver is loaded and a context made
// current lazily by the first call that needs one: the current context if
// any (e.g. PyTorch's), else the primary context of the default device.
// Every driver call is checked: a failure never aborts, it records
// UNISPARSE_STATUS_CUDA_ERROR with a message as the thread's sticky error
// (unisparse_rt_last_error) and the function returns null or does nothing.
// See unisparse_rt_set_current_stream for the current-stream behavior.

/// Loads a cubin, fatbin or PTX image (cuModuleLoadData); `size` is unused.
UNISPARSE_RT_EXPORT void *mgpuModuleLoad(void *data, int64_t size);
/// Loads PTX text with the driver's JIT at optimization level `optLevel`
/// (0..4); the JIT error log is part of the error message.
UNISPARSE_RT_EXPORT void *mgpuModuleLoadJIT(void *data, int32_t optLevel);
UNISPARSE_RT_EXPORT void mgpuModuleUnload(void *module);
/// The kernel `name` of `module`; lookups are cached per (module, name).
UNISPARSE_RT_EXPORT void *mgpuModuleGetFunction(void *module, const char *name);
/// cuLaunchKernel; raises the function's dynamic shared-memory limit first
/// when `smem` exceeds 48 KiB. A grid with a zero dimension launches nothing.
UNISPARSE_RT_EXPORT void mgpuLaunchKernel(void *function, int64_t gridX,
                                          int64_t gridY, int64_t gridZ,
                                          int64_t blockX, int64_t blockY,
                                          int64_t blockZ, int32_t smem,
                                          void *stream, void **params,
                                          void **extra, int64_t paramsCount);
/// cuLaunchKernelEx with a cluster dimension (the grid is in blocks).
UNISPARSE_RT_EXPORT void mgpuLaunchClusterKernel(
    void *function, int64_t clusterX, int64_t clusterY, int64_t clusterZ,
    int64_t gridX, int64_t gridY, int64_t gridZ, int64_t blockX, int64_t blockY,
    int64_t blockZ, int32_t smem, void *stream, void **params, void **extra);
/// A new non-blocking stream, or the current stream if one is set.
UNISPARSE_RT_EXPORT void *mgpuStreamCreate(void);
UNISPARSE_RT_EXPORT void mgpuStreamSynchronize(void *stream);
UNISPARSE_RT_EXPORT void mgpuStreamDestroy(void *stream);
UNISPARSE_RT_EXPORT void *mgpuEventCreate(void);
UNISPARSE_RT_EXPORT void mgpuEventDestroy(void *event);
UNISPARSE_RT_EXPORT void mgpuEventSynchronize(void *event);
UNISPARSE_RT_EXPORT void mgpuEventRecord(void *event, void *stream);
UNISPARSE_RT_EXPORT void mgpuStreamWaitEvent(void *stream, void *event);
/// Stream-ordered device memory (cuMemAllocFromPoolAsync on `stream`, from
/// the runtime's pool, which keeps freed blocks reserved up to
/// UNISPARSE_CUDA_POOL_RELEASE bytes, default all of them), or managed
/// memory (cuMemAllocManaged, synchronous) if `isHostShared`. 0 bytes give
/// null.
UNISPARSE_RT_EXPORT void *mgpuMemAlloc(int64_t bytes, void *stream,
                                       int8_t isHostShared);
/// cuMemFreeAsync on `stream` (managed memory: cuMemFree). Null is ignored.
UNISPARSE_RT_EXPORT void mgpuMemFree(void *ptr, void *stream);
UNISPARSE_RT_EXPORT void mgpuMemcpy(void *dst, void *src, int64_t bytes,
                                    void *stream);
/// Sets `count` 32-bit (16-bit) words at `dst` to `value`, on `stream`.
UNISPARSE_RT_EXPORT void mgpuMemset32(void *dst, int32_t value, int64_t count,
                                      void *stream);
UNISPARSE_RT_EXPORT void mgpuMemset16(void *dst, int16_t value, int64_t count,
                                      void *stream);
/// Makes `device` the default device and its primary context current on
/// this thread (unless the current context is already on that device).
UNISPARSE_RT_EXPORT void mgpuSetDefaultDevice(int32_t device);

#ifdef __cplusplus
} // extern "C"
#endif

#endif // UNISPARSE_RUNTIME_UNISPARSE_RUNTIME_H
