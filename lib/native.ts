// The addon's surface, declared by hand: what lib/ may call and what each call returns.

/** Events of a batch: four int32 each — kind, id, a, b (see native/core/loop.h). */
export const enum EventKind {
  Readable = 1,
  Written = 2,
  WriteError = 3,
  Accept = 4,
  AcceptError = 5,
  Connected = 6,
  Deadline = 7,
  Writable = 8,
  Read = 9,
}

/** What `NativeLoop.submit` does with an entry of the ops array ([op, id, arg, result]). */
export const enum SubmitOp {
  /** arg = the queue limit; the buffer in opBuffers[i]; result as `write`. */
  Write = 1,
  /** arg = a ReadMode (the buffer for Buffer); result: bytes, 0 EOF, -EINPROGRESS (a Read event follows) or -errno; arg = the chunk. */
  Read = 2,
  /** Cancels a started read; result 0 or -errno. */
  ReadStop = 3,
}

/** What recvHandles reports for each socket it adopted (native/core/loop.h HandleKind). */
export const enum HandleKind {
  Stream = 1,
  Listener = 2,
  Datagram = 3,
}

/** What a started read reads into (native/core/loop.h ReadMode). */
export const enum ReadMode {
  Buffer = 1,
  Chunk = 2,
  Stream = 3,
}

/** Which deadline a Deadline event reports, and `NativeLoop.setDeadline` sets (native/core/loop.h). */
export const enum DeadlineKind {
  Read = 1,
  Write = 2,
}

/** Socket options understood by `NativeLoop.setOption` (native/core/socket.h SocketOption). */
export const enum SocketOption {
  NoDelay = 1,
  KeepAlive = 2,
  Linger = 3,
  ReadBuffer = 4,
  WriteBuffer = 5,
  Broadcast = 6,
  MulticastHops = 7,
  MulticastLoop = 8,
}

/**
 * One native loop. Every method returns a number: >= 0 on success, a negative errno on
 * failure. Ids are small integers, reused only after the batch that closed them.
 */
export interface NativeLoop {
  readonly backend: string;
  readonly threaded: boolean;
  readonly edge: boolean;
  /** The backend completes operations itself (io_uring, IOCP) rather than reporting readiness. */
  readonly completion: boolean;
  readonly chunkSize: number;
  readonly chunksPerSlab: number;
  /** Listener id or -errno. Port -1: `ip` is a Unix socket path ("@name": abstract). */
  listen(ip: string, port: number, backlog: number, reuseAddr: boolean, reusePort: boolean,
         ipv6Only: boolean): number;
  /**
   * 0 (connected) or -EINPROGRESS (Connected event follows), id in out[0]; or -errno.
   * Port -1: `ip` is a Unix socket path.
   */
  connect(ip: string, port: number, out: Int32Array): number;
  /** Accept at most `budget` connections (0 stops), then stop: bounds the JS accept queue. */
  setAccepting(id: number, budget: number): number;
  /** Benchmark floors: the listener's connections echo (or discard) in C++, invisible to JS. */
  setNativeEcho(id: number, discard: boolean): number;
  /** Bytes read into buf, 0 at EOF, -EAGAIN (readiness is then reported), or -errno. */
  read(id: number, buf: Uint8Array): number;
  /** Report readiness (Readable events) until pauseRead. */
  wantRead(id: number): number;
  pauseRead(id: number): number;
  /** The ArrayBuffer of pool slab i, registered once. */
  slab(i: number): ArrayBuffer | undefined;
  /**
   * Runs ops entries [0, count) in order (see SubmitOp), writing each result back in
   * place: the operations made during a batch cross once. Returns count or -errno.
   */
  submit(count: number): number;
  /** 0 written, 1 queued (Written/WriteError follow), 2 queue at limit, or -errno. */
  write(id: number, data: Uint8Array, limit: number): number;
  /** A kernel pipe for splicing: its id, or -errno (-ENOSYS off Linux). */
  openPipe(): number;
  /** Closes a pipe (bytes in it are dropped): 0 or -EBADF. */
  closePipe(pipe: number): number;
  /** splice(2) from socket `id` into `pipe`: bytes, 0 at EOF, -EAGAIN (readiness armed, or the pipe full) or -errno. */
  spliceIn(id: number, pipe: number, len: number): number;
  /** splice(2) from `pipe` to socket `id`: bytes, -EAGAIN (ask wantWrite), -EBUSY (writes queued) or -errno. */
  spliceOut(pipe: number, id: number, len: number): number;
  /** As write, for `length` bytes of open file `fd` from `offset`; `holder` is kept referenced while queued. */
  sendFile(id: number, fd: number, offset: number, length: number, limit: number, holder: object): number;
  cancelWrites(id: number): number;
  shutdown(id: number): number;
  close(id: number): number;
  /** delayMs < 0 clears; tag comes back in the Deadline event. */
  setDeadline(id: number, kind: DeadlineKind, delayMs: number, tag: number): number;
  /** [ip, port], or [path, 0] for a Unix socket; or -errno. */
  addr(id: number, peer: boolean): [string, number] | number;
  setOption(id: number, option: SocketOption, a: number, b?: number, c?: number, d?: number): number;
  /**
   * Fills `out` (at least 38 entries): bytes in, bytes out, age ms, SO_RCVBUF, SO_SNDBUF,
   * 1 if TCP_INFO follows, then TCP_INFO's fields (see lib/info.ts). 0 or -errno.
   */
  info(id: number, out: Float64Array): number;
  /** Fills `out` (5 entries): open handles, accepted, dialed, bytes in, bytes out. */
  stats(out: Float64Array): number;
  /** Datagram socket bound to host:port (port -1: a Unix path): id or -errno. */
  bindPacket(host: string, port: number, reuseAddr: boolean): number;
  /** Raw IP socket for `protocol`, bound to ip: id or -errno (-EPERM without CAP_NET_RAW). */
  bindRaw(ip: string, protocol: number): number;
  /** Datagram socket connected to host:port: id or -errno. */
  dialPacket(host: string, port: number): number;
  /** One datagram: bytes or -errno (-EAGAIN arms readiness); out[0] = 1 when truncated; from = [host, port] of the sender. */
  recvFrom(id: number, buf: Uint8Array, out: Int32Array, from: (string | number)[]): number;
  /** One datagram to host:port ('' : the connected peer): bytes or -errno (-EAGAIN: call wantWrite). */
  sendTo(id: number, data: Uint8Array, host: string, port: number): number;
  /** recvmmsg into bufs: count or -errno; out[2i] = bytes, out[2i + 1] = truncated; froms = [host0, port0, host1, port1, ...]. */
  recvMany(id: number, bufs: Uint8Array[], out: Int32Array, froms: (string | number)[]): number;
  /** sendmmsg: datagrams sent from the first, or -errno; hosts null: the connected peer. */
  sendMany(id: number, datas: Uint8Array[], hosts: string[] | null, ports: Int32Array | null): number;
  /** One Writable event when the socket has room. */
  wantWrite(id: number): number;
  /** op 1 join group, 2 leave it (iface: IPv4 address or IPv6 interface name, '' any); 3 outgoing interface. */
  multicast(id: number, op: 1 | 2 | 3, group: string, iface: string): number;
  /** data with the descriptors of handles `ids` attached: bytes sent or -errno (-EBUSY: writes queued). */
  sendHandles(id: number, data: Uint8Array, ids: Int32Array): number;
  /** recvmsg: bytes or -errno; out[0] = sockets adopted, then id and kind (1 conn, 2 listener, 3 datagram) + 256 * family each. */
  recvHandles(id: number, buf: Uint8Array, out: Int32Array): number;
}

export interface NativeLoopOptions {
  backend: string;
  edge: boolean;
  threaded: boolean;
}

/**
 * The core's enums by the names the const enums here and in info.ts use: the one source of
 * truth, which test/addon-constants.test.ts checks every TypeScript member against.
 */
export interface NativeConstants {
  readonly eventKind: Readonly<Record<string, number>>;
  readonly deadlineKind: Readonly<Record<string, number>>;
  /** TCP_INFO's fields as native/core/socket.h orders them, and Count. */
  readonly tcpInfoField: Readonly<Record<string, number>>;
  readonly socketOption: Readonly<Record<string, number>>;
  readonly submitOp: Readonly<Record<string, number>>;
  readonly readMode: Readonly<Record<string, number>>;
  readonly handleKind: Readonly<Record<string, number>>;
}

/** What a backend can do (native/core/poller.h PollerCaps). */
export interface NativeCapabilities {
  edge: boolean;
  pollable: boolean;
  completion: boolean;
  inlineOnly: boolean;
}

/** The addon's exports. */
export interface NativeAddon {
  readonly constants: NativeConstants;
  backends(): string[];
  /** The capabilities of a compiled backend, or -errno (-ENOENT when none has that name). */
  capabilities(name: string): NativeCapabilities | number;
  /** The backends compiled in that cannot run on this machine, with the reason. */
  unavailable(): Record<string, string>;
  /** A NativeLoop, or -errno when the backend cannot start. */
  createLoop(options: NativeLoopOptions, batch: Int32Array, ops: Int32Array,
             opBuffers: (Uint8Array | undefined)[], releases: Int32Array,
             onBatch: (count: number) => void): NativeLoop | number;
}
