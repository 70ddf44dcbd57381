import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { promises as fs, mkdtempSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import * as path from 'node:path';
import { Readable } from 'node:stream';
import { after, test } from 'node:test';
import { gzipSync } from 'node:zlib';
import { getAttribute } from '@napi-rs/xattr';
import { FileContentStore } from '../content/file-store.js';
import { run } from '../util/exec.js';
import { packDirectory } from './dirtar.js';
import { OverlayStore } from './overlay.js';
import { addEntry, extract, pack, type TarHeader } from './tar.js';

const base = mkdtempSync(path.join(tmpdir(), 'berth-overlay-'));
after(async () => {
  const mounts = readFileSync('/proc/self/mounts', 'utf8')
    .split('\n')
    .map((l) => l.split(' ')[1])
    .filter((m) => m?.startsWith(base));
  for (const m of mounts) await run('umount', ['-l', m], { allowFail: true });
  await fs.rm(base, { recursive: true, force: true });
});

type E = TarHeader & { body?: string };
async function mkTar(entries: E[]): Promise<Buffer> {
  const p = pack();
  const chunks: Buffer[] = [];
  p.on('data', (b: Buffer) => chunks.push(b));
  const done = new Promise((r) => p.on('end', r));
  for (const e of entries) {
    const { body, ...h } = e;
    const buf = body !== undefined ? Buffer.from(body) : undefined;
    await addEntry(
      p,
      { mode: 0o644, uid: 0, gid: 0, mtime: new Date(1_000_000_000_000), ...h, size: buf?.length ?? 0 },
      buf,
    );
  }
  p.finalize();
  await done;
  return Buffer.concat(chunks);
}
const sha = (b: Buffer) => `sha256:${createHash('sha256').update(b).digest('hex')}`;

async function open() {
  const content = await FileContentStore.open(path.join(base, 'content'));
  return OverlayStore.open({ root: path.join(base, 'overlay'), content });
}

async function tarNames(r: Readable): Promise<Map<string, TarHeader>> {
  const ex = extract();
  r.pipe(ex as unknown as NodeJS.WritableStream);
  const out = new Map<string, TarHeader>();
  for await (const e of ex) {
    out.set(e.header.name, e.header);
    e.resume();
  }
  return out;
}

test('a layer is unpacked once, whiteouts and opaque dirs converted, gzip accepted', async () => {
  const store = await open();
  const bottom = await mkTar([
    { name: 'etc/', type: 'directory', mode: 0o755 },
    { name: 'etc/a', body: 'A' },
    { name: 'etc/b', body: 'B' },
    { name: 'opq/', type: 'directory', mode: 0o755 },
    { name: 'opq/old', body: 'old' },
    { name: 'bin/', type: 'directory', mode: 0o755 },
    { name: 'bin/busy', body: 'x', mode: 0o755 },
    { name: 'bin/sh', type: 'link', linkname: 'bin/busy' },
    { name: 'bin/abs', type: 'symlink', linkname: '/etc/shadow' },
  ]);
  const top = await mkTar([
    { name: 'etc/', type: 'directory', mode: 0o755 },
    { name: 'etc/.wh.a', body: '' },
    { name: 'opq/', type: 'directory', mode: 0o700 },
    { name: 'opq/.wh..wh..opq', body: '' },
    { name: 'opq/new', body: 'new' },
  ]);
  const b = await store.applyLayer(Readable.from([gzipSync(bottom)]), { expectDiffId: sha(bottom) });
  assert.equal(b.diffId, sha(bottom));
  assert.equal(b.size, 6);
  const again = await store.applyLayer(Readable.from([bottom]));
  assert.deepEqual(again, b);
  const t = await store.applyLayer(Readable.from([top]));
  const wh = await fs.lstat(path.join(store.layerDir(t.diffId), 'etc/a'));
  assert.ok(wh.isCharacterDevice() && wh.rdev === 0);
  assert.equal(await fs.stat(path.join(store.layerDir(t.diffId), 'etc/.wh.a')).catch(() => 'gone'), 'gone');
  assert.equal(
    String(await getAttribute(path.join(store.layerDir(t.diffId), 'opq'), 'trusted.overlay.opaque')),
    'y',
  );
  // The stored tar is byte-identical to the applied one.
  const chunks: Buffer[] = [];
  for await (const c of store.layerTar(b.diffId)) chunks.push(c as Buffer);
  assert.equal(sha(Buffer.concat(chunks)), b.diffId);

  await store.create('c1', [b.diffId, t.diffId]);
  const root = await store.mount('c1');
  assert.equal(await store.mount('c1'), root, 'mount is idempotent');
  assert.equal(await fs.readFile(path.join(root, 'etc/b'), 'utf8'), 'B');
  assert.equal(await fs.stat(path.join(root, 'etc/a')).catch(() => 'gone'), 'gone');
  assert.deepEqual((await fs.readdir(path.join(root, 'opq'))).sort(), ['new']);
  assert.equal(await fs.readlink(path.join(root, 'bin/abs')), '/etc/shadow');
  assert.ok((await fs.stat(path.join(root, 'etc/hosts'))).isFile(), 'init layer provides mount points');
  await fs.writeFile(path.join(root, 'etc/new'), 'n');
  await fs.rm(path.join(root, 'etc/b'));
  await fs.mkdir(path.join(root, 'data'));
  // A directory removed and made again is opaque in the upper dir: what it hid counts as deleted.
  await fs.rm(path.join(root, 'bin'), { recursive: true });
  await fs.mkdir(path.join(root, 'bin'));
  await fs.writeFile(path.join(root, 'bin/sh'), 'new sh');
  const changes = await store.changes('c1');
  assert.deepEqual(changes, [
    { Path: '/bin', Kind: 0 },
    { Path: '/bin/abs', Kind: 2 },
    { Path: '/bin/busy', Kind: 2 },
    { Path: '/bin/sh', Kind: 0 },
    { Path: '/data', Kind: 1 },
    { Path: '/etc', Kind: 0 },
    { Path: '/etc/b', Kind: 2 },
    { Path: '/etc/new', Kind: 1 },
  ]);
  const diff = await tarNames(await store.diffTar('c1'));
  assert.deepEqual([...diff.keys()].sort(), [
    'bin/',
    'bin/.wh..wh..opq',
    'bin/sh',
    'data/',
    'etc/',
    'etc/.wh.b',
    'etc/new',
  ]);
  await fs.link(path.join(root, 'etc/new'), path.join(root, 'etc/new2'));
  const exp = await tarNames(await store.exportTar('c1'));
  assert.equal(exp.get('etc/new2')?.type, 'link', 'hard links stay hard links');
  assert.equal(exp.get('etc/new2')?.linkname, 'etc/new');
  assert.ok(exp.has('etc/new') && exp.has('opq/new') && !exp.has('etc/b') && !exp.has('bin/busy'));
  assert.equal(exp.get('bin/sh')?.type, 'file');
  assert.equal(exp.get('bin/sh')?.size, 6);

  // Layers under a container survive gc; after remove they go.
  assert.equal(await store.gc(new Set()), 0);
  assert.ok(store.layerInfo(b.diffId));
  await store.unmount('c1');
  await store.unmount('c1');
  await store.remove('c1');
  assert.equal(await fs.stat(path.join(store.root, 'containers', 'c1')).catch(() => 'gone'), 'gone');
  assert.ok((await store.gc(new Set([b.diffId]))) > 0);
  assert.equal(store.layerInfo(t.diffId), undefined);
  assert.ok(store.layerInfo(b.diffId));
  assert.deepEqual(await fs.readdir(path.join(store.root, 'l')), [b.diffId.slice(7, 23)]);
  assert.deepEqual(
    await fs.readdir(path.join(store.root, 'inits')),
    [],
    'the init layer of the removed image went too',
  );
});

test('hostile and broken tars are refused with nothing left behind', async () => {
  const store = await open();
  const outside = path.join(base, 'outside');
  await fs.mkdir(outside, { recursive: true });
  const cases: [string, E[] | Buffer, RegExp][] = [
    ['dotdot', [{ name: '../escape', body: 'x' }], /member name contains '\.\.'/],
    ['inner dotdot', [{ name: 'a/../../escape', body: 'x' }], /'\.\.'/],
    [
      'through symlink',
      [
        { name: 'a', type: 'symlink', linkname: outside },
        { name: 'a/pwned', body: 'x' },
      ],
      /through the symlink "a"/,
    ],
    ['hardlink out', [{ name: 'h', type: 'link', linkname: '/etc/hostname' }], /invalid hardlink/],
    [
      'device',
      [{ name: 'sda', type: 'block-device', devmajor: 8, devminor: 0 }],
      /device files are not allowed/,
    ],
  ];
  for (const [label, entries, re] of cases) {
    const tar = Buffer.isBuffer(entries) ? entries : await mkTar(entries);
    await assert.rejects(store.applyLayer(Readable.from([tar])), (err: Error) => {
      assert.match(err.message, re, label);
      assert.match(err.message, /^Error processing tar file/, label);
      return true;
    });
    assert.equal(await store.content.has(sha(tar)), false, `${label}: blob removed`);
  }
  const good = await mkTar([{ name: 'f', body: 'x'.repeat(2000) }]);
  await assert.rejects(store.applyLayer(Readable.from([good.subarray(0, 700)])), /unexpected EOF/);
  assert.equal(await store.content.has(sha(good.subarray(0, 700))), false, 'truncated: blob removed');
  await assert.rejects(store.applyLayer(Readable.from([Buffer.alloc(2048, 0x41)])), /invalid tar header/);
  await assert.rejects(store.applyLayer(Readable.from([])), /unexpected EOF/);
  // A tar-stream (streamx) source that ends with its first chunk: an empty diff.
  const empty = path.join(base, 'empty-upper');
  await fs.mkdir(empty);
  const e = await store.applyLayer(packDirectory(empty, { overlayUpper: true }));
  assert.equal(e.diffId, sha(Buffer.alloc(1024)));
  await assert.rejects(
    store.applyLayer(Readable.from([good]), { expectDiffId: `sha256:${'0'.repeat(64)}` }),
    /digest mismatch/,
  );
  assert.deepEqual(await fs.readdir(outside), []);
  assert.deepEqual(await fs.readdir(path.join(store.root, 'tmp')), []);
});

test('an image with many layers mounts (short links keep the options under a page)', async () => {
  const store = await open();
  const diffIds: string[] = [];
  for (let i = 0; i < 60; i++) {
    const { diffId } = await store.applyLayer(
      Readable.from([await mkTar([{ name: `f${i}`, body: String(i) }])]),
    );
    diffIds.push(diffId);
  }
  // Full layer paths would need 60 × 77 bytes of options: more than a 4 KiB page.
  assert.ok(diffIds.map((d) => store.layerDir(d)).join(':').length > 4096);
  await store.create('many', diffIds);
  try {
    const root = await store.mount('many');
    assert.equal(await fs.readFile(path.join(root, 'f0'), 'utf8'), '0');
    assert.equal(await fs.readFile(path.join(root, 'f59'), 'utf8'), '59');
  } finally {
    await store.remove('many');
  }
  assert.ok((await store.gc(new Set())) > 0);
});
