// The JS side of one native loop: its handle table, the batch dispatcher and the chunk pool.
import { markAsUntransferable } from 'node:worker_threads';
import { native } from './load';
import { EventKind, type NativeLoop } from './native';
import { opErrorFromErrno } from './errors';
import type { ResolvedLoopOptions } from './backends';

/** What a loop delivers events to: a Conn or a Listener. */
export interface LoopHandle {
  _onEvent(kind: EventKind, a: number, b: number): void;
}

// 1,024 events a batch (16 KiB): the native side calls JS again when a wake-up has more.
const kBatchEvents = 1024;

/** One native loop of this thread and the handles on it. */
export class Loop {
  readonly native: NativeLoop;
  readonly events = new Int32Array(kBatchEvents * 4);
  /** Second results of native calls (connect's id, readChunk's chunk index). */
  readonly scratch = new Int32Array(4);
  readonly handles: (LoopHandle | undefined)[] = [];
  readonly backend: string;
  readonly edge: boolean;
  private readonly slabs: ArrayBuffer[] = [];
  private readonly chunkRefs: number[] = [];

  constructor(options: ResolvedLoopOptions) {
    const created = native().createLoop(
      { backend: options.backend, edge: options.edge, threaded: options.threaded },
      this.events, this.scratch, (count) => this.dispatch(count));
    if (typeof created === 'number') {
      throw opErrorFromErrno('listen', 'tcp', created, `${options.backend} loop`);
    }
    this.native = created;
    this.backend = created.backend;
    this.edge = created.edge;
  }

  private dispatch(count: number): void {
    const ev = this.events;
    const handles = this.handles;
    for (let i = 0, o = 0; i < count; i++, o += 4) {
      // A handle closed earlier in this batch is gone from the table: its events are stale.
      const h = handles[ev[o + 1]];
      if (h !== undefined) h._onEvent(ev[o] as EventKind, ev[o + 2], ev[o + 3]);
      // A connection accepted for a listener closed earlier in the batch has no owner.
      else if (ev[o] === EventKind.Accept) this.native.close(ev[o + 2]);
    }
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
    if (--this.chunkRefs[index] === 0) this.native.releaseChunk(index);
  }
}

const loops = new Map<string, Loop>();

/** The loop of this thread for these options, created on first use. */
export function loopFor(options: ResolvedLoopOptions): Loop {
  let loop = loops.get(options.key);
  if (loop === undefined) {
    loop = new Loop(options);
    loops.set(options.key, loop);
  }
  return loop;
}
