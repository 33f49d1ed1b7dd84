// The tls scenario: ping-pong of small messages over TLS connections, muxnet's listenTLS against
// Node's tls.createServer, the load being Node's tls client (bench/tls-load.ts) on the other CPU;
// and HTTPS hello world, Node's http over listenTLS against Node's https, driven by wrk.
import * as path from 'node:path';
import { backends } from '../lib/backends';
import { loadResult, medianOf, root, runMeasured, startServer, type LoadResult } from './measure';
import { findWrk, runWrk } from './scenario-http';
import type { Result, Task } from './types';

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

/** One step per connection count and server form. */
export function tlsTasks(plan: TLSPlan): Task[] {
  const tasks: Task[] = [];
  for (const connections of plan.connections) {
    for (const form of plan.forms) {
      tasks.push({
        label: `tls echo ${form} c=${connections}`,
        run: async () => {
          const script = path.join(root, '.bench-build', 'bench', 'servers', 'tls-echo.js');
          const load = path.join(root, '.bench-build', 'bench', 'tls-load.js');
          const runs: LoadResult[] = [];
          for (let r = 0; r < plan.repeats; r++) {
            const server = await startServer(script, [form, '{}']);
            try {
              const args = [load, '--port', String(server.port), '--connections', String(connections), '--size', String(plan.size),
                '--duration', String(plan.duration), '--warmup', String(plan.warmup),
                '--ca', path.join(root, 'test', 'fixtures', 'tls', 'ca-cert.pem')];
              runs.push(loadResult(await runMeasured(process.execPath, args, server.pid, plan.duration + plan.warmup + 60)));
            } finally {
              await server.stop();
            }
          }
          const result: Result = {
            scenario: 'tls',
            config: form === 'node' ? 'node-tls' : backends()[0],
            form,
            connections,
            idle: 0,
            size: plan.size,
            runs,
            median: medianOf(runs),
          };
          return [result];
        },
      });
    }
  }
  const wrkPath = findWrk();
  for (const form of plan.httpsForms) {
    tasks.push({
      label: `https hello ${form} wrk c=${plan.httpsConnections}`,
      run: async () => {
        const base = {
          scenario: 'https', config: form === 'node-https' ? 'node-https' : backends()[0], form,
          connections: plan.httpsConnections, idle: 0, size: 13, tool: 'wrk',
        };
        if (wrkPath === null) return [{ ...base, skipped: 'wrk is not on the PATH', runs: [], median: {} as LoadResult }];
        const script = path.join(root, '.bench-build', 'bench', 'servers', 'tls-echo.js');
        const runs: LoadResult[] = [];
        for (let r = 0; r < plan.repeats; r++) {
          const server = await startServer(script, [form, '{}']);
          try {
            runs.push(await runWrk(wrkPath, server, { connections: plan.httpsConnections, warmup: plan.warmup, duration: plan.duration }, 'https'));
          } finally {
            await server.stop();
          }
        }
        return [{ ...base, runs, median: medianOf(runs) }];
      },
    });
  }
  return tasks;
}
