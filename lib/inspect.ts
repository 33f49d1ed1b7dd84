// Seeing every socket of this thread: an `ss`-like listing and per-loop counters.
import type { LoopStats, SocketInfo } from './info';
import { allLoops } from './loop';

/**
 * muxnet's live sockets on this thread (each worker has its own), listeners and
 * connections, in the spirit of `ss`. A connection that cannot be inspected any more (reset
 * between listing and reading) is left out.
 */
export function connections(): SocketInfo[] {
  const out: SocketInfo[] = [];
  for (const loop of allLoops()) {
    loop.forEachHandle((h) => {
      const info = h._describe();
      if (info !== undefined) {
        const { kind, network, local, remote, state, backend, bytesRead, bytesWritten, age } = info;
        out.push({ kind, network, local, remote, state, backend, bytesRead, bytesWritten, age });
      }
    });
  }
  return out;
}

/** Counters of every loop on this thread. */
export function stats(): LoopStats[] {
  return allLoops().map((loop) => loop.stats());
}
