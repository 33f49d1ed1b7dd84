// Fuzz: random bad arguments to every public function. Each call throws (or, for the async
// ones, rejects with) a TypeError/RangeError whose message names the argument; nothing is
// opened by a call that fails, and the connection used keeps working.
// MUXNET_FUZZ_SEED replays a run; MUXNET_FUZZ_ITERATIONS sets the calls per config (x50).
import assert from 'node:assert/strict';
import { backendCapabilities, backends, dial, listen } from 'muxnet';
import type { Conn, DialOptions, ListenOptions, Network } from 'muxnet';
import { loopConfigs, type LoopConfig } from './helpers/configs';
import { socketFds, socketsLeftOpen } from './helpers/fds';
import { Prng, fuzzIterations, fuzzSeed, replayable } from './helpers/fuzz';
import { roundTrip } from './helpers/io';
import { pattern } from './helpers/pattern';
import { connectPair, serveEcho } from './helpers/servers';
import { Resources, assertBytesEqual, describeError, withTimeout } from './helpers/util';

const seed = fuzzSeed();
const calls = fuzzIterations(6) * 50;

/** A bad value for an argument, and the name the error message must mention. */
type Bad = [value: unknown, names: RegExp];

const notAString: unknown[] = [undefined, null, 42, true, {}, [], Symbol('s'), 10n];
const notANumber: unknown[] = [undefined, null, 'soon', '10', true, {}, [], Number.NaN, Infinity, -Infinity];
const notBytes: unknown[] = [undefined, null, 'x'.repeat(3), 42, {}, [1, 2, 3], new ArrayBuffer(8),
  new DataView(new ArrayBuffer(8)), new Uint16Array(4), new Float64Array(1)];

const badNetworks: Bad[] = [...notAString, '', 'udpx', 'TCP', 'tcp ', 'unixpacket', 'tcp5', 'ip4:nope'].map((v) => [v, /network/]);
const badAddresses: Bad[] = [
  ...notAString.map((v): Bad => [v, /address/]),
  ...['', 'nope', '127.0.0.1', '127.0.0.1:', '127.0.0.1:65536', '127.0.0.1:-1', '127.0.0.1:0x10', '127.0.0.1:1e3',
    '[::1', '[::1]80', '::1:80', '127.0.0.1: 80', '127.0.0.1:123456'].map((v): Bad => [v, /address|port/]),
];

/** Options asking a backend for what its capabilities lack ('edge', 'inline'), where one lacks it. */
function beyondCapabilities(): Bad[] {
  const bad: Bad[] = [];
  const noEdge = backends().find((b) => !backendCapabilities(b).edge);
  if (noEdge !== undefined) bad.push([{ backend: noEdge, trigger: 'edge' }, /trigger/]);
  const notPollable = backends().find((b) => !backendCapabilities(b).pollable);
  if (notPollable !== undefined) bad.push([{ backend: notPollable, mode: 'inline' }, /mode/]);
  return bad;
}

/** Bad options shared by listen and dial. */
function badLoopOptions(cfg: LoopConfig): Bad[] {
  return [
    [null, /options/], [42, /options/], ['fast', /options/], [true, /options/],
    [{ ...cfg.options, backend: 'no-such' }, /backend/], [{ ...cfg.options, backend: 7 }, /backend/], [{ ...cfg.options, backend: 7n }, /backend/],
    [{ ...cfg.options, trigger: 'sideways' }, /trigger/], [{ ...cfg.options, trigger: 1n }, /trigger/],
    [{ ...cfg.options, mode: 'warp' }, /mode/], ...beyondCapabilities(),
    ...[0, -1, 1.5, '1024', Number.NaN, Infinity, null].map((v): Bad => [{ ...cfg.options, writeQueueLimit: v }, /writeQueueLimit/]),
  ];
}

function badListenOptions(cfg: LoopConfig): Bad[] {
  return [
    ...badLoopOptions(cfg),
    ...[0, -1, 1.5, '16', Number.NaN, 2 ** 31, null].map((v): Bad => [{ ...cfg.options, backlog: v }, /backlog/]),
    ...['yes', 1, null, {}].map((v): Bad => [{ ...cfg.options, reuseAddr: v }, /reuseAddr/]),
    ...['no', 0, null, []].map((v): Bad => [{ ...cfg.options, reusePort: v }, /reusePort/]),
  ];
}

function badDialOptions(cfg: LoopConfig): Bad[] {
  return [
    ...badLoopOptions(cfg),
    ...[-1, 1.5, 'soon', Number.NaN, Infinity, 2 ** 31, null].map((v): Bad => [{ ...cfg.options, timeout: v }, /timeout/]),
    ...[{}, null, 'abort', 1, { aborted: 'no' }].map((v): Bad => [{ ...cfg.options, signal: v }, /signal/]),
  ];
}

const badDeadlines: Bad[] = [...notANumber, -1, new Date('not a date'), '2030-01-01'].map((v) => [v, /deadline/]);
const badBufferSizes: Bad[] = [...notANumber, 0, -1, 1.5, 2 ** 31].map((v) => [v, /bytes/]);
const badLinger: Bad[] = [...notANumber, 1.5].map((v) => [v, /sec/]);
const badBooleans: Bad[] = [null, 'yes', 'false', 1, 0, {}].map((v) => [v, /\bon\b/]);
const badKeepAlive: Bad[] = [
  [null, /options/], ['x', /options/], [5, /options/],
  ...[0, -1, 'soon', Number.NaN, Infinity].map((v): Bad => [{ idle: v }, /idle/]),
  ...[0, -1, 'soon', Number.NaN].map((v): Bad => [{ interval: v }, /interval/]),
  ...[0, -1, 1.5, '3', Number.NaN].map((v): Bad => [{ count: v }, /count/]),
];

/** What a bad call must produce: a TypeError or RangeError naming the argument. */
function checkArgError(err: unknown, names: RegExp, call: string): void {
  assert.ok(err instanceof TypeError || err instanceof RangeError, `${call}: expected TypeError or RangeError, got ${describeError(err)}`);
  assert.match(err.message, names, `${call}: the message does not name the argument`);
  assert.doesNotMatch(err.message, /Cannot read prop|is not a function|undefined is not/, `${call}: an accident, not a check`);
}

/** A call that must throw synchronously. */
function expectThrow(call: string, names: RegExp, fn: () => unknown): void {
  let result: unknown;
  try {
    result = fn();
  } catch (e) {
    checkArgError(e, names, call);
    return;
  }
  (result as { close?: () => void } | undefined)?.close?.();
  assert.fail(`${call}: returned instead of throwing`);
}

/** A call that must return a promise that rejects (and must not throw). */
async function expectReject(call: string, names: RegExp, fn: () => Promise<unknown>): Promise<void> {
  let p: Promise<unknown>;
  try {
    p = fn();
  } catch (e) {
    assert.fail(`${call}: threw synchronously instead of rejecting: ${describeError(e)}`);
  }
  let value: unknown;
  try {
    value = await withTimeout(p, 5000, call);
  } catch (e) {
    checkArgError(e, names, call);
    return;
  }
  (value as { close?: () => void } | undefined)?.close?.();
  assert.fail(`${call}: resolved instead of rejecting`);
}

function show(v: unknown): string {
  if (typeof v === 'symbol' || typeof v === 'bigint') return v.toString();
  if (v instanceof Date) return `Date(${v.getTime()})`;
  if (ArrayBuffer.isView(v) || v instanceof ArrayBuffer) return v.constructor.name;
  try {
    return JSON.stringify(v) ?? String(v);
  } catch {
    return String(v);
  }
}

/** One random bad call on one of the public functions. */
async function badCall(rng: Prng, cfg: LoopConfig, conn: Conn): Promise<void> {
  const good = '127.0.0.1:0';
  switch (rng.int(0, 11)) {
    case 0: {
      const [v, names] = rng.pick([...badNetworks]);
      return expectThrow(`listen(${show(v)})`, names, () => listen(v as Network, good, cfg.options));
    }
    case 1: {
      const [v, names] = rng.pick(badAddresses);
      return expectThrow(`listen('tcp', ${show(v)})`, names, () => listen('tcp', v as string, cfg.options));
    }
    case 2: {
      const [v, names] = rng.pick(badListenOptions(cfg));
      return expectThrow(`listen('tcp', '${good}', ${show(v)})`, names, () => listen('tcp', good, v as ListenOptions));
    }
    case 3: {
      const [v, names] = rng.pick([...badNetworks, ...badAddresses.map((b): Bad => [b[0], b[1]])]);
      const asNetwork = typeof v !== 'string' || !v.includes('.');
      return asNetwork
        ? expectReject(`dial(${show(v)})`, names.source === 'network' ? names : /network|address/, () => dial(v as Network, '127.0.0.1:1', cfg.options))
        : expectReject(`dial('tcp', ${show(v)})`, names, () => dial('tcp', v as string, cfg.options));
    }
    case 4: {
      const [v, names] = rng.pick([...badDialOptions(cfg), [{ ...cfg.options }, /port/] as Bad]);
      // The last one: a valid options object but port 0, which dial cannot connect to.
      const address = names.source === 'port' ? '127.0.0.1:0' : '127.0.0.1:1';
      return expectReject(`dial('tcp', '${address}', ${show(v)})`, names, () => dial('tcp', address, v as DialOptions));
    }
    case 5: {
      const [v, names] = rng.pick(notBytes.map((b): Bad => [b, /buf/]));
      return expectReject(`read(${show(v)})`, names, () => conn.read(v as Uint8Array));
    }
    case 6: {
      const [v, names] = rng.pick(notBytes.filter((b) => typeof b !== 'string').map((b): Bad => [b, /data/]));
      return expectReject(`write(${show(v)})`, names, () => conn.write(v as Uint8Array));
    }
    case 7: {
      const [v, names] = rng.pick(badDeadlines);
      const method = rng.pick(['setDeadline', 'setReadDeadline', 'setWriteDeadline'] as const);
      return expectThrow(`${method}(${show(v)})`, names, () => conn[method](v as number));
    }
    case 8: {
      const [v, names] = rng.pick(badBufferSizes);
      const method = rng.pick(['setReadBuffer', 'setWriteBuffer'] as const);
      return expectThrow(`${method}(${show(v)})`, names, () => conn[method](v as number));
    }
    case 9: {
      const [v, names] = rng.pick(badLinger);
      return expectThrow(`setLinger(${show(v)})`, names, () => conn.setLinger(v as number));
    }
    case 10: {
      const [v, names] = rng.pick(badBooleans);
      return rng.chance(0.5)
        ? expectThrow(`setNoDelay(${show(v)})`, names, () => conn.setNoDelay(v as boolean))
        : expectThrow(`setKeepAlive(${show(v)})`, names, () => conn.setKeepAlive(v as boolean));
    }
    default: {
      const [v, names] = rng.pick(badKeepAlive);
      return expectThrow(`setKeepAlive(true, ${show(v)})`, names, () => conn.setKeepAlive(true, v as object));
    }
  }
}

for (const cfg of loopConfigs()) {
  describe(`fault: bad-argument fuzz [${cfg.name}]`, () => {
    const res = new Resources();
    afterEach(() => res.closeAll());

    it(`${calls} random bad calls each fail with a TypeError/RangeError naming the argument (seed ${seed})`, async function () {
      this.timeout(30_000);
      await replayable(seed, cfg.name, async () => {
        const rng = new Prng(seed);
        const before = socketFds();
        const pair = res.add(await connectPair(cfg.options));
        const during = socketFds();
        for (let i = 0; i < calls; i++) await badCall(rng, cfg, rng.chance(0.5) ? pair.client : pair.server);
        // No call opened anything, and the connection still works both ways.
        if (during !== null) assert.deepEqual([...socketFds()!].filter((fd) => !during.has(fd)), [], 'a failed call left a socket open');
        const errors: unknown[] = [];
        const serving = serveEcho(pair.server, errors);
        assertBytesEqual(await withTimeout(roundTrip(pair.client, pattern(4096, 5)), 5000, 'echo after the bad calls'), pattern(4096, 5));
        pair.client.closeWrite();
        await withTimeout(serving, 5000, 'echo loop to end');
        assert.deepEqual(errors, []);
        pair.close();
        if (before !== null) assert.deepEqual(await socketsLeftOpen(before), [], 'sockets left open');
      });
    });
  });
}
