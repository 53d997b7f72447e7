//===- FloatConversionTest.cpp - f16/bf16 <-> f32 conversions -------------===//
//
// Checks the conversions of common/FloatConversion.h on exact values, ties
// (round to nearest even), overflow, subnormals, inf and NaN, and exhaustively
// that every f16/bf16 value round-trips through f32.
//
//===----------------------------------------------------------------------===//

#include "common/FloatConversion.h"
#include "TestFramework.h"

#include <cmath>
#include <cstdint>
#include <limits>

using namespace unisparse::rt;

namespace {
float f(uint32_t bits) { return bitsToFloat(bits); }
bool isNaN16(uint16_t h) { return (h & 0x7c00) == 0x7c00 && (h & 0x3ff); }
bool isNaNBf16(uint16_t h) { return (h & 0x7f80) == 0x7f80 && (h & 0x7f); }
} // namespace

TEST_CASE(f16RoundTripIsExact) {
  for (uint32_t h = 0; h < 0x10000; ++h) {
    const float x = f16ToFloat(uint16_t(h));
    if (isNaN16(uint16_t(h))) {
      CHECK_MSG(std::isnan(x), "h = 0x%04x", h);
      CHECK_MSG(isNaN16(floatToF16(x)), "h = 0x%04x", h);
      continue;
    }
    CHECK_MSG(floatToF16(x) == h, "h = 0x%04x -> %g -> 0x%04x", h, x,
              floatToF16(x));
  }
}

TEST_CASE(bf16RoundTripIsExact) {
  for (uint32_t h = 0; h < 0x10000; ++h) {
    const float x = bf16ToFloat(uint16_t(h));
    if (isNaNBf16(uint16_t(h))) {
      CHECK_MSG(std::isnan(x), "h = 0x%04x", h);
      CHECK_MSG(isNaNBf16(floatToBf16(x)), "h = 0x%04x", h);
      continue;
    }
    CHECK_MSG(floatToBf16(x) == h, "h = 0x%04x", h);
  }
}

TEST_CASE(f16Rounding) {
  CHECK(floatToF16(1.0f) == 0x3c00);
  CHECK(floatToF16(-2.0f) == 0xc000);
  CHECK(floatToF16(65504.0f) == 0x7bff); // max finite
  // Ties to even: 1 + 2^-11 is halfway between 1 and 1 + 2^-10.
  CHECK(floatToF16(1.0f + 0x1p-11f) == 0x3c00);
  CHECK(floatToF16(1.0f + 3 * 0x1p-11f) == 0x3c02);
  CHECK(floatToF16(1.0f + 0x1p-11f + 0x1p-20f) == 0x3c01); // above the tie
  // Overflow: [65504, 65520) rounds down, 65520 (a tie) up to inf.
  CHECK(floatToF16(65519.0f) == 0x7bff);
  CHECK(floatToF16(65520.0f) == 0x7c00);
  CHECK(floatToF16(-1e10f) == 0xfc00);
  CHECK(floatToF16(std::numeric_limits<float>::infinity()) == 0x7c00);
  // Subnormals: 2^-24 is the smallest, 2^-25 ties to 0, 3 * 2^-25 ties to 2.
  CHECK(floatToF16(0x1p-24f) == 0x0001);
  CHECK(floatToF16(0x1p-25f) == 0x0000);
  CHECK(floatToF16(0x1.000002p-25f) == 0x0001);
  CHECK(floatToF16(3 * 0x1p-25f) == 0x0002);
  CHECK(floatToF16(-0x1p-14f) == 0x8400);           // smallest normal
  CHECK(floatToF16(0x1p-14f - 0x1p-26f) == 0x0400); // rounds up to normal
  CHECK(floatToF16(1e-30f) == 0x0000);
  CHECK(floatToF16(-0.0f) == 0x8000);
  CHECK(f16ToFloat(0x0001) == 0x1p-24f);
  CHECK(f16ToFloat(0x83ff) == -1023 * 0x1p-24f);
  CHECK(std::isnan(f16ToFloat(floatToF16(std::nanf("")))));
  CHECK(floatToF16(-std::numeric_limits<float>::quiet_NaN()) & 0x8000);
}

TEST_CASE(bf16Rounding) {
  CHECK(floatToBf16(1.0f) == 0x3f80);
  // Ties to even: 1 + 2^-8 is halfway between 1 and 1 + 2^-7.
  CHECK(floatToBf16(1.0f + 0x1p-8f) == 0x3f80);
  CHECK(floatToBf16(1.0f + 3 * 0x1p-8f) == 0x3f82);
  CHECK(floatToBf16(1.0f + 0x1p-8f + 0x1p-20f) == 0x3f81);
  // Overflow to inf, and the largest finite value.
  CHECK(floatToBf16(f(0x7f7fffff)) == 0x7f80);
  CHECK(floatToBf16(f(0x7f7f7fff)) == 0x7f7f);
  CHECK(floatToBf16(-std::numeric_limits<float>::infinity()) == 0xff80);
  // Subnormals round like everything else.
  CHECK(floatToBf16(f(0x00018000)) == 0x0002);
  CHECK(floatToBf16(f(0x00008000)) == 0x0000);
  // NaN stays NaN, even when rounding would carry into the exponent, and
  // keeps its sign.
  CHECK(isNaNBf16(floatToBf16(f(0x7f800001))));
  CHECK(isNaNBf16(floatToBf16(f(0x7fffffff))));
  CHECK(floatToBf16(f(0xffc00000)) == 0xffc0);
}
