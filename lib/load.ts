// Finds and loads the compiled addon, with a message that says what to do when it is missing.
import { existsSync } from 'node:fs';
import * as path from 'node:path';
import type { NativeAddon } from './native';

let addon: NativeAddon | undefined;

/** The addon of this thread (each worker loads its own instance). */
export function native(): NativeAddon {
  if (addon !== undefined) return addon;
  // The package root holds binding.gyp: dist/ in a package, deeper in benchmark builds.
  let root = path.resolve(__dirname, '..');
  for (let dir = __dirname, i = 0; i < 4; i++, dir = path.dirname(dir)) {
    if (existsSync(path.join(dir, 'binding.gyp'))) {
      root = dir;
      break;
    }
  }
  const candidates = [
    path.join(root, 'build', 'Release', 'muxnet.node'),
    path.join(root, 'build', 'Debug', 'muxnet.node'),
  ];
  const errors: string[] = [];
  for (const file of candidates) {
    try {
      addon = require(file) as NativeAddon;
      return addon;
    } catch (err) {
      errors.push(`${file}: ${(err as Error).message.split('\n')[0]}`);
    }
  }
  throw new Error(
    `muxnet: no native addon for ${process.platform}-${process.arch} (Node ${process.version}). ` +
    `Build it from source with \`npm rebuild muxnet\` (or \`npx node-gyp rebuild\` in the package ` +
    `folder); this needs python3, make and a C++17 compiler.\nTried:\n  ${errors.join('\n  ')}`);
}
