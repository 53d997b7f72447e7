//===- TestMain.cpp - Runs the runtime unit tests -------------------------===//
//
// Runs every registered test (or those whose name contains argv[1]), prints
// one line per test and a final "N passed, M failed"; exits non-zero if any
// test failed.
//
//===----------------------------------------------------------------------===//

#include "TestFramework.h"

#include <chrono>
#include <cstdarg>
#include <cstdio>
#include <cstring>
#include <vector>

namespace test {

namespace {
struct TestCase {
  const char *name;
  TestFn fn;
};

std::vector<TestCase> &registry() {
  static std::vector<TestCase> tests;
  return tests;
}

/// Failed checks of the running test.
int currentFailures = 0;
} // namespace

Registrar::Registrar(const char *name, TestFn fn) {
  registry().push_back({name, fn});
}

void fail(const char *file, int line, const char *expr, const char *fmt, ...) {
  ++currentFailures;
  std::fprintf(stderr, "  %s:%d: CHECK(%s) failed", file, line, expr);
  char message[1024];
  va_list args;
  va_start(args, fmt);
  std::vsnprintf(message, sizeof(message), fmt, args);
  va_end(args);
  if (message[0])
    std::fprintf(stderr, ": %s", message);
  std::fprintf(stderr, "\n");
}

} // namespace test

int main(int argc, char **argv) {
  const char *filter = argc > 1 ? argv[1] : nullptr;
  int passed = 0, failed = 0;
  for (const auto &test : test::registry()) {
    if (filter && !std::strstr(test.name, filter))
      continue;
    test::currentFailures = 0;
    auto start = std::chrono::steady_clock::now();
    test.fn();
    double ms = std::chrono::duration<double, std::milli>(
                    std::chrono::steady_clock::now() - start)
                    .count();
    bool ok = test::currentFailures == 0;
    std::printf("[%s] %s (%.1f ms)\n", ok ? "  OK  " : " FAIL ", test.name, ms);
    std::fflush(stdout);
    (ok ? passed : failed) += 1;
  }
  std::printf("%d passed, %d failed\n", passed, failed);
  return failed == 0 ? 0 : 1;
}
