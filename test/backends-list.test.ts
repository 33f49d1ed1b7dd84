// backends(): the compiled backends listed once each, default first; MUXNET_BACKEND picks the default.
// backendCapabilities(): what each can do, and the loop options it accepts follow from it.
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { backendCapabilities, backends, listen, stats, unavailableBackends } from 'muxnet';
import { assertArgError, thrownBy } from './helpers/assert-errors';
import { Resources } from './helpers/util';

/** What `fn` threw, or undefined when it returned normally. */
function errorOf(fn: () => unknown): unknown {
  try {
    fn();
  } catch (e) {
    return e;
  }
  return undefined;
}

describe('backends', () => {
  const res = new Resources();
  afterEach(() => res.closeAll());

  it('lists at least one backend, each name once', () => {
    const list = backends();
    assert.ok(Array.isArray(list) && list.length > 0);
    for (const b of list) assert.equal(typeof b, 'string');
    assert.equal(new Set(list).size, list.length);
  });

  it('offers select and poll everywhere but Windows, and epoll on Linux', function () {
    if (process.platform === 'win32') this.skip();
    const list = backends();
    assert.ok(list.includes('select'), `no select in ${list}`);
    assert.ok(list.includes('poll'), `no poll in ${list}`);
    if (process.platform === 'linux') assert.ok(list.includes('epoll'), `no epoll in ${list}`);
  });

  it('uses the first listed backend when none is given', () => {
    const ln = res.add(listen('tcp', '127.0.0.1:0'));
    assert.equal(ln.backend, backends()[0]);
  });

  it('makes the backend named by MUXNET_BACKEND the default', function () {
    this.timeout(20_000);
    const entry = require.resolve('muxnet');
    for (const name of backends()) {
      const script =
        `const m = require(${JSON.stringify(entry)});` +
        `const ln = m.listen('tcp', '127.0.0.1:0');` +
        `console.log(JSON.stringify({ first: m.backends()[0], live: ln.backend }));` +
        `ln.close();`;
      const out = execFileSync(process.execPath, ['-e', script], {
        env: { ...process.env, MUXNET_BACKEND: name },
        encoding: 'utf8',
        timeout: 15_000,
      });
      assert.deepEqual(JSON.parse(out.trim()), { first: name, live: name }, `MUXNET_BACKEND=${name}`);
    }
  });

  it('reports each backend\'s capabilities as four booleans, frozen, the same on every call', () => {
    for (const name of backends()) {
      const caps = backendCapabilities(name);
      assert.deepEqual(Object.keys(caps).sort(), ['completion', 'edge', 'inlineOnly', 'pollable'], name);
      for (const v of Object.values(caps)) assert.equal(typeof v, 'boolean', `${name}: ${JSON.stringify(caps)}`);
      assert.ok(Object.isFrozen(caps), name);
      assert.deepEqual(backendCapabilities(name), caps, name);
    }
  });

  it('reports edge-triggered, pollable epoll and plain level-triggered select and poll on Linux', function () {
    if (process.platform !== 'linux') this.skip();
    const readiness = { completion: false, inlineOnly: false };
    assert.deepEqual({ ...backendCapabilities('epoll') }, { edge: true, pollable: true, ...readiness });
    for (const name of ['poll', 'select']) {
      assert.deepEqual({ ...backendCapabilities(name) }, { edge: false, pollable: false, ...readiness }, name);
    }
  });

  it('reports io_uring as a pollable completion backend that runs inline only, where it runs', function () {
    if (!backends().includes('io_uring')) this.skip();
    assert.deepEqual({ ...backendCapabilities('io_uring') },
      { edge: false, pollable: true, completion: true, inlineOnly: true });
    assert.equal(unavailableBackends().io_uring, undefined);
    const err = errorOf(() => res.add(listen('tcp', '127.0.0.1:0', { backend: 'io_uring', mode: 'thread' })));
    assertArgError(err, /mode/);
    assert.match((err as Error).message, /'thread' is not possible with io_uring/);
  });

  it('leaves io_uring out where it cannot run, and says why when it is asked for', function () {
    if (process.platform !== 'linux') this.skip();
    this.timeout(20_000);
    // MUXNET_IO_URING=0 is the probe's answer a kernel without io_uring, the sysctl or a
    // seccomp filter would give; the reason comes through backends() and both ways of asking.
    const entry = require.resolve('muxnet');
    const script =
      `const m = require(${JSON.stringify(entry)});` +
      `const out = { list: m.backends(), why: m.unavailableBackends() };` +
      `try { m.listen('tcp', '127.0.0.1:0', { backend: 'io_uring' }); } catch (e) { out.option = e.message; }` +
      `process.env.MUXNET_BACKEND = 'io_uring';` +
      `try { m.backends(); } catch (e) { out.env = e.message; }` +
      `console.log(JSON.stringify(out));`;
    const out = JSON.parse(execFileSync(process.execPath, ['-e', script], {
      env: { ...process.env, MUXNET_IO_URING: '0', MUXNET_BACKEND: '' },
      encoding: 'utf8',
      timeout: 15_000,
    }).trim()) as { list: string[]; why: Record<string, string>; option?: string; env?: string };
    assert.ok(!out.list.includes('io_uring') && out.list.includes('epoll'), out.list.join());
    assert.deepEqual(out.why, { io_uring: 'disabled by MUXNET_IO_URING=0' });
    assert.match(out.option ?? '', /options\.backend: expected one of .*\(io_uring cannot run here: disabled by MUXNET_IO_URING=0\)/);
    assert.match(out.env ?? '', /MUXNET_BACKEND: .*\(io_uring cannot run here: disabled by MUXNET_IO_URING=0\)/);
  });

  it('leaves io_uring out, naming the variable, when MUXNET_IO_URING_TASKRUN is neither coop nor defer', function () {
    if (process.platform !== 'linux' || !backends().includes('io_uring')) this.skip();
    this.timeout(20_000);
    const entry = require.resolve('muxnet');
    const why = (taskrun: string): Record<string, string> => JSON.parse(execFileSync(process.execPath, ['-e',
      `const m = require(${JSON.stringify(entry)}); console.log(JSON.stringify(m.unavailableBackends()));`], {
      env: { ...process.env, MUXNET_IO_URING_TASKRUN: taskrun, MUXNET_BACKEND: '' },
      encoding: 'utf8',
      timeout: 15_000,
    }).trim()) as Record<string, string>;
    assert.deepEqual(why('COOP'), { io_uring: 'MUXNET_IO_URING_TASKRUN=COOP: expected coop or defer' });
    // The two modes it takes both run here.
    assert.deepEqual(why('coop'), {});
    assert.deepEqual(why('defer'), {});
  });

  it('rejects a name that is not a compiled backend, naming the argument', () => {
    for (const bad of ['no-such', '', 'EPOLL', 42, undefined, null]) {
      assertArgError(thrownBy(() => backendCapabilities(bad as string)), /name/);
    }
  });

  it('accepts trigger edge exactly where the backend reports edge-triggered readiness', () => {
    for (const backend of backends()) {
      const { edge } = backendCapabilities(backend);
      const err = errorOf(() => res.add(listen('tcp', '127.0.0.1:0', { backend, trigger: 'edge' })));
      if (edge) {
        assert.equal(err, undefined, `${backend}: ${String(err)}`);
      } else {
        assertArgError(err, /trigger/);
        assert.match((err as Error).message, new RegExp(`edge-triggered.*not ${backend}`), backend);
      }
    }
  });

  it('runs inline by default exactly where the backend is pollable, and refuses inline elsewhere', () => {
    for (const backend of backends()) {
      const { pollable } = backendCapabilities(backend);
      res.add(listen('tcp', '127.0.0.1:0', { backend }));
      const modes = stats().filter((s) => s.backend === backend && s.trigger === 'level').map((s) => s.mode);
      assert.ok(modes.includes(pollable ? 'inline' : 'thread'), `${backend}: ${modes}`);
      const err = errorOf(() => res.add(listen('tcp', '127.0.0.1:0', { backend, mode: 'inline' })));
      if (pollable) assert.equal(err, undefined, `${backend}: ${String(err)}`);
      else assertArgError(err, /mode/);
    }
  });
});
