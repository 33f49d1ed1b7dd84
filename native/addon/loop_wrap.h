// Binds one core Loop to Node: its events reach JS in batches through a shared Int32Array,
// its poller is watched from Node's own libuv loop, and its methods are JS functions.
#ifndef MUXNET_ADDON_LOOP_WRAP_H_
#define MUXNET_ADDON_LOOP_WRAP_H_

#include <napi.h>
#include <uv.h>

#include <memory>
#include <vector>

#include "../core/loop.h"

namespace muxnet {

class LoopWrap final : public LoopHost {
 public:
  // createLoop({ backend, edge, threaded }, batch: Int32Array, scratch: Int32Array,
  //            onBatch: (count) => void) -> an object of bound methods.
  static Napi::Value Create(const Napi::CallbackInfo& info);

  void DeliverBatch(int count) override;
  void ReleaseToken(void* token) override;
  char* AllocateSlab(int slab) override;
  void ArmTimer(int64_t delay_ms) override;
  void SetActive(bool active) override;
  void WakeFromHelper() override;

 private:
  LoopWrap(napi_env env, uv_loop_t* uv_loop);
  int Start(const LoopOptions& options, Event* batch, int capacity);
  Napi::Object Methods(Napi::Env env);
  static void Cleanup(napi_async_cleanup_hook_handle handle, void* arg);
  static void OnHandleClosed(uv_handle_t* handle);

  napi_env env_;
  uv_loop_t* uv_loop_;
  std::unique_ptr<Loop> loop_;
  Napi::Reference<Napi::Int32Array> batch_;
  Napi::Reference<Napi::Int32Array> scratch_ref_;
  int32_t* scratch_ = nullptr;
  Napi::FunctionReference on_batch_;
  napi_async_context async_context_ = nullptr;
  std::vector<napi_ref> slabs_;
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
