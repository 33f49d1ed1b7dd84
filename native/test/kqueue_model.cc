#ifdef MUXNET_KQUEUE_MODEL
// The kqueue model: see kqueue_model.h. Built on epoll: the kqueue descriptor is an epoll
// descriptor (so it is pollable), each watched socket is registered with the union of its
// enabled filters, and EVFILT_USER is an eventfd.
#include "kqueue_model.h"

#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

#include <linux/sockios.h>

#include <algorithm>
#include <cerrno>
#include <map>
#include <memory>
#include <mutex>
#include <vector>

namespace {

constexpr uint64_t kUserKey = ~uint64_t{0};

struct Knote {
  bool present = false;
  bool enabled = false;
  bool clear = false;
  void* udata = nullptr;
};

struct Watched {
  dev_t dev = 0;  // the file the filters belong to: a reused descriptor number is not it
  ino_t ino = 0;
  Knote read, write;
  bool in_epoll = false;
};

struct Kq {
  int ep = -1;
  int user_fd = -1;
  Knote user;
  std::map<int, Watched> fds;
  std::mutex mu;
};

std::mutex g_mu;
std::map<int, std::shared_ptr<Kq>> g_kqs;

std::shared_ptr<Kq> Find(int kq) {
  std::lock_guard<std::mutex> lock(g_mu);
  auto it = g_kqs.find(kq);
  return it == g_kqs.end() ? nullptr : it->second;
}

bool Identify(int fd, dev_t* dev, ino_t* ino) {
  struct stat st;
  if (fstat(fd, &st) != 0) return false;
  *dev = st.st_dev;
  *ino = st.st_ino;
  return true;
}

// BSD removes a descriptor's filters when it is closed; the model notices at its next call.
void ForgetClosed(Kq* k) {
  for (auto it = k->fds.begin(); it != k->fds.end();) {
    dev_t dev;
    ino_t ino;
    if (!Identify(it->first, &dev, &ino) || dev != it->second.dev || ino != it->second.ino) {
      it = k->fds.erase(it);  // epoll dropped the closed file by itself
    } else {
      ++it;
    }
  }
}

// Registers fd with epoll for what its enabled filters want. 0 or an errno.
int Sync(Kq* k, int fd, Watched* w) {
  uint32_t mask = 0;
  if (w->read.present && w->read.enabled) mask |= EPOLLIN | EPOLLRDHUP;
  if (w->write.present && w->write.enabled) mask |= EPOLLOUT;
  bool clear = (w->read.present && w->read.clear) || (w->write.present && w->write.clear);
  if (clear) mask |= EPOLLET;
  if ((mask & ~EPOLLET) == 0) {
    if (w->in_epoll && epoll_ctl(k->ep, EPOLL_CTL_DEL, fd, nullptr) != 0) return errno;
    w->in_epoll = false;
    return 0;
  }
  epoll_event ev{};
  ev.events = mask;
  ev.data.fd = fd;
  if (epoll_ctl(k->ep, w->in_epoll ? EPOLL_CTL_MOD : EPOLL_CTL_ADD, fd, &ev) != 0) return errno;
  w->in_epoll = true;
  return 0;
}

int ApplyUser(Kq* k, const struct kevent& c) {
  if (c.flags & EV_ADD) {
    k->user.present = true;
    k->user.enabled = !(c.flags & EV_DISABLE);
    k->user.clear = (c.flags & EV_CLEAR) != 0;
    k->user.udata = c.udata;
  } else if (!k->user.present) {
    return ENOENT;
  }
  if (c.flags & EV_DELETE) {
    k->user = Knote{};
    uint64_t v;
    ssize_t ignored = read(k->user_fd, &v, sizeof v);
    (void)ignored;
    return 0;
  }
  if (c.fflags & NOTE_TRIGGER) {
    uint64_t one = 1;
    ssize_t ignored = write(k->user_fd, &one, sizeof one);
    (void)ignored;
  }
  return 0;
}

int Apply(Kq* k, const struct kevent& c) {
  if (c.filter == EVFILT_USER) return ApplyUser(k, c);
  if (c.filter != EVFILT_READ && c.filter != EVFILT_WRITE) return EINVAL;
  int fd = static_cast<int>(c.ident);
  dev_t dev;
  ino_t ino;
  if (!Identify(fd, &dev, &ino)) return EBADF;
  auto it = k->fds.find(fd);
  if (it != k->fds.end() && (it->second.dev != dev || it->second.ino != ino)) {
    k->fds.erase(it);  // another file under the same number: the old filters are gone
    it = k->fds.end();
  }
  if (it == k->fds.end()) {
    if (!(c.flags & EV_ADD)) return ENOENT;
    it = k->fds.emplace(fd, Watched{}).first;
    it->second.dev = dev;
    it->second.ino = ino;
  }
  Watched* w = &it->second;
  Knote before = c.filter == EVFILT_READ ? w->read : w->write;
  Knote* kn = c.filter == EVFILT_READ ? &w->read : &w->write;
  const Knote& other = c.filter == EVFILT_READ ? w->write : w->read;
  if (c.flags & EV_ADD) {
    bool clear = (c.flags & EV_CLEAR) != 0;
    if (other.present && other.clear != clear) return EINVAL;  // the model's limit, see .h
    kn->present = true;
    kn->enabled = true;
    kn->clear = clear;
    kn->udata = c.udata;
  } else if (!kn->present) {
    return ENOENT;
  }
  if (c.flags & EV_DELETE) *kn = Knote{};
  if (c.flags & EV_ENABLE) kn->enabled = kn->present;
  if (c.flags & EV_DISABLE) kn->enabled = false;
  int err = Sync(k, fd, w);
  if (err != 0) {
    *kn = before;
    Sync(k, fd, w);
    return err;
  }
  if (!w->read.present && !w->write.present) k->fds.erase(fd);
  return 0;
}

intptr_t Readable(int fd) {
  int n = 0;
  // A listening socket has no FIONREAD: BSD reports its backlog; one is enough here.
  return ioctl(fd, FIONREAD, &n) == 0 && n > 0 ? n : 1;
}

intptr_t Writable(int fd) {
  int size = 0, queued = 0;
  socklen_t len = sizeof size;
  if (getsockopt(fd, SOL_SOCKET, SO_SNDBUF, &size, &len) != 0) return 1;
  if (ioctl(fd, SIOCOUTQ, &queued) != 0) queued = 0;
  return std::max(1, size - queued);
}

}  // namespace

int kqueue() {
  auto k = std::make_shared<Kq>();
  k->ep = epoll_create1(EPOLL_CLOEXEC);
  if (k->ep < 0) return -1;
  k->user_fd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
  epoll_event ev{};
  ev.events = EPOLLIN;
  ev.data.u64 = kUserKey;
  if (k->user_fd < 0 || epoll_ctl(k->ep, EPOLL_CTL_ADD, k->user_fd, &ev) != 0) {
    int err = errno;
    close(k->ep);
    if (k->user_fd >= 0) close(k->user_fd);
    errno = err;
    return -1;
  }
  std::lock_guard<std::mutex> lock(g_mu);
  g_kqs[k->ep] = k;
  return k->ep;
}

int kevent(int kq, const struct kevent* changelist, int nchanges, struct kevent* eventlist,
           int nevents, const struct timespec* timeout) {
  std::shared_ptr<Kq> k = Find(kq);
  if (k == nullptr) {
    errno = EBADF;
    return -1;
  }
  int out = 0;
  {
    std::lock_guard<std::mutex> lock(k->mu);
    ForgetClosed(k.get());
    for (int i = 0; i < nchanges; i++) {
      const struct kevent& c = changelist[i];
      int err = Apply(k.get(), c);
      if (err == 0 && !(c.flags & EV_RECEIPT)) continue;
      if (out == nevents) {
        if (err == 0) continue;
        errno = err;
        return -1;
      }
      eventlist[out] = c;
      eventlist[out].flags = EV_ERROR;
      eventlist[out].data = err;
      out++;
    }
  }
  if (out > 0 || nevents == 0) return out;

  int ms = timeout == nullptr ? -1 : static_cast<int>(timeout->tv_sec * 1000 + timeout->tv_nsec / 1000000);
  // Each ready descriptor gives at most two events: ask for no more than fit.
  std::vector<epoll_event> ready(std::max(1, nevents / 2));
  int n = epoll_wait(k->ep, ready.data(), static_cast<int>(ready.size()), ms);
  if (n < 0) return -1;
  std::lock_guard<std::mutex> lock(k->mu);
  for (int i = 0; i < n && out < nevents; i++) {
    const epoll_event& r = ready[i];
    if (r.data.u64 == kUserKey) {
      if (!k->user.present || !k->user.enabled) continue;
      if (k->user.clear) {
        uint64_t v;
        ssize_t ignored = read(k->user_fd, &v, sizeof v);
        (void)ignored;
      }
      struct kevent& e = eventlist[out++];
      EV_SET(&e, 0, EVFILT_USER, 0, 0, 0, k->user.udata);
      continue;
    }
    int fd = r.data.fd;
    auto it = k->fds.find(fd);
    if (it == k->fds.end()) continue;
    const Watched& w = it->second;
    uint32_t pending_error = (r.events & EPOLLERR) ? 1 : 0;
    if (w.read.present && w.read.enabled && (r.events & (EPOLLIN | EPOLLRDHUP | EPOLLHUP | EPOLLERR))) {
      uint16_t flags = (r.events & (EPOLLRDHUP | EPOLLHUP)) ? EV_EOF : 0;
      EV_SET(&eventlist[out++], fd, EVFILT_READ, flags, pending_error, Readable(fd), w.read.udata);
    }
    if (out < nevents && w.write.present && w.write.enabled && (r.events & (EPOLLOUT | EPOLLHUP | EPOLLERR))) {
      uint16_t flags = (r.events & (EPOLLHUP | EPOLLERR)) ? EV_EOF : 0;
      EV_SET(&eventlist[out++], fd, EVFILT_WRITE, flags, pending_error, Writable(fd), w.write.udata);
    }
  }
  return out;
}

namespace muxnet {

int CloseKqueue(int kq) {
  std::shared_ptr<Kq> k;
  {
    std::lock_guard<std::mutex> lock(g_mu);
    auto it = g_kqs.find(kq);
    if (it == g_kqs.end()) {
      errno = EBADF;
      return -1;
    }
    k = it->second;
    g_kqs.erase(it);
  }
  close(k->user_fd);
  return close(k->ep);
}

}  // namespace muxnet

namespace muxtest {

int KqueueModelOpen() {
  std::lock_guard<std::mutex> lock(g_mu);
  return static_cast<int>(g_kqs.size());
}

}  // namespace muxtest
#endif  // MUXNET_KQUEUE_MODEL
