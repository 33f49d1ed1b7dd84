// RPC server, Go's net/rpc pattern: calls pipelined over one connection, each served
// concurrently and answered as soon as it is done, so replies go out OUT OF ORDER, matched by
// their call id (frame.ts: [length][id][JSON]). A malformed frame closes that connection only;
// an oversize one is refused with an error reply, then the connection closes.
//   npx tsc -p examples/tsconfig.json && node .test-build/examples/rpc/server.js [127.0.0.1:7009]
// Try it: node .test-build/examples/rpc/client.js 127.0.0.1:7009 sleep '[500, "late"]'
// Methods: echo(any) -> any; add([a, b]) -> a + b; sleep([ms, value]) -> value after ms (at most 10 s).
import { setTimeout as sleep } from 'node:timers/promises';
import { listenOrExit, stopOnSignals } from '../shared/cli';
import { lingerClose } from '../shared/linger';
import { encodeFrame, FrameTooLarge, frames } from './frame';

const usage = 'rpc/server.js [host:port]';
// A client pipelining faster than calls finish waits (TCP backpressure) beyond this many:
// with replies of at most 1 MiB, a connection holds a bounded amount of memory.
const maxInFlight = 64;

const methods: Record<string, (params: unknown) => Promise<unknown>> = {
  echo: async (params) => params,
  add: async (params) => {
    if (!Array.isArray(params) || params.length !== 2 || !params.every((p) => typeof p === 'number')) {
      throw new Error('add: expected [a, b], two numbers');
    }
    return params[0] + params[1];
  },
  sleep: async (params) => {
    const [ms, value] = Array.isArray(params) ? params : [];
    if (typeof ms !== 'number' || !(ms >= 0 && ms <= 10_000)) throw new Error('sleep: expected [ms from 0 to 10000, value]');
    await sleep(ms);
    return value;
  },
};

const ln = listenOrExit(process.argv[2] ?? '127.0.0.1:7009', usage);
let calls = 0;
stopOnSignals(ln, 11_000, () => `, ${calls} calls answered`);

void ln.serve(async (conn, signal) => {
  const running = new Set<Promise<void>>();
  const stop = (): void => conn.setReadDeadline(1);  // shutdown: read no more calls, finish these
  signal.addEventListener('abort', stop, { once: true });
  try {
    for await (const { id, message } of frames(conn)) {
      const { method, params } = (message ?? {}) as { method?: unknown; params?: unknown };
      if (typeof method !== 'string') throw new Error(`frame ${id}: expected {"method": string, "params": any}`);
      // Not awaited: the next call is read while this one runs; its reply is one write of one
      // whole frame, so replies never interleave on the wire.
      const call = (methods[method] ?? (async () => { throw new Error(`no method ${JSON.stringify(method)}`); }))(params)
        .then((result) => ({ result }), (err: Error) => ({ error: err.message }))
        .then((reply) => conn.write(encodeFrame(id, reply)))
        .then(() => { calls++; }, () => {})  // the client left: nobody to answer
        .finally(() => running.delete(call));
      running.add(call);
      if (running.size >= maxInFlight) await Promise.race(running);
    }
  } catch (err) {
    if (err instanceof FrameTooLarge) {
      await conn.write(encodeFrame(err.id, { error: err.message })).catch(() => {});
      await Promise.allSettled(running);
      return await lingerClose(conn);
    }
    // A malformed frame (or a reset, or the shutdown's deadline): the calls under way still
    // finish below, then this connection, and only this one, is closed.
    if (!signal.aborted) console.log(`${conn.remoteAddr()}: closing: ${(err as Error).message}`);
  } finally {
    signal.removeEventListener('abort', stop);
  }
  await Promise.allSettled(running);
}, { onError: () => {} });
