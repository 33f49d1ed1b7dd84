// Internals stay out of the published type declarations: no `_`-prefixed member in dist/*.d.ts.
import assert from 'node:assert/strict';
import { readFileSync, readdirSync } from 'node:fs';
import * as path from 'node:path';

const dist = path.resolve(__dirname, '..', '..', 'dist');

describe('package internals', () => {
  it('declares no _-prefixed member in any dist/*.d.ts (they are @internal, stripped)', () => {
    const files = readdirSync(dist).filter((f) => f.endsWith('.d.ts'));
    assert.ok(files.includes('index.d.ts') && files.includes('conn.d.ts'), `declarations built: ${files}`);
    const found: string[] = [];
    // A member or property declaration whose name starts with '_', with any modifiers before it.
    const member = /^\s*(?:(?:readonly|get|set|static|protected|private|public|abstract|declare)\s+)*_\w*\s*[?(:<]/;
    for (const f of files) {
      readFileSync(path.join(dist, f), 'utf8').split('\n').forEach((line, i) => {
        if (member.test(line)) found.push(`${f}:${i + 1}: ${line.trim()}`);
      });
    }
    assert.deepEqual(found, []);
  });
});
