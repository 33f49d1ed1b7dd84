// The proxy scenario: load generator -> proxy -> backend, the PROXY measured: muxnet pipe() both
// ways, muxnet read/write loops, and Node's net with socket.pipe, for 64-byte ping-pong (proxy
// CPU per message) and a one-way stream of 16 KiB chunks (proxy CPU per MiB).
import * as path from 'node:path';
import { backends } from '../lib/backends';
import { cpuSeconds, root, runLoad, startServer, type LoadResult, type Server } from './measure';
import { repeatedTask } from './repeat';
import type { Task } from './types';

export interface ProxyPlan {
  repeats: number;
  duration: number;
  warmup: number;
  /** Ping-pong connections (the echo scenario's 50). */
  connections: number;
  /** Stream connections, one step each. */
  streamConnections: number[];
  /** Ping-pong message size, bytes. */
  size: number;
  /** Stream chunk size, bytes. */
  chunk: number;
  /** Proxy forms: pipe (muxnet pipe()), go (muxnet read/write loops), node (Node's net). */
  forms: string[];
}

export function proxyPlan(quick: boolean): ProxyPlan {
  const forms = ['pipe', 'go', 'node'];
  // 64 bytes and 50 connections: the ping-pong scenario's; 16 KiB: the stream scenario's chunk.
  return quick
    ? { repeats: 1, duration: 1.5, warmup: 0.5, connections: 50, streamConnections: [1], size: 64, chunk: 16 * 1024, forms }
    : { repeats: 3, duration: 3, warmup: 1, connections: 50, streamConnections: [1, 8], size: 64, chunk: 16 * 1024, forms };
}

const script = (name: string): string => path.join(root, '.bench-build', 'bench', 'servers', `${name}.js`);

/**
 * The backend behind the proxy: muxnet's C++ echo or discard inside Node (serveNative), the
 * same for every proxy form and cheap, on the load generator's CPU (1) so that CPU 0 holds
 * the proxy alone.
 */
function startBackend(mode: 'pingpong' | 'stream'): Promise<Server> {
  return startServer(script(mode === 'stream' ? 'discard' : 'echo'), ['native', '{}'], [], '1');
}

/** One run: a fresh backend and proxy, the load generator through the proxy, both stopped. */
export async function runProxyOnce(form: string, mode: 'pingpong' | 'stream', connections: number, plan: ProxyPlan): Promise<LoadResult> {
  const backend = await startBackend(mode);
  try {
    const proxy = await startServer(script('proxy'), [form, '{}', String(backend.port)]);
    try {
      await new Promise((resolve) => setTimeout(resolve, 300));
      // The backend shares CPU 1 with the load generator: its use and theirs say whether
      // CPU 1, rather than the proxy, set the pace.
      let cpu0 = 0;
      let wall0 = 0;
      let backendCpu = NaN;
      const result = await runLoad(proxy.port, proxy.pid, {
        connections, size: mode === 'stream' ? plan.chunk : plan.size, duration: plan.duration, warmup: plan.warmup, mode,
      }, async () => {
        cpu0 = cpuSeconds(backend.pid);
        wall0 = performance.now();
      }, async () => {
        backendCpu = (cpuSeconds(backend.pid) - cpu0) / ((performance.now() - wall0) / 1000);
      });
      return { ...result, backend_cpu: backendCpu };
    } finally {
      await proxy.stop();
    }
  } finally {
    await backend.stop();
  }
}

/** One step per proxy form and load: ping-pong, then the stream at each connection count. */
export function proxyTasks(plan: ProxyPlan): Task[] {
  const tasks: Task[] = [];
  const steps: ['pingpong' | 'stream', number][] = [['pingpong', plan.connections], ...plan.streamConnections.map((c) => ['stream', c] as ['stream', number])];
  for (const [mode, connections] of steps) {
    for (const form of plan.forms) {
      tasks.push(repeatedTask(`proxy ${form} ${mode} c=${connections}`, plan.repeats, () => runProxyOnce(form, mode, connections, plan), {
        scenario: 'proxy',
        config: form === 'node' ? 'node-net' : backends()[0],
        form,
        case: mode,
        connections,
        idle: 0,
        size: mode === 'stream' ? plan.chunk : plan.size,
      }));
    }
  }
  return tasks;
}
