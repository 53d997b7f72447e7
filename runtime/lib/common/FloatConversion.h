//===- FloatConversion.h - f16/bf16 <-> f32 conversions ---------*- C++ -*-===//
//
// Bit-exact conversions between IEEE binary16 (f16), bfloat16 (bf16) and f32.
// Narrowing rounds to nearest, ties to even; overflow gives +-inf; NaN stays
// NaN (quiet, sign and the top payload bits kept); subnormals are handled
// exactly in both directions. Header-only so that the tests can check it.
//
//===----------------------------------------------------------------------===//

#ifndef UNISPARSE_RUNTIME_LIB_COMMON_FLOATCONVERSION_H
#define UNISPARSE_RUNTIME_LIB_COMMON_FLOATCONVERSION_H

#include <cstdint>
#include <cstring>

namespace unisparse::rt {

inline uint32_t floatBits(float f) {
  uint32_t u;
  std::memcpy(&u, &f, sizeof(u));
  return u;
}

inline float bitsToFloat(uint32_t u) {
  float f;
  std::memcpy(&f, &u, sizeof(f));
  return f;
}

/// bf16 -> f32 (exact).
inline float bf16ToFloat(uint16_t h) {
  return bitsToFloat(static_cast<uint32_t>(h) << 16);
}

/// f32 -> bf16, round to nearest even; NaN becomes a quiet NaN.
inline uint16_t floatToBf16(float f) {
  uint32_t u = floatBits(f);
  if ((u & 0x7fffffffu) > 0x7f800000u)
    return static_cast<uint16_t>((u >> 16) | 0x0040u);
  // Adding 0x7fff plus the lowest kept bit rounds ties to even; a carry out of
  // the mantissa correctly bumps the exponent (up to inf).
  u += 0x7fffu + ((u >> 16) & 1u);
  return static_cast<uint16_t>(u >> 16);
}

/// f16 -> f32 (exact, including subnormals, inf and NaN).
inline float f16ToFloat(uint16_t h) {
  uint32_t sign = static_cast<uint32_t>(h & 0x8000u) << 16;
  uint32_t exp = (h >> 10) & 0x1fu;
  uint32_t mant = h & 0x3ffu;
  if (exp == 0x1f) // inf or NaN: keep the payload.
    return bitsToFloat(sign | 0x7f800000u | (mant << 13));
  if (exp == 0) {
    // Zero or subnormal: mant * 2^-24, exact in f32.
    float mag = static_cast<float>(mant) * 5.9604644775390625e-8f;
    return bitsToFloat(sign | floatBits(mag));
  }
  return bitsToFloat(sign | ((exp + 112u) << 23) | (mant << 13));
}

/// f32 -> f16, round to nearest even; overflow gives inf, NaN stays a quiet
/// NaN.
inline uint16_t floatToF16(float f) {
  uint32_t u = floatBits(f);
  uint16_t sign = static_cast<uint16_t>((u >> 16) & 0x8000u);
  uint32_t a = u & 0x7fffffffu;
  if (a >= 0x7f800000u) // inf or NaN
    return sign | 0x7c00u |
           (a > 0x7f800000u ? 0x0200u | ((a >> 13) & 0x3ffu) : 0u);
  if (a >= 0x477ff000u) // >= 65520 rounds to inf
    return sign | 0x7c00u;
  if (a >= 0x38800000u) {
    // Normal in f16: rebias the exponent (127 -> 15) and round 13 bits off.
    a -= 112u << 23;
    a += 0x0fffu + ((a >> 13) & 1u);
    return sign | static_cast<uint16_t>(a >> 13);
  }
  if (a < 0x33000000u) // < 2^-25 (or exactly: a tie to 0) rounds to zero
    return sign;
  // Subnormal in f16: the result is round(value / 2^-24). With the implicit
  // bit, value = m * 2^(e - 150), so shift m right by 126 - e (14..24).
  uint32_t e = a >> 23;
  uint32_t m = (a & 0x7fffffu) | 0x800000u;
  uint32_t shift = 126u - e;
  uint32_t result = m >> shift;
  uint32_t rem = m & ((1u << shift) - 1u);
  uint32_t half = 1u << (shift - 1u);
  if (rem > half || (rem == half && (result & 1u)))
    ++result; // may carry into the smallest normal (0x0400): still correct
  return sign | static_cast<uint16_t>(result);
}

} // namespace unisparse::rt

#endif // UNISPARSE_RUNTIME_LIB_COMMON_FLOATCONVERSION_H
