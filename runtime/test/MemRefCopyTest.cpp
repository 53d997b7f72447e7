//===- MemRefCopyTest.cpp - memrefCopy: strided copies and bad calls ------===//

#include "TestFramework.h"

#include "unisparse/runtime/unisparse_runtime.h"

#include <cstdint>
#include <cstring>
#include <vector>

namespace {
/// MLIR's ranked descriptor of rank 2 and its unranked wrapper.
struct Desc2 {
  float *allocated, *aligned;
  int64_t offset, sizes[2], strides[2];
};
struct Unranked {
  int64_t rank;
  void *descriptor;
};
} // namespace

extern "C" void memrefCopy(int64_t elemSize, Unranked *src, Unranked *dst);

TEST_CASE(memref_copy_strided) {
  // A 3x4 window (offset 1, row stride 6) of a 4x6 source into a transposed
  // layout (column-major 3x4) of the destination.
  std::vector<float> a(24), b(12, -1.0f);
  for (int i = 0; i < 24; ++i)
    a[i] = float(i) * 0.5f + 1.0f;
  Desc2 s{a.data(), a.data(), 1, {3, 4}, {6, 1}};
  Desc2 d{b.data(), b.data(), 0, {3, 4}, {1, 3}};
  Unranked us{2, &s}, ud{2, &d};
  unisparse_rt_clear_error();
  memrefCopy(sizeof(float), &us, &ud);
  CHECK(unisparse_rt_last_error() == UNISPARSE_STATUS_SUCCESS);
  for (int i = 0; i < 3; ++i)
    for (int j = 0; j < 4; ++j)
      CHECK_MSG(b[i + 3 * j] == a[1 + 6 * i + j], "b[%d,%d] = %g", i, j,
                double(b[i + 3 * j]));
}

TEST_CASE(memref_copy_bad_calls_record_an_error) {
  std::vector<float> a(6, 1.0f), b(6, 2.0f);
  Desc2 s{a.data(), a.data(), 0, {2, 3}, {3, 1}};
  Desc2 d{b.data(), b.data(), 0, {2, 3}, {3, 1}};
  Unranked us{2, &s}, ud{2, &d};
  struct Case {
    const char *what;
    Unranked *src, *dst;
    int64_t elem;
    unisparse_status_t status;
    const char *message;
  };
  Unranked rank1{1, &d}, nullDesc{2, nullptr};
  Desc2 d23{b.data(), b.data(), 0, {3, 2}, {2, 1}};
  Unranked shape{2, &d23};
  const Case cases[] = {
      {"null source", nullptr, &ud, 4, UNISPARSE_STATUS_NULL_POINTER, "null"},
      {"null descriptor", &us, &nullDesc, 4, UNISPARSE_STATUS_NULL_POINTER,
       "null"},
      {"rank mismatch", &us, &rank1, 4, UNISPARSE_STATUS_INVALID_ARGUMENT,
       "rank 2 and destination rank 1"},
      {"size mismatch", &us, &shape, 4, UNISPARSE_STATUS_INVALID_ARGUMENT,
       "dimension 0 has size 2 in the source and 3"},
      {"element size 0", &us, &ud, 0, UNISPARSE_STATUS_INVALID_ARGUMENT,
       "element size 0"},
  };
  for (const Case &c : cases) {
    unisparse_rt_clear_error();
    memrefCopy(c.elem, c.src, c.dst);
    CHECK_MSG(unisparse_rt_last_error() == c.status, "%s: status %d", c.what,
              int(unisparse_rt_last_error()));
    const char *msg = unisparse_rt_last_error_message();
    CHECK_MSG(msg && std::strstr(msg, c.message), "%s: message '%s'", c.what,
              msg ? msg : "(null)");
    for (float x : b)
      CHECK_MSG(x == 2.0f, "%s: the destination was written", c.what);
  }
  unisparse_rt_clear_error();
}
