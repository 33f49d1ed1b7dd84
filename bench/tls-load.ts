// TLS ping-pong load for the tls scenario: `node tls-load.js --port P --connections N --size B
// --duration S --warmup S --ca file`: N tls.connect clients each send B bytes and wait for them
// back, in a loop; prints muxnet-loadgen's JSON lines ("measuring" after the warm-up, then "done").
import { readFileSync } from 'node:fs';
import * as tls from 'node:tls';

function arg(name: string): string {
  const i = process.argv.indexOf(`--${name}`);
  if (i < 0 || process.argv[i + 1] === undefined) throw new Error(`tls-load: --${name} is required`);
  return process.argv[i + 1];
}

const port = Number(arg('port'));
const connections = Number(arg('connections'));
const size = Number(arg('size'));
const duration = Number(arg('duration'));
const warmup = Number(arg('warmup'));
const ca = readFileSync(arg('ca'));
const payload = Buffer.alloc(size, 'x');

let measuring = false;
let messages = 0;
// Round trips in µs while measuring; a bounded sample keeps memory flat over long runs.
const kMaxSamples = 1_000_000;
const samples: number[] = [];

function client(): Promise<void> {
  return new Promise((resolve, reject) => {
    const s = tls.connect({ port, host: '127.0.0.1', servername: 'localhost', ca }, () => {
      s.setNoDelay(true);
      let got = 0;
      let sent = process.hrtime.bigint();
      s.on('data', (d: Buffer) => {
        got += d.length;
        if (got < size) return;
        got -= size;
        if (measuring) {
          messages++;
          if (samples.length < kMaxSamples) samples.push(Number(process.hrtime.bigint() - sent) / 1000);
        }
        sent = process.hrtime.bigint();
        s.write(payload);
      });
      s.write(payload);
      resolve();
    });
    s.once('error', reject);
  });
}

function percentile(sorted: number[], p: number): number {
  return sorted.length === 0 ? NaN : sorted[Math.min(sorted.length - 1, Math.floor(sorted.length * p))];
}

async function main(): Promise<void> {
  // Connect in batches of 50: a handshake costs the server far more than a message.
  for (let i = 0; i < connections; i += 50) {
    await Promise.all(Array.from({ length: Math.min(50, connections - i) }, client));
  }
  await new Promise((r) => setTimeout(r, warmup * 1000));
  measuring = true;
  const t0 = performance.now();
  process.stdout.write(`${JSON.stringify({ event: 'measuring' })}\n`);
  await new Promise((r) => setTimeout(r, duration * 1000));
  measuring = false;
  const seconds = (performance.now() - t0) / 1000;
  const sorted = samples.sort((a, b) => a - b);
  process.stdout.write(`${JSON.stringify({
    event: 'done', messages, seconds, rate: messages / seconds,
    p50_us: percentile(sorted, 0.5), p99_us: percentile(sorted, 0.99), p999_us: percentile(sorted, 0.999),
  })}\n`);
  process.exit(0);
}

void main().catch((err) => {
  console.error(err);
  process.exit(1);
});
