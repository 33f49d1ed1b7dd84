// backends(): the compiled backends listed once each, default first; MUXNET_BACKEND picks the default.
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { backends, listen } from 'muxnet';
import { Resources } from './helpers/util';

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
});
