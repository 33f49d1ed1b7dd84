// Socket syscalls for the loop on Windows (Winsock 2): see socket.h for the contract. What
// every platform shares is in socket.cc, the POSIX version in socket_posix.cc.
// Winsock reports errors through WSAGetLastError() in its own numbering; FromWsa maps them
// to the negative errno values the rest of the core (and JS) knows from Linux. Windows
// raises no SIGPIPE, so sends need no flag; sockets are closed with closesocket.
#ifdef _WIN32
#include "socket.h"

#include <io.h>
#include <mstcpip.h>
#include <netioapi.h>  // if_nametoindex

#include <cerrno>
#include <climits>
#include <cstdlib>
#include <mutex>

namespace muxnet {

namespace {

// Winsock's TCP keep-alive options (ws2ipdef.h in the Windows SDK, Windows 10 1709+; the
// mingw-w64 headers lack them).
constexpr int kTcpKeepIdle = 3;    // TCP_KEEPALIVE: seconds before the first probe
constexpr int kTcpKeepCount = 16;  // TCP_KEEPCNT
constexpr int kTcpKeepIntvl = 17;  // TCP_KEEPINTVL
#ifndef SIO_UDP_CONNRESET
#define SIO_UDP_CONNRESET _WSAIOW(IOC_VENDOR, 12)  // mstcpip.h of the Windows SDK
#endif

// A Winsock error as a negative errno. Unknown codes become -EIO rather than a number JS
// could mistake for an errno.
int FromWsa(int wsa) {
  switch (wsa) {
    case 0: return 0;
    case WSAEWOULDBLOCK: return -EAGAIN;
    case WSAEINPROGRESS: return -EINPROGRESS;
    case WSAEALREADY: return -EALREADY;
    case WSAEINTR: return -EINTR;
    case WSAEBADF: return -EBADF;
    case WSAENOTSOCK: return -EBADF;  // what a closed or bogus descriptor gives on POSIX
    case WSAEACCES: return -EACCES;
    case WSAEFAULT: return -EFAULT;
    case WSAEINVAL: return -EINVAL;
    case WSAEMFILE: return -EMFILE;
    case WSAENOBUFS: return -ENOBUFS;
    case WSAEMSGSIZE: return -EMSGSIZE;
    case WSAEPROTOTYPE: return -EPROTOTYPE;
    case WSAENOPROTOOPT: return -ENOPROTOOPT;
    case WSAEPROTONOSUPPORT: return -EPROTONOSUPPORT;
    case WSAESOCKTNOSUPPORT: return -EPROTONOSUPPORT;
    case WSAEOPNOTSUPP: return -EOPNOTSUPP;
    case WSAEPFNOSUPPORT: return -EAFNOSUPPORT;
    case WSAEAFNOSUPPORT: return -EAFNOSUPPORT;
    case WSAEADDRINUSE: return -EADDRINUSE;
    case WSAEADDRNOTAVAIL: return -EADDRNOTAVAIL;
    case WSAENETDOWN: return -ENETDOWN;
    case WSAENETUNREACH: return -ENETUNREACH;
    case WSAENETRESET: return -ENETRESET;
    case WSAECONNABORTED: return -ECONNABORTED;
    case WSAECONNRESET: return -ECONNRESET;
    case WSAEISCONN: return -EISCONN;
    case WSAENOTCONN: return -ENOTCONN;
    case WSAESHUTDOWN: return -EPIPE;  // a send after shutdown(SD_SEND): EPIPE on POSIX
    case WSAETIMEDOUT: return -ETIMEDOUT;
    case WSAECONNREFUSED: return -ECONNREFUSED;
    case WSAENAMETOOLONG: return -ENAMETOOLONG;
    case WSAEHOSTDOWN: return -EHOSTUNREACH;
    case WSAEHOSTUNREACH: return -EHOSTUNREACH;
    case WSANOTINITIALISED: return -ENOSYS;
    default: return -EIO;
  }
}

int LastError() { return FromWsa(WSAGetLastError()); }

// WSAStartup once per process, on first use by any socket call (Winsock counts startups;
// this one is never undone: it lives as long as the process, as in libuv). 0 or -errno.
int StartWinsock() {
  static int result = [] {
    WSADATA data;
    int err = WSAStartup(MAKEWORD(2, 2), &data);
    return err == 0 ? 0 : FromWsa(err);
  }();
  return result;
}

// SOCKET <-> int: see socket.h. A handle that does not fit is refused, never truncated.
SOCKET S(int fd) { return fd < 0 ? INVALID_SOCKET : static_cast<SOCKET>(static_cast<unsigned>(fd)); }
bool Fits(SOCKET s) { return s <= static_cast<SOCKET>(INT_MAX); }

int SetInt(int fd, int level, int name, int value) {
  return setsockopt(S(fd), level, name, reinterpret_cast<const char*>(&value), sizeof value) == 0 ? 0 : LastError();
}

bool IsTcp(int family) { return family == AF_INET || family == AF_INET6; }

int SetNonBlocking(SOCKET s) {
  u_long on = 1;
  return ioctlsocket(s, FIONBIO, &on) == 0 ? 0 : LastError();
}

// A datagram socket that learns of an ICMP port-unreachable for an earlier send fails its
// next receive with WSAECONNRESET. POSIX reports that only on connected sockets: switched off
// when the socket is made (as libuv does), and on again once it is connected (ConnectDatagram).
void UdpConnReset(SOCKET s, bool on) {
  BOOL value = on ? TRUE : FALSE;
  DWORD bytes = 0;
  WSAIoctl(s, SIO_UDP_CONNRESET, &value, sizeof value, nullptr, 0, &bytes, nullptr, nullptr);
}

// socket() for the loop: non-blocking, not inherited by child processes. A descriptor or
// -errno.
int OpenSocket(int family, int type, int protocol) {
  if (int err = StartWinsock(); err != 0) return err;
  SOCKET s = WSASocketW(family, type, protocol, nullptr, 0, WSA_FLAG_OVERLAPPED | WSA_FLAG_NO_HANDLE_INHERIT);
  if (s == INVALID_SOCKET) return LastError();
  int err = Fits(s) ? SetNonBlocking(s) : -EMFILE;
  if (err != 0) {
    closesocket(s);
    return err;
  }
  if (type == SOCK_DGRAM && IsTcp(family)) UdpConnReset(s, false);
  return static_cast<int>(s);
}

int Bind(int s, const SockAddr& addr) {
  return bind(S(s), reinterpret_cast<const sockaddr*>(&addr.storage), addr.len) == 0 ? 0 : LastError();
}

// connect() as POSIX reports it: 0, -EINPROGRESS for a non-blocking start, or -errno.
int StartConnect(int s, const SockAddr& addr) {
  if (connect(S(s), reinterpret_cast<const sockaddr*>(&addr.storage), addr.len) == 0) return 0;
  int err = LastError();
  return err == -EAGAIN ? -EINPROGRESS : err;
}

}  // namespace

int Listen(const SockAddr& addr, const ListenOptions& options, int* fd) {
  // Unix sockets exist on Windows 10+ (afunix.h), but stale-file handling and the rest are
  // not done for them yet.
  if (addr.family() == AF_UNIX) return -EAFNOSUPPORT;
  int s = OpenSocket(addr.family(), SOCK_STREAM, 0);
  if (s < 0) return s;
  int err = 0;
  // SO_REUSEADDR on Windows lets a second socket take a port that is in use, which
  // POSIX forbids; rebinding after TIME_WAIT, what POSIX programs set it for, Windows
  // allows anyway. So reuse_addr is honoured by not setting it, and reuse_port (load
  // balancing over several listeners) does not exist.
  if (options.reuse_port) err = -EOPNOTSUPP;
  // Windows makes IPv6 sockets v6-only unless told otherwise; Linux makes them dual-stack.
  if (err == 0 && addr.family() == AF_INET6) err = SetInt(s, IPPROTO_IPV6, IPV6_V6ONLY, options.ipv6_only ? 1 : 0);
  if (err == 0) err = Bind(s, addr);
  if (err == 0 && listen(S(s), options.backlog) != 0) err = LastError();
  if (err != 0) {
    closesocket(S(s));
    return err;
  }
  *fd = s;
  return 0;
}

int Accept(int listen_fd, int* fd) {
  for (;;) {
    sockaddr_storage peer;
    int len = sizeof peer;
    SOCKET s = accept(S(listen_fd), reinterpret_cast<sockaddr*>(&peer), &len);
    if (s != INVALID_SOCKET) {
      int err = Fits(s) ? SetNonBlocking(s) : -EMFILE;
      if (err != 0) {
        closesocket(s);
        return err;
      }
      // Not inherited by child processes, as OpenSocket's sockets.
      SetHandleInformation(reinterpret_cast<HANDLE>(s), HANDLE_FLAG_INHERIT, 0);
      if (IsTcp(peer.ss_family)) SetNoDelay(static_cast<int>(s), true);  // Go's default for TCP
      *fd = static_cast<int>(s);
      return 0;
    }
    int err = LastError();
    // A connection reset before we accepted it is the peer's business, not an error.
    if (err == -EINTR || err == -ECONNABORTED || err == -ECONNRESET) continue;
    return err;
  }
}

int Connect(const SockAddr& addr, int* fd, bool start) {
  if (addr.family() == AF_UNIX) return -EAFNOSUPPORT;
  int s = OpenSocket(addr.family(), SOCK_STREAM, 0);
  if (s < 0) return s;
  if (IsTcp(addr.family())) SetNoDelay(s, true);  // Go's default for TCP
  int err = start ? StartConnect(s, addr) : -EINPROGRESS;
  if (err == 0 || err == -EINPROGRESS) {
    *fd = s;
    return err;
  }
  closesocket(S(s));
  return err;
}

int BindDatagram(const SockAddr& addr, bool reuse_addr, int* fd) {
  if (addr.family() == AF_UNIX) return -EAFNOSUPPORT;  // no AF_UNIX datagrams on Windows
  int s = OpenSocket(addr.family(), SOCK_DGRAM, 0);
  if (s < 0) return s;
  // For UDP, SO_REUSEADDR is what lets several sockets join one multicast port, as on POSIX.
  int err = IsTcp(addr.family()) && reuse_addr ? SetInt(s, SOL_SOCKET, SO_REUSEADDR, 1) : 0;
  if (err == 0) err = Bind(s, addr);
  if (err != 0) {
    closesocket(S(s));
    return err;
  }
  *fd = s;
  return 0;
}

int BindRaw(const SockAddr& addr, int protocol, int* fd) {
  int s = OpenSocket(addr.family(), SOCK_RAW, protocol);  // needs an administrator
  if (s < 0) return s == -EACCES ? -EPERM : s;
  if (int err = Bind(s, addr); err != 0) {
    closesocket(S(s));
    return err;
  }
  *fd = s;
  return 0;
}

int ConnectDatagram(const SockAddr& addr, int* fd) {
  if (addr.family() == AF_UNIX) return -EAFNOSUPPORT;
  int s = OpenSocket(addr.family(), SOCK_DGRAM, 0);
  if (s < 0) return s;
  int err = StartConnect(s, addr);  // UDP: no packet is sent, it completes at once
  if (err != 0) {
    closesocket(S(s));
    return err;
  }
  UdpConnReset(S(s), true);  // a refused send fails the next receive, as on POSIX
  *fd = s;
  return 0;
}

ssize_t RecvFrom(int fd, void* data, size_t len, SockAddr* from, bool* truncated) {
  int addr_len = sizeof from->storage;
  int n = recvfrom(S(fd), static_cast<char*>(data), static_cast<int>(len > INT_MAX ? INT_MAX : len), 0,
                   reinterpret_cast<sockaddr*>(&from->storage), &addr_len);
  if (n >= 0) {
    from->len = addr_len;
    *truncated = false;
    return n;
  }
  int wsa = WSAGetLastError();
  if (wsa == WSAEMSGSIZE) {
    // Windows fills the buffer and fails the call; POSIX returns the bytes with MSG_TRUNC.
    from->len = addr_len;
    *truncated = true;
    return static_cast<ssize_t>(len);
  }
  // On a datagram socket WSAECONNRESET is the ICMP port-unreachable POSIX calls ECONNREFUSED.
  if (wsa == WSAECONNRESET) return -ECONNREFUSED;
  return FromWsa(wsa);
}

ssize_t SendTo(int fd, const void* data, size_t len, const SockAddr* to) {
  if (len > INT_MAX) return -EMSGSIZE;
  const sockaddr* sa = to != nullptr ? reinterpret_cast<const sockaddr*>(&to->storage) : nullptr;
  int n = sendto(S(fd), static_cast<const char*>(data), static_cast<int>(len), 0, sa, to != nullptr ? to->len : 0);
  return n >= 0 ? n : LastError();
}

namespace {
constexpr int kMaxBatch = 1024;  // as socket_posix.cc: the most one call handles
}  // namespace

// No recvmmsg/sendmmsg on Windows: one call per datagram, with the same results.
int RecvMany(int fd, Datagram* batch, int count) {
  if (count > kMaxBatch) count = kMaxBatch;
  int n = 0;
  for (; n < count; n++) {
    ssize_t got = RecvFrom(fd, batch[n].data, batch[n].len, &batch[n].addr, &batch[n].truncated);
    if (got < 0) return n > 0 ? n : static_cast<int>(got);
    batch[n].received = static_cast<size_t>(got);
  }
  return n;
}

int SendMany(int fd, const Datagram* batch, int count) {
  if (count > kMaxBatch) count = kMaxBatch;
  int n = 0;
  for (; n < count; n++) {
    const SockAddr* to = batch[n].addr.len > 0 ? &batch[n].addr : nullptr;
    ssize_t sent = SendTo(fd, batch[n].data, batch[n].len, to);
    if (sent < 0) return n > 0 ? n : static_cast<int>(sent);
  }
  return n;
}

// Descriptor passing (SCM_RIGHTS) has no Winsock equivalent (WSADuplicateSocket needs the
// receiving process's id and another channel).
ssize_t SendWithFds(int, const void*, size_t, const int*, int) { return -EOPNOTSUPP; }
ssize_t RecvWithFds(int, void*, size_t, int*, int, int* count) {
  *count = 0;
  return -EOPNOTSUPP;
}

int DescribeSocket(int fd, int* type, bool* listening, int* family) {
  int len = sizeof *type;
  if (getsockopt(S(fd), SOL_SOCKET, SO_TYPE, reinterpret_cast<char*>(type), &len) != 0) return LastError();
  BOOL accepting = FALSE;
  len = sizeof accepting;
  if (getsockopt(S(fd), SOL_SOCKET, SO_ACCEPTCONN, reinterpret_cast<char*>(&accepting), &len) != 0) {
    return LastError();
  }
  *listening = accepting != FALSE;
  sockaddr_storage ss{};
  len = sizeof ss;
  if (getsockname(S(fd), reinterpret_cast<sockaddr*>(&ss), &len) != 0) return LastError();
  *family = ss.ss_family;
  return 0;
}

int ConnectResult(int fd) {
  int err = 0;
  int len = sizeof err;
  if (getsockopt(S(fd), SOL_SOCKET, SO_ERROR, reinterpret_cast<char*>(&err), &len) != 0) return LastError();
  return FromWsa(err);
}

ssize_t Read(int fd, void* data, size_t len) {
  int n = recv(S(fd), static_cast<char*>(data), static_cast<int>(len > INT_MAX ? INT_MAX : len), 0);
  return n >= 0 ? n : LastError();
}

ssize_t Writev(int fd, const iovec* iov, int count) {
  // WSABUF is {len, buf}: the other order than iovec, so the list is copied (a WriteQueue
  // sends at most a few dozen at a time).
  constexpr int kMaxBufs = 64;
  WSABUF bufs[kMaxBufs];
  if (count > kMaxBufs) count = kMaxBufs;
  for (int i = 0; i < count; i++) {
    bufs[i].buf = static_cast<char*>(iov[i].iov_base);
    bufs[i].len = static_cast<ULONG>(iov[i].iov_len > ULONG_MAX ? ULONG_MAX : iov[i].iov_len);
  }
  DWORD sent = 0;
  if (WSASend(S(fd), bufs, static_cast<DWORD>(count), &sent, 0, nullptr, nullptr) != 0) return LastError();
  return static_cast<ssize_t>(sent);
}

int ShutdownWrite(int fd) { return shutdown(S(fd), SD_SEND) == 0 ? 0 : LastError(); }

int SetNoDelay(int fd, bool on) { return SetInt(fd, IPPROTO_TCP, TCP_NODELAY, on ? 1 : 0); }

int SetKeepAlive(int fd, bool on, int idle_s, int interval_s, int count) {
  int err = SetInt(fd, SOL_SOCKET, SO_KEEPALIVE, on ? 1 : 0);
  if (err != 0 || !on) return err;
  if (idle_s > 0 && (err = SetInt(fd, IPPROTO_TCP, kTcpKeepIdle, idle_s)) != 0 && err != -ENOPROTOOPT) return err;
  if (err == 0 && interval_s > 0 && (err = SetInt(fd, IPPROTO_TCP, kTcpKeepIntvl, interval_s)) != 0 &&
      err != -ENOPROTOOPT) {
    return err;
  }
  if (err == -ENOPROTOOPT) {
    // Windows before 10 1709 (and wine 8) have no TCP_KEEPALIVE/TCP_KEEPINTVL options; the
    // older ioctl sets both times at once (in ms; Windows' defaults where one is not given).
    tcp_keepalive vals{};
    vals.onoff = 1;
    vals.keepalivetime = static_cast<ULONG>(idle_s > 0 ? idle_s : 2 * 60 * 60) * 1000;
    vals.keepaliveinterval = static_cast<ULONG>(interval_s > 0 ? interval_s : 1) * 1000;
    DWORD got = 0;
    if (WSAIoctl(S(fd), SIO_KEEPALIVE_VALS, &vals, sizeof vals, nullptr, 0, &got, nullptr, nullptr) != 0) {
      return LastError();
    }
  }
  // Without TCP_KEEPCNT (before Windows 10 1703, and wine 8) the probe count is the system's
  // (10): the connection is still probed, only the count is not ours to set.
  if (count > 0 && (err = SetInt(fd, IPPROTO_TCP, kTcpKeepCount, count)) != 0 && err != -ENOPROTOOPT) return err;
  return 0;
}

int SetLinger(int fd, int seconds) {
  linger l{};
  l.l_onoff = seconds >= 0 ? 1 : 0;
  l.l_linger = static_cast<u_short>(seconds >= 0 ? (seconds > 65535 ? 65535 : seconds) : 0);
  return setsockopt(S(fd), SOL_SOCKET, SO_LINGER, reinterpret_cast<const char*>(&l), sizeof l) == 0 ? 0 : LastError();
}

int SetBufferSize(int fd, bool receive, int bytes) {
  return SetInt(fd, SOL_SOCKET, receive ? SO_RCVBUF : SO_SNDBUF, bytes);
}

int LocalAddr(int fd, SockAddr* out) {
  int len = sizeof out->storage;
  if (getsockname(S(fd), reinterpret_cast<sockaddr*>(&out->storage), &len) != 0) return LastError();
  out->len = len;
  return 0;
}

int PeerAddr(int fd, SockAddr* out) {
  int len = sizeof out->storage;
  if (getpeername(S(fd), reinterpret_cast<sockaddr*>(&out->storage), &len) != 0) return LastError();
  out->len = len;
  return 0;
}

int SetBroadcast(int fd, bool on) { return SetInt(fd, SOL_SOCKET, SO_BROADCAST, on ? 1 : 0); }

namespace {

int SocketFamily(int fd) {
  sockaddr_storage ss{};
  int len = sizeof ss;
  if (getsockname(S(fd), reinterpret_cast<sockaddr*>(&ss), &len) != 0) return LastError();
  return ss.ss_family;
}

int InterfaceIndex(const std::string& name) {
  if (name.empty()) return 0;
  unsigned index = if_nametoindex(name.c_str());
  return index != 0 ? static_cast<int>(index) : -ENODEV;
}

}  // namespace

int SetMulticastHops(int fd, int hops) {
  int family = SocketFamily(fd);
  if (family < 0) return family;
  if (family == AF_INET6) return SetInt(fd, IPPROTO_IPV6, IPV6_MULTICAST_HOPS, hops);
  return SetInt(fd, IPPROTO_IP, IP_MULTICAST_TTL, hops);
}

int SetMulticastLoop(int fd, bool on) {
  int family = SocketFamily(fd);
  if (family < 0) return family;
  if (family == AF_INET6) return SetInt(fd, IPPROTO_IPV6, IPV6_MULTICAST_LOOP, on ? 1 : 0);
  return SetInt(fd, IPPROTO_IP, IP_MULTICAST_LOOP, on ? 1 : 0);
}

int MulticastMembership(int fd, bool join, const std::string& group, const std::string& iface) {
  ip_mreq v4{};
  if (inet_pton(AF_INET, group.c_str(), &v4.imr_multiaddr) == 1) {
    if (!iface.empty() && inet_pton(AF_INET, iface.c_str(), &v4.imr_interface) != 1) return -EINVAL;
    int name = join ? IP_ADD_MEMBERSHIP : IP_DROP_MEMBERSHIP;
    return setsockopt(S(fd), IPPROTO_IP, name, reinterpret_cast<const char*>(&v4), sizeof v4) == 0 ? 0 : LastError();
  }
  ipv6_mreq v6{};
  if (inet_pton(AF_INET6, group.c_str(), &v6.ipv6mr_multiaddr) != 1) return -EINVAL;
  int index = InterfaceIndex(iface);
  if (index < 0) return index;
  v6.ipv6mr_interface = static_cast<unsigned>(index);
  int name = join ? IPV6_ADD_MEMBERSHIP : IPV6_DROP_MEMBERSHIP;
  return setsockopt(S(fd), IPPROTO_IPV6, name, reinterpret_cast<const char*>(&v6), sizeof v6) == 0 ? 0 : LastError();
}

int SetMulticastInterface(int fd, const std::string& iface) {
  in_addr v4{};
  if (inet_pton(AF_INET, iface.c_str(), &v4) == 1) {
    return setsockopt(S(fd), IPPROTO_IP, IP_MULTICAST_IF, reinterpret_cast<const char*>(&v4), sizeof v4) == 0
               ? 0
               : LastError();
  }
  int index = InterfaceIndex(iface);
  if (index < 0) return index;
  return SetInt(fd, IPPROTO_IPV6, IPV6_MULTICAST_IF, index);
}

// Windows has SIO_TCP_INFO (Windows 10 1703+) with other fields: not mapped yet.
int ReadTcpInfo(int, double*) { return -EOPNOTSUPP; }

int BufferSize(int fd, bool receive) {
  int value = 0;
  int len = sizeof value;
  if (getsockopt(S(fd), SOL_SOCKET, receive ? SO_RCVBUF : SO_SNDBUF, reinterpret_cast<char*>(&value), &len) != 0) {
    return LastError();
  }
  return value;
}

int PrepareAdopted(int fd) {
  if (int err = StartWinsock(); err != 0) return err;
  if (int err = SetNonBlocking(S(fd)); err != 0) return err;
  SetHandleInformation(reinterpret_cast<HANDLE>(S(fd)), HANDLE_FLAG_INHERIT, 0);
  return 0;
}

// Winsock has no per-process socket limit like RLIMIT_NOFILE, so nothing to reserve.
int OpenReserveFd() { return -1; }

void Close(int fd) { closesocket(S(fd)); }

}  // namespace muxnet

#endif  // _WIN32
