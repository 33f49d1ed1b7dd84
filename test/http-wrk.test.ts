// Node's http server over muxnet under wrk: keep-alive, pipelined requests and POST bodies, every response whole and counted.
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import * as http from 'node:http';
import { tmpdir } from 'node:os';
import * as path from 'node:path';
import { listen } from 'muxnet';
import { loopConfigs } from './helpers/configs';
import { Resources, toolEnv, withTimeout } from './helpers/util';

// wrk's Lua hooks: `pipeline` sends 4 GETs in one write, `post` a 1000-byte body per request;
// `done` prints what wrk counted, so the test compares it with what the server saw.
const kReport = `
done = function(summary, latency, requests)
  local e = summary.errors
  io.write(string.format("RESULT requests=%d connect=%d read=%d write=%d status=%d timeout=%d\\n",
    summary.requests, e.connect, e.read, e.write, e.status, e.timeout))
end
`;
const kScripts: Record<string, string> = {
  keepalive: kReport,
  pipeline: `
init = function(args)
  local r = {}
  for i = 1, 4 do r[i] = wrk.format("GET", "/p" .. i) end
  req = table.concat(r)
end
request = function() return req end
${kReport}`,
  post: `
wrk.method = "POST"
wrk.body = string.rep("x", 1000)
wrk.headers["content-type"] = "text/plain"
${kReport}`,
};

let haveWrk: boolean | undefined;
function wrkAvailable(): Promise<boolean> {
  if (haveWrk !== undefined) return Promise.resolve(haveWrk);
  return new Promise((resolve) => execFile('wrk', ['--version'], { env: toolEnv() }, (err) => {
    // wrk --version prints its banner and exits 1; a missing binary is ENOENT.
    haveWrk = (err as NodeJS.ErrnoException | null)?.code !== 'ENOENT';
    resolve(haveWrk);
  }));
}

interface WrkResult { requests: number; connect: number; read: number; write: number; status: number; timeout: number }

function runWrk(url: string, script: string): Promise<WrkResult> {
  const dir = mkdtempSync(path.join(tmpdir(), 'muxnet-wrk-'));
  const file = path.join(dir, 'script.lua');
  writeFileSync(file, script);
  // Bounded: one thread, 8 connections, 1 second.
  return withTimeout(new Promise<WrkResult>((resolve, reject) => {
    execFile('wrk', ['-t1', '-c8', '-d1s', '--timeout', '5s', '-s', file, url], { env: toolEnv() }, (err, out, errOut) => {
      rmSync(dir, { recursive: true, force: true });
      const m = /RESULT requests=(\d+) connect=(\d+) read=(\d+) write=(\d+) status=(\d+) timeout=(\d+)/.exec(out);
      if (err || m === null) {
        reject(new Error(`wrk failed: ${err?.message ?? ''} ${out} ${errOut}`));
        return;
      }
      const [requests, connect, read, write, status, timeout] = m.slice(1).map(Number);
      resolve({ requests, connect, read, write, status, timeout });
    });
  }), 30_000, 'wrk');
}

for (const cfg of loopConfigs()) {
  describe(`http over muxnet under wrk [${cfg.name}]`, () => {
    const res = new Resources();
    afterEach(() => res.closeAll());

    for (const form of Object.keys(kScripts)) {
      it(`${form}: every request answered, none failed`, async function () {
        if (!(await wrkAvailable())) this.skip();  // .ci/run installs wrk; a machine without it skips
        let served = 0;
        let badBodies = 0;
        const server = http.createServer((req, res) => {
          let length = 0;
          req.on('data', (d: Buffer) => { length += d.length; });
          req.on('end', () => {
            served++;
            if (req.method === 'POST' && length !== 1000) badBodies++;
            res.setHeader('content-type', 'text/plain');
            res.end(`${req.method} ${req.url} ${length}\n`);
          });
        });
        const ln = res.add(listen('tcp', '127.0.0.1:0', cfg.options));
        const serving = ln.serveNode(server);
        const r = await runWrk(`http://${ln.addr()}/`, kScripts[form]);
        assert.deepEqual({ connect: r.connect, read: r.read, write: r.write, status: r.status, timeout: r.timeout },
          { connect: 0, read: 0, write: 0, status: 0, timeout: 0 }, 'no socket errors, no non-2xx, no timeouts');
        assert.ok(r.requests > 0, 'wrk completed requests');
        // wrk stops mid-flight at its deadline: the server may have answered a few it never read.
        assert.ok(served >= r.requests, `the server handled ${served} requests, wrk counted ${r.requests}`);
        assert.equal(badBodies, 0, 'every POST body arrived whole');
        await ln.shutdown({ timeout: 5000 });
        await serving;
      });
    }
  });
}
