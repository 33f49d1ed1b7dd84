// muxnet-loadgen: the benchmark suite's native load generator, in its own process.
// pingpong: each connection sends a message, waits for the whole echo, repeats. With
//   --depth N it sends N messages back to back (N send calls: pipelined requests), waits for
//   all N echoes, repeats; each of the N counts as a message, with the round's latency.
// http: each connection sends a keep-alive GET, waits for the whole response, repeats.
// stream: each connection sends --size-byte chunks as fast as the server reads them (one way).
// stream-echo: the same, and reads back what the server echoes.
// file: each connection sends the line "<--request>\n", reads a --size-byte answer (a file's
//   bytes), repeats; `messages` counts whole answers.
// udp: each of --connections UDP sockets sends a --size datagram and waits for the echo;
//   a datagram lost (no echo in 200 ms) is counted in errors and sent again.
// churn: each connection slot connects, sends one message, reads the echo, closes, and starts
//   over with a new connection; `messages` counts whole connections, and a "tick" line with
//   the running totals is printed every second (the soak script plots them).
// Bounded by a duration and a message count (chunks, in the stream modes); prints JSON lines
// on stdout. In the stream modes `rate` is bytes per second, `messages` is whole chunks, and
// `bytes` is the bytes sent (stream) or received back (stream-echo) while measuring. Every
// "done" line also has `load_cpu_s`: this process's own CPU seconds (user + system) over the
// measured window, so a report can show whether the load generator was the bottleneck.
//
//   muxnet-loadgen --port 8080 [--host 127.0.0.1] [--connections 50] [--size 64]
//                  [--duration 5] [--warmup 1] [--max-messages N]
//                  [--mode pingpong|http|stream|stream-echo|churn|udp|file] [--idle N]
//                  [--request NAME] [--depth 1]
#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <sys/epoll.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <chrono>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <string>
#include <vector>

#include "http_response.h"

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
  std::string request = "file";  // file mode: what each request line names
  int depth = 1;                  // pingpong mode: messages in flight per connection
};

struct Conn {
  int fd = -1;
  size_t sent = 0;      // stream modes: bytes of the current chunk already sent
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

// This process's CPU seconds so far, user + system.
double OwnCpuSeconds() {
  rusage ru{};
  getrusage(RUSAGE_SELF, &ru);
  auto secs = [](const timeval& tv) { return tv.tv_sec + tv.tv_usec / 1e6; };
  return secs(ru.ru_utime) + secs(ru.ru_stime);
}

// The measured window. Its start is marked on stdout ("measuring"): the orchestrator samples
// the server's CPU between that mark and the "done" line.
struct Window {
  Clock::time_point from;
  bool measuring = false;
  double cpu_from = 0;  // OwnCpuSeconds() when measuring began
  void Update(Clock::time_point now) {
    if (measuring || now < from) return;
    measuring = true;
    cpu_from = OwnCpuSeconds();
    printf("{\"event\":\"measuring\"}\n");
    fflush(stdout);
  }
  // Zero when the count bound ended the run before measuring began.
  double Seconds() const {
    return measuring ? std::chrono::duration<double>(Clock::now() - from).count() : 0;
  }
  double CpuSeconds() const { return measuring ? OwnCpuSeconds() - cpu_from : 0; }
};

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

// Prints the "done" line: `messages`, `per_second` over the window as the rate (messages,
// or bytes in the stream modes), latency percentiles from `hist` (0 without one), errors,
// and one count of the mode's own when `extra_name` is given.
void PrintDone(const Window& window, uint64_t messages, double per_second, const std::vector<uint64_t>* hist,
               uint64_t errors, const char* extra_name = nullptr, uint64_t extra = 0) {
  double seconds = window.Seconds();
  auto pct = [&](double p) { return hist != nullptr ? Percentile(*hist, messages, p) : 0.0; };
  printf("{\"event\":\"done\",\"messages\":%llu,\"seconds\":%.6f,\"rate\":%.1f,"
         "\"p50_us\":%.0f,\"p99_us\":%.0f,\"p999_us\":%.0f,\"errors\":%llu,\"load_cpu_s\":%.6f",
         static_cast<unsigned long long>(messages), seconds, seconds > 0 ? per_second / seconds : 0,
         pct(0.5), pct(0.99), pct(0.999), static_cast<unsigned long long>(errors), window.CpuSeconds());
  if (extra_name != nullptr) printf(",\"%s\":%llu", extra_name, static_cast<unsigned long long>(extra));
  printf("}\n");
}

// A stream run reads or writes this many times per ready connection before it looks at the
// others, so that one fast connection cannot starve the rest.
constexpr int kStreamBurst = 16;

// The stream modes: returns the exit status. Every connection is already connected and
// non-blocking, and registered in ep with data.u32 = its index.
int RunStream(const Options& o, std::vector<Conn>& conns, int ep, Clock::time_point measure_from,
              Clock::time_point stop) {
  const bool echo = o.mode == "stream-echo";
  std::vector<char> chunk(o.size, 'x');
  std::vector<char> buf(1 << 16);
  for (size_t i = 0; i < conns.size(); i++) {
    epoll_event ev{};
    ev.events = EPOLLIN | EPOLLOUT;
    ev.data.u32 = i;
    epoll_ctl(ep, EPOLL_CTL_MOD, conns[i].fd, &ev);
  }
  uint64_t total = 0, measured = 0;  // bytes: sent (stream) or echoed back (stream-echo)
  const uint64_t max_bytes = static_cast<uint64_t>(o.max_messages) * o.size;
  printf("{\"event\":\"started\"}\n");
  fflush(stdout);
  std::vector<epoll_event> events(1024);
  Window window{measure_from};
  while (true) {
    auto now = Clock::now();
    if (now >= stop || total >= max_bytes) break;
    window.Update(now);
    int n = epoll_wait(ep, events.data(), events.size(), 100);
    for (int i = 0; i < n; i++) {
      Conn& c = conns[events[i].data.u32];
      if (events[i].events & (EPOLLIN | EPOLLHUP | EPOLLERR)) {
        for (int k = 0; k < kStreamBurst; k++) {
          ssize_t r = read(c.fd, buf.data(), buf.size());
          if (r < 0 && errno == EAGAIN) break;
          if (r <= 0 || !echo) {
            fprintf(stderr, "muxnet-loadgen: %s\n", r <= 0 ? "connection closed by the server"
                                                           : "the server sent data in one-way mode");
            return 3;
          }
          total += r;
          if (window.measuring) measured += r;
          if (static_cast<size_t>(r) < buf.size()) break;
        }
      }
      if (events[i].events & EPOLLOUT) {
        for (int k = 0; k < kStreamBurst; k++) {
          ssize_t w = ::send(c.fd, chunk.data() + c.sent, chunk.size() - c.sent, MSG_NOSIGNAL);
          if (w < 0 && errno == EAGAIN) break;
          if (w < 0) {
            fprintf(stderr, "muxnet-loadgen: send: %s\n", strerror(errno));
            return 3;
          }
          c.sent = (c.sent + w) % chunk.size();
          if (!echo) {
            total += w;
            if (window.measuring) measured += w;
          }
        }
      }
    }
  }
  PrintDone(window, measured / o.size, measured, nullptr, 0, "bytes", measured);
  return 0;
}

// One churn slot: a connection being made, or waiting for its echo.
struct ChurnSlot {
  int fd = -1;
  bool connected = false;
  size_t received = 0;
};

// The churn mode: returns the exit status. Connection failures (refused, reset, out of
// ports) are counted, not fatal: the soak wants to see them.
int RunChurn(const Options& o, const sockaddr_in& addr, Clock::time_point start,
             Clock::time_point measure_from, Clock::time_point stop) {
  int ep = epoll_create1(EPOLL_CLOEXEC);
  if (ep < 0) Die("epoll_create1");
  std::vector<ChurnSlot> slots(o.connections);
  std::vector<char> request(o.size, 'x');
  std::vector<char> buf(o.size);
  uint64_t completed = 0, measured = 0, errors = 0;
  auto open_slot = [&](uint32_t i) {
    ChurnSlot& s = slots[i];
    s = ChurnSlot{};
    s.fd = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (s.fd < 0) Die("socket");
    if (connect(s.fd, reinterpret_cast<const sockaddr*>(&addr), sizeof addr) != 0 && errno != EINPROGRESS) {
      errors++;  // e.g. EADDRNOTAVAIL: retried when the slot is next writable
    }
    epoll_event ev{};
    ev.events = EPOLLOUT;
    ev.data.u32 = i;
    epoll_ctl(ep, EPOLL_CTL_ADD, s.fd, &ev);
  };
  auto restart = [&](uint32_t i) {
    close(slots[i].fd);  // also leaves the epoll set
    open_slot(i);
  };
  for (uint32_t i = 0; i < slots.size(); i++) open_slot(i);
  printf("{\"event\":\"started\"}\n");
  fflush(stdout);
  std::vector<epoll_event> events(1024);
  Window window{measure_from};
  auto next_tick = start + std::chrono::seconds(1);
  while (true) {
    auto now = Clock::now();
    if (now >= stop || static_cast<long long>(completed) >= o.max_messages) break;
    window.Update(now);
    if (now >= next_tick) {
      next_tick += std::chrono::seconds(1);
      printf("{\"event\":\"tick\",\"seconds\":%.3f,\"completed\":%llu,\"errors\":%llu}\n",
             std::chrono::duration<double>(now - start).count(), static_cast<unsigned long long>(completed),
             static_cast<unsigned long long>(errors));
      fflush(stdout);
    }
    int n = epoll_wait(ep, events.data(), events.size(), 100);
    for (int k = 0; k < n; k++) {
      uint32_t i = events[k].data.u32;
      ChurnSlot& s = slots[i];
      if (!s.connected) {
        int err = 0;
        socklen_t len = sizeof err;
        getsockopt(s.fd, SOL_SOCKET, SO_ERROR, &err, &len);
        if (err != 0 || (events[k].events & (EPOLLERR | EPOLLHUP))) {
          errors++;
          restart(i);
          continue;
        }
        s.connected = true;
        if (::send(s.fd, request.data(), request.size(), MSG_NOSIGNAL) != static_cast<ssize_t>(request.size())) {
          errors++;
          restart(i);
          continue;
        }
        epoll_event ev{};
        ev.events = EPOLLIN;
        ev.data.u32 = i;
        epoll_ctl(ep, EPOLL_CTL_MOD, s.fd, &ev);
        continue;
      }
      ssize_t r = read(s.fd, buf.data(), buf.size() - s.received);
      if (r < 0 && errno == EAGAIN) continue;
      if (r <= 0) {
        errors++;
        restart(i);
        continue;
      }
      s.received += r;
      if (s.received < request.size()) continue;
      completed++;
      if (window.measuring) measured++;
      restart(i);
    }
  }
  PrintDone(window, measured, measured, nullptr, errors, "completed", completed);
  for (auto& s : slots) close(s.fd);
  close(ep);
  return 0;
}

// The udp mode: returns the exit status.
int RunUdp(const Options& o, const sockaddr_in& addr, Clock::time_point measure_from, Clock::time_point stop) {
  int ep = epoll_create1(EPOLL_CLOEXEC);
  if (ep < 0) Die("epoll_create1");
  struct Flow {
    int fd;
    Clock::time_point sent;
  };
  std::vector<Flow> flows(o.connections);
  std::vector<char> request(o.size, 'u');
  std::vector<char> buf(65536);
  std::vector<uint64_t> hist(kBuckets + 1, 0);
  uint64_t total = 0, measured = 0, errors = 0;
  auto send_on = [&](Flow& f) {
    f.sent = Clock::now();
    if (::send(f.fd, request.data(), request.size(), MSG_NOSIGNAL) != static_cast<ssize_t>(request.size())) errors++;
  };
  for (uint32_t i = 0; i < flows.size(); i++) {
    flows[i].fd = socket(AF_INET, SOCK_DGRAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (flows[i].fd < 0) Die("socket");
    if (connect(flows[i].fd, reinterpret_cast<const sockaddr*>(&addr), sizeof addr) != 0) Die("connect");
    epoll_event ev{};
    ev.events = EPOLLIN;
    ev.data.u32 = i;
    epoll_ctl(ep, EPOLL_CTL_ADD, flows[i].fd, &ev);
  }
  for (auto& f : flows) send_on(f);
  printf("{\"event\":\"started\"}\n");
  fflush(stdout);
  std::vector<epoll_event> events(1024);
  Window window{measure_from};
  auto next_check = Clock::now() + std::chrono::milliseconds(200);
  while (true) {
    auto now = Clock::now();
    if (now >= stop || static_cast<long long>(total) >= o.max_messages) break;
    window.Update(now);
    if (now >= next_check) {
      next_check = now + std::chrono::milliseconds(200);
      for (auto& f : flows) {
        if (now - f.sent > std::chrono::milliseconds(200)) {
          errors++;  // lost: send again
          send_on(f);
        }
      }
    }
    int n = epoll_wait(ep, events.data(), events.size(), 50);
    for (int k = 0; k < n; k++) {
      Flow& f = flows[events[k].data.u32];
      for (;;) {
        ssize_t r = recv(f.fd, buf.data(), buf.size(), 0);
        if (r < 0) break;  // EAGAIN (or ECONNREFUSED before the server is up: resent above)
        if (r != static_cast<ssize_t>(request.size())) continue;
        total++;
        if (window.measuring) {
          auto us = std::chrono::duration_cast<std::chrono::microseconds>(Clock::now() - f.sent).count();
          hist[us < kBuckets ? us : kBuckets]++;
          measured++;
        }
        send_on(f);
      }
    }
  }
  PrintDone(window, measured, measured, &hist, errors);
  for (auto& f : flows) close(f.fd);
  close(ep);
  return 0;
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
    else if (k == "--request") o.request = v;
    else if (k == "--depth") o.depth = atoi(v.c_str());
    else { fprintf(stderr, "muxnet-loadgen: unknown option %s\n", k.c_str()); return 2; }
  }
  const bool stream = o.mode == "stream" || o.mode == "stream-echo";
  // A round's echoes must fit the read buffer (64 KiB).
  if (o.depth < 1 || (o.depth > 1 && (o.mode != "pingpong" || static_cast<long long>(o.depth) * o.size > (1 << 16)))) {
    fprintf(stderr, "muxnet-loadgen: --depth must be >= 1, and > 1 only in pingpong mode with depth x size <= 65536\n");
    return 2;
  }
  if (o.port <= 0 || o.connections <= 0 || o.size <= 0 || o.duration <= 0 ||
      (o.mode != "pingpong" && o.mode != "http" && o.mode != "churn" && o.mode != "udp" && o.mode != "file" && !stream)) {
    fprintf(stderr, "muxnet-loadgen: --port, --connections, --size, --duration must be > 0; "
                    "--mode pingpong|http|stream|stream-echo|churn|udp|file\n");
    return 2;
  }
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_port = htons(static_cast<uint16_t>(o.port));
  if (inet_pton(AF_INET, o.host.c_str(), &addr.sin_addr) != 1) {
    fprintf(stderr, "muxnet-loadgen: --host must be an IPv4 address\n");
    return 2;
  }

  // The clock starts once every connection is made: warm-up, then the measured duration.
  Clock::time_point start, measure_from, stop;
  auto start_clock = [&] {
    start = Clock::now();
    measure_from = start + std::chrono::duration_cast<Clock::duration>(std::chrono::duration<double>(o.warmup));
    stop = measure_from + std::chrono::duration_cast<Clock::duration>(std::chrono::duration<double>(o.duration));
  };
  if (o.mode == "churn" || o.mode == "udp") {
    start_clock();
    return o.mode == "churn" ? RunChurn(o, addr, start, measure_from, stop) : RunUdp(o, addr, measure_from, stop);
  }

  std::vector<int> idle;
  for (int i = 0; i < o.idle; i++) idle.push_back(Connect(addr));

  std::string request;
  const bool file = o.mode == "file";
  if (o.mode == "http") {
    request = "GET / HTTP/1.1\r\nHost: " + o.host + "\r\n\r\n";
  } else if (file) {
    request = o.request + "\n";
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
  start_clock();
  if (stream) {
    int status = RunStream(o, conns, ep, measure_from, stop);
    for (auto& c : conns) close(c.fd);
    for (int fd : idle) close(fd);
    return status;
  }
  auto send = [&](Conn& c) {
    c.started = Clock::now();
    c.received = 0;
    for (int i = 0; i < o.depth; i++) {
      ssize_t n = ::send(c.fd, request.data(), request.size(), MSG_NOSIGNAL);
      if (n != static_cast<ssize_t>(request.size())) errors++;
    }
  };
  const size_t round_bytes = request.size() * o.depth;
  for (auto& c : conns) send(c);
  printf("{\"event\":\"started\"}\n");
  fflush(stdout);
  std::vector<epoll_event> events(1024);
  Window window{measure_from};
  while (true) {
    auto now = Clock::now();
    if (now >= stop || static_cast<long long>(total) >= o.max_messages) break;
    window.Update(now);
    int n = epoll_wait(ep, events.data(), events.size(), 100);
    for (int i = 0; i < n; i++) {
      Conn& c = conns[events[i].data.u32];
      // A file answer is counted, not kept: each read lands at the buffer's start, and asks
      // for no more than the answer's rest.
      ssize_t r = file ? read(c.fd, buf.data(), std::min(buf.size(), static_cast<size_t>(o.size) - c.received))
                       : read(c.fd, buf.data() + c.received, buf.size() - c.received);
      if (r <= 0) {
        if (r < 0 && errno == EAGAIN) continue;
        fprintf(stderr, "muxnet-loadgen: connection closed by the server\n");
        return 3;
      }
      c.received += r;
      bool done = o.mode == "http" ? HttpResponseLength(buf.data(), c.received) > 0
                  : file          ? c.received >= static_cast<size_t>(o.size)
                                  : c.received >= round_bytes;
      if (!done) continue;
      total += o.depth;
      if (window.measuring) {
        auto us = std::chrono::duration_cast<std::chrono::microseconds>(Clock::now() - c.started).count();
        hist[us < kBuckets ? us : kBuckets] += o.depth;
        measured += o.depth;
      }
      send(c);
    }
  }
  PrintDone(window, measured, measured, &hist, errors);
  for (auto& c : conns) close(c.fd);
  for (int fd : idle) close(fd);
  return 0;
}
