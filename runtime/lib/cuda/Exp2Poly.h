//===- Exp2Poly.h - exp2 by a polynomial on the FMA pipe --------*- C++ -*-===//
//
// 2^x without the MUFU unit, for the sm_90a attention kernel's softmax
// (FlashAttention-4's way around the exp-unit bound at small head dims):
//
//   xc = max(x, -127)                                 FMNMX
//   t  = xc + (1.5 * 2^23 + 127), rounded toward -inf   FADD.RM: the low
//        mantissa bits of t hold r + 127, r = floor(xc)
//   f  = xc - (t - (1.5 * 2^23 + 127))                FADD, FADD (exact):
//        f = xc - r in [0, 1)
//   p  = 1 + f (c1 + f (c2 + f c3))                   FFMA x 3: p in [1, 2)
//   2^x = p * float(bits (r + 127) << 23) = p * 2^r    SHF, FMUL
//
// 9 instructions on the FMA / ALU pipes against one MUFU.EX2 (the FFMA that
// forms x from the score is shared by both paths). Adding r to p's
// exponent field with one integer add instead of the SHF + FMUL would save
// an instruction, but ptxas (CUDA 13.0) then serializes the kernel's wgmma
// pipeline ("C7511: insufficient register resources"), at every fraction.
//
// Accuracy (checked by the runtime's CPU test Exp2PolyTest.cpp, and bit for
// bit against the device by the CUDA test): for -126 <= x <= 127 the
// relative error against 2^x is at most kExp2PolyMaxRelError = 8.6e-5 (the
// minimax error of the degree-3 fit with p(0) = 1 on [0, 1), 8.56e-5, plus
// float32 rounding); ex2.approx.ftz's own error is 2^-22. For x < -126
// (-inf included) the result is exactly +0 (r + 127 = 0 makes the factor
// +0), where 2^x < 2^-126 (ex2.approx.ftz flushes those to 0 as well). A NaN
// gives +0 too (max(NaN, -127) = -127), where ex2.approx gives NaN. x must
// be <= 127 (the kernel's x are at most its lazy-rescale threshold, 8).
//
// What this error does to attention: every P = 2^x of a row is off by a
// factor 1 + d, |d| <= 8.6e-5, before the bf16 / f16 rounding of P (2^-8 /
// 2^-11 relative); O = sum P v / sum P then moves by at most 2 * 8.6e-5 *
// max |v| and the LSE by at most ln(1 + 8.6e-5) < 1e-4, far inside the CUDA
// tests' tolerance (relative L2 of O 2e-2 bf16 / 5e-3 f16, LSE 1e-2), which
// is set by the rounding of P and of the inputs.
//
// Host and device compile the same arithmetic (IEEE fma and adds), so the
// host function is a bit-exact model of the device one.
//
//===----------------------------------------------------------------------===//

#ifndef UNISPARSE_RUNTIME_LIB_CUDA_EXP2POLY_H
#define UNISPARSE_RUNTIME_LIB_CUDA_EXP2POLY_H

#include <cmath>
#include <cstdint>
#include <cstring>

#ifdef __CUDACC__
#define UNISPARSE_HOST_DEVICE __host__ __device__
#else
#define UNISPARSE_HOST_DEVICE
#endif

namespace unisparse::rt::cuda {

/// p(f) = 1 + kExp2PolyC1 f + kExp2PolyC2 f^2 + kExp2PolyC3 f^3, the
/// relative-error minimax fit of 2^f on [0, 1) with p(0) = 1 (Lawson's
/// iteration, coefficients rounded to float). p(1) = 1.99983 < 2.
constexpr float kExp2PolyC1 = 0.6951168179512024f;
constexpr float kExp2PolyC2 = 0.22764484584331512f;
constexpr float kExp2PolyC3 = 0.07706717401742935f;
/// Bound of |exp2Poly(x) / 2^x - 1| for -126 <= x <= 127 (x < -126: +0).
constexpr double kExp2PolyMaxRelError = 8.6e-5;

UNISPARSE_HOST_DEVICE inline float exp2Poly(float x) {
  constexpr float kMagic = 12583039.0f; // 1.5 * 2^23 + 127
#ifdef __CUDA_ARCH__
  const float xc = fmaxf(x, -127.0f);
  const float t = __fadd_rd(xc, kMagic);
  const float f = __fsub_rn(xc, __fsub_rn(t, kMagic));
  float p = fmaf(kExp2PolyC3, f, kExp2PolyC2);
  p = fmaf(p, f, kExp2PolyC1);
  p = fmaf(p, f, 1.0f);
  return p * __uint_as_float(__float_as_uint(t) << 23);
#else
  const float xc = std::fmax(x, -127.0f);
  // floor(xc) is an integer of at most 8 bits: the sum is exact.
  const float t = std::floor(xc) + kMagic;
  const float f = xc - (t - kMagic);
  float p = std::fma(kExp2PolyC3, f, kExp2PolyC2);
  p = std::fma(p, f, kExp2PolyC1);
  p = std::fma(p, f, 1.0f);
  uint32_t tb;
  std::memcpy(&tb, &t, 4);
  const uint32_t sb = tb << 23;
  float scale;
  std::memcpy(&scale, &sb, 4);
  return p * scale;
#endif
}

} // namespace unisparse::rt::cuda

#undef UNISPARSE_HOST_DEVICE

#endif // UNISPARSE_RUNTIME_LIB_CUDA_EXP2POLY_H
