// RPC client for rpc/server.ts: many calls pipelined over one connection, each reply matched to
// its call by id (replies come back in any order), a timeout per call. Go's rpc.Client.Go.
//   npx tsc -p examples/tsconfig.json && node .test-build/examples/rpc/client.js <host:port> <method> [params as JSON]
import { dial, type Conn } from 'muxnet';
import { encodeFrame, frames } from './frame';

/** A call the server answered with an error (the connection stays usable). */
export class RpcError extends Error {}

interface Pending { resolve: (value: unknown) => void; reject: (err: Error) => void; timer: NodeJS.Timeout }

/** One connection to an RPC server; calls may be made concurrently. */
export class RpcClient {
  private nextId = 1;
  private readonly pending = new Map<number, Pending>();
  private failure: Error | null = null;

  private constructor(private readonly conn: Conn) {
    void this.readReplies();
  }

  /** Connects to the server at `address` ("host:port"). */
  static async dial(address: string): Promise<RpcClient> {
    return new RpcClient(await dial('tcp', address, { timeout: 5000 }));
  }

  /**
   * Calls `method` with `params`: resolves with its result, rejects with an {@link RpcError}
   * if the server answered with an error, or with an Error after `timeout` ms (the late reply,
   * if it comes, is dropped) or when the connection fails.
   */
  call(method: string, params?: unknown, { timeout = 5000 } = {}): Promise<unknown> {
    if (this.failure !== null) return Promise.reject(this.failure);
    const id = this.nextId;
    this.nextId = this.nextId === 0xffffffff ? 1 : this.nextId + 1;
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => {
        this.pending.delete(id);
        reject(new Error(`${method}: no reply within ${timeout} ms`));
      }, timeout);
      this.pending.set(id, { resolve, reject, timer });
      // Written at once, not after earlier replies: that is the pipelining.
      this.conn.write(encodeFrame(id, { method, params })).catch((err: Error) => this.settle(id, null, err));
    });
  }

  /** Closes the connection; calls still waiting reject. */
  close(): void {
    this.conn.close();
  }

  private settle(id: number, reply: { result?: unknown; error?: string } | null, err?: Error): void {
    const p = this.pending.get(id);
    if (p === undefined) return;  // timed out already: a late reply is dropped
    this.pending.delete(id);
    clearTimeout(p.timer);
    if (err !== undefined) p.reject(err);
    else if (typeof reply?.error === 'string') p.reject(new RpcError(reply.error));
    else p.resolve(reply?.result);
  }

  private async readReplies(): Promise<void> {
    try {
      for await (const { id, message } of frames(this.conn)) this.settle(id, message as { result?: unknown; error?: string });
      this.failure = new Error('connection closed by the server');
    } catch (err) {
      this.failure = err as Error;
    }
    for (const id of [...this.pending.keys()]) this.settle(id, null, this.failure);
  }
}

async function main(): Promise<void> {
  const [address, method, params] = process.argv.slice(2);
  if (address === undefined || method === undefined) {
    console.error('usage: rpc/client.js <host:port> <method> [params as JSON]');
    process.exit(2);
  }
  const client = await RpcClient.dial(address);
  try {
    console.log(JSON.stringify(await client.call(method, params === undefined ? undefined : JSON.parse(params))));
  } catch (err) {
    console.error((err as Error).message);
    process.exitCode = 1;
  } finally {
    client.close();
  }
}

if (require.main === module) void main();
