//===- Sm90Ptx.h - PTX of the sm_90a kernel ---------------------*- C++ -*-===//
//
// Device wrappers of the sm_90a instructions that the Hopper attention kernel
// (BlockSparseAttentionSm90.cu) is built from: mbarrier, shared-memory
// slots, TMA copies, wgmma (fence, commit, wait, descriptors and the
// m64nNk16 instructions per element type), ex2. Each is one PTX instruction
// or a fixed sequence of them; what they mean is in the PTX ISA of sm_90a.
//
//===----------------------------------------------------------------------===//

#ifndef UNISPARSE_RUNTIME_LIB_CUDA_SM90PTX_H
#define UNISPARSE_RUNTIME_LIB_CUDA_SM90PTX_H

#include <cuda.h>

#include <cstdint>

namespace unisparse::rt::cuda {

//===----------------------------------------------------------------------===//
// PTX wrappers: mbarrier, shared memory, TMA, wgmma, setmaxnreg.
//===----------------------------------------------------------------------===//

__device__ __forceinline__ void mbarInit(uint32_t bar, uint32_t count) {
  asm volatile("mbarrier.init.shared::cta.b64 [%0], %1;\n" ::"r"(bar),
               "r"(count)
               : "memory");
}

/// Makes the mbarrier initializations visible to the other threads and to
/// the TMA unit (before the CTA's first barrier).
__device__ __forceinline__ void mbarInitFence() {
  asm volatile("fence.mbarrier_init.release.cluster;\n" ::: "memory");
}

__device__ __forceinline__ void mbarArriveExpectTx(uint32_t bar,
                                                   uint32_t bytes) {
  asm volatile(
      "mbarrier.arrive.expect_tx.shared::cta.b64 _, [%0], %1;\n" ::"r"(bar),
      "r"(bytes)
      : "memory");
}

__device__ __forceinline__ void mbarArrive(uint32_t bar) {
  asm volatile("mbarrier.arrive.shared::cta.b64 _, [%0];\n" ::"r"(bar)
               : "memory");
}

/// Waits until the phase of parity `parity` of the barrier has completed.
__device__ __forceinline__ void mbarWait(uint32_t bar, uint32_t parity) {
  uint32_t done = 0;
  do {
    asm volatile("{\n.reg .pred p;\n"
                 "mbarrier.try_wait.parity.shared::cta.b64 p, [%1], %2;\n"
                 "selp.u32 %0, 1, 0, p;\n}\n"
                 : "=r"(done)
                 : "r"(bar), "r"(parity)
                 : "memory");
  } while (!done);
}

/// One TMA box {64 columns, 128 rows, 1, 1} of a 4-D tensor map into shared
/// memory, completing on `bar` (complete_tx).
__device__ __forceinline__ void tmaLoad(uint32_t dst, const CUtensorMap *map,
                                        uint32_t bar, int c0, int c1, int c2,
                                        int c3) {
  asm volatile(
      "cp.async.bulk.tensor.4d.shared::cluster.global.tile.mbarrier::"
      "complete_tx::bytes [%0], [%1, {%3, %4, %5, %6}], [%2];\n" ::"r"(dst),
      "l"(reinterpret_cast<uint64_t>(map)), "r"(bar), "r"(c0), "r"(c1), "r"(c2),
      "r"(c3)
      : "memory");
}

/// A 32-bit store to / load from shared memory (the ring's block slots).
__device__ __forceinline__ void storeShared(uint32_t addr, int32_t v) {
  asm volatile("st.shared.b32 [%0], %1;\n" ::"r"(addr), "r"(v) : "memory");
}
__device__ __forceinline__ int32_t loadShared(uint32_t addr) {
  int32_t v;
  asm volatile("ld.shared.b32 %0, [%1];\n" : "=r"(v) : "r"(addr) : "memory");
  return v;
}

/// Brings the line of global address `addr` into L1 (a later load of it
/// then hits there).
__device__ __forceinline__ void prefetchL1(const void *addr) {
  asm volatile("prefetch.global.L1 [%0];\n" ::"l"(addr) : "memory");
}

__device__ __forceinline__ void prefetchTensorMap(const CUtensorMap *map) {
  asm volatile(
      "prefetch.tensormap [%0];\n" ::"l"(reinterpret_cast<uint64_t>(map))
      : "memory");
}

/// The warpgroup's registers per thread from here on (setmaxnreg): Dec
/// gives registers back to the CTA's pool, Inc takes them from it.
template <int Regs> __device__ __forceinline__ void setMaxRegistersDec() {
  asm volatile("setmaxnreg.dec.sync.aligned.u32 %0;\n" ::"n"(Regs));
}
template <int Regs> __device__ __forceinline__ void setMaxRegistersInc() {
  asm volatile("setmaxnreg.inc.sync.aligned.u32 %0;\n" ::"n"(Regs));
}

__device__ __forceinline__ void wgmmaFence() {
  asm volatile("wgmma.fence.sync.aligned;\n" ::: "memory");
}
__device__ __forceinline__ void wgmmaCommit() {
  asm volatile("wgmma.commit_group.sync.aligned;\n" ::: "memory");
}
template <int Pending> __device__ __forceinline__ void wgmmaWait() {
  asm volatile("wgmma.wait_group.sync.aligned %0;\n" ::"n"(Pending) : "memory");
}

/// Keeps the compiler from moving reads or writes of registers that an
/// in-flight wgmma owns across the wgmma fence / wait instructions.
template <int N> __device__ __forceinline__ void fenceRegs(float (&r)[N]) {
#pragma unroll
  for (int i = 0; i < N; ++i)
    asm volatile("" : "+f"(r[i])::"memory");
}
template <int N, int M>
__device__ __forceinline__ void fenceRegs(uint32_t (&r)[N][M]) {
#pragma unroll
  for (int i = 0; i < N; ++i)
#pragma unroll
    for (int j = 0; j < M; ++j)
      asm volatile("" : "+r"(r[i][j])::"memory");
}

/// Orders this thread's generic-proxy writes of shared memory before later
/// async-proxy reads of it (wgmma operands, TMA stores).
__device__ __forceinline__ void fenceProxyAsyncShared() {
  asm volatile("fence.proxy.async.shared::cta;\n" ::: "memory");
}

/// A wgmma shared-memory descriptor with the 128-byte swizzle: start
/// address, leading and stride byte offsets (16-byte units).
__device__ __forceinline__ uint64_t smemDesc(uint32_t addr, uint32_t lbo,
                                             uint32_t sbo) {
  return uint64_t((addr & 0x3FFFF) >> 4) | (uint64_t(lbo >> 4) << 16) |
         (uint64_t(sbo >> 4) << 32) | (uint64_t(1) << 62);
}

__device__ __forceinline__ float exp2Approx(float x) {
  float y;
  asm("ex2.approx.ftz.f32 %0, %1;\n" : "=f"(y) : "f"(x));
  return y;
}

//===----------------------------------------------------------------------===//
// wgmma instructions: Wgmma<N, isBf16>::ss (A, B from shared memory, both
// K-major) and ::rs (A from registers, B MN-major), m64nNk16, f32 accumulate.
// d holds this thread's N / 2 accumulators: d[4t + e] is row
// warp * 16 + lane / 4 + 8 (e / 2), column 8t + 2 (lane % 4) + e % 2.
//===----------------------------------------------------------------------===//

template <int N, bool IsBf16> struct Wgmma;

// The operands of one specialization: this thread's NACC accumulators as
// "+f" operands, and the PTX register lists that name them.
#define UNISPARSE_ACC4(i)                                                      \
  "+f"(d[(i)]), "+f"(d[(i) + 1]), "+f"(d[(i) + 2]), "+f"(d[(i) + 3])
#define UNISPARSE_ACC16(i)                                                     \
  UNISPARSE_ACC4(i), UNISPARSE_ACC4((i) + 4), UNISPARSE_ACC4((i) + 8),         \
      UNISPARSE_ACC4((i) + 12)
#define UNISPARSE_ACC32 UNISPARSE_ACC16(0), UNISPARSE_ACC16(16)
#define UNISPARSE_ACC64                                                        \
  UNISPARSE_ACC32, UNISPARSE_ACC16(32), UNISPARSE_ACC16(48)
#define UNISPARSE_REGS32                                                       \
  "{%0, %1, %2, %3, %4, %5, %6, %7, %8, %9, %10, %11, %12, %13, %14, %15, "    \
  "%16, %17, %18, %19, %20, %21, %22, %23, %24, %25, %26, %27, %28, %29, "     \
  "%30, %31}"
#define UNISPARSE_ACC36 UNISPARSE_ACC32, UNISPARSE_ACC4(32)
#define UNISPARSE_REGS36                                                       \
  "{%0, %1, %2, %3, %4, %5, %6, %7, %8, %9, %10, %11, %12, %13, %14, %15, "    \
  "%16, %17, %18, %19, %20, %21, %22, %23, %24, %25, %26, %27, %28, %29, "     \
  "%30, %31, %32, %33, %34, %35}"
#define UNISPARSE_REGS64                                                       \
  "{%0, %1, %2, %3, %4, %5, %6, %7, %8, %9, %10, %11, %12, %13, %14, %15, "    \
  "%16, %17, %18, %19, %20, %21, %22, %23, %24, %25, %26, %27, %28, %29, "     \
  "%30, %31, %32, %33, %34, %35, %36, %37, %38, %39, %40, %41, %42, %43, "     \
  "%44, %45, %46, %47, %48, %49, %50, %51, %52, %53, %54, %55, %56, %57, "     \
  "%58, %59, %60, %61, %62, %63}"

/// Wgmma<N, IS_BF16> for element type TYPE ("bf16" or "f16"), NACC = N / 2
/// accumulators named by REGS/ACC; SS_AB and RS_AB are the PTX operands of A
/// and B that follow them, SS_P and RS_P the predicate's operand.
#define UNISPARSE_WGMMA(N, IS_BF16, TYPE, NACC, REGS, ACC, SS_AB, SS_P, RS_AB, \
                        RS_P)                                                  \
  template <> struct Wgmma<N, IS_BF16> {                                       \
    /** d (+)= A B, A and B K-major in shared memory (descriptors). */         \
    static __device__ __forceinline__ void ss(float (&d)[NACC], uint64_t a,    \
                                              uint64_t b, int accumulate) {    \
      asm volatile("{\n.reg .pred p;\nsetp.ne.b32 p, " SS_P ", 0;\n"           \
                   "wgmma.mma_async.sync.aligned.m64n" #N "k16.f32." TYPE      \
                   "." TYPE " " REGS ", " SS_AB ", p, 1, 1, 0, 0;\n}\n"        \
                   : ACC                                                       \
                   : "l"(a), "l"(b), "r"(accumulate));                         \
    }                                                                          \
    /** d += A B, A from registers, B MN-major in shared memory. */            \
    static __device__ __forceinline__ void                                     \
    rs(float (&d)[NACC], const uint32_t (&a)[4], uint64_t b) {                 \
      asm volatile("{\n.reg .pred p;\nsetp.ne.b32 p, " RS_P ", 0;\n"           \
                   "wgmma.mma_async.sync.aligned.m64n" #N "k16.f32." TYPE      \
                   "." TYPE " " REGS ", " RS_AB ", p, 1, 1, 1;\n}\n"           \
                   : ACC                                                       \
                   : "r"(a[0]), "r"(a[1]), "r"(a[2]), "r"(a[3]), "l"(b),       \
                     "r"(1));                                                  \
    }                                                                          \
  };

#define UNISPARSE_WGMMA_N64(IS_BF16, TYPE)                                     \
  UNISPARSE_WGMMA(64, IS_BF16, TYPE, 32, UNISPARSE_REGS32, UNISPARSE_ACC32,    \
                  "%32, %33", "%34", "{%32, %33, %34, %35}, %36", "%37")
#define UNISPARSE_WGMMA_N72(IS_BF16, TYPE)                                     \
  UNISPARSE_WGMMA(72, IS_BF16, TYPE, 36, UNISPARSE_REGS36, UNISPARSE_ACC36,    \
                  "%36, %37", "%38", "{%36, %37, %38, %39}, %40", "%41")
#define UNISPARSE_WGMMA_N128(IS_BF16, TYPE)                                    \
  UNISPARSE_WGMMA(128, IS_BF16, TYPE, 64, UNISPARSE_REGS64, UNISPARSE_ACC64,   \
                  "%64, %65", "%66", "{%64, %65, %66, %67}, %68", "%69")

UNISPARSE_WGMMA_N64(true, "bf16")
UNISPARSE_WGMMA_N72(true, "bf16")
UNISPARSE_WGMMA_N128(true, "bf16")
UNISPARSE_WGMMA_N64(false, "f16")
UNISPARSE_WGMMA_N72(false, "f16")
UNISPARSE_WGMMA_N128(false, "f16")

#undef UNISPARSE_WGMMA_N128
#undef UNISPARSE_WGMMA_N72
#undef UNISPARSE_WGMMA_N64
#undef UNISPARSE_WGMMA
#undef UNISPARSE_REGS64
#undef UNISPARSE_REGS36
#undef UNISPARSE_REGS32
#undef UNISPARSE_ACC64
#undef UNISPARSE_ACC36
#undef UNISPARSE_ACC32
#undef UNISPARSE_ACC16
#undef UNISPARSE_ACC4

} // namespace unisparse::rt::cuda

#endif // UNISPARSE_RUNTIME_LIB_CUDA_SM90PTX_H
