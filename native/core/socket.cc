// What the socket layer shares across platforms: address parsing and formatting, and the
// option dispatch. The syscalls are in socket_posix.cc and socket_win.cc.
#include "socket.h"

#include <cerrno>
#include <cstddef>
#include <cstring>

namespace muxnet {

int SockAddr::FromIp(const std::string& ip, int port, SockAddr* out) {
  if (port < 0 || port > 65535) return -EINVAL;
  *out = SockAddr{};
  auto* v4 = reinterpret_cast<sockaddr_in*>(&out->storage);
  if (inet_pton(AF_INET, ip.c_str(), &v4->sin_addr) == 1) {
    v4->sin_family = AF_INET;
    v4->sin_port = htons(static_cast<uint16_t>(port));
    out->len = sizeof(sockaddr_in);
    return 0;
  }
  auto* v6 = reinterpret_cast<sockaddr_in6*>(&out->storage);
  if (inet_pton(AF_INET6, ip.c_str(), &v6->sin6_addr) == 1) {
    v6->sin6_family = AF_INET6;
    v6->sin6_port = htons(static_cast<uint16_t>(port));
    out->len = sizeof(sockaddr_in6);
    return 0;
  }
  return -EINVAL;
}

int SockAddr::FromUnix(const std::string& path, SockAddr* out) {
  *out = SockAddr{};
  auto* un = reinterpret_cast<sockaddr_un*>(&out->storage);
  const bool abstract = !path.empty() && path[0] == '@';
  if (path.empty() || path == "@" || path.find('\0') != std::string::npos) return -EINVAL;
  // A path needs its terminating NUL inside sun_path; an abstract name does not.
  if (path.size() > sizeof un->sun_path - (abstract ? 0 : 1)) return -ENAMETOOLONG;
  un->sun_family = AF_UNIX;
  memcpy(un->sun_path, path.data(), path.size());
  if (abstract) un->sun_path[0] = '\0';
  out->len = static_cast<socklen_t>(offsetof(sockaddr_un, sun_path) + path.size() + (abstract ? 0 : 1));
  return 0;
}

std::string SockAddr::Ip() const {
  if (family() == AF_UNIX) {
    const auto* un = reinterpret_cast<const sockaddr_un*>(&storage);
    const size_t total = static_cast<size_t>(len);  // socklen_t is signed on Windows
    size_t n = total > offsetof(sockaddr_un, sun_path) ? total - offsetof(sockaddr_un, sun_path) : 0;
    if (n == 0) return "";
    if (un->sun_path[0] == '\0') return "@" + std::string(un->sun_path + 1, n - 1);
    return std::string(un->sun_path, strnlen(un->sun_path, n));
  }
  char buf[INET6_ADDRSTRLEN] = "";
  if (family() == AF_INET) {
    inet_ntop(AF_INET, &reinterpret_cast<const sockaddr_in*>(&storage)->sin_addr, buf, sizeof buf);
  } else if (family() == AF_INET6) {
    inet_ntop(AF_INET6, &reinterpret_cast<const sockaddr_in6*>(&storage)->sin6_addr, buf, sizeof buf);
  }
  return buf;
}

int SockAddr::Port() const {
  if (family() == AF_INET) return ntohs(reinterpret_cast<const sockaddr_in*>(&storage)->sin_port);
  if (family() == AF_INET6) return ntohs(reinterpret_cast<const sockaddr_in6*>(&storage)->sin6_port);
  return 0;
}

int ApplySocketOption(int fd, int option, int a, int b, int c, int d) {
  switch (option) {
    case kOptNoDelay: return SetNoDelay(fd, a != 0);
    case kOptKeepAlive: return SetKeepAlive(fd, a != 0, b, c, d);
    case kOptLinger: return SetLinger(fd, a);
    case kOptReadBuffer: return SetBufferSize(fd, true, a);
    case kOptWriteBuffer: return SetBufferSize(fd, false, a);
    case kOptBroadcast: return SetBroadcast(fd, a != 0);
    case kOptMulticastHops: return SetMulticastHops(fd, a);
    case kOptMulticastLoop: return SetMulticastLoop(fd, a != 0);
    default: return -EINVAL;
  }
}

}  // namespace muxnet
