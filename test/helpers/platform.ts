// Which platform the tests run on (Windows, Windows under wine), and skips that say why.
import { spawnSync } from 'node:child_process';

/** Windows: no Unix sockets, descriptor passing, splice, /proc or TCP_INFO in muxnet there. */
export const onWindows = process.platform === 'win32';

let wine: boolean | undefined;

/**
 * Windows Node running under wine (not Windows itself): scripts/test-windows-mocha.sh sets
 * `MUXNET_UNDER_WINE=1`; otherwise wine's own registry key, HKLM\Software\Wine, tells.
 */
export function underWine(): boolean {
  if (wine === undefined) {
    if (!onWindows) wine = false;
    else if (process.env.MUXNET_UNDER_WINE !== undefined) wine = process.env.MUXNET_UNDER_WINE === '1';
    else wine = spawnSync('reg', ['query', 'HKLM\\Software\\Wine'], { stdio: 'ignore', timeout: 20_000 }).status === 0;
  }
  return wine;
}

/**
 * Skips the running test, or every test of the suite when called in a `before` hook, if
 * `condition` holds; the reason goes into the title, so the report says why.
 */
export function skipIf(ctx: Mocha.Context, condition: boolean, reason: string): void {
  if (!condition) return;
  const runnable = ctx.test as (Mocha.Runnable & { type?: string }) | undefined;
  const target = runnable?.type === 'hook' ? runnable.parent : runnable;
  if (target !== undefined) target.title += ` (skipped: ${reason})`;
  ctx.skip();
}

/**
 * Adds a `before` hook to the current describe that skips all its tests on Windows, with the
 * reason; call it first in the describe body.
 */
export function skipSuiteOnWindows(reason: string): void {
  before(function () {
    skipIf(this, onWindows, reason);
  });
}

/**
 * Why reset tests skip under wine. Observed with wine 8 (Debian bookworm): after the peer
 * resets, select reports the socket readable and a non-blocking recv returns 0 (EOF) instead of
 * failing with WSAECONNRESET, while Node's own net (overlapped WSARecv) sees ECONNRESET in the
 * same wine. Windows itself fails the recv.
 */
export const wineResetIsEof =
  'wine 8: after a peer reset, select reports the socket readable and recv returns 0 (EOF), not WSAECONNRESET';
