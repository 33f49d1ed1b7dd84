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
      "poll",
      "select",
  };
  return names;
}

int CreatePoller(const std::string& name, std::unique_ptr<Poller>* out) {
  if (name == "select") return NewSelectPoller(out);
  if (name == "poll") return NewPollPoller(out);
#ifdef MUXNET_HAVE_EPOLL
  if (name == "epoll") return NewEpollPoller(out);
#endif
#ifdef MUXNET_HAVE_KQUEUE
  if (name == "kqueue") return NewKqueuePoller(out);
#endif
  return -ENOENT;
}

}  // namespace muxnet
