// Run by scripts/test-windows-addon.sh in Windows Node (node.exe) under wine, with the addon
// built by mingw-w64 and found by node-gyp-build as a prebuilt binary (MUXNET_PREBUILD): listen,
// dial, echo a message and a refused dial on each Windows backend (afd, select), the refusal whose error reads as Node's own (code
// and errno) on Windows. Exits 0 or 1.
// Plain CommonJS over dist/ (the package's entry point): mocha and its TypeScript build are not
// involved.
'use strict';
const assert = require('node:assert');
const net = require('node:net');
const path = require('node:path');
const { listen, dial, backends } = require('../../dist/index.js');

// Node's own error for a refused connection to `port`, for comparison.
function nodeRefusal(port) {
  return new Promise((resolve) => {
    net.connect(port, '127.0.0.1').on('error', resolve);
  });
}

async function echo(backend) {
  const ln = listen('tcp', '127.0.0.1:0', { backend });
  const served = (async () => {
    for await (const conn of ln) {
      const buf = Buffer.alloc(64);
      for (let n; (n = await conn.read(buf)) !== null;) await conn.write(buf.subarray(0, n));
      conn.close();
    }
  })();
  const c = await dial('tcp', ln.addr().toString(), { backend, timeout: 20000 });
  const message = 'hello from muxnet on Windows';
  await c.write(Buffer.from(message));
  const buf = Buffer.alloc(64);
  let got = '';
  while (got.length < message.length) {
    const n = await c.read(buf);
    if (n === null) break;
    got += buf.toString('utf8', 0, n);
  }
  c.close();
  ln.close();
  await served;
  assert.strictEqual(got, message);
  console.log(`ok echo over ${backend} (${ln.addr()})`);
}

async function refused(backend) {
  const ln = listen('tcp', '127.0.0.1:0', { backend });
  const port = ln.addr().port;
  ln.close();
  const err = await dial('tcp', `127.0.0.1:${port}`, { backend, timeout: 20000 }).then(
    () => assert.fail('dial to a closed port connected'),
    (e) => e,
  );
  const theirs = await nodeRefusal(port);
  assert.strictEqual(err.code, 'ECONNREFUSED');
  assert.strictEqual(err.errno, theirs.errno, `errno ${err.errno}, Node's net says ${theirs.errno}`);
  console.log(`ok refused dial over ${backend}: ${err.code} ${err.errno}, as Node's net reports it`);
}

(async () => {
  // The binary node-gyp-build picked for win32-x64: the package's prebuilt one.
  const addon = require('node-gyp-build').path(path.resolve(__dirname, '..', '..'));
  assert.match(addon, /[\\/]prebuilds[\\/]win32-x64[\\/]muxnet\.napi\.uv1\.node$/);
  console.log(`ok node-gyp-build loads ${addon}`);
  assert.deepStrictEqual(backends(), ['afd', 'select']);
  console.log(`ok backends: ${backends().join(', ')} (${process.platform}, Node ${process.version})`);
  for (const backend of backends()) {
    await echo(backend);
    await refused(backend);
  }
})().catch((e) => {
  console.error('FAIL', e);
  process.exitCode = 1;
});
