// muxnet-loadgen: the benchmark suite's native load generator, in its own process.
// pingpong: each connection sends a message, waits for the whole echo, repeats.
// http: each connection sends a keep-alive GET, waits for the whole response, repeats.
// Bounded by a duration and a message count; prints one JSON line on stdout.
//
//   muxnet-loadgen --port 8080 [--host 127.0.0.1] [--connections 50] [--size 64]
//                  [--duration 5] [--warmup 1] [--max-messages N] [--mode pingpong|http]
//                  [--idle N]
#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cerrno>
#include <chrono>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <string>
#include <vector>

namespace {

using Clock = std::chrono::steady_clock;

struct Options {
  std::string host = "127.0.0.1";
  int port = 0;
  int connections = 50;
  int size = 64;
  double duration = 5;
  double warmup = 1;
  long long max_messages = 100000000;
  std::string mode = "pingpong";
  int idle = 0;
};

struct Conn {
  int fd = -1;
  size_t sent = 0;
  size_t received = 0;
  Clock::time_point started;
};

[[noreturn]] void Die(const char* what) {
  fprintf(stderr, "muxnet-loadgen: %s: %s\n", what, strerror(errno));
  exit(2);
}

int Connect(const sockaddr_in& addr) {
  int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (fd < 0) Die("socket");
  if (connect(fd, reinterpret_cast<const sockaddr*>(&addr), sizeof addr) != 0) Die("connect");
  int one = 1;
  setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
  return fd;
}

// Latency histogram: 1 us buckets up to 100 ms, then one overflow bucket.
constexpr int kBuckets = 100000;

double Percentile(const std::vector<uint64_t>& hist, uint64_t total, double p) {
  if (total == 0) return 0;
  uint64_t rank = static_cast<uint64_t>(p * total);
  uint64_t seen = 0;
  for (int i = 0; i <= kBuckets; i++) {
    seen += hist[i];
    if (seen > rank) return i;
  }
  return kBuckets;
}

// Bytes of a complete HTTP/1.1 response at the start of buf, or 0 when incomplete.
size_t HttpResponseLength(const char* buf, size_t len) {
  const char* end = static_cast<const char*>(memmem(buf, len, "\r\n\r\n", 4));
  if (end == nullptr) return 0;
  size_t header = end - buf + 4;
  const char* cl = static_cast<const char*>(memmem(buf, header, "ontent-Length:", 14));
  if (cl == nullptr) cl = static_cast<const char*>(memmem(buf, header, "ontent-length:", 14));
  size_t body = cl != nullptr ? strtoul(cl + 14, nullptr, 10) : 0;
  return len >= header + body ? header + body : 0;
}

}  // namespace

int main(int argc, char** argv) {
  Options o;
  for (int i = 1; i + 1 < argc; i += 2) {
    std::string k = argv[i], v = argv[i + 1];
    if (k == "--host") o.host = v;
    else if (k == "--port") o.port = atoi(v.c_str());
    else if (k == "--connections") o.connections = atoi(v.c_str());
    else if (k == "--size") o.size = atoi(v.c_str());
    else if (k == "--duration") o.duration = atof(v.c_str());
    else if (k == "--warmup") o.warmup = atof(v.c_str());
    else if (k == "--max-messages") o.max_messages = atoll(v.c_str());
    else if (k == "--mode") o.mode = v;
    else if (k == "--idle") o.idle = atoi(v.c_str());
    else { fprintf(stderr, "muxnet-loadgen: unknown option %s\n", k.c_str()); return 2; }
  }
  if (o.port <= 0 || o.connections <= 0 || o.size <= 0 || o.duration <= 0 ||
      (o.mode != "pingpong" && o.mode != "http")) {
    fprintf(stderr, "muxnet-loadgen: --port, --connections, --size, --duration must be > 0; "
                    "--mode pingpong|http\n");
    return 2;
  }
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_port = htons(static_cast<uint16_t>(o.port));
  if (inet_pton(AF_INET, o.host.c_str(), &addr.sin_addr) != 1) {
    fprintf(stderr, "muxnet-loadgen: --host must be an IPv4 address\n");
    return 2;
  }

  std::vector<int> idle;
  for (int i = 0; i < o.idle; i++) idle.push_back(Connect(addr));

  std::string request;
  if (o.mode == "http") {
    request = "GET / HTTP/1.1\r\nHost: " + o.host + "\r\n\r\n";
  } else {
    request.assign(o.size, 'x');
  }
  std::vector<char> buf(1 << 16);
  std::vector<Conn> conns(o.connections);
  int ep = epoll_create1(EPOLL_CLOEXEC);
  for (int i = 0; i < o.connections; i++) {
    conns[i].fd = Connect(addr);
    fcntl(conns[i].fd, F_SETFL, O_NONBLOCK);
    epoll_event ev{};
    ev.events = EPOLLIN;
    ev.data.u32 = i;
    epoll_ctl(ep, EPOLL_CTL_ADD, conns[i].fd, &ev);
  }

  std::vector<uint64_t> hist(kBuckets + 1, 0);
  uint64_t measured = 0, total = 0, errors = 0;
  auto start = Clock::now();
  auto measure_from = start + std::chrono::duration_cast<Clock::duration>(
                                  std::chrono::duration<double>(o.warmup));
  auto stop = measure_from + std::chrono::duration_cast<Clock::duration>(
                                 std::chrono::duration<double>(o.duration));
  auto send = [&](Conn& c) {
    c.started = Clock::now();
    c.received = 0;
    ssize_t n = ::send(c.fd, request.data(), request.size(), MSG_NOSIGNAL);
    if (n != static_cast<ssize_t>(request.size())) errors++;
  };
  for (auto& c : conns) send(c);
  printf("{\"event\":\"started\"}\n");
  fflush(stdout);
  std::vector<epoll_event> events(1024);
  bool measuring = false;
  while (true) {
    auto now = Clock::now();
    if (now >= stop || static_cast<long long>(total) >= o.max_messages) break;
    if (!measuring && now >= measure_from) {
      measuring = true;
      // The orchestrator samples the server's CPU between these two lines.
      printf("{\"event\":\"measuring\"}\n");
      fflush(stdout);
    }
    int n = epoll_wait(ep, events.data(), events.size(), 100);
    for (int i = 0; i < n; i++) {
      Conn& c = conns[events[i].data.u32];
      ssize_t r = read(c.fd, buf.data() + c.received, buf.size() - c.received);
      if (r <= 0) {
        if (r < 0 && errno == EAGAIN) continue;
        fprintf(stderr, "muxnet-loadgen: connection closed by the server\n");
        return 3;
      }
      c.received += r;
      bool done = o.mode == "http" ? HttpResponseLength(buf.data(), c.received) > 0
                                   : c.received >= request.size();
      if (!done) continue;
      total++;
      if (measuring) {
        auto us = std::chrono::duration_cast<std::chrono::microseconds>(Clock::now() - c.started).count();
        hist[us < kBuckets ? us : kBuckets]++;
        measured++;
      }
      send(c);
    }
  }
  double seconds = std::chrono::duration<double>(Clock::now() - measure_from).count();
  printf("{\"event\":\"done\",\"messages\":%llu,\"seconds\":%.6f,\"rate\":%.1f,"
         "\"p50_us\":%.0f,\"p99_us\":%.0f,\"p999_us\":%.0f,\"errors\":%llu}\n",
         static_cast<unsigned long long>(measured), seconds, measured / seconds,
         Percentile(hist, measured, 0.5), Percentile(hist, measured, 0.99),
         Percentile(hist, measured, 0.999), static_cast<unsigned long long>(errors));
  for (auto& c : conns) close(c.fd);
  for (int fd : idle) close(fd);
  return 0;
}
