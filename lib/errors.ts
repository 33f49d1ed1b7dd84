// The errors muxnet rejects and throws with: Go's net.OpError shape with Node's codes.
import { constants } from 'node:os';
import { getSystemErrorMap } from 'node:util';
import type { Addr } from './addr';

/**
 * The addon's errors, -errno in the C runtime's numbering, to [code, message, Node's errno].
 * On Linux and macOS libuv's codes are those numbers; on Windows libuv has its own
 * (UV_ECONNREFUSED is -4078 where the C runtime's ECONNREFUSED is 107), so the entries are
 * keyed by name through `os.constants.errno`, and `errno` is what Node reports there.
 */
const systemErrors = new Map<number, [string, string, number]>();
for (const [uvErrno, [name, message]] of getSystemErrorMap()) {
  const crt = (constants.errno as Record<string, number | undefined>)[name];
  const key = crt !== undefined ? -crt : uvErrno;
  if (!systemErrors.has(key)) systemErrors.set(key, [name, message, uvErrno]);
}
// Windows' libuv has no EOPNOTSUPP (the C runtime's is 130, beside ENOTSUP's 129): the addon's
// -EOPNOTSUPP reads as ENOTSUP there, as it does on Linux, where the two are one number.
const opNotSupported = (constants.errno as Record<string, number | undefined>).EOPNOTSUPP;
const notSupported = (constants.errno as Record<string, number | undefined>).ENOTSUP;
if (opNotSupported !== undefined && notSupported !== undefined && !systemErrors.has(-opNotSupported)) {
  const entry = systemErrors.get(-notSupported);
  if (entry !== undefined) systemErrors.set(-opNotSupported, entry);
}

/** Negative errno values the TypeScript layer branches on. */
export const EAGAIN = -constants.errno.EAGAIN;
export const EINPROGRESS = -constants.errno.EINPROGRESS;
export const ENOBUFS = -constants.errno.ENOBUFS;
export const ENOENT = -constants.errno.ENOENT;
export const EINVAL = -constants.errno.EINVAL;
export const EBADF = -constants.errno.EBADF;
export const EPIPE = -constants.errno.EPIPE;
export const EMFILE = -constants.errno.EMFILE;
export const ENFILE = -constants.errno.ENFILE;
export const EMSGSIZE = -constants.errno.EMSGSIZE;
export const EBUSY = -constants.errno.EBUSY;
export const EFAULT = -constants.errno.EFAULT;

/** A user's bad value for an error message: JSON where possible, never a throw of its own. */
export function describeValue(value: unknown): string {
  try {
    return JSON.stringify(value) ?? String(value);
  } catch {
    return typeof value;  // a BigInt, a cycle
  }
}

/** The ordinary `instanceof`, before a class overrides Symbol.hasInstance. */
function isOwnInstance(cls: Function, value: unknown): boolean {
  return Function.prototype[Symbol.hasInstance].call(cls, value);
}

/** Walks `err.err` / `err.cause` like Go's errors.Is walks Unwrap. */
function unwrapChain(value: unknown, cls: Function): boolean {
  let current: unknown = value;
  for (let depth = 0; depth < 8 && current !== null && typeof current === 'object'; depth++) {
    if (isOwnInstance(cls, current)) return true;
    const next: unknown = (current as { err?: unknown }).err ?? (current as { cause?: unknown }).cause;
    if (next === current) break;
    current = next;
  }
  return false;
}

/**
 * Go's `net.ErrClosed`: the connection or listener was closed ("use of closed network
 * connection"). `x instanceof ErrClosed` is also true for an {@link OpError} wrapping one,
 * like `errors.Is(err, net.ErrClosed)`.
 */
export class ErrClosed extends Error {
  /** 'ERR_CLOSED'. */
  readonly code = 'ERR_CLOSED';
  constructor() {
    super('use of closed network connection');
    this.name = 'ErrClosed';
  }
  /** `instanceof ErrClosed`: true for an ErrClosed, or an error whose cause chain holds one. */
  static [Symbol.hasInstance](value: unknown): boolean {
    return unwrapChain(value, ErrClosed);
  }
}

/**
 * Go's `os.ErrDeadlineExceeded`: a deadline passed ("i/o timeout"); `timeout()` is true.
 * `instanceof` sees through {@link OpError} like {@link ErrClosed}.
 */
export class ErrDeadlineExceeded extends Error {
  /** 'ETIMEDOUT', as Node reports a timed-out socket. */
  readonly code = 'ETIMEDOUT';
  constructor() {
    super('i/o timeout');
    this.name = 'ErrDeadlineExceeded';
  }
  /** Always true. */
  timeout(): boolean {
    return true;
  }
  /** `instanceof ErrDeadlineExceeded`: true for one, or an error whose cause chain holds one. */
  static [Symbol.hasInstance](value: unknown): boolean {
    return unwrapChain(value, ErrDeadlineExceeded);
  }
}

/** An error from the operating system, shaped like Node's: `code`, `errno`, `syscall`. */
export class SystemError extends Error {
  /** Node's name for the errno, e.g. 'ECONNREFUSED'. */
  readonly code: string;
  /** The negative errno, as Node reports it. */
  readonly errno: number;
  /** The system call that failed, e.g. 'connect'. */
  readonly syscall: string;
  constructor(errno: number, syscall: string) {
    const [code, message, nodeErrno] =
      systemErrors.get(errno) ?? [`Unknown system error ${errno}`, 'unknown error', errno];
    super(`${syscall}: ${message}`);
    this.name = 'SystemError';
    this.code = code;
    this.errno = nodeErrno;
    this.syscall = syscall;
  }
}

/**
 * Go's `net.OpError`: which operation failed, on which network and addresses, and why.
 * `code` and `errno` are copied from the cause so Node-style checks work directly.
 */
export class OpError extends Error {
  /** 'dial', 'listen', 'accept', 'read', 'write', 'close' or 'set'. */
  readonly op: string;
  /** 'tcp', 'tcp4' or 'tcp6'. */
  readonly net: string;
  /** The local address, where known. */
  readonly source?: Addr;
  /** The remote address (for a listener: its own address). */
  readonly addr?: Addr;
  /** The cause: a {@link SystemError}, {@link ErrClosed} or {@link ErrDeadlineExceeded}. */
  readonly err: Error;
  /** The cause's `code` ('ECONNREFUSED', 'ERR_CLOSED', …), or 'ERR_UNKNOWN'. */
  readonly code: string;
  /** The cause's negative errno, when it is a {@link SystemError}. */
  readonly errno?: number;

  constructor(op: string, net: string, err: Error, source?: Addr, addr?: Addr) {
    let where = '';
    if (source !== undefined && addr !== undefined) where = ` ${source}->${addr}`;
    else if (addr !== undefined) where = ` ${addr}`;
    else if (source !== undefined) where = ` ${source}`;
    super(`${op} ${net}${where}: ${err.message}`, { cause: err });
    this.name = 'OpError';
    this.op = op;
    this.net = net;
    this.source = source;
    this.addr = addr;
    this.err = err;
    this.code = (err as { code?: string }).code ?? 'ERR_UNKNOWN';
    const errno = (err as { errno?: number }).errno;
    if (errno !== undefined) this.errno = errno;
  }

  /** True when the operation timed out (a deadline or a dial timeout). */
  timeout(): boolean {
    return this.err instanceof ErrDeadlineExceeded || this.code === 'ETIMEDOUT';
  }

  /** True for errors that may go away by themselves (descriptor or memory exhaustion). */
  temporary(): boolean {
    return this.timeout() || ['EMFILE', 'ENFILE', 'ENOBUFS', 'ENOMEM', 'EAGAIN'].includes(this.code);
  }
}

/** Go's `errors.Is` for muxnet's sentinel errors: true when `err` is or wraps `target`. */
export function errorIs(err: unknown, target: typeof ErrClosed | typeof ErrDeadlineExceeded): boolean {
  return unwrapChain(err, target);
}

/** Builds the OpError for a negative errno returned by the addon. */
export function opErrorFromErrno(op: string, net: string, errno: number, syscall: string,
                                 source?: Addr, addr?: Addr): OpError {
  return new OpError(op, net, new SystemError(errno, syscall), source, addr);
}
