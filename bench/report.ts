// Renders a benchmark report: an SVG chart (CPU per message against idle connections, one
// line per backend, muxnet against Node) and a Markdown summary with the ratios.
import { existsSync, readFileSync, writeFileSync } from 'node:fs';
import * as path from 'node:path';
import { median, type LoadResult } from './measure';
import { cFloorOf } from './peers';
import type { Result } from './types';

interface Report {
  machine: Record<string, string | number | boolean>;
  date: string;
  quick: boolean;
  results: Result[];
}

const root = path.resolve(__dirname, '..', '..');
const resultsDir = path.join(root, 'bench', 'results');
const COLORS = ['#1f77b4', '#d62728', '#2ca02c', '#9467bd', '#ff7f0e', '#8c564b', '#17becf', '#7f7f7f'];

function escapeXml(s: string): string {
  return s.replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;');
}

/** Line chart of cpu_us_per_msg against idle connections; log y axis. */
export function chartSvg(report: Report): string {
  const idle = report.results.filter((r) => r.scenario === 'idle');
  const series = new Map<string, { x: number; y: number }[]>();
  for (const r of idle) {
    // Go-style per backend, Node's net, the peers, and one C floor (epoll's) as the bottom line.
    if (!measured(r) || (r.form === 'c-floor' ? r.config !== 'epoll' : !['go', 'node', ...Object.keys(PEER_NAMES)].includes(r.form))) continue;
    const name = r.form === 'node' ? "Node's net" : r.form === 'c-floor' ? 'C floor epoll' :
      r.config === 'peer' ? PEER_NAMES[r.form] ?? r.form : `muxnet ${r.config}`;
    const points = series.get(name) ?? [];
    points.push({ x: r.idle, y: r.median.cpu_us_per_msg });
    series.set(name, points);
  }
  const W = 760, H = 420, left = 70, right = 190, top = 40, bottom = 60;
  const xs = [...new Set(idle.map((r) => r.idle))].sort((a, b) => a - b);
  const ys = [...series.values()].flat().map((p) => p.y).filter((y) => y > 0);
  if (xs.length === 0 || ys.length === 0) return '';
  const yMin = Math.pow(10, Math.floor(Math.log10(Math.min(...ys))));
  const yMax = Math.pow(10, Math.ceil(Math.log10(Math.max(...ys))));
  const xMax = Math.max(...xs, 1);
  const px = (x: number): number => left + (x / xMax) * (W - left - right);
  const py = (y: number): number => top + (1 - (Math.log10(y) - Math.log10(yMin)) / (Math.log10(yMax) - Math.log10(yMin))) * (H - top - bottom);
  const out: string[] = [];
  out.push(`<svg xmlns="http://www.w3.org/2000/svg" width="${W}" height="${H}" font-family="sans-serif" font-size="12">`);
  out.push(`<rect width="${W}" height="${H}" fill="white"/>`);
  out.push(`<text x="${left}" y="22" font-size="15" font-weight="bold">Server CPU per 64-byte echo, 50 active connections</text>`);
  for (let d = yMin; d <= yMax; d *= 10) {
    for (const m of [1, 2, 5]) {
      const v = d * m;
      if (v > yMax) break;
      out.push(`<line x1="${left}" x2="${W - right}" y1="${py(v)}" y2="${py(v)}" stroke="#e5e5e5"/>`);
      out.push(`<text x="${left - 6}" y="${py(v) + 4}" text-anchor="end">${v}</text>`);
    }
  }
  for (const x of xs) {
    out.push(`<line x1="${px(x)}" x2="${px(x)}" y1="${top}" y2="${H - bottom}" stroke="#f0f0f0"/>`);
    out.push(`<text x="${px(x)}" y="${H - bottom + 18}" text-anchor="middle">${x.toLocaleString('en-US')}</text>`);
  }
  out.push(`<text x="${(left + W - right) / 2}" y="${H - 15}" text-anchor="middle">idle connections held open</text>`);
  out.push(`<text transform="translate(18 ${(top + H - bottom) / 2}) rotate(-90)" text-anchor="middle">µs of server CPU per message (log)</text>`);
  let i = 0;
  for (const [name, points] of series) {
    const color = COLORS[i % COLORS.length];
    const sorted = points.sort((a, b) => a.x - b.x).filter((p) => p.y > 0);
    out.push(`<polyline fill="none" stroke="${color}" stroke-width="2"${name.startsWith('Node') ? ' stroke-dasharray="6 4"' : ''} points="${sorted.map((p) => `${px(p.x)},${py(p.y)}`).join(' ')}"/>`);
    for (const p of sorted) out.push(`<circle cx="${px(p.x)}" cy="${py(p.y)}" r="3" fill="${color}"/>`);
    out.push(`<text x="${W - right + 12}" y="${top + 14 + i * 18}" fill="${color}">${escapeXml(name)}</text>`);
    i++;
  }
  const m = report.machine;
  out.push(`<text x="${left}" y="${H - 2}" font-size="10" fill="#666">${escapeXml(`${m.cpu}, ${m.cores} cores, ${m.kernel}, Node ${m.node}, muxnet ${m.commit}, ${report.date.slice(0, 10)}`)}</text>`);
  out.push('</svg>');
  return `${out.join('\n')}\n`;
}

function find(report: Report, scenario: string, config: string, form: string, connections: number, idle = 0): Result | undefined {
  return report.results.find((r) => r.scenario === scenario && r.config === config && r.form === form &&
    r.connections === connections && r.idle === idle);
}

function f(v: number | undefined, digits = 2): string {
  return v !== undefined && Number.isFinite(v) ? v.toFixed(digits) : '–';
}

/** A ratio as "1.23×", or '–' when missing. */
function times(v: number | undefined): string {
  return v !== undefined && Number.isFinite(v) ? `${v.toFixed(2)}×` : '–';
}

/** a / b as "1.23×", or '–' when either is missing. */
function ratio(a: number | undefined, b: number | undefined): string {
  return times(a !== undefined && b !== undefined ? a / b : undefined);
}

const measured = (r: Result): boolean => r.skipped === undefined && r.runs.length > 0;

/**
 * The backend whose floors Node's net and the peers are held against: epoll where the run
 * has a floor of it, else the first backend that has one.
 */
function referenceBackend(results: Result[]): string | undefined {
  const floors = results.filter((r) => (r.form === 'c-floor' || r.form === 'native') && measured(r)).map((r) => r.config);
  return floors.includes('epoll') ? 'epoll' : floors[0];
}

/**
 * Sets floor_ratio on every measured pingpong and idle result: its CPU per message over that
 * of the standalone C floor and of the in-Node native floor of the same backend and shape
 * (Node's net and the peers: the reference backend's). Results of runs before the C floor
 * existed get only the native ratio. Results of another backend, streams' too, also get
 * paired_ratio, against the epoll's (else the first backend's) runs of the same form and step.
 */
export function floorRatios(results: Result[]): void {
  const ref = referenceBackend(results);
  const backends = results.filter((x) => measured(x) && x.config !== 'node-net' && x.config !== 'peer').map((x) => x.config);
  const pairWith = backends.includes('epoll') ? 'epoll' : backends[0];
  const cpu = (scenario: string, config: string | undefined, form: string, r: Result): number | undefined =>
    results.find((x) => x.scenario === scenario && x.config === config && x.form === form && measured(x) &&
      x.connections === r.connections && x.idle === r.idle)?.median.cpu_us_per_msg;
  for (const r of results) {
    if (r.scenario === 'stream' && measured(r) && pairWith !== undefined) {
      const paired = pairedRatio(results, r, pairWith);
      if (paired !== undefined) [r.paired_ratio, r.paired_with] = paired;
    }
    if (!['pingpong', 'pingpong-4k', 'pipelined', 'idle'].includes(r.scenario) || !measured(r)) continue;
    const backend = r.config === 'node-net' || r.config === 'peer' ? ref : r.config;
    const c = cpu(r.scenario, backend === undefined ? undefined : cFloorOf(backend), 'c-floor', r);
    const n = cpu(r.scenario, backend, 'native', r);
    const floorRatio: { c_floor?: number; native?: number } = {};
    if (c !== undefined) floorRatio.c_floor = r.median.cpu_us_per_msg / c;
    if (n !== undefined) floorRatio.native = r.median.cpu_us_per_msg / n;
    r.floor_ratio = floorRatio;
    const paired = pairWith === undefined ? undefined : pairedRatio(results, r, pairWith);
    if (paired !== undefined) [r.paired_ratio, r.paired_with] = paired;
  }
}

/**
 * r's CPU per message (stream: per MiB) over that of backend `ref` (epoll, or where epoll did
 * not run the first backend) for the same form and step: the median of the ratios of runs from
 * the same round. Results written before rounds were recorded pair runs by position.
 */
function pairedRatio(results: Result[], r: Result, ref: string): [number, string] | undefined {
  if (r.config === ref) return undefined;
  const other = results.find((x) => x.scenario === r.scenario && x.config === ref && x.form === r.form && measured(x) &&
    x.connections === r.connections && x.idle === r.idle && x.direction === r.direction);
  if (other === undefined) return undefined;
  const roundOf = (x: Result, i: number): number => x.rounds?.[i] ?? i;
  const cost = (run: LoadResult): number => (r.scenario === 'stream' ? run.cpu_us_per_mib ?? NaN : run.cpu_us_per_msg);
  const ratios = r.runs.flatMap((run, i) => {
    const j = other.runs.findIndex((_, k) => roundOf(other, k) === roundOf(r, i));
    const base = j >= 0 ? cost(other.runs[j]) : NaN;
    return base > 0 && cost(run) > 0 ? [cost(run) / base] : [];
  });
  return ratios.length > 0 ? [median(ratios), ref] : undefined;
}

const PEER_NAMES: Record<string, string> = {
  'peer-bun': 'Bun (Bun.listen)', 'peer-deno': 'Deno (conn.read/write)', 'peer-go': 'Go (net, GOMAXPROCS=1)',
};

/** Markdown summary: per backend, CPU per message and the ratios the targets speak of. */
export function summaryMarkdown(report: Report): string {
  const m = report.machine;
  const lines: string[] = [];
  lines.push(`Measured ${report.date.slice(0, 10)} on ${m.cpu}, ${m.cores} cores, ${m.kernel}, Node ${m.node}, muxnet ${m.commit}` +
    `${m.pinned ? ' (server pinned to CPU 0, load generator to CPU 1)' : ''}${report.quick ? ', quick run' : ''}; medians of ` +
    `${Math.max(0, ...report.results.map((r) => r.runs.length))} run(s). Command: \`npm run bench${report.quick ? ' -- --quick' : ''}\`.`);
  lines.push('');
  const node = find(report, 'pingpong', 'node-net', 'node', 50);
  const configs = [...new Set(report.results.filter((r) => r.scenario === 'pingpong' && r.config !== 'node-net' && r.config !== 'peer')
    .map((r) => r.config))];
  if (configs.length > 0) {
    lines.push('Echo ping-pong, 64 bytes, 50 connections — server CPU µs per message (lower is better). C floor: the standalone ' +
      'C++ echo (`muxnet-echo-floor`, no Node; epoll-thread has epoll\'s); native floor: the C++ echo inside Node\'s loop:');
    lines.push('');
    lines.push(`| backend | C floor | native floor | Go-style TS | pooled TS | onData TS | Go-style / C floor | onData / C floor | Go-style / native floor | Go-style / Node's net (${f(node?.median.cpu_us_per_msg)} µs) | msg/s (Go-style) | p99 µs |`);
    lines.push('|---|---|---|---|---|---|---|---|---|---|---|---|');
    for (const c of configs) {
      const cFloor = find(report, 'pingpong', cFloorOf(c), 'c-floor', 50)?.median.cpu_us_per_msg;
      const floor = find(report, 'pingpong', c, 'native', 50)?.median.cpu_us_per_msg;
      const go = find(report, 'pingpong', c, 'go', 50)?.median;
      const pooled = find(report, 'pingpong', c, 'pooled', 50)?.median;
      const callback = find(report, 'pingpong', c, 'callback', 50)?.median;
      lines.push(`| ${c} | ${f(cFloor)} | ${f(floor)} | ${f(go?.cpu_us_per_msg)} | ${f(pooled?.cpu_us_per_msg)} | ${f(callback?.cpu_us_per_msg)} | ` +
        `${ratio(go?.cpu_us_per_msg, cFloor)} | ${ratio(callback?.cpu_us_per_msg, cFloor)} | ${ratio(go?.cpu_us_per_msg, floor)} | ` +
        `${ratio(go?.cpu_us_per_msg, node?.median.cpu_us_per_msg)} | ${f(go?.rate, 0)} | ${f(go?.p99_us, 0)} |`);
    }
    lines.push('');
    lines.push(...peerSection(report));
    // The same messages split into user space and kernel: the kernel's part (syscalls, TCP
    // over loopback) is about equal for every form, so what the forms add shows in user space.
    const split = [['C floor', 'c-floor'], ['native floor', 'native'], ['Go-style TS', 'go'], ['pooled TS', 'pooled'], ['onData TS', 'callback']]
      .map(([name, form]) => [name, find(report, 'pingpong', configs[0], form, 50)?.median] as const)
      .concat([["Node's net", node?.median] as const])
      .concat(report.results.filter((r) => r.scenario === 'pingpong' && r.config === 'peer' && measured(r))
        .map((r) => [PEER_NAMES[r.form] ?? r.form, r.median] as const))
      .filter(([, m]) => m?.user_us_per_msg !== undefined);
    if (split.length > 0) {
      // GC time is part of user space (V8 collects on the JS thread and its helpers in the
      // same process); servers that do not report it show '–'.
      lines.push(`Where that CPU goes on ${configs[0]}: user space (muxnet, JavaScript, V8), the garbage collection in it, and kernel, µs per message:`);
      lines.push('');
      lines.push('| server | user space | of it GC | kernel | total |');
      lines.push('|---|---|---|---|---|');
      for (const [name, m] of split) {
        lines.push(`| ${name} | ${f(m!.user_us_per_msg)} | ${f(m!.gc_us_per_msg)} | ${f(m!.cpu_us_per_msg - m!.user_us_per_msg!)} | ${f(m!.cpu_us_per_msg)} |`);
      }
      lines.push('');
    }
  }
  const idleValues = [...new Set(report.results.filter((r) => r.scenario === 'idle').map((r) => r.idle))].sort((a, b) => a - b);
  if (idleValues.length > 1) {
    const maxIdle = idleValues[idleValues.length - 1];
    const max = maxIdle.toLocaleString('en-US');
    lines.push(`Idle connections (50 active; Go-style server, and the C floors and peers) — CPU µs per message, growth from 0 to ${max} idle, ` +
      `ratios to the same backend's floors at ${max} idle, and GC µs per message at ${max} idle:`);
    lines.push('');
    lines.push(`| server | ${idleValues.map((v) => `${v.toLocaleString('en-US')} idle`).join(' | ')} | growth | / C floor | / native floor | GC µs/msg |`);
    lines.push(`|---|${idleValues.map(() => '---').join('|')}|---|---|---|---|`);
    const idle = report.results.filter((r) => r.scenario === 'idle' && measured(r));
    // One row per server: Go-style per backend, Node's net, the C floor per backend, each peer.
    const rows = [...new Map(idle.filter((r) => ['go', 'node', 'c-floor', ...Object.keys(PEER_NAMES)].includes(r.form))
      .map((r) => [`${r.config}|${r.form}`, r] as const)).values()];
    for (const row of rows) {
      const name = row.form === 'node' ? "Node's net" : row.form === 'c-floor' ? `C floor ${row.config}` :
        row.config === 'peer' ? PEER_NAMES[row.form] ?? row.form : row.config;
      const at = idleValues.map((v) => find(report, 'idle', row.config, row.form, 50, v));
      const vals = at.map((r) => r?.median.cpu_us_per_msg);
      const growth = vals[0] && vals[vals.length - 1] ? (vals[vals.length - 1]! / vals[0]! - 1) * 100 : undefined;
      const last = at[at.length - 1];
      lines.push(`| ${name} | ${vals.map((v) => f(v)).join(' | ')} | ${growth === undefined ? '–' : `${growth >= 0 ? '+' : ''}${growth.toFixed(0)}%`} | ` +
        `${times(last?.floor_ratio?.c_floor)} | ${times(last?.floor_ratio?.native)} | ${f(last?.median.gc_us_per_msg)} |`);
    }
    lines.push('');
  }
  lines.push(...udpSection(report), ...httpSection(report), ...streamSection(report), ...proxySection(report), ...fileSection(report),
    ...microSection(report));
  const rss = report.results.filter((r) => r.scenario === 'rss');
  if (rss.length > 0) {
    const name = (r: Result): string => (r.form === 'node' ? "Node's net" : `${r.form} (${r.config})`);
    lines.push(`Server memory per idle connection (${rss[0].idle.toLocaleString('en-US')} idle), RSS growth: ` +
      rss.map((r) => `${name(r)} ${f(r.median.rss_kib / r.idle)} KiB`).join(', ') + '.');
    if (rss.some((r) => r.median.heap_kib !== undefined)) {
      // RSS also holds V8's spare room (a young generation grown to its maximum by the burst
      // of connections), which is per process, not per connection.
      lines.push('');
      lines.push('Of that, live JavaScript heap after a full collection (what each connection really holds in JS): ' +
        rss.map((r) => `${name(r)} ${f((r.median.heap_kib ?? NaN) / r.idle)} KiB`).join(', ') + '.');
    }
    lines.push('');
  }
  return lines.join('\n');
}

/** The peers of other runtimes at 50 connections, against epoll's floors; or why they did not run. */
function peerSection(report: Report): string[] {
  const peers = report.results.filter((r) => r.scenario === 'pingpong' && r.config === 'peer');
  if (peers.length === 0) return [];
  const ref = referenceBackend(report.results);
  const lines: string[] = [];
  lines.push(`Peers: the same echo on other runtimes (optional, run when on the PATH or named in BENCH_PEERS), against ${ref === undefined ? 'the' : `${ref}'s`} floors:`);
  lines.push('');
  lines.push('| server | µs/msg | user space | / C floor | / native floor | msg/s | p99 µs |');
  lines.push('|---|---|---|---|---|---|---|');
  for (const r of peers) {
    const name = PEER_NAMES[r.form] ?? r.form;
    if (!measured(r)) {
      lines.push(`| ${name} | skipped: ${r.skipped ?? 'no run'} | | | | | |`);
      continue;
    }
    const m = r.median;
    lines.push(`| ${name} | ${f(m.cpu_us_per_msg)} | ${f(m.user_us_per_msg)} | ${times(r.floor_ratio?.c_floor)} | ` +
      `${times(r.floor_ratio?.native)} | ${f(m.rate, 0)} | ${f(m.p99_us, 0)} |`);
  }
  lines.push('');
  return lines;
}

function udpSection(report: Report): string[] {
  const udp = report.results.filter((r) => r.scenario === 'udp');
  if (udp.length === 0) return [];
  const node = udp.find((r) => r.form === 'node')?.median;
  const names: Record<string, string> = {
    single: 'muxnet readFrom/writeTo (one datagram a call)',
    batch: 'muxnet readBatch/writeBatch (recvmmsg/sendmmsg)',
    node: "Node's dgram",
  };
  const lines: string[] = [];
  lines.push(`UDP echo, 64-byte datagrams, ${udp[0].connections} flows — server CPU µs per datagram echoed (lower is better):`);
  lines.push('');
  lines.push("| server | µs/datagram | / Node's dgram | datagrams/s | p99 µs | lost |");
  lines.push('|---|---|---|---|---|---|');
  for (const r of udp) {
    const m = r.median;
    lines.push(`| ${names[r.form] ?? r.form}${r.form === 'node' ? '' : ` (${r.config})`} | ${f(m.cpu_us_per_msg)} | ` +
      `${f(node ? m.cpu_us_per_msg / node.cpu_us_per_msg : undefined)}× | ${f(m.rate, 0)} | ${f(m.p99_us, 0)} | ${f(m.errors, 0)} |`);
  }
  lines.push('');
  return lines;
}

function httpSection(report: Report): string[] {
  const http = report.results.filter((r) => r.scenario === 'http');
  if (http.length === 0) return [];
  const lines: string[] = [];
  const mux = http.find((r) => r.form !== 'node');
  const connections = http[0].connections;
  lines.push(`HTTP/1.1 keep-alive hello world, ${connections} connections — server CPU µs per request (lower is better; target: muxnet at most 0.5× Node's http):`);
  lines.push('');
  lines.push(`| load | muxnet fixture ${mux?.config ?? ''} µs/req | Node's http over muxnet µs/req | Node's http µs/req | fixture / Node | http over muxnet / Node | req/s fixture | req/s over muxnet | req/s Node | p50 / p99 µs fixture | p50 / p99 µs Node |`);
  lines.push('|---|---|---|---|---|---|---|---|---|---|---|');
  for (const tool of [...new Set(http.map((r) => r.tool ?? 'loadgen'))]) {
    const of = (form: string): Result | undefined => http.find((r) => (r.tool ?? 'loadgen') === tool && r.form === form);
    const go = of('go');
    const stream = of('node-stream');
    const node = of('node');
    const name = tool === 'loadgen' ? 'muxnet-loadgen' : tool;
    const skipped = go?.skipped ?? node?.skipped;
    if (skipped !== undefined) {
      lines.push(`| ${name} | skipped: ${skipped} | | | | | | | | | |`);
      continue;
    }
    const a = go?.median;
    const c = stream?.median;
    const b = node?.median;
    const failed = [a, b, c].some((m) => (m?.errors ?? 0) + (m?.non2xx ?? 0) > 0);
    const per = (x: Result['median'] | undefined): string => f(x && b ? x.cpu_us_per_msg / b.cpu_us_per_msg : undefined);
    lines.push(`| ${name}${failed ? ' (had errors: see the JSON)' : ''} | ${f(a?.cpu_us_per_msg)} | ${f(c?.cpu_us_per_msg)} | ` +
      `${f(b?.cpu_us_per_msg)} | ${per(a)}× | ${per(c)}× | ${f(a?.rate, 0)} | ${f(c?.rate, 0)} | ${f(b?.rate, 0)} | ` +
      `${f(a?.p50_us, 0)} / ${f(a?.p99_us, 0)} | ${f(b?.p50_us, 0)} / ${f(b?.p99_us, 0)} |`);
  }
  lines.push('');
  lines.push('autocannon runs in its own process on the load CPU; its latency histogram counts whole milliseconds. ' +
    'wrk has no warm-up mark, so the server is sampled over its whole run.');
  lines.push('');
  return lines;
}

function streamSection(report: Report): string[] {
  // The table is the first configuration's (the default backend's) beside Node's net.
  const all = report.results.filter((r) => r.scenario === 'stream');
  if (all.length === 0) return [];
  const first = all.find((r) => r.config !== 'node-net')?.config;
  const stream = all.filter((r) => r.config === first || r.config === 'node-net');
  const lines: string[] = [];
  const form = (direction: string, connections: number, name: string): Result | undefined =>
    stream.find((r) => r.direction === direction && r.connections === connections && r.form === name);
  const cell = (r: Result | undefined): string => (r === undefined ? '–' : `${f(r.median.mib_per_s, 0)} (${f(r.median.cpu_us_per_mib, 0)})`);
  lines.push(`Stream, ${(stream[0].size / 1024).toFixed(0)} KiB chunks — MiB/s, and in brackets server CPU µs per MiB (one way: the server ` +
    'discards; the floor is a C++ discard handler):');
  lines.push('');
  lines.push(`| direction | conns | native floor (${stream.find((r) => r.form === 'native')?.config ?? '–'}) | Go-style TS | pooled TS | onData TS | Node's net | Go-style / floor | onData / floor |`);
  lines.push('|---|---|---|---|---|---|---|---|---|');
  const keys = [...new Set(stream.map((r) => `${r.direction}|${r.connections}`))];
  for (const key of keys) {
    const [direction, c] = key.split('|');
    const connections = Number(c);
    const floor = form(direction, connections, 'native');
    const callback = form(direction, connections, 'callback');
    const ratio = (r: Result | undefined): string =>
      (floor && r ? `${f((r.median.mib_per_s ?? NaN) / (floor.median.mib_per_s ?? NaN))}×` : '–');
    lines.push(`| ${direction} | ${connections} | ${cell(floor)} | ${cell(form(direction, connections, 'go'))} | ` +
      `${cell(form(direction, connections, 'pooled'))} | ${cell(callback)} | ${cell(form(direction, connections, 'node'))} | ` +
      `${ratio(form(direction, connections, 'go'))} | ${ratio(callback)} |`);
  }
  lines.push('');
  return lines;
}

const PROXY_NAMES: Record<string, string> = {
  pipe: 'muxnet pipe() both ways',
  go: 'muxnet read/write loops',
  node: "Node's net, socket.pipe both ways",
};

/** The proxy measured: CPU per ping-pong message and per MiB streamed, one row per proxy. */
function proxySection(report: Report): string[] {
  const proxy = report.results.filter((r) => r.scenario === 'proxy');
  if (proxy.length === 0) return [];
  const of = (form: string, load: string, connections: number): Result | undefined =>
    proxy.find((r) => r.form === form && r.case === load && r.connections === connections);
  const pingConns = proxy.find((r) => r.case === 'pingpong')?.connections ?? 0;
  const streamConns = [...new Set(proxy.filter((r) => r.case === 'stream').map((r) => r.connections))];
  const node = of('node', 'pingpong', pingConns)?.median;
  const lines: string[] = [];
  lines.push(`Proxy: load generator → proxy → muxnet's C++ echo (ping-pong) or discard (stream) in Node; the proxy alone on CPU 0, ` +
    `the load generator and the backend on CPU 1 — proxy CPU µs per 64-byte message over ${pingConns} connections and ` +
    'µs per MiB of 16 KiB chunks one way (lower is better; in brackets msg/s and MiB/s):');
  lines.push('');
  lines.push(`| proxy | ping-pong µs/msg | / Node's net | p99 µs | CPU 1 use (load + backend) | ${streamConns.map((c) => `stream c=${c} µs/MiB`).join(' | ')} |`);
  lines.push(`|---|---|---|---|---|${streamConns.map(() => '---').join('|')}|`);
  for (const form of [...new Set(proxy.map((r) => r.form))]) {
    const ping = of(form, 'pingpong', pingConns)?.median;
    const streams = streamConns.map((c) => of(form, 'stream', c)?.median)
      .map((m) => (m === undefined ? '–' : `${f(m.cpu_us_per_mib, 0)} (${f(m.mib_per_s, 0)})`));
    const config = proxy.find((r) => r.form === form)?.config;
    lines.push(`| ${PROXY_NAMES[form] ?? form}${form === 'node' ? '' : ` (${config})`} | ${f(ping?.cpu_us_per_msg)} (${f(ping?.rate, 0)}) | ` +
      `${ratio(ping?.cpu_us_per_msg, node?.cpu_us_per_msg)} | ${f(ping?.p99_us, 0)} | ` +
      `${f(ping === undefined ? undefined : (ping.load_cpu ?? NaN) + (ping.backend_cpu ?? NaN))} | ${streams.join(' | ')} |`);
  }
  lines.push('');
  return lines;
}

const FILE_NAMES: Record<string, string> = {
  sendfile: 'muxnet conn.sendFile',
  read: 'muxnet fs read + conn.write (64 KiB)',
  node: "Node's net, fs.createReadStream().pipe",
};

/** The file servers: CPU per MiB served and answers per second, per file size. */
function fileSection(report: Report): string[] {
  const file = report.results.filter((r) => r.scenario === 'file');
  if (file.length === 0) return [];
  const lines: string[] = [];
  lines.push(`Files from the page cache, ${file[0].connections} connections each asking for one file again and again ` +
    '(a one-line request, the bytes as the answer) — server CPU µs per MiB served (lower is better), answers/s, ' +
    'and the load generator\'s own CPU use (near 1: it set the pace):');
  lines.push('');
  lines.push("| server | file | µs/MiB | / Node's | req/s | MiB/s | p99 µs | server CPUs | load CPUs |");
  lines.push('|---|---|---|---|---|---|---|---|---|');
  for (const r of file) {
    const node = file.find((x) => x.form === 'node' && x.case === r.case)?.median;
    const m = r.median;
    lines.push(`| ${FILE_NAMES[r.form] ?? r.form}${r.form === 'node' ? '' : ` (${r.config})`} | ${r.case} | ${f(m.cpu_us_per_mib, 0)} | ` +
      `${ratio(m.cpu_us_per_mib, node?.cpu_us_per_mib)} | ${f(m.rate, 0)} | ${f(m.mib_per_s, 0)} | ${f(m.p99_us, 0)} | ` +
      `${f(m.server_cpu)} | ${f(m.load_cpu)} |`);
  }
  lines.push('');
  return lines;
}

function microSection(report: Report): string[] {
  const micro = report.results.filter((r) => r.scenario === 'micro');
  if (micro.length === 0) return [];
  const lines: string[] = [];
  const configs = [...new Set(micro.map((r) => r.config))];
  lines.push('Micro benchmarks (Benchmark.js; batch delivery timed by hand, per event) — ns per operation, ± relative margin of error:');
  lines.push('');
  lines.push(`| case | ${configs.join(' | ')} |`);
  lines.push(`|---|${configs.map(() => '---').join('|')}|`);
  for (const name of [...new Set(micro.map((r) => r.case ?? ''))]) {
    const cells = configs.map((c) => {
      const r = micro.find((x) => x.case === name && x.config === c);
      return r === undefined ? '–' : `${f(r.median.ns_per_op, 0)} ±${f(r.median.rme_pct, 0)}%`;
    });
    lines.push(`| ${name} | ${cells.join(' | ')} |`);
  }
  lines.push('');
  lines.push('read-eagain: native `read` on an idle socket (JS→native→read(2)→EAGAIN); write-64: native `write` of 64 bytes ' +
    'to a peer in another process that drains; conn-write-read: `Conn.write` on one end, `Conn.read` on the other, through the loop; ' +
    'batch-delivery: many connections made readable at once, time from the last write until every pending `Conn.read` resolved, per event; ' +
    'go-echo-js: the JavaScript of one Go-style echo message (dispatch, read promise, await, write, await, next read) ' +
    'on a loop whose native side is stubbed out: no syscall, no Node-API call.');
  lines.push('');
  return lines;
}

/** One sample of `npm run soak`, taken every second. */
export interface SoakSample {
  t: number;
  completed: number;
  errors: number;
  conn_per_s: number;
  rss_kib: number;
  fds: number;
  server_cpu: number;
}

/** What `npm run soak` writes to bench/results/soak-latest.json. */
export interface SoakReport {
  machine: Record<string, string | number | boolean>;
  date: string;
  form: string;
  backend: string;
  connections: number;
  seconds: number;
  completed: number;
  errors: number;
  samples: SoakSample[];
}

/** Three stacked panels over time: server RSS, open descriptors, connections per second. */
export function soakSvg(report: SoakReport): string {
  const panels: { title: string; color: string; value: (s: SoakSample) => number }[] = [
    { title: 'server RSS, MiB', color: COLORS[0], value: (s) => s.rss_kib / 1024 },
    { title: 'server open descriptors', color: COLORS[1], value: (s) => s.fds },
    { title: 'connections per second (connect, 64-byte echo, close)', color: COLORS[2], value: (s) => s.conn_per_s },
  ];
  const W = 760, left = 70, right = 30, top = 60, panelH = 150, gap = 40;
  const H = top + panels.length * (panelH + gap) + 20;
  const tMax = Math.max(1, ...report.samples.map((s) => s.t));
  const px = (t: number): number => left + (t / tMax) * (W - left - right);
  const out: string[] = [];
  out.push(`<svg xmlns="http://www.w3.org/2000/svg" width="${W}" height="${H}" font-family="sans-serif" font-size="12">`);
  out.push(`<rect width="${W}" height="${H}" fill="white"/>`);
  out.push(`<text x="${left}" y="22" font-size="15" font-weight="bold">${escapeXml(
    `Soak: ${report.form} echo on ${report.backend}, ${report.connections} churning connections, ${report.completed.toLocaleString('en-US')} in ${report.seconds} s`)}</text>`);
  panels.forEach((panel, i) => {
    const y0 = top + i * (panelH + gap);
    const values = report.samples.map(panel.value);
    const vMax = Math.max(1, ...values) * 1.1;
    const py = (v: number): number => y0 + (1 - v / vMax) * panelH;
    out.push(`<text x="${left}" y="${y0 - 6}" font-weight="bold" fill="${panel.color}">${escapeXml(panel.title)}</text>`);
    for (const f of [0, 0.5, 1]) {
      const v = vMax * f;
      out.push(`<line x1="${left}" x2="${W - right}" y1="${py(v)}" y2="${py(v)}" stroke="#e5e5e5"/>`);
      out.push(`<text x="${left - 6}" y="${py(v) + 4}" text-anchor="end">${v >= 100 ? v.toFixed(0) : v.toFixed(1)}</text>`);
    }
    out.push(`<polyline fill="none" stroke="${panel.color}" stroke-width="2" points="${
      report.samples.map((s, k) => `${px(s.t).toFixed(1)},${py(values[k]).toFixed(1)}`).join(' ')}"/>`);
  });
  const axisY = top + panels.length * (panelH + gap) - gap + 18;
  for (let k = 0; k <= 4; k++) {
    const t = (tMax * k) / 4;
    out.push(`<text x="${px(t)}" y="${axisY}" text-anchor="middle">${t.toFixed(0)} s</text>`);
  }
  const m = report.machine;
  out.push(`<text x="${left}" y="${H - 4}" font-size="10" fill="#666">${escapeXml(`${m.cpu}, ${m.cores} cores, ${m.kernel}, Node ${m.node}, muxnet ${m.commit}, ${report.date.slice(0, 10)}`)}</text>`);
  out.push('</svg>');
  return `${out.join('\n')}\n`;
}

/** The README's lines on a soak run: what ran, and where RSS and descriptors went. */
export function soakMarkdown(report: SoakReport): string {
  const s = report.samples;
  // The first seconds are warm-up (JIT, pools filling); growth is judged after them.
  const first = s[Math.min(4, s.length - 1)];
  const last = s[s.length - 1];
  if (first === undefined || last === undefined) return '';
  return `Soak (\`npm run soak -- --seconds ${report.seconds} --form ${report.form}\`): ` +
    `${report.completed.toLocaleString('en-US')} connections through the ${report.form} echo on ${report.backend} in ` +
    `${report.seconds} s (${report.errors} failed), each connect, one 64-byte echo, close. From ${first.t.toFixed(0)} s to the end, ` +
    `server RSS went ${(first.rss_kib / 1024).toFixed(1)} → ${(last.rss_kib / 1024).toFixed(1)} MiB and open descriptors ` +
    `${first.fds} → ${last.fds}.`;
}

/** Writes soak.svg next to the results. */
export function renderSoak(report: SoakReport): void {
  writeFileSync(path.join(resultsDir, 'soak.svg'), soakSvg(report));
}

/** Writes chart.svg and summary.md next to the results; returns the files written. */
export function renderReport(report: Report): string[] {
  const written: string[] = [];
  const svg = chartSvg(report);
  if (svg !== '') {
    writeFileSync(path.join(resultsDir, 'chart.svg'), svg);
    written.push('bench/results/chart.svg');
  }
  writeFileSync(path.join(resultsDir, 'summary.md'), `${summaryMarkdown(report)}\n`);
  written.push('bench/results/summary.md');
  return written;
}

/** `npm run bench:report`: re-render from latest.json and put the summary into the README. */
function main(): void {
  const report = JSON.parse(readFileSync(path.join(resultsDir, 'latest.json'), 'utf8')) as Report;
  floorRatios(report.results);  // results written before floor_ratio existed
  renderReport(report);
  const readmePath = path.join(root, 'README.md');
  const readme = readFileSync(readmePath, 'utf8');
  const start = '<!-- bench:start -->';
  const end = '<!-- bench:end -->';
  const i = readme.indexOf(start);
  const j = readme.indexOf(end);
  if (i < 0 || j < i) throw new Error(`README.md has no ${start} … ${end} section`);
  let soak = '';
  const soakPath = path.join(resultsDir, 'soak-latest.json');
  if (existsSync(soakPath)) {
    const soakReport = JSON.parse(readFileSync(soakPath, 'utf8')) as SoakReport;
    renderSoak(soakReport);
    soak = `\n${soakMarkdown(soakReport)}\n\n![RSS, descriptors and connections per second over a soak run](bench/results/soak.svg)\n`;
  }
  const block = `${start}\n![CPU per message against idle connections](bench/results/chart.svg)\n\n${summaryMarkdown(report)}\n${soak}${end}`;
  writeFileSync(readmePath, readme.slice(0, i) + block + readme.slice(j + end.length));
  console.log('README.md benchmark section updated from bench/results/latest.json');
}

if (require.main === module) main();
