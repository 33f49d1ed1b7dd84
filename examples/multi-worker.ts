// One HTTP server on every core: serveWorkers starts N worker threads, each with its own
// muxnet loop, all serving one port; this file is both the main thread and the workers.
// Stops on SIGTERM or SIGINT: the workers close their listeners and end.
//   npx tsc -p examples/tsconfig.json && node .test-build/examples/multi-worker.js [127.0.0.1:8080] [workers] [reuseport|handoff]
import * as http from 'node:http';
import { isMainThread, threadId, workerData } from 'node:worker_threads';
import { serveWorkers, workerListener, type WorkerMode } from 'muxnet';

async function main(): Promise<void> {
  const [address = '127.0.0.1:8080', workers = '2', mode] = process.argv.slice(2);
  const group = await serveWorkers(__filename, {
    workers: Number(workers), address, mode: mode as WorkerMode | undefined, workerData: { greeting: 'hello' },
  });
  group.on('error', (err: Error) => console.error(`a worker failed: ${err.message}`));
  console.log(`listening on http://${group.addr()} (${workers} workers, ${group.mode})`);
  for (const signal of ['SIGTERM', 'SIGINT'] as const) {
    process.once(signal, () => {
      void group.stats().then((s) => {
        console.log(`${signal}: closing; connections per worker: ${s.workers.map((w) => w.accepted).join(', ')}`);
        return group.close();
      });
    });
  }
}

async function worker(): Promise<void> {
  const { greeting } = workerData as { greeting: string };
  const server = http.createServer((req, res) => {
    res.setHeader('content-type', 'text/plain');
    res.end(`${greeting} from worker thread ${threadId}: ${req.method} ${req.url}\n`);
  });
  // Resolves once the main thread closes the group; then the idle keep-alive connections go.
  await workerListener().serveNode(server);
  server.closeIdleConnections();
}

void (isMainThread ? main() : worker());
