// Shared peers: a muxnet echo server, a connected muxnet pair, a Node `net` echo server.
import * as net from 'node:net';
import { dial, listen } from 'muxnet';
import type { Conn, DialOptions, ListenOptions, Listener, Network } from 'muxnet';
import { withTimeout } from './util';

/** A running muxnet echo server. */
export interface EchoServer {
  ln: Listener;
  port: number;
  /** "host:port" to dial. */
  address: string;
  /** The accepted connections that are still being served. */
  conns: Set<Conn>;
  /** Errors other than the expected end of a connection (reset, closed at teardown). */
  errors: unknown[];
  /** Connections accepted so far. */
  accepted(): number;
  /** Settles when the accept loop has ended and every connection's loop has finished. */
  done: Promise<void>;
  /** Closes the listener and every served connection, then waits for `done`. */
  close(): Promise<void>;
}

function isExpectedEnd(e: unknown): boolean {
  const code = (e as { code?: string }).code;
  return code === 'ERR_CLOSED' || code === 'ECONNRESET' || code === 'EPIPE';
}

/** Echoes with conn.read into one buffer and conn.write of what was read, until EOF. */
export async function serveEcho(conn: Conn, errors: unknown[], bufSize = 64 * 1024): Promise<void> {
  const buf = new Uint8Array(bufSize);
  try {
    for (;;) {
      const n = await conn.read(buf);
      if (n === null) break;
      // write resolves once every byte is in the kernel, so buf is free to reuse after.
      await conn.write(buf.subarray(0, n));
    }
  } catch (e) {
    if (!isExpectedEnd(e)) errors.push(e);
  } finally {
    conn.close();
  }
}

/**
 * Starts a muxnet echo server on 127.0.0.1 (or `address`) that accepts with
 * `for await (const c of ln)` and serves each connection with a read/write loop.
 */
export function startEcho(
  options: ListenOptions = {},
  address = '127.0.0.1:0',
  network: Network = 'tcp',
): EchoServer {
  const ln = listen(network, address, options);
  const conns = new Set<Conn>();
  const errors: unknown[] = [];
  const serving: Promise<void>[] = [];
  let accepted = 0;
  const done = (async () => {
    try {
      for await (const c of ln) {
        accepted++;
        conns.add(c);
        serving.push(serveEcho(c, errors).finally(() => conns.delete(c)));
      }
    } finally {
      await Promise.all(serving);
    }
  })();
  // Observed here so an early failure is not an unhandled rejection; close() rethrows it.
  done.catch(() => {});
  const addr = ln.addr();
  return {
    ln,
    port: addr.port,
    address: addr.toString(),
    conns,
    errors,
    accepted: () => accepted,
    done,
    async close() {
      ln.close();
      for (const c of conns) c.close();
      await withTimeout(done, 10_000, 'echo server to stop after close');
    },
  };
}

/** A listener with one accepted connection and its dialed peer. */
export interface Pair {
  ln: Listener;
  client: Conn;
  server: Conn;
  close(): void;
}

/** Listens on 127.0.0.1:0, dials it and accepts: a connected client/server pair. */
export async function connectPair(options: ListenOptions & DialOptions = {}): Promise<Pair> {
  const ln = listen('tcp', '127.0.0.1:0', options);
  try {
    const [server, client] = await withTimeout(
      Promise.all([ln.accept(), dial('tcp', ln.addr().toString(), options)]),
      10_000,
      'connect a pair',
    );
    return {
      ln,
      client,
      server,
      close() {
        client.close();
        server.close();
        ln.close();
      },
    };
  } catch (e) {
    ln.close();
    throw e;
  }
}

/** A Node `net` server and the sockets it accepted. */
export interface NodeServer {
  server: net.Server;
  port: number;
  address: string;
  sockets: Set<net.Socket>;
  close(): Promise<void>;
}

/**
 * Starts a Node `net` server on 127.0.0.1; `onConnection` defaults to echo (pipe to
 * itself, ending our side when the peer ends).
 */
export async function startNodeServer(onConnection?: (s: net.Socket) => void): Promise<NodeServer> {
  const sockets = new Set<net.Socket>();
  const server = net.createServer({ allowHalfOpen: true }, (s) => {
    sockets.add(s);
    s.on('close', () => sockets.delete(s));
    s.on('error', () => {}); // resets at teardown are expected
    if (onConnection) onConnection(s);
    else s.pipe(s);
  });
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => resolve());
  });
  const port = (server.address() as net.AddressInfo).port;
  return {
    server,
    port,
    address: `127.0.0.1:${port}`,
    sockets,
    async close() {
      for (const s of sockets) s.destroy();
      await new Promise<void>((resolve) => server.close(() => resolve()));
    },
  };
}

/** Connects a Node `net` socket to 127.0.0.1:port. */
export async function nodeConnect(port: number, host = '127.0.0.1'): Promise<net.Socket> {
  const s = net.connect({ port, host, allowHalfOpen: true });
  await withTimeout(
    new Promise<void>((resolve, reject) => {
      s.once('connect', () => resolve());
      s.once('error', reject);
    }),
    10_000,
    `node net connect to ${host}:${port}`,
  );
  return s;
}

/** Wraps a Node socket so Resources can close it. */
export function closableSocket(s: net.Socket): { close(): void } {
  return { close: () => s.destroy() };
}

/** A Node `net` echo server on 127.0.0.1 (startNodeServer with its default handler). */
export function startNodeEcho(): Promise<NodeServer> {
  return startNodeServer();
}
