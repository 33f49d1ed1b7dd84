// The package loads as ESM and as CommonJS, from its own name, with type declarations.
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { existsSync, readFileSync } from 'node:fs';
import * as path from 'node:path';

const root = path.resolve(__dirname, '..', '..');

function runNode(args: string[]): string {
  return execFileSync(process.execPath, args, { cwd: root, encoding: 'utf8', timeout: 20_000 });
}

describe('package entry points', () => {
  it('import from "muxnet" (ESM) gives the same API as require, sharing one instance', () => {
    const out = runNode(['--input-type=module', '-e', `
      import { listen, dial, backends, Conn, ErrClosed } from 'muxnet';
      import { createRequire } from 'node:module';
      const cjs = createRequire(process.cwd() + '/')('muxnet');
      const ln = listen('tcp', '127.0.0.1:0');
      const c = await dial('tcp', ln.addr().toString());
      console.log(JSON.stringify({
        backends: backends(),
        sameClass: Conn === cjs.Conn && ErrClosed === cjs.ErrClosed,
        isConn: c instanceof cjs.Conn,
      }));
      c.close(); ln.close();
    `]);
    const result = JSON.parse(out.trim());
    assert.ok(result.backends.length >= 1 && result.backends.every((b: unknown) => typeof b === 'string'), 'backends listed');
    assert.equal(result.sameClass, true);
    assert.equal(result.isConn, true);
  });

  it('require("muxnet") (CommonJS) works', () => {
    const out = runNode(['-e', `
      const m = require('muxnet');
      console.log(Object.keys(m).filter((k) => ['listen', 'dial', 'backends', 'OpError'].includes(k)).sort().join(','));
    `]);
    assert.equal(out.trim(), 'OpError,backends,dial,listen');
  });

  it('ships type declarations for the entry point', () => {
    const pkg = JSON.parse(readFileSync(path.join(root, 'package.json'), 'utf8'));
    const types = pkg.exports['.'].types as string;
    const file = path.join(root, types);
    assert.ok(existsSync(file), `${types} exists`);
    const text = readFileSync(file, 'utf8');
    for (const name of ['listen', 'dial', 'backends', 'Conn', 'Listener', 'OpError', 'ErrClosed', 'ErrDeadlineExceeded']) {
      assert.match(text, new RegExp(`\\b${name}\\b`), `declares ${name}`);
    }
  });
});
