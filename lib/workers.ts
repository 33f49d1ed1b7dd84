// serveWorkers: one port served by N worker_threads, each with its own muxnet loop (SO_REUSEPORT, or one acceptor handing connections off).
import { randomBytes } from 'node:crypto';
import { EventEmitter } from 'node:events';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import * as path from 'node:path';
import { Worker, type MessagePort } from 'node:worker_threads';
import { Addr } from './addr';
import { resolveLoopOptions, type LoopOptions } from './backends';
import type { Conn } from './conn';
import { describeValue } from './errors';
import type { LoopStats } from './info';
import type { Listener } from './listener';
import { listen } from './net';
import type { UnixConn } from './unix-conn';
import {
  helloLine, kConfigEnv, kHandoffByte, sumStats,
  type ControlMessage, type ListeningMessage, type WorkerConfig, type WorkerMode,
} from './worker-listener';

/** Options of {@link serveWorkers}. */
export interface ServeWorkersOptions {
  /** How many worker threads serve the port (1 to 1024). */
  workers: number;
  /** 'tcp' (default), 'tcp4' or 'tcp6'. */
  network?: 'tcp' | 'tcp4' | 'tcp6';
  /** "host:port" as for `listen`; port 0 picks a free port, shared by every worker. */
  address: string;
  /**
   * 'reuseport' (default on Linux): each worker binds the port with SO_REUSEPORT and the
   * kernel spreads connections. 'handoff' (default elsewhere): the main thread accepts and
   * hands each connection to the next worker in turn — for kernels that do not balance
   * SO_REUSEPORT (macOS) or lack it.
   */
  mode?: WorkerMode;
  /** Given to every worker as its `workerData` (structured-cloned), untouched. */
  workerData?: unknown;
  /** The kernel's accept queue length of each listener (default 511). */
  backlog?: number;
  /** Bytes each connection may queue before write() waits (default 1 MiB). */
  writeQueueLimit?: number;
  /** Milliseconds `close()` gives workers to finish before terminating them (default 5000). */
  closeTimeout?: number;
  /** Options of every worker's loop, and of the acceptor's in 'handoff' mode (backend, trigger, mode). */
  loop?: LoopOptions;
}

/** One worker's counters in {@link WorkerGroupStats}: its loops summed. */
export interface WorkerStats extends LoopStats {
  /** The worker's index in the group, from 0. */
  worker: number;
  /** Its `threadId`. */
  threadId: number;
}

/** What {@link WorkerGroup.stats} resolves with. */
export interface WorkerGroupStats {
  /** Each running worker's counters, by index. */
  workers: WorkerStats[];
  /** Their sum. */
  total: LoopStats;
}

/**
 * A worker of the group that ended without `close()`, or whose module threw: what
 * {@link WorkerGroup} emits as `'error'`, and what `serveWorkers` rejects with when a worker
 * fails before listening (its own error is the `cause`).
 */
export class WorkerError extends Error {
  /** 'ERR_MUXNET_WORKER'. */
  readonly code = 'ERR_MUXNET_WORKER';
  /** The worker's index in the group. */
  readonly worker: number;
  /** Its exit code. */
  readonly exitCode: number;
  constructor(message: string, worker: number, exitCode: number, cause?: unknown) {
    super(message, cause === undefined ? undefined : { cause });
    this.name = 'WorkerError';
    this.worker = worker;
    this.exitCode = exitCode;
  }
}

// Handoffs queued for one worker before the acceptor waits for them to go: bounds memory,
// and leaves the rest in the kernel's backlog when workers fall behind.
const kMaxPendingHandoffs = 64;
const kHandoffData = new Uint8Array([kHandoffByte]);
const kMaxWorkers = 1024;
// How long a connection to the handoff socket has to prove it is one of the group's workers.
const kJoinTimeoutMs = 10_000;

interface Member {
  index: number;
  worker: Worker;
  threadId: number;
  control: MessagePort | null;
  channel: UnixConn | null;
  /** Handoffs not yet taken by the kernel, chained so that one sendHandles runs at a time. */
  tail: Promise<void>;
  pending: number;
  exited: Promise<number>;
  exitCode: number | undefined;
  error: unknown;
  /** stats() requests waiting for this worker's reply; told undefined if it exits first. */
  stats: Map<number, (s: LoopStats | undefined) => void>;
}

/**
 * N worker threads serving one address, each on its own muxnet loop. Made by
 * {@link serveWorkers}. Emits `'error'` with a {@link WorkerError} when a worker ends
 * before `close()` (an uncaught exception, `process.exit`, or its module returning): a
 * crash can come at any time, which a promise settled at start cannot report, and an
 * `'error'` nobody listens to is thrown, as Node's emitters do — never silently lost. The
 * crashed worker is not restarted; the others keep serving. In 'handoff' mode a failure of
 * the main thread's accepting (not EMFILE and the like, which are retried) is emitted too.
 */
export class WorkerGroup extends EventEmitter {
  /** How the workers get their connections. */
  readonly mode: WorkerMode;
  private readonly members: Member[] = [];
  private address: Addr | undefined;
  private acceptor: Listener | null = null;
  private channelDir: string | null = null;
  private closing: Promise<void> | null = null;
  private readonly closeTimeout: number;
  private nextStats = 0;
  private nextWorker = 0;

  /** @internal */
  constructor(mode: WorkerMode, closeTimeout: number) {
    super();
    this.mode = mode;
    this.closeTimeout = closeTimeout;
  }

  /** The address every worker serves (with the real port when port 0 was asked). */
  addr(): Addr {
    return this.address!;
  }

  /** @internal */
  _setAddr(addr: Addr): void {
    this.address = addr;
  }

  /** The `threadId` of each worker, by index. */
  threadIds(): number[] {
    return this.members.map((m) => m.threadId);
  }

  /**
   * Each running worker's counters (muxnet's `stats()` in the worker, its loops summed) and
   * their total. In 'handoff' mode a worker's `accepted` counts the connections handed to
   * it, and its channel to the acceptor is not counted. Rejects after `close()`.
   */
  stats(): Promise<WorkerGroupStats> {
    if (this.closing !== null) return Promise.reject(new Error('stats: the worker group is closed'));
    const live = this.members.filter((m) => m.control !== null && m.exitCode === undefined);
    return Promise.all(live.map((m) => new Promise<WorkerStats | undefined>((resolve) => {
      const id = this.nextStats++;
      m.stats.set(id, (s) => resolve(s === undefined ? undefined : { ...s, worker: m.index, threadId: m.threadId }));
      m.control!.postMessage({ op: 'stats', id } satisfies ControlMessage);
    }))).then((replies) => {
      const workers = replies.filter((w): w is WorkerStats => w !== undefined);
      return { workers, total: sumStats(workers) };
    });
  }

  /**
   * Stops accepting and shuts every worker's listener down gracefully ({@link Listener.shutdown}:
   * `serve()` handlers see their signal abort and may finish; what is still open at 90% of
   * `closeTimeout` is closed), then waits for the workers to end; workers still running
   * after `closeTimeout` are terminated. Resolves when every worker has exited. Calling it again
   * returns the same promise.
   */
  close(): Promise<void> {
    this.closing ??= this.shutDown();
    return this.closing;
  }

  private async shutDown(): Promise<void> {
    this.acceptor?.close();
    for (const m of this.members) {
      // Workers force what is left a little before they are terminated (90% of the time).
      m.control?.postMessage({ op: 'close', timeout: Math.floor(this.closeTimeout * 0.9) } satisfies ControlMessage);
      // Handoffs still queued fail and close their connections; the worker's listener ends
      // at the end of its channel.
      m.channel?.close();
    }
    let timer: NodeJS.Timeout | undefined;
    const all = Promise.all(this.members.map((m) => m.exited));
    const timedOut = await Promise.race([
      all.then(() => false),
      new Promise<boolean>((resolve) => { timer = setTimeout(() => resolve(true), this.closeTimeout); }),
    ]);
    clearTimeout(timer);
    if (timedOut) await Promise.all(this.members.map((m) => m.worker.terminate()));
    await all;
    for (const m of this.members) m.control?.close();
    if (this.channelDir !== null) rmSync(this.channelDir, { recursive: true, force: true });
  }

  /** Starts worker `index` and resolves when it listens (its address as it reports it). @internal */
  _start(file: string | URL, index: number, cfg: WorkerConfig, workerData: unknown): Promise<string> {
    const worker = new Worker(file, { workerData, env: { ...process.env, [kConfigEnv]: JSON.stringify(cfg) } });
    let exitedResolve!: (code: number) => void;
    const m: Member = {
      index, worker, threadId: worker.threadId, control: null, channel: null, tail: Promise.resolve(), pending: 0,
      exited: new Promise((resolve) => { exitedResolve = resolve; }), exitCode: undefined, error: undefined,
      stats: new Map(),
    };
    this.members[index] = m;
    return new Promise<string>((resolve, reject) => {
      let listening = false;
      worker.on('message', (msg: ListeningMessage) => {
        if (msg?.muxnetWorker !== 'listening' || listening) return;  // the user's own messages
        listening = true;
        m.control = msg.port;
        m.control.on('message', (reply: ControlMessage) => {
          if (reply.op === 'stats' && 'stats' in reply) {
            m.stats.get(reply.id)?.(reply.stats);
            m.stats.delete(reply.id);
          }
        });
        m.control.unref();
        resolve(msg.address);
      });
      worker.on('error', (err) => { m.error ??= err; });
      worker.on('exit', (code) => {
        m.exitCode = code;
        for (const answer of m.stats.values()) answer(undefined);  // stats() leaves it out
        m.stats.clear();
        exitedResolve(code);
        m.channel?.close();
        m.channel = null;
        const err = m.error !== undefined
          ? new WorkerError(`worker ${index} failed: ${(m.error as Error)?.message ?? describeValue(m.error)}`, index, code, m.error)
          : new WorkerError(`worker ${index} exited with code ${code} before close()`, index, code);
        if (!listening) reject(m.error ?? err);
        else if (this.closing === null) this.emit('error', err);
      });
    });
  }

  /**
   * handoff: accepts the workers' channels until each has joined, proved by the token (any
   * local process can reach the socket); each is heard concurrently, so a stranger that
   * connects and stays silent holds up nothing. @internal
   */
  _joinChannels(channels: Listener<UnixConn>, token: string): Promise<void> {
    const missing = new Set(this.members.map((m) => m.index));
    return new Promise<void>((resolve, reject) => {
      const join = async (c: UnixConn): Promise<void> => {
        c.setReadDeadline(Date.now() + kJoinTimeoutMs);
        const [t, i] = (await readLine(c, 128))?.split(' ') ?? [];
        const m = this.members[Number(i)];
        if (t !== token || m === undefined || !missing.has(m.index)) {
          c.close();
          return;
        }
        c.setReadDeadline(0);
        missing.delete(m.index);
        m.channel = c;
        if (missing.size === 0) resolve();
      };
      // Ends when serveWorkers closes `channels`, joined or failed.
      (async () => {
        for await (const c of channels) void join(c);
      })().catch(reject);
    });
  }

  /** handoff: accepts on `ln` and hands each connection to the next worker. @internal */
  async _dispatch(ln: Listener, channelDir: string | null): Promise<void> {
    this.acceptor = ln;
    this.channelDir = channelDir;
    for await (const conn of ln) {
      const m = this.pick();
      if (m === undefined) {
        conn.close();  // every worker is gone
        continue;
      }
      if (m.pending >= kMaxPendingHandoffs) await m.tail;
      this.handOff(m, conn);
    }
  }

  private pick(): Member | undefined {
    for (let k = 0; k < this.members.length; k++) {
      const m = this.members[this.nextWorker];
      this.nextWorker = (this.nextWorker + 1) % this.members.length;
      if (m.channel !== null && m.exitCode === undefined) return m;
    }
    return undefined;
  }

  private handOff(m: Member, conn: Conn): void {
    const channel = m.channel!;
    m.pending++;
    m.tail = m.tail
      .then(() => channel.sendHandles(kHandoffData, [conn]))
      .catch(() => {
        // The worker is gone or closing: this connection is lost (the client sees it
        // closed), and so are the ones queued behind it, which fail the same way.
      })
      .finally(() => {
        conn.close();  // the worker holds its own descriptor now
        m.pending--;
      });
  }
}

/** Reads up to a newline (at most `max` bytes); null if the stream ends or fails first. */
async function readLine(c: Conn, max: number): Promise<string | null> {
  const buf = new Uint8Array(max);
  let n = 0;
  try {
    while (n < max) {
      const r = await c.read(buf.subarray(n));
      if (r === null) return null;
      n += r;
      const nl = buf.subarray(0, n).indexOf(0x0a);
      if (nl >= 0) return Buffer.from(buf.subarray(0, nl)).toString();
    }
  } catch {
    // A failed read is a channel that never joined.
  }
  return null;
}

function checkOptions(file: unknown, options: unknown): Required<Pick<ServeWorkersOptions, 'workers' | 'address' | 'network' | 'mode' | 'closeTimeout'>> {
  if (!(file instanceof URL) && (typeof file !== 'string' || file === '')) {
    throw new TypeError(`file: expected the worker module's path or URL, got ${describeValue(file)}`);
  }
  if (options === null || typeof options !== 'object') {
    throw new TypeError(`options: expected an object with workers and address, got ${describeValue(options)}`);
  }
  const o = options as ServeWorkersOptions;
  if (typeof o.workers !== 'number' || !Number.isInteger(o.workers) || o.workers < 1 || o.workers > kMaxWorkers) {
    throw new RangeError(`options.workers: expected an integer from 1 to ${kMaxWorkers}, got ${describeValue(o.workers)}`);
  }
  if (typeof o.address !== 'string') {
    throw new TypeError(`options.address: expected a string "host:port", got ${describeValue(o.address)}`);
  }
  const network = o.network ?? 'tcp';
  if (network !== 'tcp' && network !== 'tcp4' && network !== 'tcp6') {
    throw new TypeError(`options.network: expected 'tcp', 'tcp4' or 'tcp6', got ${describeValue(o.network)}`);
  }
  const mode = o.mode ?? (process.platform === 'linux' ? 'reuseport' : 'handoff');
  if (mode !== 'reuseport' && mode !== 'handoff') {
    throw new TypeError(`options.mode: expected 'reuseport' or 'handoff', got ${describeValue(o.mode)}`);
  }
  const closeTimeout = o.closeTimeout ?? 5000;
  if (typeof closeTimeout !== 'number' || !Number.isInteger(closeTimeout) || closeTimeout < 0 || closeTimeout > 0x7fffffff) {
    throw new RangeError(`options.closeTimeout: expected an integer number of milliseconds >= 0, got ${describeValue(o.closeTimeout)}`);
  }
  return { workers: o.workers, address: o.address, network, mode, closeTimeout };
}

/** A Unix socket address for the handoff channel: abstract on Linux, else in a fresh temp directory. */
function channelAddress(): { address: string; dir: string | null } {
  const name = `muxnet-workers-${process.pid}-${randomBytes(8).toString('hex')}`;
  if (process.platform === 'linux') return { address: `@${name}`, dir: null };
  const dir = mkdtempSync(path.join(tmpdir(), 'muxnet-'));
  return { address: path.join(dir, 'handoff.sock'), dir };
}

/**
 * Serves one address from `options.workers` worker threads, each with its own muxnet loop:
 * all of this machine's cores for one server. `file` is the worker module (a path, or a
 * `file:` URL); it gets its listener with {@link workerListener} and serves on it. Resolves
 * with the {@link WorkerGroup} once every worker listens; rejects with the first worker's
 * error if one fails to start (the others are stopped), or throws a TypeError/RangeError
 * naming a bad argument. Listen options and loop options apply in every worker.
 *
 * ```ts
 * // main.ts
 * const group = await serveWorkers(new URL('./worker.js', import.meta.url), { workers: 2, address: ':8080' });
 * // worker.ts
 * await workerListener().serve(async (conn) => { ... });
 * ```
 */
export async function serveWorkers(file: string | URL, options: ServeWorkersOptions): Promise<WorkerGroup> {
  const { workers, address, network, mode, closeTimeout } = checkOptions(file, options);
  const o = options;
  const target = typeof file === 'string' ? path.resolve(file) : file;
  if (o.loop !== undefined && (o.loop === null || typeof o.loop !== 'object')) {
    throw new TypeError(`options.loop: expected an object of loop options, got ${describeValue(o.loop)}`);
  }
  // Copied field by field: it crosses to the workers as JSON.
  const loop: LoopOptions = {};
  if (o.loop?.backend !== undefined) loop.backend = o.loop.backend;
  if (o.loop?.trigger !== undefined) loop.trigger = o.loop.trigger;
  if (o.loop?.mode !== undefined) loop.mode = o.loop.mode;
  resolveLoopOptions(loop);  // a bad backend or trigger throws here, not in every worker
  const group = new WorkerGroup(mode, closeTimeout);
  const base: Omit<WorkerConfig, 'index'> = {
    mode, network, address, ip: '', port: 0, loop, backlog: o.backlog, writeQueueLimit: o.writeQueueLimit,
  };
  const started: Promise<string>[] = [];
  try {
    if (mode === 'reuseport') {
      // All workers must share one port: with port 0 the first picks it, the rest join it.
      const first = await group._start(target, 0, { ...base, index: 0 }, o.workerData);
      const shared = listenedAddr(network, first);
      group._setAddr(shared);
      for (let i = 1; i < workers; i++) {
        started.push(group._start(target, i, { ...base, index: i, address: shared.toString() }, o.workerData));
      }
      await Promise.all(started);
      return group;
    }
    const ln = listen(network, address, { ...loop, backlog: o.backlog, writeQueueLimit: o.writeQueueLimit });
    const shared = ln.addr();
    group._setAddr(shared);
    const chan = channelAddress();
    let channels: Listener<UnixConn>;
    try {
      channels = listen('unix', chan.address, loop);
    } catch (err) {
      ln.close();
      throw err;
    }
    const token = randomBytes(16).toString('hex');
    try {
      for (let i = 0; i < workers; i++) {
        started.push(group._start(target, i, {
          ...base, index: i, ip: shared.ip, port: shared.port, channel: chan.address, token,
        }, o.workerData));
      }
      await Promise.all([...started, group._joinChannels(channels, token)]);
    } catch (err) {
      ln.close();
      if (chan.dir !== null) rmSync(chan.dir, { recursive: true, force: true });
      throw err;
    } finally {
      channels.close();  // every worker has joined (or start failed): nobody else may
    }
    // Accepting fails for good only on a broken listener: the group reports it as a crash would be.
    group._dispatch(ln, chan.dir).catch((err: unknown) => group.emit('error', err));
    return group;
  } catch (err) {
    for (const p of started) p.catch(() => {});
    await group.close();
    throw err;
  }
}

/** The shared address from the first worker's report ("host:port"). */
function listenedAddr(network: string, reported: string): Addr {
  const m = /^\[?(.*?)\]?:(\d+)$/.exec(reported);
  if (m === null) throw new Error(`serveWorkers: worker 0 reported an unexpected address ${JSON.stringify(reported)}`);
  return new Addr(network, m[1], Number(m[2]));
}
