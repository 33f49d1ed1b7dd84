// Socket addresses and Unix listeners: exact length limits, round trips, stale files replaced, live ones kept.
#ifndef _WIN32
#include <sys/stat.h>
#include <unistd.h>
#endif

#include <cerrno>
#include <cstdio>
#include <cstring>
#include <cstdlib>
#include <string>

#include "../core/socket.h"
#include "check.h"

using muxnet::SockAddr;

// Unix-domain sockets: not supported by socket_win.cc yet (-EAFNOSUPPORT), and no abstract
// names on Windows.
#ifndef _WIN32
namespace {

std::string TempDir() {
  char tmpl[] = "/tmp/muxnet-sock-XXXXXX";
  char* dir = mkdtemp(tmpl);
  CHECK(dir != nullptr, "mkdtemp: errno %d", errno);
  return dir;
}

}  // namespace

TEST(socket_unix_addr_lengths_are_exact) {
  SockAddr a;
  std::string path107 = "/" + std::string(106, 'p');
  CHECK(SockAddr::FromUnix(path107, &a) == 0, "a 107-byte path fits with its NUL");
  CHECK(a.Ip() == path107, "round trip: %s", a.Ip().c_str());
  CHECK(SockAddr::FromUnix(path107 + "p", &a) == -ENAMETOOLONG, "108 bytes: no room for the NUL");
  std::string abstract108 = "@" + std::string(107, 'n');
  CHECK(SockAddr::FromUnix(abstract108, &a) == 0, "an abstract name needs no NUL");
  CHECK(a.Ip() == abstract108);
  CHECK(SockAddr::FromUnix(abstract108 + "n", &a) == -ENAMETOOLONG);
  CHECK(SockAddr::FromUnix("", &a) == -EINVAL);
  CHECK(SockAddr::FromUnix("@", &a) == -EINVAL);
  CHECK(SockAddr::FromUnix(std::string("a\0b", 3), &a) == -EINVAL);
}

TEST(socket_unix_listen_replaces_stale_file_refuses_live_one_and_regular_file) {
  std::string dir = TempDir();
  std::string path = dir + "/s.sock";
  SockAddr addr;
  CHECK(SockAddr::FromUnix(path, &addr) == 0);
  muxnet::ListenOptions options;
  int live = -1;
  CHECK(muxnet::Listen(addr, options, &live) == 0);
  SockAddr bound;
  CHECK(muxnet::LocalAddr(live, &bound) == 0 && bound.Ip() == path, "getsockname: %s", bound.Ip().c_str());
  int second = -1;
  CHECK(muxnet::Listen(addr, options, &second) == -EADDRINUSE, "a live listener's path was taken");
  // A socket file nobody listens on (bound, never listening, then closed) is stale.
  muxnet::Close(live);
  struct stat st;
  CHECK(lstat(path.c_str(), &st) == 0 && S_ISSOCK(st.st_mode), "the closed listener's file should remain");
  int fresh = -1;
  CHECK(muxnet::Listen(addr, options, &fresh) == 0, "a stale socket file was not replaced");
  muxnet::Close(fresh);
  unlink(path.c_str());
  // A regular file is never removed.
  FILE* f = fopen(path.c_str(), "w");
  CHECK(f != nullptr);
  fclose(f);
  CHECK(muxnet::Listen(addr, options, &second) == -EADDRINUSE);
  CHECK(lstat(path.c_str(), &st) == 0 && S_ISREG(st.st_mode), "the regular file was removed");
  unlink(path.c_str());
  rmdir(dir.c_str());
}

#endif  // !_WIN32

TEST(socket_udp_truncation_reported_and_batches_keep_order) {
  SockAddr any;
  CHECK(SockAddr::FromIp("127.0.0.1", 0, &any) == 0);
  int a = -1, b = -1;
  CHECK(muxnet::BindDatagram(any, false, &a) == 0 && muxnet::BindDatagram(any, false, &b) == 0);
  SockAddr a_addr;
  CHECK(muxnet::LocalAddr(a, &a_addr) == 0);
  char big[200];
  memset(big, 'x', sizeof big);
  CHECK(muxnet::SendTo(b, big, sizeof big, &a_addr) == static_cast<ssize_t>(sizeof big));
  char small[10];
  SockAddr from;
  bool truncated = false;
  ssize_t n = muxnet::RecvFrom(a, small, sizeof small, &from, &truncated);
  CHECK(n == 10 && truncated, "n %zd truncated %d", n, truncated);
  CHECK(muxnet::RecvFrom(a, small, sizeof small, &from, &truncated) == -EAGAIN, "the rest must be gone");

  constexpr int kCount = 50;
  muxnet::Datagram out[kCount];
  char payload[kCount][8];
  for (int i = 0; i < kCount; i++) {
    snprintf(payload[i], sizeof payload[i], "m%d", i);
    out[i].data = payload[i];
    out[i].len = strlen(payload[i]);
    out[i].addr = a_addr;
  }
  int sent = 0;
  while (sent < kCount) {
    int r = muxnet::SendMany(b, out + sent, kCount - sent);
    CHECK(r > 0, "sendmmsg %d", r);
    sent += r;
  }
  muxnet::Datagram in[kCount];
  char bufs[kCount][16];
  for (int i = 0; i < kCount; i++) {
    in[i].data = bufs[i];
    in[i].len = sizeof bufs[i];
  }
  int got = 0;
  while (got < kCount) {
    int r = muxnet::RecvMany(a, in + got, kCount - got);
    CHECK(r > 0, "recvmmsg %d after %d", r, got);
    got += r;
  }
  for (int i = 0; i < kCount; i++) {
    CHECK(std::string(bufs[i], in[i].received) == payload[i] && !in[i].truncated, "message %d", i);
  }
  muxnet::Close(a);
  muxnet::Close(b);
}
