// The micro scenario: costs of muxnet's internals measured with Benchmark.js in a process of
// their own (pinned to the load CPU): the JS->native call on the read and write paths, a
// Conn write+read through the loop, the per-event cost of batch delivery, and the
// JavaScript of one Go-style echo message with the native side stubbed out.
// Child: `node micro.js <json options>` prints one JSON line per case and a "done" line.
import { spawn } from 'node:child_process';
import * as path from 'node:path';
import Benchmark = require('benchmark');
import { dial, listen, type Listener } from '../lib/index';
import { resolveLoopOptions, type LoopOptions } from '../lib/backends';
import { Conn, kDefaultWriteQueueLimit } from '../lib/conn';
import { EAGAIN, EINPROGRESS } from '../lib/errors';
import { Loop, loopFor } from '../lib/loop';
import { EventKind, SubmitOp, type NativeLoop } from '../lib/native';
import { lineReader, pin, root, startServer, type LoadResult } from './measure';
import type { Result, Task } from './types';

export interface MicroPlan {
  /** Seconds Benchmark.js samples each case (its maxTime); the batch case gets as long. */
  maxTime: number;
  /** Readable connections per batch in the batch-delivery case. */
  batchPairs: number;
  /** 'default' (the first backend configuration only) or 'all'. */
  configs: 'default' | 'all';
}

export function microPlan(quick: boolean): MicroPlan {
  // 256 readable connections: one wake-up's worth (a batch holds 1,024 events) and well under
  // select's FD_SETSIZE with both ends of every pair in this process.
  return quick
    ? { maxTime: 0.25, batchPairs: 256, configs: 'default' }
    : { maxTime: 2, batchPairs: 256, configs: 'all' };
}

/** One case's numbers, as the child prints them. */
interface CaseResult {
  case: string;
  form: string;
  tool: string;
  connections: number;
  size: number;
  ops_per_s: number;
  ns_per_op: number;
  rme_pct: number;
  samples: number;
  /** write-64: writes the kernel did not take at once (queued or refused), of all. */
  not_written?: number;
}

interface ChildOptions {
  config: string;
  options: LoopOptions;
  /** Port of a discard server in another process: the peer that drains the write case. */
  peerPort: number;
  plan: MicroPlan;
}

// ---------------------------------------------------------------- the child: the measuring

function line(event: Record<string, unknown>): void {
  process.stdout.write(`${JSON.stringify(event)}\n`);
}

/** A connected loopback pair on the loop: the dialing end and the accepted end. */
async function pair(ln: Listener, options: LoopOptions): Promise<[Conn, Conn]> {
  const accepted = ln.accept();
  const dialed = await dial('tcp', ln.addr().toString(), options);
  return [dialed, await accepted];
}

/** The native id of a connection: its slot in the loop's handle table. */
function idOf(loop: Loop, conn: Conn): number {
  const id = conn._handleOn(loop);
  if (id < 0) throw new Error('connection not on this loop');
  return id;
}

/** Runs one Benchmark.js case to completion; resolves with its numbers. */
function runCase(name: string, options: Benchmark.Options, maxTime: number): Promise<Benchmark.Target> {
  return new Promise((resolve, reject) => {
    new Benchmark.Suite(name)
      .add(name, { ...options, maxTime })
      .on('cycle', (event) => {
        if (event.target.error) reject(event.target.error);
        else resolve(event.target);
      })
      .on('error', (event) => reject(event.target.error ?? new Error(`${name} failed`)))
      .run({ async: true });
  });
}

function fromBenchmark(c: Omit<CaseResult, 'ops_per_s' | 'ns_per_op' | 'rme_pct' | 'samples'>, t: Benchmark.Target): CaseResult {
  return { ...c, ops_per_s: t.hz, ns_per_op: 1e9 / t.hz, rme_pct: t.stats.rme, samples: t.stats.sample.length };
}

async function measureReadEagain(loop: Loop, ln: Listener, options: LoopOptions, maxTime: number): Promise<CaseResult> {
  const [a, b] = await pair(ln, options);
  const id = idOf(loop, a);
  const buf = new Uint8Array(64);
  // Nothing is ever sent to `a`: every call is the whole JS->native->read(2)->EAGAIN path.
  if (loop.native.read(id, buf) !== EAGAIN) throw new Error('read-eagain: expected EAGAIN on an idle socket');
  let wrong = 0;
  const t = await runCase('read-eagain', {
    fn: () => {
      if (loop.native.read(id, buf) !== EAGAIN) wrong++;
    },
  }, maxTime);
  a.close();
  b.close();
  if (wrong > 0) throw new Error(`read-eagain: ${wrong} reads did not return EAGAIN`);
  return fromBenchmark({ case: 'read-eagain', form: 'native', tool: 'benchmark', connections: 1, size: 0 }, t);
}

async function measureWrite(loop: Loop, options: LoopOptions, peerPort: number, maxTime: number): Promise<CaseResult> {
  // The peer is a discard server in another process on the other CPU, so it drains while
  // this thread writes (Benchmark.js runs each cycle synchronously, without yielding).
  const c = await dial('tcp', `127.0.0.1:${peerPort}`, options);
  const id = idOf(loop, c);
  const msg = new Uint8Array(64).fill(120);
  let calls = 0;
  let notWritten = 0;
  const t = await runCase('write-64', {
    fn: () => {
      calls++;
      if (loop.native.write(id, msg, c.writeQueueLimit) !== 0) notWritten++;
    },
  }, maxTime);
  c.close();
  return { ...fromBenchmark({ case: 'write-64', form: 'native', tool: 'benchmark', connections: 1, size: 64 }, t), not_written: notWritten / calls };
}

async function measureRoundTrip(ln: Listener, options: LoopOptions, maxTime: number): Promise<CaseResult> {
  const [a, b] = await pair(ln, options);
  const msg = new Uint8Array(64).fill(120);
  const buf = new Uint8Array(64 * 1024);
  const t = await runCase('conn-write-read', {
    defer: true,
    // One op: a.write resolves once the bytes are in the kernel; b.read waits for the
    // readiness event through the loop (after the first op its socket is known drained).
    fn: (deferred: Benchmark.Deferred) => {
      a.write(msg).then(() => b.read(buf)).then(() => deferred.resolve(), (err: Error) => {
        console.error(err);
        process.exit(1);
      });
    },
  }, maxTime);
  a.close();
  b.close();
  return fromBenchmark({ case: 'conn-write-read', form: 'go', tool: 'benchmark', connections: 1, size: 64 }, t);
}

/**
 * Batch delivery, timed by hand: Benchmark.js times every op whole, and each op would then
 * include the N writes that make the connections readable. Here the writes come first
 * (synchronous, untimed); the clock runs from the last write until every pending Conn.read
 * has resolved: readiness wake-up, one JS call per batch, dispatch, read(2), promise.
 */
async function measureBatch(ln: Listener, loop: Loop, options: LoopOptions, pairs: number, maxTime: number): Promise<CaseResult> {
  const conns: [Conn, Conn][] = [];
  for (let i = 0; i < pairs; i++) conns.push(await pair(ln, options));
  const ids = conns.map(([a]) => idOf(loop, a));
  const bufs = conns.map(() => new Uint8Array(64));
  const one = new Uint8Array(1).fill(120);
  const perEventNs: number[] = [];
  const kWarmupRounds = 20;   // first reads arm readiness (EAGAIN); JIT warm-up
  const kMaxRounds = 100_000;  // the time limit is the usual bound; this is the backstop
  const stopAt = performance.now() + (maxTime * 1000);
  for (let round = 0; round < kMaxRounds && (round < kWarmupRounds + 5 || performance.now() < stopAt); round++) {
    let left = pairs;
    let t1 = 0n;
    const all = new Promise<void>((resolve, reject) => {
      const onRead = (n: number | null): void => {
        if (n !== 1) reject(new Error(`batch: read ${n}, expected 1 byte`));
        else if (--left === 0) {
          t1 = process.hrtime.bigint();
          resolve();
        }
      };
      for (let i = 0; i < pairs; i++) conns[i][1].read(bufs[i]).then(onRead, reject);
    });
    for (let i = 0; i < pairs; i++) {
      if (loop.native.write(ids[i], one, 1024) !== 0) throw new Error('batch: a 1-byte write was not taken at once');
    }
    const t0 = process.hrtime.bigint();
    await all;
    if (round >= kWarmupRounds) perEventNs.push(Number(t1 - t0) / pairs);
  }
  for (const [a, b] of conns) {
    a.close();
    b.close();
  }
  return fromSamples({ case: 'batch-delivery', form: 'go', tool: 'manual-timer', connections: pairs, size: 1 }, perEventNs);
}

/** A hand-timed case's numbers from its samples (ns per op): the median, and the mean's 95% margin. */
function fromSamples(c: Omit<CaseResult, 'ops_per_s' | 'ns_per_op' | 'rme_pct' | 'samples'>, ns: number[]): CaseResult {
  const sorted = [...ns].sort((x, y) => x - y);
  const med = sorted[sorted.length >> 1];
  const mean = ns.reduce((s, v) => s + v, 0) / ns.length;
  const sd = Math.sqrt(ns.reduce((s, v) => s + (v - mean) ** 2, 0) / Math.max(1, ns.length - 1));
  return {
    ...c,
    ops_per_s: 1e9 / med,
    ns_per_op: med,
    rme_pct: (100 * 1.96 * sd) / Math.sqrt(ns.length) / mean,  // 95% margin, as Benchmark.js reports
    samples: ns.length,
  };
}

/**
 * The JavaScript of one Go-style echo message, without a syscall: 50 connections on a loop
 * of their own whose native side is a stand-in (a submitted read waits, a submitted write is
 * taken whole), fed batches of Read events (64 bytes each, read natively). One message:
 * dispatch, the read's promise, the handler's await, write() and the next read() queued for
 * the batch's one submit(), the await of the write's promise. The ping-pong scenario's
 * Go-style form costs more than the floor by this, plus a share of one Node-API call per
 * batch and what the kernel's work does to the caches. Includes a setImmediate per batch
 * (~1/50 of it).
 */
async function measureGoEchoJs(options: LoopOptions, maxTime: number): Promise<CaseResult> {
  const loop = new Loop(resolveLoopOptions(options));
  const ops = loop.ops;
  const stub: NativeLoop = {
    ...loop.native, read: () => 64, write: () => 0, wantRead: () => 0, pauseRead: () => 0, close: () => 0,
    submit: (count: number) => {
      for (let o = 0; o < count * 4; o += 4) {
        const read = ops[o] === SubmitOp.Read;
        ops[o + 3] = read ? EINPROGRESS : 0;
        if (read) ops[o + 2] = -1;
      }
      return count;
    },
  };
  (loop as { native: NativeLoop }).native = stub;
  const n = 50;
  const conns: Conn[] = [];
  for (let id = 0; id < n; id++) {
    const c = new Conn(loop, id, 'tcp', kDefaultWriteQueueLimit);
    conns.push(c);
    void (async () => {
      const buf = new Uint8Array(64 * 1024);
      for (;;) {
        const got = await c.read(buf);
        if (got === null) return;
        await c.write(buf.subarray(0, got));
      }
    })().catch(() => { /* ErrClosed at the end */ });
  }
  for (let id = 0; id < n; id++) loop.events.set([EventKind.Read, id, 64, -1], id * 4);
  const dispatch = (loop as unknown as { dispatch(count: number): void }).dispatch.bind(loop);
  const settled = (): Promise<void> => new Promise((resolve) => setImmediate(resolve));
  await settled();
  const perMessageNs: number[] = [];
  const kBatches = 20;        // per sample
  const kWarmupSamples = 50;
  const stopAt = performance.now() + (maxTime * 1000);
  for (let s = 0; s < 100_000 && (s < kWarmupSamples + 5 || performance.now() < stopAt); s++) {
    const t0 = process.hrtime.bigint();
    for (let b = 0; b < kBatches; b++) {
      dispatch(n);
      await settled();
    }
    if (s >= kWarmupSamples) perMessageNs.push(Number(process.hrtime.bigint() - t0) / (kBatches * n));
  }
  for (const c of conns) c.close();
  return fromSamples({ case: 'go-echo-js', form: 'go', tool: 'manual-timer', connections: n, size: 64 }, perMessageNs);
}

async function child(o: ChildOptions): Promise<void> {
  const loop = loopFor(resolveLoopOptions(o.options));
  const ln = listen('tcp', '127.0.0.1:0', { ...o.options, backlog: 1024 });
  const report = (r: CaseResult): void => line({ event: 'result', config: o.config, ...r });
  process.stderr.write(`\rmicro ${o.config}: read-eagain`.padEnd(60));
  report(await measureReadEagain(loop, ln, o.options, o.plan.maxTime));
  process.stderr.write(`\rmicro ${o.config}: write-64`.padEnd(60));
  report(await measureWrite(loop, o.options, o.peerPort, o.plan.maxTime));
  process.stderr.write(`\rmicro ${o.config}: conn-write-read`.padEnd(60));
  report(await measureRoundTrip(ln, o.options, o.plan.maxTime));
  process.stderr.write(`\rmicro ${o.config}: batch-delivery`.padEnd(60));
  report(await measureBatch(ln, loop, o.options, o.plan.batchPairs, o.plan.maxTime));
  process.stderr.write(`\rmicro ${o.config}: go-echo-js`.padEnd(60));
  report(await measureGoEchoJs(o.options, o.plan.maxTime));
  ln.close();
  line({ event: 'done' });
}

// ------------------------------------------------------ the orchestrator's side: the tasks

const kCases = 5;

/** Runs the child for one loop configuration on CPU 1, its peer on CPU 0. */
async function runChild(config: { name: string; options: Record<string, string> }, plan: MicroPlan): Promise<Result[]> {
  const peer = await startServer(path.join(root, '.bench-build', 'bench', 'servers', 'discard.js'), ['node', '{}']);
  const options: ChildOptions = { config: config.name, options: config.options, peerPort: peer.port, plan };
  const [cmd, argv] = pin(1, process.execPath, [__filename, JSON.stringify(options)]);
  const proc = spawn(cmd, argv, { stdio: ['ignore', 'pipe', 'inherit'] });
  const next = lineReader(proc);
  // Each case takes about maxTime (Benchmark.js may run over by a cycle), plus set-up.
  const limit = setTimeout(() => proc.kill('SIGKILL'), (kCases * plan.maxTime * 3 + 60) * 1000);
  const results: Result[] = [];
  try {
    for (;;) {
      const text = await next();
      if (text === '') throw new Error(`micro benchmark for ${config.name} exited early`);
      const event = JSON.parse(text) as { event: string } & CaseResult;
      if (event.event === 'done') break;
      const m: LoadResult = {
        // Not a load run: the fields of one do not apply (null in the JSON).
        messages: NaN, seconds: NaN, rate: event.ops_per_s, p50_us: NaN, p99_us: NaN, p999_us: NaN,
        cpu_us_per_msg: NaN, server_cpu: NaN, rss_kib: NaN,
        ops_per_s: event.ops_per_s, ns_per_op: event.ns_per_op, rme_pct: event.rme_pct, samples: event.samples,
        ...(event.not_written !== undefined ? { not_written: event.not_written } : {}),
      };
      results.push({
        scenario: 'micro',
        config: config.name,
        form: event.form,
        connections: event.connections,
        idle: 0,
        size: event.size,
        tool: event.tool,
        case: event.case,
        runs: [m],
        median: m,
      });
    }
  } finally {
    clearTimeout(limit);
    await peer.stop();
  }
  return results;
}

/** One step per loop configuration. */
export function microTasks(plan: MicroPlan, configs: { name: string; options: Record<string, string> }[]): Task[] {
  const chosen = plan.configs === 'all' ? configs : configs.slice(0, 1);
  return chosen.map((config) => ({
    label: `micro ${config.name}`,
    run: () => runChild(config, plan),
  }));
}

if (require.main === module) {
  child(JSON.parse(process.argv[2] ?? '{}') as ChildOptions).then(() => process.exit(0), (err: unknown) => {
    console.error(err);
    process.exit(1);
  });
}
