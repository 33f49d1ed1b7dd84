// A real HAProxy for tests: a config for N backends written from options, run in the foreground on loopback, its server states read, stopped.
import { execFileSync, spawn, type ChildProcess } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import * as net from 'node:net';
import { tmpdir } from 'node:os';
import * as path from 'node:path';
import { sleep, toolEnv, withTimeout } from './util';

/** One HAProxy backend (with its frontend): where it listens, and the servers it balances over. */
export interface HaproxyBackend {
  /** The backend's name, also its frontend's ("fe_<name>"). */
  name: string;
  /** "host:port" of each server (named s0, s1, … in the config and in {@link Haproxy.serverStates}). */
  servers: string[];
  /** The PROXY protocol version sent to the servers (send-proxy, send-proxy-v2), or none. */
  proxy?: 'v1' | 'v2' | 'none';
  /**
   * Health checks: 'connect' (layer 4), or a line sent and a string expected back
   * (tcp-check), checked every 200 ms (UP after one pass, DOWN after three failures). Absent: no checks.
   */
  check?: 'connect' | { send: string; expect: string };
}

/** What {@link Haproxy.start} needs. */
export interface HaproxyOptions {
  backends: HaproxyBackend[];
  /**
   * Lines added to `defaults`, e.g. `retries 3` and `option redispatch` (a connection refused
   * by a server that is stopping is retried on another, as in a production rolling restart).
   */
  defaults?: string[];
}

/** A server as HAProxy's "show stat" reports it. */
export interface ServerState {
  /** 'UP', 'DOWN', 'MAINT', 'no check', … (a server with checks starts UP, before its first check). */
  status: string;
  /** The last check's result: 'L4OK', 'L7OK' (a tcp-check passed), 'L4CON', 'L7RSP', …; '' before the first. */
  check: string;
  /** Connections to it open now (HAProxy's scur). */
  sessions: number;
}

/** Server states by "backend/server", e.g. 'v2/s0'. */
export type ServerStates = Record<string, ServerState>;

let haproxyBinary: string | null | undefined;

/**
 * The haproxy binary, installed with apt-get when missing and this process may (root, Debian);
 * null with `why` set when it cannot be had, for a test to skip with that reason.
 */
export function findHaproxy(): { path: string | null; why: string } {
  const find = (): string | null => {
    for (const p of ['/usr/sbin/haproxy', '/usr/bin/haproxy', '/usr/local/sbin/haproxy']) {
      try {
        execFileSync(p, ['-v'], { stdio: 'ignore', env: toolEnv() });
        return p;
      } catch {
        // Not there: the next place.
      }
    }
    return null;
  };
  if (process.platform === 'win32') {
    return { path: null, why: 'the haproxy tests run a Linux haproxy binary: POSIX only here' };
  }
  if (haproxyBinary === undefined) {
    haproxyBinary = find();
    if (haproxyBinary === null && process.getuid?.() === 0) {
      try {
        execFileSync('apt-get', ['install', '-y', '-qq', 'haproxy'], { stdio: 'ignore', timeout: 300_000,
          env: { ...toolEnv(), DEBIAN_FRONTEND: 'noninteractive' } });
      } catch {
        // Perhaps no package lists yet, or no network: said below.
      }
      haproxyBinary = find();
    }
  }
  return { path: haproxyBinary, why: haproxyBinary === null ? 'haproxy is not installed and apt-get install -y haproxy failed (not root, or no package source)' : '' };
}

/** A free TCP port on 127.0.0.1 (free when asked: fine on loopback for a test). */
export async function freePort(): Promise<number> {
  const server = net.createServer();
  await new Promise<void>((resolve, reject) => server.once('error', reject).listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as net.AddressInfo;
  await new Promise<void>((resolve) => server.close(() => resolve()));
  return port;
}

/** The config text for `opts`, with each backend's frontend on its port from `ports`. */
export function haproxyConfig(opts: HaproxyOptions, ports: Record<string, number>, statsSocket: string): string {
  const lines = [
    'global',
    `  stats socket ${statsSocket} mode 600 level admin`,
    '  nbthread 1',  // 2 CPUs shared by several test runs: one thread is plenty on loopback
    'defaults',
    '  mode tcp',
    '  timeout connect 2s',
    '  timeout client 30s',
    '  timeout server 30s',
    '  timeout check 5s',  // else a check times out after `inter` (200 ms): too tight on a loaded machine
    ...(opts.defaults ?? []).map((line) => `  ${line}`),
  ];
  for (const b of opts.backends) {
    lines.push(`frontend fe_${b.name}`, `  bind 127.0.0.1:${ports[b.name]}`, `  default_backend ${b.name}`);
    lines.push(`backend ${b.name}`, '  balance roundrobin');
    if (typeof b.check === 'object') {
      lines.push('  option tcp-check', `  tcp-check send ${quote(b.check.send)}`, `  tcp-check expect string ${quote(b.check.expect)}`);
    }
    const proxy = b.proxy === 'v1' ? ' send-proxy' : b.proxy === 'v2' ? ' send-proxy-v2' : '';
    // Up after one passed check; down only after three failed ones, so one slow check under
    // load does not take a server out of the rotation.
    const check = b.check === undefined ? '' : ' check inter 200ms rise 1 fall 3';
    b.servers.forEach((addr, i) => lines.push(`  server s${i} ${addr}${proxy}${check}`));
  }
  return `${lines.join('\n')}\n`;
}

/** A string for the config: HAProxy's double quotes, with \n and \r as escapes. */
function quote(s: string): string {
  return `"${s.replace(/["\\]/g, '\\$&').replace(/\n/g, '\\n').replace(/\r/g, '\\r')}"`;
}

/** Resolves once 127.0.0.1:`port` accepts a connection (bounded tries). */
async function waitListening(port: number, child: ChildProcess): Promise<void> {
  for (let i = 0; i < 100; i++) {
    if (child.exitCode !== null) throw new Error(`haproxy exited with ${child.exitCode}`);
    const ok = await new Promise<boolean>((resolve) => {
      const s = net.connect(port, '127.0.0.1');
      s.once('connect', () => {
        s.destroy();
        resolve(true);
      });
      s.once('error', () => resolve(false));
    });
    if (ok) return;
    await sleep(50);
  }
  throw new Error(`haproxy is not listening on 127.0.0.1:${port}`);
}

/** A running HAProxy (`haproxy -f <cfg> -db`, a child process). */
export class Haproxy {
  private constructor(
    private readonly child: ChildProcess,
    private readonly dir: string,
    private readonly ports: Record<string, number>,
    private readonly output: () => string,
  ) {}

  /** Writes the config, starts haproxy and resolves once every frontend accepts connections. */
  static async start(binary: string, opts: HaproxyOptions): Promise<Haproxy> {
    const dir = mkdtempSync(path.join(tmpdir(), 'muxnet-haproxy-'));
    const ports: Record<string, number> = {};
    for (const b of opts.backends) ports[b.name] = await freePort();
    const cfg = path.join(dir, 'haproxy.cfg');
    writeFileSync(cfg, haproxyConfig(opts, ports, path.join(dir, 'stats.sock')));
    const child = spawn(binary, ['-f', cfg, '-db'], { stdio: ['ignore', 'pipe', 'pipe'], env: toolEnv() });
    let out = '';
    child.stdout!.on('data', (d: Buffer) => { out += d.toString(); });
    child.stderr!.on('data', (d: Buffer) => { out += d.toString(); });
    const h = new Haproxy(child, dir, ports, () => out);
    try {
      for (const b of opts.backends) await waitListening(ports[b.name], child);
    } catch (err) {
      await h.stop();
      throw new Error(`${(err as Error).message}; its output:\n${out}`);
    }
    return h;
  }

  /** "127.0.0.1:port" of the frontend of backend `name`. */
  address(name: string): string {
    return `127.0.0.1:${this.ports[name]}`;
  }

  /** The port of the frontend of backend `name`. */
  port(name: string): number {
    return this.ports[name];
  }

  /** What haproxy printed so far (its warnings and alerts). */
  log(): string {
    return this.output();
  }

  /** Sends one command to the stats socket ("show stat", "disable server be/s0", …); resolves with the answer. */
  async command(cmd: string): Promise<string> {
    const s = net.connect(path.join(this.dir, 'stats.sock'));
    let out = '';
    s.on('data', (d: Buffer) => { out += d.toString(); });
    await withTimeout(new Promise<void>((resolve, reject) => {
      s.once('error', reject);
      s.once('close', () => resolve());
      s.end(`${cmd}\n`);
    }), 5000, `haproxy stats socket: ${cmd}`);
    return out;
  }

  /** Each server's status and last check, by "backend/server". */
  async serverStates(): Promise<ServerStates> {
    const csv = await this.command('show stat');
    const [head, ...rows] = csv.replace(/^# /, '').trim().split('\n');
    const cols = head.split(',');
    const [px, sv, status, check, scur] = ['pxname', 'svname', 'status', 'check_status', 'scur'].map((c) => cols.indexOf(c));
    const states: ServerStates = {};
    for (const row of rows) {
      const f = row.split(',');
      if (f[sv] !== 'FRONTEND' && f[sv] !== 'BACKEND') states[`${f[px]}/${f[sv]}`] = { status: f[status], check: f[check].replace(/^\* /, ''), sessions: Number(f[scur]) };
    }
    return states;
  }

  /** Resolves once `ok(states)` holds (polled every 100 ms, at most `ms`); rejects with the last states. */
  async waitFor(ok: (states: ServerStates) => boolean, ms: number, what: string): Promise<ServerStates> {
    let states: ServerStates = {};
    for (let waited = 0; waited <= ms; waited += 100) {
      states = await this.serverStates();
      if (ok(states)) return states;
      await sleep(100);
    }
    throw new Error(`haproxy: ${what} not reached in ${ms} ms; server states ${JSON.stringify(states)}\n${this.output()}`);
  }

  /** Stops haproxy (SIGTERM, then SIGKILL if it lingers) and removes its directory. */
  async stop(): Promise<void> {
    if (this.child.exitCode === null && this.child.signalCode === null) {
      const exited = new Promise<void>((resolve) => this.child.once('exit', () => resolve()));
      this.child.kill('SIGTERM');
      try {
        await withTimeout(exited, 5000, 'haproxy exiting');
      } catch {
        this.child.kill('SIGKILL');
        await exited;
      }
    }
    rmSync(this.dir, { recursive: true, force: true });
  }
}
