// examples/rpc run as a user would: the server as a process, its client class driving it with
// 100 pipelined calls answered out of order; malformed and oversize frames from raw sockets.
import assert from 'node:assert/strict';
import { execFile, type ChildProcess } from 'node:child_process';
import * as net from 'node:net';
import * as path from 'node:path';
import { examplesDir, exited, startExample } from './helpers/examples';
import { withTimeout } from './helpers/util';
import { onWindows, skipIf } from './helpers/platform';

/** What the test uses of examples/rpc/client.ts (loaded from its compiled file, as a user would import it). */
interface RpcClient {
  call(method: string, params?: unknown, options?: { timeout?: number }): Promise<unknown>;
  close(): void;
}
const { RpcClient, RpcError } = require(path.join(examplesDir, 'rpc', 'client.js')) as {
  RpcClient: { dial(address: string): Promise<RpcClient> };
  RpcError: new (message: string) => Error;
};

/** A frame as examples/rpc/frame.ts writes it: [u32 length][u32 id][payload]. */
function frame(id: number, payload: Buffer, length = payload.length): Buffer {
  const head = Buffer.alloc(8);
  head.writeUInt32BE(length, 0);
  head.writeUInt32BE(id, 4);
  return Buffer.concat([head, payload]);
}

/** A raw socket to `addr` that collects what it gets; `closed` resolves when the server closes it. */
async function rawClient(addr: string): Promise<{ socket: net.Socket; got: () => Buffer; closed: Promise<void> }> {
  const i = addr.lastIndexOf(':');
  const socket = net.connect(Number(addr.slice(i + 1)), addr.slice(0, i));
  socket.on('error', () => {});
  await withTimeout(new Promise((resolve) => socket.once('connect', resolve)), 10_000, 'raw connect');
  const chunks: Buffer[] = [];
  socket.on('data', (d: Buffer) => chunks.push(d));
  const closed = new Promise<void>((resolve) => socket.once('close', () => resolve()));
  return { socket, got: () => Buffer.concat(chunks), closed };
}

describe('examples: rpc', () => {
  let child: ChildProcess | null = null;
  const clients: RpcClient[] = [];
  afterEach(() => {
    for (const c of clients.splice(0)) c.close();
    if (child !== null && child.exitCode === null) child.kill('SIGKILL');
    child = null;
  });

  it('answers 100 pipelined calls on one connection out of order, each matched to its own call', async function () {
    skipIf(this, onWindows, 'SIGTERM: Windows kills the process, no handler runs');
    this.timeout(30_000);
    const ex = await startExample('rpc/server.js', ['127.0.0.1:0']);
    child = ex.child;
    const client = await RpcClient.dial(ex.addr);
    clients.push(client);
    const order: number[] = [];
    // Delays scrambled over 0..190 ms: a later call often finishes first.
    const calls = Array.from({ length: 100 }, (_, i) =>
      client.call('sleep', [(i * 37) % 20 * 10, `reply ${i}`]).then((r) => { order.push(i); return r; }));
    const results = await withTimeout(Promise.all(calls), 20_000, '100 calls');
    assert.deepEqual(results, Array.from({ length: 100 }, (_, i) => `reply ${i}`));
    assert.notDeepEqual(order, [...order].sort((a, b) => a - b), 'replies came in call order: not served concurrently');
    assert.equal(await client.call('add', [2, 40]), 42);
    await assert.rejects(client.call('add', ['x']), (err: Error) => err instanceof RpcError && /expected \[a, b\]/.test(err.message));
    await assert.rejects(client.call('nope'), /no method "nope"/);
    // A per-call timeout: the call rejects; its late reply is dropped, and the connection serves on.
    await assert.rejects(client.call('sleep', [300, 'late'], { timeout: 50 }), /no reply within 50 ms/);
    assert.equal(await client.call('sleep', [400, 'after the late one']), 'after the late one');
    ex.child.kill('SIGTERM');
    assert.equal(await withTimeout(exited(ex.child), 15_000, 'the example exiting'), 0);
    assert.match(ex.out(), /calls answered/);
  });

  it('closes the connection of a malformed frame without hurting a call in flight on another', async function () {
    this.timeout(30_000);
    const ex = await startExample('rpc/server.js', ['127.0.0.1:0']);
    child = ex.child;
    const client = await RpcClient.dial(ex.addr);
    clients.push(client);
    const inFlight = client.call('sleep', [300, 'survived']);
    const bad = await rawClient(ex.addr);
    bad.socket.write(frame(1, Buffer.from('this is not json')));
    await withTimeout(bad.closed, 10_000, 'the malformed frame\'s connection closed');
    assert.equal(bad.got().length, 0, 'no reply to a malformed frame');
    assert.equal(await withTimeout(inFlight, 10_000, 'the other connection\'s call'), 'survived');
    assert.deepEqual(await client.call('echo', { still: 'fine' }), { still: 'fine' });
    assert.match(ex.out(), /closing: frame 1: the payload is not JSON/);
  });

  it('refuses an oversize frame with an error reply to its id, then closes; the client CLI works', async function () {
    this.timeout(30_000);
    const ex = await startExample('rpc/server.js', ['127.0.0.1:0']);
    child = ex.child;
    const big = await rawClient(ex.addr);
    // The header announces 2 MiB; the server answers at the header, before any body arrives.
    big.socket.write(frame(7, Buffer.alloc(0), 2 << 20));
    await withTimeout(big.closed, 10_000, 'the oversize frame\'s connection closed');
    const reply = big.got();
    assert.equal(reply.readUInt32BE(4), 7, 'the reply answers the refused call\'s id');
    assert.deepEqual(JSON.parse(reply.subarray(8, 8 + reply.readUInt32BE(0)).toString()),
      { error: 'frame too large: 2097152 bytes, the limit is 1048576' });
    const out = await withTimeout(new Promise<string>((resolve, reject) => {
      execFile(process.execPath, [path.join(examplesDir, 'rpc', 'client.js'), ex.addr, 'add', '[20, 22]'],
        (err, stdout, stderr) => (err ? reject(new Error(`${err.message} ${stderr}`)) : resolve(stdout)));
    }), 10_000, 'the client CLI');
    assert.equal(out, '42\n');
  });
});
