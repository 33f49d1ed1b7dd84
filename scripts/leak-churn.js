// Connection churn through the public API, for the leak check of the addon
// (scripts/test-leaks.sh runs it under the ASan addon with LeakSanitizer on): N loopback
// connections are dialled, echo a small message and are closed, a few dozen at a time, in
// each loop config. Exits non-zero if an echo differs or anything stalls.
//
//   node scripts/leak-churn.js [count] [count for the other configs]
//
// Then two workers at once churn too (each has its own addon instance and loops) and end with
// process.exit() while a listener, a connection and a pending read are still open, so the
// addon's environment cleanup (not a close by the user) must free everything.
//
// The server closes first, so TIME_WAIT lands on the listener's port and 100k connections
// never exhaust the client's ephemeral ports.
'use strict';
const { Worker, isMainThread, workerData } = require('node:worker_threads');
const { listen, dial, backends } = require('..');

const kInFlight = 48;
const kMessage = 24;

function configs() {
  const out = [];
  for (const b of backends()) {
    out.push({ backend: b });
    if (b === 'epoll') {
      out.push({ backend: 'epoll', trigger: 'edge' });
      out.push({ backend: 'epoll', mode: 'thread' });
    }
  }
  return out;
}

function message(n) {
  const m = new Uint8Array(kMessage);
  for (let i = 0; i < kMessage; i++) m[i] = 97 + ((n * 7 + i) % 26);
  return m;
}

async function serve(conn, n) {
  try {
    // A deadline that never fires: close must drop it.
    conn.setReadDeadline(Date.now() + 60_000);
    const buf = new Uint8Array(kMessage);
    let got = 0;
    while (got < kMessage) {
      const r = await conn.read(buf.subarray(got));
      if (r === null) throw new Error(`server: EOF after ${got} bytes`);
      got += r;
    }
    await conn.write(buf);
  } finally {
    conn.close();
  }
}

async function client(address, options, n) {
  const c = await dial('tcp', address, options);
  try {
    const m = message(n);
    await c.write(m);
    const got = [];
    let total = 0;
    if (n % 2 === 0) {
      for (;;) {
        const chunk = await c.readChunk();  // pooled path
        if (chunk === null) break;
        got.push(Buffer.from(chunk.bytes));
        total += chunk.bytes.length;
        chunk.release();
      }
    } else {
      const buf = new Uint8Array(64);
      for (;;) {
        const r = await c.read(buf);
        if (r === null) break;
        got.push(Buffer.from(buf.subarray(0, r)));
        total += r;
      }
    }
    if (!Buffer.concat(got, total).equals(Buffer.from(m))) throw new Error(`client ${n}: echo differs`);
  } finally {
    c.close();
  }
}

async function churn(options, count) {
  const ln = listen('tcp', '127.0.0.1:0', options);
  const address = ln.addr().toString();
  let serving = 0;
  let serverError = null;
  const accepting = (async () => {
    let n = 0;
    for await (const conn of ln) {
      serving++;
      serve(conn, n++).catch((e) => { serverError ??= e; }).finally(() => serving--);
    }
  })();
  const t0 = Date.now();
  let next = 0;
  let done = 0;
  const workers = [];
  for (let w = 0; w < kInFlight; w++) {
    workers.push((async () => {
      while (next < count) {
        await client(address, options, next++);
        done++;
      }
    })());
  }
  await Promise.all(workers);
  // A client saw EOF, so its server side has closed; only the promise bookkeeping lags.
  while (serving > 0) await new Promise((r) => setImmediate(r));
  ln.close();
  await accepting;
  if (serverError) throw serverError;
  const name = `${options.backend}${options.trigger ? '/' + options.trigger : ''}${options.mode ? '/' + options.mode : ''}`;
  const where = isMainThread ? '' : ' (worker)';
  console.log(`ok js churn ${(name + where).padEnd(22)} ${String(done).padStart(6)} connections in ${((Date.now() - t0) / 1000).toFixed(1)} s`);
}

async function main() {
  const first = Number(process.argv[2] ?? 100000);
  const others = Number(process.argv[3] ?? 10000);
  let i = 0;
  for (const options of configs()) await churn(options, i++ === 0 ? first : others);
  const all = configs();
  const workers = [all[0], all[all.length - 1]].map((options) => new Promise((resolve, reject) => {
    const w = new Worker(__filename, { workerData: { options, count: Math.min(others, 5000) } });
    w.once('error', reject);
    w.once('exit', (code) => (code === 0 ? resolve() : reject(new Error(`worker exited with ${code}`))));
  }));
  await Promise.all(workers);
  console.log('leak-churn: all configs done');
}

async function workerMain() {
  const { options, count } = workerData;
  await churn(options, count);
  // Leave things open and exit: the environment cleanup hook must close and free them.
  const ln = listen('tcp', '127.0.0.1:0', options);
  const accepted = ln.accept();
  const c = await dial('tcp', ln.addr().toString(), options);
  await accepted;
  c.read(new Uint8Array(16)).catch(() => {});
  c.write(new Uint8Array(1024)).catch(() => {});
  process.exit(0);
}

// A stall must fail the run, not hang CI; unref'd so it never keeps the process alive.
setTimeout(() => {
  console.error('leak-churn: timed out');
  process.exit(2);
}, 600_000).unref();

(isMainThread ? main() : workerMain()).catch((err) => {
  console.error(err);
  process.exitCode = 1;
});
