// The workers scenario: 64-byte ping-pong and HTTP keep-alive against serveWorkers with 1 and
// 2 worker threads (reuseport, and handoff for 2), the server allowed one CPU per worker.
import * as path from 'node:path';
import { backends } from '../lib/backends';
import { medianOf, root, runLoad, startServer, type LoadResult } from './measure';
import type { Result, Task } from './types';

export interface WorkersPlan {
  repeats: number;
  duration: number;
  warmup: number;
  connections: number;
  /** [workers, mode] pairs. */
  groups: [number, 'reuseport' | 'handoff'][];
  forms: ('echo' | 'http')[];
}

export function workersPlan(quick: boolean): WorkersPlan {
  const groups: [number, 'reuseport' | 'handoff'][] = [[1, 'reuseport'], [2, 'reuseport'], [2, 'handoff']];
  return quick
    ? { repeats: 1, duration: 2, warmup: 0.5, connections: 50, groups, forms: ['echo', 'http'] }
    : { repeats: 3, duration: 3, warmup: 1, connections: 50, groups, forms: ['echo', 'http'] };
}

const script = (): string => path.join(root, '.bench-build', 'bench', 'servers', 'workers.js');

/**
 * The server may run on CPUs 0 to workers - 1. The load generator stays on CPU 1 as in every
 * scenario: on a 2-CPU machine a 2-worker server shares CPU 1 with it, which the report says.
 */
function cpusFor(workers: number): string {
  return Array.from({ length: workers }, (_, i) => i).join(',');
}

export function workersTasks(plan: WorkersPlan): Task[] {
  const tasks: Task[] = [];
  const config = backends()[0];
  for (const form of plan.forms) {
    for (const [workers, mode] of plan.groups) {
      const label = `${form} ${workers}w ${mode}`;
      tasks.push({
        label: `workers ${label} c=${plan.connections}`,
        run: async () => {
          const runs: LoadResult[] = [];
          for (let r = 0; r < plan.repeats; r++) {
            const server = await startServer(script(), [form, JSON.stringify({ backend: config }), String(workers), mode], [],
              cpusFor(workers));
            try {
              await new Promise((resolve) => setTimeout(resolve, 300));
              runs.push(await runLoad(server.port, server.pid, {
                connections: plan.connections, size: 64, duration: plan.duration, warmup: plan.warmup,
                mode: form === 'http' ? 'http' : 'pingpong',
              }));
            } finally {
              await server.stop();
            }
          }
          const result: Result = {
            scenario: 'workers', config, form: label, connections: plan.connections, idle: 0, size: 64, runs, median: medianOf(runs),
          };
          return [result];
        },
      });
    }
  }
  return tasks;
}
