// Peer echo server for the benchmark on Bun's own sockets (Bun.listen): `bun bun-echo.ts`.
// Prints {"port","pid"} once listening, as bench/servers/* do; exits when stdin closes.
declare const Bun: any;  // type-checked by Bun, not by the project's tsc (bench/tsconfig.json excludes peers/)

const server = Bun.listen({
  hostname: '127.0.0.1',
  port: 0,
  socket: {
    open(socket: any) { socket.setNoDelay?.(true); },
    // write() returns the bytes taken; the rest waits in the socket's pending data until drain.
    data(socket: any, data: Uint8Array) {
      const n = socket.write(data);
      if (n < data.length) socket.data = data.subarray(n);
    },
    drain(socket: any) {
      const rest: Uint8Array | undefined = socket.data;
      if (rest === undefined) return;
      const n = socket.write(rest);
      socket.data = n < rest.length ? rest.subarray(n) : undefined;
    },
    error() {},  // a reset at the end of a run
  },
});
process.stdout.write(`${JSON.stringify({ port: server.port, pid: process.pid })}\n`);
process.stdin.on('data', () => {});
process.stdin.on('end', () => process.exit(0));
