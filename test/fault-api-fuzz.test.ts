// Fuzz: random sequences of public Conn calls on both ends of a connection, with random
// sizes and timing, from a seeded PRNG. Nothing crashes or goes unhandled, every promise
// settles, every failure is the documented OpError, the bytes a peer reads are a prefix of
// the bytes written, in order, and no socket is left open.
// MUXNET_FUZZ_SEED replays a run (MUXNET_FUZZ_ITERATION=k: only iteration k of it);
// MUXNET_FUZZ_ITERATIONS sets the iterations per config.
import assert from 'node:assert/strict';
import { ErrClosed, ErrDeadlineExceeded, OpError, SystemError } from 'muxnet';
import type { Chunk, Conn } from 'muxnet';
import { loopConfigs } from './helpers/configs';
import { socketFds, socketsLeftOpen } from './helpers/fds';
import { Prng, fuzzIterations, fuzzSeed, replayable } from './helpers/fuzz';
import { pattern, patternMismatch } from './helpers/pattern';
import { connectPair } from './helpers/servers';
import { describeError, observe, sleep, withTimeout, type Observed } from './helpers/util';

const kSteps = 60;
const kSettleMs = 10_000;
const seed = fuzzSeed();
const iterations = fuzzIterations(6);

/** One end of the connection and what the fuzzer did to it. */
class End {
  peer!: End;
  closed = false;
  writeShut = false;
  lingerZero = false;
  readDeadlineEver = false;
  writeDeadlineEver = false;
  /** Bytes passed to write(), in call order: the pattern stream this end sends. */
  attempted = 0;
  /** Stream offset of the first write that failed; bytes after it may be missing. */
  firstFailedWrite = Infinity;
  /** Bytes read from the peer, in order, checked against the peer's pattern stream. */
  received = 0;
  firstMismatch = -1;
  sawEof = false;
  /** A for-await loop over this end is running; other reads wait for it to end. */
  iterating: Promise<unknown> | null = null;
  held: Chunk[] = [];
  /** How often each kind of call is made on this end (see Fuzz.weights). */
  weights: number[] = [];
  constructor(readonly name: string, readonly conn: Conn) {}
}

class Fuzz {
  readonly ops: { label: string; o: Observed<unknown> }[] = [];
  readonly problems: string[] = [];
  private count = 0;
  constructor(readonly rng: Prng, readonly a: End, readonly b: End) {}

  problem(msg: string): void {
    this.problems.push(msg);
  }

  label(end: End, what: string): string {
    return `#${this.count++} ${end.name}.${what}`;
  }

  /** A failure must be an OpError whose cause this end's history explains. */
  checkError(end: End, label: string, op: string, err: unknown): void {
    if (!(err instanceof OpError)) return this.problem(`${label}: ${describeError(err)}, expected an OpError`);
    if (err.op !== op) this.problem(`${label}: op ${err.op}, expected ${op}`);
    if (err.net !== 'tcp') this.problem(`${label}: net ${err.net}`);
    if (err.err instanceof ErrClosed) {
      if (!end.closed) this.problem(`${label}: ErrClosed on a connection that is open`);
    } else if (err.err instanceof ErrDeadlineExceeded) {
      const set = op === 'read' ? end.readDeadlineEver : op === 'write' ? end.writeDeadlineEver : false;
      if (!set || !err.timeout()) this.problem(`${label}: ErrDeadlineExceeded with no ${op} deadline set`);
    } else if (err.err instanceof SystemError) {
      // A reset comes from the peer's close; EPIPE also from our own closeWrite.
      const explained = end.peer.closed || (op === 'write' && err.code === 'EPIPE' && end.writeShut);
      const codes = op === 'read' ? ['ECONNRESET'] : op === 'write' ? ['ECONNRESET', 'EPIPE'] : ['ECONNRESET', 'EPIPE', 'ENOTCONN'];
      if (!codes.includes(err.code) || !explained) this.problem(`${label}: ${describeError(err)} (peer closed: ${end.peer.closed})`);
    } else {
      this.problem(`${label}: OpError with an undocumented cause ${describeError(err.err)}`);
    }
  }

  /** Watches a promise: it must settle (checked at the end); a rejection must be explained. */
  track<T>(end: End, label: string, op: string, p: Promise<T>, onValue: (v: T) => void, onError?: () => void): Promise<unknown> {
    this.ops.push({ label, o: observe(p) });
    return p.then(onValue, (e: unknown) => {
      onError?.();
      this.checkError(end, label, op, e);
    });
  }

  /** Bytes read by `end`, in stream order. */
  onData(end: End, label: string, bytes: Uint8Array | null): void {
    if (bytes === null) {
      end.sawEof = true;
      return;
    }
    if (end.sawEof) this.problem(`${label}: ${bytes.length} bytes after end of stream`);
    const bad = patternMismatch(bytes, end.received);
    if (bad >= 0 && end.firstMismatch < 0) end.firstMismatch = end.received + bad;
    end.received += bytes.length;
  }

  /** Calls fn; a synchronous throw must be an explained OpError (op 'set' or 'close'). */
  sync(end: End, label: string, op: string, fn: () => void): void {
    try {
      fn();
    } catch (e) {
      this.checkError(end, label, op, e);
    }
  }

  read(end: End): void {
    if (end.iterating) return;
    const size = this.rng.pick([0, 1, 7, 100, 1500, 16 * 1024, 70_000]);
    const buf = new Uint8Array(size);
    const label = this.label(end, `read(${size})`);
    this.track(end, label, 'read', end.conn.read(buf), (n) => {
      if (n !== null && !(Number.isInteger(n) && n <= size && (n >= 1 || size === 0))) {
        this.problem(`${label}: resolved ${n}`);
      }
      this.onData(end, label, n === null ? null : buf.subarray(0, n));
    });
  }

  readChunk(end: End): void {
    if (end.iterating) return;
    const label = this.label(end, 'readChunk()');
    this.track(end, label, 'read', end.conn.readChunk(), (chunk) => {
      if (chunk === null) return this.onData(end, label, null);
      const bytes = chunk.bytes;
      if (bytes.length < 1) this.problem(`${label}: an empty chunk`);
      this.onData(end, label, bytes.slice());
      const how = this.rng.int(0, 9);
      if (how < 7) {
        chunk.release();
      } else if (how === 7) {
        chunk.release();
        chunk.release();  // idempotent
      } else if (how === 8) {
        chunk.release();
        try {
          void chunk.bytes;
          this.problem(`${label}: bytes readable after release()`);
        } catch (e) {
          if ((e as { code?: string }).code !== 'ERR_CHUNK_RELEASED') this.problem(`${label}: ${describeError(e)}`);
        }
      } else {
        end.held.push(chunk);  // released at the end: the pool must cope
      }
    });
  }

  forAwait(end: End): void {
    if (end.iterating) return;
    const max = this.rng.int(1, 5);
    const label = this.label(end, `for-await(${max})`);
    const loop = (async () => {
      let n = 0;
      for await (const view of end.conn) {
        this.onData(end, label, view.slice());
        if (++n >= max) break;
      }
      if (n < max) this.onData(end, label, null);  // the loop ended: end of stream
    })();
    end.iterating = loop;
    const done = (): void => {
      if (end.iterating === loop) end.iterating = null;
    };
    void this.track(end, label, 'read', loop, done, done);
  }

  write(end: End): void {
    const len = this.rng.pick([0, 1, 13, 1000, 4096, 60_000, 200_000, 600_000]);
    const offset = end.attempted;
    end.attempted += len;
    const label = this.label(end, `write(${len} @${offset})`);
    this.track(end, label, 'write', end.conn.write(pattern(len, offset)), (v) => {
      if (v !== undefined) this.problem(`${label}: resolved ${String(v)}`);
    }, () => {
      end.firstFailedWrite = Math.min(end.firstFailedWrite, offset);
    });
  }

  deadline(end: End): void {
    const which = this.rng.pick(['setDeadline', 'setReadDeadline', 'setWriteDeadline'] as const);
    const roll = this.rng.int(0, 9);
    const value: number | Date = roll < 3 ? 0 : roll < 5 ? Date.now() - this.rng.int(0, 20)
      : roll < 8 ? Date.now() + this.rng.int(1, 40) : new Date(Date.now() + this.rng.int(1, 40));
    const label = this.label(end, `${which}(${value instanceof Date ? 'Date' : value === 0 ? 0 : 'now±'})`);
    this.sync(end, label, 'set', () => {
      end.conn[which](value);
      const set = value !== 0;
      if (which !== 'setWriteDeadline') end.readDeadlineEver ||= set;
      if (which !== 'setReadDeadline') end.writeDeadlineEver ||= set;
    });
  }

  /**
   * Socket options mid-stream. The buffer sizes are set once, before any traffic (see the
   * run): shrinking SO_RCVBUF under a flowing loopback stream can leave the window below
   * one MSS (64 KiB on loopback) and the sender in zero-window probing for many seconds,
   * a kernel effect, not muxnet's.
   */
  option(end: End): void {
    const roll = this.rng.int(0, 9);
    const label = this.label(end, ['setNoDelay', 'setKeepAlive', 'setLinger(0)'][roll % 3]);
    this.sync(end, label, 'set', () => {
      switch (roll % 3) {
        case 0: return end.conn.setNoDelay(this.rng.chance(0.5));
        case 1: return end.conn.setKeepAlive(this.rng.chance(0.5), { idle: 1000, interval: 1000, count: 3 });
        default:
          if (roll !== 2) return undefined;  // rarely: a close then resets the connection
          end.lingerZero = true;
          return end.conn.setLinger(0);
      }
    });
  }

  closeWrite(end: End): void {
    const label = this.label(end, 'closeWrite()');
    if (!end.closed) end.writeShut = true;
    this.sync(end, label, 'close', () => end.conn.closeWrite());
  }

  close(end: End): void {
    end.closed = true;
    try {
      end.conn.close();
    } catch (e) {
      this.problem(`${end.name}.close() threw ${describeError(e)}`);
    }
  }

  async pause(): Promise<void> {
    switch (this.rng.int(0, 4)) {
      case 0: return;
      case 1: return Promise.resolve();
      case 2: return new Promise((resolve) => setImmediate(resolve));
      default: return sleep(this.rng.int(0, 5));
    }
  }

  /**
   * Swarm testing: each end of each run draws its own weights for the kinds of call, so
   * some runs hardly read on one side (queues fill), some never close, some are all
   * deadlines. closeWrite and close stay rare: each ends a direction for the rest of the run.
   */
  weights(): number[] {
    const w = (options: number[]): number => this.rng.pick(options);
    return [w([0, 1, 3, 6]), w([0, 1, 3]), w([0, 1, 2]), w([1, 3, 6]), w([0, 1, 2, 4]), w([0, 1, 2]),
      w([0, 0.1, 0.3]), w([0, 0.05, 0.2]), 1];
  }

  async step(): Promise<void> {
    const end = this.rng.chance(0.5) ? this.a : this.b;
    const w = end.weights;
    let roll = this.rng.next() * w.reduce((x, y) => x + y, 0);
    let kind = 0;
    while (kind < w.length - 1 && roll >= w[kind]) roll -= w[kind++];
    switch (kind) {
      case 0: this.read(end); break;
      case 1: this.readChunk(end); break;
      case 2: this.forAwait(end); break;
      case 3: this.write(end); break;
      case 4: this.deadline(end); break;
      case 5: this.option(end); break;
      case 6: this.closeWrite(end); break;
      case 7: this.close(end); break;
      default: break;  // a pause only
    }
    await this.pause();
  }

  /** Reads `end` to its end of stream (or an error), after any for-await loop on it. */
  async drain(end: End): Promise<void> {
    await end.iterating?.catch(() => undefined);
    const label = this.label(end, 'drain');
    const buf = new Uint8Array(64 * 1024);
    for (;;) {
      let n: number | null;
      try {
        n = await end.conn.read(buf);
      } catch (e) {
        this.checkError(end, label, 'read', e);
        return;
      }
      this.onData(end, label, n === null ? null : buf.subarray(0, n));
      if (n === null) return;
      if (end.received > end.peer.attempted) {
        this.problem(`${label}: read ${end.received} bytes, more than the ${end.peer.attempted} written`);
        return;
      }
    }
  }

  /**
   * Ends the run without close(): deadlines cleared, both sides shut down for writing and
   * read to the end, so every pending read and write must settle by itself.
   */
  async settle(): Promise<void> {
    const open = [this.a, this.b].filter((e) => !e.closed);
    for (const end of open) this.sync(end, `${end.name}.setDeadline(0)`, 'set', () => end.conn.setDeadline(0));
    for (const end of open) if (!end.writeShut) this.closeWrite(end);
    // The drains are tracked like the calls, so a hang names them too.
    for (const end of open) this.ops.push({ label: `${end.name}.drain to end of stream`, o: observe(this.drain(end)) });
    const all = Promise.all(this.ops.map((op) => op.o.promise));
    try {
      await withTimeout(all, kSettleMs, 'every call to settle');
    } catch (e) {
      const pending = this.ops.filter((op) => !op.o.settled).map((op) => op.label);
      throw new Error(`${(e as Error).message}; still pending: ${pending.slice(0, 10).join(', ')}`);
    }
  }

  /** Bytes `to` read from `from` are a prefix of what `from` wrote; all of it when nothing failed. */
  checkStream(from: End, to: End): void {
    const what = `${from.name}->${to.name}`;
    if (to.received > from.attempted) this.problem(`${what}: ${to.received} bytes read of ${from.attempted} written`);
    if (to.firstMismatch >= 0 && to.firstMismatch < from.firstFailedWrite) {
      this.problem(`${what}: wrong byte at stream offset ${to.firstMismatch} (first failed write at ${from.firstFailedWrite})`);
    }
    // Neither end closed during the run and every write succeeded: the reader got it all.
    if (!from.closed && !to.closed && from.firstFailedWrite === Infinity) {
      if (!to.sawEof) this.problem(`${what}: no end of stream after closeWrite`);
      if (to.received !== from.attempted) this.problem(`${what}: ${to.received} of ${from.attempted} bytes arrived`);
    }
  }
}

for (const cfg of loopConfigs()) {
  describe(`fault: API call-sequence fuzz [${cfg.name}]`, () => {
    it(`${iterations} random call sequences of ${kSteps} steps on both ends (seed ${seed})`, async function () {
      this.timeout(Math.max(30_000, iterations * (kSettleMs + 2000)));
      const unhandled: unknown[] = [];
      const onUnhandled = (reason: unknown): void => void unhandled.push(reason);
      process.on('unhandledRejection', onUnhandled);
      try {
        const only = process.env.MUXNET_FUZZ_ITERATION;  // replays one iteration of a seed
        for (let k = only ? Number(only) : 0; k < (only ? Number(only) + 1 : iterations); k++) {
          await replayable(seed, `${cfg.name}, MUXNET_FUZZ_ITERATION=${k}`, async () => {
            const rng = new Prng((seed + k * 0x9e3779b9) >>> 0);
            const before = socketFds();
            const limit = rng.pick([4096, 16 * 1024, 64 * 1024, 1024 * 1024]);
            const pair = await connectPair({ ...cfg.options, writeQueueLimit: limit } as object);
            const a = new End('A', pair.client);
            const b = new End('B', pair.server);
            a.peer = b;
            b.peer = a;
            const fuzz = new Fuzz(rng, a, b);
            a.weights = fuzz.weights();
            b.weights = fuzz.weights();
            for (const end of [a, b]) {
              if (rng.chance(0.5)) end.conn.setReadBuffer(rng.pick([16384, 65536, 262144]));
              if (rng.chance(0.5)) end.conn.setWriteBuffer(rng.pick([16384, 65536, 262144]));
            }
            try {
              for (let s = 0; s < kSteps; s++) await fuzz.step();
              await fuzz.settle();
              fuzz.checkStream(a, b);
              fuzz.checkStream(b, a);
              for (const end of [a, b]) for (const c of end.held.splice(0)) c.release();
            } finally {
              pair.close();
            }
            await new Promise((resolve) => setImmediate(resolve));
            assert.deepEqual(fuzz.problems, []);
            assert.deepEqual(unhandled.map(describeError), [], 'unhandled rejections');
            if (before !== null) assert.deepEqual(await socketsLeftOpen(before), [], 'sockets left open');
          });
        }
      } finally {
        process.off('unhandledRejection', onUnhandled);
      }
    });
  });
}
