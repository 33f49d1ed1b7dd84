// One benchmark step as a task: a run repeated, its median filed as one result row.
import { medianOf, type LoadResult } from './measure';
import type { Result, Task } from './types';

/** A task that runs `once` `repeats` times in a row and returns one result: `row` with the runs and their median. */
export function repeatedTask(label: string, repeats: number, once: () => Promise<LoadResult>,
                             row: Omit<Result, 'runs' | 'median'>): Task {
  return {
    label,
    run: async () => {
      const runs: LoadResult[] = [];
      for (let r = 0; r < repeats; r++) runs.push(await once());
      return [{ ...row, runs, median: medianOf(runs) }];
    },
  };
}
