// The JS side of one native loop: its handle table, the batch dispatcher and the chunk pool.
import { markAsUntransferable } from 'node:worker_threads';
import { native } from './load';
import { EventKind, type NativeLoop, type SubmitOp } from './native';
import { opErrorFromErrno } from './errors';
import type { ResolvedLoopOptions } from './backends';
import type { ConnInfo, LoopStats } from './info';

/** What submits operations through {@link Loop.submit}: told each one's result, in order. */
export interface Submitter {
  /** The result of one submitted operation (see SubmitOp in lib/native.ts). @internal */
  _onSubmitted(op: SubmitOp, result: number, arg: number): void;
}

/** What a loop delivers events to: a Conn or a Listener. */
export interface LoopHandle {
  /** What stats() counts it as. @internal */
  readonly _kind: 'listener' | 'conn';
  /** One event of a batch. @internal */
  _onEvent(kind: EventKind, a: number, b: number): void;
  /** For connections(): what the socket is doing, or undefined if it cannot tell any more. @internal */
  _describe(): ConnInfo | undefined;
}

// 1,024 events a batch (16 KiB): the native side calls JS again when a wake-up has more.
const kBatchEvents = 1024;
// Operations one submit() carries; a batch that makes more submits more than once.
const kSubmitOps = 1024;
// Every chunk of the pool (64 slabs x 16 chunks, native/core/loop.h's default) can be let
// go of once before the native side looks.
const kMaxChunks = 64 * 16;

/** Connections garbage-collected without close(), over every loop of this thread. */
let leakedTotal = 0;
let leakedUnreported = 0;

function reportLeaks(): void {
  const n = leakedUnreported;
  leakedUnreported = 0;
  process.emitWarning(
    `muxnet: ${n} connection${n === 1 ? ' was' : 's were'} garbage-collected without close() ` +
    `(${leakedTotal} in all); ${n === 1 ? 'its socket was' : 'their sockets were'} closed. ` +
    'Call conn.close() when done with a connection.',
    { code: 'MUXNET_CONN_LEAKED' });
}

/** One native loop of this thread and the handles on it. */
export class Loop {
  readonly native: NativeLoop;
  readonly events = new Int32Array(kBatchEvents * 4);
  /** Out-array for second results of native calls (connect's id, recvFrom's truncation). */
  readonly scratch = new Int32Array(4);
  /** submit(): [op, id, arg, result] per operation made during a batch (see lib/native.ts). */
  readonly ops = new Int32Array(kSubmitOps * 4);
  /** submit(): the buffer of each operation. */
  readonly opBuffers: (Uint8Array | undefined)[] = new Array(kSubmitOps).fill(undefined);
  /** [count, chunk...]: chunks let go of, returned to the pool by the native side. */
  readonly releases = new Int32Array(1 + kMaxChunks);
  /**
   * Handles by id, held strongly: listeners, and connections with an operation in flight
   * (a pending read, write or connect), whose promises someone may be waiting on.
   */
  readonly handles: (LoopHandle | undefined)[] = [];
  /** Connections by id, held weakly: an idle one nobody references can be collected. */
  private readonly weakHandles: (WeakRef<LoopHandle> | undefined)[] = [];
  /** Closes the socket of a connection collected without close(). */
  private readonly reclaim = new FinalizationRegistry<number>((id) => this.reclaimed(id));
  readonly backend: string;
  readonly edge: boolean;
  /** Operation errors by code, for stats(). */
  private readonly errors = new Map<string, number>();
  private leaked = 0;
  /** Connections refused by listeners' limits, by reason, for stats(). */
  private readonly refused = new Map<string, number>();
  /** What to call when a connection closes (listeners with limits), by id; null until used. */
  private closeHooks: Map<number, () => void> | null = null;
  private readonly slabs: ArrayBuffer[] = [];
  private readonly chunkRefs: number[] = [];
  // The submission queue: operations [0, opCount) of `ops`, each with its owner.
  private opCount = 0;
  private opOwners: (Submitter | undefined)[] = [];
  private spareOwners: (Submitter | undefined)[] = [];
  private readonly done = new Int32Array(kSubmitOps * 4);
  private flushing = false;
  // The batch being dispatched: its event count, and the index of the current event.
  private batchEnd = 0;
  private batchAt = 0;
  private flushQueued = false;
  private readonly flushSoon = (): void => {
    this.flushQueued = false;
    this.flush();
  };

  constructor(options: ResolvedLoopOptions) {
    const created = native().createLoop(
      { backend: options.backend, edge: options.edge, threaded: options.threaded },
      this.events, this.ops, this.opBuffers, this.releases, (count) => this.dispatch(count));
    if (typeof created === 'number') {
      throw opErrorFromErrno('listen', 'tcp', created, `${options.backend} loop`);
    }
    // The addon sets ~40 properties on this object one by one, which leaves V8 holding it
    // in dictionary mode: every `native.read` would be a hash lookup (a LoadIC call in the
    // profile). A spread copy has fast properties, so the hot calls load at a fixed offset.
    this.native = { ...created };
    this.backend = created.backend;
    this.edge = created.edge;
  }

  private dispatch(count: number): void {
    const ev = this.events;
    const handles = this.handles;
    let failure: { err: unknown } | null = null;
    this.batchEnd = count;
    for (let i = 0, o = 0; i < count; i++, o += 4) {
      this.batchAt = i;
      // A handle closed earlier in this batch is gone from the table: its events are stale.
      const id = ev[o + 1];
      const h = handles[id] ?? this.weakHandles[id]?.deref();
      try {
        if (h !== undefined) h._onEvent(ev[o] as EventKind, ev[o + 2], ev[o + 3]);
        // A connection accepted for a listener closed earlier in the batch has no owner.
        else if (ev[o] === EventKind.Accept) this.native.close(ev[o + 2]);
        // Nor has a chunk read for a connection closed earlier in the batch.
        else if (ev[o] === EventKind.Read && ev[o + 3] >= 0) this.returnChunk(ev[o + 3]);
      } catch (err) {
        // A user callback threw (onEnd, onData's owner, …): the rest of the batch still
        // runs (a lost accept leaks a socket, a lost edge stalls a connection), and the
        // first error surfaces afterwards as the uncaught exception it is.
        failure ??= { err };
      }
    }
    this.batchEnd = 0;
    if (failure !== null) {
      const { err } = failure;
      process.nextTick(() => { throw err; });
    }
  }

  /**
   * True while the batch being dispatched still holds a Read event for `id` after the
   * current one: that read completed natively before whatever is handled now (a deadline
   * made to pass from a callback), and stopping it would lose its bytes. @internal
   */
  readAhead(id: number): boolean {
    const ev = this.events;
    for (let o = (this.batchAt + 1) * 4, end = this.batchEnd * 4; o < end; o += 4) {
      if (ev[o] === EventKind.Read && ev[o + 1] === id) return true;
    }
    return false;
  }

  /**
   * Registers a connection: held weakly while idle (see {@link hold}), and if it is ever
   * collected without close(), its socket is closed and a warning counts it.
   */
  adopt(id: number, conn: LoopHandle): void {
    this.weakHandles[id] = new WeakRef(conn);
    this.reclaim.register(conn, id, conn);
  }

  /**
   * Holds an adopted connection strongly for as long as its callbacks own it (onData), and
   * drops its WeakRef and finalizer meanwhile: a pinned connection cannot be collected, so
   * they would only cost memory. {@link adopt} it again when it can be idle once more.
   */
  pin(id: number, conn: LoopHandle): void {
    this.handles[id] = conn;
    this.weakHandles[id] = undefined;
    this.reclaim.unregister(conn);
  }

  /** Holds an adopted connection strongly (busy) or weakly again (idle). */
  hold(id: number, conn: LoopHandle | undefined): void {
    this.handles[id] = conn;
  }

  /** Forgets a closed connection: no more events, no finalizer. */
  forget(id: number, conn: LoopHandle): void {
    this.handles[id] = undefined;
    this.weakHandles[id] = undefined;
    this.reclaim.unregister(conn);
    if (this.closeHooks !== null) this.closing(id);
  }

  /**
   * Calls `hook` once when connection `id` closes: by close(), or by the finalizer of one
   * collected without it. Must be set before the connection object is made.
   */
  onClose(id: number, hook: () => void): void {
    (this.closeHooks ??= new Map()).set(id, hook);
  }

  private closing(id: number): void {
    const hook = this.closeHooks!.get(id);
    if (hook !== undefined) {
      this.closeHooks!.delete(id);
      hook();
    }
  }

  private reclaimed(id: number): void {
    // The id is still this connection's: only close() frees it, and close() unregisters.
    this.weakHandles[id] = undefined;
    this.handles[id] = undefined;
    this.native.close(id);
    if (this.closeHooks !== null) this.closing(id);
    this.leaked++;
    leakedTotal++;
    if (leakedUnreported++ === 0) setImmediate(reportLeaks);
  }

  /**
   * Queues an operation for the native side: every operation made while a batch is
   * handled (and in the microtasks it starts) crosses in one `submit()`, at the end of the
   * current microtask checkpoint or at {@link flush}. Results come back in order, through
   * `owner._onSubmitted`. @internal
   */
  submit(owner: Submitter, id: number, op: SubmitOp, arg: number, buf: Uint8Array | undefined): void {
    if (this.opCount === kSubmitOps) this.flush();
    const i = this.opCount++;
    const o = i << 2;
    const ops = this.ops;
    ops[o] = op;
    ops[o + 1] = id;
    ops[o + 2] = arg;
    this.opBuffers[i] = buf;
    this.opOwners[i] = owner;
    if (!this.flushQueued) {
      this.flushQueued = true;
      queueMicrotask(this.flushSoon);
    }
  }

  /**
   * Submits the queued operations now, then tells their owners the results. Owners may
   * submit more meanwhile (they go to the next flush). Called before anything whose order
   * with queued operations matters (close, shutdown, cancelling writes). @internal
   */
  flush(): void {
    const count = this.opCount;
    if (count === 0) return;
    this.native.submit(count);
    // Copy the results out: owners told below may queue new operations into `ops`.
    const done = this.flushing ? this.ops.slice(0, count << 2) : this.done;
    if (!this.flushing) done.set(this.ops.subarray(0, count << 2));
    // Owners swap between two arrays; a flush made while owners are told takes a new one.
    const owners = this.opOwners;
    this.opOwners = this.flushing ? [] : this.spareOwners;
    this.opBuffers.fill(undefined, 0, count);  // the native side holds what it still needs
    this.opCount = 0;
    const nested = this.flushing;
    this.flushing = true;
    let failure: { err: unknown } | null = null;
    try {
      for (let i = 0, o = 0; i < count; i++, o += 4) {
        const owner = owners[i]!;
        owners[i] = undefined;
        try {
          owner._onSubmitted(done[o] as SubmitOp, done[o + 3], done[o + 2]);
        } catch (err) {
          failure ??= { err };  // as in dispatch: the other owners still hear back
        }
      }
    } finally {
      this.flushing = nested;
      if (!nested) this.spareOwners = owners;
    }
    if (failure !== null) {
      const { err } = failure;
      process.nextTick(() => { throw err; });
    }
  }

  /** Counts an operation error by its code (closing is not one). */
  countError(code: string): void {
    if (code !== 'ERR_CLOSED') this.errors.set(code, (this.errors.get(code) ?? 0) + 1);
  }

  /** Counts a connection a listener's limits refused, by reason. */
  countRefused(reason: string): void {
    this.refused.set(reason, (this.refused.get(reason) ?? 0) + 1);
  }

  /** Calls `fn` for every live handle: listeners and connections, referenced or not. */
  forEachHandle(fn: (h: LoopHandle) => void): void {
    const n = Math.max(this.handles.length, this.weakHandles.length);
    for (let id = 0; id < n; id++) {
      const h = this.handles[id] ?? this.weakHandles[id]?.deref();
      if (h !== undefined) fn(h);
    }
  }

  stats(): LoopStats {
    const v = new Float64Array(5);
    this.native.stats(v);
    let listeners = 0;
    this.forEachHandle((h) => {
      if (h._kind === 'listener') listeners++;
    });
    return {
      backend: this.backend,
      trigger: this.edge ? 'edge' : 'level',
      mode: this.native.threaded ? 'thread' : 'inline',
      connections: v[0] - listeners,
      listeners,
      accepted: v[1],
      dialed: v[2],
      bytesRead: v[3],
      bytesWritten: v[4],
      leaked: this.leaked,
      errors: Object.fromEntries(this.errors),
      refused: Object.fromEntries(this.refused),
    };
  }

  /** A view of `n` bytes of pooled chunk `index`; the chunk holds one reference. */
  chunkView(index: number, n: number): Uint8Array {
    const perSlab = this.native.chunksPerSlab;
    const slabIndex = Math.floor(index / perSlab);
    let slab = this.slabs[slabIndex];
    if (slab === undefined) {
      slab = this.native.slab(slabIndex) as ArrayBuffer;
      // Transferring a slab would free memory the native pool still reads into.
      markAsUntransferable(slab);
      this.slabs[slabIndex] = slab;
    }
    this.chunkRefs[index] = 1;
    return new Uint8Array(slab, (index % perSlab) * this.native.chunkSize, n);
  }

  /** The pooled chunk that `view` lies in, if it is one of this loop's and still out; else -1. */
  chunkOf(view: Uint8Array): number {
    // No slab yet (only callers' buffers so far): spare the `.buffer` lookup.
    if (this.slabs.length === 0) return -1;
    const slabIndex = this.slabs.indexOf(view.buffer as ArrayBuffer);
    if (slabIndex < 0) return -1;
    const index = slabIndex * this.native.chunksPerSlab + Math.floor(view.byteOffset / this.native.chunkSize);
    return (this.chunkRefs[index] ?? 0) > 0 ? index : -1;
  }

  retainChunk(index: number): void {
    this.chunkRefs[index]++;
  }

  /** Drops one reference; the chunk returns to the pool with the last. */
  releaseChunk(index: number): void {
    if (--this.chunkRefs[index] === 0) this.returnChunk(index);
  }

  /**
   * Gives a chunk back without a call (its last reference went, or it was read for a
   * connection that no longer wants it): the native side takes the list at its next
   * wake-up (or when its pool runs dry). Each chunk is out once at most, so the list
   * cannot overflow.
   */
  returnChunk(index: number): void {
    const list = this.releases;
    const n = list[0] + 1;
    list[0] = n;
    list[n] = index;
  }
}

const loops = new Map<string, Loop>();

/** The loops this thread has created. */
export function allLoops(): Loop[] {
  return [...loops.values()];
}

/** The loop of this thread for these options, created on first use. */
export function loopFor(options: ResolvedLoopOptions): Loop {
  let loop = loops.get(options.key);
  if (loop === undefined) {
    loop = new Loop(options);
    loops.set(options.key, loop);
  }
  return loop;
}
