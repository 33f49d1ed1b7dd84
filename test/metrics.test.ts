// Metrics: stats() as Prometheus text and as prom-client collectors, matching the counters they come from.
import assert from 'node:assert/strict';
import * as net from 'node:net';
import { Registry } from 'prom-client';
import { backends, dial, listen, metricCollectors, metricsText, stats } from 'muxnet';
import type { LoopStats } from 'muxnet';
import { assertArgError, thrownBy } from './helpers/assert-errors';
import { readExactly } from './helpers/io';
import { Resources, withTimeout } from './helpers/util';

/** Samples of a text exposition: `name{labels}` → value; checks every line's shape on the way. */
function parse(text: string): Map<string, number> {
  const samples = new Map<string, number>();
  const declared = new Set<string>();
  assert.ok(text.endsWith('\n'), 'the exposition ends with a newline');
  for (const line of text.slice(0, -1).split('\n')) {
    const meta = /^# (HELP|TYPE) ([a-z_]+) (.+)$/.exec(line);
    if (meta !== null) {
      if (meta[1] === 'TYPE') {
        assert.match(meta[3], /^(gauge|counter)$/);
        declared.add(meta[2]);
      }
      continue;
    }
    const m = /^([a-z_]+)\{((?:[a-z_]+="(?:[^"\\]|\\.)*",?)*)\} (\d+(?:\.\d+)?)$/.exec(line);
    assert.ok(m !== null, `not a sample line: ${JSON.stringify(line)}`);
    assert.ok(declared.has(m[1]), `${m[1]} has a TYPE line before its samples`);
    samples.set(`${m[1]}{${m[2]}}`, Number(m[3]));
  }
  return samples;
}

function key(name: string, s: LoopStats, extra = ''): string {
  return `${name}{backend="${s.backend}",trigger="${s.trigger}",mode="${s.mode}"${extra}}`;
}

describe('metrics', () => {
  const res = new Resources();
  afterEach(() => res.closeAll());

  it('metricsText(): every loop counter as a Prometheus sample with its loop labels', async () => {
    // A backend with one configuration, so one loop (poll; select where there is no poll: Windows).
    const opts = { backend: backends().includes('poll') ? 'poll' : 'select' };
    const ln = res.add(listen('tcp', '127.0.0.1:0', { ...opts, limits: { maxConnections: 1 } }));
    const c = res.add(await dial('tcp', ln.addr().toString(), opts));
    const s = res.add(await withTimeout(ln.accept(), 5000, 'accept'));
    await c.write('ping');
    assert.equal(new TextDecoder().decode(await readExactly(s, 4)), 'ping');
    // A second client is over the limit: refused and counted.
    const over = net.connect(ln.addr().port, '127.0.0.1');
    over.on('error', () => {});
    await withTimeout(new Promise((resolve) => over.once('close', resolve)), 5000, 'the refused client closed');

    const samples = parse(metricsText());
    const loop = stats().find((l) => l.backend === opts.backend)!;
    assert.ok(loop.accepted >= 1 && loop.bytesRead >= 4 && loop.refused.maxConnections >= 1);
    assert.equal(samples.get(key('muxnet_connections_open', loop)), loop.connections);
    assert.equal(samples.get(key('muxnet_listeners_open', loop)), loop.listeners);
    assert.equal(samples.get(key('muxnet_accepted_total', loop)), loop.accepted);
    assert.equal(samples.get(key('muxnet_dialed_total', loop)), loop.dialed);
    assert.equal(samples.get(key('muxnet_bytes_read_total', loop)), loop.bytesRead);
    assert.equal(samples.get(key('muxnet_bytes_written_total', loop)), loop.bytesWritten);
    assert.equal(samples.get(key('muxnet_refused_total', loop, ',reason="maxConnections"')), loop.refused.maxConnections);
    for (const [code, n] of Object.entries(loop.errors)) {
      assert.equal(samples.get(key('muxnet_errors_total', loop, `,code="${code}"`)), n);
    }
  });

  it('takes a list of stats with labels of their own (a worker group), escaping label values', () => {
    const base = stats()[0] ?? {
      backend: 'epoll', trigger: 'level', mode: 'inline', connections: 0, listeners: 0, accepted: 0, dialed: 0,
      bytesRead: 0, bytesWritten: 0, leaked: 0, errors: {}, refused: {},
    } as LoopStats;
    const text = metricsText([
      { ...base, accepted: 7, labels: { worker: '0' } },
      { ...base, accepted: 5, labels: { worker: 'say "hi"\\' } },
    ]);
    const samples = parse(text);
    assert.equal(samples.get(key('muxnet_accepted_total', base, ',worker="0"')), 7);
    assert.equal(samples.get(key('muxnet_accepted_total', base, ',worker="say \\"hi\\"\\\\"')), 5);
    assert.equal(text.match(/^# TYPE muxnet_accepted_total counter$/gm)?.length, 1, 'one TYPE line per metric');
    assertArgError(thrownBy(() => metricsText('all' as never)), /stats: expected an array/);
    assertArgError(thrownBy(() => metricsText([{}] as never)), /stats\[0\]: expected a LoopStats/);
    assertArgError(thrownBy(() => metricsText([{ ...base, labels: { 'bad-name': 'x' } }])), /stats\[0\]\.labels/);
  });

  it("prom-client's registry serves the collectors beside its own metrics, read afresh at each scrape", async () => {
    const registry = new Registry();
    for (const collector of metricCollectors()) registry.registerMetric(collector as never);
    const opened = (text: string): number => {
      const m = /^muxnet_connections_open\{backend="select",[^}]*\} (\d+)$/m.exec(text);
      return m === null ? 0 : Number(m[1]);
    };
    const ln = res.add(listen('tcp', '127.0.0.1:0', { backend: 'select' }));
    const before = opened(await registry.metrics());
    const c = res.add(await dial('tcp', ln.addr().toString(), { backend: 'select' }));
    res.add(await withTimeout(ln.accept(), 5000, 'accept'));
    const text = await registry.metrics();
    assert.equal(opened(text), before + 2, 'both ends of the new connection are counted at the next scrape');
    assert.match(text, /^# TYPE muxnet_bytes_read_total counter$/m);
    c.close();
    assertArgError(thrownBy(() => metricCollectors(42 as never)), /source: expected a function/);
  });
});
