// The tls scenario: ping-pong of small messages over TLS connections, muxnet's listenTLS against
// Node's tls.createServer, the load being Node's tls client (bench/tls-load.ts) on the other CPU;
// and HTTPS hello world, Node's http over listenTLS against Node's https, driven by wrk.
import * as path from 'node:path';
import { backends } from '../lib/backends';
import { loadResult, root, runMeasured, startServer, type LoadResult, type Server } from './measure';
import { repeatedTask } from './repeat';
import { findWrk, runWrk } from './scenario-http';
import type { Task } from './types';

export interface TLSPlan {
  repeats: number;
  duration: number;
  warmup: number;
  connections: number[];
  size: number;
  forms: string[];
  /** HTTPS hello forms, over `httpsConnections` keep-alive connections (wrk). */
  httpsForms: string[];
  httpsConnections: number;
}

export function tlsPlan(quick: boolean): TLSPlan {
  // 64 bytes: the ping-pong scenario's message, so the TLS cost shows next to it.
  return quick
    ? { repeats: 1, duration: 2, warmup: 1, connections: [50], size: 64, forms: ['go', 'pooled', 'node'],
      httpsForms: ['https', 'node-https'], httpsConnections: 50 }
    : { repeats: 3, duration: 4, warmup: 1, connections: [1, 50], size: 64, forms: ['go', 'pooled', 'node'],
      httpsForms: ['https', 'node-https'], httpsConnections: 50 };
}

/** One run: a server of `form` started, measured by `measure`, stopped. */
async function withServer(form: string, measure: (server: Server) => Promise<LoadResult>): Promise<LoadResult> {
  const server = await startServer(path.join(root, '.bench-build', 'bench', 'servers', 'tls-echo.js'), [form, '{}']);
  try {
    return await measure(server);
  } finally {
    await server.stop();
  }
}

/** One step per connection count and server form, then one per HTTPS form. */
export function tlsTasks(plan: TLSPlan): Task[] {
  const tasks: Task[] = [];
  const load = path.join(root, '.bench-build', 'bench', 'tls-load.js');
  for (const connections of plan.connections) {
    for (const form of plan.forms) {
      tasks.push(repeatedTask(`tls echo ${form} c=${connections}`, plan.repeats, () => withServer(form, async (server) => {
        const args = [load, '--port', String(server.port), '--connections', String(connections), '--size', String(plan.size),
          '--duration', String(plan.duration), '--warmup', String(plan.warmup),
          '--ca', path.join(root, 'test', 'fixtures', 'tls', 'ca-cert.pem')];
        return loadResult(await runMeasured(process.execPath, args, server.pid, plan.duration + plan.warmup + 60));
      }), { scenario: 'tls', config: form === 'node' ? 'node-tls' : backends()[0], form, connections, idle: 0, size: plan.size }));
    }
  }
  const wrkPath = findWrk();
  const wrkPlan = { connections: plan.httpsConnections, warmup: plan.warmup, duration: plan.duration };
  for (const form of plan.httpsForms) {
    const label = `https hello ${form} wrk c=${plan.httpsConnections}`;
    const row = {
      scenario: 'https', config: form === 'node-https' ? 'node-https' : backends()[0], form,
      connections: plan.httpsConnections, idle: 0, size: 13, tool: 'wrk',
    };
    if (wrkPath === null) {
      tasks.push({ label, run: async () => [{ ...row, skipped: 'wrk is not on the PATH', runs: [], median: {} as LoadResult }] });
    } else {
      tasks.push(repeatedTask(label, plan.repeats, () => withServer(form, (server) => runWrk(wrkPath, server, wrkPlan, 'https')), row));
    }
  }
  return tasks;
}
