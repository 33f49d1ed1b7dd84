// serveWorkers: one port served by two worker threads, in reuseport and handoff modes — spreading, stats, close, failures, arguments.
import assert from 'node:assert/strict';
import * as http from 'node:http';
import * as path from 'node:path';
import { pathToFileURL } from 'node:url';
import { backends, dial, serveWorkers, workerListener, WorkerError } from 'muxnet';
import type { Conn, WorkerGroup } from 'muxnet';
import type { EchoWorkerData } from './fixtures/workers-echo';
import { loopConfigs } from './helpers/configs';
import { socketFds, socketsLeftOpen } from './helpers/fds';
import { Resources, sleep, withTimeout } from './helpers/util';
import { skipSuiteOnWindows } from './helpers/platform';

const workerFile = path.join(__dirname, 'fixtures', 'workers-echo.js');

/** Sends `request`, half-closes, and reads the reply to EOF. */
async function ask(address: string, request: string, res?: Resources): Promise<string> {
  const c = await dial('tcp', address);
  res?.add(c);
  try {
    await c.write(request);
    c.closeWrite();
    const buf = new Uint8Array(4096);
    let reply = '';
    for (let i = 0; i < 100; i++) {
      const n = await c.read(buf);
      if (n === null) return reply;
      reply += Buffer.from(buf.subarray(0, n)).toString();
    }
    throw new Error(`reply to ${request} did not end: ${reply}`);
  } finally {
    c.close();
  }
}

/** The reply's parts: the serving worker's threadId and the echoed request. */
function parseReply(reply: string): { threadId: number; body: string } {
  const m = /^(\d+):(.*)$/s.exec(reply);
  assert.ok(m !== null, `reply "${reply}" is "<threadId>:<request>"`);
  return { threadId: Number(m[1]), body: m[2] };
}

// The default backend (and its edge-triggered variant, which the handoff listener's
// receive loop must drain by itself), plus poll on a helper thread: every worker's loop and
// the acceptor's run on the config.
const wanted = new Set([backends()[0], `${backends()[0]}-et`, 'poll']);
const configs = loopConfigs().filter((c) => wanted.has(c.name));

for (const cfg of configs) {
  for (const mode of ['reuseport', 'handoff'] as const) {
    describe(`serveWorkers [${cfg.name}, ${mode}]`, () => {
      skipSuiteOnWindows('serveWorkers needs SO_REUSEPORT or descriptor passing over a Unix socket, neither of which Windows has');
      const res = new Resources();
      let group: WorkerGroup | null = null;
      const start = async (workerData: EchoWorkerData = {}, closeTimeout = 20_000): Promise<WorkerGroup> => {
        group = await withTimeout(serveWorkers(workerFile, {
          workers: 2, address: '127.0.0.1:0', mode, loop: cfg.options, workerData, closeTimeout,
        }), 20_000, 'serveWorkers');
        return group;
      };
      afterEach(async () => {
        await res.closeAll();
        if (group !== null) await withTimeout(group.close(), 30_000, 'group close');
        group = null;
      });

      it('two workers echo on one shared port, and connections reach both', async function () {
        this.timeout(60_000);
        const g = await start();
        assert.equal(g.mode, mode);
        assert.notEqual(g.addr().port, 0, 'the real port, not the 0 asked for');
        const ids = g.threadIds();
        assert.equal(ids.length, 2);
        // Reuseport: the kernel picks a listener by a hash of the 4-tuple, so a few
        // connections may all land on one; 40 distinct client ports all landing on the same
        // worker has odds of 2^-39. Handoff: strict round-robin, so sequential clients alternate.
        const count = mode === 'reuseport' ? 40 : 24;
        const served = new Map<number, number>();
        for (let i = 0; i < count; i++) {
          const { threadId, body } = parseReply(await withTimeout(ask(String(g.addr()), `req-${i}`, res), 10_000, `request ${i}`));
          assert.equal(body, `req-${i}`);
          assert.ok(ids.includes(threadId), `served by a worker of the group (${threadId} in ${ids})`);
          served.set(threadId, (served.get(threadId) ?? 0) + 1);
        }
        assert.equal(served.size, 2, `both workers served: ${JSON.stringify([...served])}`);
        if (mode === 'handoff') assert.deepEqual([...served.values()], [count / 2, count / 2]);
      });

      it('each worker listener reports the shared address, and accept()/for await/serveNode work on it', async function () {
        this.timeout(60_000);
        for (const style of ['iterate', 'accept'] as const) {
          const g = await start({ style });
          for (let i = 0; i < 4; i++) {
            assert.equal(parseReply(await withTimeout(ask(String(g.addr()), 'addr', res), 10_000, `${style} addr`)).body, String(g.addr()));
          }
          await withTimeout(g.close(), 20_000, `${style} group close`);
          group = null;
        }
        const g = await start({ style: 'http' });
        const bodies = await Promise.all([0, 1, 2, 3].map((i) => withTimeout(new Promise<string>((resolve, reject) => {
          http.get({ host: '127.0.0.1', port: g.addr().port, path: `/p${i}`, agent: false }, (r) => {
            let body = '';
            r.on('data', (d: Buffer) => { body += d.toString(); });
            r.on('end', () => resolve(`${r.statusCode} ${body}`));
          }).on('error', reject);
        }), 10_000, `GET /p${i}`)));
        for (const [i, b] of bodies.entries()) assert.match(b, new RegExp(`^200 \\d+:/p${i}$`));
      });

      it('stats() gives each worker its counters, and they sum to the connections made', async function () {
        this.timeout(60_000);
        const g = await start();
        const byThread = new Map<number, { conns: number; bytes: number }>();
        for (let i = 0; i < 20; i++) {
          const request = `stats-${i}`;
          const { threadId } = parseReply(await withTimeout(ask(String(g.addr()), request, res), 10_000, `request ${i}`));
          const t = byThread.get(threadId) ?? { conns: 0, bytes: 0 };
          t.conns++;
          t.bytes += request.length;
          byThread.set(threadId, t);
        }
        const s = await withTimeout(g.stats(), 10_000, 'stats');
        assert.equal(s.workers.length, 2);
        assert.deepEqual(s.workers.map((w) => w.worker), [0, 1]);
        for (const w of s.workers) {
          assert.equal(w.threadId, g.threadIds()[w.worker]);
          assert.equal(w.backend, cfg.options.backend);
          const mine = byThread.get(w.threadId) ?? { conns: 0, bytes: 0 };
          assert.equal(w.accepted, mine.conns, `worker ${w.worker} accepted`);
          assert.equal(w.bytesRead, mine.bytes, `worker ${w.worker} bytesRead`);
          assert.equal(w.dialed, 0);
          assert.equal(w.listeners, 1);
        }
        assert.equal(s.total.accepted, 20);
        assert.equal(s.total.listeners, 2);
        assert.equal(s.total.bytesRead, [...byThread.values()].reduce((a, t) => a + t.bytes, 0));
      });

      it('close() stops every worker, ends held connections, and leaves no socket open', async function () {
        this.timeout(60_000);
        const before = socketFds();
        // A short close timeout: a worker still serving the held connection is terminated.
        const g = await start({}, 300);
        const address = String(g.addr());
        parseReply(await withTimeout(ask(address, 'before close', res), 10_000, 'request'));
        const held: Conn = res.add(await dial('tcp', address));
        await held.write('half a request');  // never half-closed: its handler waits on read
        // Wait (bounded) until a worker holds it: in handoff mode it is handed over asynchronously.
        for (let i = 0; i < 100 && (await g.stats()).total.connections !== 1; i++) await sleep(20);
        assert.equal((await g.stats()).total.connections, 1, 'a worker holds the connection');
        await withTimeout(g.close(), 20_000, 'close');
        await withTimeout(g.close(), 1_000, 'second close');  // the same promise
        group = null;
        const buf = new Uint8Array(64);
        const end = await withTimeout(held.read(buf).then((n) => n, (err: { code?: string }) => err.code), 10_000, 'held read');
        assert.ok(end === null || end === 'ECONNRESET', `held connection ended (${end})`);
        held.close();
        await assert.rejects(dial('tcp', address), { code: 'ECONNREFUSED' });
        await assert.rejects(g.stats(), /closed/);
        if (before !== null) assert.deepEqual(await socketsLeftOpen(before), [], 'sockets left open');
      });

      it('close() lets idle workers end by themselves', async function () {
        this.timeout(60_000);
        // With a close timeout longer than the wait below, only workers that end by
        // themselves let close() resolve in time.
        const g = await start({}, 60_000);
        parseReply(await withTimeout(ask(String(g.addr()), 'one', res), 10_000, 'request'));
        await withTimeout(g.close(), 20_000, 'close of idle workers');
        group = null;
      });

      it('a worker that crashes is reported as an error event, and the other keeps serving', async function () {
        this.timeout(60_000);
        const g = await start();
        const reported = new Promise<WorkerError>((resolve) => g.once('error', resolve));
        // Whichever worker gets it dies; in reuseport mode try until one has (bounded).
        for (let i = 0; i < 20; i++) {
          await withTimeout(ask(String(g.addr()), 'crash', res), 10_000, 'crash request');
          const err = await Promise.race([reported, new Promise<null>((r) => setTimeout(() => r(null), 200))]);
          if (err !== null) break;
        }
        const err = await withTimeout(reported, 10_000, 'error event');
        assert.ok(err instanceof WorkerError);
        assert.equal(err.code, 'ERR_MUXNET_WORKER');
        assert.ok(err.worker === 0 || err.worker === 1);
        assert.match(String((err.cause as Error)?.message), /worker crashed on purpose/);
        const survivor = g.threadIds()[1 - err.worker];
        for (let i = 0; i < 6; i++) {
          const { threadId, body } = parseReply(await withTimeout(ask(String(g.addr()), `after-${i}`, res), 10_000, `after crash ${i}`));
          assert.equal(threadId, survivor);
          assert.equal(body, `after-${i}`);
        }
        const s = await withTimeout(g.stats(), 10_000, 'stats after crash');
        assert.deepEqual(s.workers.map((w) => w.worker), [1 - err.worker]);
      });

      it('a worker that throws at start rejects serveWorkers with its error, and leaves nothing open', async function () {
        this.timeout(60_000);
        const before = socketFds();
        await assert.rejects(start({ throwAtStart: true }), /worker failed on purpose at start/);
        if (before !== null) assert.deepEqual(await socketsLeftOpen(before), [], 'sockets left open');
      });
    });
  }
}

describe('serveWorkers: arguments', () => {
  skipSuiteOnWindows('serveWorkers needs SO_REUSEPORT or descriptor passing over a Unix socket, neither of which Windows has');
  const ok = { workers: 2, address: '127.0.0.1:0' };
  const cases: [string, () => Promise<unknown>, RegExp][] = [
    ['file not a path', () => serveWorkers(42 as never, ok), /^file: expected/],
    ['file empty', () => serveWorkers('', ok), /^file: expected/],
    ['options missing', () => serveWorkers(workerFile, undefined as never), /^options: expected an object/],
    ['workers 0', () => serveWorkers(workerFile, { ...ok, workers: 0 }), /^options\.workers: expected an integer from 1/],
    ['workers 1.5', () => serveWorkers(workerFile, { ...ok, workers: 1.5 }), /^options\.workers/],
    ['workers a string', () => serveWorkers(workerFile, { ...ok, workers: '2' as never }), /^options\.workers/],
    ['address a number', () => serveWorkers(workerFile, { ...ok, address: 8080 as never }), /^options\.address: expected a string/],
    ['network udp', () => serveWorkers(workerFile, { ...ok, network: 'udp' as never }), /^options\.network: expected 'tcp'/],
    ['mode fork', () => serveWorkers(workerFile, { ...ok, mode: 'fork' as never }), /^options\.mode: expected 'reuseport' or 'handoff'/],
    ['closeTimeout negative', () => serveWorkers(workerFile, { ...ok, closeTimeout: -1 }), /^options\.closeTimeout/],
    ['loop not an object', () => serveWorkers(workerFile, { ...ok, loop: 5 as never }), /^options\.loop: expected an object/],
    ['unknown backend', () => serveWorkers(workerFile, { ...ok, loop: { backend: 'nope' } }), /nope/],
  ];
  for (const [name, call, message] of cases) {
    it(`rejects ${name}, naming the argument`, async () => {
      await assert.rejects(call(), (err: Error) => {
        assert.ok(err instanceof TypeError || err instanceof RangeError, `${err.name}: ${err.message}`);
        assert.match(err.message, message);
        return true;
      });
    });
  }

  it('a file URL works as the worker module', async function () {
    this.timeout(60_000);
    const g = await withTimeout(serveWorkers(pathToFileURL(workerFile), { ...ok, workers: 1 }), 20_000, 'serveWorkers');
    try {
      assert.equal(parseReply(await withTimeout(ask(String(g.addr()), 'url'), 10_000, 'request')).body, 'url');
    } finally {
      await withTimeout(g.close(), 20_000, 'close');
    }
  });

  it('workerListener() outside a serveWorkers worker throws', () => {
    assert.throws(() => workerListener(), /only a worker started by serveWorkers\(\) has one/);
  });
});
