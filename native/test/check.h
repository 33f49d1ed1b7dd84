// Minimal test harness for the native core: no framework, one behaviour per test.
// TEST(name) registers a function; CHECK(cond, fmt, ...) fails the running test by
// throwing, so it works from helpers too. Never CHECK inside a LoopHost callback (that
// would unwind through the loop): record the problem in the host and CHECK afterwards.
#ifndef MUXNET_TEST_CHECK_H_
#define MUXNET_TEST_CHECK_H_

#include <cstdio>
#include <string>
#include <vector>

namespace muxtest {

struct Failure {
  std::string why;
};

using TestFn = void (*)();
struct TestCase {
  const char* name;
  TestFn fn;
};

inline std::vector<TestCase>& Registry() {
  static std::vector<TestCase> tests;
  return tests;
}

struct Registrar {
  Registrar(const char* name, TestFn fn) { Registry().push_back(TestCase{name, fn}); }
};

template <typename... Args>
[[noreturn]] inline void Fail(const char* file, int line, const char* expr, const char* fmt,
                              Args... args) {
  char msg[512];
  if constexpr (sizeof...(Args) == 0) {
    snprintf(msg, sizeof msg, "%s", fmt);
  } else {
    snprintf(msg, sizeof msg, fmt, args...);
  }
  char where[768];
  snprintf(where, sizeof where, "%s:%d: CHECK(%s) %s", file, line, expr, msg);
  throw Failure{where};
}

}  // namespace muxtest

#define MUXTEST_CAT2(a, b) a##b
#define MUXTEST_CAT(a, b) MUXTEST_CAT2(a, b)

#define TEST(name)                                                          \
  static void name();                                                       \
  static ::muxtest::Registrar MUXTEST_CAT(registrar_, name)(#name, &name); \
  static void name()

// CHECK(cond) or CHECK(cond, "printf format", args...)
#define CHECK(cond, ...)                                                             \
  do {                                                                               \
    if (!(cond)) ::muxtest::Fail(__FILE__, __LINE__, #cond, "" __VA_ARGS__);         \
  } while (0)

#endif  // MUXNET_TEST_CHECK_H_
