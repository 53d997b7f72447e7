//===- TestKernels.cu - Kernels that the mgpu* tests load and launch ------===//
//
// Compiled by CMake into a fatbin (UNISPARSE_RUNTIME_CUDA_ARCHITECTURES) and
// into compute_80 PTX, both embedded in unisparse_runtime_cuda_tests, which
// loads them through mgpuModuleLoad / mgpuModuleLoadJIT like compiled code.
//
//===----------------------------------------------------------------------===//

#include "cuda/Exp2Poly.h"

#include <cstdint>

/// y[i] = a * x[i] + y[i].
extern "C" __global__ void unisparse_test_axpy(float *y, const float *x,
                                               float a, int n) {
  const int i = blockIdx.x * blockDim.x + threadIdx.x;
  if (i < n)
    y[i] = a * x[i] + y[i];
}

/// Busy-waits `ns` nanoseconds (one thread), then sets *done = 1.
extern "C" __global__ void unisparse_test_spin(unsigned long long ns,
                                               int *done) {
  if (threadIdx.x != 0 || blockIdx.x != 0)
    return;
  unsigned long long start, now;
  asm volatile("mov.u64 %0, %%globaltimer;" : "=l"(start));
  do {
    asm volatile("mov.u64 %0, %%globaltimer;" : "=l"(now));
  } while (now - start < ns);
  *reinterpret_cast<volatile int *>(done) = 1;
}

/// out[i] = in[n - 1 - i], through n floats of dynamic shared memory (one
/// block), to check launches that need more than 48 KiB.
extern "C" __global__ void unisparse_test_reverse(float *out, const float *in,
                                                  int n) {
  extern __shared__ float buffer[];
  for (int i = threadIdx.x; i < n; i += blockDim.x)
    buffer[i] = in[i];
  __syncthreads();
  for (int i = threadIdx.x; i < n; i += blockDim.x)
    out[i] = buffer[n - 1 - i];
}

/// out[2 b] = rank of block b in its cluster, out[2 b + 1] = CTAs per
/// cluster (-1, -1 before sm_90).
extern "C" __global__ void unisparse_test_cluster(int *out) {
  unsigned rank = 0xffffffffu, size = 0xffffffffu;
#if defined(__CUDA_ARCH__) && __CUDA_ARCH__ >= 900
  asm volatile("mov.u32 %0, %%cluster_ctarank;" : "=r"(rank));
  asm volatile("mov.u32 %0, %%cluster_nctarank;" : "=r"(size));
#endif
  if (threadIdx.x == 0) {
    out[2 * blockIdx.x] = int(rank);
    out[2 * blockIdx.x + 1] = int(size);
  }
}

/// y[i] = exp2Poly(x[i]) (cuda/Exp2Poly.h, the sm_90a softmax's exp2 on the
/// FMA pipe), to compare with the host model bit for bit.
extern "C" __global__ void unisparse_test_exp2_poly(float *y, const float *x,
                                                    int n) {
  const int i = blockIdx.x * blockDim.x + threadIdx.x;
  if (i < n)
    y[i] = unisparse::rt::cuda::exp2Poly(x[i]);
}
