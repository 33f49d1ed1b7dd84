// Runs autocannon through its programmatic API in a process of its own, so that the
// orchestrator can pin it to the load CPU: `node autocannon-run.js <json options>`. Speaks
// the load generator's JSON lines on stdout ("measuring", then "done"); progress on stderr.
import autocannon = require('autocannon');

interface RunOptions {
  url: string;
  connections: number;
  /** Seconds of warm-up (not measured), then of measuring. */
  warmup: number;
  duration: number;
  /** Bound on requests of the measured run, besides its duration. */
  maxRequests: number;
  expectBody: string;
}

const o = JSON.parse(process.argv[2] ?? '{}') as RunOptions;

function line(event: Record<string, unknown>): void {
  process.stdout.write(`${JSON.stringify(event)}\n`);
}

async function main(): Promise<void> {
  const base = { url: o.url, connections: o.connections, expectBody: o.expectBody, timeout: 5 };
  if (o.warmup > 0) {
    await autocannon({ ...base, duration: o.warmup, maxOverallRequests: o.maxRequests });
  }
  const instance = autocannon({ ...base, duration: o.duration, maxOverallRequests: o.maxRequests });
  // 'start' comes once the connections are set up: the orchestrator samples the server from here.
  instance.on('start', () => line({ event: 'measuring' }));
  autocannon.track(instance, {
    renderProgressBar: process.stderr.isTTY === true,
    renderResultsTable: false,
    progressBarString: `autocannon ${o.url} [:bar] :percent`,
  });
  const r = await instance;
  // autocannon's latency histogram counts whole milliseconds: µs here are ms × 1000.
  line({
    event: 'done',
    messages: r.requests.total,
    seconds: r.duration,
    rate: r.duration > 0 ? r.requests.total / r.duration : 0,
    p50_us: r.latency.p50 * 1000,
    p99_us: r.latency.p99 * 1000,
    p999_us: r.latency.p99_9 * 1000,
    errors: r.errors + r.timeouts + r.mismatches,
    non2xx: r.non2xx,
  });
}

main().then(() => process.exit(0), (err: unknown) => {
  console.error(err);
  process.exit(1);
});
