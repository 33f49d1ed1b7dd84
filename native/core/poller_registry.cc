// Maps backend names to the factories that this build compiled (binding.gyp / CMake decide
// which poller_<name>.cc files exist and define MUXNET_HAVE_<NAME> for them).
#include <cerrno>

#include "poller.h"

namespace muxnet {

const std::vector<std::string>& AvailableBackends() {
  static const std::vector<std::string> names = {
#if defined(MUXNET_HAVE_KQUEUE) && !defined(MUXNET_KQUEUE_MODEL)
      "kqueue",
#endif
#ifdef MUXNET_HAVE_EPOLL
      "epoll",
#endif
#ifdef MUXNET_KQUEUE_MODEL
      "kqueue",  // the C++ unit tests' model of kqueue, on Linux: never the default
#endif
#ifndef _WIN32  // WSAPoll misses a failed non-blocking connect (fixed only in Windows 10 2004):
      "poll",        // a dial to a closed port would wait for its deadline. select reports it.
#endif
      "select",
  };
  return names;
}

int CreatePoller(const std::string& name, std::unique_ptr<Poller>* out) {
  if (name == "select") return NewSelectPoller(out);
#ifndef _WIN32  // see AvailableBackends
  if (name == "poll") return NewPollPoller(out);
#endif
#ifdef MUXNET_HAVE_EPOLL
  if (name == "epoll") return NewEpollPoller(out);
#endif
#ifdef MUXNET_HAVE_KQUEUE
  if (name == "kqueue") return NewKqueuePoller(out);
#endif
  return -ENOENT;
}

}  // namespace muxnet
