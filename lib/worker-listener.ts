// The worker side of serveWorkers: the listener a worker serves on (SO_REUSEPORT or handed-off connections) and its control channel.
import { MessageChannel, isMainThread, parentPort, type MessagePort } from 'node:worker_threads';
import { Addr } from './addr';
import { resolveLoopOptions, type LoopOptions } from './backends';
import { kDefaultWriteQueueLimit, type Conn } from './conn';
import { EAGAIN, opErrorFromErrno } from './errors';
import type { LoopStats } from './info';
import { stats } from './inspect';
import { Listener } from './listener';
import { loopFor, type Loop } from './loop';
import { EventKind, HandleKind } from './native';
import { listen } from './net';
import { streamConn } from './unix-conn';

/** How the workers of a group get their connections. */
export type WorkerMode = 'reuseport' | 'handoff';

/**
 * What the main thread tells a worker it starts, in the worker's environment under
 * {@link kConfigEnv} (read and removed when this module loads): the worker's own
 * `workerData` stays the user's. @internal
 */
export interface WorkerConfig {
  index: number;
  mode: WorkerMode;
  network: 'tcp' | 'tcp4' | 'tcp6';
  /** reuseport: where to listen (the real port once the first worker has bound it). */
  address: string;
  /** handoff: the shared address, as the acceptor bound it. */
  ip: string;
  port: number;
  loop: LoopOptions;
  backlog?: number;
  writeQueueLimit?: number;
  /** handoff: the acceptor's Unix socket, and the token a worker proves itself with. */
  channel?: string;
  token?: string;
}

/** What a worker posts on `parentPort` once it listens; `port` carries the control messages. @internal */
export interface ListeningMessage {
  muxnetWorker: 'listening';
  address: string;
  port: MessagePort;
}

/** Control messages from the main thread, and the worker's replies. @internal */
export type ControlMessage =
  | { op: 'close'; timeout: number }
  | { op: 'stats'; id: number }
  | { op: 'stats'; id: number; stats: LoopStats };

/** The environment variable that carries a {@link WorkerConfig}. @internal */
export const kConfigEnv = 'MUXNET_WORKER_CONFIG';

/** The byte that travels with each handed-off connection. @internal */
export const kHandoffByte = 0x63;

/** The line a handoff worker writes first on its channel: `<token> <index>\n`. @internal */
export function helloLine(token: string, index: number): string {
  return `${token} ${index}\n`;
}

// Taken once, at load, so that processes the worker starts do not inherit it.
let config: WorkerConfig | undefined;
if (!isMainThread && process.env[kConfigEnv] !== undefined) {
  config = JSON.parse(process.env[kConfigEnv]!) as WorkerConfig;
  delete process.env[kConfigEnv];
}
let taken = false;

/** Sums loop counters: the total of a worker's loops, or of a group's workers. @internal */
export function sumStats(list: LoopStats[]): LoopStats {
  const total: LoopStats = {
    backend: list[0]?.backend ?? '', trigger: list[0]?.trigger ?? 'level', mode: list[0]?.mode ?? 'inline',
    connections: 0, listeners: 0, accepted: 0, dialed: 0, bytesRead: 0, bytesWritten: 0, leaked: 0, errors: {}, refused: {},
  };
  for (const s of list) {
    total.connections += s.connections;
    total.listeners += s.listeners;
    total.accepted += s.accepted;
    total.dialed += s.dialed;
    total.bytesRead += s.bytesRead;
    total.bytesWritten += s.bytesWritten;
    total.leaked += s.leaked;
    for (const [code, n] of Object.entries(s.errors)) total.errors[code] = (total.errors[code] ?? 0) + n;
    for (const [why, n] of Object.entries(s.refused)) total.refused[why] = (total.refused[why] ?? 0) + n;
  }
  return total;
}

/**
 * A listener whose connections an acceptor thread hands over a Unix socket (SCM_RIGHTS),
 * one byte and one descriptor each. The channel is this listener's socket: closing the
 * listener closes it, and the acceptor closing it ends the listener. Everything else —
 * accept(), iteration, serve(), serveNode(), the accept queue's bound — is Listener's own:
 * this class only replaces where accepted connections come from.
 */
class HandoffListener extends Listener {
  private readonly channelLoop: Loop;
  private readonly channel: number;
  private room = 0;
  private receiving = false;
  private readonly buf = new Uint8Array(1);  // one message a read: one byte, one descriptor
  private readonly passed = new Int32Array(1 + 2 * 16);
  /** Connections received, and the channel's own bytes: stats() counts them as accepted, not as traffic. */
  handedOff = 0;
  channelRead = 0;
  channelWritten = 0;

  constructor(loop: Loop, channel: number, network: string, address: Addr, writeQueueLimit: number | undefined) {
    super(loop, channel, network, address,
      (id) => streamConn(loop, id, network, writeQueueLimit ?? kDefaultWriteQueueLimit) as Conn);
    this.channelLoop = loop;
    this.channel = channel;
  }

  /** @internal */
  protected override _acceptUpTo(room: number): void {
    this.room = room;
    this.channelLoop.native.wantRead(this.channel);
    // Edge-triggered readiness seen while paused is not reported again: look now.
    this.receive();
  }

  /** @internal Not passable: its socket is the channel, not a listening socket. */
  override _handleOn(): number {
    return -1;
  }

  /** @internal */
  override _onEvent(kind: EventKind, a: number): void {
    if (kind === EventKind.Readable) this.receive();
    else if (kind === EventKind.Accept || kind === EventKind.AcceptError) super._onEvent(kind, a);
    // Written / WriteError: the hello line, which a fresh socket always takes at once.
  }

  private receive(): void {
    if (this.receiving) return;  // a delivery below asked for more: the loop goes on
    this.receiving = true;
    try {
      const native = this.channelLoop.native;
      while (this.room > 0) {
        const n = native.recvHandles(this.channel, this.buf, this.passed);
        if (n === EAGAIN) return;  // readiness stays wanted: a Readable event follows
        if (n <= 0) {
          // The acceptor closed the channel (the group is closing) or it failed: no more
          // connections will come, so the listener ends like a closed one.
          this.close();
          return;
        }
        this.channelRead += n;
        for (let i = 0; i < this.passed[0]; i++) {
          const id = this.passed[1 + 2 * i];
          if ((this.passed[2 + 2 * i] & 0xff) !== HandleKind.Stream) {
            native.close(id);
            continue;
          }
          this.handedOff++;
          this.room--;
          super._onEvent(EventKind.Accept, id);
        }
      }
      native.pauseRead(this.channel);  // the accept queue is full: the rest wait in the channel
    } finally {
      this.receiving = false;
    }
  }
}

function connectHandoff(cfg: WorkerConfig): HandoffListener {
  const loop = loopFor(resolveLoopOptions(cfg.loop));
  const r = loop.native.connect(cfg.channel!, -1, loop.scratch);
  // A Unix stream connect completes at once or fails; there is nothing to wait for.
  if (r < 0) throw opErrorFromErrno('dial', 'unix', r, 'connect');
  const id = loop.scratch[0];
  const ln = new HandoffListener(loop, id, cfg.network, new Addr(cfg.network, cfg.ip, cfg.port), cfg.writeQueueLimit);
  const hello = Buffer.from(helloLine(cfg.token!, cfg.index));
  const w = loop.native.write(id, hello, hello.length);
  if (w < 0) {
    ln.close();
    throw opErrorFromErrno('write', 'unix', w, 'write');
  }
  ln.channelWritten = hello.length;
  return ln;
}

/** This worker's counters (its loops summed), with a handoff channel counted as what it stands for. */
function workerStats(ln: Listener): LoopStats {
  const s = sumStats(stats());
  if (ln instanceof HandoffListener) {
    s.accepted += ln.handedOff;
    s.dialed -= 1;
    s.bytesRead -= ln.channelRead;
    s.bytesWritten -= ln.channelWritten;
  }
  return s;
}

/**
 * The listener of a worker started by `serveWorkers`: call it once, in the worker module,
 * and serve on it like any {@link Listener} (`serve`, `serveNode`, `accept`, `for await`).
 * In 'reuseport' mode it is a TCP listener of its own bound with SO_REUSEPORT to the group's
 * address; in 'handoff' mode its connections are accepted by the main thread and handed to
 * this worker. `addr()` is the group's address in both. The main thread's `close()` closes
 * it. Throws an Error outside a `serveWorkers` worker or when called a second time, or an
 * {@link OpError} when it cannot listen (which rejects `serveWorkers`).
 *
 * ```ts
 * import { workerListener } from 'muxnet';
 * await workerListener().serve(async (conn) => { ... });
 * ```
 */
export function workerListener(): Listener {
  if (config === undefined) {
    throw new Error('workerListener: only a worker started by serveWorkers() has one');
  }
  if (taken) throw new Error('workerListener: called twice; a worker has one listener');
  taken = true;
  const cfg = config;
  const ln = cfg.mode === 'reuseport'
    ? listen(cfg.network, cfg.address, {
      ...cfg.loop, reusePort: true, backlog: cfg.backlog, writeQueueLimit: cfg.writeQueueLimit,
    })
    : connectHandoff(cfg);
  const { port1, port2 } = new MessageChannel();
  port1.on('message', (m: ControlMessage) => {
    if (m.op === 'close') {
      // Graceful: serve()'s handlers finish (their signal aborts), the rest are closed at
      // the timeout, before the main thread's terminate() would cut the thread.
      void ln.shutdown({ timeout: m.timeout });
      port1.close();
    } else if (m.op === 'stats') {
      port1.postMessage({ op: 'stats', id: m.id, stats: workerStats(ln) } satisfies ControlMessage);
    }
  });
  // The listener keeps the worker alive while it is open; the control port must not, or a
  // worker whose module closed its listener would never end.
  port1.unref();
  const listening: ListeningMessage = { muxnetWorker: 'listening', address: String(ln.addr()), port: port2 };
  parentPort!.postMessage(listening, [port2]);
  return ln;
}
