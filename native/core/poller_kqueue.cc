#ifdef MUXNET_HAVE_KQUEUE
// kqueue(2) backend (macOS, FreeBSD, the other BSDs). A socket's read and write interest
// are two filters (EVFILT_READ, EVFILT_WRITE), each added or deleted as the interest
// changes; edge-triggered interest is EV_CLEAR. The token rides in each filter's udata.
// The wake-up is an EVFILT_USER event, so no descriptor is spent on it. The kqueue
// descriptor is itself pollable, so the loop nests it in Node's loop like epoll's.
//
// Interest changes are applied at once, each with EV_RECEIPT (one result per change, no
// events collected by that call), rather than batched into the next wait as Redis's
// ae_kqueue does: the contract reports a refusal to the caller of Add/Modify, and the
// handle keeps its old interest then.
#include <cerrno>
#include <cstdint>
#include <ctime>
#include <vector>

#include "kqueue_api.h"
#include "poller.h"

namespace muxnet {
namespace {

constexpr uintptr_t kWakeIdent = 0;

class KqueuePoller final : public Poller {
 public:
  explicit KqueuePoller(int kq) : kq_(kq) {}
  ~KqueuePoller() override { CloseKqueue(kq_); }

  int Init() {
    struct kevent ev;
    EV_SET(&ev, kWakeIdent, EVFILT_USER, EV_ADD | EV_CLEAR, 0, 0, nullptr);
    return kevent(kq_, &ev, 1, nullptr, 0, nullptr) == 0 ? 0 : -errno;
  }

  const char* Name() const override { return "kqueue"; }
  PollerCaps Caps() const override { return PollerCaps{true, true, false}; }
  int PollableFd() const override { return kq_; }

  void Wake() override {
    struct kevent ev;
    EV_SET(&ev, kWakeIdent, EVFILT_USER, 0, NOTE_TRIGGER, 0, nullptr);
    kevent(kq_, &ev, 1, nullptr, 0, nullptr);
  }

  int Add(int fd, Token token, uint32_t interest) override {
    if (fd < 0) return -EBADF;
    if (Filters(fd) != 0) return -EEXIST;
    return Apply(fd, token, interest);
  }

  int Modify(int fd, Token token, uint32_t interest) override {
    if (fd < 0 || Filters(fd) == 0) return -ENOENT;
    return Apply(fd, token, interest);
  }

  int Remove(int fd) override {
    if (fd < 0 || Filters(fd) == 0) return -ENOENT;
    return Apply(fd, 0, 0);
  }

  int Wait(int timeout_ms, PollEvent* events, int max) override {
    if (static_cast<int>(fired_.size()) < max) fired_.resize(max);
    timespec ts{timeout_ms / 1000, (timeout_ms % 1000) * 1000000L};
    int n = kevent(kq_, nullptr, 0, fired_.data(), max, timeout_ms < 0 ? nullptr : &ts);
    if (n < 0) return errno == EINTR ? 0 : -errno;
    int count = 0;
    for (int i = 0; i < n; i++) {
      const struct kevent& e = fired_[i];
      if (e.filter == EVFILT_USER) continue;  // the wake-up: EV_CLEAR has reset it
      uint32_t fired = 0;
      if (e.flags & EV_ERROR) {
        fired = kHangup;
      } else if (e.filter == EVFILT_READ) {
        fired = kReadable;
        // EV_EOF: the peer shut down its side; fflags holds a pending socket error.
        if (e.flags & EV_EOF) fired |= kReadHangup | (e.fflags != 0 ? uint32_t{kHangup} : 0u);
      } else if (e.filter == EVFILT_WRITE) {
        fired = kWritable;
        if (e.flags & EV_EOF) fired |= kHangup;  // nobody reads any more: writes will fail
      } else {
        continue;
      }
      Token token = static_cast<Token>(reinterpret_cast<uintptr_t>(e.udata));
      // A socket ready both ways comes as two events, usually side by side: one for the loop.
      if (count > 0 && events[count - 1].token == token) {
        events[count - 1].events |= fired;
      } else {
        events[count++] = PollEvent{token, fired};
      }
    }
    return count;
  }

 private:
  // The filters fd has registered (kReadable | kWritable), and whether with EV_CLEAR.
  // Per-descriptor registration state, not an owner map: events carry their token.
  uint32_t Filters(int fd) const {
    return fd < static_cast<int>(filters_.size()) ? filters_[fd] : 0;
  }

  // Makes fd's filters match `interest` (0: none), each change with its own result. On a
  // refusal the changes that went through are undone and the old filters stay.
  int Apply(int fd, Token token, uint32_t interest) {
    uint32_t had = Filters(fd);
    uint32_t want = interest & (kReadable | kWritable);
    uint16_t clear = (interest & kEdge) ? EV_CLEAR : 0;
    struct kevent changes[2], results[2];
    uint32_t bits[2];
    int n = 0;
    for (uint32_t bit : {kReadable, kWritable}) {
      int16_t filter = bit == kReadable ? EVFILT_READ : EVFILT_WRITE;
      void* udata = reinterpret_cast<void*>(static_cast<uintptr_t>(token));
      if (want & bit) {
        // Adding again updates udata and EV_CLEAR of a filter already there.
        EV_SET(&changes[n], fd, filter, EV_ADD | EV_ENABLE | EV_RECEIPT | clear, 0, 0, udata);
      } else if (had & bit) {
        EV_SET(&changes[n], fd, filter, EV_DELETE | EV_RECEIPT, 0, 0, nullptr);
      } else {
        continue;
      }
      bits[n++] = bit;
    }
    if (n == 0) return 0;
    int got = kevent(kq_, changes, n, results, n, nullptr);
    if (got < 0) return -errno;
    int err = 0;
    uint32_t done = 0;  // filters whose change went through
    for (int i = 0; i < got; i++) {
      int e = (results[i].flags & EV_ERROR) ? static_cast<int>(results[i].data) : 0;
      uint32_t bit = results[i].filter == EVFILT_READ ? kReadable : kWritable;
      // Deleting a filter the kernel already dropped (its descriptor was closed) is done.
      if (e == 0 || (e == ENOENT && !(want & bit))) {
        done |= bit;
      } else if (err == 0) {
        err = -e;
      }
    }
    if (err != 0) {
      // Undo what was added anew; a deleted or changed filter stays as the kernel has it.
      for (int i = 0; i < n; i++) {
        if ((done & bits[i]) && (want & bits[i]) && !(had & bits[i])) {
          struct kevent undo;
          EV_SET(&undo, fd, changes[i].filter, EV_DELETE, 0, 0, nullptr);
          kevent(kq_, &undo, 1, nullptr, 0, nullptr);
          done &= ~bits[i];
        }
      }
      SetFilters(fd, (want & done) | (had & ~done));
      return err;
    }
    SetFilters(fd, want);
    return 0;
  }

  void SetFilters(int fd, uint32_t bits) {
    if (fd >= static_cast<int>(filters_.size())) {
      if (bits == 0) return;
      filters_.resize(fd + 1, 0);
    }
    filters_[fd] = static_cast<uint8_t>(bits);
  }

  int kq_;
  std::vector<uint8_t> filters_;  // by fd
  std::vector<struct kevent> fired_;
};

}  // namespace

int NewKqueuePoller(std::unique_ptr<Poller>* out) {
  int kq = kqueue();
  if (kq < 0) return -errno;
  auto poller = std::make_unique<KqueuePoller>(kq);
  int err = poller->Init();
  if (err != 0) return err;
  *out = std::move(poller);
  return 0;
}

}  // namespace muxnet
#endif  // MUXNET_HAVE_KQUEUE
