//===- WorkspaceTest.cpp - memory guard and tracked allocations -----------===//

#include "TestFramework.h"

#include "unisparse/runtime/unisparse_runtime.h"

#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <string>

namespace {
/// Sets (or, with null, unsets) the environment variable `name` for one
/// scope.
struct EnvVariable {
  EnvVariable(const char *name, const char *value) : name(name) {
    if (const char *old = std::getenv(name)) {
      saved = old;
      had = true;
    }
    if (value)
      setenv(name, value, 1);
    else
      unsetenv(name);
  }
  ~EnvVariable() {
    if (had)
      setenv(name, saved.c_str(), 1);
    else
      unsetenv(name);
  }
  const char *name;
  std::string saved;
  bool had = false;
};

struct LimitVariable : EnvVariable {
  explicit LimitVariable(const char *value)
      : EnvVariable("UNISPARSE_WORKSPACE_LIMIT", value) {}
};

bool messageHas(const char *text) {
  return std::strstr(unisparse_rt_last_error_message(), text) != nullptr;
}
} // namespace

TEST_CASE(workspace_within_the_bound_passes) {
  LimitVariable limit(nullptr);
  unisparse_rt_clear_error();
  CHECK(unisparse_rt_workspace_limit(UNISPARSE_DEVICE_CPU) > 0);
  CHECK(unisparse_rt_check_workspace(1 << 20, 1, 64, UNISPARSE_DEVICE_CPU) ==
        UNISPARSE_STATUS_SUCCESS);
  CHECK(unisparse_rt_last_error() == UNISPARSE_STATUS_SUCCESS);
}

TEST_CASE(workspace_above_the_bound_is_refused_with_the_sizes) {
  LimitVariable limit("4096");
  unisparse_rt_clear_error();
  CHECK(unisparse_rt_workspace_limit(UNISPARSE_DEVICE_CPU) == 4096);
  CHECK(unisparse_rt_check_workspace(4096, 1, 64, UNISPARSE_DEVICE_CPU) ==
        UNISPARSE_STATUS_SUCCESS);
  CHECK(unisparse_rt_check_workspace(4097, 3, 1000, UNISPARSE_DEVICE_CPU) ==
        UNISPARSE_STATUS_OUT_OF_MEMORY);
  CHECK(unisparse_rt_last_error() == UNISPARSE_STATUS_OUT_OF_MEMORY);
  CHECK_MSG(messageHas("B = 3, N = 1000") && messageHas("4097 bytes") &&
                messageHas("4096 bytes of UNISPARSE_WORKSPACE_LIMIT"),
            "%s", unisparse_rt_last_error_message());
}

TEST_CASE(overflowed_workspace_is_refused) {
  LimitVariable limit(nullptr);
  unisparse_rt_clear_error();
  CHECK(unisparse_rt_check_workspace(INT64_MAX, 1, 64, UNISPARSE_DEVICE_CPU) ==
        UNISPARSE_STATUS_OUT_OF_MEMORY);
  CHECK(messageHas("exceeds 2^63 - 1 bytes"));
  unisparse_rt_clear_error();
  CHECK(unisparse_rt_check_workspace(-5, 1, 64, UNISPARSE_DEVICE_CPU) ==
        UNISPARSE_STATUS_OUT_OF_MEMORY);
}

TEST_CASE(malformed_limit_variable_is_an_error) {
  for (const char *bad : {"12GB", "-1", " 5", "1e9", "99999999999999999999"}) {
    LimitVariable limit(bad);
    unisparse_rt_clear_error();
    CHECK_MSG(unisparse_rt_check_workspace(1, 1, 1, UNISPARSE_DEVICE_CPU) ==
                  UNISPARSE_STATUS_INVALID_ARGUMENT,
              "UNISPARSE_WORKSPACE_LIMIT=%s", bad);
    CHECK(messageHas("is not a byte count"));
    CHECK(unisparse_rt_workspace_limit(UNISPARSE_DEVICE_CPU) == -1);
  }
  unisparse_rt_clear_error();
}

TEST_CASE(tracked_allocations_are_aligned_and_freed) {
  int64_t mark = unisparse_rt_alloc_scope_begin();
  void *a = unisparse_rt_alloc(100, 64);
  void *b = unisparse_rt_alloc(0, 0);
  CHECK(a && b);
  CHECK(reinterpret_cast<uintptr_t>(a) % 64 == 0);
  std::memset(a, 1, 100);
  CHECK(unisparse_rt_live_allocations() == mark + 2);
  unisparse_rt_free(a);
  CHECK(unisparse_rt_live_allocations() == mark + 1);
  unisparse_rt_free(b);
  unisparse_rt_free(nullptr);
  unisparse_rt_alloc_scope_end(mark);
  CHECK(unisparse_rt_live_allocations() == mark);
}

TEST_CASE(failed_allocation_records_an_error_and_abort_frees_the_scope) {
  int64_t outer = unisparse_rt_alloc_scope_begin();
  void *kept = unisparse_rt_alloc(32, 16);
  int64_t mark = unisparse_rt_alloc_scope_begin();
  for (int i = 0; i < 100; ++i) // more blocks than the table's first size
    CHECK(unisparse_rt_alloc(48, 16) != nullptr);
  unisparse_rt_clear_error();
  CHECK(unisparse_rt_alloc(INT64_MAX - 8, 64) == nullptr);
  CHECK(unisparse_rt_last_error() == UNISPARSE_STATUS_OUT_OF_MEMORY);
  CHECK(messageHas("an allocation of"));
  unisparse_rt_clear_error();
  CHECK(unisparse_rt_alloc(16, 3) == nullptr); // not a power of two
  CHECK(unisparse_rt_last_error() == UNISPARSE_STATUS_INVALID_ARGUMENT);
  unisparse_rt_clear_error();
  // The inner scope's blocks are freed (ASan would report a leak or a double
  // free otherwise); the outer one's stays.
  unisparse_rt_alloc_scope_abort(mark);
  CHECK(unisparse_rt_live_allocations() == outer + 1);
  unisparse_rt_free(kept);
  unisparse_rt_alloc_scope_end(outer);
  CHECK(unisparse_rt_live_allocations() == outer);
}

TEST_CASE(peak_of_tracked_bytes) {
  int64_t mark = unisparse_rt_alloc_scope_begin();
  unisparse_rt_peak_allocated_bytes(/*reset=*/1);
  void *a = unisparse_rt_alloc(100, 16);
  void *b = unisparse_rt_alloc(200, 16);
  unisparse_rt_free(a);
  void *c = unisparse_rt_alloc(50, 16);
  CHECK(unisparse_rt_peak_allocated_bytes(/*reset=*/1) == 300);
  CHECK(unisparse_rt_peak_allocated_bytes(/*reset=*/0) == 250); // live now
  unisparse_rt_alloc_scope_abort(mark);                         // frees b and c
  CHECK(unisparse_rt_live_allocations() == mark);
  CHECK(unisparse_rt_peak_allocated_bytes(/*reset=*/1) == 250);
  CHECK(unisparse_rt_peak_allocated_bytes(/*reset=*/0) == 0);
  (void)b;
  (void)c;
}

TEST_CASE(freed_large_blocks_are_kept_for_the_next_call) {
  EnvVariable unset("UNISPARSE_HOST_CACHE", nullptr);
  constexpr int64_t kMiB = 1 << 20;
  int64_t mark = unisparse_rt_alloc_scope_begin();
  unisparse_rt_peak_allocated_bytes(/*reset=*/1);
  void *a = unisparse_rt_alloc(kMiB + 100, 64);
  CHECK(a != nullptr);
  std::memset(a, 1, kMiB + 100);
  unisparse_rt_free(a);
  // The same size and alignment: the kept block, tracked again (a new size
  // or alignment would not match it).
  void *b = unisparse_rt_alloc(kMiB + 100, 64);
  CHECK(b == a);
  CHECK(unisparse_rt_live_allocations() == mark + 1);
  CHECK(unisparse_rt_peak_allocated_bytes(/*reset=*/0) == kMiB + 100);
  unisparse_rt_free(b);
  unisparse_rt_alloc_scope_end(mark);
  CHECK(unisparse_rt_live_allocations() == mark);
}

TEST_CASE(the_host_cache_keeps_the_newest_blocks_within_its_bound) {
  constexpr int64_t kMiB = 1 << 20;
  EnvVariable bound("UNISPARSE_HOST_CACHE", "3145728"); // 3 MiB
  int64_t mark = unisparse_rt_alloc_scope_begin();
  void *blocks[4];
  for (void *&p : blocks) {
    p = unisparse_rt_alloc(kMiB, 64);
    CHECK(p != nullptr);
  }
  for (void *p : blocks)
    unisparse_rt_free(p);      // the first one leaves the cache with the fourth
  for (int i = 3; i >= 1; --i) // the newest first
    CHECK(unisparse_rt_alloc(kMiB, 64) == blocks[i]);
  unisparse_rt_alloc_scope_abort(mark); // frees them
  CHECK(unisparse_rt_live_allocations() == mark);
  {
    EnvVariable off("UNISPARSE_HOST_CACHE", "0"); // nothing kept
    void *p = unisparse_rt_alloc(kMiB, 64);
    unisparse_rt_free(p);
    CHECK(unisparse_rt_alloc(kMiB, 64) != nullptr); // a new block
    unisparse_rt_alloc_scope_abort(mark);
  }
  {
    EnvVariable bad("UNISPARSE_HOST_CACHE", "lots");
    unisparse_rt_clear_error();
    CHECK(unisparse_rt_alloc(kMiB, 64) == nullptr);
    CHECK(unisparse_rt_last_error() == UNISPARSE_STATUS_INVALID_ARGUMENT);
    CHECK(messageHas("UNISPARSE_HOST_CACHE = 'lots' is not a byte count"));
    unisparse_rt_clear_error();
  }
  CHECK(unisparse_rt_live_allocations() == mark);
}
