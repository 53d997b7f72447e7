/*===- fake_mgpu.c - a host-memory stand-in for the mgpu* functions ------===*
 *
 * For tests without a GPU: the mgpu* functions that compiled CUDA host code
 * calls (the runtime's C ABI, unisparse_runtime.h), with device memory in
 * host memory and launches that do nothing. It records the device bytes live
 * at once, so a test can hold the size rule of the compiled entry's memory
 * guard against what the CUDA host code really allocates. Load it with
 * RTLD_GLOBAL before libunisparse_runtime, so that its mgpu* win.
 *
 *===----------------------------------------------------------------------===*/

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#define MAX_BLOCKS 4096

static void *blocks[MAX_BLOCKS];
static int64_t sizes[MAX_BLOCKS];
static int64_t live, peak;

void *mgpuModuleLoad(void *data, int64_t size) {
  (void)data, (void)size;
  return (void *)16;
}
void *mgpuModuleLoadJIT(void *data, int32_t level) {
  (void)data, (void)level;
  return (void *)16;
}
void mgpuModuleUnload(void *module) { (void)module; }
void *mgpuModuleGetFunction(void *module, const char *name) {
  (void)module, (void)name;
  return (void *)32;
}
void mgpuLaunchKernel(void *f, int64_t gx, int64_t gy, int64_t gz, int64_t bx,
                      int64_t by, int64_t bz, int32_t smem, void *stream,
                      void **params, void **extra, int64_t n) {
  (void)f, (void)gx, (void)gy, (void)gz, (void)bx, (void)by, (void)bz;
  (void)smem, (void)stream, (void)params, (void)extra, (void)n;
}
void *mgpuStreamCreate(void) { return (void *)48; }
void mgpuStreamSynchronize(void *s) { (void)s; }
void mgpuStreamDestroy(void *s) { (void)s; }
void *mgpuEventCreate(void) { return (void *)64; }
void mgpuEventDestroy(void *e) { (void)e; }
void mgpuEventSynchronize(void *e) { (void)e; }
void mgpuEventRecord(void *e, void *s) { (void)e, (void)s; }
void mgpuStreamWaitEvent(void *s, void *e) { (void)s, (void)e; }
void mgpuSetDefaultDevice(int32_t d) { (void)d; }

void *mgpuMemAlloc(int64_t bytes, void *stream, int8_t shared) {
  (void)stream, (void)shared;
  if (bytes <= 0)
    return NULL;
  for (int i = 0; i < MAX_BLOCKS; ++i) {
    if (!blocks[i]) {
      blocks[i] = aligned_alloc(256, (size_t)(bytes + 255) / 256 * 256);
      if (!blocks[i])
        return NULL;
      sizes[i] = bytes;
      live += bytes;
      if (live > peak)
        peak = live;
      return blocks[i];
    }
  }
  return NULL;
}

void mgpuMemFree(void *ptr, void *stream) {
  (void)stream;
  for (int i = 0; ptr && i < MAX_BLOCKS; ++i) {
    if (blocks[i] == ptr) {
      free(ptr);
      blocks[i] = NULL;
      live -= sizes[i];
      return;
    }
  }
}

void mgpuMemcpy(void *dst, void *src, int64_t bytes, void *stream) {
  (void)stream;
  memmove(dst, src, (size_t)bytes);
}
void mgpuMemset32(void *dst, int32_t value, int64_t count, void *stream) {
  (void)stream;
  for (int64_t i = 0; i < count; ++i)
    ((int32_t *)dst)[i] = value;
}
void mgpuMemset16(void *dst, int16_t value, int64_t count, void *stream) {
  (void)stream;
  for (int64_t i = 0; i < count; ++i)
    ((int16_t *)dst)[i] = value;
}

/* The peak of live device bytes since the last reset; then resets it. */
int64_t fake_mgpu_peak_bytes(void) {
  int64_t p = peak;
  peak = live;
  return p;
}
