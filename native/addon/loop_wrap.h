// Binds one core Loop to Node: its events reach JS in batches through a shared Int32Array,
// its poller is watched from Node's own libuv loop, and its methods are JS functions.
#ifndef MUXNET_ADDON_LOOP_WRAP_H_
#define MUXNET_ADDON_LOOP_WRAP_H_

#include <node_api.h>
#include <uv.h>

#include <memory>
#include <vector>

#include "../core/loop.h"

namespace muxnet {

// Raw Node-API throughout: a failing call returns a status here, whereas node-addon-api
// (built without C++ exceptions) aborts the process when a call fails while a worker
// terminates.
class LoopWrap final : public LoopHost {
 public:
  // createLoop({ backend, edge, threaded }, batch: Int32Array, scratch: Int32Array,
  //            onBatch: (count) => void) -> an object of bound methods, or -errno.
  static napi_value Create(napi_env env, napi_callback_info info);

  void DeliverBatch(int count) override;
  void ReleaseToken(void* token) override;
  char* AllocateSlab(int slab) override;
  void ArmTimer(int64_t delay_ms) override;
  void SetActive(bool active) override;
  void WakeFromHelper() override;

 private:
  LoopWrap(napi_env env, uv_loop_t* uv_loop) : env_(env), uv_loop_(uv_loop) {}
  int Start(const LoopOptions& options, Event* batch, int capacity);
  napi_value Methods();
  void ReleaseRefs();
  static void Cleanup(napi_async_cleanup_hook_handle handle, void* arg);
  static void OnHandleClosed(uv_handle_t* handle);

  napi_env env_;
  uv_loop_t* uv_loop_;
  std::unique_ptr<Loop> loop_;
  napi_ref batch_ref_ = nullptr;    // keeps the shared event array alive
  napi_ref scratch_ref_ = nullptr;
  int32_t* scratch_ = nullptr;
  napi_ref on_batch_ = nullptr;
  napi_async_context async_context_ = nullptr;
  std::vector<napi_ref> slabs_;
  SockAddr last_from_;            // the sender of the last recvFrom
  std::vector<Datagram> batch_;   // recvMany/sendMany messages; senders kept for fromAddrs
  napi_async_cleanup_hook_handle cleanup_ = nullptr;
  uv_poll_t poll_{};
  uv_timer_t timer_{};
  uv_async_t async_{};
  bool inline_ = false;
  int open_uv_handles_ = 0;

  friend struct LoopMethods;
};

}  // namespace muxnet

#endif  // MUXNET_ADDON_LOOP_WRAP_H_
