// Module entry: one instance per Node environment (main thread or worker).
#include <napi.h>

#include "../core/poller.h"
#include "loop_wrap.h"

namespace muxnet {

class MuxnetAddon : public Napi::Addon<MuxnetAddon> {
 public:
  MuxnetAddon(Napi::Env env, Napi::Object exports) {
    DefineAddon(exports, {
        InstanceMethod("backends", &MuxnetAddon::Backends),
        InstanceMethod("createLoop", &MuxnetAddon::CreateLoop),
    });
  }

 private:
  // The backends compiled into this build, default first.
  Napi::Value Backends(const Napi::CallbackInfo& info) {
    const auto& names = AvailableBackends();
    Napi::Array out = Napi::Array::New(info.Env(), names.size());
    for (size_t i = 0; i < names.size(); i++) out.Set(i, Napi::String::New(info.Env(), names[i]));
    return out;
  }

  Napi::Value CreateLoop(const Napi::CallbackInfo& info) { return LoopWrap::Create(info); }
};

}  // namespace muxnet

using muxnet::MuxnetAddon;
NODE_API_ADDON(MuxnetAddon)
