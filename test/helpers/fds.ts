// File-descriptor helpers: the process's fd limit, filling low fd numbers, listing sockets.
import * as fs from 'node:fs';

/** The soft limit on open files, from /proc (Linux); Infinity where it cannot be read. */
export function openFileLimit(): number {
  try {
    const line = fs.readFileSync('/proc/self/limits', 'utf8').split('\n').find((l) => l.startsWith('Max open files'));
    const soft = line?.split(/\s+/)[3];
    if (soft === undefined || soft === 'unlimited') return Infinity;
    return Number(soft);
  } catch {
    return Infinity;
  }
}

/**
 * Opens /dev/null until the fd it returns is at least `above`, so every lower fd number
 * is taken and new sockets get numbers above it. Appends the fds to `held`; bounded by
 * `above` + 100 opens.
 */
export function fillFdsBelow(above: number, held: number[]): void {
  for (let i = 0; i < above + 100; i++) {
    const fd = fs.openSync('/dev/null', 'r');
    held.push(fd);
    if (fd >= above) return;
  }
  throw new Error(`could not reach fd ${above}`);
}

/** The socket fds the process has open (Linux /proc/self/fd), or null where unavailable. */
export function socketFds(): Set<number> | null {
  // Under wine, /proc/self/fd is the Linux process's table behind Windows' handles.
  if (process.platform === 'win32') return null;
  let names: string[];
  try {
    names = fs.readdirSync('/proc/self/fd');
  } catch {
    return null;
  }
  const out = new Set<number>();
  for (const name of names) {
    try {
      if (fs.readlinkSync(`/proc/self/fd/${name}`).startsWith('socket:')) out.add(Number(name));
    } catch {
      // closed between readdir and readlink
    }
  }
  return out;
}

/**
 * Waits (bounded by `ms`) until every socket not in `before` is closed, and returns the
 * ones still open: closes are deferred to the end of a batch, and on threaded backends
 * until the helper thread lets go, so a leak check has to give them a moment.
 */
export async function socketsLeftOpen(before: Set<number>, ms = 3000): Promise<number[]> {
  const until = Date.now() + ms;
  for (;;) {
    const now = socketFds();
    const left = now === null ? [] : [...now].filter((fd) => !before.has(fd));
    if (left.length === 0 || Date.now() >= until) return left;
    await new Promise((resolve) => setTimeout(resolve, 10));
  }
}
