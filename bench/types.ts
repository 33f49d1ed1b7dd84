// Types shared by the benchmark runner and its scenarios: one result row, one task of a run.
import type { LoadResult } from './measure';

export interface Result {
  scenario: string;
  config: string;
  form: string;
  connections: number;
  idle: number;
  size: number;
  /** What made the load, where not the native load generator: 'autocannon', 'wrk', 'benchmark', ... */
  tool?: string;
  /** pingpong-4k, pipelined: messages each connection has in flight (absent: 1). */
  depth?: number;
  /** stream: 'one-way' (the server discards) or 'echo'. */
  direction?: string;
  /** micro: which cost was measured; proxy: 'pingpong' or 'stream'; file: the file's name ('64k', '1m'). */
  case?: string;
  /** Why nothing was measured (runs is then empty), e.g. a tool that is not installed. */
  skipped?: string;
  /**
   * pingpong and idle: median CPU per message over that of the same backend's floors in the
   * same run and shape: the standalone C echo (c_floor) and the in-Node C++ echo (native).
   */
  floor_ratio?: { c_floor?: number; native?: number };
  /**
   * Its CPU per message (stream: per MiB) over that of `paired_with` (epoll where it ran) for
   * the same form and step, as the median of the runs' ratios paired by round: a round's two runs are minutes
   * apart at most, so a slow spell of a shared machine moves both (the medians' ratio takes
   * it whole).
   */
  paired_ratio?: number;
  paired_with?: string;
  runs: LoadResult[];
  /** The round (0-based) each of `runs` came from, where rounds interleave the jobs. */
  rounds?: number[];
  median: LoadResult;
}

/**
 * One step measured `repeats` times. The runner interleaves the steps' runs by round (see
 * run.ts), and files the median of a step's runs with its last one.
 */
export interface RepeatedJob {
  label: string;
  repeats: number;
  once(): Promise<LoadResult>;
  result(runs: LoadResult[], rounds: number[]): Result;
}

/** One step of a run, for the progress bar: what it measures, and the results it adds. */
export interface Task {
  label: string;
  run(): Promise<Result[]>;
}
