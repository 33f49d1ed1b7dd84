// Waiter: see waiter.h.
#include "waiter.h"

#include <cerrno>
#include <chrono>

#include "loop.h"
#include "socket.h"

namespace muxnet {

namespace {
// epoll_wait/poll/select fill at most this many events per wait.
constexpr int kMaxEvents = 1024;
// A wait that keeps failing (it should not: descriptors leave the backend before they
// close) is retried every 10 ms for about a second, then the helper gives up and the loop
// fails every handle with the error instead of hanging them silently.
constexpr int kMaxWaitFailures = 100;
constexpr auto kWaitRetry = std::chrono::milliseconds(10);
}  // namespace

Waiter::~Waiter() {
  if (!helper_.joinable()) return;
  {
    std::lock_guard<std::mutex> lock(mu_);
    stop_ = true;
  }
  cv_.notify_all();
  poller_->Wake();
  helper_.join();
}

int Waiter::Start(bool threaded) {
  threaded_ = threaded;
  if (threaded_) helper_ = std::thread([this] { HelperMain(); });
  return 0;
}

int Waiter::Apply(const Change& c) {
  if (!threaded_) {
    if (c.interest == 0) return poller_->Remove(c.fd);
    return c.add ? poller_->Add(c.fd, c.token, c.interest)
                 : poller_->Modify(c.fd, c.token, c.interest);
  }
  bool wake = false;
  {
    std::lock_guard<std::mutex> lock(mu_);
    staged_.push_back(c);
    // The helper only needs a kick when it is blocked in Wait(); while the loop thread
    // processes a batch the helper is parked and applies the changes before waiting.
    if (helper_waiting_ && !wake_pending_) wake = wake_pending_ = true;
  }
  if (wake) poller_->Wake();
  return 0;
}

void Waiter::CloseFd(int fd, bool registered) {
  if (!threaded_) {
    if (registered) poller_->Remove(fd);
    Close(fd);
    return;
  }
  std::unique_lock<std::mutex> lock(mu_);
  // The helper touches the poller only while it holds mu_ or while helper_waiting_ is
  // set; get it out of Wait() (a wake-up) and keep it out until the fd is removed.
  poller_users_++;
  while (helper_waiting_) {
    if (!wake_pending_) {
      wake_pending_ = true;
      poller_->Wake();
    }
    cv_.wait(lock);
  }
  ApplyStagedLocked();
  poller_->Remove(fd);  // -ENOENT when it was not watched
  Close(fd);
  poller_users_--;
  lock.unlock();
  cv_.notify_all();
}

bool Waiter::Take(std::vector<PollEvent>* events, std::vector<Failure>* failures, int* fatal) {
  std::lock_guard<std::mutex> lock(mu_);
  if (!batch_ready_) return false;
  events->swap(ready_);
  failures->swap(failures_);
  *fatal = fatal_;
  return true;
}

void Waiter::Done(std::vector<PollEvent>* events) {
  {
    std::lock_guard<std::mutex> lock(mu_);
    events->clear();
    ready_.swap(*events);  // hand the capacity back: no allocation per batch
    batch_ready_ = false;
  }
  cv_.notify_all();
}

void Waiter::ApplyStagedLocked() {
  for (const Change& c : staged_) {
    int err = c.interest == 0 ? poller_->Remove(c.fd)
              : c.add         ? poller_->Add(c.fd, c.token, c.interest)
                              : poller_->Modify(c.fd, c.token, c.interest);
    // A removal of a number that is not watched has nothing to undo; anything else
    // (ENOMEM, ENOSPC) leaves a handle waiting for events that will never come.
    if (err != 0 && !(c.interest == 0 && err == -ENOENT)) failures_.push_back(Failure{c.token, err, c.add});
  }
  staged_.clear();
}

void Waiter::HelperMain() {
  std::vector<PollEvent> events(kMaxEvents);
  int failures = 0;
  std::unique_lock<std::mutex> lock(mu_);
  while (!stop_) {
    // The loop thread is closing a descriptor: let it use the poller first.
    cv_.wait(lock, [this] { return poller_users_ == 0 || stop_; });
    if (stop_) break;
    ApplyStagedLocked();
    // A refused change must reach the loop thread now: waiting for the next event would
    // hang it when the refused registration was the only one that could fire.
    const int timeout_ms = failures_.empty() ? -1 : 0;
    helper_waiting_ = true;
    lock.unlock();
    int n = poller_->Wait(timeout_ms, events.data(), kMaxEvents);
    lock.lock();
    helper_waiting_ = false;
    wake_pending_ = false;  // any return consumed the waker's wake-up
    cv_.notify_all();
    if (stop_) break;
    if (n < 0 && ++failures < kMaxWaitFailures) {
      cv_.wait_for(lock, kWaitRetry);
      continue;
    }
    if (n < 0) dead_ = fatal_ = n;
    failures = 0;
    if (n == 0 && failures_.empty()) continue;
    ready_.assign(events.begin(), events.begin() + (n > 0 ? n : 0));
    batch_ready_ = true;
    lock.unlock();
    host_->WakeFromHelper();
    lock.lock();
    if (fatal_ != 0) break;
    // Parked until the loop thread has processed the batch, so level-triggered readiness
    // is not reported twice, and interest changes made meanwhile need no wake-up.
    cv_.wait(lock, [this] { return !batch_ready_ || stop_; });
  }
}

}  // namespace muxnet
