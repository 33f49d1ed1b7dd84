// epoll(7) backend, level- or edge-triggered per registration (kEdge). Its own fd is
// pollable, so the loop can nest it in Node's loop with one uv_poll_t and drain it at once.
#include <sys/epoll.h>
#include <unistd.h>

#include <cerrno>
#include <vector>

#include "poller.h"

namespace muxnet {
namespace {

class EpollPoller final : public Poller {
 public:
  explicit EpollPoller(int epfd) : epfd_(epfd) {}
  ~EpollPoller() override { close(epfd_); }

  const char* Name() const override { return "epoll"; }
  int PollableFd() const override { return epfd_; }
  bool SupportsEdge() const override { return true; }

  int Add(int fd, uint32_t interest) override { return Control(EPOLL_CTL_ADD, fd, interest); }
  int Modify(int fd, uint32_t interest) override { return Control(EPOLL_CTL_MOD, fd, interest); }

  int Remove(int fd) override {
    epoll_event ev{};  // non-null for kernels before 2.6.9
    return epoll_ctl(epfd_, EPOLL_CTL_DEL, fd, &ev) == 0 ? 0 : -errno;
  }

  int Wait(int timeout_ms, PollEvent* events, int max) override {
    if (static_cast<int>(fired_.size()) < max) fired_.resize(max);
    int n = epoll_wait(epfd_, fired_.data(), max, timeout_ms);
    if (n < 0) return errno == EINTR ? 0 : -errno;
    for (int i = 0; i < n; i++) {
      uint32_t e = fired_[i].events;
      uint32_t fired = 0;
      if (e & (EPOLLIN | EPOLLPRI)) fired |= kReadable;
      if (e & EPOLLRDHUP) fired |= kReadable | kReadHangup;
      if (e & EPOLLOUT) fired |= kWritable;
      if (e & (EPOLLERR | EPOLLHUP)) fired |= kHangup;
      events[i] = PollEvent{fired_[i].data.fd, fired};
    }
    return n;
  }

 private:
  int Control(int op, int fd, uint32_t interest) {
    epoll_event ev{};
    if (interest & kReadable) ev.events |= EPOLLIN | EPOLLRDHUP;
    if (interest & kWritable) ev.events |= EPOLLOUT;
    if (interest & kEdge) ev.events |= EPOLLET;
    ev.data.fd = fd;
    return epoll_ctl(epfd_, op, fd, &ev) == 0 ? 0 : -errno;
  }

  int epfd_;
  std::vector<epoll_event> fired_;
};

}  // namespace

std::unique_ptr<Poller> NewEpollPoller(int* err) {
  int epfd = epoll_create1(EPOLL_CLOEXEC);
  if (epfd < 0) {
    *err = -errno;
    return nullptr;
  }
  return std::make_unique<EpollPoller>(epfd);
}

}  // namespace muxnet
