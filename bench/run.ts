// npm run bench [-- --quick] [-- --only pingpong,pingpong-4k,pipelined,idle,rss,udp,http,stream,tls,micro,workers,proxy,file] [-- --duration S]
// [-- --backends epoll,poll] [-- --connections 1,50] [-- --idle 0,10000] [-- --forms go,pooled] [-- --repeats N] (echo, idle, stream): runs the scenarios, prints tables, writes bench/results/<date>.json and
// latest.json, and renders the chart. BENCH_PEERS=bun,deno,go|none picks the peers (default: on PATH).
import { mkdirSync, writeFileSync } from 'node:fs';
import * as path from 'node:path';
import { backendCapabilities, backends } from '../lib/backends';
import { machine, medianOf, pinned, root, rssKiB, runLoad, startServer, type LoadResult, type Server } from './measure';
import { microPlan, microTasks } from './micro';
import { C_FLOOR_BACKENDS, peerPlan, PEERS, startCFloor, startPeer, type Peer } from './peers';
import { floorRatios, renderReport } from './report';
import { httpPlan, httpTasks } from './scenario-http';
import { streamPlan, streamJobs } from './scenario-stream';
import { workersPlan, workersTasks } from './scenario-workers';
import { tlsPlan, tlsTasks } from './scenario-tls';
import { proxyPlan, proxyTasks } from './scenario-proxy';
import { filePlan, fileTasks } from './scenario-file';
import type { RepeatedJob, Result, Task } from './types';

interface Config {
  name: string;
  options: Record<string, string>;
}

const SCENARIOS = ['pingpong', 'pingpong-4k', 'pipelined', 'idle', 'rss', 'udp', 'http', 'stream', 'tls', 'micro', 'workers', 'proxy', 'file'];
/**
 * The echo scenarios' message shapes: 64-byte ping-pong, 4 KiB ping-pong, and 64-byte
 * messages pipelined 4 deep (sent back to back, echoes awaited together), the shapes
 * where completion and readiness models part ways (issue 15).
 */
const SHAPES: Record<string, { size: number; depth: number }> = {
  pingpong: { size: 64, depth: 1 }, 'pingpong-4k': { size: 4096, depth: 1 }, pipelined: { size: 64, depth: 4 },
};
function shapeOf(scenario: string): { size: number; depth: number } {
  return SHAPES[scenario] ?? SHAPES.pingpong;
}
const args = process.argv.slice(2);
const quick = args.includes('--quick');
const onlyArg = args[args.indexOf('--only') + 1];
const only = args.includes('--only') && onlyArg ? onlyArg.split(',') : SCENARIOS;
const unknown = only.filter((name) => !SCENARIOS.includes(name));
if (unknown.length > 0) {
  console.error(`--only: unknown scenario ${unknown.join(', ')}; expected some of ${SCENARIOS.join(', ')}`);
  process.exit(2);
}
/** Smoke runs: `--duration S` shortens every measured window, `--backends a,b` keeps some configs. */
function option(name: string): string | undefined {
  const i = args.indexOf(name);
  return i >= 0 ? args[i + 1] : undefined;
}
const durationArg = option('--duration');
const backendsArg = option('--backends')?.split(',');
/** `--connections 50` and `--idle 0,10000` keep some of the ping-pong and idle steps. */
function counts(name: string): number[] | undefined {
  const v = option(name);
  if (v === undefined) return undefined;
  const list = v.split(',').map(Number);
  if (list.some((n) => !Number.isInteger(n) || n < 0)) {
    console.error(`${name}: expected counts like 0,10000, got ${v}`);
    process.exit(2);
  }
  return list;
}
const connectionsArg = counts('--connections');
const idleArg = counts('--idle');
/**
 * The echo, idle and stream scenarios: `--forms go,pooled` keeps some of muxnet's server forms
 * (Node's net runs beside them), `--repeats N` runs each job N times (median filed; 3 by
 * default) for a noisy machine.
 */
const ECHO_FORMS = ['c-floor', 'native', 'go', 'pooled', 'callback'];
const formsArg = option('--forms')?.split(',');
if (formsArg !== undefined && (formsArg.length === 0 || formsArg.some((f) => !ECHO_FORMS.includes(f)))) {
  console.error(`--forms: expected some of ${ECHO_FORMS.join(', ')}, got ${option('--forms')}`);
  process.exit(2);
}
const repeatsArg = option('--repeats');
if (repeatsArg !== undefined && !(Number.isInteger(Number(repeatsArg)) && Number(repeatsArg) >= 1)) {
  console.error(`--repeats: expected a whole number of runs >= 1, got ${repeatsArg}`);
  process.exit(2);
}
if (durationArg !== undefined && !(Number(durationArg) > 0)) {
  console.error(`--duration: expected seconds > 0, got ${durationArg}`);
  process.exit(2);
}

const plan = {
  ...(quick
    ? { repeats: 1, duration: 2, warmup: 0.5, connections: [50], idle: [0, 5000], forms: ['c-floor', 'native', 'go'], idleForms: ['c-floor', 'native', 'go'] }
    // The idle sweep runs every form: what idle connections cost the pooled and onData forms
    // is what they are for. Over all five configs that makes a full run long (--backends
    // narrows it).
    : { repeats: 3, duration: 3, warmup: 1, connections: [1, 50, 200], idle: [0, 1000, 5000, 10000], forms: ECHO_FORMS, idleForms: ECHO_FORMS }),
  ...(durationArg !== undefined ? { duration: Number(durationArg) } : {}),
  ...(formsArg !== undefined ? { forms: formsArg, idleForms: formsArg } : {}),
  ...(repeatsArg !== undefined ? { repeats: Number(repeatsArg) } : {}),
  ...(connectionsArg !== undefined ? { connections: connectionsArg } : {}),
  ...(idleArg !== undefined ? { idle: idleArg } : {}),
  http: httpPlan(quick),
  stream: streamPlan(quick, { repeats: repeatsArg === undefined ? undefined : Number(repeatsArg), forms: formsArg }),
  tls: tlsPlan(quick),
  micro: microPlan(quick),
  workers: workersPlan(quick),
  proxy: proxyPlan(quick),
  file: filePlan(quick),
};

function configs(): Config[] {
  const out: Config[] = [];
  for (const b of backends()) {
    out.push({ name: b, options: { backend: b } });
    // The variants each backend can run as, from what it reports it can do.
    const caps = backendCapabilities(b);
    if (caps.edge) out.push({ name: `${b}-et`, options: { backend: b, trigger: 'edge' } });
    if (caps.pollable && !caps.inlineOnly) out.push({ name: `${b}-thread`, options: { backend: b, mode: 'thread' } });
  }
  return backendsArg === undefined ? out : out.filter((c) => backendsArg.includes(c.name));
}

interface Job {
  scenario: string;
  config: Config | null;  // null: Node's net, or a peer (form peer-bun, peer-deno, peer-go)
  form: string;
  connections: number;
  idle: number;
}

/** The standalone C floor models five backends; epoll-thread's floor is epoll's, run once. */
function hasForm(config: Config, form: string): boolean {
  return form !== 'c-floor' || C_FLOOR_BACKENDS.includes(config.name);
}

const peers = (() => {
  try {
    return peerPlan();
  } catch (err) {
    console.error((err as Error).message);
    return process.exit(2);
  }
})();

function jobs(): Job[] {
  const list: Job[] = [];
  const node = { config: null, form: 'node' };
  for (const scenario of Object.keys(SHAPES).filter((s) => only.includes(s))) {
    for (const connections of plan.connections) {
      for (const config of configs()) {
        for (const form of plan.forms.filter((f) => hasForm(config, f))) list.push({ scenario, config, form, connections, idle: 0 });
      }
      list.push({ scenario, ...node, connections, idle: 0 });
      // Peers in 64-byte ping-pong at the report's 50 connections only: other steps would add minutes for no row.
      if (scenario === 'pingpong' && connections === 50) {
        for (const peer of peers.run) list.push({ scenario, config: null, form: peerForm(peer), connections, idle: 0 });
      }
    }
  }
  if (only.includes('idle')) {
    for (const idle of plan.idle) {
      for (const config of configs()) {
        for (const form of plan.idleForms.filter((f) => hasForm(config, f))) list.push({ scenario: 'idle', config, form, connections: 50, idle });
      }
      list.push({ scenario: 'idle', ...node, connections: 50, idle });
      for (const peer of peers.run) list.push({ scenario: 'idle', config: null, form: peerForm(peer), connections: 50, idle });
    }
  }
  if (only.includes('udp')) {
    // UDP echo, 50 flows: one datagram per call against recvmmsg/sendmmsg batches, and Node's dgram.
    for (const form of ['single', 'batch']) list.push({ scenario: 'udp', config: configs()[0], form, connections: 50, idle: 0 });
    list.push({ scenario: 'udp', ...node, connections: 50, idle: 0 });
  }
  if (only.includes('rss')) {
    // Every configuration: what an idle connection holds differs by backend (io_uring's
    // receive takes a buffer only when data arrives).
    for (const config of configs()) {
      for (const form of ['native', 'callback', 'pooled', 'go']) list.push({ scenario: 'rss', config, form, connections: 1, idle: 10000 });
    }
    list.push({ scenario: 'rss', ...node, connections: 1, idle: 10000 });
  }
  return list;
}

/** The load jobs as repeated jobs: each run a fresh server and the load generator. */
function loadJobs(): RepeatedJob[] {
  return jobs().map((job) => ({
    label: `${job.scenario} ${configName(job)} ${job.form} c=${job.connections} idle=${job.idle}`,
    repeats: repeatsOf(job),
    once: () => runOnce(job),
    result: (runs, rounds) => resultOf(job, runs, rounds),
  }));
}

/**
 * The jobs' runs, interleaved: round r runs every job's r-th repeat, so a slow spell of a
 * shared machine lands on every job alike instead of on the ones scheduled into it (the idle
 * sweep used to run all its 0-idle jobs first and its 10,000-idle ones half an hour later).
 * A job's result, the median of its runs, comes with its last round.
 */
function interleaved(all: RepeatedJob[]): Task[] {
  const list: Task[] = [];
  const done = new Map<RepeatedJob, { runs: LoadResult[]; rounds: number[] }>();
  const rounds = Math.max(0, ...all.map((job) => job.repeats));
  for (let round = 0; round < rounds; round++) {
    for (const job of all) {
      if (round >= job.repeats) continue;
      list.push({
        label: `${job.label} (${round + 1}/${job.repeats})`,
        run: async () => {
          // A failed run is reported by main(); the job keeps the runs that worked, unless
          // it was the last round's (then the job has no result, and the failure says why).
          const { runs, rounds: of } = done.get(job) ?? { runs: [], rounds: [] };
          done.set(job, { runs, rounds: of });
          runs.push(await job.once());
          of.push(round);
          if (round < job.repeats - 1) return [];
          if (runs.length === 0) throw new Error('every run of this job failed (see above)');
          return [job.result(runs, of)];
        },
      });
    }
  }
  return list;
}

/** The peers that do not run, as results that say why (one per scenario). */
function skippedPeerTasks(): Task[] {
  const scenarios = ['pingpong', 'idle'].filter((s) => only.includes(s));
  return peers.skipped.map(({ peer, why }) => ({
    label: `peer ${peer} skipped`,
    run: async () => scenarios.map((scenario) => ({
      scenario, config: 'peer', form: peerForm(peer), connections: 50, idle: 0, size: 64, skipped: why, runs: [], median: {} as LoadResult,
    })),
  }));
}

function tasks(): Task[] {
  // Streams interleave with the echo jobs, so --repeats and the paired ratio cover them too.
  const repeated = [...loadJobs(), ...(only.includes('stream') ? streamJobs(plan.stream, configs()) : [])];
  const list = [...skippedPeerTasks(), ...interleaved(repeated)];
  if (only.includes('http')) list.push(...httpTasks(plan.http));
  if (only.includes('tls')) list.push(...tlsTasks(plan.tls));
  if (only.includes('micro')) list.push(...microTasks(plan.micro, configs()));
  if (only.includes('workers')) list.push(...workersTasks(plan.workers));
  if (only.includes('proxy')) list.push(...proxyTasks(plan.proxy));
  if (only.includes('file')) list.push(...fileTasks(plan.file));
  return list;
}

function progress(done: number, total: number, label: string): void {
  const width = 30;
  const filled = Math.round((done / total) * width);
  process.stderr.write(`\r[${'#'.repeat(filled)}${'.'.repeat(width - filled)}] ${done}/${total} ${label}`.padEnd(100));
}

/** Runs per job: the rss scenario measures memory once; the rest repeat. */
function repeatsOf(job: Job): number {
  return job.scenario === 'rss' ? 1 : plan.repeats;
}

/** A peer's form, apart from muxnet's own (its Go-style form is 'go'): peer-bun, peer-deno, peer-go. */
function peerForm(peer: Peer): string {
  return `peer-${peer}`;
}

function peerOf(form: string): Peer | undefined {
  return PEERS.find((peer) => peerForm(peer) === form);
}

/** The config a job's result is filed under: a backend, node-net, or peer. */
function configName(job: Job): string {
  return job.config?.name ?? (peerOf(job.form) !== undefined ? 'peer' : 'node-net');
}

/** A fresh server for one run of a job: a Node process of bench/servers, the C floor, or a peer. */
function startJobServer(job: Job): Promise<Server> {
  if (job.form === 'c-floor') return startCFloor(job.config!.name);
  const peer = peerOf(job.form);
  if (peer !== undefined) return startPeer(peer);
  const script = path.join(root, '.bench-build', 'bench', 'servers', job.scenario === 'udp' ? 'udp.js' : 'echo.js');
  // --expose-gc lets the rss scenario also weigh the live heap, apart from V8's spare room.
  return startServer(script, [job.form, JSON.stringify(job.config?.options ?? {})], job.scenario === 'rss' ? ['--expose-gc'] : []);
}

/** One run of a load job: a fresh server, the load generator against it, the server stopped. */
async function runOnce(job: Job): Promise<LoadResult> {
  const rss = job.scenario === 'rss';
  const server = await startJobServer(job);
  try {
    await new Promise((resolve) => setTimeout(resolve, 300));
    const baseline = rssKiB(server.pid);
    const heap0 = rss ? await server.heapUsed() : 0;
    let heap = 0;
    // Garbage collection over the measured window, from servers that report it.
    const gcMs = rss ? undefined : server.gcMs;
    let gc0 = 0;
    let gc1 = 0;
    const result = await runLoad(server.port, server.pid, {
      connections: job.connections,
      ...shapeOf(job.scenario),
      duration: rss ? 1 : plan.duration,
      warmup: plan.warmup,
      idle: job.idle,
      ...(job.scenario === 'udp' ? { mode: 'udp' as const } : {}),
    }, async () => {
      if (rss) heap = await server.heapUsed();
      if (gcMs !== undefined) gc0 = await gcMs();
    }, gcMs === undefined ? undefined : async () => { gc1 = await gcMs(); });
    if (gcMs !== undefined) {
      result.gc_ms = gc1 - gc0;
      result.gc_us_per_msg = result.messages > 0 ? (result.gc_ms * 1000) / result.messages : NaN;
    }
    if (rss) {
      result.rss_kib -= baseline;
      result.heap_kib = (heap - heap0) / 1024;
    }
    return result;
  } finally {
    await server.stop();
  }
}

/** A job's result: the median of its runs. */
function resultOf(job: Job, runs: LoadResult[], rounds: number[]): Result {
  return {
    scenario: job.scenario,
    config: configName(job),
    form: job.form,
    connections: job.connections,
    idle: job.idle,
    size: shapeOf(job.scenario).size,
    ...(shapeOf(job.scenario).depth > 1 ? { depth: shapeOf(job.scenario).depth } : {}),
    runs,
    rounds,
    median: medianOf(runs),
  };
}

function fmt(v: number, digits = 2): string {
  return Number.isFinite(v) ? v.toFixed(digits) : '-';
}

/** The paired-ratio column: the ratio, and the backend it is against where that is not epoll. */
function pairedCell(r: Result): string {
  return r.paired_ratio === undefined ? '-' : `${fmt(r.paired_ratio)}${r.paired_with === 'epoll' ? '' : ` (/ ${r.paired_with})`}`;
}

function printTable(results: Result[]): void {
  const echo = results.filter((r) => [...Object.keys(SHAPES), 'idle', 'rss', 'udp', 'workers'].includes(r.scenario));
  if (echo.length > 0) {
    console.table(echo.map((r) => ({
      scenario: r.scenario,
      bytes: r.size,
      backend: r.config,
      form: r.form,
      conns: r.connections,
      idle: r.idle,
      ...(r.skipped !== undefined ? { 'cpu µs/msg': `skipped: ${r.skipped}` } : {
        'cpu µs/msg': fmt(r.median.cpu_us_per_msg),
        'gc µs/msg': fmt(r.median.gc_us_per_msg ?? NaN),
        '/ C floor': fmt(r.floor_ratio?.c_floor ?? NaN),
        '/ native': fmt(r.floor_ratio?.native ?? NaN),
        '/ epoll, paired': pairedCell(r),
        'msg/s': Math.round(r.median.rate),
        'p50 µs': r.median.p50_us,
        'p99 µs': r.median.p99_us,
        'p99.9 µs': r.median.p999_us,
      }),
      ...(r.scenario === 'rss' ? {
        'KiB/idle conn': fmt(r.median.rss_kib / r.idle, 3),
        'heap KiB/idle conn': fmt((r.median.heap_kib ?? NaN) / r.idle, 3),
      } : {}),
    })));
  }
  const http = results.filter((r) => r.scenario === 'http');
  if (http.length > 0) {
    console.log('\nhttp: HTTP/1.1 keep-alive hello world');
    console.table(http.map((r) => ({
      server: r.form === 'node' ? "Node's http" : r.form === 'node-stream' ? `Node's http over muxnet ${r.config}` : `muxnet ${r.config}`,
      tool: r.tool,
      conns: r.connections,
      ...(r.skipped !== undefined ? { 'cpu µs/req': `skipped: ${r.skipped}` } : {
        'cpu µs/req': fmt(r.median.cpu_us_per_msg),
        'req/s': Math.round(r.median.rate),
        'p50 µs': fmt(r.median.p50_us, 0),
        'p99 µs': fmt(r.median.p99_us, 0),
        'errors': (r.median.errors ?? 0) + (r.median.non2xx ?? 0),
      }),
    })));
  }
  const stream = results.filter((r) => r.scenario === 'stream');
  if (stream.length > 0) {
    console.log(`\nstream: bulk transfer in ${(stream[0].size / 1024).toFixed(0)} KiB chunks`);
    console.table(stream.map((r) => ({
      direction: r.direction,
      backend: r.config,
      form: r.form,
      conns: r.connections,
      'MiB/s': fmt(r.median.mib_per_s ?? NaN, 0),
      'cpu µs/MiB': fmt(r.median.cpu_us_per_mib ?? NaN, 0),
      '/ epoll, paired': pairedCell(r),
      'server CPUs': fmt(r.median.server_cpu),
    })));
  }
  const tlsRows = results.filter((r) => r.scenario === 'tls');
  if (tlsRows.length > 0) {
    console.log(`\ntls: ${tlsRows[0].size}-byte ping-pong over TLS 1.3 (load: Node's tls client)`);
    console.table(tlsRows.map((r) => ({
      server: r.form === 'node' ? "Node's tls" : `muxnet listenTLS ${r.config} (${r.form})`,
      conns: r.connections,
      'cpu µs/msg': fmt(r.median.cpu_us_per_msg),
      'msg/s': Math.round(r.median.rate),
      'p50 µs': fmt(r.median.p50_us, 0),
      'p99 µs': fmt(r.median.p99_us, 0),
      'server CPUs': fmt(r.median.server_cpu),
    })));
  }
  const httpsRows = results.filter((r) => r.scenario === 'https');
  if (httpsRows.length > 0) {
    console.log('\nhttps: hello world over TLS keep-alive connections (load: wrk)');
    console.table(httpsRows.map((r) => ({
      server: r.form === 'node-https' ? "Node's https" : `Node's http over muxnet listenTLS ${r.config}`,
      conns: r.connections,
      'cpu µs/req': r.skipped ?? fmt(r.median.cpu_us_per_msg),
      'req/s': r.skipped === undefined ? Math.round(r.median.rate) : '',
      'p50 µs': r.skipped === undefined ? fmt(r.median.p50_us, 0) : '',
      'p99 µs': r.skipped === undefined ? fmt(r.median.p99_us, 0) : '',
      errors: r.skipped === undefined ? (r.median.errors ?? 0) + (r.median.non2xx ?? 0) : '',
    })));
  }
  const proxy = results.filter((r) => r.scenario === 'proxy');
  if (proxy.length > 0) {
    console.log('\nproxy: load generator -> proxy (measured) -> C++ echo/discard; 64-byte ping-pong and 16 KiB chunks one way');
    console.table(proxy.map((r) => ({
      proxy: r.form,
      backend: r.config,
      load: r.case,
      conns: r.connections,
      'cpu µs/msg': r.case === 'pingpong' ? fmt(r.median.cpu_us_per_msg) : '',
      'msg/s': r.case === 'pingpong' ? Math.round(r.median.rate) : '',
      'cpu µs/MiB': r.case === 'stream' ? fmt(r.median.cpu_us_per_mib ?? NaN, 0) : '',
      'MiB/s': r.case === 'stream' ? fmt(r.median.mib_per_s ?? NaN, 0) : '',
      'proxy CPUs': fmt(r.median.server_cpu),
      'load CPUs': fmt(r.median.load_cpu ?? NaN),
      'backend CPUs': fmt(r.median.backend_cpu ?? NaN),
    })));
  }
  const file = results.filter((r) => r.scenario === 'file');
  if (file.length > 0) {
    console.log('\nfile: files from the page cache over a one-line protocol');
    console.table(file.map((r) => ({
      server: r.form,
      backend: r.config,
      file: r.case,
      conns: r.connections,
      'cpu µs/MiB': fmt(r.median.cpu_us_per_mib ?? NaN, 0),
      'req/s': Math.round(r.median.rate),
      'MiB/s': fmt(r.median.mib_per_s ?? NaN, 0),
      'p99 µs': fmt(r.median.p99_us, 0),
      'server CPUs': fmt(r.median.server_cpu),
      'load CPUs': fmt(r.median.load_cpu ?? NaN),
    })));
  }
  const micro = results.filter((r) => r.scenario === 'micro');
  if (micro.length > 0) {
    console.log('\nmicro: internals (batch-delivery: per event)');
    console.table(micro.map((r) => ({
      case: r.case,
      backend: r.config,
      tool: r.tool,
      'ops/s': Math.round(r.median.ops_per_s ?? NaN),
      'ns/op': fmt(r.median.ns_per_op ?? NaN, 0),
      '±%': fmt(r.median.rme_pct ?? NaN, 1),
      samples: r.median.samples,
      ...(r.median.not_written !== undefined ? { 'not written': `${(r.median.not_written * 100).toFixed(1)}%` } : {}),
    })));
  }
}

async function main(): Promise<void> {
  const list = tasks();
  const results: Result[] = [];
  const failed: string[] = [];
  const started = new Date();
  console.error(`muxnet bench: ${list.length} runs${quick ? ' (quick)' : ''}, ${pinned ? 'server on CPU 0, load on CPU 1' : 'not pinned'}`);
  for (let i = 0; i < list.length; i++) {
    progress(i, list.length, list[i].label);
    try {
      results.push(...await list[i].run());
    } catch (err) {
      // One broken scenario must not cost the results of a half-hour run.
      failed.push(`${list[i].label}: ${(err as Error).message}`);
      process.stderr.write(`\n${list[i].label} failed: ${(err as Error).stack}\n`);
    }
  }
  progress(list.length, list.length, 'done');
  process.stderr.write('\n');
  floorRatios(results);
  printTable(results);
  const report = { machine: machine(), date: started.toISOString(), quick, plan, results, failed };
  const dir = path.join(root, 'bench', 'results');
  mkdirSync(dir, { recursive: true });
  const stamp = started.toISOString().replace(/[:.]/g, '-');
  writeFileSync(path.join(dir, `${stamp}.json`), `${JSON.stringify(report, null, 2)}\n`);
  writeFileSync(path.join(dir, 'latest.json'), `${JSON.stringify(report, null, 2)}\n`);
  const written = renderReport(report);
  console.log(`\nresults: bench/results/${stamp}.json; ${written.join(', ')}`);
  if (failed.length > 0) {
    console.error(`\n${failed.length} run(s) failed:\n  ${failed.join('\n  ')}`);
    process.exitCode = 1;
  }
}

main().catch((err) => {
  console.error(err);
  process.exit(1);
});
