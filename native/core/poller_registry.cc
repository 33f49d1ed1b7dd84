// Maps backend names to the factories that this build compiled (binding.gyp / CMake decide
// which poller_<name>.cc files exist and define MUXNET_HAVE_<NAME> for them; the Windows ones,
// *_win.cc, compile to nothing elsewhere and go by _WIN32) and that can run on this machine
// (io_uring is probed).
#include <cerrno>

#include "poller.h"

namespace muxnet {

namespace {
std::vector<std::string> Compiled() {
  std::vector<std::string> names = {
#if defined(MUXNET_HAVE_KQUEUE) && !defined(MUXNET_KQUEUE_MODEL)
      "kqueue",
#endif
#ifdef MUXNET_HAVE_EPOLL
      "epoll",
#endif
#ifdef _WIN32
      "afd",  // every Windows build has it (poller_afd_win.cc)
#endif
  };
#ifdef MUXNET_HAVE_IO_URING
  // Only where the kernel lets this process use it (a probe ring, made once).
  if (IoUringUnavailable().empty()) names.push_back("io_uring");
#endif
#ifdef MUXNET_KQUEUE_MODEL
  names.push_back("kqueue");  // the C++ unit tests' model of kqueue, on Linux: never the default
#endif
#ifndef _WIN32  // WSAPoll misses a failed non-blocking connect (fixed only in Windows 10 2004):
  names.push_back("poll");  // a dial to a closed port would wait for its deadline. select reports it.
#endif
  names.push_back("select");
  return names;
}
}  // namespace

const std::vector<std::string>& AvailableBackends() {
  static const std::vector<std::string> names = Compiled();
  return names;
}

int CreatePoller(const std::string& name, std::unique_ptr<Poller>* out) {
  if (name == "select") return NewSelectPoller(out);
#ifdef _WIN32
  if (name == "afd") return NewAfdPoller(out);
#else  // see AvailableBackends
  if (name == "poll") return NewPollPoller(out);
#endif
#ifdef MUXNET_HAVE_EPOLL
  if (name == "epoll") return NewEpollPoller(out);
#endif
#ifdef MUXNET_HAVE_KQUEUE
  if (name == "kqueue") return NewKqueuePoller(out);
#endif
#ifdef MUXNET_HAVE_IO_URING
  if (name == "io_uring") return NewIoUringPoller(out);
#endif
  return -ENOENT;
}

}  // namespace muxnet
