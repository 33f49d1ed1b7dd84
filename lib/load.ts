// Finds and loads the compiled addon, with a message that says what to do when it is missing.
import { existsSync, readdirSync } from 'node:fs';
import * as path from 'node:path';
import type { NativeAddon } from './native';

/** The part of node-gyp-build used here (the package ships no type declarations). */
interface NodeGypBuild {
  /** The addon file for this platform under `dir`: build/Release, build/Debug, then prebuilds/. */
  path(dir: string): string;
}

let addon: NativeAddon | undefined;

/**
 * The package root: the nearest folder above this file that holds binding.gyp (dist/ in a
 * package, deeper in the benchmark and test builds).
 */
function packageRoot(): string {
  for (let dir = __dirname, i = 0; i < 4; i++, dir = path.dirname(dir)) {
    if (existsSync(path.join(dir, 'binding.gyp'))) return dir;
  }
  return path.resolve(__dirname, '..');
}

/** The prebuilt binaries the package holds, as "linux-x64/muxnet.napi.uv1.glibc.node". */
function shippedPrebuilds(root: string): string[] {
  const found: string[] = [];
  const dir = path.join(root, 'prebuilds');
  for (const tuple of existsSync(dir) ? readdirSync(dir) : []) {
    for (const file of readdirSync(path.join(dir, tuple))) {
      if (file.endsWith('.node')) found.push(`${tuple}/${file}`);
    }
  }
  return found;
}

/** What this process needs of a binary, as prebuild tags name it. */
function platformName(): string {
  const report = process.report?.getReport() as { header?: { glibcVersionRuntime?: string } } | undefined;
  const libc = process.platform !== 'linux' ? '' : report?.header?.glibcVersionRuntime ? ' glibc' : ' musl';
  return `${process.platform}-${process.arch}${libc}, Node ${process.version} ` +
    `(Node-API ${process.versions.napi}, libuv ${process.versions.uv})`;
}

/**
 * The path of the addon to load. `MUXNET_ADDON` names one file explicitly (used to test an
 * addon built another way, such as the cmake-js build); otherwise node-gyp-build picks a build
 * from source (build/Release) before a matching prebuilt binary (prebuilds/).
 */
function resolveAddon(root: string): string {
  const explicit = process.env.MUXNET_ADDON;
  if (explicit) {
    const file = path.resolve(explicit);
    if (!existsSync(file)) throw new Error(`muxnet: MUXNET_ADDON names ${file}, which does not exist`);
    return file;
  }
  const build = require('node-gyp-build') as NodeGypBuild;
  try {
    // Absolute: node-gyp-build returns `MUXNET_PREBUILD`'s folder as given, and require() takes
    // a relative path without ./ for a package name.
    return path.resolve(build.path(root));
  } catch (err) {
    const shipped = shippedPrebuilds(root);
    throw new Error(
      `muxnet: no native addon for ${platformName()}. ` +
      (shipped.length > 0
        ? `The package has prebuilt binaries only for: ${shipped.join(', ')}. `
        : 'The package has no prebuilt binaries. ') +
      `Build it from source with \`npm rebuild muxnet\` (needs python3, make and a C++17 compiler; ` +
      `where npm blocks install scripts, allow muxnet's first: \`npm install-scripts approve muxnet\`), ` +
      `or run \`npx node-gyp rebuild\` in ${root}.\n` +
      `node-gyp-build: ${(err as Error).message.trim()}`);
  }
}

/** The addon of this thread (each worker loads its own instance). */
export function native(): NativeAddon {
  if (addon !== undefined) return addon;
  const root = packageRoot();
  const file = resolveAddon(root);
  try {
    addon = require(file) as NativeAddon;
  } catch (err) {
    throw new Error(
      `muxnet: the native addon ${file} does not load on ${platformName()}: ` +
      `${(err as Error).message.split('\n')[0]}. Rebuild it from source with \`npm rebuild muxnet\`.`);
  }
  return addon;
}
