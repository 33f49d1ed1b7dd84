// Connection limits of a listener: how many at once, how many per client IP, how fast, and from where.
import { BlockList, isIP } from 'node:net';
import { describeValue } from './errors';
import type { Loop } from './loop';

/** Why a listener refused a connection (the keys of `stats().refused`). */
export type RefusedReason = 'maxConnections' | 'maxConnectionsPerIP' | 'acceptRate' | 'blocked';

/** What {@link ConnectionLimits.onRefused} is told about a refused connection. */
export interface RefusedConnection {
  /** Which limit refused it. */
  reason: RefusedReason;
  /** The client's IP address ('' for a Unix socket's peer, or when it could not be read). */
  remoteAddress: string;
  /** The client's port (0 when unknown). */
  remotePort: number;
}

/** A token bucket for {@link ConnectionLimits.acceptRate}. */
export interface AcceptRate {
  /** Connections admitted per second on average (fractions allowed: 0.5 is one per 2 s). */
  perSecond: number;
  /** Connections that may arrive at once; default `perSecond` (at least 1). */
  burst?: number;
}

/**
 * Limits on the connections a listener takes (`listen(..., { limits })`). A connection over
 * a limit is closed at once (never parked), counted in `stats()[i].refused` by reason, and
 * reported to `onRefused`. Limits apply to every way of taking connections: `accept()`,
 * `for await`, `serve()` and `serveNode()`.
 */
export interface ConnectionLimits {
  /** Connections from this listener open at once (accepted and not yet closed). */
  maxConnections?: number;
  /** Connections open at once from one client IP address. TCP only. */
  maxConnectionsPerIP?: number;
  /**
   * New connections per second, as a token bucket: `burst` (default: `perSecond`, at least
   * 1) may arrive at once, then `perSecond` on average.
   */
  acceptRate?: AcceptRate;
  /** Clients refused: addresses, ranges and subnets in a Node `net.BlockList`. TCP only. */
  blockList?: BlockList;
  /** If set, only clients in this `net.BlockList` are admitted. TCP only. */
  allowList?: BlockList;
  /** Told about each refused connection, after it was closed. */
  onRefused?: (refused: RefusedConnection) => void;
}

function checkCount(name: string, value: unknown): number | undefined {
  if (value === undefined) return undefined;
  if (typeof value !== 'number' || !Number.isInteger(value) || value < 1) {
    throw new RangeError(`options.limits.${name}: expected an integer of at least 1, got ${describeValue(value)}`);
  }
  return value;
}

function checkBlockList(name: string, value: unknown): BlockList | undefined {
  if (value === undefined) return undefined;
  if (!(value instanceof BlockList)) {
    throw new TypeError(`options.limits.${name}: expected a net.BlockList, got ${describeValue(value)}`);
  }
  return value;
}

/**
 * Checks `listen()`'s `limits` option; undefined when there is nothing to enforce.
 * @internal
 */
export function checkLimits(value: unknown, network: string): Limiter | undefined {
  if (value === undefined) return undefined;
  if (value === null || typeof value !== 'object') {
    throw new TypeError(`options.limits: expected an object, got ${describeValue(value)}`);
  }
  const v = value as ConnectionLimits;
  const maxConnections = checkCount('maxConnections', v.maxConnections);
  const maxPerIP = checkCount('maxConnectionsPerIP', v.maxConnectionsPerIP);
  const blockList = checkBlockList('blockList', v.blockList);
  const allowList = checkBlockList('allowList', v.allowList);
  let rate: { perSecond: number; burst: number } | undefined;
  if (v.acceptRate !== undefined) {
    const r = v.acceptRate;
    if (r === null || typeof r !== 'object') {
      throw new TypeError(`options.limits.acceptRate: expected { perSecond, burst? }, got ${describeValue(r)}`);
    }
    if (typeof r.perSecond !== 'number' || !(r.perSecond > 0) || !Number.isFinite(r.perSecond)) {
      throw new RangeError(`options.limits.acceptRate.perSecond: expected a number above 0, got ${describeValue(r.perSecond)}`);
    }
    const burst = r.burst === undefined ? Math.max(1, Math.floor(r.perSecond)) : r.burst;
    if (typeof burst !== 'number' || !Number.isInteger(burst) || burst < 1) {
      throw new RangeError(`options.limits.acceptRate.burst: expected an integer of at least 1, got ${describeValue(r.burst)}`);
    }
    rate = { perSecond: r.perSecond, burst };
  }
  if (v.onRefused !== undefined && typeof v.onRefused !== 'function') {
    throw new TypeError(`options.limits.onRefused: expected a function, got ${describeValue(v.onRefused)}`);
  }
  if (network === 'unix') {
    const byAddress = maxPerIP !== undefined ? 'maxConnectionsPerIP' : blockList !== undefined ? 'blockList'
      : allowList !== undefined ? 'allowList' : '';
    if (byAddress !== '') throw new TypeError(`options.limits.${byAddress}: a Unix listener's clients have no IP address`);
  }
  if (maxConnections === undefined && maxPerIP === undefined && rate === undefined && blockList === undefined &&
      allowList === undefined) {
    return undefined;
  }
  return new Limiter(maxConnections ?? Infinity, maxPerIP, rate, blockList, allowList, v.onRefused);
}

/**
 * Enforces a listener's {@link ConnectionLimits}: asked before each accepted socket becomes a
 * connection, and told (through the loop's close hooks) when an admitted one closes.
 * @internal
 */
export class Limiter {
  private open = 0;
  private readonly perIP: Map<string, number> | null;
  private tokens: number;
  private refilledAt = 0;

  constructor(
    private readonly maxConnections: number,
    private readonly maxPerIP: number | undefined,
    private readonly rate: { perSecond: number; burst: number } | undefined,
    private readonly blockList: BlockList | undefined,
    private readonly allowList: BlockList | undefined,
    private readonly onRefused: ((refused: RefusedConnection) => void) | undefined,
  ) {
    this.perIP = maxPerIP === undefined ? null : new Map();
    this.tokens = rate?.burst ?? 0;
  }

  /**
   * Admits accepted socket `id` of `loop` (and tracks it until it closes), or closes it and
   * counts why. True when admitted.
   */
  admit(loop: Loop, id: number): boolean {
    const byAddress = this.perIP !== null || this.blockList !== undefined || this.allowList !== undefined;
    let ip = '';
    let port = 0;
    if (byAddress || this.onRefused !== undefined) {
      const peer = loop.native.addr(id, true);
      if (typeof peer !== 'number') [ip, port] = peer;
    }
    const reason = this.check(ip, byAddress);
    if (reason !== null) {
      loop.native.close(id);
      loop.countRefused(reason);
      this.onRefused?.({ reason, remoteAddress: ip, remotePort: port });
      return false;
    }
    this.open++;
    if (this.perIP !== null) this.perIP.set(ip, (this.perIP.get(ip) ?? 0) + 1);
    loop.onClose(id, () => this.closed(ip));
    return true;
  }

  private check(ip: string, byAddress: boolean): RefusedReason | null {
    if (byAddress && ip !== '') {
      const family = isIP(ip) === 6 ? 'ipv6' : 'ipv4';
      if (this.blockList?.check(ip, family) === true) return 'blocked';
      if (this.allowList !== undefined && !this.allowList.check(ip, family)) return 'blocked';
    }
    if (this.open >= this.maxConnections) return 'maxConnections';
    if (this.perIP !== null && (this.perIP.get(ip) ?? 0) >= this.maxPerIP!) return 'maxConnectionsPerIP';
    // The bucket is checked last, so a connection refused for another reason costs no token.
    if (this.rate !== undefined && !this.take(this.rate)) return 'acceptRate';
    return null;
  }

  private take(rate: { perSecond: number; burst: number }): boolean {
    const now = performance.now();
    if (this.refilledAt !== 0) {
      this.tokens = Math.min(rate.burst, this.tokens + (now - this.refilledAt) * rate.perSecond / 1000);
    }
    this.refilledAt = now;
    if (this.tokens < 1) return false;
    this.tokens--;
    return true;
  }

  private closed(ip: string): void {
    this.open--;
    if (this.perIP !== null) {
      const n = this.perIP.get(ip)! - 1;
      if (n === 0) this.perIP.delete(ip);
      else this.perIP.set(ip, n);
    }
  }
}
