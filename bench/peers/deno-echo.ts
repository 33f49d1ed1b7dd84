// Peer echo server for the benchmark on Deno's sockets (Deno.listen, conn.read/write), the
// same Go-style loop as muxnet's: `deno run --allow-net deno-echo.ts`.
// Prints {"port","pid"} once listening, as bench/servers/* do; exits when stdin closes.
declare const Deno: any;  // type-checked by Deno, not by the project's tsc (bench/tsconfig.json excludes peers/)

async function serve(conn: any): Promise<void> {
  conn.setNoDelay(true);
  const buf = new Uint8Array(64 * 1024);
  try {
    for (;;) {
      const n: number | null = await conn.read(buf);
      if (n === null) break;
      // write() may take part of the data: loop until all of it is written, as Go's Write does.
      for (let done = 0; done < n;) done += await conn.write(buf.subarray(done, n));
    }
  } catch {
    // a reset at the end of a run
  }
  try { conn.close(); } catch { /* closed already */ }
}

const listener = Deno.listen({ hostname: '127.0.0.1', port: 0 });
await Deno.stdout.write(new TextEncoder().encode(`${JSON.stringify({ port: listener.addr.port, pid: Deno.pid })}\n`));
(async () => {
  for await (const _ of Deno.stdin.readable) { /* the harness's lines are not for peers */ }
  Deno.exit(0);
})();
for await (const conn of listener) void serve(conn);
