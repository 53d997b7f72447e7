//===- Workspace.cpp - Memory guard and allocator of compiled code --------===//
//
// Compiled entry points (unisparse-compile) compute, before they run, the
// bytes of the buffers their estimation will allocate (the size rule of the
// compiler's ShapeRules.h, evaluated on the actual batch and sequence
// length) and ask unisparse_rt_check_workspace whether that fits; their host
// allocations go through unisparse_rt_alloc / unisparse_rt_free (rewritten
// by unisparse-check-allocations), which record every live block of the
// thread so that an entry point that meets a failed allocation can free what
// it holds and return with the error recorded instead of faulting.
//
//===----------------------------------------------------------------------===//

#include "common/Environment.h"
#include "common/Error.h"
#if UNISPARSE_RT_CUDA
#include "cuda/Driver.h"
#endif

#include <cerrno>
#include <cinttypes>
#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <fcntl.h>
#include <sys/resource.h>
#include <unistd.h>

using namespace unisparse::rt;

namespace {

constexpr int64_t kUnlimited = INT64_MAX;

/// Reads up to `size - 1` bytes of `path` into `buf` (NUL-terminated), with
/// no allocation; false if it cannot be read.
bool readSmallFile(const char *path, char *buf, size_t size) {
  int fd = open(path, O_RDONLY | O_CLOEXEC);
  if (fd < 0)
    return false;
  size_t used = 0;
  while (used + 1 < size) {
    ssize_t n = read(fd, buf + used, size - 1 - used);
    if (n < 0 && errno == EINTR)
      continue;
    if (n <= 0)
      break;
    used += size_t(n);
  }
  close(fd);
  buf[used] = '\0';
  return used > 0;
}

/// MemAvailable of /proc/meminfo in bytes (memory the kernel can give
/// without swapping), else the free physical pages.
int64_t availableMemory() {
  char buf[4096];
  if (readSmallFile("/proc/meminfo", buf, sizeof(buf))) {
    if (const char *line = std::strstr(buf, "MemAvailable:")) {
      long long kib =
          std::strtoll(line + std::strlen("MemAvailable:"), nullptr, 10);
      if (kib > 0 && kib < kUnlimited / 1024)
        return int64_t(kib) * 1024;
    }
  }
  long pages = sysconf(_SC_AVPHYS_PAGES), pageSize = sysconf(_SC_PAGESIZE);
  if (pages > 0 && pageSize > 0 && pages < kUnlimited / pageSize)
    return int64_t(pages) * pageSize;
  return kUnlimited;
}

/// What is left under an address-space limit (RLIMIT_AS against the
/// process's virtual size, field 1 of /proc/self/statm).
int64_t addressSpaceHeadroom() {
  struct rlimit limit;
  if (getrlimit(RLIMIT_AS, &limit) != 0 || limit.rlim_cur == RLIM_INFINITY)
    return kUnlimited;
  char buf[256];
  long pageSize = sysconf(_SC_PAGESIZE);
  if (!readSmallFile("/proc/self/statm", buf, sizeof(buf)) || pageSize <= 0)
    return kUnlimited;
  long long pages = std::strtoll(buf, nullptr, 10);
  int64_t used = pages > 0 ? int64_t(pages) * pageSize : 0;
  int64_t cap = limit.rlim_cur > uint64_t(kUnlimited) ? kUnlimited
                                                      : int64_t(limit.rlim_cur);
  return cap > used ? cap - used : 0;
}

/// UNISPARSE_WORKSPACE_LIMIT: unset or empty (-1), else a byte count
/// (digits only; -2 when it is anything else).
int64_t limitFromEnvironment() {
  uint64_t value = 0;
  switch (byteCountFromEnvironment("UNISPARSE_WORKSPACE_LIMIT", value)) {
  case ByteCountVar::unset:
    return -1;
  case ByteCountVar::malformed:
    return -2;
  case ByteCountVar::valid:
    break;
  }
  return value > uint64_t(kUnlimited) ? -2 : int64_t(value);
}

/// The bytes of the freed blocks this thread keeps (HostCache, below).
uint64_t hostCacheBytes();

/// The automatic bound for `device`, with where it comes from.
int64_t automaticLimit(int32_t device, const char **source) {
  if (device == UNISPARSE_DEVICE_CUDA) {
    *source = "free device memory";
#if UNISPARSE_RT_CUDA
    size_t freeBytes = 0;
    bool measured = false;
    if (!cuda::deviceFreeMemory(unisparse_rt_get_current_stream(), freeBytes,
                                measured))
      return -1;   // the error is recorded
    if (!measured) // graph capture: the allocations themselves are checked
      return kUnlimited;
    return freeBytes > uint64_t(kUnlimited) ? kUnlimited : int64_t(freeBytes);
#else
    return kUnlimited;
#endif
  }
  int64_t available = availableMemory(), headroom = addressSpaceHeadroom();
  *source = headroom < available ? "the address-space limit (RLIMIT_AS) left"
                                 : "available memory (MemAvailable)";
  int64_t limit = headroom < available ? headroom : available;
  // The blocks this thread's host cache keeps serve the call (or are freed
  // when an allocation fails): free for it.
  int64_t cached = int64_t(hostCacheBytes());
  return limit > kUnlimited - cached ? kUnlimited : limit + cached;
}

//===----------------------------------------------------------------------===//
// Tracked allocations: the live blocks of this thread, in allocation order.
//===----------------------------------------------------------------------===//

struct Block {
  void *ptr;
  int64_t bytes;
  /// The size and alignment it was allocated with (aligned_alloc's).
  uint64_t size, align;
};
thread_local Block *liveBlocks = nullptr;
thread_local int64_t liveCount = 0, liveCapacity = 0;
/// Bytes of the tracked blocks, and their peak since the last reset.
thread_local int64_t liveBytes = 0, peakBytes = 0;

bool track(void *ptr, int64_t bytes, uint64_t size, uint64_t align) {
  if (liveCount == liveCapacity) {
    int64_t capacity = liveCapacity ? 2 * liveCapacity : 64;
    void *grown = std::realloc(liveBlocks, size_t(capacity) * sizeof(Block));
    if (!grown)
      return false;
    liveBlocks = static_cast<Block *>(grown);
    liveCapacity = capacity;
  }
  liveBlocks[liveCount++] = {ptr, bytes, size, align};
  liveBytes += bytes;
  if (liveBytes > peakBytes)
    peakBytes = liveBytes;
  return true;
}

/// Forgets the blocks above `mark`, freeing them if `release`.
void dropAbove(int64_t mark, bool release) {
  while (liveCount > mark) {
    Block &block = liveBlocks[--liveCount];
    liveBytes -= block.bytes;
    if (release)
      std::free(block.ptr);
  }
}

/// Frees the table itself once no block is tracked (the outermost scope
/// ended), so that a thread that exits leaves nothing behind.
void releaseTableIfEmpty() {
  if (liveCount == 0) {
    std::free(liveBlocks);
    liveBlocks = nullptr;
    liveCapacity = 0;
  }
}

/// Forgets the tracked block `ptr`; false (and `block` untouched) if it is
/// not tracked.
bool untrack(void *ptr, Block &block) {
  // Blocks are mostly freed in reverse order of allocation: search from the
  // end.
  for (int64_t i = liveCount - 1; i >= 0; --i) {
    if (liveBlocks[i].ptr == ptr) {
      block = liveBlocks[i];
      liveBytes -= block.bytes;
      std::memmove(liveBlocks + i, liveBlocks + i + 1,
                   size_t(liveCount - i - 1) * sizeof(Block));
      --liveCount;
      return true;
    }
  }
  return false;
}

//===----------------------------------------------------------------------===//
// Freed blocks kept for the next call (this thread's host cache).
//===----------------------------------------------------------------------===//

// A compiled call allocates the same buffers, of the same sizes, every time
// it runs on the same shapes. Freed to malloc, the large ones go back to the
// kernel (glibc trims the heap's top and unmaps its mmap'ed chunks), and the
// next call takes a page fault on every 4 KiB of them and the kernel zeroes
// each page: ~35% of the default estimation's call at N 4096 (perf,
// bench/RESULTS.md). So a freed tracked block of kCacheMinBytes or more is
// kept here, up to UNISPARSE_HOST_CACHE bytes (default kCacheDefaultBytes)
// per thread, and an allocation of the same size and alignment takes it
// back. The oldest blocks go first when the bound is reached; all of them
// when an allocation fails (then it is tried again) and when the thread
// exits.
constexpr uint64_t kCacheMinBytes = 64 << 10;
constexpr uint64_t kCacheDefaultBytes = uint64_t(256) << 20;
constexpr int kCacheSlots = 128;

struct HostCache {
  Block slots[kCacheSlots]; // oldest first
  int count = 0;
  uint64_t bytes = 0;

  void releaseFront(int n) {
    for (int i = 0; i < n; ++i) {
      bytes -= slots[i].size;
      std::free(slots[i].ptr);
    }
    std::memmove(slots, slots + n, size_t(count - n) * sizeof(Block));
    count -= n;
  }
  void releaseAll() { releaseFront(count); }
  ~HostCache() { releaseAll(); }

  /// A kept block of `size` bytes aligned to `align`, or null.
  void *take(uint64_t size, uint64_t align) {
    for (int i = count - 1; i >= 0; --i) {
      if (slots[i].size == size && slots[i].align == align) {
        void *ptr = slots[i].ptr;
        bytes -= size;
        std::memmove(slots + i, slots + i + 1,
                     size_t(count - i - 1) * sizeof(Block));
        --count;
        return ptr;
      }
    }
    return nullptr;
  }

  /// Keeps `block` if it fits `bound`; false if the caller must free it.
  bool keep(const Block &block, uint64_t bound) {
    if (block.size < kCacheMinBytes || block.size > bound)
      return false;
    int drop = 0;
    uint64_t kept = bytes;
    while (drop < count &&
           (kept + block.size > bound || count - drop >= kCacheSlots))
      kept -= slots[drop++].size;
    releaseFront(drop);
    slots[count++] = block;
    bytes += block.size;
    return true;
  }
};
thread_local HostCache hostCache;

uint64_t hostCacheBytes() { return hostCache.bytes; }

/// UNISPARSE_HOST_CACHE: the cache's bound in bytes (unset or empty: the
/// default); -1 when it is not a byte count.
int64_t hostCacheBound() {
  uint64_t value = 0;
  switch (byteCountFromEnvironment("UNISPARSE_HOST_CACHE", value)) {
  case ByteCountVar::unset:
    return int64_t(kCacheDefaultBytes);
  case ByteCountVar::malformed:
    return -1;
  case ByteCountVar::valid:
    break;
  }
  return value > uint64_t(kUnlimited) ? -1 : int64_t(value);
}

} // namespace

extern "C" {

int64_t unisparse_rt_workspace_limit(int32_t device) {
  int64_t fromEnv = limitFromEnvironment();
  if (fromEnv == -2) {
    setError(UNISPARSE_STATUS_INVALID_ARGUMENT,
             "UNISPARSE_WORKSPACE_LIMIT = '%s' is not a byte count",
             std::getenv("UNISPARSE_WORKSPACE_LIMIT"));
    return -1;
  }
  if (fromEnv >= 0)
    return fromEnv;
  const char *source = "";
  return automaticLimit(device, &source);
}

int32_t unisparse_rt_check_workspace(int64_t bytes, int64_t batch,
                                     int64_t seqLen, int32_t device) {
  const char *where = device == UNISPARSE_DEVICE_CUDA ? "CUDA" : "CPU";
  if (device != UNISPARSE_DEVICE_CPU && device != UNISPARSE_DEVICE_CUDA)
    return setError(UNISPARSE_STATUS_INVALID_ARGUMENT,
                    "unisparse_rt_check_workspace: device = %d", device);
  if (bytes < 0 || bytes == kUnlimited)
    return setError(UNISPARSE_STATUS_OUT_OF_MEMORY,
                    "the %s workspace of B = %" PRId64 ", N = %" PRId64
                    " exceeds 2^63 - 1 bytes: these sizes cannot be addressed",
                    where, batch, seqLen);
  int64_t fromEnv = limitFromEnvironment();
  const char *source = "UNISPARSE_WORKSPACE_LIMIT";
  int64_t limit = fromEnv;
  if (fromEnv == -2)
    return setError(UNISPARSE_STATUS_INVALID_ARGUMENT,
                    "UNISPARSE_WORKSPACE_LIMIT = '%s' is not a byte count",
                    std::getenv("UNISPARSE_WORKSPACE_LIMIT"));
#if UNISPARSE_RT_CUDA
  // A repeated call's common case: the runtime's pool holds the workspace
  // reserved and unused (an earlier call's buffers, freed), so it needs no
  // new device memory and the free-memory query (cuMemGetInfo, a round trip
  // to the driver's resource manager on every call) is skipped.
  if (fromEnv < 0 && device == UNISPARSE_DEVICE_CUDA) {
    if (!cuda::ensureContext())
      return unisparse_rt_last_error();
    if (cuda::poolHoldsUnused(unisparse_rt_get_current_stream(), bytes))
      return UNISPARSE_STATUS_SUCCESS;
  }
#endif
  if (fromEnv < 0)
    limit = automaticLimit(device, &source);
  if (limit < 0)
    return unisparse_rt_last_error();
  if (bytes <= limit)
    return UNISPARSE_STATUS_SUCCESS;
  return setError(UNISPARSE_STATUS_OUT_OF_MEMORY,
                  "refusing to run: B = %" PRId64 ", N = %" PRId64
                  " needs a %s workspace of %" PRId64 " bytes (%.3g GiB), "
                  "more than the %" PRId64 " bytes of %s (set "
                  "UNISPARSE_WORKSPACE_LIMIT to override; see docs/Limits.md)",
                  batch, seqLen, where, bytes, double(bytes) / (1 << 30), limit,
                  source);
}

void *unisparse_rt_alloc(int64_t bytes, int64_t alignment) {
  if (bytes < 0 || alignment < 0 || (alignment & (alignment - 1)) != 0) {
    setError(UNISPARSE_STATUS_INVALID_ARGUMENT,
             "unisparse_rt_alloc: %" PRId64 " bytes aligned to %" PRId64, bytes,
             alignment);
    return nullptr;
  }
  // aligned_alloc wants a multiple of the alignment (and of sizeof(void *)).
  uint64_t align = alignment < int64_t(sizeof(void *)) ? sizeof(void *)
                                                       : uint64_t(alignment);
  uint64_t size = (uint64_t(bytes) + align - 1) / align * align;
  // No object may exceed PTRDIFF_MAX bytes (glibc refuses such sizes too;
  // sanitizer allocators would abort instead of returning null).
  int64_t bound = hostCacheBound();
  if (bound < 0) {
    setError(UNISPARSE_STATUS_INVALID_ARGUMENT,
             "UNISPARSE_HOST_CACHE = '%s' is not a byte count",
             std::getenv("UNISPARSE_HOST_CACHE"));
    return nullptr;
  }
  if (!size)
    size = align;
  void *ptr = size >= kCacheMinBytes ? hostCache.take(size, align) : nullptr;
  if (!ptr && size <= uint64_t(PTRDIFF_MAX)) {
    ptr = std::aligned_alloc(align, size);
    if (!ptr && hostCache.count) { // what the cache holds may be enough
      hostCache.releaseAll();
      ptr = std::aligned_alloc(align, size);
    }
  }
  if (!ptr || !track(ptr, bytes, size, align)) {
    std::free(ptr);
    setError(UNISPARSE_STATUS_OUT_OF_MEMORY,
             "compiled code: an allocation of %" PRId64 " bytes failed (the "
             "call stopped and freed its buffers)",
             bytes);
    return nullptr;
  }
  return ptr;
}

void unisparse_rt_free(void *ptr) {
  if (!ptr)
    return;
  Block block;
  // The bound (an environment read) only for a block the cache may keep.
  if (untrack(ptr, block) && block.size >= kCacheMinBytes) {
    int64_t bound = hostCacheBound();
    if (bound > 0 && hostCache.keep(block, uint64_t(bound)))
      return;
  }
  std::free(ptr);
}

int64_t unisparse_rt_alloc_scope_begin(void) { return liveCount; }

void unisparse_rt_alloc_scope_end(int64_t mark) {
  dropAbove(mark < 0 ? 0 : mark, /*release=*/false);
  releaseTableIfEmpty();
}

void unisparse_rt_alloc_scope_abort(int64_t mark) {
  dropAbove(mark < 0 ? 0 : mark, /*release=*/true);
  releaseTableIfEmpty();
}

int64_t unisparse_rt_live_allocations(void) { return liveCount; }

int64_t unisparse_rt_peak_allocated_bytes(int32_t reset) {
  int64_t peak = peakBytes;
  if (reset)
    peakBytes = liveBytes;
  return peak;
}

} // extern "C"
