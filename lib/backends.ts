// Which multiplexing backends exist, what each can do, which one is the default, and how options pick one.
import { describeValue, SystemError } from './errors';
import { native } from './load';

/** Options that choose the loop a listener or connection runs on. */
export interface LoopOptions {
  /**
   * 'epoll', 'io_uring', 'poll' or 'select' on Linux, 'afd' or 'select' on Windows (see
   * {@link backends}); default: `MUXNET_BACKEND` or the first.
   */
  backend?: string;
  /**
   * 'level' (default) or 'edge'. 'edge' needs a backend with edge-triggered readiness
   * ({@link BackendCapabilities.edge}: epoll's EPOLLET).
   */
  trigger?: 'level' | 'edge';
  /**
   * 'inline': the backend's descriptor is watched from Node's own loop; needs a backend with a
   * pollable descriptor ({@link BackendCapabilities.pollable}: epoll) and is the default there.
   * 'thread': the wait runs on a helper thread that hands each ready set to the JS thread in one
   * batch (the default, and the only mode, for backends without one: select, poll and afd).
   * io_uring runs inline only ({@link BackendCapabilities.inlineOnly}).
   */
  mode?: 'inline' | 'thread';
}

/** Loop options after validation and defaults. */
export interface ResolvedLoopOptions {
  backend: string;
  edge: boolean;
  threaded: boolean;
  key: string;
}

/**
 * What a compiled backend can do, as its native implementation reports it (`PollerCaps` in
 * native/core/poller.h). The loop options a backend accepts follow from these.
 */
export interface BackendCapabilities {
  /** Edge-triggered readiness: `trigger: 'edge'` is accepted (epoll). */
  readonly edge: boolean;
  /**
   * The backend has one descriptor Node's own loop can watch: `mode: 'inline'` is accepted and
   * is the default (epoll). Without it the wait runs on a helper thread (select, poll, afd).
   */
  readonly pollable: boolean;
  /**
   * The backend does the I/O itself and reports completions instead of readiness (the model of
   * io_uring and IOCP): on io_uring, stream reads are receives the kernel completes into pool
   * chunks it picks from a buffer ring, writes are sends from the caller's memory and accepts
   * are the kernel's (readiness still drives connect, `sendFile()` and datagrams).
   */
  readonly completion: boolean;
  /**
   * The backend's wait runs only on the thread that made it: `mode: 'thread'` is refused
   * (io_uring: the ring is made SINGLE_ISSUER, one thread submits and reaps).
   */
  readonly inlineOnly: boolean;
}

const capsCache = new Map<string, BackendCapabilities>();

/**
 * The backends compiled into this build, default first: e.g. `['epoll', 'poll', 'select']`.
 * `MUXNET_BACKEND` in the environment moves the named one to the front.
 */
export function backends(): string[] {
  const names = native().backends();
  const preferred = process.env.MUXNET_BACKEND;
  if (preferred === undefined || preferred === '') return names;
  if (!names.includes(preferred)) {
    throw new RangeError(
      `MUXNET_BACKEND: expected one of ${names.join(', ')}, got ${JSON.stringify(preferred)}` +
      whyUnavailable(preferred),
    );
  }
  return [preferred, ...names.filter((n) => n !== preferred)];
}

/**
 * What the named backend can do: edge-triggered readiness, a descriptor Node's loop can watch
 * (inline mode), completion-based I/O. Useful to compare the models side by side:
 *
 * ```ts
 * for (const name of backends()) console.log(name, backendCapabilities(name));
 * // epoll { edge: true, pollable: true, completion: false } ...
 * ```
 *
 * Returns a frozen object; throws RangeError when `name` is not one of {@link backends}, and
 * SystemError when the backend cannot be created to ask (e.g. EMFILE).
 */
export function backendCapabilities(name: string): BackendCapabilities {
  const cached = typeof name === 'string' ? capsCache.get(name) : undefined;
  if (cached) return cached;
  const names = native().backends();
  if (typeof name !== 'string' || !names.includes(name)) {
    throw new RangeError(`name: expected one of ${names.join(', ')}, got ${describeValue(name)}`);
  }
  const got = native().capabilities(name);
  // The addon asks a freshly created backend, so this can fail as creating a loop can
  // (EMFILE); the answer is cached, so it fails at most until the first success.
  if (typeof got === 'number') throw new SystemError(got, `${name} capabilities`);
  const caps: BackendCapabilities = Object.freeze({
    edge: got.edge === true,
    pollable: got.pollable === true,
    completion: got.completion === true,
    inlineOnly: got.inlineOnly === true,
  });
  capsCache.set(name, caps);
  return caps;
}

/**
 * The backends compiled into this build that cannot run on this machine, with the reason:
 * e.g. `{ io_uring: 'io_uring is disabled by the sysctl kernel.io_uring_disabled=2' }` (a
 * kernel before 6.0, the sysctl, or a seccomp filter such as Docker's default profile).
 * {@link backends} leaves them out.
 */
export function unavailableBackends(): Record<string, string> {
  return { ...native().unavailable() };
}

/** ": <name> is compiled in but cannot run here: <why>", or "" (for error messages). */
function whyUnavailable(name: unknown): string {
  const why = typeof name === 'string' ? native().unavailable()[name] : undefined;
  return why === undefined ? '' : ` (${name} cannot run here: ${why})`;
}

/** The compiled backends that have a capability, for error messages ("none" when none has it). */
function backendsWith(names: string[], has: (caps: BackendCapabilities) => boolean): string {
  const found = names.filter((n) => has(backendCapabilities(n)));
  return found.length > 0 ? found.join(', ') : 'none in this build';
}

/** Validates the loop options of listen/dial; throws TypeError/RangeError naming the option. */
export function resolveLoopOptions(options: LoopOptions): ResolvedLoopOptions {
  const names = backends();
  const backend = options.backend ?? names[0];
  if (typeof backend !== 'string' || !names.includes(backend)) {
    throw new RangeError(
      `options.backend: expected one of ${names.join(', ')}, got ${describeValue(backend)}${whyUnavailable(backend)}`,
    );
  }
  const caps = backendCapabilities(backend);
  const trigger = options.trigger ?? 'level';
  if (trigger !== 'level' && trigger !== 'edge') {
    throw new RangeError(`options.trigger: expected 'level' or 'edge', got ${describeValue(trigger)}`);
  }
  if (trigger === 'edge' && !caps.edge) {
    throw new RangeError(
      `options.trigger: 'edge' needs a backend with edge-triggered readiness ` +
      `(${backendsWith(names, (c) => c.edge)}), not ${backend}`,
    );
  }
  const mode = options.mode ?? (caps.pollable ? 'inline' : 'thread');
  if (mode !== 'inline' && mode !== 'thread') {
    throw new RangeError(`options.mode: expected 'inline' or 'thread', got ${describeValue(mode)}`);
  }
  if (mode === 'inline' && !caps.pollable) {
    throw new RangeError(
      `options.mode: 'inline' needs a backend with a pollable descriptor ` +
      `(${backendsWith(names, (c) => c.pollable)}), not ${backend}`,
    );
  }
  if (mode === 'thread' && caps.inlineOnly) {
    throw new RangeError(
      `options.mode: 'thread' is not possible with ${backend}: its wait runs only on the thread ` +
      `that made it; use mode 'inline'`,
    );
  }
  const edge = trigger === 'edge';
  const threaded = mode === 'thread';
  return { backend, edge, threaded, key: `${backend}:${trigger}:${mode}` };
}
