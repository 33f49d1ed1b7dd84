// What poller_kqueue.cc calls: the system's kqueue on macOS and the BSDs, or, in the Linux
// builds of the C++ unit tests (MUXNET_KQUEUE_MODEL), a model of its BSD semantics
// (native/test/kqueue_model.h), so the backend's logic is tested where no kqueue exists.
#ifndef MUXNET_CORE_KQUEUE_API_H_
#define MUXNET_CORE_KQUEUE_API_H_

#if defined(MUXNET_KQUEUE_MODEL)
#include "../test/kqueue_model.h"
#else
#include <sys/event.h>
#include <sys/types.h>
#include <unistd.h>

namespace muxnet {
inline int CloseKqueue(int kq) { return close(kq); }
}  // namespace muxnet
#endif

#endif  // MUXNET_CORE_KQUEUE_API_H_
