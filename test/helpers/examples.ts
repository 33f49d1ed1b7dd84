// Running an example program as a user would: a child process that prints "listening on <addr>".
import { spawn, type ChildProcess } from 'node:child_process';
import * as path from 'node:path';
import { withTimeout } from './util';

/** Where the compiled examples are. */
export const examplesDir = path.join(__dirname, '..', '..', 'examples');

/** A started example: the process, its output so far, and the address it printed. */
export interface StartedExample {
  child: ChildProcess;
  out: () => string;
  addr: string;
}

/** Starts a compiled example; resolves once it prints "listening on [http://]<addr>". */
export async function startExample(script: string, args: string[]): Promise<StartedExample> {
  const child = spawn(process.execPath, [path.join(examplesDir, script), ...args], { stdio: ['ignore', 'pipe', 'inherit'] });
  let out = '';
  child.stdout!.on('data', (d: Buffer) => { out += d.toString(); });
  const addr = await withTimeout(new Promise<string>((resolve, reject) => {
    child.stdout!.on('data', () => {
      const m = /listening on (?:http:\/\/)?(\S+)/.exec(out);
      if (m) resolve(m[1]);
    });
    child.once('exit', (code) => reject(new Error(`${script} exited with ${code}: ${out}`)));
  }), 10_000, `${script} listening`);
  return { child, out: () => out, addr };
}

/** Resolves with the exit code once `child` has exited (at once if it has). */
export function exited(child: ChildProcess): Promise<number | null> {
  return new Promise((resolve) => {
    if (child.exitCode !== null) resolve(child.exitCode);
    else child.once('exit', (code) => resolve(code));
  });
}
