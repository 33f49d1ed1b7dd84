// muxnet-echo-floor: the physical floor of each backend for the benchmark, a TCP echo server
// in plain C++ against the syscalls (no Node, no muxnet core), one process, one thread.
//
//   muxnet-echo-floor --backend epoll|epoll-et|poll|select|io_uring|io_uring-coop
//                     [--nested] [--send-syscall]   (io_uring only)
//
// Listens on 127.0.0.1 (an ephemeral port), prints {"port","pid"} on one line as the other
// benchmark servers do, and exits when stdin closes. Sockets are non-blocking; a write the
// kernel does not take whole keeps the rest in a per-connection pending buffer, armed for
// writability. Level-triggered backends read once per readiness (a second read would be a
// known EAGAIN); edge-triggered epoll reads, accepts and writes until EAGAIN.
// io_uring is the completion model instead (UringEchoServer below): the kernel accepts,
// receives into buffers it picks from a ring we stock, and sends; we only react to what
// finished. io_uring-coop is the same with COOP_TASKRUN (muxnet's backend with
// MUXNET_IO_URING_TASKRUN=coop) in place of DEFER_TASKRUN (its default). Two options take it apart, to see what each piece of the model
// is worth: --nested waits in epoll_wait on the ring's descriptor, as a ring nested in
// Node's loop is woken (muxnet's inline backend), and submits without waiting; --send-syscall
// echoes with send(2) at once instead of a send through the ring (the send queues behind
// one in flight either way).
#include <arpa/inet.h>
#include <linux/io_uring.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <sys/epoll.h>
#include <sys/mman.h>
#include <sys/select.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <csignal>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <deque>
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

/**
 * The io_uring model, raw syscalls and the kernel's header (no liburing), as muxnet's backend.
 * One multishot accept on the listener, one multishot receive per connection into a provided
 * buffer ring (the kernel takes a buffer only when data arrives: an idle connection holds
 * none), and a send of each received buffer from the buffer itself, one send in flight per
 * connection so the echo keeps its order; a buffer goes back to the ring when its send is
 * done. Each turn of the loop submits everything queued and waits, in one io_uring_enter.
 */
class UringEchoServer {
 public:
  UringEchoServer(int listen_fd, bool defer_taskrun, bool nested, bool send_syscall)
      : listen_fd_(listen_fd), nested_(nested), send_syscall_(send_syscall) {
    io_uring_params p{};
    // SINGLE_ISSUER plus a task-run mode: without one, completions are run by interrupting
    // this thread (1.3-2.1x epoll's CPU, PLATFORMS.md). DEFER_TASKRUN runs them only inside
    // our io_uring_enter; COOP_TASKRUN at the next kernel transition.
    p.flags = IORING_SETUP_SINGLE_ISSUER | IORING_SETUP_CQSIZE |
              (defer_taskrun ? IORING_SETUP_DEFER_TASKRUN : IORING_SETUP_COOP_TASKRUN);
    p.cq_entries = 4 * kSqEntries;  // room for a burst of receives from every connection
    ring_ = static_cast<int>(syscall(__NR_io_uring_setup, kSqEntries, &p));
    if (ring_ < 0) Die("io_uring_setup");
    if (!(p.features & IORING_FEAT_SINGLE_MMAP)) Die("io_uring without IORING_FEAT_SINGLE_MMAP");
    size_t size = std::max(p.sq_off.array + p.sq_entries * sizeof(unsigned),
                           p.cq_off.cqes + p.cq_entries * sizeof(io_uring_cqe));
    char* rings = static_cast<char*>(Map(size, IORING_OFF_SQ_RING));
    sqes_ = static_cast<io_uring_sqe*>(Map(p.sq_entries * sizeof(io_uring_sqe), IORING_OFF_SQES));
    sq_tail_ = reinterpret_cast<unsigned*>(rings + p.sq_off.tail);
    sq_mask_ = *reinterpret_cast<unsigned*>(rings + p.sq_off.ring_mask);
    unsigned* array = reinterpret_cast<unsigned*>(rings + p.sq_off.array);
    for (unsigned i = 0; i < p.sq_entries; i++) array[i] = i;  // slot i is always SQE i
    cq_head_ = reinterpret_cast<unsigned*>(rings + p.cq_off.head);
    cq_tail_ = reinterpret_cast<unsigned*>(rings + p.cq_off.tail);
    cq_mask_ = *reinterpret_cast<unsigned*>(rings + p.cq_off.ring_mask);
    cqes_ = reinterpret_cast<io_uring_cqe*>(rings + p.cq_off.cqes);

    // The provided buffer ring: an array of io_uring_buf from its start (in C++ the header's
    // `bufs` sits 8 bytes late: its flexible-array macro puts an empty struct first), whose
    // first entry's reserved tail field is the ring's tail.
    buf_ring_ = static_cast<io_uring_buf_ring*>(
        mmap(nullptr, kBufCount * sizeof(io_uring_buf), PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0));
    buffers_ = static_cast<char*>(
        mmap(nullptr, size_t{kBufCount} * kBufSize, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0));
    if (buf_ring_ == MAP_FAILED || buffers_ == MAP_FAILED) Die("mmap");
    io_uring_buf_reg reg{};
    reg.ring_addr = reinterpret_cast<uint64_t>(buf_ring_);
    reg.ring_entries = kBufCount;
    reg.bgid = kBufGroup;
    if (syscall(__NR_io_uring_register, ring_, IORING_REGISTER_PBUF_RING, &reg, 1) < 0) Die("IORING_REGISTER_PBUF_RING");
    for (uint16_t bid = 0; bid < kBufCount; bid++) ReturnBuffer(bid);
  }

  /** Serves until stdin closes. */
  void Run() {
    ArmAccept();
    ArmStdin();
    for (;;) {
      // Submits the queued entries and waits for one completion, in one system call.
      unsigned submit = sq_local_tail_ - sq_submitted_;
      __atomic_store_n(sq_tail_, sq_local_tail_, __ATOMIC_RELEASE);
      sq_submitted_ = sq_local_tail_;
      if (nested_) {
        WaitNested(submit);
      } else if (Enter(submit, 1, IORING_ENTER_GETEVENTS) < 0 && errno != EINTR) {
        Die("io_uring_enter");
      }
      unsigned head = *cq_head_;
      unsigned tail = __atomic_load_n(cq_tail_, __ATOMIC_ACQUIRE);
      for (; head != tail; head++) {
        io_uring_cqe cqe = cqes_[head & cq_mask_];
        __atomic_store_n(cq_head_, head + 1, __ATOMIC_RELEASE);  // the slot is ours to reuse now
        int fd = static_cast<int>(cqe.user_data & 0xffffffff);
        switch (static_cast<Op>(cqe.user_data >> 32)) {
          case kAccept: Accepted(cqe); break;
          case kStdin: if (cqe.res <= 0) return; ArmStdin(); break;
          case kRecv: Received(*conns_[fd], cqe); break;
          case kSend: Sent(*conns_[fd], cqe.res); break;
        }
      }
      // Receives that stopped for want of a buffer start again once sends gave some back.
      while (!starved_.empty() && free_buffers_ > 0) {
        ArmRecv(*conns_[starved_.back()]);
        starved_.pop_back();
      }
    }
  }

 private:
  enum Op : uint32_t { kAccept, kStdin, kRecv, kSend };
  static constexpr unsigned kSqEntries = 1024;
  // 64 KiB, muxnet's pool chunk: a receive takes as much as muxnet's can. 1024 of them
  // (64 MiB of address space, touched only where data lands) is five per connection of the
  // largest ping-pong step; the idle scenario's 10,000 connections take none while idle.
  static constexpr unsigned kBufCount = 1024;
  static constexpr unsigned kBufSize = 64 * 1024;
  static constexpr uint16_t kBufGroup = 0;

  /** A connection: its receive state, and the received buffers waiting to be echoed, in order. */
  struct Conn {
    int fd;
    bool receiving = false;  // the multishot receive is in the kernel
    bool eof = false;        // the receive ended for good (end of stream or an error)
    bool sending = false;    // a send is in the kernel: it is pending.front()
    struct Chunk { uint16_t bid; uint32_t offset, len; };
    std::deque<Chunk> pending;
  };

  void* Map(size_t size, off_t offset) {
    void* p = mmap(nullptr, size, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_POPULATE, ring_, offset);
    if (p == MAP_FAILED) Die("mmap io_uring");
    return p;
  }

  /**
   * --nested: submits without waiting, and waits as a ring nested in another loop is woken:
   * epoll_wait on the ring's descriptor while no completion is there, then one
   * io_uring_enter to run the work that posts them (as muxnet's backend does in Wait(0)).
   */
  void WaitNested(unsigned submit) {
    if (submit > 0 && Enter(submit, 0, 0) < 0 && errno != EINTR) Die("io_uring_enter");
    if (*cq_head_ != __atomic_load_n(cq_tail_, __ATOMIC_ACQUIRE)) return;
    if (epoll_fd_ < 0) {
      epoll_fd_ = epoll_create1(EPOLL_CLOEXEC);
      epoll_event ev{};
      ev.events = EPOLLIN;
      if (epoll_fd_ < 0 || epoll_ctl(epoll_fd_, EPOLL_CTL_ADD, ring_, &ev) < 0) Die("epoll on the ring");
    }
    epoll_event ev;
    if (epoll_wait(epoll_fd_, &ev, 1, -1) < 0 && errno != EINTR) Die("epoll_wait");
    if (*cq_head_ == __atomic_load_n(cq_tail_, __ATOMIC_ACQUIRE) && Enter(0, 0, IORING_ENTER_GETEVENTS) < 0 &&
        errno != EINTR) {
      Die("io_uring_enter");
    }
  }

  int Enter(unsigned submit, unsigned wait, unsigned flags) {
    return static_cast<int>(syscall(__NR_io_uring_enter, ring_, submit, wait, flags, nullptr, 0));
  }

  /** The next free submission entry, zeroed; when the queue is full, what is in it goes first. */
  io_uring_sqe* Sqe(Op op, int fd) {
    if (sq_local_tail_ - sq_submitted_ == kSqEntries) {
      __atomic_store_n(sq_tail_, sq_local_tail_, __ATOMIC_RELEASE);
      // Without SQPOLL the kernel consumes the entries within the call: the slots are free.
      if (Enter(kSqEntries, 0, 0) < 0) Die("io_uring_enter");
      sq_submitted_ = sq_local_tail_;
    }
    io_uring_sqe* sqe = &sqes_[sq_local_tail_++ & sq_mask_];
    std::memset(sqe, 0, sizeof *sqe);
    sqe->fd = fd;
    sqe->user_data = (uint64_t{op} << 32) | static_cast<uint32_t>(fd);
    return sqe;
  }

  void ReturnBuffer(uint16_t bid) {
    io_uring_buf& b = reinterpret_cast<io_uring_buf*>(buf_ring_)[buf_tail_ & (kBufCount - 1)];
    b.addr = reinterpret_cast<uint64_t>(buffers_ + size_t{bid} * kBufSize);
    b.len = kBufSize;
    b.bid = bid;
    __atomic_store_n(&buf_ring_->tail, ++buf_tail_, __ATOMIC_RELEASE);
    free_buffers_++;
  }

  void ArmAccept() {
    io_uring_sqe* sqe = Sqe(kAccept, listen_fd_);
    sqe->opcode = IORING_OP_ACCEPT;
    sqe->ioprio = IORING_ACCEPT_MULTISHOT;
    sqe->accept_flags = SOCK_CLOEXEC;
  }

  void ArmStdin() {
    io_uring_sqe* sqe = Sqe(kStdin, STDIN_FILENO);
    sqe->opcode = IORING_OP_READ;
    sqe->addr = reinterpret_cast<uint64_t>(stdin_line_);
    sqe->len = sizeof stdin_line_;
  }

  void ArmRecv(Conn& c) {
    io_uring_sqe* sqe = Sqe(kRecv, c.fd);
    sqe->opcode = IORING_OP_RECV;
    sqe->ioprio = IORING_RECV_MULTISHOT;
    sqe->flags = IOSQE_BUFFER_SELECT;
    sqe->buf_group = kBufGroup;
    c.receiving = true;
  }

  void ArmSend(Conn& c) {
    const Conn::Chunk& chunk = c.pending.front();
    io_uring_sqe* sqe = Sqe(kSend, c.fd);
    sqe->opcode = IORING_OP_SEND;
    sqe->addr = reinterpret_cast<uint64_t>(buffers_ + size_t{chunk.bid} * kBufSize + chunk.offset);
    sqe->len = chunk.len;
    sqe->msg_flags = MSG_NOSIGNAL;  // a peer's reset shows as -EPIPE, not a signal
    c.sending = true;
  }

  /** --send-syscall: send(2) what is pending now; what the socket does not take waits for a ring send. */
  void SendNow(Conn& c) {
    while (!c.pending.empty()) {
      Conn::Chunk& chunk = c.pending.front();
      ssize_t n = send(c.fd, buffers_ + size_t{chunk.bid} * kBufSize + chunk.offset, chunk.len, MSG_NOSIGNAL);
      if (n <= 0) return;  // full, or an error the ring send will report
      chunk.offset += static_cast<uint32_t>(n);
      chunk.len -= static_cast<uint32_t>(n);
      if (chunk.len > 0) return;
      ReturnBuffer(chunk.bid);
      c.pending.pop_front();
    }
  }

  void Accepted(const io_uring_cqe& cqe) {
    if (!(cqe.flags & IORING_CQE_F_MORE)) ArmAccept();  // the multishot accept ended: again
    if (cqe.res < 0) {
      std::fprintf(stderr, "muxnet-echo-floor: accept: %s\n", std::strerror(-cqe.res));
      return;
    }
    int fd = cqe.res;
    int one = 1;
    setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);  // as every bench server does
    if (static_cast<size_t>(fd) >= conns_.size()) conns_.resize(fd + 1);
    conns_[fd].reset(new Conn{fd, false, false, false, {}});
    ArmRecv(*conns_[fd]);
  }

  void Received(Conn& c, const io_uring_cqe& cqe) {
    if (!(cqe.flags & IORING_CQE_F_MORE)) c.receiving = false;
    if (cqe.res > 0) {
      c.pending.push_back({static_cast<uint16_t>(cqe.flags >> IORING_CQE_BUFFER_SHIFT), 0, static_cast<uint32_t>(cqe.res)});
      free_buffers_--;
      if (send_syscall_ && !c.sending) SendNow(c);
      if (!c.sending && !c.pending.empty()) ArmSend(c);
      // The kernel may end a multishot receive that still works (its completion queue was
      // full, say): arm it again.
      if (!c.receiving && !c.eof) ArmRecv(c);
    } else if (cqe.res == -ENOBUFS) {
      starved_.push_back(c.fd);  // the ring is empty: wait for a send to give a buffer back
    } else {
      c.eof = true;  // end of stream, or an error
      if (!c.receiving) MaybeClose(c);
    }
  }

  void Sent(Conn& c, int res) {
    c.sending = false;
    Conn::Chunk& chunk = c.pending.front();
    if (res < 0) {
      // Reset by the peer: drop what is left, and end the receive too, so the socket closes.
      for (const Conn::Chunk& dropped : c.pending) ReturnBuffer(dropped.bid);
      c.pending.clear();
      shutdown(c.fd, SHUT_RDWR);
      return MaybeClose(c);
    }
    chunk.offset += res;
    chunk.len -= res;
    if (chunk.len == 0) {
      ReturnBuffer(chunk.bid);
      c.pending.pop_front();
    }
    if (!c.pending.empty()) ArmSend(c);
    else MaybeClose(c);
  }

  /** Closes c once nothing of it is in the kernel: no receive, no send, no starved re-arm. */
  void MaybeClose(Conn& c) {
    if (!c.eof || c.receiving || c.sending) return;
    int fd = c.fd;
    close(fd);
    conns_[fd].reset();
  }

  int ring_;
  int listen_fd_;
  io_uring_sqe* sqes_;
  unsigned* sq_tail_;
  unsigned sq_mask_;
  unsigned sq_local_tail_ = 0;  // entries filled in so far
  unsigned sq_submitted_ = 0;   // of which the kernel has been told about
  unsigned* cq_head_;
  unsigned* cq_tail_;
  unsigned cq_mask_;
  io_uring_cqe* cqes_;
  io_uring_buf_ring* buf_ring_;
  char* buffers_;
  uint16_t buf_tail_ = 0;
  bool nested_;
  bool send_syscall_;
  int epoll_fd_ = -1;
  unsigned free_buffers_ = 0;
  std::vector<int> starved_;  // connections whose receive ended with -ENOBUFS
  std::vector<std::unique_ptr<Conn>> conns_;  // by descriptor
  char stdin_line_[256];
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
  std::string name = argc >= 3 && std::string(argv[1]) == "--backend" ? argv[2] : "";
  bool nested = false, send_syscall = false, bad = false;
  for (int i = 3; i < argc; i++) {
    std::string opt = argv[i];
    if (opt == "--nested") nested = true;
    else if (opt == "--send-syscall") send_syscall = true;
    else bad = true;
  }
  const bool uring = name == "io_uring" || name == "io_uring-coop";
  if (bad || ((nested || send_syscall) && !uring)) name = "";  // the usage, below
  std::signal(SIGPIPE, SIG_IGN);  // a peer's reset shows as EPIPE from write, not a signal
  if (uring && !name.empty()) {
    UringEchoServer server(Listen(), name == "io_uring", nested, send_syscall);
    server.Run();
    return 0;
  }
  std::unique_ptr<Backend> backend;
  if (name == "epoll" || name == "epoll-et") backend.reset(new EpollBackend(name == "epoll-et"));
  else if (name == "poll") backend.reset(new PollBackend());
  else if (name == "select") backend.reset(new SelectBackend());
  if (!backend) {
    std::fprintf(stderr, "usage: muxnet-echo-floor --backend epoll|epoll-et|poll|select|io_uring|io_uring-coop "
                         "[--nested] [--send-syscall]\n");
    return 2;
  }
  EchoServer server(*backend, Listen());
  server.Run();
  return 0;
}
