// The bench's paired ratio, which the README's io_uring numbers are read from: each run of a
// backend is held against epoll's run of the same round, same form, step and (streams) direction,
// and the median of those ratios is filed. Runs from bench/report.ts as compiled by pretest.
import assert from 'node:assert/strict';
import * as path from 'node:path';
import { skipSuiteOnWindows } from './helpers/platform';

interface Row {
  scenario: string;
  config: string;
  form: string;
  connections: number;
  idle: number;
  size: number;
  direction?: string;
  runs: { cpu_us_per_msg: number; cpu_us_per_mib?: number }[];
  rounds?: number[];
  median: { cpu_us_per_msg: number; cpu_us_per_mib?: number };
  paired_ratio?: number;
  paired_with?: string;
}

interface Report {
  floorRatios(results: Row[]): void;
}

/** The compiled bench's report module, loaded in the suite (its imports read the machine). */
let report: Report;

/** A stream result of `config` whose runs cost `mib` µs per MiB, from `rounds`. */
function stream(config: string, direction: string, mib: number[], rounds: number[]): Row {
  return {
    scenario: 'stream', config, form: 'go', connections: 8, idle: 0, size: 16384, direction,
    runs: mib.map((m) => ({ cpu_us_per_msg: 0, cpu_us_per_mib: m })), rounds,
    median: { cpu_us_per_msg: 0, cpu_us_per_mib: [...mib].sort((a, b) => a - b)[Math.floor(mib.length / 2)] },
  };
}

describe('bench: paired ratio', function () {
  skipSuiteOnWindows("the benchmark harness is Linux's (getconf, taskset, /proc)");
  before(function () {
    report = require(path.join(__dirname, '..', '..', '.bench-build', 'bench', 'report.js')) as Report;
  });

  it('pairs stream runs by round and direction, in CPU per MiB, against epoll', function () {
    // Round 1 was a slow spell for epoll; io_uring's run of that round failed, so it has two.
    const epollOneWay = stream('epoll', 'one-way', [100, 300, 120], [0, 1, 2]);
    const uringOneWay = stream('io_uring', 'one-way', [95, 108], [0, 2]);
    const epollEcho = stream('epoll', 'echo', [400, 400, 400], [0, 1, 2]);
    const uringEcho = stream('io_uring', 'echo', [200, 600, 440], [0, 1, 2]);
    const rows = [epollOneWay, uringOneWay, epollEcho, uringEcho];
    report.floorRatios(rows);
    // 95/100 and 108/120, not 108/300 (by position) nor the medians' 101.5/120.
    assert.equal(uringOneWay.paired_with, 'epoll');
    assert.ok(Math.abs(uringOneWay.paired_ratio! - (0.95 + 0.9) / 2) < 1e-9, `paired ${uringOneWay.paired_ratio}`);
    // Echo rows pair with epoll's echo: 0.5, 1.5, 1.1.
    assert.ok(Math.abs(uringEcho.paired_ratio! - 1.1) < 1e-9, `paired ${uringEcho.paired_ratio}`);
    assert.equal(epollOneWay.paired_ratio, undefined, "epoll's own rows carry none");
  });

  it('pairs echo runs in CPU per message, and leaves a form epoll did not run without one', function () {
    const row = (config: string, form: string, msg: number[]): Row => ({
      scenario: 'pingpong', config, form, connections: 50, idle: 0, size: 64,
      runs: msg.map((m) => ({ cpu_us_per_msg: m })), rounds: msg.map((_, i) => i), median: { cpu_us_per_msg: msg[1] },
    });
    const epoll = row('epoll', 'go', [10, 20, 10]);
    const uring = row('io_uring', 'go', [9, 18, 10]);
    const lone = row('io_uring', 'pooled', [9, 9, 9]);
    report.floorRatios([epoll, uring, lone]);
    assert.ok(Math.abs(uring.paired_ratio! - 0.9) < 1e-9, `paired ${uring.paired_ratio}`);
    assert.equal(lone.paired_ratio, undefined);
  });
});
