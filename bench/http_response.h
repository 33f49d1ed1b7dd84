// Framing of the HTTP/1.1 responses the load generator reads: a header block and a
// Content-Length body. Header-only so that native/fuzz can fuzz it apart from loadgen.cc.
#ifndef MUXNET_BENCH_HTTP_RESPONSE_H_
#define MUXNET_BENCH_HTTP_RESPONSE_H_

#include <cstddef>
#include <cstdint>
#include <cstring>

// Bytes of a complete HTTP/1.1 response at the start of buf[0, len), or 0 when incomplete
// (also when its Content-Length could never fit in memory). Reads nothing past buf + len.
inline size_t HttpResponseLength(const char* buf, size_t len) {
  if (len < 4) return 0;
  const char* end = static_cast<const char*>(memmem(buf, len, "\r\n\r\n", 4));
  if (end == nullptr) return 0;
  size_t header = end - buf + 4;
  const char* cl = static_cast<const char*>(memmem(buf, header, "ontent-Length:", 14));
  if (cl == nullptr) cl = static_cast<const char*>(memmem(buf, header, "ontent-length:", 14));
  size_t body = 0;
  if (cl != nullptr) {
    // Not strtoul: it skips CR/LF too (reading on past the header, even past len) and
    // saturates at ULONG_MAX, which made header + body wrap around to a short length.
    const char* p = cl + 14;
    const char* stop = buf + header;
    while (p < stop && (*p == ' ' || *p == '\t')) p++;
    for (; p < stop && *p >= '0' && *p <= '9'; p++) {
      size_t digit = static_cast<size_t>(*p - '0');
      if (body > (SIZE_MAX - digit) / 10) return 0;
      body = body * 10 + digit;
    }
  }
  return body <= len - header ? header + body : 0;
}

#endif  // MUXNET_BENCH_HTTP_RESPONSE_H_
