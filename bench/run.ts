// npm run bench [-- --quick] [-- --only pingpong,idle,rss]: runs the scenarios, prints a
// table, writes bench/results/<date>.json and latest.json, and renders the chart.
import { mkdirSync, writeFileSync } from 'node:fs';
import * as path from 'node:path';
import { backends } from '../lib/backends';
import { machine, median, pinned, root, runLoad, startServer, type LoadResult } from './measure';
import { renderReport } from './report';

interface Config {
  name: string;
  options: Record<string, string>;
}

export interface Result {
  scenario: string;
  config: string;
  form: string;
  connections: number;
  idle: number;
  size: number;
  runs: LoadResult[];
  median: LoadResult;
}

const args = process.argv.slice(2);
const quick = args.includes('--quick');
const onlyArg = args[args.indexOf('--only') + 1];
const only = args.includes('--only') && onlyArg ? onlyArg.split(',') : ['pingpong', 'idle', 'rss'];

const plan = quick
  ? { repeats: 1, duration: 2, warmup: 0.5, connections: [50], idle: [0, 5000], forms: ['native', 'go'] }
  : { repeats: 3, duration: 4, warmup: 1, connections: [1, 50, 200], idle: [0, 1000, 5000, 10000], forms: ['native', 'go', 'pooled'] };

function configs(): Config[] {
  const out: Config[] = [];
  for (const b of backends()) {
    out.push({ name: b, options: { backend: b } });
    if (b === 'epoll') {
      out.push({ name: 'epoll-et', options: { backend: b, trigger: 'edge' } });
      out.push({ name: 'epoll-thread', options: { backend: b, mode: 'thread' } });
    }
  }
  return out;
}

interface Job {
  scenario: string;
  config: Config | null;  // null: Node's net
  form: string;
  connections: number;
  idle: number;
}

function jobs(): Job[] {
  const list: Job[] = [];
  const node = { config: null, form: 'node' };
  if (only.includes('pingpong')) {
    for (const connections of plan.connections) {
      for (const config of configs()) {
        for (const form of plan.forms) list.push({ scenario: 'pingpong', config, form, connections, idle: 0 });
      }
      list.push({ scenario: 'pingpong', ...node, connections, idle: 0 });
    }
  }
  if (only.includes('idle')) {
    for (const idle of plan.idle) {
      for (const config of configs()) {
        for (const form of plan.forms) list.push({ scenario: 'idle', config, form, connections: 50, idle });
      }
      list.push({ scenario: 'idle', ...node, connections: 50, idle });
    }
  }
  if (only.includes('rss')) {
    for (const form of ['native', 'pooled', 'go', 'node']) {
      const config = form === 'node' ? null : configs()[0];
      list.push({ scenario: 'rss', config, form, connections: 1, idle: 10000 });
    }
  }
  return list;
}

function progress(done: number, total: number, label: string): void {
  const width = 30;
  const filled = Math.round((done / total) * width);
  process.stderr.write(`\r[${'#'.repeat(filled)}${'.'.repeat(width - filled)}] ${done}/${total} ${label}`.padEnd(100));
}

async function runJob(job: Job): Promise<Result> {
  const script = path.join(root, '.bench-build', 'bench', 'servers', 'echo.js');
  const runs: LoadResult[] = [];
  const repeats = job.scenario === 'rss' ? 1 : plan.repeats;
  for (let r = 0; r < repeats; r++) {
    const server = await startServer(script, [job.form, JSON.stringify(job.config?.options ?? {})]);
    try {
      await new Promise((resolve) => setTimeout(resolve, 300));
      const baseline = (await import('./measure')).rssKiB(server.pid);
      const result = await runLoad(server.port, server.pid, {
        connections: job.connections,
        size: 64,
        duration: job.scenario === 'rss' ? 1 : plan.duration,
        warmup: plan.warmup,
        idle: job.idle,
      });
      if (job.scenario === 'rss') result.rss_kib -= baseline;
      runs.push(result);
    } finally {
      await server.stop();
    }
  }
  const keys = Object.keys(runs[0]) as (keyof LoadResult)[];
  const med = Object.fromEntries(keys.map((k) => [k, median(runs.map((x) => x[k]))])) as unknown as LoadResult;
  return {
    scenario: job.scenario,
    config: job.config?.name ?? 'node-net',
    form: job.form,
    connections: job.connections,
    idle: job.idle,
    size: 64,
    runs,
    median: med,
  };
}

function fmt(v: number, digits = 2): string {
  return Number.isFinite(v) ? v.toFixed(digits) : '-';
}

function printTable(results: Result[]): void {
  const rows = results.map((r) => ({
    scenario: r.scenario,
    backend: r.config,
    form: r.form,
    conns: r.connections,
    idle: r.idle,
    'cpu µs/msg': fmt(r.median.cpu_us_per_msg),
    'msg/s': Math.round(r.median.rate),
    'p50 µs': r.median.p50_us,
    'p99 µs': r.median.p99_us,
    'p99.9 µs': r.median.p999_us,
    ...(r.scenario === 'rss' ? { 'KiB/idle conn': fmt(r.median.rss_kib / r.idle, 3) } : {}),
  }));
  console.table(rows);
}

async function main(): Promise<void> {
  const list = jobs();
  const results: Result[] = [];
  const started = new Date();
  console.error(`muxnet bench: ${list.length} runs${quick ? ' (quick)' : ''}, ${pinned ? 'server on CPU 0, load on CPU 1' : 'not pinned'}`);
  for (let i = 0; i < list.length; i++) {
    const job = list[i];
    progress(i, list.length, `${job.scenario} ${job.config?.name ?? 'node-net'} ${job.form} c=${job.connections} idle=${job.idle}`);
    results.push(await runJob(job));
  }
  progress(list.length, list.length, 'done');
  process.stderr.write('\n');
  printTable(results);
  const report = { machine: machine(), date: started.toISOString(), quick, plan, results };
  const dir = path.join(root, 'bench', 'results');
  mkdirSync(dir, { recursive: true });
  const stamp = started.toISOString().replace(/[:.]/g, '-');
  writeFileSync(path.join(dir, `${stamp}.json`), `${JSON.stringify(report, null, 2)}\n`);
  writeFileSync(path.join(dir, 'latest.json'), `${JSON.stringify(report, null, 2)}\n`);
  const written = renderReport(report);
  console.log(`\nresults: bench/results/${stamp}.json; ${written.join(', ')}`);
}

main().catch((err) => {
  console.error(err);
  process.exit(1);
});
