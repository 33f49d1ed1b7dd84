// What every benchmark server process shares: its command line and its "ready" line.
import type { LoopOptions } from '../../lib/backends';

/** `node <server>.js <form> <json loop options>`. */
export function serverArgs(): { form: string; options: LoopOptions } {
  const [form = 'go', optionsJson = '{}'] = process.argv.slice(2);
  return { form, options: JSON.parse(optionsJson) as LoopOptions };
}

/** Tells the orchestrator the server listens: one JSON line {"port","pid"}. */
export function ready(port: number): void {
  process.stdout.write(`${JSON.stringify({ port, pid: process.pid })}\n`);
}
