// io_uring backend (Linux 6.0+), the first completion backend. Four kinds of operation go
// through one ring:
// - readiness, for what the loop still does itself (Unix connects, file writes, datagrams): a
//   single-shot POLL_ADD per watched descriptor, armed again at the next submission while
//   interest remains, so it behaves level-triggered like poll(2);
// - stream receives: a RECV (multishot where the kernel can limit it, and for a stream
//   read) into a provided buffer ring that the loop stocks with its pool chunks. The kernel
//   picks a chunk only when data arrives, so an idle connection holds none, and a read
//   event carries the chunk the kernel filled;
// - stream sends: a SEND from the writer's memory, one in flight per socket;
// - accepts: a few ACCEPTs in flight per accepting listener, each connection a completion;
// - TCP connects: a CONNECT per dial, its result the connect's (no getsockopt).
// The ring is made with SINGLE_ISSUER | DEFER_TASKRUN (or COOP_TASKRUN, see Init) on the
// loop's thread and an eventfd registered with it (COOP_TASKRUN: its descriptor) is
// pollable, so the loop nests it in Node's loop like the epoll fd (inline only). Raw
// syscalls and the kernel's header, no liburing: Debian's 2.3 cannot set a buffer ring up,
// and the prebuilt binary must not need the library on the user's machine.
#ifdef MUXNET_HAVE_IO_URING
#include <linux/io_uring.h>
#include <poll.h>
#include <sys/eventfd.h>
#include <sys/socket.h>
#include <sys/mman.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <memory>
#include <vector>

#include "poller.h"

namespace muxnet {
namespace {

// What a completion's user_data says, in bits 28-31 (a token's id stays below 2^24):
//   recv, accept, send and connect: the token itself with the op; poll: descriptor in bits 0-27, sequence
//   in 32-39; wake and ignored (removals, cancellations): the op alone.
enum Op : uint64_t { kOpPoll = 1, kOpRecv = 2, kOpWake = 3, kOpIgnore = 4, kOpAccept = 5, kOpSend = 6, kOpConnect = 7 };
constexpr uint64_t kOpShift = 28;
constexpr uint64_t kOpMask = uint64_t{0xf} << kOpShift;
constexpr uint64_t kIdBits = 0x00ffffff;
constexpr unsigned kSqEntries = 1024;
constexpr unsigned kCqEntries = 8192;
constexpr unsigned kBufEntries = 1024;  // provided buffer ring: a power of 2, >= pool chunks
constexpr uint16_t kBufGroup = 0;

uint64_t TokenData(Token t, Op op) { return (t & ~uint64_t{0xffffffff}) | (t & kIdBits) | (uint64_t{op} << kOpShift); }
Token DataToken(uint64_t ud) { return (ud & ~uint64_t{0xffffffff}) | (ud & kIdBits); }
uint64_t PollData(int fd, uint8_t seq) {
  return (uint64_t{seq} << 32) | (uint64_t{kOpPoll} << kOpShift) | static_cast<uint32_t>(fd);
}

int Setup(unsigned entries, io_uring_params* p) {
  return static_cast<int>(syscall(__NR_io_uring_setup, entries, p));
}
int Enter(int fd, unsigned submit, unsigned min_complete, unsigned flags, void* arg, size_t argsz) {
  return static_cast<int>(syscall(__NR_io_uring_enter, fd, submit, min_complete, flags, arg, argsz));
}
int Register(int fd, unsigned op, void* arg, unsigned n) {
  return static_cast<int>(syscall(__NR_io_uring_register, fd, op, arg, n));
}

template <typename T>
T LoadAcquire(const T* p) { return __atomic_load_n(p, __ATOMIC_ACQUIRE); }
template <typename T>
void StoreRelease(T* p, T v) { __atomic_store_n(p, v, __ATOMIC_RELEASE); }

class IoUringPoller final : public Poller {
 public:
  ~IoUringPoller() override {
    if (buf_ring_ != nullptr) munmap(buf_ring_, kBufEntries * sizeof(io_uring_buf));
    if (sqes_ != nullptr) munmap(sqes_, sqes_size_);
    if (cq_ptr_ != nullptr && cq_ptr_ != sq_ptr_) munmap(cq_ptr_, cq_size_);
    if (sq_ptr_ != nullptr) munmap(sq_ptr_, sq_size_);
    if (ring_ >= 0) close(ring_);
    if (wake_fd_ >= 0) close(wake_fd_);
    if (cq_fd_ >= 0) close(cq_fd_);
  }

  int Init() {
    // DEFER_TASKRUN (Linux 6.1+, the default): the kernel's completion work (a receive
    // taking what arrived, a send's result) waits for the loop's next io_uring_enter, so
    // what arrives while a batch runs is received together at the next wake-up. Under
    // COOP_TASKRUN (MUXNET_IO_URING_TASKRUN=coop, and on 6.0) it runs at whatever syscall
    // the thread makes next, so a batch's own syscalls take pipelined requests one or two
    // at a time: 1.9 receives per 4 requests where epoll reads 1.15, 1.12x epoll's CPU
    // where DEFER_TASKRUN is 1.00-1.02x (README, "io_uring against epoll"). Such a ring's
    // descriptor does not wake a poll for it, so the loop watches an eventfd registered with
    // the ring instead.
    const char* taskrun = getenv("MUXNET_IO_URING_TASKRUN");
    defer_taskrun_ = taskrun == nullptr || strcmp(taskrun, "coop") != 0;
    io_uring_params p;
    auto setup = [&]() {
      p = io_uring_params{};
      p.flags = IORING_SETUP_SINGLE_ISSUER | IORING_SETUP_CQSIZE | IORING_SETUP_SUBMIT_ALL |
                (defer_taskrun_ ? IORING_SETUP_DEFER_TASKRUN : IORING_SETUP_COOP_TASKRUN);
      p.cq_entries = kCqEntries;
      return Setup(kSqEntries, &p);
    };
    ring_ = setup();
    if (ring_ < 0 && errno == EINVAL && defer_taskrun_) {
      defer_taskrun_ = false;  // Linux 6.0 has COOP_TASKRUN but not DEFER_TASKRUN
      ring_ = setup();
    }
    if (ring_ < 0) return -errno;
    if (!(p.features & IORING_FEAT_SINGLE_MMAP) || !(p.features & IORING_FEAT_NODROP)) return -ENOSYS;
    sq_size_ = p.sq_off.array + p.sq_entries * sizeof(unsigned);
    size_t cq_size = p.cq_off.cqes + p.cq_entries * sizeof(io_uring_cqe);
    if (cq_size > sq_size_) sq_size_ = cq_size;
    sq_ptr_ = Map(sq_size_, IORING_OFF_SQ_RING);
    if (sq_ptr_ == nullptr) return -errno;
    cq_ptr_ = sq_ptr_;
    cq_size_ = sq_size_;
    sqes_size_ = p.sq_entries * sizeof(io_uring_sqe);
    sqes_ = static_cast<io_uring_sqe*>(Map(sqes_size_, IORING_OFF_SQES));
    if (sqes_ == nullptr) return -errno;
    char* sq = static_cast<char*>(sq_ptr_);
    sq_head_ = reinterpret_cast<unsigned*>(sq + p.sq_off.head);
    sq_tail_ = reinterpret_cast<unsigned*>(sq + p.sq_off.tail);
    sq_mask_ = *reinterpret_cast<unsigned*>(sq + p.sq_off.ring_mask);
    sq_entries_ = p.sq_entries;
    unsigned* array = reinterpret_cast<unsigned*>(sq + p.sq_off.array);
    for (unsigned i = 0; i < sq_entries_; i++) array[i] = i;  // slot i is SQE i, always
    local_tail_ = submitted_ = *sq_tail_;
    char* cq = static_cast<char*>(cq_ptr_);
    cq_head_ = reinterpret_cast<unsigned*>(cq + p.cq_off.head);
    cq_tail_ = reinterpret_cast<unsigned*>(cq + p.cq_off.tail);
    cq_mask_ = *reinterpret_cast<unsigned*>(cq + p.cq_off.ring_mask);
    cqes_ = reinterpret_cast<io_uring_cqe*>(cq + p.cq_off.cqes);

    // The buffer ring: page-aligned memory the kernel reads buffer addresses from.
    void* br = mmap(nullptr, kBufEntries * sizeof(io_uring_buf), PROT_READ | PROT_WRITE,
                    MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    if (br == MAP_FAILED) return -errno;
    buf_ring_ = static_cast<io_uring_buf_ring*>(br);
    io_uring_buf_reg reg{};
    reg.ring_addr = reinterpret_cast<uint64_t>(buf_ring_);
    reg.ring_entries = kBufEntries;
    reg.bgid = kBufGroup;
    if (Register(ring_, IORING_REGISTER_PBUF_RING, &reg, 1) != 0) return -errno;

    // MUXNET_IO_URING_RECEIVE_LIMIT=0 uses the ring as a kernel before 6.16 does (a receive
    // per single read): how scripts/test-native.sh tests that path on a newer kernel.
    const char* limit = getenv("MUXNET_IO_URING_RECEIVE_LIMIT");
    receive_limit_ = (limit == nullptr || strcmp(limit, "0") != 0) && ProbeReceiveLimit();
    wake_fd_ = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
    if (wake_fd_ < 0) return -errno;
    if (defer_taskrun_) {
      cq_fd_ = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
      if (cq_fd_ < 0) return -errno;
      if (Register(ring_, IORING_REGISTER_EVENTFD, &cq_fd_, 1) != 0) return -errno;
    }
    ArmWake();
    return Submit(0, 0);
  }

  const char* Name() const override { return "io_uring"; }
  PollerCaps Caps() const override {
    PollerCaps c;
    c.pollable = true;
    c.completion = true;
    c.inline_only = true;
    c.receive_limit = receive_limit_;
    c.send = true;
    c.connect = true;
    return c;
  }
  int PollableFd() const override { return defer_taskrun_ ? cq_fd_ : ring_; }
  void Wake() override {
    uint64_t one = 1;
    ssize_t n = write(wake_fd_, &one, sizeof one);
    (void)n;  // EAGAIN: the counter is full, a wake-up is pending anyway
  }

  int Add(int fd, Token token, uint32_t interest) override {
    if (fd < 0 || fd >= (1 << kOpShift)) return -EBADF;
    if (static_cast<size_t>(fd) >= fds_.size()) fds_.resize(fd + 1);
    FdState& st = fds_[fd];
    if (st.interest != 0) return -EEXIST;
    st.token = token;
    st.interest = interest & (kReadable | kWritable);
    st.seq++;
    ArmPoll(fd);
    return MaybeSubmit();
  }

  int Modify(int fd, Token token, uint32_t interest) override {
    FdState* st = Watched(fd);
    if (st == nullptr) return -ENOENT;
    DisarmPoll(fd);
    st->token = token;
    st->interest = interest & (kReadable | kWritable);
    ArmPoll(fd);
    return MaybeSubmit();
  }

  int Remove(int fd) override {
    FdState* st = Watched(fd);
    if (st == nullptr) return -ENOENT;
    DisarmPoll(fd);
    st->interest = 0;
    // Submitted now, also while deferring: the poll holds a reference to the socket, which
    // would stay open after close(2) until the removal reaches the kernel.
    return SubmitRelease();
  }

  int Wait(int timeout_ms, PollEvent* events, int max) override {
    ArmFired();
    if (defer_taskrun_) {
      // Reset first: work the kernel adds from now on signals the eventfd again.
      // One read takes the whole count (the eventfd is not a semaphore).
      uint64_t v;
      ssize_t got = read(cq_fd_, &v, sizeof v);
      (void)got;  // EAGAIN: nothing was signalled since the last Wait
      // The completions that wait for this thread are made (posted) only in io_uring_enter.
      if (int err = Submit(0, IORING_ENTER_GETEVENTS); err != 0 && err != -EINTR) return err;
    }
    int n = Reap(events, max);
    if (n > 0) return n;
    unsigned flags = IORING_ENTER_GETEVENTS;
    __kernel_timespec ts{};
    io_uring_getevents_arg arg{};
    void* argp = nullptr;
    size_t argsz = 0;
    if (timeout_ms > 0) {
      ts.tv_sec = timeout_ms / 1000;
      ts.tv_nsec = static_cast<long long>(timeout_ms % 1000) * 1000000;
      arg.ts = reinterpret_cast<uint64_t>(&ts);
      flags |= IORING_ENTER_EXT_ARG;
      argp = &arg;
      argsz = sizeof arg;
    }
    int err = Submit(timeout_ms != 0 ? 1 : 0, flags, argp, argsz);
    if (err != 0 && err != -ETIME && err != -EINTR) return err;
    return Reap(events, max);
  }

  void Defer(bool on) override {
    deferring_ = on;
    if (!on) {
      ArmFired();
      Submit(0, 0);
    }
  }

  int ProvideChunk(int chunk, char* data, size_t len) override {
    if (provided_ >= static_cast<int>(kBufEntries) || chunk < 0 || chunk > 0xffff) return -ENOSPC;
    // Not buf_ring_->bufs: in C++ the header's flexible-array macro puts an empty struct
    // before it, moving it 8 bytes on. The ring is an array of io_uring_buf whose first
    // entry's last field is the tail.
    io_uring_buf& b = reinterpret_cast<io_uring_buf*>(buf_ring_)[buf_tail_ & (kBufEntries - 1)];
    b.addr = reinterpret_cast<uint64_t>(data);
    b.len = static_cast<uint32_t>(len);
    b.bid = static_cast<uint16_t>(chunk);
    buf_tail_++;
    StoreRelease(&buf_ring_->tail, buf_tail_);
    provided_++;
    return 0;
  }
  int ProvidedChunks() const override { return provided_; }
  int ChunkCapacity() const override { return static_cast<int>(kBufEntries); }

  int Receive(int fd, Token token, bool multishot, uint32_t limit) override {
    if ((token & 0xffffffffu) > kIdBits) return -EINVAL;
    if (limit != 0 && (!multishot || !receive_limit_)) return -EINVAL;
    io_uring_sqe* sqe = Sqe();
    if (sqe == nullptr) return -EBUSY;
    PrepareReceive(sqe, fd, multishot, limit);
    // The loop arms a receive once a read found the socket empty: poll first, no recv try.
    sqe->ioprio |= IORING_RECVSEND_POLL_FIRST;
    sqe->user_data = TokenData(token, kOpRecv);
    return MaybeSubmit();
  }

  int CancelReceive(Token token) override { return Cancel(TokenData(token, kOpRecv)); }

  int Accept(int fd, Token token) override {
    if ((token & 0xffffffffu) > kIdBits) return -EINVAL;
    io_uring_sqe* sqe = Sqe();
    if (sqe == nullptr) return -EBUSY;
    sqe->opcode = IORING_OP_ACCEPT;
    sqe->fd = fd;
    sqe->accept_flags = SOCK_NONBLOCK | SOCK_CLOEXEC;
    sqe->user_data = TokenData(token, kOpAccept);
    return MaybeSubmit();
  }

  int CancelAccept(Token token) override { return Cancel(TokenData(token, kOpAccept), IORING_ASYNC_CANCEL_ALL); }

  int Send(int fd, Token token, const iovec* iov, int count) override {
    if ((token & 0xffffffffu) > kIdBits || count < 1) return -EINVAL;
    // Several buffers: one sendmsg, whose header and iovecs the kernel reads when it takes
    // the submission. They wait here till then, in one of kGathers slots (a full set
    // submits what is queued, which frees them).
    Gather* g = nullptr;
    if (count > 1) {
      if (gathers_used_ == kGathers && (Submit(0, 0) != 0 || local_tail_ != submitted_)) return -EBUSY;
      if (local_tail_ == submitted_) gathers_used_ = 0;  // what used them was submitted
      // Allocated whole at first use: slots that queued SQEs point into never move.
      if (gathers_ == nullptr) gathers_.reset(new Gather[kGathers]);
      g = &gathers_[gathers_used_];
    }
    io_uring_sqe* sqe = Sqe();
    if (sqe == nullptr) return -EBUSY;
    sqe->fd = fd;
    sqe->msg_flags = MSG_NOSIGNAL;
    sqe->user_data = TokenData(token, kOpSend);
    if (g == nullptr) {
      size_t len = iov[0].iov_len;
      sqe->opcode = IORING_OP_SEND;
      sqe->addr = reinterpret_cast<uint64_t>(iov[0].iov_base);
      sqe->len = static_cast<uint32_t>(len < (1u << 30) ? len : (1u << 30));  // the rest: another send
    } else {
      gathers_used_++;
      int n = std::min(count, kGatherIov);
      std::copy(iov, iov + n, g->iov);
      g->msg = msghdr{};
      g->msg.msg_iov = g->iov;
      g->msg.msg_iovlen = static_cast<size_t>(n);
      sqe->opcode = IORING_OP_SENDMSG;
      sqe->addr = reinterpret_cast<uint64_t>(&g->msg);
    }
    return MaybeSubmit();
  }

  int CancelSend(Token token) override { return Cancel(TokenData(token, kOpSend)); }

  int Connect(int fd, Token token, const void* addr, uint32_t len) override {
    if ((token & 0xffffffffu) > kIdBits) return -EINVAL;
    io_uring_sqe* sqe = Sqe();
    if (sqe == nullptr) return -EBUSY;
    sqe->opcode = IORING_OP_CONNECT;
    sqe->fd = fd;
    sqe->addr = reinterpret_cast<uint64_t>(addr);
    sqe->off = len;  // the address length
    sqe->user_data = TokenData(token, kOpConnect);
    return MaybeSubmit();
  }

  int CancelConnect(Token token) override { return Cancel(TokenData(token, kOpConnect)); }

 private:
  struct FdState {
    Token token = 0;
    uint32_t interest = 0;  // kReadable | kWritable; 0: not watched
    uint8_t seq = 0;        // tells this registration's polls from earlier ones'
    bool armed = false;     // a POLL_ADD is in the kernel
    bool to_arm = false;    // in arm_: fired, to be armed again at the next submission
  };

  static void PrepareReceive(io_uring_sqe* sqe, int fd, bool multishot, uint32_t limit) {
    sqe->opcode = IORING_OP_RECV;
    sqe->fd = fd;
    sqe->ioprio = multishot ? IORING_RECV_MULTISHOT : 0;
    sqe->flags = IOSQE_BUFFER_SELECT;
    sqe->buf_group = kBufGroup;
    // The multishot byte limit is the SQE's optlen, which older kernel headers (Debian's
    // 6.1) call file_index: the same 32 bits.
    sqe->file_index = limit;
  }

  // Whether this kernel ends a multishot receive at a byte limit (Linux 6.16 and later): a
  // kernel without it refuses the limit with -EINVAL, one with it runs the receive, which
  // here ends at once with -ENOBUFS (a byte is waiting and the buffer ring is still empty).
  // Runs in Init, before anything else is in the ring.
  bool ProbeReceiveLimit() {
    int sv[2];
    if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0, sv) != 0) return false;
    bool ok = false;
    io_uring_sqe* sqe = write(sv[1], "x", 1) == 1 ? Sqe() : nullptr;
    if (sqe != nullptr) {
      PrepareReceive(sqe, sv[0], true, 1);
      sqe->user_data = uint64_t{kOpIgnore} << kOpShift;
      if (Submit(1, IORING_ENTER_GETEVENTS) == 0) {
        unsigned head = *cq_head_;
        if (head != LoadAcquire(cq_tail_)) {
          ok = cqes_[head & cq_mask_].res != -EINVAL;
          StoreRelease(cq_head_, head + 1);
        }
      }
    }
    close(sv[0]);
    close(sv[1]);
    return ok;
  }

  void* Map(size_t size, off_t offset) {
    void* p = mmap(nullptr, size, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_POPULATE, ring_, offset);
    return p == MAP_FAILED ? nullptr : p;
  }

  FdState* Watched(int fd) {
    if (fd < 0 || static_cast<size_t>(fd) >= fds_.size() || fds_[fd].interest == 0) return nullptr;
    return &fds_[fd];
  }

  // The next free SQE, zeroed; submits what is queued first when the ring is full.
  io_uring_sqe* Sqe() {
    if (local_tail_ - LoadAcquire(sq_head_) >= sq_entries_ && Submit(0, 0) != 0) return nullptr;
    if (local_tail_ - LoadAcquire(sq_head_) >= sq_entries_) return nullptr;
    io_uring_sqe* sqe = &sqes_[local_tail_ & sq_mask_];
    memset(sqe, 0, sizeof *sqe);
    local_tail_++;
    return sqe;
  }

  // Submits now unless deferring. The operation is in the queue either way: an
  // io_uring_enter that fails (-EAGAIN, -ENOMEM, -EBUSY) leaves it there for the next one,
  // and a ring that stays broken fails the next Wait. So the operation has not failed: an
  // error here would have its caller undo (free a connect's address, write the bytes
  // again) what the kernel still goes on to do.
  int MaybeSubmit() {
    if (!deferring_) Submit(0, 0);
    return 0;
  }

  // Ends the operation whose user_data is `data`; submitted now, as Remove: the operation
  // holds a reference to the socket, which may be closing.
  int Cancel(uint64_t data, uint32_t flags = 0) {
    io_uring_sqe* sqe = Sqe();
    if (sqe == nullptr) return -EBUSY;
    sqe->opcode = IORING_OP_ASYNC_CANCEL;
    sqe->fd = -1;
    sqe->addr = data;
    sqe->cancel_flags = flags;
    sqe->user_data = uint64_t{kOpIgnore} << kOpShift;
    return SubmitRelease();
  }

  // Submits a removal or cancellation so that the socket it held is let go of now. With
  // DEFER_TASKRUN the ended operation gives its reference back in the work that waits for
  // io_uring_enter with GETEVENTS: until then a closed listener's port stays taken.
  int SubmitRelease() { return Submit(0, defer_taskrun_ ? IORING_ENTER_GETEVENTS : 0); }

  // One io_uring_enter for everything queued; waits for min_complete completions when asked.
  int Submit(unsigned min_complete, unsigned flags, void* arg = nullptr, size_t argsz = 0) {
    unsigned pending = local_tail_ - submitted_;
    if (pending == 0 && flags == 0) return 0;
    StoreRelease(sq_tail_, local_tail_);
    int n = Enter(ring_, pending, min_complete, flags, arg, argsz);
    if (n < 0) return -errno;
    submitted_ += static_cast<unsigned>(n);
    return 0;
  }

  void ArmPoll(int fd) {
    FdState& st = fds_[fd];
    if (st.interest == 0 || st.armed) return;
    io_uring_sqe* sqe = Sqe();
    if (sqe == nullptr) {  // the ring is stuck: try again at the next submission
      QueueArm(fd);
      return;
    }
    uint32_t mask = 0;
    if (st.interest & kReadable) mask |= POLLIN | POLLRDHUP;
    if (st.interest & kWritable) mask |= POLLOUT;
    sqe->opcode = IORING_OP_POLL_ADD;
    sqe->fd = fd;
    sqe->poll32_events = mask;
    sqe->user_data = PollData(fd, st.seq);
    st.armed = true;
  }

  void DisarmPoll(int fd) {
    FdState& st = fds_[fd];
    if (st.armed) {
      io_uring_sqe* sqe = Sqe();
      if (sqe != nullptr) {
        sqe->opcode = IORING_OP_POLL_REMOVE;
        sqe->fd = -1;
        sqe->addr = PollData(fd, st.seq);
        sqe->user_data = uint64_t{kOpIgnore} << kOpShift;
      }
      st.armed = false;
    }
    st.seq++;  // whatever the old poll still reports is stale now
  }

  void QueueArm(int fd) {
    if (fds_[fd].to_arm) return;
    fds_[fd].to_arm = true;
    arm_.push_back(fd);
  }

  // Level-triggered: a poll that fired is armed again once the loop has acted on it.
  void ArmFired() {
    for (int fd : arm_) {
      fds_[fd].to_arm = false;
      ArmPoll(fd);
    }
    arm_.clear();
  }

  void ArmWake() {
    io_uring_sqe* sqe = Sqe();
    if (sqe == nullptr) return;
    sqe->opcode = IORING_OP_POLL_ADD;
    sqe->fd = wake_fd_;
    sqe->poll32_events = POLLIN;
    sqe->len = IORING_POLL_ADD_MULTI;
    sqe->user_data = uint64_t{kOpWake} << kOpShift;
  }

  // Takes completions off the ring, at most `max` reported ones.
  int Reap(PollEvent* events, int max) {
    int count = 0;
    unsigned head = *cq_head_;
    unsigned tail = LoadAcquire(cq_tail_);
    while (head != tail && count < max) {
      const io_uring_cqe& cqe = cqes_[head & cq_mask_];
      head++;
      uint64_t ud = cqe.user_data;
      switch ((ud & kOpMask) >> kOpShift) {
        case kOpRecv: {
          PollEvent& e = events[count++];
          e.token = DataToken(ud);
          e.events = kReceived | ((cqe.flags & IORING_CQE_F_MORE) ? kMore : 0u);
          e.result = cqe.res;
          e.chunk = -1;
          if (cqe.flags & IORING_CQE_F_BUFFER) {
            e.chunk = static_cast<int32_t>(cqe.flags >> IORING_CQE_BUFFER_SHIFT);
            provided_--;
          }
          break;
        }
        case kOpAccept:
        case kOpSend:
        case kOpConnect: {
          static constexpr uint32_t kFired[] = {0, 0, 0, 0, 0, kAccepted, kSent, kConnected};
          PollEvent& e = events[count++];
          e.token = DataToken(ud);
          e.events = kFired[(ud & kOpMask) >> kOpShift];
          e.result = cqe.res;
          e.chunk = -1;
          break;
        }
        case kOpPoll: {
          int fd = static_cast<int>(ud & ((uint64_t{1} << kOpShift) - 1));
          auto seq = static_cast<uint8_t>(ud >> 32);
          if (static_cast<size_t>(fd) >= fds_.size()) break;
          FdState& st = fds_[fd];
          if (st.seq != seq || st.interest == 0) break;  // removed or modified since
          st.armed = false;
          uint32_t fired = 0;
          if (cqe.res < 0) {
            fired = kHangup | st.interest;  // the operations that follow report the error
          } else {
            auto m = static_cast<uint32_t>(cqe.res);
            if (m & (POLLIN | POLLPRI)) fired |= kReadable;
            if (m & POLLRDHUP) fired |= kReadable | kReadHangup;
            if (m & POLLOUT) fired |= kWritable;
            if (m & (POLLERR | POLLHUP)) fired |= kHangup;
          }
          QueueArm(fd);
          PollEvent& e = events[count++];
          e.token = st.token;
          e.events = fired;
          e.result = 0;
          e.chunk = -1;
          break;
        }
        case kOpWake: {
          uint64_t v;
          while (read(wake_fd_, &v, sizeof v) > 0) {
          }
          if (!(cqe.flags & IORING_CQE_F_MORE)) ArmWake();
          break;
        }
        default:
          break;
      }
    }
    StoreRelease(cq_head_, head);
    return count;
  }

  int ring_ = -1;
  int wake_fd_ = -1;
  int cq_fd_ = -1;  // DEFER_TASKRUN: the eventfd the ring signals when it has work
  bool defer_taskrun_ = false;
  bool receive_limit_ = false;  // the kernel ends a multishot receive at a byte limit
  void* sq_ptr_ = nullptr;
  void* cq_ptr_ = nullptr;
  size_t sq_size_ = 0, cq_size_ = 0, sqes_size_ = 0;
  io_uring_sqe* sqes_ = nullptr;
  unsigned *sq_head_ = nullptr, *sq_tail_ = nullptr;
  unsigned sq_mask_ = 0, sq_entries_ = 0;
  unsigned local_tail_ = 0;  // SQEs filled
  // A gathered send's header and iovecs, read by the kernel when it takes the submission.
  static constexpr int kGatherIov = 64;
  static constexpr size_t kGathers = 32;
  struct Gather {
    msghdr msg;
    iovec iov[kGatherIov];
  };
  std::unique_ptr<Gather[]> gathers_;  // kGathers of them, from the first gathered send
  size_t gathers_used_ = 0;      // by SQEs the kernel may not have taken yet
  unsigned submitted_ = 0;   // SQEs the kernel has taken
  unsigned *cq_head_ = nullptr, *cq_tail_ = nullptr;
  unsigned cq_mask_ = 0;
  io_uring_cqe* cqes_ = nullptr;
  io_uring_buf_ring* buf_ring_ = nullptr;
  uint16_t buf_tail_ = 0;
  int provided_ = 0;
  bool deferring_ = false;
  std::vector<FdState> fds_;
  std::vector<int> arm_;
};

std::string Probe() {
  const char* env = getenv("MUXNET_IO_URING");
  if (env != nullptr && strcmp(env, "0") == 0) return "disabled by MUXNET_IO_URING=0";
  const char* taskrun = getenv("MUXNET_IO_URING_TASKRUN");
  if (taskrun != nullptr && strcmp(taskrun, "coop") != 0 && strcmp(taskrun, "defer") != 0) {
    return std::string("MUXNET_IO_URING_TASKRUN=") + taskrun + ": expected coop or defer";
  }
  auto p = std::make_unique<IoUringPoller>();
  int err = p->Init();
  if (err == 0) return "";
  if (err == -ENOSYS) return "this kernel has no io_uring (ENOSYS), or lacks what the backend needs";
  if (err == -EPERM || err == -EACCES) {
    int disabled = 0;
    if (FILE* f = fopen("/proc/sys/kernel/io_uring_disabled", "r")) {
      if (fscanf(f, "%d", &disabled) != 1) disabled = 0;
      fclose(f);
    }
    if (disabled != 0) return "io_uring is disabled by the sysctl kernel.io_uring_disabled=" + std::to_string(disabled);
    return "io_uring is not permitted (EPERM): a seccomp filter (Docker's default profile) blocks it";
  }
  if (err == -EINVAL) return "the kernel's io_uring lacks SINGLE_ISSUER, COOP_TASKRUN or provided buffer rings (Linux 6.0+ needed)";
  return std::string("io_uring set-up failed: ") + strerror(-err);
}

}  // namespace

const std::string& IoUringUnavailable() {
  static const std::string reason = Probe();
  return reason;
}

int NewIoUringPoller(std::unique_ptr<Poller>* out) {
  if (!IoUringUnavailable().empty()) return -ENOENT;
  auto p = std::make_unique<IoUringPoller>();
  int err = p->Init();
  if (err != 0) return err;
  *out = std::move(p);
  return 0;
}

}  // namespace muxnet

#endif  // MUXNET_HAVE_IO_URING
