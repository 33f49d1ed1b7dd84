// The http scenario: HTTP/1.1 keep-alive hello world, the muxnet fixture against Node's http,
// driven by the native load generator, autocannon and (when installed) wrk.
import { execFileSync, spawn } from 'node:child_process';
import * as path from 'node:path';
import { backends } from '../lib/backends';
import { checkHttpFixture } from './http-fixture-check';
import {
  cpuSeconds, loadResult, medianOf, pin, root, rssKiB, runLoad, runMeasured, startServer, type LoadResult, type Server,
} from './measure';
import type { Result, Task } from './types';

export interface HttpPlan {
  repeats: number;
  /** Seconds measured per run, after `warmup` seconds not measured. */
  duration: number;
  warmup: number;
  connections: number;
  forms: string[];
  tools: string[];
}

export function httpPlan(quick: boolean): HttpPlan {
  // 50 connections: the ping-pong scenario's middle point, and autocannon's usual setting.
  return quick
    ? { repeats: 1, duration: 1, warmup: 0.5, connections: 50, forms: ['go', 'node-stream', 'node'], tools: ['loadgen', 'autocannon', 'wrk'] }
    : { repeats: 3, duration: 4, warmup: 1, connections: 50, forms: ['go', 'node-stream', 'node'], tools: ['loadgen', 'autocannon', 'wrk'] };
}

const script = (): string => path.join(root, '.bench-build', 'bench', 'servers', 'http.js');
const autocannonScript = (): string => path.join(root, '.bench-build', 'bench', 'autocannon-run.js');
// Bounds a measured run besides its duration: far above what one CPU serves in the time.
const kMaxRequests = 50_000_000;
const kBody = 'Hello, World!';

/** wrk on the PATH, or null. */
export function findWrk(): string | null {
  try {
    return execFileSync('which', ['wrk'], { encoding: 'utf8' }).trim() || null;
  } catch {
    return null;
  }
}

function startHttp(form: string): Promise<Server> {
  return startServer(script(), [form, '{}']);
}

async function runAutocannon(server: Server, plan: HttpPlan): Promise<LoadResult> {
  const options = {
    url: `http://127.0.0.1:${server.port}/`,
    connections: plan.connections,
    warmup: plan.warmup,
    duration: plan.duration,
    maxRequests: kMaxRequests,
    expectBody: kBody,
  };
  const measured = await runMeasured(process.execPath, [autocannonScript(), JSON.stringify(options)],
    server.pid, plan.warmup + plan.duration + 60);
  return { ...loadResult(measured), errors: measured.done.errors, non2xx: measured.done.non2xx };
}

/** A wrk duration ("612.34us", "1.20ms", "2.00s") in microseconds. */
function wrkMicros(text: string): number {
  const m = /^([\d.]+)(us|ms|s|m)$/.exec(text);
  if (m === null) return NaN;
  const scale = { us: 1, ms: 1e3, s: 1e6, m: 60e6 }[m[2] as 'us' | 'ms' | 's' | 'm'];
  return Number(m[1]) * scale;
}

/** The numbers of wrk's `--latency` report. */
export function parseWrk(out: string): { requests: number; seconds: number; rate: number; p50_us: number; p99_us: number; errors: number; non2xx: number } {
  const total = /(\d+) requests in ([\d.]+)(us|ms|s|m),/.exec(out);
  const rate = /Requests\/sec:\s+([\d.]+)/.exec(out);
  const p50 = /^\s+50%\s+(\S+)/m.exec(out);
  const p99 = /^\s+99%\s+(\S+)/m.exec(out);
  if (total === null || rate === null || p50 === null || p99 === null) {
    throw new Error(`could not read wrk's output:\n${out}`);
  }
  const socket = /Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)/.exec(out);
  const non2xx = /Non-2xx or 3xx responses: (\d+)/.exec(out);
  return {
    requests: Number(total[1]),
    seconds: wrkMicros(`${total[2]}${total[3]}`) / 1e6,
    rate: Number(rate[1]),
    p50_us: wrkMicros(p50[1]),
    p99_us: wrkMicros(p99[1]),
    errors: socket === null ? 0 : socket.slice(1).reduce((a, b) => a + Number(b), 0),
    non2xx: non2xx === null ? 0 : Number(non2xx[1]),
  };
}

/** Runs wrk on CPU 1 for `seconds` (whole seconds: wrk counts no less); stdout when it exits. */
function wrk(wrkPath: string, port: number, connections: number, seconds: number, latency: boolean, scheme: string): Promise<string> {
  const args = ['-t1', `-c${connections}`, `-d${Math.max(1, Math.ceil(seconds))}s`, ...(latency ? ['--latency'] : []),
    `${scheme}://127.0.0.1:${port}/`];
  const [cmd, argv] = pin(1, wrkPath, args);
  return new Promise((resolve, reject) => {
    const child = spawn(cmd, argv, { stdio: ['ignore', 'pipe', 'inherit'] });
    let out = '';
    child.stdout.setEncoding('utf8').on('data', (d: string) => { out += d; });
    const limit = setTimeout(() => child.kill('SIGKILL'), (Math.ceil(seconds) + 30) * 1000);
    child.on('error', reject);
    child.on('exit', (code) => {
      clearTimeout(limit);
      if (code === 0) resolve(out); else reject(new Error(`wrk exited with ${code}:\n${out}`));
    });
  });
}

/** One measured wrk run against `server` (`scheme` 'https' for a TLS server: wrk speaks it). */
export async function runWrk(wrkPath: string, server: Server, plan: Pick<HttpPlan, 'connections' | 'warmup' | 'duration'>,
                             scheme = 'http'): Promise<LoadResult> {
  if (plan.warmup > 0) await wrk(wrkPath, server.port, plan.connections, plan.warmup, false, scheme);
  // wrk marks no measuring window: the server is sampled over its whole run, connects included.
  const cpu0 = cpuSeconds(server.pid);
  const rss = rssKiB(server.pid);
  const wall0 = performance.now();
  const out = await wrk(wrkPath, server.port, plan.connections, plan.duration, true, scheme);
  const cpu = cpuSeconds(server.pid) - cpu0;
  const wall = (performance.now() - wall0) / 1000;
  const w = parseWrk(out);
  return {
    messages: w.requests,
    seconds: w.seconds,
    rate: w.rate,
    p50_us: w.p50_us,
    p99_us: w.p99_us,
    p999_us: NaN,  // wrk's distribution stops at 99%
    cpu_us_per_msg: w.requests > 0 ? (cpu * 1e6) / w.requests : NaN,
    server_cpu: cpu / wall,
    rss_kib: rss,
    errors: w.errors,
    non2xx: w.non2xx,
  };
}

function result(form: string, tool: string, plan: HttpPlan, runs: LoadResult[], skipped?: string): Result {
  return {
    scenario: 'http',
    config: form === 'node' ? 'node-http' : backends()[0],
    form,
    connections: plan.connections,
    idle: 0,
    size: Buffer.byteLength(kBody),
    tool,
    ...(skipped === undefined ? {} : { skipped }),
    runs,
    median: runs.length > 0 ? medianOf(runs) : ({} as LoadResult),
  };
}

/** The scenario's steps: the fixture's self-check first, then every form under every tool. */
export function httpTasks(plan: HttpPlan): Task[] {
  const tasks: Task[] = [{
    label: 'http self-check of the fixture',
    run: async () => {
      const server = await startHttp('go');
      try {
        await checkHttpFixture(server.port);
      } finally {
        await server.stop();
      }
      return [];
    },
  }];
  const wrkPath = findWrk();
  for (const tool of plan.tools) {
    for (const form of plan.forms) {
      tasks.push({
        label: `http ${form} ${tool} c=${plan.connections}`,
        run: async () => {
          if (tool === 'wrk' && wrkPath === null) return [result(form, tool, plan, [], 'wrk is not on the PATH')];
          const runs: LoadResult[] = [];
          for (let r = 0; r < plan.repeats; r++) {
            const server = await startHttp(form);
            try {
              if (tool === 'loadgen') {
                runs.push(await runLoad(server.port, server.pid, {
                  connections: plan.connections, size: 64, duration: plan.duration, warmup: plan.warmup, mode: 'http',
                }));
              } else if (tool === 'autocannon') {
                runs.push(await runAutocannon(server, plan));
              } else {
                runs.push(await runWrk(wrkPath!, server, plan));
              }
            } finally {
              await server.stop();
            }
          }
          return [result(form, tool, plan, runs)];
        },
      });
    }
  }
  return tasks;
}
