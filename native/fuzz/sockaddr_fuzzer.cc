// libFuzzer target for the numeric address parser (SockAddr::FromIp, inet_pton-based) and
// its inverse (Ip, Port). Input: 4 bytes of port (any int, so the range check is fuzzed
// too), then the address text (NULs included: std::string carries them, c_str stops).
// Checks: a parsed address round-trips through Ip()/FromIp to the same bytes and port; a
// refused one is -EINVAL; the family and length agree.
#include <netinet/in.h>

#include <cerrno>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <string>

#include "../core/socket.h"
#include "fuzz_assert.h"

using muxnet::SockAddr;


extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  if (size < 4) return 0;
  int32_t port;
  memcpy(&port, data, 4);
  std::string ip(reinterpret_cast<const char*>(data + 4), size - 4);
  SockAddr a;
  int rc = SockAddr::FromIp(ip, port, &a);
  if (rc != 0) {
    FUZZ_ASSERT(rc == -EINVAL);
    return 0;
  }
  FUZZ_ASSERT(port >= 0 && port <= 65535);
  FUZZ_ASSERT(a.family() == AF_INET || a.family() == AF_INET6);
  FUZZ_ASSERT(a.len == (a.family() == AF_INET ? sizeof(sockaddr_in) : sizeof(sockaddr_in6)));
  FUZZ_ASSERT(a.Port() == port);
  // Whatever was accepted prints as a canonical numeric address that parses back to the
  // same bytes (inet_pton accepts nothing it cannot print).
  std::string text = a.Ip();
  FUZZ_ASSERT(!text.empty());
  SockAddr b;
  FUZZ_ASSERT(SockAddr::FromIp(text, port, &b) == 0);
  FUZZ_ASSERT(b.family() == a.family() && b.len == a.len);
  FUZZ_ASSERT(memcmp(&a.storage, &b.storage, a.len) == 0);
  FUZZ_ASSERT(b.Ip() == text);
  return 0;
}
