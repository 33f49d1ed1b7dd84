// Multi-worker servers for the benchmark, one process each: `node workers.js <form> <json loop options> <workers> <mode>`.
// serveWorkers starts <workers> threads on this same file; each serves its workerListener():
// echo (Go-style read/write loop, as echo.ts's go form) or http (Node's http over muxnet, as
// http.ts's node-stream form). Prints {"port","pid"} once every worker listens; exits when stdin closes.
import * as http from 'node:http';
import { isMainThread, workerData } from 'node:worker_threads';
import { serveWorkers, workerListener, type WorkerMode } from '../../lib/index';
import { echoConn, obeyStdin, ready, serverArgs } from './common';

async function main(): Promise<void> {
  const { form, options } = serverArgs();
  const [workers = '1', mode = 'reuseport'] = process.argv.slice(4);
  obeyStdin();
  const group = await serveWorkers(__filename, {
    workers: Number(workers), address: '127.0.0.1:0', mode: mode as WorkerMode, loop: options, backlog: 4096,
    workerData: { form },
  });
  group.on('error', (err: Error) => {
    console.error(`bench workers: ${err.message}`);
    process.exit(1);
  });
  ready(group.addr().port);
}

async function serveEcho(): Promise<void> {
  for await (const c of workerListener()) void echoConn(c);
}

function serveHttp(): Promise<void> {
  const server = http.createServer((req, res) => res.end('Hello, World!'));
  return workerListener().serveNode(server);
}

if (isMainThread) void main();
else void ((workerData as { form: string }).form === 'http' ? serveHttp() : serveEcho());
