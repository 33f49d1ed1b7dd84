// poll(2) backend: one pollfd per watched fd in a dense array; the kernel scans all of them
// on every wait, which is why its cost grows with idle connections. Tokens sit in an array
// parallel to the pollfds.
#ifndef _WIN32  // no WSAPoll backend: see poller_registry.cc
#include <poll.h>

#include <cerrno>
#include <vector>

#include "poller.h"
#include "waker.h"

namespace muxnet {
namespace {

class PollPoller final : public Poller {
 public:
  int Init() {
    int err = waker_.Open();
    return err != 0 ? err : Add(waker_.fd(), kWakeToken, kReadable);
  }

  const char* Name() const override { return "poll"; }
  PollerCaps Caps() const override { return PollerCaps{}; }
  void Wake() override { waker_.Signal(); }

  int Add(int fd, Token token, uint32_t interest) override {
    if (fd < 0) return -EBADF;
    if (fd >= static_cast<int>(index_.size())) index_.resize(fd + 1, -1);
    if (index_[fd] >= 0) return -EEXIST;
    index_[fd] = static_cast<int>(fds_.size());
    fds_.push_back(pollfd{fd, ToPoll(interest), 0});
    tokens_.push_back(token);
    return 0;
  }

  int Modify(int fd, Token token, uint32_t interest) override {
    int i = IndexOf(fd);
    if (i < 0) return -ENOENT;
    fds_[i].events = ToPoll(interest);
    tokens_[i] = token;
    return 0;
  }

  int Remove(int fd) override {
    int i = IndexOf(fd);
    if (i < 0) return -ENOENT;
    // Swap with the last entry so the array stays dense: O(1) removal.
    fds_[i] = fds_.back();
    tokens_[i] = tokens_.back();
    index_[fds_[i].fd] = i;
    fds_.pop_back();
    tokens_.pop_back();
    index_[fd] = -1;
    return 0;
  }

  int Wait(int timeout_ms, PollEvent* events, int max) override {
    int n = poll(fds_.data(), fds_.size(), timeout_ms);
    if (n < 0) return errno == EINTR ? 0 : -errno;
    int count = 0;
    size_t size = fds_.size();
    // When more are ready than fit, start the next scan where this one stopped: a fixed
    // start would report the same first `max` descriptors forever.
    size_t start = size > 0 ? next_ % size : 0;
    for (size_t k = 0; k < size && count < max && n > 0; k++) {
      size_t i = (start + k) % size;
      short revents = fds_[i].revents;
      if (revents == 0) continue;
      n--;
      next_ = i + 1;
      if (tokens_[i] == kWakeToken) {
        waker_.Drain();
        continue;
      }
      uint32_t fired = 0;
      if (revents & (POLLIN | POLLPRI)) fired |= kReadable;
      if (revents & POLLOUT) fired |= kWritable;
      if (revents & (POLLERR | POLLHUP | POLLNVAL)) fired |= kHangup;
      events[count++] = PollEvent{tokens_[i], fired};
    }
    return count;
  }

 private:
  static short ToPoll(uint32_t interest) {
    short events = 0;
    if (interest & kReadable) events |= POLLIN;
    if (interest & kWritable) events |= POLLOUT;
    return events;
  }

  int IndexOf(int fd) const {
    return fd >= 0 && fd < static_cast<int>(index_.size()) ? index_[fd] : -1;
  }

  Waker waker_;
  std::vector<pollfd> fds_;    // dense: what the kernel scans
  std::vector<Token> tokens_;  // parallel to fds_
  std::vector<int> index_;     // fd -> position in fds_, or -1
  size_t next_ = 0;            // where the next scan of revents starts
};

}  // namespace

int NewPollPoller(std::unique_ptr<Poller>* out) {
  auto poller = std::make_unique<PollPoller>();
  int err = poller->Init();
  if (err != 0) return err;
  *out = std::move(poller);
  return 0;
}

}  // namespace muxnet

#endif  // !_WIN32
