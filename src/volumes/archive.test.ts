import assert from 'node:assert/strict';
import { existsSync, promises as fs, mkdtempSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import * as path from 'node:path';
import { Readable } from 'node:stream';
import { after, before, describe, it } from 'node:test';
import * as tar from 'tar-stream';
import { extractArchive, readArchive, statPath } from './archive.js';
import { anchor, ContainerView } from './scope.js';

type Entry = {
  name: string;
  type?: 'file' | 'directory' | 'symlink' | 'link';
  body?: string;
  linkname?: string;
  mode?: number;
};

async function makeTar(entries: Entry[]): Promise<Buffer> {
  const pack = tar.pack();
  const chunks: Buffer[] = [];
  const done = new Promise<void>((resolve, reject) => {
    pack.on('data', (c) => {
      chunks.push(c as Buffer);
    });
    pack.on('end', () => resolve());
    pack.on('error', reject);
  });
  for (const e of entries) {
    const type = e.type ?? 'file';
    await new Promise<void>((resolve, reject) =>
      pack.entry(
        { name: e.name, type, linkname: e.linkname, mode: e.mode ?? (type === 'directory' ? 0o755 : 0o644) },
        type === 'file' ? (e.body ?? '') : '',
        (err) => (err ? reject(err) : resolve()),
      ),
    );
  }
  pack.finalize();
  await done;
  return Buffer.concat(chunks);
}

async function readTar(
  stream: Readable,
): Promise<Map<string, { type: string; body: string; linkname?: string }>> {
  const ex = tar.extract();
  const out = new Map<string, { type: string; body: string; linkname?: string }>();
  ex.on('entry', (h, s, next) => {
    const parts: Buffer[] = [];
    s.on('data', (c) => {
      parts.push(c as Buffer);
    });
    s.on('end', () => {
      out.set(h.name, {
        type: h.type,
        body: Buffer.concat(parts).toString(),
        linkname: h.linkname ?? undefined,
      });
      next();
    });
  });
  const fin = new Promise<void>((resolve, reject) => {
    ex.on('finish', () => resolve());
    ex.on('error', reject);
  });
  stream.pipe(ex as unknown as NodeJS.WritableStream);
  await fin;
  return out;
}

describe('container view and docker cp archives', () => {
  let base: string;
  let rootfs: string;
  let vol: string;
  let outside: string;
  let view: ContainerView;

  before(async () => {
    base = mkdtempSync(path.join(tmpdir(), 'berth-archive-'));
    rootfs = path.join(base, 'rootfs');
    vol = path.join(base, 'vol');
    outside = path.join(base, 'outside');
    for (const d of [
      rootfs,
      vol,
      outside,
      path.join(rootfs, 'etc'),
      path.join(rootfs, 'data'),
      path.join(rootfs, 'ro'),
    ])
      await fs.mkdir(d, { recursive: true });
    await fs.writeFile(path.join(rootfs, 'etc', 'passwd'), 'root:x:0:0::/root:/bin/sh\n');
    await fs.writeFile(path.join(outside, 'secret'), 'host secret');
    // Hostile links inside the container: absolute and relative escapes.
    await fs.symlink('/', path.join(rootfs, 'tmp'));
    await fs.symlink('../../../../../../outside', path.join(rootfs, 'up'));
    await fs.symlink('/etc/passwd', path.join(rootfs, 'pw'));
    await fs.writeFile(path.join(vol, 'in-volume'), 'vol data');
    view = new ContainerView(rootfs, [
      { destination: '/data', source: vol, rw: true },
      { destination: '/ro', source: outside, rw: false },
    ]);
  });
  after(async () => {
    await fs.rm(base, { recursive: true, force: true });
  });

  it('resolves symlinks inside the container root, never on the host', async () => {
    const a = await view.resolve('/tmp/etc/passwd', true);
    assert.equal(a.container, '/etc/passwd');
    assert.equal(a.host, path.join(rootfs, 'etc', 'passwd'));
    const b = await view.resolve('/up/secret', true);
    assert.equal(b.container, '/outside/secret');
    assert.ok(b.host.startsWith(rootfs + '/'));
    const c = await view.resolve('/data/../data/in-volume', true);
    assert.equal(c.host, path.join(vol, 'in-volume'));
    const d = await view.resolve('/pw', false);
    assert.equal(d.container, '/pw');
  });

  it('stat carries Go FileMode bits and the link target', async () => {
    const dir = await statPath(view, '/etc', 'c1');
    assert.equal((dir.stat.mode & 0x80000000) >>> 0, 0x80000000);
    assert.equal(dir.stat.mode & 0o777, 0o755);
    const link = await statPath(view, '/pw', 'c1');
    assert.equal(link.stat.mode & (1 << 27), 1 << 27);
    assert.equal(link.stat.linkTarget, '/etc/passwd');
    await assert.rejects(statPath(view, '/nope', 'c1'), /Could not find the file \/nope in container c1/);
  });

  it('reads a directory as a tar, crossing into the mounted volume', async () => {
    const { tar: t } = await readArchive(view, '/data', 'c1');
    const entries = await readTar(t);
    assert.equal(entries.get('data/in-volume')?.body, 'vol data');
    const r2 = await readArchive(view, '/tmp/etc/passwd', 'c1');
    const e2 = await readTar(r2.tar);
    assert.match(e2.get('passwd')?.body ?? '', /^root:/);
  });

  it('extracts through a container symlink without leaving the root', async () => {
    const t = await makeTar([{ name: 'hello.txt', body: 'hi' }]);
    await extractArchive(view, '/tmp/', Readable.from([t]), {
      noOverwriteDirNonDir: true,
      containerName: 'c1',
    });
    assert.equal(readFileSync(path.join(rootfs, 'hello.txt'), 'utf8'), 'hi');
    const t2 = await makeTar([{ name: 'x.txt', body: 'x' }]);
    await extractArchive(view, '/up', Readable.from([t2]), {
      noOverwriteDirNonDir: true,
      containerName: 'c1',
    }).catch(() => {});
    assert.equal(existsSync(path.join(outside, 'x.txt')), false);
  });

  it('refuses .. names and escaping symlinks; writes nothing outside', async () => {
    const bad = await makeTar([{ name: '../../outside/evil', body: 'x' }]);
    await assert.rejects(
      extractArchive(view, '/etc', Readable.from([bad]), { noOverwriteDirNonDir: true, containerName: 'c1' }),
      /is outside of/,
    );
    const badLink = await makeTar([{ name: 'esc', type: 'symlink', linkname: '../../../../outside' }]);
    await assert.rejects(
      extractArchive(view, '/etc', Readable.from([badLink]), {
        noOverwriteDirNonDir: true,
        containerName: 'c1',
      }),
      /invalid symlink/,
    );
    // An absolute link is the container's business; writing through it stays in the container.
    const abs = await makeTar([
      { name: 'l', type: 'symlink', linkname: '/' },
      { name: 'l/escaped', body: 'in container' },
    ]);
    await extractArchive(view, '/etc', Readable.from([abs]), {
      noOverwriteDirNonDir: true,
      containerName: 'c1',
    });
    assert.equal(readFileSync(path.join(rootfs, 'escaped'), 'utf8'), 'in container');
    assert.equal(existsSync(path.join(base, 'escaped')), false);
    assert.equal(existsSync(path.join(outside, 'evil')), false);
  });

  it('honours read-only mounts and noOverwriteDirNonDir', async () => {
    const t = await makeTar([{ name: 'f', body: 'x' }]);
    await assert.rejects(
      extractArchive(view, '/ro', Readable.from([t]), { noOverwriteDirNonDir: true, containerName: 'c1' }),
      /read-only/,
    );
    const d = await makeTar([{ name: 'passwd', type: 'directory' }]);
    await assert.rejects(
      extractArchive(view, '/etc', Readable.from([d]), { noOverwriteDirNonDir: true, containerName: 'c1' }),
      /cannot overwrite non-directory/,
    );
    await assert.rejects(
      extractArchive(view, '/etc/passwd', Readable.from([t]), {
        noOverwriteDirNonDir: true,
        containerName: 'c1',
      }),
      /not a directory/,
    );
  });

  it('an anchored path never follows a symlink swapped in below the base (the cp race)', async () => {
    // As if a running container replaced /swapped (a directory when we resolved) by a link to /.
    await fs.symlink(outside, path.join(rootfs, 'swapped'));
    const loc = view.locate('/swapped/secret');
    await assert.rejects(anchor(loc), /changed to a non-directory/);
    const ok = await anchor(view.locate('/etc/passwd'));
    assert.match(readFileSync(ok.path, 'utf8'), /^root:/);
    await ok.close();
  });
});
