// The file scenario: clients ask for a file from the page cache (64 KiB and 1 MiB) over a
// one-line protocol, the server answering with muxnet conn.sendFile, with muxnet fs reads and
// writes, and with Node's fs.createReadStream(path).pipe(socket); server CPU per MiB, answers/s.
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { randomBytes } from 'node:crypto';
import * as os from 'node:os';
import * as path from 'node:path';
import { backends } from '../lib/backends';
import { root, runLoad, startServer, type LoadResult } from './measure';
import { repeatedTask } from './repeat';
import type { Task } from './types';

export interface FilePlan {
  repeats: number;
  duration: number;
  warmup: number;
  connections: number;
  /** The files served: a name (what the request line says) and a size in bytes. */
  files: { name: string; size: number }[];
  /** Server forms: sendfile (conn.sendFile), read (fs read + conn.write), node (createReadStream().pipe). */
  forms: string[];
}

export function filePlan(quick: boolean): FilePlan {
  const files = [{ name: '64k', size: 64 * 1024 }, { name: '1m', size: 1024 * 1024 }];
  const forms = ['sendfile', 'read', 'node'];
  // 50 connections: the ping-pong scenario's.
  return quick
    ? { repeats: 1, duration: 1, warmup: 0.5, connections: 50, files, forms }
    : { repeats: 3, duration: 3, warmup: 1, connections: 50, files, forms };
}

let filesDir: string | undefined;

/**
 * A temporary directory holding the plan's files (random bytes), made once per process and
 * removed when it exits. Written just now, the files are in the page cache.
 */
export function servedFiles(files: FilePlan['files']): string {
  if (filesDir === undefined) {
    const dir = mkdtempSync(path.join(os.tmpdir(), 'muxnet-bench-files-'));
    process.on('exit', () => rmSync(dir, { recursive: true, force: true }));
    for (const { name, size } of files) writeFileSync(path.join(dir, name), randomBytes(size));
    filesDir = dir;
  }
  return filesDir;
}

const script = (): string => path.join(root, '.bench-build', 'bench', 'servers', 'file.js');

/** One run: a fresh server, the load generator asking for `file` over and over on every connection. */
export async function runFileOnce(form: string, file: FilePlan['files'][number], plan: FilePlan): Promise<LoadResult> {
  const dir = servedFiles(plan.files);
  const server = await startServer(script(), [form, '{}', dir]);
  try {
    await new Promise((resolve) => setTimeout(resolve, 300));
    return await runLoad(server.port, server.pid, {
      connections: plan.connections, size: file.size, duration: plan.duration, warmup: plan.warmup, mode: 'file', request: file.name,
    });
  } finally {
    await server.stop();
  }
}

/** One step per file and server form. */
export function fileTasks(plan: FilePlan): Task[] {
  const tasks: Task[] = [];
  for (const file of plan.files) {
    for (const form of plan.forms) {
      tasks.push(repeatedTask(`file ${form} ${file.name} c=${plan.connections}`, plan.repeats, () => runFileOnce(form, file, plan), {
        scenario: 'file',
        config: form === 'node' ? 'node-net' : backends()[0],
        form,
        case: file.name,
        connections: plan.connections,
        idle: 0,
        size: file.size,
      }));
    }
  }
  return tasks;
}
