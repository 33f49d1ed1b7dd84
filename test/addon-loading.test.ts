// Which addon binary the package loads, and the message a user gets when none fits.
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { copyFileSync, cpSync, existsSync, mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import * as path from 'node:path';

const root = path.resolve(__dirname, '..', '..');
/** The addon this test run loads (node-gyp's build, the prebuilt one, or MUXNET_ADDON). */
const workingAddon = process.env.MUXNET_ADDON
  ? path.resolve(process.env.MUXNET_ADDON)
  : (require('node-gyp-build') as { path(dir: string): string }).path(root);
/** The libc tags node-gyp-build matches here, and the one it must skip. */
const libc = existsSync('/etc/alpine-release') ? 'musl' : 'glibc';
const otherLibc = libc === 'musl' ? 'glibc' : 'musl';

/** A copy of the package (dist/, package.json, binding.gyp) with no addon built or shipped. */
function bareCopy(): string {
  const dir = mkdtempSync(path.join(tmpdir(), 'muxnet-load-'));
  cpSync(path.join(root, 'dist'), path.join(dir, 'dist'), { recursive: true });
  copyFileSync(path.join(root, 'package.json'), path.join(dir, 'package.json'));
  copyFileSync(path.join(root, 'binding.gyp'), path.join(dir, 'binding.gyp'));
  mkdirSync(path.join(dir, 'node_modules'));
  // A copy, not a link: wine 8 makes neither symlinks nor junctions (ENOTSUP).
  cpSync(path.join(root, 'node_modules', 'node-gyp-build'), path.join(dir, 'node_modules', 'node-gyp-build'), { recursive: true });
  return dir;
}

/** Calls backends() from the package in `dir`; returns the exit status and what it printed. */
function loadFrom(dir: string, env: Record<string, string> = {}): { status: number | null; out: string } {
  const script = `console.log(JSON.stringify(require(${JSON.stringify(path.join(dir, 'dist'))}).backends()))`;
  const { MUXNET_ADDON: _, PREBUILDS_ONLY: __, MUXNET_PREBUILD: ___, ...inherited } = process.env;
  const r = spawnSync(process.execPath, ['-e', script], {
    encoding: 'utf8', timeout: 20_000, env: { ...inherited, ...env },
  });
  return { status: r.status, out: `${r.stdout}${r.stderr}` };
}

/** The first line of the error that loading printed. */
function errorLine(out: string): string {
  return out.split('\n').find((line) => line.startsWith('Error: ')) ?? out;
}

describe('addon loading', () => {
  const dirs: string[] = [];
  const fresh = (): string => {
    const dir = bareCopy();
    dirs.push(dir);
    return dir;
  };
  after(() => {
    for (const dir of dirs) rmSync(dir, { recursive: true, force: true });
  });

  it('with no binary at all, names the platform and tells how to build from source', () => {
    const { status, out } = loadFrom(fresh());
    assert.notEqual(status, 0);
    const line = errorLine(out);
    assert.match(line, new RegExp(`no native addon for ${process.platform}-${process.arch}`));
    assert.match(line, /npm rebuild muxnet/);
    assert.match(line, /npm install-scripts approve muxnet/);
    assert.match(line, /no prebuilt binaries/);
  });

  it('skips prebuilt binaries of another platform, libc or libuv major, and lists them', () => {
    const dir = fresh();
    const other = (tuple: string, file: string) => {
      mkdirSync(path.join(dir, 'prebuilds', tuple), { recursive: true });
      copyFileSync(workingAddon, path.join(dir, 'prebuilds', tuple, file));
    };
    // Each is the working binary for this machine under a tag that does not match it.
    other('darwin-arm64', 'muxnet.napi.uv1.node');
    other(`${process.platform}-${process.arch}`, `muxnet.napi.uv1.${otherLibc}.node`);
    other(`${process.platform}-${process.arch}`, `muxnet.napi.uv2.${libc}.node`);
    const { status, out } = loadFrom(dir);
    assert.notEqual(status, 0);
    const line = errorLine(out);
    assert.match(line, /prebuilt binaries only for: .*darwin-arm64\/muxnet\.napi\.uv1\.node/);
    assert.ok(line.includes(`muxnet.napi.uv1.${otherLibc}.node`), line);
    assert.ok(line.includes(`muxnet.napi.uv2.${libc}.node`), line);
    assert.match(line, /npm rebuild muxnet/);
  });

  it('loads the prebuilt binary tagged for this platform, libc and libuv 1', () => {
    const dir = fresh();
    const tuple = path.join(dir, 'prebuilds', `${process.platform}-${process.arch}`);
    mkdirSync(tuple, { recursive: true });
    copyFileSync(workingAddon, path.join(tuple, `muxnet.napi.uv1.${libc}.node`));
    const { status, out } = loadFrom(dir);
    assert.equal(status, 0, out);
    assert.ok(JSON.parse(out).includes('select'), out);  // select: the backend every platform has
  });

  it('reports a binary that exists but does not load, naming the file', () => {
    const dir = fresh();
    mkdirSync(path.join(dir, 'build', 'Release'), { recursive: true });
    const file = path.join(dir, 'build', 'Release', 'muxnet.node');
    writeFileSync(file, 'not an ELF file');
    const { status, out } = loadFrom(dir);
    assert.notEqual(status, 0);
    const line = errorLine(out);
    assert.ok(line.includes(`the native addon ${file} does not load`), line);
    assert.match(line, /npm rebuild muxnet/);
  });

  it('MUXNET_ADDON picks the addon file, and a missing one is an error that names it', () => {
    const dir = fresh();
    const good = loadFrom(dir, { MUXNET_ADDON: workingAddon });
    assert.equal(good.status, 0, good.out);
    const missing = path.join(dir, 'nowhere', 'muxnet.node');
    const bad = loadFrom(dir, { MUXNET_ADDON: missing });
    assert.notEqual(bad.status, 0);
    assert.ok(errorLine(bad.out).includes(`MUXNET_ADDON names ${missing}, which does not exist`), bad.out);
  });
});
