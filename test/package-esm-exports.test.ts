// The ESM entry exports everything the CommonJS entry does, as the same objects.
import assert from 'node:assert/strict';
import * as path from 'node:path';
import { pathToFileURL } from 'node:url';

const root = path.resolve(__dirname, '..', '..');

describe('package ESM exports', () => {
  it('esm/index.mjs names every export of dist/index.js, bound to the same values', async () => {
    // eslint-disable-next-line @typescript-eslint/no-require-imports
    const cjs = require(path.join(root, 'dist', 'index.js')) as Record<string, unknown>;
    const esm = await import(pathToFileURL(path.join(root, 'esm', 'index.mjs')).href) as Record<string, unknown>;
    const cjsKeys = Object.keys(cjs).filter((k) => k !== '__esModule').sort();
    const esmKeys = Object.keys(esm).filter((k) => k !== 'default').sort();
    assert.deepEqual(esmKeys, cjsKeys);
    for (const k of cjsKeys) assert.equal(esm[k], cjs[k], `${k} is the CommonJS export itself`);
  });
});
