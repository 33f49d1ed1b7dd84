// SendFile and Splice on Windows: see socket.h. A file arrives as its HANDLE (the addon turns
// Node's fs descriptor into one with libuv, whose C runtime owns it); its bytes go through a
// bounded buffer to the socket, as on the POSIX systems without sendfile. (TransmitFile would need an overlapped socket operation,
// which a readiness loop does not have.) There is no splice: -ENOSYS, as off Linux.
#ifdef _WIN32
#include <cerrno>
#include <cstdint>

#include "socket.h"

namespace muxnet {

ssize_t SendFile(int sock, int file, int64_t* offset, size_t len) {
  // Bytes read but not sent are read again next time (offset moves by what was sent only).
  char buf[16 * 1024];
  if (len > sizeof buf) len = sizeof buf;
  HANDLE h = reinterpret_cast<HANDLE>(static_cast<intptr_t>(file));
  OVERLAPPED at{};  // a positioned read, like pread: the descriptor's offset stays
  at.Offset = static_cast<DWORD>(static_cast<uint64_t>(*offset));
  at.OffsetHigh = static_cast<DWORD>(static_cast<uint64_t>(*offset) >> 32);
  DWORD got = 0;
  if (!ReadFile(h, buf, static_cast<DWORD>(len), &got, &at)) {
    return GetLastError() == ERROR_HANDLE_EOF ? 0 : -EIO;
  }
  if (got == 0) return 0;
  iovec iov{buf, got};
  ssize_t n = Writev(sock, &iov, 1);
  if (n > 0) *offset += n;
  return n;
}

ssize_t Splice(int, int, size_t) { return -ENOSYS; }
int MakePipe(int*) { return -ENOSYS; }

}  // namespace muxnet

#endif  // _WIN32
