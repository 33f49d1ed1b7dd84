// epoll(7) backend, level- or edge-triggered per registration (kEdge). Its own fd is
// pollable, so the loop can nest it in Node's loop with one uv_poll_t and drain it at once.
// The token rides in the kernel's per-registration data (data.u64).
#include <sys/epoll.h>
#include <unistd.h>

#include <cerrno>
#include <vector>

#include "poller.h"
#include "waker.h"

namespace muxnet {
namespace {

class EpollPoller final : public Poller {
 public:
  explicit EpollPoller(int epfd) : epfd_(epfd) {}
  ~EpollPoller() override { close(epfd_); }

  int Init() {
    int err = waker_.Open();
    if (err != 0) return err;
    epoll_event ev{};
    ev.events = EPOLLIN;
    ev.data.u64 = kWakeToken;
    return epoll_ctl(epfd_, EPOLL_CTL_ADD, waker_.fd(), &ev) == 0 ? 0 : -errno;
  }

  const char* Name() const override { return "epoll"; }
  PollerCaps Caps() const override { return PollerCaps{true, true, false}; }
  int PollableFd() const override { return epfd_; }
  void Wake() override { waker_.Signal(); }

  int Add(int fd, Token token, uint32_t interest) override {
    return Control(EPOLL_CTL_ADD, fd, token, interest);
  }
  int Modify(int fd, Token token, uint32_t interest) override {
    return Control(EPOLL_CTL_MOD, fd, token, interest);
  }

  int Remove(int fd) override {
    epoll_event ev{};  // non-null for kernels before 2.6.9
    return epoll_ctl(epfd_, EPOLL_CTL_DEL, fd, &ev) == 0 ? 0 : -errno;
  }

  int Wait(int timeout_ms, PollEvent* events, int max) override {
    if (static_cast<int>(fired_.size()) < max) fired_.resize(max);
    int n = epoll_wait(epfd_, fired_.data(), max, timeout_ms);
    if (n < 0) return errno == EINTR ? 0 : -errno;
    int count = 0;
    for (int i = 0; i < n; i++) {
      if (fired_[i].data.u64 == kWakeToken) {
        waker_.Drain();
        continue;
      }
      uint32_t e = fired_[i].events;
      uint32_t fired = 0;
      if (e & (EPOLLIN | EPOLLPRI)) fired |= kReadable;
      if (e & EPOLLRDHUP) fired |= kReadable | kReadHangup;
      if (e & EPOLLOUT) fired |= kWritable;
      if (e & (EPOLLERR | EPOLLHUP)) fired |= kHangup;
      events[count++] = PollEvent{fired_[i].data.u64, fired};
    }
    return count;
  }

 private:
  int Control(int op, int fd, Token token, uint32_t interest) {
    epoll_event ev{};
    if (interest & kReadable) ev.events |= EPOLLIN | EPOLLRDHUP;
    if (interest & kWritable) ev.events |= EPOLLOUT;
    if (interest & kEdge) ev.events |= EPOLLET;
    ev.data.u64 = token;
    return epoll_ctl(epfd_, op, fd, &ev) == 0 ? 0 : -errno;
  }

  int epfd_;
  Waker waker_;
  std::vector<epoll_event> fired_;
};

}  // namespace

int NewEpollPoller(std::unique_ptr<Poller>* out) {
  int epfd = epoll_create1(EPOLL_CLOEXEC);
  if (epfd < 0) return -errno;
  auto poller = std::make_unique<EpollPoller>(epfd);
  int err = poller->Init();
  if (err != 0) return err;
  *out = std::move(poller);
  return 0;
}

}  // namespace muxnet
