// Waiting for readiness: inline (the loop thread polls the backend with a zero timeout when
// Node's loop says its descriptor is readable), or on a helper thread that only waits and
// hands each ready set to the loop thread in one batch (select and poll, or epoll on
// request). Socket state never leaves the loop thread.
#ifndef MUXNET_CORE_WAITER_H_
#define MUXNET_CORE_WAITER_H_

#include <atomic>
#include <condition_variable>
#include <mutex>
#include <thread>
#include <vector>

#include "poller.h"

namespace muxnet {

class LoopHost;

class Waiter {
 public:
  // One interest change; interest 0 removes the registration.
  struct Change {
    int fd;
    Token token;
    uint32_t interest;
    bool add;
  };
  // A change the backend refused on the helper thread, reported back to the loop thread.
  struct Failure {
    Token token;
    int err;
    bool add;  // the registration itself failed: the fd is not watched
  };

  Waiter(Poller* poller, LoopHost* host) : poller_(poller), host_(host) {}
  // Stops the helper thread.
  ~Waiter();

  // 0 or -errno. Threaded: starts the helper.
  int Start(bool threaded);
  bool threaded() const { return threaded_; }

  // Inline: applies the change and returns the backend's answer. Threaded: stages it for
  // the helper and returns 0; a refusal comes back from Take() as a Failure.
  int Apply(const Change& change);
  // Deregisters fd (when registered) and closes it, never racing a wait that watches it:
  // the number may be reused at once, and no backend may watch someone else's socket.
  void CloseFd(int fd, bool registered);

  // Inline: one wait with a zero timeout.
  int Poll(PollEvent* events, int max) { return poller_->Wait(0, events, max); }
  // Threaded: takes the helper's batch into *events (false when there is none). *fatal is
  // the wait's errno once the helper has given up (the backend keeps failing), else 0.
  bool Take(std::vector<PollEvent>* events, std::vector<Failure>* failures, int* fatal);
  // Threaded: hands the batch's memory back and lets the helper wait again.
  void Done(std::vector<PollEvent>* events);
  // The wait's errno once the helper has given up (nothing will be reported again), else 0.
  int dead() const { return dead_.load(std::memory_order_relaxed); }

 private:
  void HelperMain();
  void ApplyStagedLocked();  // mu_ held, helper out of Wait()

  Poller* poller_;
  LoopHost* host_;
  bool threaded_ = false;

  // Threaded mode: the helper waits; everything else happens on the loop thread.
  std::thread helper_;
  std::mutex mu_;
  std::condition_variable cv_;
  std::vector<Change> staged_;     // interest changes for the helper to apply
  std::vector<Failure> failures_;  // changes it could not apply
  std::vector<PollEvent> ready_;   // the helper's batch
  int fatal_ = 0;
  std::atomic<int> dead_{0};  // fatal_, readable without mu_ (the loop checks it per change)
  bool batch_ready_ = false;
  bool helper_waiting_ = false;
  bool wake_pending_ = false;
  bool stop_ = false;
  int poller_users_ = 0;  // loop-thread callers waiting to use the poller directly
};

}  // namespace muxnet

#endif  // MUXNET_CORE_WAITER_H_
