// Measuring one run: a server process pinned to one CPU, the native load generator pinned
// to the other, server CPU time read from /proc between the load generator's marks.
import { execFileSync, spawn, type ChildProcess } from 'node:child_process';
import { existsSync, readFileSync } from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { createInterface } from 'node:readline';

export const root = path.resolve(__dirname, '..', '..');

/**
 * A native benchmark tool, built by node-gyp with the addon. An `npm install` that found a
 * prebuilt addon compiled nothing, so say how to build it rather than fail to spawn it.
 */
export function builtTool(name: 'muxnet-loadgen' | 'muxnet-echo-floor'): string {
  const file = path.join(root, 'build', 'Release', name);
  if (!existsSync(file)) {
    throw new Error(`${file} is not built: run \`npm run build:native\` (node-gyp builds it with the addon)`);
  }
  return file;
}
const clockTicks = Number(execFileSync('getconf', ['CLK_TCK'], { encoding: 'utf8' }).trim()) || 100;
const hasTaskset = (() => {
  try {
    execFileSync('taskset', ['-c', '0', 'true']);
    return true;
  } catch {
    return false;
  }
})();
/** Server on CPU 0, load generator on CPU 1, where the machine has two CPUs and taskset. */
export const pinned = hasTaskset && os.cpus().length >= 2;

/** The command line that runs `command` on `cpu` (as is when not pinning). */
export function pin(cpu: number | string, command: string, args: string[]): [string, string[]] {
  return pinned ? ['taskset', ['-c', String(cpu), command, ...args]] : [command, args];
}

/** Seconds of CPU the process has used in user space, and in all (user + system). */
export function cpuTimes(pid: number): { user: number; total: number } {
  const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
  const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
  const user = Number(fields[11]) / clockTicks;  // utime
  return { user, total: user + Number(fields[12]) / clockTicks };  // + stime
}

/** Seconds of CPU (user + system) the process has used. */
export function cpuSeconds(pid: number): number {
  return cpuTimes(pid).total;
}

/** Resident set size in KiB. */
export function rssKiB(pid: number): number {
  const status = readFileSync(`/proc/${pid}/status`, 'utf8');
  return Number(/VmRSS:\s+(\d+)/.exec(status)?.[1] ?? 0);
}

/** Lines of a child's stdout, one promise per line; '' once it has closed. */
export function lineReader(child: ChildProcess): () => Promise<string> {
  const lines: string[] = [];
  const waiters: ((line: string) => void)[] = [];
  let ended = false;
  createInterface({ input: child.stdout! }).on('line', (line) => {
    const w = waiters.shift();
    if (w) w(line); else lines.push(line);
  }).on('close', () => {
    ended = true;
    for (const w of waiters.splice(0)) w('');
  });
  return () => {
    const line = lines.shift();
    if (line !== undefined) return Promise.resolve(line);
    if (ended) return Promise.resolve('');
    return new Promise((resolve) => waiters.push(resolve));
  };
}

export interface Server {
  port: number;
  pid: number;
  /** The server's live JavaScript heap in bytes (after a full GC when started with --expose-gc). */
  heapUsed(): Promise<number>;
  /**
   * Milliseconds the server has spent in garbage collection since it started; absent for
   * servers that do not report it (the C floor, the peers of other runtimes).
   */
  gcMs?: () => Promise<number>;
  stop(): Promise<void>;
}

/**
 * Starts `command args` on CPU 0 and waits for its {"port","pid"} line. Servers of
 * bench/servers (`js`) also answer the stdin queries "heap" and "gc" with a JSON line; every
 * server exits when its stdin closes.
 */
export async function startProcess(command: string, args: string[],
                                   options: { name?: string; js?: boolean; env?: NodeJS.ProcessEnv; cpus?: string } = {}): Promise<Server> {
  const name = options.name ?? path.basename(command);
  const [cmd, argv] = pin(options.cpus ?? 0, command, args);
  const child = spawn(cmd, argv, { stdio: ['pipe', 'pipe', 'inherit'], env: options.env ?? process.env });
  const next = lineReader(child);
  const first = await Promise.race([
    next(),
    // Long enough for a peer runtime's first start (Deno compiles its TypeScript).
    new Promise<string>((_, reject) => setTimeout(() => reject(new Error(`${name} did not start`)), 20_000)),
  ]);
  if (first === '') throw new Error(`${name} exited before listening`);
  const { port, pid } = JSON.parse(first) as { port: number; pid: number };
  const ask = async (query: string): Promise<Record<string, number>> => {
    if (options.js !== true) throw new Error(`${name} answers no "${query}" query`);
    child.stdin!.write(`${query}\n`);
    const line = await next();
    if (line === '') throw new Error(`${name} exited before answering "${query}"`);
    return JSON.parse(line) as Record<string, number>;
  };
  return {
    port,
    pid,
    heapUsed: async () => (await ask('heap')).heapUsed,
    ...(options.js === true ? { gcMs: async () => (await ask('gc')).gc_ms } : {}),
    stop: () => new Promise((resolve) => {
      child.once('exit', () => resolve());
      child.stdin!.end();
      setTimeout(() => child.kill('SIGKILL'), 3000).unref();
    }),
  };
}

/** Starts `node [nodeFlags] <script> ...args`, a server of bench/servers, on CPU 0 (or the list `cpus`, e.g. "0,1"). */
export function startServer(script: string, args: string[], nodeFlags: string[] = [], cpus?: string): Promise<Server> {
  return startProcess(process.execPath, [...nodeFlags, script, ...args], { name: script, js: true, cpus });
}

export interface LoadOptions {
  connections: number;
  size: number;
  duration: number;
  warmup: number;
  idle?: number;
  mode?: 'pingpong' | 'http' | 'stream' | 'stream-echo' | 'udp' | 'file';
  /** file mode: the name each request line asks for (the answer is `size` bytes). */
  request?: string;
  /** pingpong mode: messages each connection sends back to back before awaiting their echoes (default 1). */
  depth?: number;
}

export interface LoadResult {
  messages: number;
  seconds: number;
  rate: number;
  p50_us: number;
  p99_us: number;
  p999_us: number;
  /** Server CPU microseconds per message over the measured window. */
  cpu_us_per_msg: number;
  /**
   * The user-space part of cpu_us_per_msg: muxnet's code, JavaScript and V8. The rest is the
   * kernel's (syscalls, TCP, loopback), the same for every form of one backend, so forms
   * differ here first.
   */
  user_us_per_msg?: number;
  /** Server CPU use over the window, in CPUs (1 = one core busy). */
  server_cpu: number;
  /**
   * The native load generator's own CPU use over the window, in CPUs: near 1 means it, not
   * the server, may have set the pace. Absent for other load tools.
   */
  load_cpu?: number;
  /** proxy: the backend's (echo or discard behind the proxy, on the load CPU) CPU use over the window, in CPUs. */
  backend_cpu?: number;
  /** Server RSS when measuring began, KiB. */
  rss_kib: number;
  /**
   * JavaScript servers: milliseconds of garbage collection over the measured window (V8's gc
   * performance entries), and that per message. Absent for the C floor and the peers.
   */
  gc_ms?: number;
  gc_us_per_msg?: number;
  /** rss scenario: growth of the server's live JavaScript heap, after a full GC, KiB. */
  heap_kib?: number;
  /** stream: bytes moved while measuring (sent one way, or received back echoed). */
  bytes?: number;
  /** stream: MiB (2^20 bytes) per second. */
  mib_per_s?: number;
  /** stream: server CPU microseconds per MiB. */
  cpu_us_per_mib?: number;
  /** http (autocannon, wrk): connection errors, timeouts and wrong bodies; answers other than 2xx. */
  errors?: number;
  non2xx?: number;
  /** micro: operations per second, nanoseconds per operation, the relative margin of error (%, 95%) and samples taken. */
  ops_per_s?: number;
  ns_per_op?: number;
  rme_pct?: number;
  samples?: number;
  /** micro write-64: the fraction of writes the kernel did not take at once (queued or refused). */
  not_written?: number;
}

/** What a load process reported on its "done" line, with the server's CPU between its marks. */
export interface Measured {
  done: Record<string, number>;
  /** Server CPU seconds (all, and user space only) and wall seconds between "measuring" and "done". */
  cpu: number;
  user: number;
  wall: number;
  /** Server RSS at "measuring", KiB. */
  rss: number;
}

/**
 * Runs a load process on CPU 1 that prints the load generator's JSON lines ("measuring", then
 * "done"), and samples the server process `pid` between them. Killed after `limitSeconds`.
 * `atMeasuring` and `atDone` run right after the CPU samples, e.g. to ask the server too.
 */
export async function runMeasured(command: string, args: string[], pid: number, limitSeconds: number,
                                  atMeasuring?: () => Promise<void>, atDone?: () => Promise<void>): Promise<Measured> {
  const [cmd, argv] = pin(1, command, args);
  const child = spawn(cmd, argv, { stdio: ['ignore', 'pipe', 'inherit'] });
  const next = lineReader(child);
  let cpu0 = { user: 0, total: 0 };
  let rss = 0;
  let wall0 = 0;
  const limit = setTimeout(() => child.kill('SIGKILL'), limitSeconds * 1000);
  try {
    for (;;) {
      const line = await next();
      if (line === '') throw new Error(`${path.basename(command)} exited early`);
      const event = JSON.parse(line) as { event: string } & Record<string, number>;
      if (event.event === 'measuring') {
        cpu0 = cpuTimes(pid);
        rss = rssKiB(pid);
        if (atMeasuring !== undefined) await atMeasuring();
        wall0 = performance.now();
      } else if (event.event === 'done') {
        if (wall0 === 0) throw new Error(`${path.basename(command)} reported done before measuring`);
        const cpu1 = cpuTimes(pid);
        const wall = (performance.now() - wall0) / 1000;
        if (atDone !== undefined) await atDone();
        return {
          done: event, cpu: cpu1.total - cpu0.total, user: cpu1.user - cpu0.user,
          wall, rss,
        };
      }
    }
  } finally {
    clearTimeout(limit);
  }
}

/** The fields every load tool reports, from its "done" line and the server's CPU. */
export function loadResult({ done, cpu, user, wall, rss }: Measured): LoadResult {
  return {
    messages: done.messages,
    seconds: done.seconds,
    rate: done.rate,
    p50_us: done.p50_us,
    p99_us: done.p99_us,
    p999_us: done.p999_us,
    cpu_us_per_msg: done.messages > 0 ? (cpu * 1e6) / done.messages : NaN,
    user_us_per_msg: done.messages > 0 ? (user * 1e6) / done.messages : NaN,
    server_cpu: cpu / wall,
    ...(done.load_cpu_s !== undefined ? { load_cpu: done.seconds > 0 ? done.load_cpu_s / done.seconds : NaN } : {}),
    rss_kib: rss,
  };
}

/** Runs the load generator against port and measures the server process `pid`. */
export async function runLoad(port: number, pid: number, o: LoadOptions,
                              atMeasuring?: () => Promise<void>, atDone?: () => Promise<void>): Promise<LoadResult> {
  const mode = o.mode ?? 'pingpong';
  const args = ['--port', String(port), '--connections', String(o.connections), '--size', String(o.size),
    '--duration', String(o.duration), '--warmup', String(o.warmup), '--idle', String(o.idle ?? 0),
    '--mode', mode, ...(o.request !== undefined ? ['--request', o.request] : []),
    ...(o.depth !== undefined && o.depth !== 1 ? ['--depth', String(o.depth)] : [])];
  const measured = await runMeasured(builtTool('muxnet-loadgen'), args, pid, o.duration + o.warmup + 60, atMeasuring, atDone);
  const { done, cpu } = measured;
  const result = loadResult(measured);
  if (mode === 'http') result.errors = done.errors;  // requests the socket did not take whole
  if (mode === 'udp') result.errors = done.errors;   // datagrams lost (no echo within 200 ms) and sent again
  if (mode === 'stream' || mode === 'stream-echo' || mode === 'file') {
    // Stream: no per-message latency in a bulk transfer; rate is bytes per second, messages
    // whole chunks. File: rate is answers per second, each `size` bytes, with its latency.
    const bytes = mode === 'file' ? done.messages * o.size : done.bytes;
    const mib = bytes / 2 ** 20;
    Object.assign(result, {
      ...(mode === 'file' ? {} : { p50_us: NaN, p99_us: NaN, p999_us: NaN }),
      bytes,
      mib_per_s: mib / done.seconds,
      cpu_us_per_mib: mib > 0 ? (cpu * 1e6) / mib : NaN,
    });
  }
  return result;
}

export function median(values: number[]): number {
  const sorted = values.filter((v) => Number.isFinite(v)).sort((a, b) => a - b);
  if (sorted.length === 0) return NaN;
  const mid = sorted.length >> 1;
  return sorted.length % 2 ? sorted[mid] : (sorted[mid - 1] + sorted[mid]) / 2;
}

/** The median of each field over repeated runs. */
export function medianOf(runs: LoadResult[]): LoadResult {
  const keys = Object.keys(runs[0]) as (keyof LoadResult)[];
  return Object.fromEntries(keys.map((k) => [k, median(runs.map((x) => x[k] as number))])) as unknown as LoadResult;
}

/** The machine a result came from. */
export function machine(): Record<string, string | number | boolean> {
  const cpuModel = os.cpus()[0]?.model ?? 'unknown';
  let commit = 'unknown';
  try {
    commit = execFileSync('git', ['rev-parse', '--short', 'HEAD'], { cwd: root, encoding: 'utf8' }).trim();
  } catch {
    // not a git checkout
  }
  return {
    cpu: cpuModel,
    cores: os.cpus().length,
    kernel: `${os.type()} ${os.release()}`,
    node: process.version,
    commit,
    pinned,
    // io_uring's task-run mode, which the servers inherit (DEFER_TASKRUN unless set).
    ...(process.env.MUXNET_IO_URING_TASKRUN ? { io_uring_taskrun: process.env.MUXNET_IO_URING_TASKRUN } : {}),
  };
}
