// Unix-domain stream sockets: listen/dial by path or "@name", the socket file's life, and clear errors.
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { OpError, dial, listen } from 'muxnet';
import type { Listener } from 'muxnet';
import { loopConfigs } from './helpers/configs';
import { assertArgError, assertDeadlineExceeded, rejectionOf, thrownBy } from './helpers/assert-errors';
import { socketFds } from './helpers/fds';
import { readExactly, readToEnd } from './helpers/io';
import { pattern } from './helpers/pattern';
import { Resources, assertBytesEqual, describeError, withTimeout } from './helpers/util';
import { skipSuiteOnWindows } from './helpers/platform';

function assertOpError(err: unknown, op: string, code: string): void {
  assert.ok(err instanceof OpError, `expected OpError, got ${describeError(err)}`);
  assert.equal(err.op, op);
  assert.equal(err.net, 'unix');
  assert.equal(err.code, code);
}

/** Leaves a socket file behind: a child listens on `file` and is killed before it can remove it. */
function leaveStaleSocket(file: string): void {
  const script = `require('net').createServer().listen(${JSON.stringify(file)}, () => process.kill(process.pid, 'SIGKILL'))`;
  spawnSync(process.execPath, ['-e', script], { timeout: 10_000 });
  assert.ok(fs.lstatSync(file).isSocket(), 'the killed child left its socket file');
}

async function echoOnce(ln: Listener, address: string, options: object, bytes: Uint8Array): Promise<Uint8Array> {
  const [server, client] = await withTimeout(Promise.all([ln.accept(), dial('unix', address, options)]), 10_000, 'connect');
  try {
    await client.write(bytes);
    client.closeWrite();
    const got = await readToEnd(server);
    await server.write(got);
    server.close();
    return await readToEnd(client);
  } finally {
    client.close();
    server.close();
  }
}

for (const cfg of loopConfigs()) {
  describe(`unix sockets [${cfg.name}]`, () => {
    skipSuiteOnWindows('Unix sockets: POSIX only in muxnet');
    const res = new Resources();
    let dir: string;
    beforeEach(() => {
      dir = fs.mkdtempSync(path.join(os.tmpdir(), 'muxnet-unix-'));
    });
    afterEach(async () => {
      await res.closeAll();
      fs.rmSync(dir, { recursive: true, force: true });
    });

    it('echoes 1 MiB over a socket path, with unix addresses on both ends', async () => {
      const file = path.join(dir, 's.sock');
      const ln = res.add(listen('unix', file, cfg.options));
      assert.equal(ln.addr().network, 'unix');
      assert.equal(ln.addr().path, file);
      assert.equal(String(ln.addr()), file);
      const [server, client] = await Promise.all([ln.accept(), dial('unix', file, cfg.options)]);
      res.add(server);
      res.add(client);
      assert.equal(client.network, 'unix');
      assert.equal(client.remoteAddr().path, file);
      assert.equal(server.localAddr().path, file);
      assert.equal(client.localAddr().path, '', 'a dialing socket is unnamed');
      const data = pattern(1024 * 1024);
      const [, got] = await Promise.all([client.write(data), readExactly(server, data.length)]);
      assertBytesEqual(got, data);
    });

    it('listens and dials on a Linux abstract name, which leaves no file', async () => {
      const name = `@muxnet-test-${process.pid}-${cfg.name}`;
      const ln = res.add(listen('unix', name, cfg.options));
      assert.equal(ln.addr().path, name);
      const got = await echoOnce(ln, name, cfg.options, pattern(4096));
      assertBytesEqual(got, pattern(4096));
      assert.equal(fs.existsSync(name), false);
    });

    it('removes the socket file on close, but not a file another listener has taken over', async () => {
      const file = path.join(dir, 'a.sock');
      const first = listen('unix', file, cfg.options);
      first.close();
      assert.equal(fs.existsSync(file), false, 'the socket file outlived its listener');

      const old = listen('unix', file, cfg.options);
      fs.unlinkSync(file);  // someone removes it and a new listener binds the same path
      const replacement = res.add(listen('unix', file, cfg.options));
      old.close();
      assert.ok(fs.lstatSync(file).isSocket(), "closing the old listener removed the new one's file");
      assertBytesEqual(await echoOnce(replacement, file, cfg.options, pattern(100)), pattern(100));
    });

    it('replaces a stale socket file left by a dead process', async () => {
      const file = path.join(dir, 'stale.sock');
      leaveStaleSocket(file);
      assertOpError(await rejectionOf(dial('unix', file, cfg.options)), 'dial', 'ECONNREFUSED');
      const ln = res.add(listen('unix', file, cfg.options));
      assertBytesEqual(await echoOnce(ln, file, cfg.options, pattern(64)), pattern(64));
    });

    it('refuses a path with a live listener (EADDRINUSE), which keeps working', async () => {
      const file = path.join(dir, 'live.sock');
      const ln = res.add(listen('unix', file, cfg.options));
      assertOpError(thrownBy(() => listen('unix', file, cfg.options)), 'listen', 'EADDRINUSE');
      assertBytesEqual(await echoOnce(ln, file, cfg.options, pattern(64)), pattern(64));
    });

    it('refuses a path that is not a socket and leaves the file alone', () => {
      const file = path.join(dir, 'data.txt');
      fs.writeFileSync(file, 'keep me');
      assertOpError(thrownBy(() => listen('unix', file, cfg.options)), 'listen', 'EADDRINUSE');
      assert.equal(fs.readFileSync(file, 'utf8'), 'keep me');
    });

    it('dials a missing path with ENOENT', async () => {
      assertOpError(await rejectionOf(dial('unix', path.join(dir, 'none.sock'), cfg.options)), 'dial', 'ENOENT');
    });

    it('supports closeWrite and read deadlines like TCP', async () => {
      const file = path.join(dir, 'rw.sock');
      const ln = res.add(listen('unix', file, cfg.options));
      const [server, client] = await Promise.all([ln.accept(), dial('unix', file, cfg.options)]);
      res.add(server);
      res.add(client);
      client.setReadDeadline(Date.now() + 50);
      assertDeadlineExceeded(await rejectionOf(client.read(new Uint8Array(8))), 'read');
      await server.write('bye');
      server.closeWrite();
      client.setReadDeadline(0);
      assert.equal(new TextDecoder().decode(await readToEnd(client)), 'bye');
    });

    it('reports TCP-only options as unsupported', async () => {
      const file = path.join(dir, 'opt.sock');
      const ln = res.add(listen('unix', file, cfg.options));
      const [server, client] = await Promise.all([ln.accept(), dial('unix', file, cfg.options)]);
      res.add(server);
      res.add(client);
      const err = thrownBy(() => client.setNoDelay(true));
      // One errno on Linux, which Node names ENOTSUP.
      assert.ok(err instanceof OpError && ['ENOTSUP', 'EOPNOTSUPP'].includes(err.code), `got ${describeError(err)}`);
      assert.match(err.message, /^set unix /);
      client.setWriteBuffer(64 * 1024);  // socket-level options do apply
    });
  });
}

describe('unix socket arguments', () => {
  skipSuiteOnWindows('Unix sockets: POSIX only in muxnet');
  it('rejects a path longer than the kernel allows, naming address and the limit, leaking nothing', async () => {
    const before = socketFds();
    const long = path.join(os.tmpdir(), 'x'.repeat(120));
    const err = thrownBy(() => listen('unix', long));
    assertArgError(err, /address: a Unix socket path of \d+ bytes is longer than the 107/);
    assertArgError(await rejectionOf(dial('unix', long)), /address/);
    assert.equal(fs.existsSync(long.slice(0, 107)), false, 'a truncated name was bound');
    const after = socketFds();
    if (before !== null && after !== null) assert.deepEqual([...after].filter((fd) => !before.has(fd)), []);
  });

  it('accepts a path of exactly 107 bytes', async () => {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'muxnet-unix-'));
    try {
      const file = path.join(dir, 'p'.repeat(107 - dir.length - 1));
      assert.equal(Buffer.byteLength(file), 107);
      const ln = listen('unix', file);
      assert.ok(fs.lstatSync(file).isSocket());
      const c = await dial('unix', file);
      c.close();
      ln.close();
    } finally {
      fs.rmSync(dir, { recursive: true, force: true });
    }
  });

  it('rejects empty paths, NUL bytes and reusePort, naming them', () => {
    assertArgError(thrownBy(() => listen('unix', '')), /address/);
    assertArgError(thrownBy(() => listen('unix', 'a\0b')), /address/);
    assertArgError(thrownBy(() => listen('unix', '@')), /address/);
    assertArgError(thrownBy(() => listen('unix', path.join(os.tmpdir(), 'r.sock'), { reusePort: true })), /options\.reusePort/);
  });
});
