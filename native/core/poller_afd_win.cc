// AFD polling backend on Windows: readiness from the socket driver itself, the technique of
// libuv's uv_poll, wepoll and mio. One handle to \Device\Afd, tied to an I/O completion port,
// carries an IOCTL_AFD_POLL per watched socket (on its base handle, from SIO_BASE_HANDLE);
// each poll completes once, into the port, and is submitted again at the next Wait() while
// the interest lasts, which makes readiness level-triggered as the loop expects. A poll asks
// for what the interest needs; when the interest grows past the poll in flight, the poll is
// cancelled (CancelIoEx) and submitted anew when its cancellation comes back.
// A completion port cannot be nested in Node's loop (no pollable fd): the loop waits on a
// helper thread, and Wake() posts a packet to the port.
// Readiness is the socket's state when the poll completed, not at Wait(): a byte read in
// between still shows once (the loop meets -EAGAIN and waits again), as with io_uring.
#ifdef _WIN32
#include "socket_platform.h"

#include <mswsock.h>   // SIO_BASE_HANDLE
#include <winternl.h>  // NtCreateFile, NtDeviceIoControlFile and their types

#include <algorithm>
#include <cerrno>
#include <climits>
#include <unordered_map>
#include <vector>

#include "poller.h"

namespace muxnet {
namespace {

// The AFD driver's poll request (not in the SDK: as ReactOS's afd headers and wepoll name it).
constexpr ULONG kIoctlAfdPoll = 0x00012024;
enum : ULONG {
  kAfdReceive = 0x0001,
  kAfdReceiveExpedited = 0x0002,
  kAfdSend = 0x0004,
  kAfdDisconnect = 0x0008,  // the peer shut down its side
  kAfdAbort = 0x0010,       // reset
  kAfdLocalClose = 0x0020,  // the socket was closed under the poll
  kAfdAccept = 0x0080,
  kAfdConnectFail = 0x0100,
};
struct AfdPollHandle {
  HANDLE handle;
  ULONG events;
  NTSTATUS status;
};
struct AfdPollInfo {
  LARGE_INTEGER timeout;
  ULONG count;  // in: handles asked about; out: handles that fired
  ULONG exclusive;
  AfdPollHandle handles[1];
};

constexpr NTSTATUS kStatusPending = 0x00000103;
constexpr ULONG_PTR kAfdKey = 0, kWakeKey = 1;  // completion keys

// ntdll's entry points, found at run time (no import library needed, as in libuv and wepoll).
struct Ntdll {
  decltype(&NtCreateFile) create_file = nullptr;
  decltype(&NtDeviceIoControlFile) device_io_control = nullptr;
};

const Ntdll& LoadNtdll() {
  static const Ntdll nt = [] {
    Ntdll n;
    HMODULE m = GetModuleHandleW(L"ntdll.dll");
    if (m == nullptr) return n;
    n.create_file = reinterpret_cast<decltype(&NtCreateFile)>(
        reinterpret_cast<void*>(GetProcAddress(m, "NtCreateFile")));
    n.device_io_control = reinterpret_cast<decltype(&NtDeviceIoControlFile)>(
        reinterpret_cast<void*>(GetProcAddress(m, "NtDeviceIoControlFile")));
    return n;
  }();
  return nt;
}

// What a poll asks AFD for. A reset, a local close and a failed connect are always asked
// for (epoll reports EPOLLERR and EPOLLHUP unasked); a peer's FIN only with read interest,
// as EPOLLRDHUP: to a writer it is no reason to wake (it would fire forever).
ULONG AfdEvents(uint32_t interest) {
  ULONG events = kAfdAbort | kAfdLocalClose | kAfdConnectFail;
  if (interest & kReadable) events |= kAfdReceive | kAfdReceiveExpedited | kAfdAccept | kAfdDisconnect;
  if (interest & kWritable) events |= kAfdSend;
  return events;
}

// A completed poll's events in the contract's terms, as epoll's are mapped. A failed
// connect is kWritable | kHangup, as select reports it: the loop then reads SO_ERROR.
uint32_t Fired(ULONG afd) {
  uint32_t fired = 0;
  if (afd & (kAfdReceive | kAfdReceiveExpedited | kAfdAccept)) fired |= kReadable;
  if (afd & kAfdDisconnect) fired |= kReadable | kReadHangup;
  if (afd & kAfdSend) fired |= kWritable;
  if (afd & (kAfdAbort | kAfdLocalClose)) fired |= kHangup;
  if (afd & kAfdConnectFail) fired |= kWritable | kHangup;
  return fired;
}

class AfdPoller final : public Poller {
 public:
  ~AfdPoller() override;
  int Init();

  const char* Name() const override { return "afd"; }
  PollerCaps Caps() const override { return PollerCaps{}; }
  void Wake() override { PostQueuedCompletionStatus(port_, 0, kWakeKey, nullptr); }

  int Add(int fd, Token token, uint32_t interest) override;
  int Modify(int fd, Token token, uint32_t interest) override;
  int Remove(int fd) override;
  int Wait(int timeout_ms, PollEvent* events, int max) override;

 private:
  // One watched socket. The kernel writes iosb and info while a poll is in flight, so a
  // removed socket lives on (in orphans_) until its cancelled poll has come back.
  struct Socket {
    IO_STATUS_BLOCK iosb;  // a completion's lpOverlapped points here
    AfdPollInfo info;
    HANDLE base;  // the provider's own socket, under any layered ones
    Token token;
    uint32_t interest;
    ULONG polling = 0;  // the events of the poll in flight; 0: none
    bool cancelled = false;  // its poll was cancelled: the result is stale
    bool queued = false;     // in arm_: a poll is (re)submitted at the next Wait()
    bool removed = false;
    uint64_t reported = 0;  // the Wait() that last reported it
  };

  void Queue(Socket* s);
  void Arm(PollEvent* events, int max, int* count);
  uint32_t Complete(Socket* s);

  HANDLE port_ = nullptr;
  HANDLE afd_ = INVALID_HANDLE_VALUE;
  std::unordered_map<int, std::unique_ptr<Socket>> sockets_;
  std::unordered_map<Socket*, std::unique_ptr<Socket>> orphans_;
  std::vector<Socket*> arm_;
  std::vector<OVERLAPPED_ENTRY> entries_;
  int in_flight_ = 0;
  uint64_t waits_ = 0;
};

int AfdPoller::Init() {
  const Ntdll& nt = LoadNtdll();
  if (nt.create_file == nullptr || nt.device_io_control == nullptr) return -ENOSYS;
  port_ = CreateIoCompletionPort(INVALID_HANDLE_VALUE, nullptr, 0, 1);
  if (port_ == nullptr) return -ENOMEM;
  // Any name under \Device\Afd opens the driver; the name only shows in handle listings.
  wchar_t path[] = L"\\Device\\Afd\\Muxnet";
  UNICODE_STRING name{static_cast<USHORT>(sizeof path - sizeof path[0]), static_cast<USHORT>(sizeof path), path};
  OBJECT_ATTRIBUTES attributes;
  InitializeObjectAttributes(&attributes, &name, 0, nullptr, nullptr);
  IO_STATUS_BLOCK iosb;
  NTSTATUS st = nt.create_file(&afd_, SYNCHRONIZE, &attributes, &iosb, nullptr, 0,
                               FILE_SHARE_READ | FILE_SHARE_WRITE, FILE_OPEN, 0, nullptr, 0);
  if (!NT_SUCCESS(st)) {
    afd_ = INVALID_HANDLE_VALUE;
    return -ENOSYS;
  }
  if (CreateIoCompletionPort(afd_, port_, kAfdKey, 0) == nullptr) return -ENOMEM;
  // Completions go to the port only: nobody waits on the handle itself.
  SetFileCompletionNotificationModes(afd_, FILE_SKIP_SET_EVENT_ON_HANDLE);
  return 0;
}

AfdPoller::~AfdPoller() {
  if (afd_ != INVALID_HANDLE_VALUE) {
    // Every poll in flight must come back before its memory goes: cancel them all and drain
    // the port. Should one never come back, its socket is leaked rather than freed under
    // the kernel.
    if (in_flight_ > 0) CancelIoEx(afd_, nullptr);
    OVERLAPPED_ENTRY entries[64];
    while (in_flight_ > 0) {
      ULONG n = 0;
      if (!GetQueuedCompletionStatusEx(port_, entries, 64, &n, 5000, FALSE)) break;
      for (ULONG i = 0; i < n; i++) {
        if (entries[i].lpCompletionKey != kAfdKey) continue;
        reinterpret_cast<Socket*>(entries[i].lpOverlapped)->polling = 0;
        in_flight_--;
      }
    }
    for (auto& [fd, s] : sockets_)
      if (s->polling != 0) s.release();
    for (auto& [p, s] : orphans_)
      if (s->polling != 0) s.release();
    CloseHandle(afd_);
  }
  if (port_ != nullptr) CloseHandle(port_);
}

int AfdPoller::Add(int fd, Token token, uint32_t interest) {
  if (fd < 0) return -EBADF;
  if (sockets_.count(fd) != 0) return -EEXIST;
  // Polls go to the base provider's handle: a layered provider's socket would not do.
  SOCKET base = INVALID_SOCKET;
  DWORD bytes = 0;
  if (WSAIoctl(static_cast<SOCKET>(static_cast<unsigned>(fd)), SIO_BASE_HANDLE, nullptr, 0, &base, sizeof base,
               &bytes, nullptr, nullptr) != 0) {
    return WSAGetLastError() == WSAENOTSOCK ? -EBADF : -EINVAL;
  }
  auto s = std::make_unique<Socket>();
  s->base = reinterpret_cast<HANDLE>(base);
  s->token = token;
  s->interest = interest;
  Queue(s.get());
  sockets_[fd] = std::move(s);
  return 0;
}

int AfdPoller::Modify(int fd, Token token, uint32_t interest) {
  auto it = sockets_.find(fd);
  if (it == sockets_.end()) return -ENOENT;
  it->second->token = token;
  it->second->interest = interest;
  Queue(it->second.get());
  return 0;
}

int AfdPoller::Remove(int fd) {
  auto it = sockets_.find(fd);
  if (it == sockets_.end()) return -ENOENT;
  std::unique_ptr<Socket> s = std::move(it->second);
  sockets_.erase(it);
  if (s->queued) arm_.erase(std::find(arm_.begin(), arm_.end(), s.get()));
  if (s->polling != 0) {
    // Its completion (cancelled, or with events it no longer matters) frees it.
    CancelIoEx(afd_, reinterpret_cast<OVERLAPPED*>(&s->iosb));
    s->removed = true;
    Socket* p = s.get();
    orphans_[p] = std::move(s);
  }
  return 0;
}

void AfdPoller::Queue(Socket* s) {
  if (s->queued) return;
  s->queued = true;
  arm_.push_back(s);
}

// Submits a poll for each queued socket, except those already reported by this Wait()
// (theirs would complete at once with the same readiness), or cancels one whose interest
// grew past its poll. A socket AFD refuses is reported as hung up, while there is room.
void AfdPoller::Arm(PollEvent* events, int max, int* count) {
  const Ntdll& nt = LoadNtdll();
  size_t kept = 0;
  for (Socket* s : arm_) {
    if (s->reported == waits_ || (s->polling == 0 && *count >= max)) {
      arm_[kept++] = s;
      continue;
    }
    s->queued = false;
    const ULONG want = AfdEvents(s->interest);
    if (s->polling != 0) {
      if ((want & ~s->polling) != 0 && !s->cancelled) {
        s->cancelled = true;  // submitted again when the cancellation completes
        CancelIoEx(afd_, reinterpret_cast<OVERLAPPED*>(&s->iosb));
      }
      continue;
    }
    s->info = AfdPollInfo{};
    s->info.timeout.QuadPart = LLONG_MAX;
    s->info.count = 1;
    s->info.handles[0].handle = s->base;
    s->info.handles[0].events = want;
    s->iosb.Status = kStatusPending;
    NTSTATUS st = nt.device_io_control(afd_, nullptr, nullptr, &s->iosb, &s->iosb, kIoctlAfdPoll, &s->info,
                                       sizeof s->info, &s->info, sizeof s->info);
    if (st == kStatusPending || NT_SUCCESS(st)) {  // either way the completion comes to the port
      s->polling = want;
      in_flight_++;
    } else {  // stays queued, asked again at the next Wait()
      s->reported = waits_;
      s->queued = true;
      arm_[kept++] = s;
      events[(*count)++] = PollEvent{s->token, kHangup};
    }
  }
  arm_.resize(kept);
}

// Takes back a completed poll: the events to report for it (0: none), and queues it for the
// next poll (within this Wait() when it was cancelled or asked for other events).
uint32_t AfdPoller::Complete(Socket* s) {
  in_flight_--;
  const ULONG asked = s->polling;
  s->polling = 0;
  if (s->removed) {
    orphans_.erase(s);
    return 0;
  }
  Queue(s);
  if (s->cancelled) {
    s->cancelled = false;
    return 0;
  }
  if (!NT_SUCCESS(s->iosb.Status)) return kHangup;
  uint32_t fired = s->info.count > 0 ? Fired(s->info.handles[0].events) : 0;
  // The interest may have shrunk since the poll went out (that cancels nothing).
  if (!(s->interest & kReadable)) fired &= ~(kReadable | kReadHangup);
  if (!(s->interest & kWritable)) fired &= ~kWritable;
  // Nothing to report, and the same question would get the same answer at once: asked
  // again at the next Wait(), not in a spin within this one.
  if (fired == 0 && asked == AfdEvents(s->interest)) s->reported = waits_;
  return fired;
}

int AfdPoller::Wait(int timeout_ms, PollEvent* events, int max) {
  if (static_cast<int>(entries_.size()) < max) entries_.resize(max);
  waits_++;
  const ULONGLONG deadline = GetTickCount64() + (timeout_ms > 0 ? timeout_ms : 0);
  int count = 0;
  bool woke = false;
  for (bool first = true;; first = false) {
    const int before = in_flight_;
    Arm(events, max, &count);
    const bool submitted = in_flight_ > before;
    DWORD wait = 0;
    if (count == 0 && !woke) {
      ULONGLONG now = GetTickCount64();
      wait = timeout_ms < 0 ? INFINITE : static_cast<DWORD>(now < deadline ? deadline - now : 0);
    }
    // Once something is reported, only polls just submitted can add to it (they complete
    // at once when the socket is ready); a cancelled poll that came back is one of them.
    if (!first && wait == 0 && !submitted) break;
    if (count >= max) break;
    ULONG n = 0;
    if (!GetQueuedCompletionStatusEx(port_, entries_.data(), static_cast<ULONG>(max - count), &n, wait, FALSE)) {
      if (GetLastError() == WAIT_TIMEOUT) break;
      return count > 0 ? count : -EIO;
    }
    for (ULONG i = 0; i < n; i++) {
      if (entries_[i].lpCompletionKey == kWakeKey) {
        woke = true;
        continue;
      }
      auto* s = reinterpret_cast<Socket*>(entries_[i].lpOverlapped);
      uint32_t fired = Complete(s);
      if (fired == 0) continue;
      s->reported = waits_;
      events[count++] = PollEvent{s->token, fired};
    }
  }
  return count;
}

}  // namespace

int NewAfdPoller(std::unique_ptr<Poller>* out) {
  auto poller = std::make_unique<AfdPoller>();
  int err = poller->Init();
  if (err != 0) return err;
  *out = std::move(poller);
  return 0;
}

}  // namespace muxnet

#endif  // _WIN32
