// Socket syscalls for the loop on POSIX systems (Linux, macOS, the BSDs): see socket.h for
// the contract. Windows has socket_win.cc; what both share is in socket.cc.
#ifndef _WIN32
#include "socket.h"

#include <arpa/inet.h>
#include <fcntl.h>
#include <net/if.h>
#include <netinet/in.h>
#if defined(__linux__)
// linux/tcp.h rather than netinet/tcp.h: the kernel's struct tcp_info has every field.
#include <linux/tcp.h>
#else
#include <netinet/tcp.h>
#endif
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include <cstddef>
#include <cstdio>

#include <cerrno>
#include <cmath>
#include <cstring>
#include <vector>

namespace muxnet {

namespace {

int SetInt(int fd, int level, int name, int value) {
  return setsockopt(fd, level, name, &value, sizeof value) == 0 ? 0 : -errno;
}

// Platform differences, in one place. Linux and FreeBSD have MSG_NOSIGNAL, SOCK_NONBLOCK,
// accept4 and recvmmsg; macOS has none of them, and SO_NOSIGPIPE on the socket instead.
#ifdef MSG_NOSIGNAL
constexpr int kNoSignal = MSG_NOSIGNAL;
#else
constexpr int kNoSignal = 0;  // SO_NOSIGPIPE, set on every socket by Prepare()
#endif
#ifdef MSG_CMSG_CLOEXEC
constexpr int kCmsgCloexec = MSG_CMSG_CLOEXEC;
#else
constexpr int kCmsgCloexec = 0;  // RecvWithFds sets FD_CLOEXEC on each received descriptor
#endif
#if !defined(TCP_KEEPIDLE) && defined(TCP_KEEPALIVE)
#define TCP_KEEPIDLE TCP_KEEPALIVE  // macOS's name for it
#endif

// Makes s non-blocking and close-on-exec, and keeps it from raising SIGPIPE where sends
// cannot say so (MSG_NOSIGNAL). 0 or -errno.
[[maybe_unused]] int Prepare(int s) {  // unused where SOCK_NONBLOCK and accept4 exist
  int flags = fcntl(s, F_GETFL);
  if (flags < 0 || fcntl(s, F_SETFL, flags | O_NONBLOCK) != 0 || fcntl(s, F_SETFD, FD_CLOEXEC) != 0) {
    return -errno;
  }
#ifdef SO_NOSIGPIPE
  return SetInt(s, SOL_SOCKET, SO_NOSIGPIPE, 1);
#else
  return 0;
#endif
}

// socket(2) for the loop: non-blocking, close-on-exec, no SIGPIPE. A descriptor or -errno.
int OpenSocket(int family, int type, int protocol) {
#if defined(SOCK_NONBLOCK) && defined(SOCK_CLOEXEC)
  int s = socket(family, type | SOCK_NONBLOCK | SOCK_CLOEXEC, protocol);
  return s >= 0 ? s : -errno;
#else
  int s = socket(family, type, protocol);
  if (s < 0) return -errno;
  int err = Prepare(s);
  if (err != 0) {
    close(s);
    return err;
  }
  return s;
#endif
}

// accept(2) for the loop, as OpenSocket: a descriptor, or -1 with errno set.
int AcceptSocket(int listen_fd, sockaddr* peer, socklen_t* len) {
#if defined(__linux__) || defined(__FreeBSD__)
  return accept4(listen_fd, peer, len, SOCK_NONBLOCK | SOCK_CLOEXEC);
#else
  int s = accept(listen_fd, peer, len);
  if (s < 0) return -1;
  int err = Prepare(s);
  if (err != 0) {
    close(s);
    errno = -err;
    return -1;
  }
  return s;
#endif
}

bool IsTcp(int family) { return family == AF_INET || family == AF_INET6; }

// After bind() failed with EADDRINUSE on a Unix socket path: true when the path is a
// socket file that no socket listens on any more (its process is gone), so it may be
// replaced. Decided from /proc/net/unix rather than by connecting, which would hand a live
// server an empty connection. When in doubt: false (the caller reports EADDRINUSE).
bool IsStaleUnixSocket(const SockAddr& addr) {
  const auto* un = reinterpret_cast<const sockaddr_un*>(&addr.storage);
  if (un->sun_path[0] == '\0') return false;  // abstract names vanish with their socket
  struct stat st;
  if (lstat(un->sun_path, &st) != 0 || !S_ISSOCK(st.st_mode)) return false;
  FILE* f = fopen("/proc/net/unix", "re");
  if (f == nullptr) return false;
  // Lines: "Num: RefCount Protocol Flags Type St Inode Path"; __SO_ACCEPTCON marks listeners.
  constexpr unsigned long kAcceptCon = 0x10000;
  const std::string want = un->sun_path;
  bool live = false;
  char line[4096];
  fgets(line, sizeof line, f);  // the header
  while (!live && fgets(line, sizeof line, f) != nullptr) {
    unsigned long flags = 0;
    int path_at = 0;
    if (sscanf(line, "%*s %*s %*s %lx %*s %*s %*s %n", &flags, &path_at) < 1 || path_at == 0) continue;
    std::string path = line + path_at;
    while (!path.empty() && (path.back() == '\n' || path.back() == ' ')) path.pop_back();
    live = path == want && (flags & kAcceptCon) != 0;
  }
  fclose(f);
  return !live;
}

int Bind(int s, const SockAddr& addr) {
  const auto* sa = reinterpret_cast<const sockaddr*>(&addr.storage);
  if (bind(s, sa, addr.len) == 0) return 0;
  int err = errno;
  if (err != EADDRINUSE || addr.family() != AF_UNIX || !IsStaleUnixSocket(addr)) return -err;
  unlink(reinterpret_cast<const sockaddr_un*>(&addr.storage)->sun_path);
  return bind(s, sa, addr.len) == 0 ? 0 : -errno;
}

}  // namespace

int Listen(const SockAddr& addr, const ListenOptions& options, int* fd) {
  int s = OpenSocket(addr.family(), SOCK_STREAM, 0);
  if (s < 0) return s;
  int err = 0;
  const bool tcp = IsTcp(addr.family());
  if (tcp && options.reuse_addr) err = SetInt(s, SOL_SOCKET, SO_REUSEADDR, 1);
  if (err == 0 && tcp && options.reuse_port) err = SetInt(s, SOL_SOCKET, SO_REUSEPORT, 1);
  if (err == 0 && addr.family() == AF_INET6 && options.ipv6_only) {
    err = SetInt(s, IPPROTO_IPV6, IPV6_V6ONLY, 1);
  }
  if (err == 0) err = Bind(s, addr);
  if (err == 0 && listen(s, options.backlog) != 0) err = -errno;
  if (err != 0) {
    close(s);
    return err;
  }
  *fd = s;
  return 0;
}

int Accept(int listen_fd, int* fd) {
  for (;;) {
    sockaddr_storage peer;
    socklen_t len = sizeof peer;
    int s = AcceptSocket(listen_fd, reinterpret_cast<sockaddr*>(&peer), &len);
    if (s >= 0) {
      if (IsTcp(peer.ss_family)) SetNoDelay(s, true);  // Go's default for TCP: small writes go out at once
      *fd = s;
      return 0;
    }
    // A connection reset before we accepted it is the peer's business, not an error.
    if (errno == EINTR || errno == ECONNABORTED) continue;
    return errno == EWOULDBLOCK ? -EAGAIN : -errno;
  }
}

int Connect(const SockAddr& addr, int* fd, bool start) {
  int s = OpenSocket(addr.family(), SOCK_STREAM, 0);
  if (s < 0) return s;
  if (IsTcp(addr.family())) SetNoDelay(s, true);  // Go's default for TCP: small writes go out at once
  if (!start) {
    *fd = s;
    return -EINPROGRESS;
  }
  int rc;
  do {
    rc = connect(s, reinterpret_cast<const sockaddr*>(&addr.storage), addr.len);
  } while (rc != 0 && errno == EINTR);
  if (rc == 0) {
    *fd = s;
    return 0;
  }
  int err = errno;
  if (err == EINPROGRESS) {
    *fd = s;
    return -EINPROGRESS;
  }
  close(s);
  return -err;
}

int BindDatagram(const SockAddr& addr, bool reuse_addr, int* fd) {
  int s = OpenSocket(addr.family(), SOCK_DGRAM, 0);
  if (s < 0) return s;
  int err = 0;
  if (IsTcp(addr.family()) && reuse_addr) err = SetInt(s, SOL_SOCKET, SO_REUSEADDR, 1);
  if (err == 0) err = Bind(s, addr);
  if (err != 0) {
    close(s);
    return err;
  }
  *fd = s;
  return 0;
}

int BindRaw(const SockAddr& addr, int protocol, int* fd) {
  int s = OpenSocket(addr.family(), SOCK_RAW, protocol);
  if (s < 0) return s;
  if (bind(s, reinterpret_cast<const sockaddr*>(&addr.storage), addr.len) != 0) {
    int err = -errno;
    close(s);
    return err;
  }
  *fd = s;
  return 0;
}

int ConnectDatagram(const SockAddr& addr, int* fd) {
  int s = OpenSocket(addr.family(), SOCK_DGRAM, 0);
  if (s < 0) return s;
  int rc;
  do {
    rc = connect(s, reinterpret_cast<const sockaddr*>(&addr.storage), addr.len);
  } while (rc != 0 && errno == EINTR);
  if (rc != 0) {
    int err = errno;
    close(s);
    return -err;
  }
  *fd = s;
  return 0;
}

ssize_t RecvFrom(int fd, void* data, size_t len, SockAddr* from, bool* truncated) {
  iovec iov{data, len};
  msghdr msg{};
  msg.msg_name = &from->storage;
  msg.msg_namelen = sizeof from->storage;
  msg.msg_iov = &iov;
  msg.msg_iovlen = 1;
  for (;;) {
    ssize_t n = recvmsg(fd, &msg, 0);
    if (n >= 0) {
      from->len = msg.msg_namelen;
      *truncated = (msg.msg_flags & MSG_TRUNC) != 0;
      return n;
    }
    if (errno == EINTR) continue;
    return errno == EWOULDBLOCK ? -EAGAIN : -errno;
  }
}

ssize_t SendTo(int fd, const void* data, size_t len, const SockAddr* to) {
  const sockaddr* sa = to != nullptr ? reinterpret_cast<const sockaddr*>(&to->storage) : nullptr;
  socklen_t sa_len = to != nullptr ? to->len : 0;
  for (;;) {
    ssize_t n = sendto(fd, data, len, kNoSignal, sa, sa_len);
    if (n >= 0) return n;
    if (errno == EINTR) continue;
    return errno == EWOULDBLOCK ? -EAGAIN : -errno;
  }
}

namespace {

// recvmmsg/sendmmsg take at most this many messages a call (the kernel's UIO_MAXIOV).
constexpr int kMaxBatch = 1024;

}  // namespace

#if defined(__linux__) || defined(__FreeBSD__)

namespace {

// The mmsghdr array for a batch: one iovec per datagram, and its address (for a receive,
// room for the sender; for a send, the destination unless unset: the connected peer).
// Scratch reused per thread: batch calls come from the loop's thread, one at a time.
mmsghdr* BatchHeaders(const Datagram* batch, int count, bool receive) {
  static thread_local std::vector<mmsghdr> msgs;
  static thread_local std::vector<iovec> iovs;
  msgs.assign(count, mmsghdr{});
  iovs.resize(count);
  for (int i = 0; i < count; i++) {
    iovs[i] = iovec{batch[i].data, batch[i].len};
    msghdr& h = msgs[i].msg_hdr;
    h.msg_iov = &iovs[i];
    h.msg_iovlen = 1;
    if (receive || batch[i].addr.len > 0) {
      h.msg_name = const_cast<sockaddr_storage*>(&batch[i].addr.storage);
      h.msg_namelen = receive ? sizeof batch[i].addr.storage : batch[i].addr.len;
    }
  }
  return msgs.data();
}

}  // namespace

int RecvMany(int fd, Datagram* batch, int count) {
  if (count > kMaxBatch) count = kMaxBatch;
  mmsghdr* msgs = BatchHeaders(batch, count, true);
  for (;;) {
    int n = recvmmsg(fd, msgs, count, MSG_DONTWAIT, nullptr);
    if (n >= 0) {
      for (int i = 0; i < n; i++) {
        batch[i].received = msgs[i].msg_len;
        batch[i].truncated = (msgs[i].msg_hdr.msg_flags & MSG_TRUNC) != 0;
        batch[i].addr.len = msgs[i].msg_hdr.msg_namelen;
      }
      return n;
    }
    if (errno == EINTR) continue;
    return errno == EWOULDBLOCK ? -EAGAIN : -errno;
  }
}

int SendMany(int fd, const Datagram* batch, int count) {
  if (count > kMaxBatch) count = kMaxBatch;
  mmsghdr* msgs = BatchHeaders(batch, count, false);
  for (;;) {
    int n = sendmmsg(fd, msgs, count, kNoSignal);
    if (n >= 0) return n;
    if (errno == EINTR) continue;
    return errno == EWOULDBLOCK ? -EAGAIN : -errno;
  }
}

#else  // no recvmmsg/sendmmsg (macOS): one call per datagram, with the same results

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

#endif

ssize_t SendWithFds(int fd, const void* data, size_t len, const int* fds, int count) {
  if (len == 0 || count < 0 || count > kMaxPassedFds) return -EINVAL;
  iovec iov{const_cast<void*>(data), len};
  alignas(cmsghdr) char control[CMSG_SPACE(sizeof(int) * kMaxPassedFds)];
  msghdr msg{};
  msg.msg_iov = &iov;
  msg.msg_iovlen = 1;
  if (count > 0) {
    msg.msg_control = control;
    msg.msg_controllen = CMSG_SPACE(sizeof(int) * count);
    cmsghdr* cm = CMSG_FIRSTHDR(&msg);
    cm->cmsg_level = SOL_SOCKET;
    cm->cmsg_type = SCM_RIGHTS;
    cm->cmsg_len = CMSG_LEN(sizeof(int) * count);
    memcpy(CMSG_DATA(cm), fds, sizeof(int) * count);
  }
  for (;;) {
    ssize_t n = sendmsg(fd, &msg, kNoSignal);
    if (n >= 0) return n;
    if (errno == EINTR) continue;
    return errno == EWOULDBLOCK ? -EAGAIN : -errno;
  }
}

ssize_t RecvWithFds(int fd, void* data, size_t len, int* fds, int max, int* count) {
  *count = 0;
  if (max > kMaxPassedFds) max = kMaxPassedFds;
  iovec iov{data, len};
  alignas(cmsghdr) char control[CMSG_SPACE(sizeof(int) * kMaxPassedFds)];
  msghdr msg{};
  msg.msg_iov = &iov;
  msg.msg_iovlen = 1;
  msg.msg_control = control;
  msg.msg_controllen = sizeof control;
  ssize_t n;
  do {
    n = recvmsg(fd, &msg, kCmsgCloexec);
  } while (n < 0 && errno == EINTR);
  if (n < 0) return errno == EWOULDBLOCK ? -EAGAIN : -errno;
  for (cmsghdr* cm = CMSG_FIRSTHDR(&msg); cm != nullptr; cm = CMSG_NXTHDR(&msg, cm)) {
    if (cm->cmsg_level != SOL_SOCKET || cm->cmsg_type != SCM_RIGHTS) continue;
    int k = static_cast<int>((cm->cmsg_len - CMSG_LEN(0)) / sizeof(int));
    const unsigned char* p = CMSG_DATA(cm);
    for (int i = 0; i < k; i++) {
      int passed;
      memcpy(&passed, p + i * sizeof(int), sizeof passed);
      // More than the caller takes: close the rest rather than leak them.
      if (*count >= max) {
        close(passed);
        continue;
      }
      if (kCmsgCloexec == 0) fcntl(passed, F_SETFD, FD_CLOEXEC);
      fds[(*count)++] = passed;
    }
  }
  return n;
}

int DescribeSocket(int fd, int* type, bool* listening, int* family) {
  socklen_t len = sizeof *type;
  if (getsockopt(fd, SOL_SOCKET, SO_TYPE, type, &len) != 0) return -errno;
  int accepting = 0;
  len = sizeof accepting;
  if (getsockopt(fd, SOL_SOCKET, SO_ACCEPTCONN, &accepting, &len) != 0) return -errno;
  *listening = accepting != 0;
#ifdef SO_DOMAIN
  len = sizeof *family;
  if (getsockopt(fd, SOL_SOCKET, SO_DOMAIN, family, &len) != 0) return -errno;
#else
  sockaddr_storage ss{};
  socklen_t ss_len = sizeof ss;
  if (getsockname(fd, reinterpret_cast<sockaddr*>(&ss), &ss_len) != 0) return -errno;
  *family = ss.ss_family;
#endif
  return 0;
}

int ConnectResult(int fd) {
  int err = 0;
  socklen_t len = sizeof err;
  if (getsockopt(fd, SOL_SOCKET, SO_ERROR, &err, &len) != 0) return -errno;
  return -err;
}

ssize_t Read(int fd, void* data, size_t len) {
  for (;;) {
    ssize_t n = read(fd, data, len);
    if (n >= 0) return n;
    if (errno == EINTR) continue;
    return errno == EWOULDBLOCK ? -EAGAIN : -errno;
  }
}

ssize_t Writev(int fd, const iovec* iov, int count) {
  msghdr msg{};
  msg.msg_iov = const_cast<iovec*>(iov);
  msg.msg_iovlen = count;
  for (;;) {
    ssize_t n = sendmsg(fd, &msg, kNoSignal);
    if (n >= 0) return n;
    if (errno == EINTR) continue;
    return errno == EWOULDBLOCK ? -EAGAIN : -errno;
  }
}

int ShutdownWrite(int fd) { return shutdown(fd, SHUT_WR) == 0 ? 0 : -errno; }

int SetNoDelay(int fd, bool on) { return SetInt(fd, IPPROTO_TCP, TCP_NODELAY, on ? 1 : 0); }

int SetKeepAlive(int fd, bool on, int idle_s, int interval_s, int count) {
  int err = SetInt(fd, SOL_SOCKET, SO_KEEPALIVE, on ? 1 : 0);
  if (err != 0 || !on) return err;
  if (idle_s > 0 && (err = SetInt(fd, IPPROTO_TCP, TCP_KEEPIDLE, idle_s)) != 0) return err;
  if (interval_s > 0 && (err = SetInt(fd, IPPROTO_TCP, TCP_KEEPINTVL, interval_s)) != 0) return err;
  if (count > 0 && (err = SetInt(fd, IPPROTO_TCP, TCP_KEEPCNT, count)) != 0) return err;
  return 0;
}

int SetLinger(int fd, int seconds) {
  linger l{};
  l.l_onoff = seconds >= 0 ? 1 : 0;
  l.l_linger = seconds >= 0 ? seconds : 0;
  return setsockopt(fd, SOL_SOCKET, SO_LINGER, &l, sizeof l) == 0 ? 0 : -errno;
}

int SetBufferSize(int fd, bool receive, int bytes) {
  return SetInt(fd, SOL_SOCKET, receive ? SO_RCVBUF : SO_SNDBUF, bytes);
}

int LocalAddr(int fd, SockAddr* out) {
  out->len = sizeof out->storage;
  return getsockname(fd, reinterpret_cast<sockaddr*>(&out->storage), &out->len) == 0 ? 0 : -errno;
}

int PeerAddr(int fd, SockAddr* out) {
  out->len = sizeof out->storage;
  return getpeername(fd, reinterpret_cast<sockaddr*>(&out->storage), &out->len) == 0 ? 0 : -errno;
}

int SetBroadcast(int fd, bool on) { return SetInt(fd, SOL_SOCKET, SO_BROADCAST, on ? 1 : 0); }

namespace {

int SocketFamily(int fd) {
  sockaddr_storage ss{};
  socklen_t len = sizeof ss;
  if (getsockname(fd, reinterpret_cast<sockaddr*>(&ss), &len) != 0) return -errno;
  return ss.ss_family;
}

// An IPv6 interface by name ("" = 0, the default), or -ENODEV.
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
    return setsockopt(fd, IPPROTO_IP, name, &v4, sizeof v4) == 0 ? 0 : -errno;
  }
  ipv6_mreq v6{};
  if (inet_pton(AF_INET6, group.c_str(), &v6.ipv6mr_multiaddr) != 1) return -EINVAL;
  int index = InterfaceIndex(iface);
  if (index < 0) return index;
  v6.ipv6mr_interface = static_cast<unsigned>(index);
  int name = join ? IPV6_JOIN_GROUP : IPV6_LEAVE_GROUP;  // the RFC 3493 names, everywhere
  return setsockopt(fd, IPPROTO_IPV6, name, &v6, sizeof v6) == 0 ? 0 : -errno;
}

int SetMulticastInterface(int fd, const std::string& iface) {
  in_addr v4{};
  if (inet_pton(AF_INET, iface.c_str(), &v4) == 1) {
    return setsockopt(fd, IPPROTO_IP, IP_MULTICAST_IF, &v4, sizeof v4) == 0 ? 0 : -errno;
  }
  int index = InterfaceIndex(iface);
  if (index < 0) return index;
  return SetInt(fd, IPPROTO_IPV6, IPV6_MULTICAST_IF, index);
}

#if !defined(__linux__)
// TCP_INFO is Linux's: macOS's TCP_CONNECTION_INFO and FreeBSD's TCP_INFO differ in every
// field, and are not mapped yet.
int ReadTcpInfo(int fd, double* out) { return -EOPNOTSUPP; }
#else
int ReadTcpInfo(int fd, double* out) {
  tcp_info info{};
  socklen_t len = sizeof info;
  if (getsockopt(fd, IPPROTO_TCP, TCP_INFO, &info, &len) != 0) return errno == ENOPROTOOPT ? -EOPNOTSUPP : -errno;
  // Older kernels fill a shorter struct: what they leave out is NaN, not a made-up zero.
  auto has = [&](size_t end) { return static_cast<size_t>(len) >= end; };
#define MUXNET_TCPI(field, name) \
  out[field] = has(offsetof(tcp_info, name) + sizeof info.name) ? static_cast<double>(info.name) : NAN
  MUXNET_TCPI(kTcpState, tcpi_state);
  MUXNET_TCPI(kTcpCaState, tcpi_ca_state);
  MUXNET_TCPI(kTcpRetransmits, tcpi_retransmits);
  MUXNET_TCPI(kTcpProbes, tcpi_probes);
  MUXNET_TCPI(kTcpBackoff, tcpi_backoff);
  MUXNET_TCPI(kTcpRtoUs, tcpi_rto);
  MUXNET_TCPI(kTcpAtoUs, tcpi_ato);
  MUXNET_TCPI(kTcpSndMss, tcpi_snd_mss);
  MUXNET_TCPI(kTcpRcvMss, tcpi_rcv_mss);
  MUXNET_TCPI(kTcpUnacked, tcpi_unacked);
  MUXNET_TCPI(kTcpSacked, tcpi_sacked);
  MUXNET_TCPI(kTcpLost, tcpi_lost);
  MUXNET_TCPI(kTcpRetrans, tcpi_retrans);
  MUXNET_TCPI(kTcpPmtu, tcpi_pmtu);
  MUXNET_TCPI(kTcpRcvSsthresh, tcpi_rcv_ssthresh);
  MUXNET_TCPI(kTcpRttUs, tcpi_rtt);
  MUXNET_TCPI(kTcpRttVarUs, tcpi_rttvar);
  MUXNET_TCPI(kTcpSndSsthresh, tcpi_snd_ssthresh);
  MUXNET_TCPI(kTcpSndCwnd, tcpi_snd_cwnd);
  MUXNET_TCPI(kTcpAdvMss, tcpi_advmss);
  MUXNET_TCPI(kTcpReordering, tcpi_reordering);
  MUXNET_TCPI(kTcpRcvRttUs, tcpi_rcv_rtt);
  MUXNET_TCPI(kTcpRcvSpace, tcpi_rcv_space);
  MUXNET_TCPI(kTcpTotalRetrans, tcpi_total_retrans);
  MUXNET_TCPI(kTcpBytesAcked, tcpi_bytes_acked);
  MUXNET_TCPI(kTcpBytesReceived, tcpi_bytes_received);
  MUXNET_TCPI(kTcpSegsOut, tcpi_segs_out);
  MUXNET_TCPI(kTcpSegsIn, tcpi_segs_in);
  MUXNET_TCPI(kTcpNotsentBytes, tcpi_notsent_bytes);
  MUXNET_TCPI(kTcpMinRttUs, tcpi_min_rtt);
  MUXNET_TCPI(kTcpDeliveryRate, tcpi_delivery_rate);
  MUXNET_TCPI(kTcpBytesSent, tcpi_bytes_sent);
#undef MUXNET_TCPI
  return 0;
}
#endif

int BufferSize(int fd, bool receive) {
  int value = 0;
  socklen_t len = sizeof value;
  if (getsockopt(fd, SOL_SOCKET, receive ? SO_RCVBUF : SO_SNDBUF, &value, &len) != 0) return -errno;
  return value;
}

void Close(int fd) { close(fd); }

int PrepareAdopted(int fd) {
  int flags = fcntl(fd, F_GETFL);
  if (flags < 0 || fcntl(fd, F_SETFL, flags | O_NONBLOCK) != 0 || fcntl(fd, F_SETFD, FD_CLOEXEC) != 0) {
    return -errno;
  }
  return 0;
}

int OpenReserveFd() { return open("/dev/null", O_RDONLY | O_CLOEXEC); }

}  // namespace muxnet

#endif  // !_WIN32
