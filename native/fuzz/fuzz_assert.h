// FUZZ_ASSERT(cond) or FUZZ_ASSERT(cond, "printf format", args...): a broken invariant
// prints where and why, then aborts, which libFuzzer records as a crash with its input.
#ifndef MUXNET_FUZZ_FUZZ_ASSERT_H_
#define MUXNET_FUZZ_FUZZ_ASSERT_H_

#include <cstdio>
#include <cstdlib>

#define FUZZ_ASSERT(cond, ...)                                                    \
  do {                                                                            \
    if (!(cond)) {                                                                \
      fprintf(stderr, "%s:%d: invariant failed: %s ", __FILE__, __LINE__, #cond); \
      fprintf(stderr, "" __VA_ARGS__);                                            \
      fprintf(stderr, "\n");                                                      \
      abort();                                                                    \
    }                                                                             \
  } while (0)

#endif  // MUXNET_FUZZ_FUZZ_ASSERT_H_
