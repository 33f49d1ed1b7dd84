// The part of the `benchmark` package (Benchmark.js 2.1) that bench/micro.ts uses, declared by hand.
declare module 'benchmark' {
  namespace Benchmark {
    interface Deferred {
      resolve(): void;
    }
    interface Stats {
      /** Relative margin of error, in percent. */
      rme: number;
      /** Seconds per operation, one entry per sampled cycle. */
      sample: number[];
      /** Mean seconds per operation. */
      mean: number;
    }
    interface Options {
      defer?: boolean;
      async?: boolean;
      /** Seconds to spend sampling a benchmark. */
      maxTime?: number;
      minSamples?: number;
      fn?: ((deferred: Deferred) => void) | (() => void);
      onStart?: () => void;
      onComplete?: () => void;
    }
    interface Target {
      name: string;
      /** Operations per second. */
      hz: number;
      stats: Stats;
      error?: Error;
      aborted: boolean;
    }
    interface Event {
      target: Target;
    }
    class Suite {
      constructor(name?: string);
      add(name: string, options: Options): this;
      on(type: 'cycle' | 'complete' | 'error' | 'start', listener: (event: Event) => void): this;
      run(options?: { async?: boolean }): this;
    }
  }
  const Benchmark: {
    Suite: typeof Benchmark.Suite;
    version: string;
  };
  export = Benchmark;
}
