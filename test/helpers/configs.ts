// Loop configurations every I/O test runs under: one per backend, plus the variants its capabilities allow.
import { backendCapabilities, backends } from 'muxnet';

/** One way to run a loop: the options passed to listen/dial, and a name for test titles. */
export interface LoopConfig {
  name: string;
  options: { backend: string; trigger?: 'level' | 'edge'; mode?: 'inline' | 'thread' };
}

/**
 * The configurations to test, from `backends()`: each backend as it comes; a backend with
 * edge-triggered readiness also edge-triggered ('<name>-et', e.g. 'epoll-et'), and a backend
 * whose default is inline (a pollable descriptor) also on a helper thread ('<name>-thread'),
 * unless it runs inline only (io_uring).
 * `MUXNET_TEST_BACKEND=<name>[,<name>...]` keeps only the configs of those names; a name that
 * matches none throws, so a typo cannot turn into a run that tests nothing.
 */
export function loopConfigs(): LoopConfig[] {
  const all: LoopConfig[] = [];
  for (const b of backends()) {
    all.push({ name: b, options: { backend: b } });
    const caps = backendCapabilities(b);
    if (caps.edge) all.push({ name: `${b}-et`, options: { backend: b, trigger: 'edge' } });
    if (caps.pollable && !caps.inlineOnly) all.push({ name: `${b}-thread`, options: { backend: b, mode: 'thread' } });
  }
  const only = process.env.MUXNET_TEST_BACKEND;
  if (!only) return all;
  const names = only.split(',').map((n) => n.trim());
  for (const name of names) {
    if (!all.some((c) => c.name === name)) {
      throw new Error(
        `MUXNET_TEST_BACKEND: '${name}' matches no loop config; available: ${all.map((c) => c.name).join(', ')}`,
      );
    }
  }
  return all.filter((c) => names.includes(c.name));
}
