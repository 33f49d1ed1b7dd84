// Which multiplexing backends exist, which one is the default, and how options pick one.
import { describeValue } from './errors';
import { native } from './load';

/** Options that choose the loop a listener or connection runs on. */
export interface LoopOptions {
  /** 'epoll', 'poll' or 'select' (see {@link backends}); default: `MUXNET_BACKEND` or the first. */
  backend?: string;
  /** epoll only: 'level' (default) or 'edge' (EPOLLET). */
  trigger?: 'level' | 'edge';
  /**
   * 'inline': the backend's descriptor is watched from Node's own loop (epoll; the default
   * where possible). 'thread': the wait runs on a helper thread that hands each ready set
   * to the JS thread in one batch (select and poll always work this way).
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
 * The backends compiled into this build, default first: e.g. `['epoll', 'poll', 'select']`.
 * `MUXNET_BACKEND` in the environment moves the named one to the front.
 */
export function backends(): string[] {
  const names = native().backends();
  const preferred = process.env.MUXNET_BACKEND;
  if (preferred === undefined || preferred === '') return names;
  if (!names.includes(preferred)) {
    throw new RangeError(`MUXNET_BACKEND: expected one of ${names.join(', ')}, got ${JSON.stringify(preferred)}`);
  }
  return [preferred, ...names.filter((n) => n !== preferred)];
}

/** Validates the loop options of listen/dial; throws TypeError/RangeError naming the option. */
export function resolveLoopOptions(options: LoopOptions): ResolvedLoopOptions {
  const names = backends();
  const backend = options.backend ?? names[0];
  if (typeof backend !== 'string' || !names.includes(backend)) {
    throw new RangeError(`options.backend: expected one of ${names.join(', ')}, got ${describeValue(backend)}`);
  }
  const trigger = options.trigger ?? 'level';
  if (trigger !== 'level' && trigger !== 'edge') {
    throw new RangeError(`options.trigger: expected 'level' or 'edge', got ${describeValue(trigger)}`);
  }
  if (trigger === 'edge' && backend !== 'epoll') {
    throw new RangeError(`options.trigger: 'edge' needs the epoll backend, not ${backend}`);
  }
  const pollable = backend === 'epoll';
  const mode = options.mode ?? (pollable ? 'inline' : 'thread');
  if (mode !== 'inline' && mode !== 'thread') {
    throw new RangeError(`options.mode: expected 'inline' or 'thread', got ${describeValue(mode)}`);
  }
  if (mode === 'inline' && !pollable) {
    throw new RangeError(`options.mode: 'inline' needs a backend with a pollable descriptor (epoll), not ${backend}`);
  }
  const edge = trigger === 'edge';
  const threaded = mode === 'thread';
  return { backend, edge, threaded, key: `${backend}:${trigger}:${mode}` };
}
