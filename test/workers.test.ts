// The addon in worker_threads: two workers at once, and workers that end with sockets open.
import assert from 'node:assert/strict';
import * as path from 'node:path';
import { Worker } from 'node:worker_threads';
import { dial } from 'muxnet';
import { loopConfigs } from './helpers/configs';
import { socketFds } from './helpers/fds';
import { roundTrip } from './helpers/io';
import type { WorkerJob, WorkerReport } from './helpers/net-worker';
import { pattern } from './helpers/pattern';
import { startEcho } from './helpers/servers';
import { Resources, assertBytesEqual, withTimeout } from './helpers/util';

const workerFile = path.join(__dirname, 'helpers', 'net-worker.js');

interface RunningWorker {
  worker: Worker;
  /** The reports the worker posted, in order. */
  reports: WorkerReport[];
  /** Resolves with the first report. */
  firstReport: Promise<WorkerReport>;
  /** Resolves with the exit code; rejects on an 'error' event (an uncaught exception). */
  exited: Promise<number>;
}

function startWorker(job: WorkerJob): RunningWorker {
  const worker = new Worker(workerFile, { workerData: job });
  const reports: WorkerReport[] = [];
  const firstReport = new Promise<WorkerReport>((resolve, reject) => {
    worker.on('message', (m: WorkerReport) => {
      reports.push(m);
      resolve(m);
    });
    worker.once('error', reject);
    worker.once('exit', (code) => reject(new Error(`worker exited with code ${code} before reporting`)));
  });
  firstReport.catch(() => {});
  const exited = new Promise<number>((resolve, reject) => {
    worker.once('exit', resolve);
    worker.once('error', reject);
  });
  exited.catch(() => {});
  return { worker, reports, firstReport, exited };
}

/** The main thread's own muxnet still echoes. */
async function mainThreadEchoes(options: object, res: Resources): Promise<void> {
  const srv = res.add(startEcho(options));
  const c = res.add(await dial('tcp', srv.address, options));
  assertBytesEqual(await withTimeout(roundTrip(c, pattern(64 * 1024)), 5000, 'main-thread echo'), pattern(64 * 1024));
}

for (const cfg of loopConfigs()) {
  describe(`workers [${cfg.name}]`, () => {
    const res = new Resources();
    const workers: Worker[] = [];
    afterEach(async () => {
      await Promise.all(workers.splice(0).map((w) => w.terminate()));
      await res.closeAll();
    });

    it('runs an echo server and client in each of two workers at once', async function () {
      this.timeout(30_000);
      const running = [startWorker({ kind: 'echo', options: cfg.options }), startWorker({ kind: 'echo', options: cfg.options })];
      workers.push(...running.map((r) => r.worker));
      // Main-thread traffic at the same time: three loops on three threads.
      await mainThreadEchoes(cfg.options, res);
      const reports = await withTimeout(Promise.all(running.map((r) => r.firstReport)), 20_000, 'worker reports');
      for (const r of reports) {
        assert.equal(r.kind, 'done', r.kind === 'failed' ? r.error : '');
        if (r.kind === 'done') {
          assert.equal(r.bytes, 4 * 256 * 1024);
          assert.equal(r.backend, cfg.options.backend);
        }
      }
      // With everything closed, nothing of muxnet keeps a worker's loop alive.
      const codes = await withTimeout(Promise.all(running.map((r) => r.exited)), 10_000, 'workers to exit by themselves');
      assert.deepEqual(codes, [0, 0]);
    });

    it('a worker that exits with open conns and listeners ends with code 0 and releases its sockets', async function () {
      this.timeout(20_000);
      const before = socketFds();
      const r = startWorker({ kind: 'exit-with-open', options: cfg.options });
      workers.push(r.worker);
      const report = await withTimeout(r.firstReport, 10_000, 'worker ready');
      assert.equal(report.kind, 'ready', report.kind === 'failed' ? report.error : '');
      assert.equal(await withTimeout(r.exited, 10_000, 'worker exit'), 0);
      if (before !== null) {
        const leaked = [...socketFds()!].filter((fd) => !before.has(fd));
        assert.deepEqual(leaked, [], 'sockets left open by the exited worker');
      }
      await mainThreadEchoes(cfg.options, res);
    });

    it('terminate() on a worker with open conns ends it, and the main thread keeps working', async function () {
      this.timeout(20_000);
      const before = socketFds();
      const r = startWorker({ kind: 'hold-open', options: cfg.options });
      workers.push(r.worker);
      const report = await withTimeout(r.firstReport, 10_000, 'worker ready');
      assert.equal(report.kind, 'ready', report.kind === 'failed' ? report.error : '');
      const during = socketFds();
      if (before !== null && during !== null) {
        assert.ok(during.size >= before.size + 4, `the worker holds its sockets (${during.size} vs ${before.size})`);
      }
      await withTimeout(r.worker.terminate(), 10_000, 'terminate');
      // Node reports code 1 for a terminated worker; what matters is that it ended.
      assert.equal(typeof (await withTimeout(r.exited, 10_000, 'worker exit')), 'number');
      if (before !== null) {
        const leaked = [...socketFds()!].filter((fd) => !before.has(fd));
        assert.deepEqual(leaked, [], 'sockets left open by the terminated worker');
      }
      await mainThreadEchoes(cfg.options, res);
    });
  });
}
