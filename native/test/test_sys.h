// The few raw socket and process calls the native tests make beside the core (peers,
// socket pairs, waiting on one descriptor, counting open descriptors), for POSIX and for
// Windows (Winsock, run under wine). Raw calls return what POSIX returns: -1 with errno set.
#ifndef MUXNET_TEST_TEST_SYS_H_
#define MUXNET_TEST_TEST_SYS_H_

#include "../core/socket.h"  // the platform's socket headers (socket_platform.h)

#include <cerrno>
#include <chrono>
#include <cstdlib>
#include <string>
#include <thread>
#include <vector>

#ifndef _WIN32
#include <dirent.h>
#include <fcntl.h>
#include <csignal>
#include <poll.h>
#include <sys/resource.h>
#include <unistd.h>
#endif

namespace muxtest {

inline void SleepMs(int ms) { std::this_thread::sleep_for(std::chrono::milliseconds(ms)); }
inline void SleepUs(int us) { std::this_thread::sleep_for(std::chrono::microseconds(us)); }

#ifdef _WIN32

// Winsock's error of the last call as errno (the codes the tests compare against).
inline int SetErrnoFromWsa() {
  switch (WSAGetLastError()) {
    case WSAEWOULDBLOCK: errno = EAGAIN; break;
    case WSAECONNRESET: errno = ECONNRESET; break;
    case WSAECONNABORTED: errno = ECONNABORTED; break;
    case WSAESHUTDOWN: errno = EPIPE; break;
    case WSAECONNREFUSED: errno = ECONNREFUSED; break;
    default: errno = EIO; break;
  }
  return -1;
}
inline ssize_t RawWrite(int fd, const void* data, size_t len) {
  int n = send(static_cast<SOCKET>(fd), static_cast<const char*>(data), static_cast<int>(len), 0);
  return n >= 0 ? n : SetErrnoFromWsa();
}
inline ssize_t RawRead(int fd, void* data, size_t len) {
  int n = recv(static_cast<SOCKET>(fd), static_cast<char*>(data), static_cast<int>(len), 0);
  return n >= 0 ? n : SetErrnoFromWsa();
}
inline void RawClose(int fd) { closesocket(static_cast<SOCKET>(fd)); }
inline void SetNonBlocking(int fd) {
  u_long on = 1;
  ioctlsocket(static_cast<SOCKET>(fd), FIONBIO, &on);
}
inline int RawShutdownWrite(int fd) { return shutdown(static_cast<SOCKET>(fd), SD_SEND); }
inline int RawSetInt(int fd, int level, int name, int value) {
  return setsockopt(static_cast<SOCKET>(fd), level, name, reinterpret_cast<const char*>(&value), sizeof value);
}
// A blocking TCP socket (the core starts Winsock on its first socket; the tests' first
// socket may come before that).
inline int RawTcpSocket() {
  static bool started = [] {
    WSADATA d;
    return WSAStartup(MAKEWORD(2, 2), &d) == 0;
  }();
  (void)started;
  SOCKET s = WSASocketW(AF_INET, SOCK_STREAM, 0, nullptr, 0, WSA_FLAG_OVERLAPPED | WSA_FLAG_NO_HANDLE_INHERIT);
  return s == INVALID_SOCKET ? SetErrnoFromWsa() : static_cast<int>(s);
}
inline int RawConnectTo(int fd, const muxnet::SockAddr& a) {
  return connect(static_cast<SOCKET>(fd), reinterpret_cast<const sockaddr*>(&a.storage), a.len) == 0
             ? 0 : SetErrnoFromWsa();
}
// 1 when fd is readable (or writable) within timeout_ms, else 0.
inline int WaitFd(int fd, bool write, int timeout_ms) {
  fd_set set;
  FD_ZERO(&set);
  FD_SET(static_cast<SOCKET>(fd), &set);
  timeval tv{timeout_ms / 1000, (timeout_ms % 1000) * 1000};
  int n = select(0, write ? nullptr : &set, write ? &set : nullptr, nullptr, timeout_ms < 0 ? nullptr : &tv);
  return n > 0 ? 1 : 0;
}
// 1 once the peer's FIN has arrived on fd within timeout_ms: select has no hang-up, so
// this waits for readability, which data before the FIN may give sooner.
inline int WaitHangup(int fd, int timeout_ms) { return WaitFd(fd, false, timeout_ms); }
// A connected pair of TCP sockets over loopback (Windows has no socketpair).
inline int StreamPair(int sv[2], bool nonblocking) {
  int l = RawTcpSocket();
  muxnet::SockAddr a;
  muxnet::SockAddr::FromIp("127.0.0.1", 0, &a);
  int len = sizeof a.storage;
  if (l < 0 || bind(static_cast<SOCKET>(l), reinterpret_cast<const sockaddr*>(&a.storage), a.len) != 0 ||
      listen(static_cast<SOCKET>(l), 1) != 0 ||
      getsockname(static_cast<SOCKET>(l), reinterpret_cast<sockaddr*>(&a.storage), &len) != 0) {
    if (l >= 0) RawClose(l);
    return -1;
  }
  a.len = len;
  int c = RawTcpSocket();
  int rc = c >= 0 ? RawConnectTo(c, a) : -1;
  SOCKET s = rc == 0 ? accept(static_cast<SOCKET>(l), nullptr, nullptr) : INVALID_SOCKET;
  RawClose(l);
  if (s == INVALID_SOCKET) {
    if (c >= 0) RawClose(c);
    return -1;
  }
  RawSetInt(c, IPPROTO_TCP, TCP_NODELAY, 1);
  RawSetInt(static_cast<int>(s), IPPROTO_TCP, TCP_NODELAY, 1);
  sv[0] = c;
  sv[1] = static_cast<int>(s);
  if (nonblocking) {
    SetNonBlocking(sv[0]);
    SetNonBlocking(sv[1]);
  }
  return 0;
}
// Handle table of the system, from NtQuerySystemInformation(SystemExtendedHandleInformation),
// which wine 8 implements (its GetProcessHandleCount answers 0 always).
struct HandleEntry {  // SYSTEM_HANDLE_TABLE_ENTRY_INFO_EX
  PVOID object;
  ULONG_PTR pid, handle;
  ULONG access;
  USHORT creator, type;
  ULONG attributes, reserved;
};
struct HandleTable {  // SYSTEM_HANDLE_INFORMATION_EX
  ULONG_PTR count, reserved;
  HandleEntry entries[1];
};
inline const HandleTable* QueryHandles() {
  using Query = LONG(WINAPI*)(ULONG, PVOID, ULONG, PULONG);
  static Query query = reinterpret_cast<Query>(
      reinterpret_cast<void*>(GetProcAddress(GetModuleHandleA("ntdll.dll"), "NtQuerySystemInformation")));
  if (query == nullptr) return nullptr;
  constexpr ULONG kExtendedHandleInformation = 64;
  constexpr LONG kInfoLengthMismatch = static_cast<LONG>(0xC0000004L);
  static std::vector<char> buf(1 << 20);
  ULONG len = 0;
  LONG status;
  while ((status = query(kExtendedHandleInformation, buf.data(), static_cast<ULONG>(buf.size()), &len)) ==
         kInfoLengthMismatch) {
    buf.resize(buf.size() * 2);
  }
  return status == 0 ? reinterpret_cast<const HandleTable*>(buf.data()) : nullptr;
}
// This process's open handles of the kind a socket is (sockets and files, as /proc/self/fd
// counts on Linux), for the runner's leak check; -1 when unknown. Threads, events and the
// other handles Winsock and the C runtime open once, on first use, are not counted.
inline int OpenFdCount() {
  const ULONG_PTR me = GetCurrentProcessId();
  static int socket_type = [&] {
    int fd = RawTcpSocket();
    int type = -1;
    if (const HandleTable* t = QueryHandles()) {
      for (ULONG_PTR i = 0; i < t->count; i++) {
        const HandleEntry& e = t->entries[i];
        if (e.pid == me && e.handle == static_cast<ULONG_PTR>(fd)) type = e.type;
      }
    }
    RawClose(fd);
    return type;
  }();
  const HandleTable* t = socket_type >= 0 ? QueryHandles() : nullptr;
  if (t == nullptr) return -1;
  int n = 0;
  for (ULONG_PTR i = 0; i < t->count; i++) n += t->entries[i].pid == me && t->entries[i].type == socket_type;
  return n;
}
inline void RaiseNoFile() {}  // Windows has no descriptor limit to raise
inline void IgnoreSigPipe() {}  // Windows has no SIGPIPE
// A socket number that was valid and is closed now.
inline int ClosedDescriptor(int) {
  int fd = RawTcpSocket();
  RawClose(fd);
  return fd;
}
// A temporary file holding `bytes`, deleted when closed, as SendFile takes a file on Windows:
// its HANDLE (in an int: Windows keeps handle values within 32 bits); -1 on failure.
inline int TempFileWith(const std::string& bytes) {
  char dir[MAX_PATH], path[MAX_PATH];
  if (GetTempPathA(sizeof dir, dir) == 0 || GetTempFileNameA(dir, "mux", 0, path) == 0) return -1;
  HANDLE h = CreateFileA(path, GENERIC_READ | GENERIC_WRITE, 0, nullptr, CREATE_ALWAYS,
                         FILE_ATTRIBUTE_TEMPORARY | FILE_FLAG_DELETE_ON_CLOSE, nullptr);
  if (h == INVALID_HANDLE_VALUE) return -1;
  DWORD wrote = 0;
  if (!WriteFile(h, bytes.data(), static_cast<DWORD>(bytes.size()), &wrote, nullptr) || wrote != bytes.size()) {
    CloseHandle(h);
    return -1;
  }
  return static_cast<int>(reinterpret_cast<intptr_t>(h));
}
inline void CloseFile(int file) { CloseHandle(reinterpret_cast<HANDLE>(static_cast<intptr_t>(file))); }

#else

inline ssize_t RawWrite(int fd, const void* data, size_t len) { return write(fd, data, len); }
inline ssize_t RawRead(int fd, void* data, size_t len) { return read(fd, data, len); }
inline void RawClose(int fd) { close(fd); }
inline void SetNonBlocking(int fd) { fcntl(fd, F_SETFL, fcntl(fd, F_GETFL) | O_NONBLOCK); }
inline int RawShutdownWrite(int fd) { return shutdown(fd, SHUT_WR); }
inline int RawSetInt(int fd, int level, int name, int value) {
  return setsockopt(fd, level, name, &value, sizeof value);
}
inline int RawTcpSocket() { return socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0); }
inline int RawConnectTo(int fd, const muxnet::SockAddr& a) {
  return connect(fd, reinterpret_cast<const sockaddr*>(&a.storage), a.len);
}
inline int WaitFd(int fd, bool write, int timeout_ms) {
  pollfd p{fd, static_cast<short>(write ? POLLOUT : POLLIN), 0};
  return poll(&p, 1, timeout_ms) == 1 ? 1 : 0;
}
inline int WaitHangup(int fd, int timeout_ms) {
  pollfd p{fd, POLLRDHUP, 0};
  return poll(&p, 1, timeout_ms) == 1 ? 1 : 0;
}
inline int StreamPair(int sv[2], bool nonblocking) {
  return socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC | (nonblocking ? SOCK_NONBLOCK : 0), 0, sv);
}
inline int OpenFdCount() {
  int n = 0;
  DIR* d = opendir("/proc/self/fd");
  if (d == nullptr) return -1;
  while (dirent* e = readdir(d)) {
    if (e->d_name[0] != '.') n++;
  }
  closedir(d);
  return n - 1;  // the DIR's own descriptor
}
// Raises the soft RLIMIT_NOFILE to the hard limit.
inline void RaiseNoFile() {
  rlimit rl{};
  getrlimit(RLIMIT_NOFILE, &rl);
  if (rl.rlim_cur < rl.rlim_max) {
    rl.rlim_cur = rl.rlim_max;
    setrlimit(RLIMIT_NOFILE, &rl);
  }
}
inline void IgnoreSigPipe() { signal(SIGPIPE, SIG_IGN); }
inline int ClosedDescriptor(int like) {
  int fd = dup(like);
  close(fd);
  return fd;
}
inline int TempFileWith(const std::string& bytes) {
  char path[] = "/tmp/muxnet-wq-XXXXXX";
  int fd = mkstemp(path);
  if (fd < 0) return -1;
  unlink(path);
  if (write(fd, bytes.data(), bytes.size()) != static_cast<ssize_t>(bytes.size())) {
    close(fd);
    return -1;
  }
  return fd;
}
inline void CloseFile(int fd) { close(fd); }

#endif

// Appends what a non-blocking fd delivers to *got until it holds `want` bytes, the peer's
// end, or timeout_ms: bytes a peer wrote may still be on their way (loopback TCP on
// Windows), where a socketpair has them at once.
inline void ReadUntil(int fd, std::string* got, size_t want, int timeout_ms) {
  auto end = std::chrono::steady_clock::now() + std::chrono::milliseconds(timeout_ms);
  char buf[65536];
  while (got->size() < want && std::chrono::steady_clock::now() < end) {
    ssize_t n = RawRead(fd, buf, sizeof buf);
    if (n > 0) {
      got->append(buf, static_cast<size_t>(n));
    } else if (n == 0 || errno != EAGAIN) {
      return;
    } else {
      WaitFd(fd, false, 100);
    }
  }
}

}  // namespace muxtest

#endif  // MUXNET_TEST_TEST_SYS_H_
