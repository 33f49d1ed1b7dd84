// Worker-thread body for workers.test.ts: uses muxnet inside a worker and reports by postMessage.
import { parentPort, workerData } from 'node:worker_threads';
import { dial, listen } from 'muxnet';
import type { Conn, Listener, LoopOptions } from 'muxnet';
import { roundTrip } from './io';
import { pattern } from './pattern';
import { startEcho } from './servers';

/** What the main thread asks the worker to do. */
export interface WorkerJob {
  /**
   * echo: serve and dial, echo, close everything, report, and let the thread end by itself.
   * exit-with-open: open a listener, conns, and pending ops, report 'ready', process.exit(0).
   * hold-open: like exit-with-open, but wait for the main thread to terminate().
   */
  kind: 'echo' | 'exit-with-open' | 'hold-open';
  options: LoopOptions;
}

/** What the worker reports. */
export type WorkerReport =
  | { kind: 'done'; ok: true; bytes: number; backend: string }
  | { kind: 'ready' }
  | { kind: 'failed'; ok: false; error: string };

const job = workerData as WorkerJob;
const port = parentPort!;

async function echo(): Promise<void> {
  const srv = startEcho(job.options);
  const conns: Conn[] = [];
  let bytes = 0;
  try {
    for (let i = 0; i < 4; i++) conns.push(await dial('tcp', srv.address, job.options));
    await Promise.all(
      conns.map(async (c, i) => {
        const data = pattern(256 * 1024, i * 1000);
        const got = await roundTrip(c, data);
        if (!Buffer.from(got).equals(Buffer.from(data))) throw new Error(`conn ${i}: echo differs`);
        bytes += got.length;
      }),
    );
  } finally {
    for (const c of conns) c.close();
    await srv.close();
  }
  if (srv.errors.length > 0) throw srv.errors[0];
  port.postMessage({ kind: 'done', ok: true, bytes, backend: srv.ln.backend } satisfies WorkerReport);
}

/** Leaves a listener with a pending accept, a connected pair with a pending read, and a pending write. */
async function openThings(): Promise<void> {
  const ln: Listener = listen('tcp', '127.0.0.1:0', job.options);
  const idle: Listener = listen('tcp', '127.0.0.1:0', job.options);
  idle.accept().catch(() => {});
  const [server, client] = await Promise.all([ln.accept(), dial('tcp', ln.addr().toString(), job.options)]);
  client.read(new Uint8Array(64)).catch(() => {});
  server.setWriteBuffer(16 * 1024);
  client.setReadBuffer(16 * 1024);
  server.write(new Uint8Array(8 * 1024 * 1024)).catch(() => {});
  server.readChunk().catch(() => {});
  client.setReadDeadline(Date.now() + 60_000);
}

async function main(): Promise<void> {
  try {
    if (job.kind === 'echo') {
      await echo();
      return;
    }
    await openThings();
    port.postMessage({ kind: 'ready' } satisfies WorkerReport);
    if (job.kind === 'exit-with-open') process.exit(0);
  } catch (e) {
    port.postMessage({ kind: 'failed', ok: false, error: e instanceof Error ? String(e.stack) : String(e) } satisfies WorkerReport);
    process.exit(1);
  }
}

void main();
