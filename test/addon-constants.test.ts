// One source of truth across the language boundary: every TypeScript const enum member matches the addon's constants.
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import * as path from 'node:path';

const root = path.resolve(__dirname, '..', '..');
// eslint-disable-next-line @typescript-eslint/no-require-imports
const addon = require('node-gyp-build')(root) as { constants: Record<string, Record<string, number>> };

/** The members of `const enum name { … }` in lib/<file>, with their values (implicit ones counted up). */
function constEnum(file: string, name: string): Record<string, number> {
  const text = readFileSync(path.join(root, 'lib', file), 'utf8');
  const m = new RegExp(`const enum ${name} \\{([^}]*)\\}`).exec(text);
  assert.ok(m !== null, `const enum ${name} in lib/${file}`);
  const out: Record<string, number> = {};
  let next = 0;
  for (const part of m[1].replace(/\/\*[\s\S]*?\*\//g, '').replace(/\/\/.*$/gm, '').split(',')) {
    const [key, value] = part.split('=').map((x) => x.trim());
    if (key === '') continue;
    next = value !== undefined ? Number(value) : next;
    out[key] = next++;
  }
  return out;
}

describe('addon constants', () => {
  it('EventKind in lib/native.ts is the addon\'s eventKind, member for member', () => {
    assert.deepEqual(constEnum('native.ts', 'EventKind'), addon.constants.eventKind);
  });

  it('DeadlineKind in lib/native.ts is the addon\'s deadlineKind', () => {
    assert.deepEqual(constEnum('native.ts', 'DeadlineKind'), addon.constants.deadlineKind);
  });

  it('SocketOption, SubmitOp, ReadMode and HandleKind in lib/native.ts are the addon\'s', () => {
    assert.deepEqual(constEnum('native.ts', 'SocketOption'), addon.constants.socketOption);
    assert.deepEqual(constEnum('native.ts', 'SubmitOp'), addon.constants.submitOp);
    assert.deepEqual(constEnum('native.ts', 'ReadMode'), addon.constants.readMode);
    assert.deepEqual(constEnum('native.ts', 'HandleKind'), addon.constants.handleKind);
  });

  it('the TCP_INFO fields of lib/info.ts follow the addon\'s tcpInfoField after info()\'s 6-entry head', () => {
    const ts = constEnum('info.ts', 'F');
    const head = ['BytesIn', 'BytesOut', 'Age', 'RcvBuf', 'SndBuf', 'HasTcp'];
    assert.deepEqual(Object.keys(ts).slice(0, head.length), head);
    const fields: Record<string, number> = {};
    for (const [k, v] of Object.entries(ts).slice(head.length)) fields[k] = v - head.length;
    assert.deepEqual(fields, addon.constants.tcpInfoField);
  });

  it('the constants are read-only', () => {
    assert.ok(Object.isFrozen(addon.constants) && Object.isFrozen(addon.constants.eventKind));
  });
});
