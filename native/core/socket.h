// Socket syscalls with the retries and flags every caller needs: non-blocking, CLOEXEC,
// EINTR retried, MSG_NOSIGNAL on every send. Returns 0/count or a negative errno.
// One implementation per platform: socket_posix.cc, socket_win.cc (Winsock; its errors come
// back as the same negative errno values, -ECONNRESET, -EAGAIN, ..., so the loop and JS see
// one set of codes); socket.cc holds what they share.
//
// Descriptors are `int` on every platform. On Windows an int holds a SOCKET: Windows keeps
// kernel handles 32-bit significant (so that 64-bit and 32-bit processes can share them),
// and socket_win.cc checks each one it gets fits, so INVALID_SOCKET and "no descriptor"
// are both -1. This keeps the loop, the pollers and the addon free of a socket type.
#ifndef MUXNET_CORE_SOCKET_H_
#define MUXNET_CORE_SOCKET_H_

#include "socket_platform.h"

#include <cstdint>
#include <string>

namespace muxnet {

// An IPv4, IPv6 or Unix-domain socket address.
struct SockAddr {
  sockaddr_storage storage{};
  socklen_t len = 0;

  // Parses a numeric IP ("127.0.0.1", "::1") and a port. Returns 0 or -EINVAL.
  static int FromIp(const std::string& ip, int port, SockAddr* out);
  // A Unix socket path, or a Linux abstract name written "@name". Returns 0, -EINVAL
  // (empty, or a NUL inside) or -ENAMETOOLONG (longer than sun_path holds: never cut).
  static int FromUnix(const std::string& path, SockAddr* out);
  int family() const { return storage.ss_family; }
  // The numeric IP without brackets; for a Unix address its path ("@name" when abstract,
  // "" when unnamed).
  std::string Ip() const;
  int Port() const;
};

struct ListenOptions {
  int backlog = 511;  // Node's default; the kernel caps it at net.core.somaxconn
  bool reuse_addr = true;
  bool reuse_port = false;
  bool ipv6_only = false;
};

// socket + options + bind + listen. On success stores a non-blocking fd in *fd. A Unix
// socket file left by a process that is gone (connecting to it is refused) is replaced;
// one with a live listener, or a path that is not a socket, gives -EADDRINUSE.
int Listen(const SockAddr& addr, const ListenOptions& options, int* fd);

// accept4 with SOCK_NONBLOCK | SOCK_CLOEXEC, and TCP_NODELAY on for TCP (as Go does). Returns 0 with *fd set, -EAGAIN when the
// queue is empty, or another negative errno (EINTR and ECONNABORTED are retried here).
int Accept(int listen_fd, int* fd);

// Starts a non-blocking connect, TCP_NODELAY on for TCP (as Go does). Returns 0 (connected at once) or -EINPROGRESS,
// both with *fd set, or another negative errno with no descriptor left open. A Unix socket
// connects at once or fails: -EAGAIN there means the listener's backlog is full.
// start false: the socket only, made ready to connect (-EINPROGRESS): a completion backend
// connects it.
int Connect(const SockAddr& addr, int* fd, bool start = true);

// A datagram socket (UDP, or Unix SOCK_DGRAM) bound to addr: non-blocking, CLOEXEC,
// SO_REUSEADDR for UDP when asked. A stale Unix socket file is replaced as for Listen.
int BindDatagram(const SockAddr& addr, bool reuse_addr, int* fd);

// A raw IP socket (SOCK_RAW) for `protocol` (e.g. IPPROTO_ICMP) bound to addr's IP.
// Needs CAP_NET_RAW: -EPERM without it.
int BindRaw(const SockAddr& addr, int protocol, int* fd);

// A datagram socket connected to addr (for UDP no packet is sent). Returns 0 with *fd set,
// or -errno with no descriptor left open.
int ConnectDatagram(const SockAddr& addr, int* fd);

// One datagram: bytes copied into data (at most len), the sender in *from, and *truncated
// set when the datagram was longer than len (the rest is gone: MSG_TRUNC). -EAGAIN when
// none is waiting, or another negative errno.
ssize_t RecvFrom(int fd, void* data, size_t len, SockAddr* from, bool* truncated);

// One datagram to `to` (nullptr: the connected peer), MSG_NOSIGNAL. Bytes sent (all of
// them) or a negative errno (-EAGAIN: the socket buffer is full; -EMSGSIZE: too long).
ssize_t SendTo(int fd, const void* data, size_t len, const SockAddr* to);

// One message of a batch: the caller's buffer, and what recvmmsg/sendmmsg report.
struct Datagram {
  void* data = nullptr;
  size_t len = 0;          // buffer size (receive) or bytes to send
  size_t received = 0;     // receive: bytes copied
  bool truncated = false;  // receive: MSG_TRUNC
  SockAddr addr;           // receive: the sender; send: the destination (len 0: connected peer)
};

// recvmmsg: fills up to count datagrams without waiting. Returns how many, -EAGAIN when
// none is waiting, or another negative errno.
int RecvMany(int fd, Datagram* batch, int count);

// sendmmsg: sends datagrams in order until one would block. Returns how many were sent
// (at least 1), -EAGAIN when not even the first fits, or another negative errno.
int SendMany(int fd, const Datagram* batch, int count);

// sendmsg with SCM_RIGHTS: sends data (at least one byte) with copies of `fds` attached
// (at most kMaxPassedFds). Bytes sent (the descriptors ride with the first) or -errno.
constexpr int kMaxPassedFds = 16;
ssize_t SendWithFds(int fd, const void* data, size_t len, const int* fds, int count);

// recvmsg that also takes descriptors passed with SCM_RIGHTS (CLOEXEC), up to `max`; the
// caller owns them. Bytes read (0 at EOF) or -errno; *count = descriptors received.
ssize_t RecvWithFds(int fd, void* data, size_t len, int* fds, int max, int* count);

// What a descriptor received from elsewhere is: SOCK_STREAM or SOCK_DGRAM, listening or
// not, and its address family. 0 or -errno (-ENOTSOCK for anything but a socket).
int DescribeSocket(int fd, int* type, bool* listening, int* family);

// The result of a connect that was in progress, once the socket is writable: 0 or -errno.
int ConnectResult(int fd);

// read(2): bytes read, 0 at EOF, or a negative errno (-EAGAIN when nothing is there).
ssize_t Read(int fd, void* data, size_t len);

// sendmsg(2) with MSG_NOSIGNAL, so a reset peer gives -EPIPE and never SIGPIPE.
ssize_t Writev(int fd, const iovec* iov, int count);

// Up to `len` bytes of `file` from *offset to the socket (sendfile where there is one, in
// transfer.cc), advancing *offset: bytes sent, 0 at the file's end, or -errno (-EAGAIN when
// the socket buffer is full). Never raises SIGPIPE. On Windows `file` is the file's HANDLE
// (a C runtime descriptor would belong to one runtime of several in the process).
ssize_t SendFile(int sock, int file, int64_t* offset, size_t len);

// splice(2) of up to `len` bytes between a socket and a pipe end (either way), non-blocking,
// without SIGPIPE: bytes moved, 0 at the socket's end, or -errno (-EAGAIN: nothing to move
// now, or the pipe is full; -ENOSYS off Linux). In transfer.cc.
ssize_t Splice(int from, int to, size_t len);
// A non-blocking, close-on-exec pipe: fds[0] reads, fds[1] writes. 0 or -errno (-ENOSYS off Linux).
int MakePipe(int fds[2]);

int ShutdownWrite(int fd);
int SetNoDelay(int fd, bool on);
// idle_s/interval_s/count <= 0 keep the system defaults.
int SetKeepAlive(int fd, bool on, int idle_s, int interval_s, int count);
// seconds < 0 turns lingering off (the default); 0 resets the connection on close.
int SetLinger(int fd, int seconds);
int SetBufferSize(int fd, bool receive, int bytes);
int LocalAddr(int fd, SockAddr* out);
int PeerAddr(int fd, SockAddr* out);

// SO_BROADCAST: datagrams may go to broadcast addresses.
int SetBroadcast(int fd, bool on);
// IP_MULTICAST_TTL / IPV6_MULTICAST_HOPS, and IP(V6)_MULTICAST_LOOP, for the socket's family.
int SetMulticastHops(int fd, int hops);
int SetMulticastLoop(int fd, bool on);
// Joins (or leaves) multicast group `group` (a numeric IP) on an interface: for IPv4 the
// interface's address ("" = any), for IPv6 its name ("" = the default). 0 or -errno.
int MulticastMembership(int fd, bool join, const std::string& group, const std::string& iface);
// The interface multicast datagrams leave by: an IPv4 address, or an IPv6 interface name.
int SetMulticastInterface(int fd, const std::string& iface);

// Socket options by number, as Loop::SetOption takes them (the addon exports these).
enum SocketOption : int32_t {
  kOptNoDelay = 1,         // a = on
  kOptKeepAlive = 2,       // a = on, b = idle s, c = interval s, d = count
  kOptLinger = 3,          // a = seconds (< 0 off)
  kOptReadBuffer = 4,      // a = bytes
  kOptWriteBuffer = 5,     // a = bytes
  kOptBroadcast = 6,       // a = on
  kOptMulticastHops = 7,   // a = hops
  kOptMulticastLoop = 8,   // a = on
};

// Sets `option` on fd: 0 or -errno (-EINVAL for an unknown option).
int ApplySocketOption(int fd, int option, int a, int b, int c, int d);

// TCP_INFO, as ReadTcpInfo writes it: one double per field, in this order (times in
// microseconds, sizes in bytes or segments as the kernel reports them).
enum TcpInfoField {
  kTcpState, kTcpCaState, kTcpRetransmits, kTcpProbes, kTcpBackoff, kTcpRtoUs, kTcpAtoUs,
  kTcpSndMss, kTcpRcvMss, kTcpUnacked, kTcpSacked, kTcpLost, kTcpRetrans, kTcpPmtu,
  kTcpRcvSsthresh, kTcpRttUs, kTcpRttVarUs, kTcpSndSsthresh, kTcpSndCwnd, kTcpAdvMss,
  kTcpReordering, kTcpRcvRttUs, kTcpRcvSpace, kTcpTotalRetrans, kTcpBytesAcked,
  kTcpBytesReceived, kTcpSegsOut, kTcpSegsIn, kTcpNotsentBytes, kTcpMinRttUs,
  kTcpDeliveryRate, kTcpBytesSent, kTcpInfoFields
};

// Fills out[kTcpInfoFields] from getsockopt(TCP_INFO); a field the running kernel does not
// report is NaN. Returns 0 or -errno (-EOPNOTSUPP for a socket that is not TCP).
int ReadTcpInfo(int fd, double* out);

// SO_RCVBUF / SO_SNDBUF in force (after the kernel's doubling). Returns bytes or -errno.
int BufferSize(int fd, bool receive);

// Makes a socket received from elsewhere (Loop::Adopt) non-blocking and close-on-exec:
// 0 or -errno.
int PrepareAdopted(int fd);

// A spare descriptor the listener gives up to shed a connection when the process is out of
// descriptors (EMFILE), or -1 where there is no such limit to guard (Windows).
int OpenReserveFd();

// Closes fd, retrying nothing: on Linux the descriptor is gone even when close fails.
void Close(int fd);

}  // namespace muxnet

#endif  // MUXNET_CORE_SOCKET_H_
