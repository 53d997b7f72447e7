//===- Exp2PolyTest.cpp - exp2 by a polynomial (the sm_90a softmax) -------===//
//
// Checks the error bound that cuda/Exp2Poly.h states (and that the CUDA
// tests' tolerance relies on) on the host model of the device function,
// which computes the same IEEE operations: relative error against 2^x at
// most kExp2PolyMaxRelError on a dense grid and on random points of
// [-126, 127], exact powers of two at integers, exactly +0 below -126
// (-inf and NaN included). The CUDA test checks that the device computes
// the host's bits.
//
//===----------------------------------------------------------------------===//

#include "cuda/Exp2Poly.h"
#include "TestFramework.h"

#include <cmath>
#include <cstdint>
#include <cstring>
#include <initializer_list>
#include <limits>

using unisparse::rt::cuda::exp2Poly;
using unisparse::rt::cuda::kExp2PolyMaxRelError;

namespace {
double relError(float x) {
  const double want = std::exp2(double(x));
  return std::fabs(double(exp2Poly(x)) / want - 1.0);
}
uint32_t bitsOf(float v) {
  uint32_t b;
  std::memcpy(&b, &v, 4);
  return b;
}
} // namespace

TEST_CASE(exp2PolyRelativeErrorOnAGrid) {
  // Every multiple of 2^-12 in [-126, 127]: all fractions f on that grid
  // at every exponent r.
  double worst = 0.0;
  float worstX = 0.0f;
  for (int64_t k = -126 * 4096; k <= 127 * 4096; ++k) {
    const float x = float(k) / 4096.0f;
    const double e = relError(x);
    if (e > worst) {
      worst = e;
      worstX = x;
    }
  }
  CHECK_MSG(worst <= kExp2PolyMaxRelError,
            "max relative error %.3e at x = %.9g", worst, double(worstX));
  // The bound is the polynomial's (not a loose one): a fit of lower degree
  // or wrong coefficients would show here or above.
  CHECK_MSG(worst > 0.5 * kExp2PolyMaxRelError, "max relative error %.3e",
            worst);
}

TEST_CASE(exp2PolyRelativeErrorAtRandomPoints) {
  uint64_t state = 0x9e3779b97f4a7c15ull;
  double worst = 0.0;
  for (int i = 0; i < 2000000; ++i) {
    state = state * 6364136223846793005ull + 1442695040888963407ull;
    const double u = double(state >> 11) * 0x1p-53; // [0, 1)
    const float x = float(-126.0 + 253.0 * u);
    if (x < -126.0f || x > 127.0f)
      continue;
    worst = std::fmax(worst, relError(x));
  }
  CHECK_MSG(worst <= kExp2PolyMaxRelError, "max relative error %.3e", worst);
}

TEST_CASE(exp2PolyIsExactAtIntegers) {
  for (int r = -126; r <= 127; ++r)
    CHECK_MSG(exp2Poly(float(r)) == std::ldexp(1.0f, r), "x = %d", r);
}

TEST_CASE(exp2PolyIsZeroBelowMinus126) {
  const float inf = std::numeric_limits<float>::infinity();
  const float nan = std::numeric_limits<float>::quiet_NaN();
  for (float x : {-126.0001f, -126.5f, -127.0f, -127.5f, -128.0f, -150.0f,
                  -1e30f, -inf, nan})
    CHECK_MSG(bitsOf(exp2Poly(x)) == 0u, "x = %g gives %g", double(x),
              double(exp2Poly(x)));
}

TEST_CASE(exp2PolyKeepsTheKernelsRange) {
  // The kernel's arguments are at most its lazy-rescale threshold (8).
  for (float x : {0.0f, 0.5f, 7.999f, 8.0f, 100.25f, 127.0f}) {
    const float y = exp2Poly(x);
    CHECK_MSG(std::isfinite(y) && y > 0.0f, "x = %g gives %g", double(x),
              double(y));
  }
}
