// Assertions for muxnet's error shapes: ErrClosed, ErrDeadlineExceeded, argument errors.
import assert from 'node:assert/strict';
import { ErrClosed, ErrDeadlineExceeded, OpError, errorIs } from 'muxnet';
import { describeError } from './util';

/** `err` is (or wraps, as OpError.err) ErrClosed, seen the three ways users test it. */
export function assertErrClosed(err: unknown, op?: string): void {
  assert.ok(err instanceof Error, `expected an Error, got ${describeError(err)}`);
  assert.ok(err instanceof ErrClosed, `expected ErrClosed, got ${describeError(err)}`);
  assert.ok(errorIs(err, ErrClosed), `errorIs(err, ErrClosed) is false for ${describeError(err)}`);
  assert.equal(errorIs(err, ErrDeadlineExceeded), false, 'ErrClosed must not match ErrDeadlineExceeded');
  assert.equal((err as { code?: string }).code, 'ERR_CLOSED');
  if (err instanceof OpError) {
    assert.ok(err.err instanceof ErrClosed, 'OpError.err should be the ErrClosed');
    if (op !== undefined) assert.equal(err.op, op);
  }
}

/** `err` is (or wraps) ErrDeadlineExceeded: timeout() is true, code ETIMEDOUT. */
export function assertDeadlineExceeded(err: unknown, op?: string): void {
  assert.ok(err instanceof Error, `expected an Error, got ${describeError(err)}`);
  assert.ok(err instanceof ErrDeadlineExceeded, `expected ErrDeadlineExceeded, got ${describeError(err)}`);
  assert.ok(errorIs(err, ErrDeadlineExceeded), `errorIs(err, ErrDeadlineExceeded) is false for ${describeError(err)}`);
  assert.equal(errorIs(err, ErrClosed), false, 'a timeout must not match ErrClosed');
  assert.equal((err as { code?: string }).code, 'ETIMEDOUT');
  const timeout = (err as { timeout?: () => boolean }).timeout;
  assert.equal(typeof timeout, 'function', 'a timeout error has a timeout() method');
  assert.equal(timeout!.call(err), true);
  if (err instanceof OpError && op !== undefined) assert.equal(err.op, op);
}

/** `err` is a TypeError or RangeError whose message matches `names` (the argument's name). */
export function assertArgError(err: unknown, names: RegExp): void {
  assert.ok(
    err instanceof TypeError || err instanceof RangeError,
    `expected TypeError or RangeError, got ${describeError(err)}`,
  );
  assert.match((err as Error).message, names);
}

/** Runs `fn` and returns what it threw; fails if it returned normally. */
export function thrownBy(fn: () => unknown): unknown {
  try {
    fn();
  } catch (e) {
    return e;
  }
  assert.fail('expected a throw');
}

/** Awaits `p` and returns its rejection reason; fails if it fulfilled. */
export async function rejectionOf(p: Promise<unknown>): Promise<unknown> {
  try {
    await p;
  } catch (e) {
    return e;
  }
  assert.fail('expected the promise to reject');
}
