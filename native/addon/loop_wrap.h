// Binds one core Loop to Node: its events reach JS in batches through a shared Int32Array,
// operations made during a batch reach it in one submit() through another, its poller is
// watched from Node's own libuv loop, and its methods are JS functions.
#ifndef MUXNET_ADDON_LOOP_WRAP_H_
#define MUXNET_ADDON_LOOP_WRAP_H_

#include <node_api.h>
#include <uv.h>

#include <memory>
#include <vector>

#include "native_echo.h"
#include "../core/loop.h"

namespace muxnet {

// What submit() does with each [op, id, arg, result] entry of the shared ops array.
enum SubmitOp : int32_t {
  kOpWrite = 1,     // arg = queue limit; the buffer in opBuffers[i]; result as Loop::Write
  kOpRead = 2,      // arg = ReadMode (the buffer for kReadBuffer); result as ReadStart, arg = chunk
  kOpReadStop = 3,  // result 0 or -errno
};

// Raw Node-API throughout: a failing call returns a status here, whereas node-addon-api
// (built without C++ exceptions) aborts the process when a call fails while a worker
// terminates.
class LoopWrap final : public LoopHost {
 public:
  // createLoop({ backend, edge, threaded }, batch: Int32Array, ops: Int32Array,
  //            opBuffers: unknown[], releases: Int32Array, onBatch: (count) => void)
  // -> an object of methods, or -errno. See lib/native.ts for each array's layout.
  static napi_value Create(napi_env env, napi_callback_info info);

  void DeliverBatch(int count) override;
  void ReleaseToken(void* token) override;
  bool ResolveBuffer(void* token, char** data, size_t* len) override;
  char* AllocateSlab(int slab) override;
  void ReturnChunks() override;
  void ArmTimer(int64_t delay_ms) override;
  void SetActive(bool active) override;
  void WakeFromHelper() override;

  napi_env env() const { return env_; }
  Loop* loop() const { return loop_.get(); }

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
  napi_ref batch_ref_ = nullptr;     // keeps the shared event array alive
  napi_ref ops_ref_ = nullptr;       // submit(): [op, id, arg, result] per operation
  napi_ref op_buffers_ref_ = nullptr;  // submit(): the buffer of each operation
  napi_ref releases_ref_ = nullptr;  // [count, chunk...]: chunks JS let go of
  int32_t* ops_ = nullptr;
  size_t ops_len_ = 0;
  int32_t* releases_ = nullptr;
  size_t releases_len_ = 0;
  napi_ref on_batch_ = nullptr;
  napi_async_context async_context_ = nullptr;
  std::vector<napi_ref> slabs_;
  std::vector<Datagram> datagrams_;  // recvMany/sendMany messages
  std::unique_ptr<NativeEcho> echo_, discard_;  // the benchmark's native floors
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
