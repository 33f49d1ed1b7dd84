// muxnet-echo-floor: the physical floor of each backend for the benchmark, a TCP echo server
// in plain C++ against the syscalls (no Node, no muxnet core), one process, one thread.
//
//   muxnet-echo-floor --backend epoll|epoll-et|poll|select
//
// Listens on 127.0.0.1 (an ephemeral port), prints {"port","pid"} on one line as the other
// benchmark servers do, and exits when stdin closes. Sockets are non-blocking; a write the
// kernel does not take whole keeps the rest in a per-connection pending buffer, armed for
// writability. Level-triggered backends read once per readiness (a second read would be a
// known EAGAIN); edge-triggered epoll reads, accepts and writes until EAGAIN.
#include <arpa/inet.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <sys/epoll.h>
#include <sys/select.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cerrno>
#include <csignal>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <memory>
#include <string>
#include <vector>

namespace {

/** One fired event, the same shape from every backend. */
struct Event {
  int fd;
  bool readable;
  bool writable;
};

/** What each model implements: interest per descriptor, and a blocking wait for events. */
class Backend {
 public:
  virtual ~Backend() = default;
  /** Watches fd for reads (and, on edge-triggered epoll, writes too). */
  virtual void Add(int fd) = 0;
  /** Arms or disarms write interest; a no-op where writes are always watched. */
  virtual void WatchWrite(int fd, bool on) = 0;
  virtual void Remove(int fd) = 0;
  /** Blocks until at least one event; fills out (cleared first). */
  virtual void Wait(std::vector<Event>& out) = 0;
  /** Edge-triggered: the caller must drain every readiness until EAGAIN. */
  virtual bool Edge() const { return false; }
};

[[noreturn]] void Die(const char* what) {
  std::fprintf(stderr, "muxnet-echo-floor: %s: %s\n", what, std::strerror(errno));
  std::exit(1);
}

class EpollBackend : public Backend {
 public:
  explicit EpollBackend(bool edge) : edge_(edge), epfd_(epoll_create1(EPOLL_CLOEXEC)) {
    if (epfd_ < 0) Die("epoll_create1");
  }
  void Add(int fd) override { Ctl(EPOLL_CTL_ADD, fd, edge_ ? EPOLLIN | EPOLLOUT | EPOLLET : EPOLLIN); }
  void WatchWrite(int fd, bool on) override {
    if (!edge_) Ctl(EPOLL_CTL_MOD, fd, on ? EPOLLIN | EPOLLOUT : EPOLLIN);
  }
  void Remove(int fd) override { Ctl(EPOLL_CTL_DEL, fd, 0); }
  void Wait(std::vector<Event>& out) override {
    out.clear();
    int n = epoll_wait(epfd_, events_, kMaxEvents, -1);
    if (n < 0 && errno != EINTR) Die("epoll_wait");
    for (int i = 0; i < n; i++) {
      uint32_t e = events_[i].events;
      // An error or hang-up is reported as readable: the read then sees it and closes.
      out.push_back({events_[i].data.fd, (e & (EPOLLIN | EPOLLERR | EPOLLHUP)) != 0, (e & EPOLLOUT) != 0});
    }
  }
  bool Edge() const override { return edge_; }

 private:
  void Ctl(int op, int fd, uint32_t events) {
    epoll_event ev{};
    ev.events = events;
    ev.data.fd = fd;
    if (epoll_ctl(epfd_, op, fd, &ev) < 0) Die("epoll_ctl");
  }
  // One wait reports every active connection of the benchmark (at most 200).
  static constexpr int kMaxEvents = 256;
  bool edge_;
  int epfd_;
  epoll_event events_[kMaxEvents];
};

class PollBackend : public Backend {
 public:
  void Add(int fd) override {
    if (static_cast<size_t>(fd) >= slot_.size()) slot_.resize(fd + 1, -1);
    slot_[fd] = static_cast<int>(fds_.size());
    fds_.push_back({fd, POLLIN, 0});
  }
  void WatchWrite(int fd, bool on) override { fds_[slot_[fd]].events = on ? POLLIN | POLLOUT : POLLIN; }
  void Remove(int fd) override {
    // Swap the last entry into the hole: the array stays dense, as poll(2) wants it.
    int i = slot_[fd];
    fds_[i] = fds_.back();
    slot_[fds_[i].fd] = i;
    fds_.pop_back();
    slot_[fd] = -1;
  }
  void Wait(std::vector<Event>& out) override {
    out.clear();
    int n = poll(fds_.data(), fds_.size(), -1);
    if (n < 0 && errno != EINTR) Die("poll");
    for (size_t i = 0; i < fds_.size() && n > 0; i++) {
      short r = fds_[i].revents;
      if (r == 0) continue;
      n--;
      out.push_back({fds_[i].fd, (r & (POLLIN | POLLERR | POLLHUP)) != 0, (r & POLLOUT) != 0});
    }
  }

 private:
  std::vector<pollfd> fds_;
  std::vector<int> slot_;  // fd -> index in fds_, -1 when not watched
};

/**
 * select(2) over descriptor sets that grow past FD_SETSIZE, as libevent's does: Linux takes
 * any nfds, and the bits are set by hand because glibc's FD_SET aborts past 1024.
 */
class SelectBackend : public Backend {
 public:
  void Add(int fd) override {
    if (fd > max_fd_) max_fd_ = fd;
    Set(read_, fd, true);
  }
  void WatchWrite(int fd, bool on) override { Set(write_, fd, on); }
  void Remove(int fd) override {
    Set(read_, fd, false);
    Set(write_, fd, false);
  }
  void Wait(std::vector<Event>& out) override {
    out.clear();
    size_t words = max_fd_ / kBits + 1;
    read_.resize(words, 0);
    write_.resize(words, 0);
    ready_read_ = read_;
    ready_write_ = write_;
    int n = select(max_fd_ + 1, reinterpret_cast<fd_set*>(ready_read_.data()),
                   reinterpret_cast<fd_set*>(ready_write_.data()), nullptr, nullptr);
    if (n < 0 && errno != EINTR) Die("select");
    for (int fd = 0; fd <= max_fd_ && n > 0; fd++) {
      bool r = Has(ready_read_, fd), w = Has(ready_write_, fd);
      if (!r && !w) continue;
      n -= r + w;
      out.push_back({fd, r, w});
    }
  }

 private:
  static constexpr int kBits = 8 * sizeof(unsigned long);
  static void Set(std::vector<unsigned long>& set, int fd, bool on) {
    if (static_cast<size_t>(fd / kBits) >= set.size()) set.resize(fd / kBits + 1, 0);
    unsigned long bit = 1UL << (fd % kBits);
    set[fd / kBits] = on ? set[fd / kBits] | bit : set[fd / kBits] & ~bit;
  }
  static bool Has(const std::vector<unsigned long>& set, int fd) {
    return (set[fd / kBits] >> (fd % kBits)) & 1;
  }
  int max_fd_ = 0;
  std::vector<unsigned long> read_, write_, ready_read_, ready_write_;
};

/** A connection: its descriptor and the bytes the kernel has not taken yet. */
struct Conn {
  int fd;
  std::string pending;
};

class EchoServer {
 public:
  EchoServer(Backend& backend, int listen_fd) : backend_(backend), listen_fd_(listen_fd) {}

  /** Serves until stdin closes. */
  void Run() {
    backend_.Add(listen_fd_);
    backend_.Add(STDIN_FILENO);
    std::vector<Event> events;
    for (;;) {
      backend_.Wait(events);
      for (const Event& e : events) {
        if (e.fd == STDIN_FILENO) {
          if (ReadStdinClosed()) return;
        } else if (e.fd == listen_fd_) {
          Accept();
        } else if (e.fd < static_cast<int>(conns_.size()) && conns_[e.fd]) {
          // Writes first: pending bytes go out before the echo of anything read now.
          if (e.writable) Flush(*conns_[e.fd]);
          if (e.readable && conns_[e.fd]) Read(*conns_[e.fd]);
        }
      }
    }
  }

 private:
  bool ReadStdinClosed() {
    char line[256];
    ssize_t n = read(STDIN_FILENO, line, sizeof line);
    return n == 0 || (n < 0 && errno != EINTR && errno != EAGAIN);
  }

  void Accept() {
    for (;;) {
      int fd = accept4(listen_fd_, nullptr, nullptr, SOCK_NONBLOCK | SOCK_CLOEXEC);
      if (fd < 0) {
        if (errno == EINTR || errno == ECONNABORTED) continue;
        if (errno != EAGAIN) std::fprintf(stderr, "muxnet-echo-floor: accept: %s\n", std::strerror(errno));
        return;  // EAGAIN ends the burst; EMFILE and the like wait for the next readiness
      }
      int one = 1;
      setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);  // as every bench server does
      if (static_cast<size_t>(fd) >= conns_.size()) conns_.resize(fd + 1);
      conns_[fd].reset(new Conn{fd, {}});
      backend_.Add(fd);
    }
  }

  void Read(Conn& c) {
    do {
      ssize_t n = read(c.fd, buf_, sizeof buf_);
      if (n == 0) return Close(c);
      if (n < 0) {
        if (errno == EINTR) continue;
        if (errno != EAGAIN) Close(c);
        return;
      }
      if (!Write(c, buf_, n)) return;
    } while (backend_.Edge());  // edge-triggered: until EAGAIN, or the edge is lost
  }

  /** Echoes data, or queues it behind bytes already pending; false once c is closed. */
  bool Write(Conn& c, const char* data, size_t len) {
    if (!c.pending.empty()) {
      c.pending.append(data, len);
      return true;
    }
    size_t done = 0;
    while (done < len) {
      ssize_t n = write(c.fd, data + done, len - done);
      if (n >= 0) {
        done += n;
      } else if (errno == EAGAIN) {
        c.pending.assign(data + done, len - done);
        backend_.WatchWrite(c.fd, true);
        return true;
      } else if (errno != EINTR) {
        Close(c);
        return false;
      }
    }
    return true;
  }

  void Flush(Conn& c) {
    size_t done = 0;
    while (done < c.pending.size()) {
      ssize_t n = write(c.fd, c.pending.data() + done, c.pending.size() - done);
      if (n >= 0) {
        done += n;
      } else if (errno == EAGAIN) {
        break;
      } else if (errno != EINTR) {
        return Close(c);
      }
    }
    c.pending.erase(0, done);
    if (c.pending.empty()) backend_.WatchWrite(c.fd, false);
  }

  void Close(Conn& c) {
    int fd = c.fd;
    backend_.Remove(fd);
    close(fd);
    conns_[fd].reset();
  }

  Backend& backend_;
  int listen_fd_;
  std::vector<std::unique_ptr<Conn>> conns_;  // by descriptor
  // One receive buffer for every connection: the data is echoed (or copied to pending)
  // before the next read, as uSockets' shared receive buffer.
  char buf_[64 * 1024];
};

int Listen() {
  int fd = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
  if (fd < 0) Die("socket");
  int one = 1;
  setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);  // loopback only
  // The backlog of the other bench servers: the idle scenario connects 10,000 at once.
  if (bind(fd, reinterpret_cast<sockaddr*>(&addr), sizeof addr) < 0 || listen(fd, 4096) < 0) Die("listen");
  socklen_t len = sizeof addr;
  if (getsockname(fd, reinterpret_cast<sockaddr*>(&addr), &len) < 0) Die("getsockname");
  std::printf("{\"port\":%d,\"pid\":%d}\n", ntohs(addr.sin_port), static_cast<int>(getpid()));
  std::fflush(stdout);
  return fd;
}

}  // namespace

int main(int argc, char** argv) {
  std::string name = argc == 3 && std::string(argv[1]) == "--backend" ? argv[2] : "";
  std::unique_ptr<Backend> backend;
  if (name == "epoll" || name == "epoll-et") backend.reset(new EpollBackend(name == "epoll-et"));
  else if (name == "poll") backend.reset(new PollBackend());
  else if (name == "select") backend.reset(new SelectBackend());
  if (!backend) {
    std::fprintf(stderr, "usage: muxnet-echo-floor --backend epoll|epoll-et|poll|select\n");
    return 2;
  }
  std::signal(SIGPIPE, SIG_IGN);  // a peer's reset shows as EPIPE from write, not a signal
  EchoServer server(*backend, Listen());
  server.Run();
  return 0;
}
