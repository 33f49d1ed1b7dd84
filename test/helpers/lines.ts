// A line-protocol client for the example tests: a Node socket (or a tool's stdio) read as lines, with bounded waits.
import * as net from 'node:net';
import type { Readable, Writable } from 'node:stream';
import { withTimeout } from './util';

/** Lines received from `input` (collected as they arrive), lines sent to `output`. */
export class LineClient {
  /** Every complete line received so far, without "\n". */
  readonly lines: string[] = [];
  /** Resolves once `input` has ended or closed. */
  readonly ended: Promise<void>;
  private partial = '';
  private readonly waiters = new Set<() => void>();

  constructor(readonly input: Readable, readonly output: Writable) {
    input.setEncoding('utf8');
    input.on('data', (d: string) => {
      const parts = (this.partial + d).split('\n');
      this.partial = parts.pop()!;
      this.lines.push(...parts);
      for (const w of this.waiters) w();
    });
    input.on('error', () => {});
    output.on('error', () => {});
    this.ended = new Promise((resolve) => {
      const end = (): void => {
        resolve();
        for (const w of this.waiters) w();
      };
      input.once('end', end);
      input.once('close', end);
    });
  }

  /** Connects to `addr` ("host:port"), from `localAddress` if given. */
  static async connect(addr: string, localAddress?: string): Promise<LineClient> {
    const i = addr.lastIndexOf(':');
    const socket = net.connect({ host: addr.slice(0, i), port: Number(addr.slice(i + 1)), localAddress });
    await withTimeout(new Promise((resolve, reject) => socket.once('connect', resolve).once('error', reject)), 10_000, `connect to ${addr}`);
    return new LineClient(socket, socket);
  }

  /** The socket, when this client is one. */
  get socket(): net.Socket {
    if (!(this.input instanceof net.Socket)) throw new TypeError('not a socket client');
    return this.input;
  }

  /** Sends `line` and "\n". */
  send(line: string): void {
    this.output.write(`${line}\n`);
  }

  /**
   * Resolves with the first line at index `from` or later that matches, waiting for it at most
   * `ms`; rejects naming `what` (and the last lines seen) if it does not come or input ends first.
   */
  async waitFor(match: RegExp, what: string, from = 0, ms = 10_000): Promise<string> {
    const found = (): string | undefined => this.lines.slice(from).find((l) => match.test(l));
    let wake = (): void => {};
    const waiter = (): void => wake();
    this.waiters.add(waiter);
    try {
      return await withTimeout((async () => {
        let ended = false;
        void this.ended.then(() => { ended = true; });
        for (;;) {
          const line = found();
          if (line !== undefined) return line;
          if (ended) throw new Error(`ended without ${what}; last lines: ${JSON.stringify(this.lines.slice(-5))}`);
          await new Promise<void>((resolve) => { wake = resolve; });
        }
      })(), ms, `${what} (last lines: ${JSON.stringify(this.lines.slice(-5))})`);
    } finally {
      this.waiters.delete(waiter);
    }
  }
}
