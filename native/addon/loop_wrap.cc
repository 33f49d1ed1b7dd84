// LoopWrap: see loop_wrap.h. Every method returns a number: >= 0 on success, -errno on
// failure; lib/ turns errnos into errors, so the hot path never builds an exception.
#include "loop_wrap.h"

#include <cerrno>
#include <string>

namespace muxnet {

namespace {

constexpr int kEventInts = sizeof(Event) / sizeof(int32_t);

enum Option : int32_t {
  kOptNoDelay = 1,
  kOptKeepAlive = 2,
  kOptLinger = 3,
  kOptReadBuffer = 4,
  kOptWriteBuffer = 5,
};

int32_t Int(const Napi::CallbackInfo& info, size_t i) {
  return info[i].As<Napi::Number>().Int32Value();
}

struct WriteContext {
  napi_env env;
  napi_value value;
};

void* MakeWriteToken(void* context) {
  auto* c = static_cast<WriteContext*>(context);
  napi_ref ref = nullptr;
  napi_create_reference(c->env, c->value, 1, &ref);
  return ref;
}

}  // namespace

// The JS-visible methods of one loop; info.Data() is the LoopWrap.
struct LoopMethods {
  static LoopWrap* Self(const Napi::CallbackInfo& info) {
    return static_cast<LoopWrap*>(info.Data());
  }
  static Napi::Number Num(const Napi::CallbackInfo& info, double v) {
    return Napi::Number::New(info.Env(), v);
  }

  static Napi::Value Listen(const Napi::CallbackInfo& info) {
    LoopWrap* w = Self(info);
    SockAddr addr;
    int err = SockAddr::FromIp(info[0].As<Napi::String>().Utf8Value(), Int(info, 1), &addr);
    if (err != 0) return Num(info, err);
    ListenOptions options;
    options.backlog = Int(info, 2);
    options.reuse_addr = info[3].ToBoolean();
    options.reuse_port = info[4].ToBoolean();
    options.ipv6_only = info[5].ToBoolean();
    int id;
    err = w->loop_->Listen(addr, options, &id);
    return Num(info, err != 0 ? err : id);
  }

  static Napi::Value Connect(const Napi::CallbackInfo& info) {
    LoopWrap* w = Self(info);
    SockAddr addr;
    int err = SockAddr::FromIp(info[0].As<Napi::String>().Utf8Value(), Int(info, 1), &addr);
    if (err != 0) return Num(info, err);
    int id = -1;
    err = w->loop_->Connect(addr, &id);
    w->scratch_[0] = id;
    return Num(info, err);
  }

  static Napi::Value SetAccepting(const Napi::CallbackInfo& info) {
    return Num(info, Self(info)->loop_->SetAccepting(Int(info, 0), info[1].ToBoolean()));
  }

  static Napi::Value SetNativeEcho(const Napi::CallbackInfo& info) {
    return Num(info, Self(info)->loop_->SetNativeEcho(Int(info, 0)));
  }

  static Napi::Value Read(const Napi::CallbackInfo& info) {
    void* data = nullptr;
    size_t length = 0;
    napi_typedarray_type type;
    if (napi_get_typedarray_info(info.Env(), info[1], &type, &length, &data, nullptr,
                                 nullptr) != napi_ok ||
        type != napi_uint8_array) {
      return Num(info, -EINVAL);
    }
    return Num(info, static_cast<double>(Self(info)->loop_->Read(Int(info, 0), data, length)));
  }

  static Napi::Value WantRead(const Napi::CallbackInfo& info) {
    return Num(info, Self(info)->loop_->WantRead(Int(info, 0), info[1].ToBoolean()));
  }

  static Napi::Value PauseRead(const Napi::CallbackInfo& info) {
    return Num(info, Self(info)->loop_->PauseRead(Int(info, 0)));
  }

  static Napi::Value ReadChunk(const Napi::CallbackInfo& info) {
    LoopWrap* w = Self(info);
    int chunk = -1;
    ssize_t n = w->loop_->ReadChunk(Int(info, 0), &chunk);
    w->scratch_[0] = chunk;
    return Num(info, static_cast<double>(n));
  }

  static Napi::Value ReleaseChunk(const Napi::CallbackInfo& info) {
    LoopWrap* w = Self(info);
    int chunk = Int(info, 0);
    BufferPool* pool = w->loop_->pool();
    if (chunk < 0 || chunk >= pool->slabs() * BufferPool::kChunksPerSlab) return Num(info, -EINVAL);
    pool->Release(chunk);
    return Num(info, 0);
  }

  static Napi::Value Slab(const Napi::CallbackInfo& info) {
    LoopWrap* w = Self(info);
    int slab = Int(info, 0);
    if (slab < 0 || slab >= static_cast<int>(w->slabs_.size())) return info.Env().Undefined();
    napi_value value;
    napi_get_reference_value(info.Env(), w->slabs_[slab], &value);
    return Napi::Value(info.Env(), value);
  }

  static Napi::Value Write(const Napi::CallbackInfo& info) {
    void* data = nullptr;
    size_t length = 0;
    napi_typedarray_type type;
    if (napi_get_typedarray_info(info.Env(), info[1], &type, &length, &data, nullptr,
                                 nullptr) != napi_ok ||
        type != napi_uint8_array) {
      return Num(info, -EINVAL);
    }
    WriteContext context{info.Env(), info[1]};
    double limit = info[2].As<Napi::Number>().DoubleValue();
    int r = Self(info)->loop_->Write(Int(info, 0), static_cast<const char*>(data), length,
                                     static_cast<size_t>(limit), MakeWriteToken, &context);
    return Num(info, r);
  }

  static Napi::Value CancelWrites(const Napi::CallbackInfo& info) {
    return Num(info, Self(info)->loop_->CancelWrites(Int(info, 0)));
  }

  static Napi::Value Shutdown(const Napi::CallbackInfo& info) {
    return Num(info, Self(info)->loop_->ShutdownWrite(Int(info, 0)));
  }

  static Napi::Value Close(const Napi::CallbackInfo& info) {
    return Num(info, Self(info)->loop_->Close(Int(info, 0)));
  }

  static Napi::Value SetDeadline(const Napi::CallbackInfo& info) {
    int64_t delay = info[2].As<Napi::Number>().Int64Value();
    return Num(info, Self(info)->loop_->SetDeadline(Int(info, 0), Int(info, 1), delay, Int(info, 3)));
  }

  // addr(id, peer) -> [ip, port] or -errno.
  static Napi::Value Addr(const Napi::CallbackInfo& info) {
    int fd = Self(info)->loop_->Fd(Int(info, 0));
    if (fd < 0) return Num(info, fd);
    SockAddr addr;
    int err = info[1].ToBoolean() ? PeerAddr(fd, &addr) : LocalAddr(fd, &addr);
    if (err != 0) return Num(info, err);
    Napi::Array out = Napi::Array::New(info.Env(), 2);
    out.Set(0u, Napi::String::New(info.Env(), addr.Ip()));
    out.Set(1u, Napi::Number::New(info.Env(), addr.Port()));
    return out;
  }

  // setOption(id, option, a, b, c, d) -> 0 or -errno.
  static Napi::Value SetOption(const Napi::CallbackInfo& info) {
    int fd = Self(info)->loop_->Fd(Int(info, 0));
    if (fd < 0) return Num(info, fd);
    int a = Int(info, 2);
    switch (Int(info, 1)) {
      case kOptNoDelay: return Num(info, SetNoDelay(fd, a != 0));
      case kOptKeepAlive:
        return Num(info, SetKeepAlive(fd, a != 0, Int(info, 3), Int(info, 4), Int(info, 5)));
      case kOptLinger: return Num(info, SetLinger(fd, a));
      case kOptReadBuffer: return Num(info, SetBufferSize(fd, true, a));
      case kOptWriteBuffer: return Num(info, SetBufferSize(fd, false, a));
      default: return Num(info, -EINVAL);
    }
  }
};

LoopWrap::LoopWrap(napi_env env, uv_loop_t* uv_loop) : env_(env), uv_loop_(uv_loop) {}

Napi::Value LoopWrap::Create(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  Napi::Object opts = info[0].As<Napi::Object>();
  LoopOptions options;
  options.backend = opts.Get("backend").As<Napi::String>().Utf8Value();
  options.edge_triggered = opts.Get("edge").ToBoolean();
  options.threaded = opts.Get("threaded").ToBoolean();
  Napi::Int32Array batch = info[1].As<Napi::Int32Array>();
  Napi::Int32Array scratch = info[2].As<Napi::Int32Array>();
  uv_loop_t* uv_loop = nullptr;
  // Never uv_default_loop(): each worker thread has a loop of its own.
  if (napi_get_uv_event_loop(env, &uv_loop) != napi_ok) {
    Napi::Error::New(env, "muxnet: cannot get the event loop of this thread")
        .ThrowAsJavaScriptException();
    return env.Undefined();
  }
  auto* w = new LoopWrap(env, uv_loop);
  w->batch_ = Napi::Persistent(batch);
  w->scratch_ref_ = Napi::Persistent(scratch);
  w->scratch_ = scratch.Data();
  w->on_batch_ = Napi::Persistent(info[3].As<Napi::Function>());
  napi_value resource_name = Napi::String::New(env, "muxnet:loop");
  napi_async_init(env, nullptr, resource_name, &w->async_context_);
  int err = w->Start(options, reinterpret_cast<Event*>(batch.Data()),
                     static_cast<int>(batch.ElementLength() / kEventInts));
  if (err != 0) {
    // Nothing was started: no uv handle exists yet, so the wrap can go at once.
    napi_async_destroy(env, w->async_context_);
    delete w;
    return Napi::Number::New(env, err);
  }
  napi_add_async_cleanup_hook(env, Cleanup, w, &w->cleanup_);
  return w->Methods(env);
}

int LoopWrap::Start(const LoopOptions& options, Event* batch, int capacity) {
  loop_ = std::make_unique<Loop>(this, batch, capacity);
  int err = loop_->Init(options);
  if (err != 0) {
    loop_.reset();
    return err;
  }
  uv_timer_init(uv_loop_, &timer_);
  timer_.data = this;
  uv_unref(reinterpret_cast<uv_handle_t*>(&timer_));
  open_uv_handles_++;
  if (loop_->threaded()) {
    uv_async_init(uv_loop_, &async_, [](uv_async_t* a) {
      static_cast<LoopWrap*>(a->data)->loop_->RunReady();
    });
    async_.data = this;
    uv_unref(reinterpret_cast<uv_handle_t*>(&async_));
  } else {
    inline_ = true;
    uv_poll_init(uv_loop_, &poll_, loop_->PollableFd());
    poll_.data = this;
    uv_poll_start(&poll_, UV_READABLE, [](uv_poll_t* p, int status, int events) {
      static_cast<LoopWrap*>(p->data)->loop_->RunInline();
    });
    uv_unref(reinterpret_cast<uv_handle_t*>(&poll_));
  }
  open_uv_handles_++;
  return 0;
}

Napi::Object LoopWrap::Methods(Napi::Env env) {
  Napi::Object o = Napi::Object::New(env);
  auto add = [&](const char* name, Napi::Function::Callback fn) {
    o.Set(name, Napi::Function::New(env, fn, name, this));
  };
  add("listen", LoopMethods::Listen);
  add("connect", LoopMethods::Connect);
  add("setAccepting", LoopMethods::SetAccepting);
  add("setNativeEcho", LoopMethods::SetNativeEcho);
  add("read", LoopMethods::Read);
  add("wantRead", LoopMethods::WantRead);
  add("pauseRead", LoopMethods::PauseRead);
  add("readChunk", LoopMethods::ReadChunk);
  add("releaseChunk", LoopMethods::ReleaseChunk);
  add("slab", LoopMethods::Slab);
  add("write", LoopMethods::Write);
  add("cancelWrites", LoopMethods::CancelWrites);
  add("shutdown", LoopMethods::Shutdown);
  add("close", LoopMethods::Close);
  add("setDeadline", LoopMethods::SetDeadline);
  add("addr", LoopMethods::Addr);
  add("setOption", LoopMethods::SetOption);
  o.Set("backend", Napi::String::New(env, loop_->BackendName()));
  o.Set("threaded", Napi::Boolean::New(env, loop_->threaded()));
  o.Set("edge", Napi::Boolean::New(env, loop_->edge_triggered()));
  o.Set("chunkSize", Napi::Number::New(env, BufferPool::kChunkSize));
  o.Set("chunksPerSlab", Napi::Number::New(env, BufferPool::kChunksPerSlab));
  return o;
}

void LoopWrap::DeliverBatch(int count) {
  Napi::Env env(env_);
  Napi::HandleScope scope(env);
  napi_value argv[1] = {Napi::Number::New(env, count)};
  napi_value result;
  napi_value recv;  // napi_make_callback wants an object as `this`
  napi_get_global(env_, &recv);
  // One call per batch, as a top-level callback: microtasks (promise reactions) run when
  // it returns, before the next batch.
  napi_status status =
      napi_make_callback(env_, async_context_, recv, on_batch_.Value(), 1, argv, &result);
  if (status == napi_pending_exception) {
    napi_value error;
    napi_get_and_clear_last_exception(env_, &error);
    napi_fatal_exception(env_, error);
  }
}

void LoopWrap::ReleaseToken(void* token) {
  napi_delete_reference(env_, static_cast<napi_ref>(token));
}

char* LoopWrap::AllocateSlab(int slab) {
  Napi::HandleScope scope(Napi::Env{env_});
  void* data = nullptr;
  napi_value buffer;
  if (napi_create_arraybuffer(env_, BufferPool::kSlabSize, &data, &buffer) != napi_ok) {
    return nullptr;
  }
  // An ordinary (not external) ArrayBuffer: its memory never moves, and runtimes that
  // forbid external buffers (Electron) accept it, so no copying fallback is needed.
  napi_ref ref;
  napi_create_reference(env_, buffer, 1, &ref);
  if (static_cast<int>(slabs_.size()) <= slab) slabs_.resize(slab + 1, nullptr);
  slabs_[slab] = ref;
  return static_cast<char*>(data);
}

void LoopWrap::ArmTimer(int64_t delay_ms) {
  if (delay_ms < 0) {
    uv_timer_stop(&timer_);
    return;
  }
  uv_timer_start(&timer_, [](uv_timer_t* t) {
    static_cast<LoopWrap*>(t->data)->loop_->RunTimers();
  }, static_cast<uint64_t>(delay_ms), 0);
}

void LoopWrap::SetActive(bool active) {
  // Like Node's sockets: the process stays alive while the loop has an open socket.
  auto* handle = inline_ ? reinterpret_cast<uv_handle_t*>(&poll_)
                         : reinterpret_cast<uv_handle_t*>(&async_);
  if (active) uv_ref(handle); else uv_unref(handle);
}

void LoopWrap::WakeFromHelper() { uv_async_send(&async_); }

void LoopWrap::Cleanup(napi_async_cleanup_hook_handle, void* arg) {
  auto* w = static_cast<LoopWrap*>(arg);
  // The environment is going away (worker exit or process exit): close every socket, stop
  // the helper thread, then close the uv handles; the wrap is freed when they are closed.
  if (w->inline_) uv_poll_stop(&w->poll_);
  w->loop_.reset();
  for (napi_ref ref : w->slabs_) {
    if (ref != nullptr) napi_delete_reference(w->env_, ref);
  }
  w->slabs_.clear();
  w->batch_.Reset();
  w->scratch_ref_.Reset();
  w->on_batch_.Reset();
  napi_async_destroy(w->env_, w->async_context_);
  uv_close(reinterpret_cast<uv_handle_t*>(&w->timer_), OnHandleClosed);
  uv_close(w->inline_ ? reinterpret_cast<uv_handle_t*>(&w->poll_)
                      : reinterpret_cast<uv_handle_t*>(&w->async_),
           OnHandleClosed);
}

void LoopWrap::OnHandleClosed(uv_handle_t* handle) {
  auto* w = static_cast<LoopWrap*>(handle->data);
  if (--w->open_uv_handles_ > 0) return;
  napi_remove_async_cleanup_hook(w->cleanup_);
  delete w;
}

}  // namespace muxnet
