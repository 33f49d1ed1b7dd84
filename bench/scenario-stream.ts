// The stream scenario: bulk transfer in 16 KiB chunks, one way (the server discards) and
// echoed, in MiB/s and server CPU per MiB; muxnet's server forms against Node's net.
import * as path from 'node:path';
import { medianOf, root, runLoad, startServer } from './measure';
import type { RepeatedJob } from './types';

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

/**
 * `only.forms` keeps those of muxnet's forms (the echo forms' names; the C floor has no stream
 * server) beside Node's net; `only.repeats` sets the runs per median.
 */
export function streamPlan(quick: boolean, only: { repeats?: number; forms?: string[] } = {}): StreamPlan {
  const all = ['native', 'go', 'pooled', 'callback', 'node'].filter((f) => f === 'node' || (only.forms ?? [f]).includes(f));
  const forms = { 'one-way': all, echo: all };
  // 16 KiB: the chunk size issue 3 asks for, and Node's default stream highWaterMark.
  const plan = quick
    ? { repeats: 1, duration: 1, warmup: 0.5, connections: [1], size: 16 * 1024, forms }
    : { repeats: 3, duration: 4, warmup: 1, connections: [1, 8], size: 16 * 1024, forms };
  return only.repeats === undefined ? plan : { ...plan, repeats: only.repeats };
}

/** A loop configuration of the run: its name in results, and the loop options it passes. */
interface Config {
  name: string;
  options: Record<string, string>;
}

/**
 * One job per direction, connection count, loop configuration and server form (Node's net
 * once), each run `plan.repeats` times; the runner interleaves their runs by round.
 */
export function streamJobs(plan: StreamPlan, configs: Config[]): RepeatedJob[] {
  const jobs: RepeatedJob[] = [];
  for (const direction of ['one-way', 'echo'] as const) {
    for (const connections of plan.connections) {
      const steps = plan.forms[direction].flatMap((form): { form: string; config: Config | null }[] => (form === 'node'
        ? [{ form, config: null }]
        : configs.map((config) => ({ form, config }))));
      for (const { form, config } of steps) {
        jobs.push({
          label: `stream ${direction} ${config?.name ?? 'node-net'} ${form} c=${connections}`,
          repeats: plan.repeats,
          once: async () => {
            const script = path.join(root, '.bench-build', 'bench', 'servers', direction === 'echo' ? 'echo.js' : 'discard.js');
            const server = await startServer(script, [form, JSON.stringify(config?.options ?? {})]);
            try {
              return await runLoad(server.port, server.pid, {
                connections, size: plan.size, duration: plan.duration, warmup: plan.warmup,
                mode: direction === 'echo' ? 'stream-echo' : 'stream',
              });
            } finally {
              await server.stop();
            }
          },
          result: (runs, rounds) => ({
            scenario: 'stream',
            config: config?.name ?? 'node-net',
            form,
            connections,
            idle: 0,
            size: plan.size,
            direction,
            runs,
            rounds,
            median: medianOf(runs),
          }),
        });
      }
    }
  }
  return jobs;
}
