// Smoke check of the bench's proxy and file scenarios, so they cannot rot unseen: the bench
// servers (bench/servers/proxy.ts, file.ts) move the right bytes in every form, and one short
// run of every scenario step yields a measured result. Compiles bench/ first (pretest does not).
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import * as net from 'node:net';
import * as os from 'node:os';
import * as path from 'node:path';
import { assertBytesEqual, withTimeout } from './helpers/util';
import { skipSuiteOnWindows } from './helpers/platform';

const root = path.join(__dirname, '..', '..');
const benchBuild = path.join(root, '.bench-build', 'bench');

/** What the test uses of the compiled bench modules (loaded after compiling them). */
interface BenchServer {
  port: number;
  stop(): Promise<void>;
}
interface BenchResult {
  scenario: string;
  form: string;
  case?: string;
  size: number;
  median: { messages: number; cpu_us_per_msg: number; server_cpu: number; bytes?: number; cpu_us_per_mib?: number; load_cpu?: number; backend_cpu?: number };
}
interface BenchTask {
  label: string;
  run(): Promise<BenchResult[]>;
}
interface Bench {
  startServer(script: string, args: string[], nodeFlags?: string[], cpus?: string): Promise<BenchServer>;
  proxyPlan(quick: boolean): Record<string, unknown>;
  proxyTasks(plan: Record<string, unknown>): BenchTask[];
  filePlan(quick: boolean): Record<string, unknown>;
  fileTasks(plan: Record<string, unknown>): BenchTask[];
}

/** The compiled bench (`npm run pretest` compiles bench/ into .bench-build/). */
function loadBench(): Bench {
  return {
    ...require(path.join(benchBuild, 'measure.js')),
    ...require(path.join(benchBuild, 'scenario-proxy.js')),
    ...require(path.join(benchBuild, 'scenario-file.js')),
  } as Bench;
}

/** Connects to a bench server on loopback. */
async function connect(port: number): Promise<net.Socket> {
  const s = net.connect({ port, host: '127.0.0.1', allowHalfOpen: true });
  await withTimeout(new Promise((resolve, reject) => s.once('connect', resolve).once('error', reject)), 10_000, 'connect');
  return s;
}

/** Reads exactly `n` bytes from `s` (its 'data' listener removed after). */
function readExactly(s: net.Socket, n: number): Promise<Buffer> {
  return new Promise((resolve, reject) => {
    const parts: Buffer[] = [];
    let have = 0;
    const onData = (d: Buffer): void => {
      parts.push(d);
      have += d.length;
      if (have < n) return;
      s.off('data', onData).off('end', onEnd);
      assert.equal(have, n, 'no bytes beyond the answer');
      resolve(Buffer.concat(parts));
    };
    const onEnd = (): void => reject(new Error(`stream ended after ${have} of ${n} bytes`));
    s.on('data', onData).once('end', onEnd).once('error', reject);
  });
}

describe('bench: proxy and file scenarios (smoke)', function () {
  skipSuiteOnWindows("the benchmark harness is Linux's (getconf, taskset, /proc)");
  this.timeout(120_000);
  let bench: Bench;
  let dir: string;
  const files = { '64k': randomBytes(64 * 1024), '1m': randomBytes(1024 * 1024) };
  before(() => {
    bench = loadBench();
    dir = mkdtempSync(path.join(os.tmpdir(), 'muxnet-bench-test-'));
    for (const [name, bytes] of Object.entries(files)) writeFileSync(path.join(dir, name), bytes);
  });
  after(() => {
    if (dir) rmSync(dir, { recursive: true, force: true });  // unset when the suite was skipped
  });

  for (const form of ['pipe', 'go', 'node']) {
    it(`proxy ${form}: relays 1 MiB to the echo backend and back, and passes the client's end through and back`, async () => {
      const echo = await bench.startServer(path.join(benchBuild, 'servers', 'echo.js'), ['native', '{}']);
      try {
        const proxy = await bench.startServer(path.join(benchBuild, 'servers', 'proxy.js'), [form, '{}', String(echo.port)]);
        try {
          const s = await connect(proxy.port);
          const parts: Buffer[] = [];
          s.on('data', (d: Buffer) => parts.push(d));
          const ended = new Promise((resolve, reject) => s.once('end', resolve).once('error', reject));
          s.end(files['1m']);  // half close: the echo's end comes back through the proxy
          await withTimeout(ended, 20_000, 'the echo and its end through the proxy');
          assertBytesEqual(Buffer.concat(parts), files['1m'], 'echoed bytes');
          s.destroy();
        } finally {
          await proxy.stop();
        }
      } finally {
        await echo.stop();
      }
    });
  }

  for (const form of ['sendfile', 'read', 'node']) {
    it(`file ${form}: answers each request on one connection with exactly the named file, and closes on an unknown name`, async () => {
      const server = await bench.startServer(path.join(benchBuild, 'servers', 'file.js'), [form, '{}', dir]);
      try {
        const s = await connect(server.port);
        for (const name of ['64k', '1m', '64k', '1m'] as const) {
          const answer = readExactly(s, files[name].length);
          s.write(`${name}\n`);
          assertBytesEqual(await withTimeout(answer, 20_000, `the answer for ${name}`), files[name], name);
        }
        // The server's end (or a reset, from Node's destroy()) after a name that is not a file of its directory.
        const closed = new Promise((resolve) => s.once('end', resolve).once('error', resolve));
        s.write('../etc/passwd\n');
        await withTimeout(closed, 10_000, 'the close after an unknown name');
        s.destroy();
      } finally {
        await server.stop();
      }
    });
  }

  it('every proxy and file scenario step measures its server in a short run', async () => {
    const short = { repeats: 1, duration: 0.3, warmup: 0.1 };
    const tasks = [
      ...bench.proxyTasks({ ...bench.proxyPlan(true), ...short, connections: 4, streamConnections: [1] }),
      ...bench.fileTasks({ ...bench.filePlan(true), ...short, connections: 4 }),
    ];
    assert.equal(tasks.length, 3 * 2 + 3 * 2, 'three forms of each proxy load and of each file');
    // The server's CPU comes from /proc/PID/stat in 10 ms ticks, so a 0.3 s window of a server
    // that a loaded machine (the ASan run in CI) starves can read 0: each step's reading must
    // be a number, and the steps together must have sampled some.
    const cpu: number[] = [];
    for (const task of tasks) {
      const [r] = await task.run();
      assert.ok(r.median.messages > 0, `${task.label}: messages measured`);
      assert.ok(Number.isFinite(r.median.server_cpu) && r.median.server_cpu >= 0, `${task.label}: server CPU sampled`);
      cpu.push(r.median.server_cpu);
      assert.ok(Number.isFinite(r.median.load_cpu), `${task.label}: the load generator's own CPU reported`);
      if (r.scenario === 'proxy') assert.ok(Number.isFinite(r.median.backend_cpu), `${task.label}: the backend's CPU sampled`);
      if (r.scenario === 'file') assert.equal(r.median.bytes, r.median.messages * r.size, `${task.label}: whole files counted`);
      if (r.scenario === 'file' || r.case === 'stream') assert.ok(Number.isFinite(r.median.cpu_us_per_mib), `${task.label}: CPU per MiB`);
    }
    assert.ok(cpu.filter((c) => c > 0).length >= tasks.length / 2, `server CPU read as 0 in most steps: ${cpu.join(', ')}`);
  });
});
