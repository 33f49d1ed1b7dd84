// The platform's socket headers, for socket.h and socket.cc, and the one POSIX type that
// Winsock lacks (iovec, which Writev takes). Besides the *_posix.cc and *_win.cc files, the
// only place that names the platform.
#ifndef MUXNET_CORE_SOCKET_PLATFORM_H_
#define MUXNET_CORE_SOCKET_PLATFORM_H_

#ifdef _WIN32
#ifndef WIN32_LEAN_AND_MEAN
#define WIN32_LEAN_AND_MEAN
#endif
#ifndef NOMINMAX
#define NOMINMAX  // windows.h's min/max macros would break std::min
#endif
#include <winsock2.h>
#include <ws2tcpip.h>
#include <afunix.h>
#include <sys/types.h>  // ssize_t (mingw-w64)

#include <cstddef>

// POSIX's scatter/gather element; socket_win.cc copies it into WSABUFs (whose fields are
// the other way round) for WSASend.
struct iovec {
  void* iov_base;
  size_t iov_len;
};
#else
#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <sys/types.h>
#include <sys/uio.h>
#include <sys/un.h>
#endif

#endif  // MUXNET_CORE_SOCKET_PLATFORM_H_
