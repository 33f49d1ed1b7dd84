// What every benchmark server process shares: its command line and its "ready" line.
import { PerformanceObserver } from 'node:perf_hooks';
import { resolveLoopOptions, type LoopOptions } from '../../lib/backends';
import { loopFor } from '../../lib/loop';
import type { Conn } from '../../lib/conn';

/** `node <server>.js <form> <json loop options>`. */
export function serverArgs(): { form: string; options: LoopOptions } {
  const [form = 'go', optionsJson = '{}'] = process.argv.slice(2);
  return { form, options: JSON.parse(optionsJson) as LoopOptions };
}

/**
 * Milliseconds spent in garbage collection since the observer started, summed from V8's gc
 * performance entries. Entries arrive a little after each collection, so a reading can lag
 * the last one by a few milliseconds: the harness takes differences over seconds-long windows.
 */
let gcMs = 0;
function observeGc(): void {
  new PerformanceObserver((list) => {
    for (const entry of list.getEntries()) gcMs += entry.duration;
  }).observe({ entryTypes: ['gc'] });
}

/**
 * The orchestrator's side channel, stdin: the server exits when it closes, and answers each
 * line "heap" with {"heapUsed"} in bytes, measured after a full collection when the process
 * runs with --expose-gc (the rss scenario): the JavaScript memory that is really held; and
 * each line "gc" with {"gc_ms"}, the garbage collection time since the server started.
 */
export function obeyStdin(): void {
  observeGc();
  let pending = '';
  process.stdin.on('data', (chunk: Buffer) => {
    pending += chunk.toString();
    for (let nl = pending.indexOf('\n'); nl >= 0; nl = pending.indexOf('\n')) {
      const line = pending.slice(0, nl).trim();
      pending = pending.slice(nl + 1);
      if (line === 'gc') {
        process.stdout.write(`${JSON.stringify({ gc_ms: gcMs })}\n`);
        continue;
      }
      if (line !== 'heap') continue;
      const gc = (globalThis as { gc?: () => void }).gc;
      if (gc !== undefined) {
        gc();
        gc();  // the second collects what the first's finalizers let go
      }
      process.stdout.write(`${JSON.stringify({ heapUsed: process.memoryUsage().heapUsed })}\n`);
    }
  });
  process.stdin.on('end', () => process.exit(0));
}

/** The Go-style echo handler: read into one 64 KiB buffer, write what came, until end of stream. */
export async function echoReadWrite(c: { read(buf: Uint8Array): Promise<number | null>; write(data: Uint8Array): Promise<void> }): Promise<void> {
  const buf = new Uint8Array(64 * 1024);
  for (;;) {
    const n = await c.read(buf);
    if (n === null) return;
    await c.write(buf.subarray(0, n));
  }
}

/** Tells the orchestrator the server listens: one JSON line {"port","pid"}. */
export function ready(port: number): void {
  process.stdout.write(`${JSON.stringify({ port, pid: process.pid })}\n`);
}

/** The floor of a backend: a listener whose connections echo or discard in C++. */
export function serveNative(options: LoopOptions, discard: boolean): void {
  const loop = loopFor(resolveLoopOptions(options));
  const id = loop.native.listen('127.0.0.1', 0, 4096, true, false, false);
  if (id < 0) throw new Error(`listen failed: ${id}`);
  loop.native.setNativeEcho(id, discard);
  loop.native.setAccepting(id, 0x7fffffff);  // the floor accepts without a JS queue
  const addr = loop.native.addr(id, false);
  ready(typeof addr === 'number' ? 0 : addr[1]);
}

/** The Go-style echo of one connection: {@link echoReadWrite}, then close it. */
export async function echoConn(c: Conn): Promise<void> {
  try {
    await echoReadWrite(c);
  } catch {
    // a reset at the end of a run
  }
  c.close();
}
