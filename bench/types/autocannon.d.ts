// The part of the `autocannon` package (9.x) that bench/autocannon-run.ts uses, declared by hand.
declare module 'autocannon' {
  import type { EventEmitter } from 'node:events';
  namespace autocannon {
    interface Options {
      url: string;
      connections?: number;
      /** Seconds. */
      duration?: number;
      maxOverallRequests?: number;
      expectBody?: string;
      timeout?: number;
    }
    /** Percentiles of a histogram; latencies are in milliseconds. */
    interface Histogram {
      average: number;
      mean: number;
      min: number;
      max: number;
      total: number;
      p50: number;
      p99: number;
      p99_9: number;
    }
    interface Result {
      duration: number;
      errors: number;
      timeouts: number;
      mismatches: number;
      non2xx: number;
      latency: Histogram;
      requests: Histogram & { sent: number };
    }
    interface Instance extends EventEmitter, PromiseLike<Result> {
      stop(): void;
    }
    interface TrackOptions {
      outputStream?: NodeJS.WritableStream;
      renderProgressBar?: boolean;
      renderResultsTable?: boolean;
      renderLatencyTable?: boolean;
      progressBarString?: string;
    }
  }
  function autocannon(options: autocannon.Options): autocannon.Instance;
  namespace autocannon {
    function track(instance: Instance, options?: TrackOptions): void;
  }
  export = autocannon;
}
