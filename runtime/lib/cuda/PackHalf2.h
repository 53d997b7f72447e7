//===- PackHalf2.h - two floats in one 16-bit pair register -----*- C++ -*-===//
//
// Device helpers shared by the mma.sync and sm_90a attention kernels: two
// floats rounded to nearest even into bf16x2 / f16x2 bits, `lo` in the low
// 16 bits (the lower column / k index, as the MMA fragments expect).
//
//===----------------------------------------------------------------------===//

#ifndef UNISPARSE_RUNTIME_LIB_CUDA_PACKHALF2_H
#define UNISPARSE_RUNTIME_LIB_CUDA_PACKHALF2_H

#include <cuda_bf16.h>
#include <cuda_fp16.h>

#include <cstdint>
#include <cstring>

namespace unisparse::rt::cuda {

__device__ __forceinline__ uint32_t packBf16x2(float lo, float hi) {
  const __nv_bfloat162 v = __floats2bfloat162_rn(lo, hi);
  uint32_t bits;
  memcpy(&bits, &v, sizeof(bits));
  return bits;
}

__device__ __forceinline__ uint32_t packF16x2(float lo, float hi) {
  const __half2 v = __floats2half2_rn(lo, hi);
  uint32_t bits;
  memcpy(&bits, &v, sizeof(bits));
  return bits;
}

} // namespace unisparse::rt::cuda

#endif // UNISPARSE_RUNTIME_LIB_CUDA_PACKHALF2_H
