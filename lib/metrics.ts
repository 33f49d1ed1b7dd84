// stats() as Prometheus metrics: the text exposition format, and metric objects for prom-client's registry.
import { describeValue } from './errors';
import type { LoopStats } from './info';
import { stats as loopStats } from './inspect';

/** Loop counters to export, with labels of their own added to each series. */
export interface LabeledStats extends LoopStats {
  /** Labels for every series of this loop, e.g. `{ worker: '1' }`. */
  labels?: Record<string, string>;
}

/** One series of a metric. */
export interface MetricValue {
  /** The series' labels: its loop's, its own (`code`, `reason`) and the caller's. */
  labels: Record<string, string>;
  /** The gauge's value or the counter's count. */
  value: number;
}

/** One metric with its series, in the shape prom-client's `Registry` reads from `get()`. */
export interface MetricFamily {
  /** The metric's name, e.g. 'muxnet_accepted_total'. */
  name: string;
  /** What it counts, for the HELP line. */
  help: string;
  /** Prometheus's metric type. */
  type: 'gauge' | 'counter';
  /** One per loop (and per code or reason). */
  values: MetricValue[];
  /** How prom-client's cluster registry combines workers' values: summed. */
  aggregator: 'sum';
}

/** A metric prom-client's `Registry.registerMetric()` takes: read afresh at every scrape. */
export interface Collector {
  /** As in {@link MetricFamily}. */
  name: string;
  /** As in {@link MetricFamily}. */
  help: string;
  /** As in {@link MetricFamily}. */
  type: 'gauge' | 'counter';
  /** The metric's series now. */
  get(): MetricFamily;
}

interface Spec {
  name: string;
  help: string;
  type: 'gauge' | 'counter';
  series: (s: LoopStats) => [Record<string, string>, number][];
}

const one = (value: number): [Record<string, string>, number][] => [[{}, value]];
const byKey = (key: string, counts: Record<string, number>): [Record<string, string>, number][] =>
  Object.entries(counts).map(([k, v]) => [{ [key]: k }, v]);

// The metrics, each read from every loop's LoopStats; every series is labeled with its loop.
const SPECS: readonly Spec[] = [
  { name: 'muxnet_connections_open', help: 'Connections (stream and datagram) open now.', type: 'gauge', series: (s) => one(s.connections) },
  { name: 'muxnet_listeners_open', help: 'Listeners open now.', type: 'gauge', series: (s) => one(s.listeners) },
  { name: 'muxnet_accepted_total', help: 'Connections accepted.', type: 'counter', series: (s) => one(s.accepted) },
  { name: 'muxnet_dialed_total', help: 'Connections dialed.', type: 'counter', series: (s) => one(s.dialed) },
  { name: 'muxnet_bytes_read_total', help: 'Bytes read from sockets.', type: 'counter', series: (s) => one(s.bytesRead) },
  { name: 'muxnet_bytes_written_total', help: 'Bytes written to sockets.', type: 'counter', series: (s) => one(s.bytesWritten) },
  { name: 'muxnet_leaked_total', help: 'Connections garbage-collected without close().', type: 'counter', series: (s) => one(s.leaked) },
  { name: 'muxnet_errors_total', help: 'Operation errors by code.', type: 'counter', series: (s) => byKey('code', s.errors) },
  { name: 'muxnet_refused_total', help: "Connections refused by listeners' limits, by reason.", type: 'counter',
    series: (s) => byKey('reason', s.refused) },
];

const kLabelName = /^[a-zA-Z_][a-zA-Z0-9_]*$/;

function checkStats(list: unknown): LabeledStats[] {
  if (!Array.isArray(list)) throw new TypeError(`stats: expected an array of LoopStats (from stats()), got ${describeValue(list)}`);
  list.forEach((s: unknown, i) => {
    const v = s as LabeledStats;
    if (v === null || typeof v !== 'object' || typeof v.backend !== 'string' || typeof v.errors !== 'object') {
      throw new TypeError(`stats[${i}]: expected a LoopStats (from stats()), got ${describeValue(s)}`);
    }
    for (const [k, value] of Object.entries(v.labels ?? {})) {
      if (!kLabelName.test(k) || k.startsWith('__') || typeof value !== 'string') {
        throw new TypeError(`stats[${i}].labels: expected label names like 'worker' with string values, got ${describeValue(k)}: ${describeValue(value)}`);
      }
    }
  });
  return list as LabeledStats[];
}

/**
 * The metrics of `list` (default: `stats()` of this thread's loops), one family per metric,
 * each series labeled with its loop's `backend`, `trigger` and `mode` plus its own `labels`.
 */
export function metricFamilies(list: LabeledStats[] = loopStats()): MetricFamily[] {
  const stats = checkStats(list);
  return SPECS.map((spec) => family(spec, stats));
}

function family(spec: Spec, stats: LabeledStats[]): MetricFamily {
  return {
    name: spec.name,
    help: spec.help,
    type: spec.type,
    aggregator: 'sum',
    values: stats.flatMap((s) => spec.series(s).map(([own, value]) => ({
      labels: { backend: s.backend, trigger: s.trigger, mode: s.mode, ...s.labels, ...own },
      value,
    }))),
  };
}

function escapeLabel(value: string): string {
  return value.replace(/\\/g, '\\\\').replace(/\n/g, '\\n').replace(/"/g, '\\"');
}

/**
 * `stats()` in Prometheus's text exposition format (version 0.0.4; serve it with the content
 * type `text/plain; version=0.0.4`): `muxnet_connections_open`, `muxnet_accepted_total`,
 * `muxnet_bytes_read_total`, `muxnet_errors_total{code}`, `muxnet_refused_total{reason}`, …
 * `list` defaults to this thread's loops; pass a worker group's stats to export them all.
 */
export function metricsText(list: LabeledStats[] = loopStats()): string {
  let out = '';
  for (const m of metricFamilies(list)) {
    out += `# HELP ${m.name} ${m.help}\n# TYPE ${m.name} ${m.type}\n`;
    for (const { labels, value } of m.values) {
      const l = Object.entries(labels).map(([k, v]) => `${k}="${escapeLabel(v)}"`).join(',');
      out += `${m.name}{${l}} ${value}\n`;
    }
  }
  return out;
}

/**
 * The metrics as collectors for prom-client: `for (const c of metricCollectors()) register.registerMetric(c)`
 * puts them beside the application's own, read from `source` (default: `stats()`) at each scrape.
 */
export function metricCollectors(source: () => LabeledStats[] = loopStats): Collector[] {
  if (typeof source !== 'function') throw new TypeError(`source: expected a function returning LoopStats[], got ${describeValue(source)}`);
  return SPECS.map((spec) => ({
    name: spec.name,
    help: spec.help,
    type: spec.type,
    get: () => family(spec, checkStats(source())),
  }));
}
