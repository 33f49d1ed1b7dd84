// Runs every registered test; prints "ok <name>" or "FAIL <name>: <why>" for each, then
// "N passed, N failed". Exits non-zero on any failure. A test that leaves descriptors
// open fails too. Optional argument: run only tests whose name contains it.
#include <cstdio>
#include <cstring>
#include <exception>

#include "check.h"
#include "test_util.h"

int main(int argc, char** argv) {
  setvbuf(stdout, nullptr, _IONBF, 0);
  muxtest::IgnoreSigPipe();  // raw test sockets; the core itself uses MSG_NOSIGNAL
  muxtest::RaiseNoFile();
  const char* filter = argc > 1 ? argv[1] : nullptr;
  int passed = 0, failed = 0;
  for (const auto& t : muxtest::Registry()) {
    if (filter != nullptr && strstr(t.name, filter) == nullptr) continue;
    int fds_before = muxtest::OpenFdCount();
    std::string why;
    try {
      t.fn();
    } catch (const muxtest::Failure& f) {
      why = f.why;
    } catch (const std::exception& e) {
      why = std::string("exception: ") + e.what();
    }
    int fds_after = muxtest::OpenFdCount();
    if (why.empty() && fds_after != fds_before) {
      why = "descriptor leak: " + std::to_string(fds_before) + " open before, " +
            std::to_string(fds_after) + " after";
    }
    if (why.empty()) {
      printf("ok %s\n", t.name);
      passed++;
    } else {
      printf("FAIL %s: %s\n", t.name, why.c_str());
      failed++;
    }
  }
  printf("%d passed, %d failed\n", passed, failed);
  return failed == 0 ? 0 : 1;
}
