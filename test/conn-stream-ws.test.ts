// WebSockets (the `ws` library) over Node's http over muxnet: handleUpgrade takes a ConnStream as it takes a net.Socket.
import assert from 'node:assert/strict';
import * as http from 'node:http';
import { listen } from 'muxnet';
import { WebSocket, WebSocketServer } from 'ws';
import { loopConfigs } from './helpers/configs';
import { Resources, withTimeout } from './helpers/util';

for (const cfg of loopConfigs()) {
  describe(`ws over serveNode [${cfg.name}]`, () => {
    const res = new Resources();
    afterEach(() => res.closeAll());

    it('upgrades, echoes text and a 1 MiB binary message, sees the client address, and closes cleanly', async () => {
      const wss = new WebSocketServer({ noServer: true });
      res.add({ close: () => wss.close() });
      const peers: string[] = [];
      wss.on('connection', (socket, req) => {
        peers.push(String(req.socket.remoteAddress));
        socket.on('message', (data, isBinary) => socket.send(data, { binary: isBinary }));
      });
      const server = http.createServer((req, rsp) => rsp.end('plain http'));
      server.on('upgrade', (req, socket, head) => {
        wss.handleUpgrade(req, socket, head, (ws) => wss.emit('connection', ws, req));
      });
      const ln = res.add(listen('tcp', '127.0.0.1:0', cfg.options));
      const serving = ln.serveNode(server);

      const client = new WebSocket(`ws://${ln.addr()}/chat`);
      res.add({ close: () => client.terminate() });
      await withTimeout(new Promise((resolve, reject) => client.once('open', resolve).once('error', reject)), 10_000, 'the upgrade');
      const next = (): Promise<{ data: Buffer; binary: boolean }> => new Promise((resolve) => {
        client.once('message', (data, binary) => resolve({ data: data as Buffer, binary }));
      });
      let got = next();
      client.send('hello over muxnet');
      const text = await withTimeout(got, 10_000, 'the text echo');
      assert.equal(text.binary, false);
      assert.equal(text.data.toString(), 'hello over muxnet');
      const big = Buffer.alloc(1024 * 1024, 7);
      big.write('start', 0);
      got = next();
      client.send(big);
      const echoed = await withTimeout(got, 10_000, 'the binary echo');
      assert.equal(echoed.binary, true);
      assert.ok(echoed.data.equals(big), 'the 1 MiB message came back whole');
      assert.deepEqual(peers, ['127.0.0.1']);

      const closed = new Promise<number>((resolve) => client.once('close', (code) => resolve(code)));
      client.close(1000, 'bye');
      assert.equal(await withTimeout(closed, 10_000, 'the close handshake'), 1000);
      await ln.shutdown({ timeout: 5000 });
      await serving;
    });
  });
}
