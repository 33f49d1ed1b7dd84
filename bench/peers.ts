// The servers beside muxnet's own: the standalone C floor (muxnet-echo-floor) and the
// optional peers of other runtimes (Bun, Deno, Go) whose sources live in bench/peers/.
import { execFileSync } from 'node:child_process';
import { existsSync, mkdirSync } from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { builtTool, root, startProcess, type Server } from './measure';

/** The backends the C floor has a model of (muxnet's epoll-thread has no C counterpart: its floor is epoll's; io_uring's runs DEFER_TASKRUN, muxnet's default mode; `--backend io_uring-coop` runs COOP_TASKRUN, its mode with MUXNET_IO_URING_TASKRUN=coop). */
export const C_FLOOR_BACKENDS = ['epoll', 'epoll-et', 'poll', 'select', 'io_uring'];

/** The C floor of a muxnet configuration, by its name. */
export function cFloorOf(config: string): string {
  return config === 'epoll-thread' ? 'epoll' : config;
}

/** Starts the standalone C echo for one backend, pinned like every server. */
export function startCFloor(backend: string): Promise<Server> {
  return startProcess(builtTool('muxnet-echo-floor'), ['--backend', backend]);
}

export const PEERS = ['bun', 'deno', 'go'] as const;
export type Peer = typeof PEERS[number];

function onPath(command: string): boolean {
  return (process.env.PATH ?? '').split(path.delimiter).some((dir) => dir !== '' && existsSync(path.join(dir, command)));
}

/**
 * The peers to run, and why each other one is not: BENCH_PEERS=none runs none, a comma-separated
 * list names the ones wanted, and unset means every one whose runtime is on the PATH.
 */
export function peerPlan(): { run: Peer[]; skipped: { peer: Peer; why: string }[] } {
  const env = process.env.BENCH_PEERS?.trim();
  const wanted = env === undefined || env === '' ? [...PEERS] : env === 'none' ? [] : env.split(',').map((p) => p.trim());
  const unknown = wanted.filter((p) => !(PEERS as readonly string[]).includes(p));
  if (unknown.length > 0) throw new Error(`BENCH_PEERS: unknown peer ${unknown.join(', ')}; expected some of ${PEERS.join(', ')} or none`);
  const run: Peer[] = [];
  const skipped: { peer: Peer; why: string }[] = [];
  for (const peer of PEERS) {
    if (!wanted.includes(peer)) skipped.push({ peer, why: `not in BENCH_PEERS=${env}` });
    else if (!onPath(peer)) skipped.push({ peer, why: `${peer} is not on the PATH` });
    else run.push(peer);
  }
  return { run, skipped };
}

let goBinary: string | undefined;

/**
 * Builds the Go echo once per bench run into one temporary directory, rebuilt over the last
 * run's (Go's build cache makes that quick), so runs do not pile up binaries.
 */
function buildGoEcho(): string {
  if (goBinary === undefined) {
    const dir = path.join(os.tmpdir(), 'muxnet-bench-peers');
    mkdirSync(dir, { recursive: true });
    const out = path.join(dir, 'go-echo');
    execFileSync('go', ['build', '-o', out, 'main.go'], { cwd: path.join(root, 'bench', 'peers', 'go-echo'), stdio: 'inherit' });
    goBinary = out;
  }
  return goBinary;
}

/** Starts a peer's echo server, pinned like every server. */
export function startPeer(peer: Peer): Promise<Server> {
  const dir = path.join(root, 'bench', 'peers');
  if (peer === 'bun') return startProcess('bun', [path.join(dir, 'bun-echo.ts')], { name: 'bun-echo' });
  if (peer === 'deno') {
    return startProcess('deno', ['run', '--no-config', '--allow-net=127.0.0.1', path.join(dir, 'deno-echo.ts')], { name: 'deno-echo' });
  }
  // One OS thread runs Go code, as one JS thread runs muxnet's and Node's.
  return startProcess(buildGoEcho(), [], { name: 'go-echo', env: { ...process.env, GOMAXPROCS: '1' } });
}
