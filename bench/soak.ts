// npm run soak [-- --seconds 60 --connections 50 --form go|pooled|serve|native|node --backend epoll]:
// churns connections at full rate against one echo server (each: connect, one 64-byte echo,
// close) and samples the server's RSS, open descriptors and CPU every second. Not a test:
// it prints a table, writes bench/results/soak-latest.json, and renders soak.svg, which
// `npm run bench:report` puts into the README. A leak shows as a curve that keeps climbing.
import { readdirSync, writeFileSync, mkdirSync } from 'node:fs';
import { spawn } from 'node:child_process';
import * as path from 'node:path';
import { cpuSeconds, lineReader, machine, pin, root, rssKiB, startServer } from './measure';
import { renderSoak, type SoakReport, type SoakSample } from './report';

const FORMS = ['go', 'pooled', 'serve', 'native', 'node'];

function option(name: string, fallback: string): string {
  const args = process.argv.slice(2);
  const i = args.indexOf(`--${name}`);
  return i >= 0 && args[i + 1] !== undefined ? args[i + 1] : fallback;
}

function positive(name: string, fallback: number): number {
  const v = Number(option(name, String(fallback)));
  if (!Number.isInteger(v) || v <= 0) {
    console.error(`--${name}: expected a positive integer, got ${option(name, '')}`);
    process.exit(2);
  }
  return v;
}

function openFds(pid: number): number {
  return readdirSync(`/proc/${pid}/fd`).length;
}

async function main(): Promise<void> {
  const seconds = positive('seconds', 60);
  const connections = positive('connections', 50);
  const form = option('form', 'go');
  const backend = option('backend', 'epoll');
  if (!FORMS.includes(form)) {
    console.error(`--form: expected one of ${FORMS.join(', ')}, got ${form}`);
    process.exit(2);
  }
  const loopOptions = form === 'node' ? {} : { backend };
  const server = await startServer(path.join(__dirname, 'servers', 'echo.js'), [form, JSON.stringify(loopOptions)]);
  const samples: SoakSample[] = [];
  const loadgen = path.join(root, 'build', 'Release', 'muxnet-loadgen');
  const [cmd, argv] = pin(1, loadgen, ['--port', String(server.port), '--mode', 'churn', '--size', '64',
    '--connections', String(connections), '--warmup', '0', '--duration', String(seconds)]);
  const child = spawn(cmd, argv, { stdio: ['ignore', 'pipe', 'inherit'] });
  const limit = setTimeout(() => child.kill('SIGKILL'), (seconds + 30) * 1000);
  const next = lineReader(child);
  let done: Record<string, number> | undefined;
  let lastCpu = cpuSeconds(server.pid);
  let lastT = 0;
  let lastCompleted = 0;
  console.log(`soak: ${form} on ${form === 'node' ? "Node's net" : backend}, ${connections} connection slots, ${seconds} s`);
  console.log('    t s   conn/s   completed   errors   RSS MiB   fds   server CPU');
  try {
    for (;;) {
      const line = await next();
      if (line === '') break;
      const event = JSON.parse(line) as { event: string } & Record<string, number>;
      if (event.event === 'done') {
        done = event;
        continue;
      }
      if (event.event !== 'tick') continue;
      const cpu = cpuSeconds(server.pid);
      const dt = event.seconds - lastT;
      const sample: SoakSample = {
        t: event.seconds,
        completed: event.completed,
        errors: event.errors,
        conn_per_s: dt > 0 ? (event.completed - lastCompleted) / dt : 0,
        rss_kib: rssKiB(server.pid),
        fds: openFds(server.pid),
        server_cpu: dt > 0 ? (cpu - lastCpu) / dt : 0,
      };
      lastCpu = cpu;
      lastT = event.seconds;
      lastCompleted = event.completed;
      samples.push(sample);
      console.log(`${sample.t.toFixed(0).padStart(6)} ${sample.conn_per_s.toFixed(0).padStart(8)} ` +
        `${String(sample.completed).padStart(11)} ${String(sample.errors).padStart(8)} ` +
        `${(sample.rss_kib / 1024).toFixed(1).padStart(9)} ${String(sample.fds).padStart(5)} ${sample.server_cpu.toFixed(2).padStart(12)}`);
    }
  } finally {
    clearTimeout(limit);
    await server.stop();
  }
  if (done === undefined) throw new Error('muxnet-loadgen ended without a result');
  const report: SoakReport = {
    machine: machine(),
    date: new Date().toISOString(),
    form,
    backend: form === 'node' ? 'node-net' : backend,
    connections,
    seconds,
    completed: done.completed,
    errors: done.errors,
    samples,
  };
  const dir = path.join(root, 'bench', 'results');
  mkdirSync(dir, { recursive: true });
  writeFileSync(path.join(dir, `soak-${report.date.replace(/[:.]/g, '-')}.json`), `${JSON.stringify(report, null, 2)}\n`);
  writeFileSync(path.join(dir, 'soak-latest.json'), `${JSON.stringify(report, null, 2)}\n`);
  renderSoak(report);
  const first = samples[Math.min(4, samples.length - 1)];
  const last = samples[samples.length - 1];
  console.log(`\n${done.completed} connections, ${done.errors} errors. From t=${first?.t.toFixed(0)} s to the end: ` +
    `RSS ${((first?.rss_kib ?? 0) / 1024).toFixed(1)} → ${((last?.rss_kib ?? 0) / 1024).toFixed(1)} MiB, ` +
    `fds ${first?.fds} → ${last?.fds}. Wrote bench/results/soak-latest.json and soak.svg.`);
}

main().catch((err: unknown) => {
  console.error(err);
  process.exit(1);
});
