//===- TestFramework.h - A tiny unit-test harness ---------------*- C++ -*-===//
//
// TEST_CASE(name) { ... } registers a test; CHECK(cond) and
// CHECK_MSG(cond, fmt, ...) record a failure (with file and line) and keep
// going. TestMain.cpp runs every test and prints "N passed, M failed".
//
//===----------------------------------------------------------------------===//

#ifndef UNISPARSE_RUNTIME_TEST_TESTFRAMEWORK_H
#define UNISPARSE_RUNTIME_TEST_TESTFRAMEWORK_H

namespace test {

using TestFn = void (*)();

/// Adds a test to the global registry (run in registration order per file).
struct Registrar {
  Registrar(const char *name, TestFn fn);
};

/// Records a failed check of the running test.
void fail(const char *file, int line, const char *expr, const char *fmt, ...)
#if defined(__GNUC__)
    __attribute__((format(printf, 4, 5)))
#endif
    ;

} // namespace test

#define TEST_CASE(NAME)                                                        \
  static void NAME();                                                          \
  static ::test::Registrar NAME##Registrar(#NAME, NAME);                       \
  static void NAME()

#define CHECK(COND)                                                            \
  do {                                                                         \
    if (!(COND))                                                               \
      ::test::fail(__FILE__, __LINE__, #COND, "%s", "");                       \
  } while (0)

#define CHECK_MSG(COND, ...)                                                   \
  do {                                                                         \
    if (!(COND))                                                               \
      ::test::fail(__FILE__, __LINE__, #COND, __VA_ARGS__);                    \
  } while (0)

#endif // UNISPARSE_RUNTIME_TEST_TESTFRAMEWORK_H
