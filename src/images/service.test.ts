import assert from 'node:assert/strict';
import { promises as fs, mkdtempSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import * as path from 'node:path';
import { Readable } from 'node:stream';
import { after, test } from 'node:test';
import type { ContainerRecord } from '../model/container.js';
import { FileContentStore } from '../content/file-store.js';
import { EventBus } from '../model/events.js';
import { OverlayStore } from '../layers/overlay.js';
import { addEntry, pack } from '../layers/tar.js';
import { run } from '../util/exec.js';
import { ImageStore } from './service.js';

const base = mkdtempSync(path.join(tmpdir(), 'berth-images-'));
after(async () => {
  for (const m of readFileSync('/proc/self/mounts', 'utf8')
    .split('\n')
    .map((l) => l.split(' ')[1])
    .filter((m) => m?.startsWith(base)))
    await run('umount', ['-l', m], { allowFail: true });
  await fs.rm(base, { recursive: true, force: true });
});

const containers: ContainerRecord[] = [];
async function open(sub: string) {
  const content = await FileContentStore.open(path.join(base, sub, 'content'));
  const rootfs = await OverlayStore.open({ root: path.join(base, sub, 'overlay'), content });
  const images = await ImageStore.open({
    root: path.join(base, sub, 'image'),
    content,
    rootfs,
    events: new EventBus(),
    containers: { list: () => containers, get: () => containers[0] },
  });
  return { content, rootfs, images };
}

async function tarOf(files: Record<string, string>): Promise<Buffer> {
  const p = pack();
  const chunks: Buffer[] = [];
  p.on('data', (b: Buffer) => chunks.push(b));
  const done = new Promise((r) => p.on('end', r));
  for (const [name, body] of Object.entries(files))
    await addEntry(
      p,
      { name, type: 'file', mode: 0o644, mtime: new Date(0), size: body.length },
      Buffer.from(body),
    );
  p.finalize();
  await done;
  return Buffer.concat(chunks);
}

test('the default busybox image is reproducible and quick when present', async () => {
  const a = await open('a');
  const t0 = Date.now();
  await a.images.ensureDefault();
  const made = Date.now() - t0;
  const img = await a.images.resolve('busybox');
  assert.deepEqual(img.repoTags, ['busybox:latest']);
  assert.deepEqual(img.config.config.Cmd, ['sh']);
  const t1 = Date.now();
  await a.images.ensureDefault();
  assert.ok(Date.now() - t1 < 50, 'second call is a lookup');
  const b = await open('b');
  await b.images.ensureDefault();
  assert.equal(
    (await b.images.resolve('docker.io/library/busybox:latest')).id,
    img.id,
    'same ID on another root',
  );
  // Its content: applets, users, /tmp sticky.
  await a.rootfs.create('c1', img.diffIds);
  const root = await a.rootfs.mount('c1');
  try {
    assert.ok((await fs.stat(path.join(root, 'bin/sh'))).isFile());
    assert.match(await fs.readFile(path.join(root, 'etc/passwd'), 'utf8'), /^nobody:x:65534:65534:/m);
    assert.equal((await fs.stat(path.join(root, 'tmp'))).mode & 0o7777, 0o1777);
    const r = await run('chroot', [root, '/bin/sh', '-c', 'echo ok $(id -u)']);
    assert.equal(r.stdout.trim(), 'ok 0');
  } finally {
    await a.rootfs.remove('c1');
  }
  console.log(`busybox image made in ${made} ms`);
});

test('resolve by name, tag, ID and prefix; 404 wording; tag and remove', async () => {
  const { images } = await open('c');
  const img = await images.importTar(Readable.from([await tarOf({ hello: 'world' })]), {
    repo: 'docker.io/team/app:v1',
    changes: ['CMD ["/hello"]', 'ENV A=1'],
  });
  assert.deepEqual(img.repoTags, ['team/app:v1']);
  assert.deepEqual(img.config.config.Cmd, ['/hello']);
  assert.deepEqual(img.config.config.Env, ['A=1']);
  for (const ref of ['team/app:v1', 'docker.io/team/app:v1', img.id, img.id.slice(7), img.id.slice(7, 12)]) {
    assert.equal((await images.resolve(ref)).id, img.id, ref);
  }
  await assert.rejects(
    images.resolve('nosuch'),
    /^Error: No such image: nosuch:latest$|No such image: nosuch:latest/,
  );
  await assert.rejects(images.resolve('team/app'), /No such image: team\/app:latest/);
  await images.tag(img.id, '127.0.0.1:5000/team/app:v2');
  assert.deepEqual((await images.resolve(img.id)).repoTags, ['team/app:v1', '127.0.0.1:5000/team/app:v2']);
  // In use by a stopped container: removing the last tag needs force.
  containers.push({
    Id: 'f'.repeat(64),
    Image: img.id,
    State: { Running: false, Paused: false, Restarting: false },
  } as ContainerRecord);
  assert.deepEqual(await images.remove('team/app:v1', {}), [{ Untagged: 'team/app:v1' }]);
  await assert.rejects(
    images.remove('127.0.0.1:5000/team/app:v2', {}),
    /must force\) - container ffffffffffff is using its referenced image/,
  );
  await assert.rejects(
    images.remove(img.id, {}),
    /\(must be forced\) - image is being used by stopped container ffffffffffff/,
  );
  containers.pop();
  const del = await images.remove(img.id.slice(7, 15), {});
  assert.deepEqual(del, [{ Untagged: '127.0.0.1:5000/team/app:v2' }, { Deleted: img.id }]);
  assert.equal(images.count(), 0);
});

test('records survive a reopen; save and load keep the ID', async () => {
  const one = await open('d');
  const img = await one.images.importTar(Readable.from([await tarOf({ a: '1' })]), {
    repo: 'keep',
    message: 'hi',
  });
  const again = await open('d');
  const back = await again.images.resolve('keep:latest');
  assert.equal(back.id, img.id);
  assert.equal((await again.images.history('keep'))[0].Comment, 'hi');
  const tar: Buffer[] = [];
  for await (const c of await again.images.save(['keep'])) tar.push(c as Buffer);
  const other = await open('e');
  const lines = await other.images.load(Readable.from([Buffer.concat(tar)]));
  assert.deepEqual(lines, ['Loaded image: keep:latest']);
  assert.equal((await other.images.resolve('keep')).id, img.id);
});

test('commit: the container diff becomes a layer on top of its image, with --change and history', async () => {
  const { images, rootfs } = await open('f');
  await images.ensureDefault();
  const bb = await images.resolve('busybox');
  await rootfs.create('c2', bb.diffIds);
  const root = await rootfs.mount('c2');
  await fs.writeFile(path.join(root, 'tmp/made'), 'by commit');
  await fs.rm(path.join(root, 'etc/group'));
  const img = await images.commit({
    containerId: 'c2',
    repo: 'docker.io/library/committed',
    tag: '1',
    author: 'me',
    comment: 'msg',
    changes: ['ENV B=2', 'CMD ["cat", "/tmp/made"]'],
    containerConfig: { Env: ['PATH=/bin'], Cmd: ['sh'], Labels: {} },
    parent: bb,
    baseDiffIds: await rootfs.baseLayers('c2'),
    diff: await rootfs.diffTar('c2'),
  });
  await rootfs.remove('c2');
  assert.deepEqual(img.repoTags, ['committed:1']);
  assert.equal(img.parent, bb.id);
  assert.deepEqual(img.diffIds.slice(0, 1), bb.diffIds);
  assert.equal(img.diffIds.length, 2);
  assert.deepEqual(img.config.config.Env, ['PATH=/bin', 'B=2']);
  assert.deepEqual(img.config.config.Cmd, ['cat', '/tmp/made']);
  assert.equal(img.config.author, 'me');
  const hist = await images.history('committed:1');
  assert.equal(hist[0].Id, img.id);
  assert.equal(hist[0].Comment, 'msg');
  assert.equal(hist.at(-1)?.Id, '<missing>');
  assert.ok(
    hist.some((h) => h.Id === bb.id),
    'the parent is named in the history',
  );
  // A container from the new image sees the change and the deletion.
  await rootfs.create('c3', img.diffIds);
  const r3 = await rootfs.mount('c3');
  try {
    assert.equal(await fs.readFile(path.join(r3, 'tmp/made'), 'utf8'), 'by commit');
    await assert.rejects(fs.stat(path.join(r3, 'etc/group')));
    assert.ok((await fs.stat(path.join(r3, 'etc/passwd'))).isFile());
  } finally {
    await rootfs.remove('c3');
  }
  // The parent cannot go while the child exists.
  await assert.rejects(images.remove(bb.id, { force: true }), /image has dependent child images/);
  const del = await images.remove('committed:1', {});
  assert.deepEqual(del, [{ Untagged: 'committed:1' }, { Deleted: img.id }]);
});
