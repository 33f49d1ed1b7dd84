// A model of BSD kqueue(2) on Linux, for the C++ unit tests only (MUXNET_KQUEUE_MODEL): the
// calls and constants poller_kqueue.cc uses, with the semantics of FreeBSD and macOS that
// the backend relies on:
// - EVFILT_READ / EVFILT_WRITE per descriptor, EVFILT_USER with NOTE_TRIGGER;
// - EV_ADD (adding again updates udata and EV_CLEAR), EV_DELETE (ENOENT if absent),
//   EV_ENABLE, EV_DISABLE, EV_CLEAR (reported once per change of state), EV_RECEIPT;
// - changes are applied in order before events are collected; a change that fails, or
//   one with EV_RECEIPT, comes back as an EV_ERROR entry (data = errno, 0 for success) and
//   then no events are collected by that call; with no room for it the call fails;
// - EV_EOF when the peer shut down (read) or nobody reads any more (write); a pending
//   socket error sets fflags (to 1: the model does not read SO_ERROR, which on Linux would
//   clear it);
// - closing a descriptor removes its filters;
// - the kqueue descriptor is readable while events are pending (pollable).
// It runs on epoll, so a socket's two filters must agree on EV_CLEAR (EINVAL otherwise).
// It is not macOS: what it checks is the backend's own logic, not the kernel.
#ifndef MUXNET_TEST_KQUEUE_MODEL_H_
#define MUXNET_TEST_KQUEUE_MODEL_H_

#include <cstdint>
#include <ctime>

struct kevent {
  uintptr_t ident;
  int16_t filter;
  uint16_t flags;
  uint32_t fflags;
  intptr_t data;
  void* udata;
};

#define EV_SET(kevp, a, b, c, d, e, f) \
  do {                                 \
    struct kevent* ev_ = (kevp);       \
    ev_->ident = (a);                  \
    ev_->filter = (b);                 \
    ev_->flags = (c);                  \
    ev_->fflags = (d);                 \
    ev_->data = (e);                   \
    ev_->udata = (f);                  \
  } while (0)

// The values of FreeBSD's <sys/event.h>.
constexpr int16_t EVFILT_READ = -1;
constexpr int16_t EVFILT_WRITE = -2;
constexpr int16_t EVFILT_USER = -11;
constexpr uint16_t EV_ADD = 0x0001;
constexpr uint16_t EV_DELETE = 0x0002;
constexpr uint16_t EV_ENABLE = 0x0004;
constexpr uint16_t EV_DISABLE = 0x0008;
constexpr uint16_t EV_CLEAR = 0x0020;
constexpr uint16_t EV_RECEIPT = 0x0040;
constexpr uint16_t EV_ERROR = 0x4000;
constexpr uint16_t EV_EOF = 0x8000;
constexpr uint32_t NOTE_TRIGGER = 0x01000000;

int kqueue();
int kevent(int kq, const struct kevent* changelist, int nchanges, struct kevent* eventlist,
           int nevents, const struct timespec* timeout);

namespace muxnet {
// close(2) for a kqueue descriptor: the model also forgets its state.
int CloseKqueue(int kq);
}  // namespace muxnet

namespace muxtest {
// Kqueue descriptors the model holds now (the tests check none is left behind).
int KqueueModelOpen();
}  // namespace muxtest

#endif  // MUXNET_TEST_KQUEUE_MODEL_H_
