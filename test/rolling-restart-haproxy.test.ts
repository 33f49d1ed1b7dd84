// A rolling restart behind a real HAProxy: two muxnet HTTP servers (examples/behind-haproxy.ts,
// send-proxy-v2, HTTP health checks) restarted one at a time under steady traffic, with zero
// failed requests: drain in HAProxy, graceful shutdown on SIGTERM, start again, back in the pool.
import assert from 'node:assert/strict';
import * as http from 'node:http';
import { exited, startExample, type StartedExample } from './helpers/examples';
import { Haproxy, findHaproxy, freePort, type ServerStates } from './helpers/haproxy';
import { sleep, withTimeout } from './helpers/util';

interface Outcome {
  ok: boolean;
  server: string;  // the name in the reply, or the error
}

/** One request through HAProxy on a new connection; never rejects. */
function request(port: number, path: string): Promise<Outcome> {
  return new Promise((resolve) => {
    const req = http.get({ host: '127.0.0.1', port, path, agent: false, timeout: 10_000 }, (res) => {
      let body = '';
      res.setEncoding('utf8');
      res.on('data', (d: string) => { body += d; });
      res.on('end', () => {
        // The server names itself and the client it sees: this test's own address, from the header.
        const m = /^(\S+) served 127\.0\.0\.1:\d+ \/\S*\n$/.exec(body);
        resolve(res.statusCode === 200 && m !== null ? { ok: true, server: m[1] } : { ok: false, server: `${res.statusCode} ${body}` });
      });
      res.on('error', (err) => resolve({ ok: false, server: String(err) }));
    });
    req.on('timeout', () => req.destroy(new Error('timed out')));
    req.on('error', (err) => resolve({ ok: false, server: String(err) }));
  });
}

describe('rolling restart behind HAProxy', function () {
  this.timeout(120_000);
  let haproxy: Haproxy | null = null;
  const servers: (StartedExample | null)[] = [];

  before(function () {
    if (findHaproxy().path === null) {
      console.log(`      skipped: ${findHaproxy().why}`);
      this.skip();
    }
  });

  after(async () => {
    await haproxy?.stop();
    for (const s of servers) {
      if (s !== null && s.child.exitCode === null) s.child.kill('SIGKILL');
    }
  });

  it('restarts both servers one at a time under traffic with zero failed requests', async () => {
    const addrs = [`127.0.0.1:${await freePort()}`, `127.0.0.1:${await freePort()}`];
    for (const [i, addr] of addrs.entries()) servers.push(await startExample('behind-haproxy.js', [addr, `s${i}-old`]));
    haproxy = await Haproxy.start(findHaproxy().path!, {
      backends: [{ name: 'web', servers: addrs, proxy: 'v2', check: { send: 'GET /healthz HTTP/1.0\r\n\r\n', expect: ' 200 OK' } }],
      // A connection refused while a server leaves is tried again on the other (as in production).
      defaults: ['retries 3', 'option redispatch'],
    });
    const h = haproxy;
    const up = (name: string) => (st: ServerStates): boolean => st[name]?.status === 'UP' && st[name].check === 'L7OK';
    await h.waitFor((st) => up('web/s0')(st) && up('web/s1')(st), 20_000, 'both servers UP');

    // Steady traffic: 4 clients in a loop, a new connection per request, every fourth one slow
    // (in flight while a server shuts down). Bounded in count and by the test's end.
    const outcomes: Outcome[] = [];
    let stop = false;
    const clients = [0, 1, 2, 3].map(async (c) => {
      for (let i = 0; i < 20_000 && !stop; i++) {
        outcomes.push(await request(h.port('web'), i % 4 === c % 4 ? '/slow?ms=150' : `/fast/${c}/${i}`));
      }
    });
    const seen = (name: string): boolean => outcomes.some((o) => o.ok && o.server === name);
    const until = async (cond: () => boolean, what: string): Promise<void> => {
      await withTimeout((async () => { while (!cond()) await sleep(20); })(), 20_000, what);
    };
    await until(() => seen('s0-old') && seen('s1-old'), 'both old servers serving');

    for (const i of [0, 1]) {
      const name = `web/s${i}`;
      // Drain: HAProxy sends it no new connection; wait until its open ones are gone.
      await h.command(`set server ${name} state drain`);
      await h.waitFor((st) => st[name]?.sessions === 0, 20_000, `${name} drained`);
      const old = servers[i]!;
      old.child.kill('SIGTERM');
      assert.equal(await withTimeout(exited(old.child), 15_000, `s${i}-old exiting`), 0);
      assert.match(old.out(), /stopped: \d+ connections finished, 0 forced/);
      servers[i] = await startExample('behind-haproxy.js', [addrs[i], `s${i}-new`]);
      await h.command(`set server ${name} state ready`);
      await h.waitFor(up(name), 20_000, `${name} UP again`);
      await until(() => seen(`s${i}-new`), `s${i}-new serving`);
    }
    stop = true;
    await withTimeout(Promise.all(clients), 30_000, 'the clients to finish');

    const failed = outcomes.filter((o) => !o.ok);
    assert.deepEqual(failed.slice(0, 5), [], `${failed.length} of ${outcomes.length} requests failed`);
    assert.ok(outcomes.length >= 20, `${outcomes.length} requests`);
    for (const s of servers) {
      s!.child.kill('SIGTERM');
      assert.equal(await withTimeout(exited(s!.child), 15_000, 'a new server exiting'), 0);
    }
  });
});
