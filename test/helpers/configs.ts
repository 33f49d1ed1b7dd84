// Loop configurations every I/O test runs under: one per backend, plus epoll's variants.
import { backends } from 'muxnet';

/** One way to run a loop: the options passed to listen/dial, and a name for test titles. */
export interface LoopConfig {
  name: string;
  options: { backend: string; trigger?: 'level' | 'edge'; mode?: 'inline' | 'thread' };
}

/**
 * The configurations to test, from `backends()`: each backend as it comes, and for
 * epoll also edge-triggered ('epoll-et') and on a helper thread ('epoll-thread').
 * `MUXNET_TEST_BACKEND=<name>` keeps only the config of that name; a name that matches
 * none throws, so a typo cannot turn into a run that tests nothing.
 */
export function loopConfigs(): LoopConfig[] {
  const all: LoopConfig[] = [];
  for (const b of backends()) {
    all.push({ name: b, options: { backend: b } });
    if (b === 'epoll') {
      all.push({ name: 'epoll-et', options: { backend: 'epoll', trigger: 'edge' } });
      all.push({ name: 'epoll-thread', options: { backend: 'epoll', mode: 'thread' } });
    }
  }
  const only = process.env.MUXNET_TEST_BACKEND;
  if (!only) return all;
  const kept = all.filter((c) => c.name === only);
  if (kept.length === 0) {
    throw new Error(
      `MUXNET_TEST_BACKEND=${only} matches no loop config; available: ${all.map((c) => c.name).join(', ')}`,
    );
  }
  return kept;
}
