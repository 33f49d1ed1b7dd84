// The stream scenario: bulk transfer in 16 KiB chunks, one way (the server discards) and
// echoed, in MiB/s and server CPU per MiB; muxnet's server forms against Node's net.
import * as path from 'node:path';
import { medianOf, root, runLoad, startServer, type LoadResult } from './measure';
import type { Result, Task } from './types';

export interface StreamPlan {
  repeats: number;
  duration: number;
  warmup: number;
  connections: number[];
  /** Chunk size the load generator writes, bytes. */
  size: number;
  /** Server forms per direction; 'native' is the floor (C++ discard or echo). */
  forms: { 'one-way': string[]; echo: string[] };
}

export function streamPlan(quick: boolean): StreamPlan {
  const all = ['native', 'go', 'pooled', 'callback', 'node'];
  const forms = { 'one-way': all, echo: all };
  // 16 KiB: the chunk size issue 3 asks for, and Node's default stream highWaterMark.
  return quick
    ? { repeats: 1, duration: 1, warmup: 0.5, connections: [1], size: 16 * 1024, forms }
    : { repeats: 3, duration: 4, warmup: 1, connections: [1, 8], size: 16 * 1024, forms };
}

/** A loop configuration of the run: its name in results, and the loop options it passes. */
interface Config {
  name: string;
  options: Record<string, string>;
}

/** One step per direction, connection count, loop configuration and server form (Node's net once). */
export function streamTasks(plan: StreamPlan, configs: Config[]): Task[] {
  const tasks: Task[] = [];
  for (const direction of ['one-way', 'echo'] as const) {
    for (const connections of plan.connections) {
      const steps = plan.forms[direction].flatMap((form): { form: string; config: Config | null }[] => (form === 'node'
        ? [{ form, config: null }]
        : configs.map((config) => ({ form, config }))));
      for (const { form, config } of steps) {
        tasks.push({
          label: `stream ${direction} ${config?.name ?? 'node-net'} ${form} c=${connections}`,
          run: async () => {
            const script = path.join(root, '.bench-build', 'bench', 'servers', direction === 'echo' ? 'echo.js' : 'discard.js');
            const runs: LoadResult[] = [];
            for (let r = 0; r < plan.repeats; r++) {
              const server = await startServer(script, [form, JSON.stringify(config?.options ?? {})]);
              try {
                runs.push(await runLoad(server.port, server.pid, {
                  connections, size: plan.size, duration: plan.duration, warmup: plan.warmup,
                  mode: direction === 'echo' ? 'stream-echo' : 'stream',
                }));
              } finally {
                await server.stop();
              }
            }
            const result: Result = {
              scenario: 'stream',
              config: config?.name ?? 'node-net',
              form,
              connections,
              idle: 0,
              size: plan.size,
              direction,
              runs,
              median: medianOf(runs),
            };
            return [result];
          },
        });
      }
    }
  }
  return tasks;
}
