// A backend wrapper for tests: delegates to a real backend, and on demand refuses interest
// changes, fails waits, or reports injected events (a stale token) instead of waiting.
#ifndef MUXNET_TEST_FAULT_POLLER_H_
#define MUXNET_TEST_FAULT_POLLER_H_

#include <atomic>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <vector>

#include "../core/poller.h"

namespace muxtest {

// Shared between the test and the loop that owns the FaultPoller (which may call it from
// its helper thread): every field is atomic or under mu.
struct Faults {
  std::atomic<int> fail_interest{0};  // -errno for Add and Modify (0: pass through)
  std::atomic<int> fail_wait{0};      // -errno for Wait (0: pass through)
  std::atomic<int> refused{0};        // Add/Modify calls refused so far
  std::atomic<int> changes{0};        // Add/Modify/Remove calls that reached the backend
  std::atomic<int> injected_waits{0};  // waits that returned injected events
  std::mutex mu;
  std::map<int, muxnet::Token> token_of;  // fd -> token of its last Add/Modify
  std::vector<muxnet::PollEvent> inject;  // the next Wait returns these and nothing else

  std::atomic<muxnet::Poller*> poller{nullptr};  // the FaultPoller, once made

  // The next Wait returns e (and nothing else); a helper blocked in a wait is woken for it.
  void Inject(muxnet::PollEvent e) {
    {
      std::lock_guard<std::mutex> lock(mu);
      inject.push_back(e);
    }
    if (muxnet::Poller* p = poller.load()) p->Wake();
  }
  // Sets fail_wait and wakes a helper blocked in a wait, so the next one fails.
  void FailWaits(int err) {
    fail_wait = err;
    if (muxnet::Poller* p = poller.load()) p->Wake();
  }

  muxnet::Token TokenOf(int fd) {
    std::lock_guard<std::mutex> lock(mu);
    auto it = token_of.find(fd);
    return it == token_of.end() ? 0 : it->second;
  }
};

// A backend that passes every call to another: the base of test wrappers, which override
// only what they watch or change.
class ForwardingPoller : public muxnet::Poller {
 public:
  explicit ForwardingPoller(std::unique_ptr<muxnet::Poller> inner) : inner_(std::move(inner)) {}
  const char* Name() const override { return inner_->Name(); }
  muxnet::PollerCaps Caps() const override { return inner_->Caps(); }
  int Add(int fd, muxnet::Token token, uint32_t interest) override { return inner_->Add(fd, token, interest); }
  int Modify(int fd, muxnet::Token token, uint32_t interest) override { return inner_->Modify(fd, token, interest); }
  int Remove(int fd) override { return inner_->Remove(fd); }
  int Wait(int timeout_ms, muxnet::PollEvent* events, int max) override { return inner_->Wait(timeout_ms, events, max); }
  void Wake() override { inner_->Wake(); }
  int PollableFd() const override { return inner_->PollableFd(); }
  void Defer(bool on) override { inner_->Defer(on); }
  int ProvideChunk(int chunk, char* data, size_t len) override { return inner_->ProvideChunk(chunk, data, len); }
  int ProvidedChunks() const override { return inner_->ProvidedChunks(); }
  int ChunkCapacity() const override { return inner_->ChunkCapacity(); }
  int Receive(int fd, muxnet::Token token, bool multishot, uint32_t limit) override {
    return inner_->Receive(fd, token, multishot, limit);
  }
  int CancelReceive(muxnet::Token token) override { return inner_->CancelReceive(token); }
  int Accept(int fd, muxnet::Token token) override { return inner_->Accept(fd, token); }
  int CancelAccept(muxnet::Token token) override { return inner_->CancelAccept(token); }
  int Send(int fd, muxnet::Token token, const iovec* iov, int count) override {
    return inner_->Send(fd, token, iov, count);
  }
  int CancelSend(muxnet::Token token) override { return inner_->CancelSend(token); }
  int Connect(int fd, muxnet::Token token, const void* addr, uint32_t len) override {
    return inner_->Connect(fd, token, addr, len);
  }
  int CancelConnect(muxnet::Token token) override { return inner_->CancelConnect(token); }

 protected:
  std::unique_ptr<muxnet::Poller> inner_;
};

class FaultPoller final : public ForwardingPoller {
 public:
  FaultPoller(std::unique_ptr<muxnet::Poller> inner, std::shared_ptr<Faults> faults)
      : ForwardingPoller(std::move(inner)), faults_(std::move(faults)) {
    faults_->poller = this;
  }
  ~FaultPoller() override { faults_->poller = nullptr; }

  int Add(int fd, muxnet::Token token, uint32_t interest) override {
    if (int err = Refusal()) return err;
    faults_->changes++;
    int rc = inner_->Add(fd, token, interest);
    if (rc == 0) Remember(fd, token);
    return rc;
  }
  int Modify(int fd, muxnet::Token token, uint32_t interest) override {
    if (int err = Refusal()) return err;
    faults_->changes++;
    int rc = inner_->Modify(fd, token, interest);
    if (rc == 0) Remember(fd, token);
    return rc;
  }
  int Remove(int fd) override {
    faults_->changes++;
    return inner_->Remove(fd);
  }
  int Wait(int timeout_ms, muxnet::PollEvent* events, int max) override {
    if (int err = faults_->fail_wait.load()) return err;
    {
      std::lock_guard<std::mutex> lock(faults_->mu);
      if (!faults_->inject.empty()) {
        int n = 0;
        for (const auto& e : faults_->inject)
          if (n < max) events[n++] = e;
        faults_->inject.clear();
        faults_->injected_waits++;
        return n;
      }
    }
    return inner_->Wait(timeout_ms, events, max);
  }

  // A LoopOptions::make_poller that wraps the backend `name` with `faults`.
  static std::function<int(std::unique_ptr<muxnet::Poller>*)> Factory(
      std::string name, std::shared_ptr<Faults> faults) {
    return [name, faults](std::unique_ptr<muxnet::Poller>* out) {
      std::unique_ptr<muxnet::Poller> inner;
      int err = muxnet::CreatePoller(name, &inner);
      if (err != 0) return err;
      *out = std::make_unique<FaultPoller>(std::move(inner), faults);
      return 0;
    };
  }

 private:
  int Refusal() {
    int err = faults_->fail_interest.load();
    if (err != 0) faults_->refused++;
    return err;
  }
  void Remember(int fd, muxnet::Token token) {
    std::lock_guard<std::mutex> lock(faults_->mu);
    faults_->token_of[fd] = token;
  }

  std::shared_ptr<Faults> faults_;
};

}  // namespace muxtest

#endif  // MUXNET_TEST_FAULT_POLLER_H_
