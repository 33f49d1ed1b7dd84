// libFuzzer target for the load generator's HTTP/1.1 response framing (bench/http_response.h):
// the input is what the server sent so far. Checks: a complete response is never longer than
// the input, ends its header with CRLFCRLF, and is found again in any longer input.
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <vector>

#include "../../bench/http_response.h"
#include "fuzz_assert.h"


extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  // An exact-size copy: a read past the end is an ASan report, not a read of the fuzzer's
  // spare bytes.
  std::vector<char> buf(data, data + size);
  const char* p = buf.data();
  size_t n = HttpResponseLength(p, size);
  if (n == 0) return 0;
  FUZZ_ASSERT(n <= size);
  const char* end = static_cast<const char*>(memmem(p, size, "\r\n\r\n", 4));
  FUZZ_ASSERT(end != nullptr && static_cast<size_t>(end - p) + 4 <= n);
  // Framing depends only on the response's own bytes: more data after it changes nothing.
  std::vector<char> longer(buf);
  longer.push_back('X');
  FUZZ_ASSERT(HttpResponseLength(longer.data(), longer.size()) == n);
  return 0;
}
