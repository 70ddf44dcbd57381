/**
 * Images through the real docker CLI against berthd: the default busybox image, images/inspect/
 * history/tag/rmi, import with --change, save/load ID stability (plain and gzip), prune, and
 * hostile or broken archives (clear errors, nothing half-written, nothing outside the layer).
 */
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import { promises as fs, mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import * as path from 'node:path';
import { after, before, test } from 'node:test';
import { gzipSync } from 'node:zlib';
import tarStream from 'tar-stream';
import { startDaemon, type TestDaemon } from './helpers/daemon.js';

let d: TestDaemon;
const work = mkdtempSync(path.join(tmpdir(), 'berth-images-work-'));
before(async () => {
  d = await startDaemon();
});
after(async () => {
  await d?.destroy();
  await fs.rm(work, { recursive: true, force: true });
});

async function ok(args: string[], input?: string | Buffer): Promise<string> {
  const r = await d.docker(args, { input });
  assert.equal(r.code, 0, `docker ${args.join(' ')}: ${r.stderr}`);
  return r.stdout;
}

type Spec = [kind: 'file' | 'dir' | 'sym' | 'hard' | 'chr', name: string, arg?: string | Buffer][];

/** A tar written with tar-stream directly (not through Berth's own tar code). */
async function mkTar(spec: Spec): Promise<Buffer> {
  const p = tarStream.pack();
  const chunks: Buffer[] = [];
  p.on('data', (b) => {
    chunks.push(b as Buffer);
  });
  const done = new Promise<void>((r) => p.on('end', () => r()));
  const mtime = new Date(1_700_000_000_000);
  for (const [kind, name, arg] of spec) {
    const add = (h: Partial<tarStream.Header> & { name: string }, body?: Buffer) =>
      new Promise<void>((res, rej) =>
        p.entry({ mtime, mode: 0o644, ...h }, body ?? Buffer.alloc(0), (e) => (e ? rej(e) : res())),
      );
    if (kind === 'file') {
      const body = Buffer.isBuffer(arg) ? arg : Buffer.from(arg ?? '');
      await add({ name, size: body.length }, body);
    } else if (kind === 'dir') await add({ name, type: 'directory', mode: 0o755 });
    else if (kind === 'sym') await add({ name, type: 'symlink', linkname: String(arg) });
    else if (kind === 'hard') await add({ name, type: 'link', linkname: String(arg) });
    else await add({ name, type: 'character-device', devmajor: 1, devminor: 3 });
  }
  p.finalize();
  await done;
  return Buffer.concat(chunks);
}

async function imageIds(): Promise<string[]> {
  return (await ok(['images', '-a', '-q', '--no-trunc'])).split('\n').filter(Boolean).sort();
}

test('the default busybox image: listed, inspected, history, same ID after a daemon restart', async () => {
  const id = (await ok(['image', 'inspect', 'busybox', '--format', '{{.Id}}'])).trim();
  assert.match(id, /^sha256:[0-9a-f]{64}$/);
  assert.equal(
    (
      await ok([
        'image',
        'inspect',
        'busybox:latest',
        '--format',
        '{{json .Config.Cmd}} {{.Os}} {{len .RootFS.Layers}}',
      ])
    ).trim(),
    '["sh"] linux 1',
  );
  assert.match(await ok(['images']), /^busybox\s+latest\s+[0-9a-f]{12}\s/m);
  const hist = await ok(['history', '--no-trunc', '--format', '{{.ID}}|{{.CreatedBy}}', 'busybox']);
  assert.match(hist, new RegExp(`^${id}\\|CMD \\["sh"\\]$`, 'm'));
  assert.match(hist, /^<missing>\|berth: busybox-static/m);
  await d.restart();
  assert.equal((await ok(['image', 'inspect', 'busybox', '--format', '{{.Id}}'])).trim(), id);
  // by short ID, full ID and qualified name
  for (const ref of [id.slice(7, 19), id, 'docker.io/library/busybox:latest']) {
    assert.equal((await ok(['image', 'inspect', ref, '--format', '{{.Id}}'])).trim(), id, ref);
  }
  const missing = await d.docker(['image', 'inspect', 'nosuch']);
  assert.equal(missing.code, 1);
  assert.match(missing.stderr, /No such image: nosuch/);
});

test('import with --change and -m, tag, filters, rmi', async () => {
  const tar = await mkTar([
    ['dir', 'app'],
    ['file', 'app/hello', 'hi\n'],
  ]);
  const id = (
    await ok(
      [
        'import',
        '-c',
        'CMD ["/app/hello"]',
        '-c',
        'ENV A=1',
        '-c',
        'LABEL team=x',
        '-m',
        'first',
        '-',
        'team/app:v1',
      ],
      tar,
    )
  ).trim();
  assert.match(id, /^sha256:[0-9a-f]{64}$/);
  const insp = JSON.parse(await ok(['image', 'inspect', 'team/app:v1']))[0];
  assert.deepEqual(insp.Config.Cmd, ['/app/hello']);
  assert.deepEqual(insp.Config.Env, ['A=1']);
  assert.deepEqual(insp.Config.Labels, { team: 'x' });
  assert.equal(insp.Comment, 'first');
  assert.deepEqual(insp.RepoTags, ['team/app:v1']);
  await ok(['tag', 'team/app:v1', '127.0.0.1:5000/team/app:v2']);
  assert.deepEqual(JSON.parse(await ok(['image', 'inspect', id]))[0].RepoTags, [
    'team/app:v1',
    '127.0.0.1:5000/team/app:v2',
  ]);
  assert.equal(
    (await ok(['images', '--filter', 'label=team=x', '--format', '{{.Repository}}:{{.Tag}}']))
      .split('\n')
      .filter(Boolean)
      .sort()
      .join(' '),
    '127.0.0.1:5000/team/app:v2 team/app:v1',
  );
  assert.equal((await ok(['images', '--format', '{{.Repository}}', 'team/*'])).trim(), 'team/app');
  assert.equal((await ok(['images', '-q', '--filter', 'reference=busy*'])).trim().length, 12);
  const bad = await d.docker(['images', '--filter', 'bogus=1']);
  assert.notEqual(bad.code, 0);
  assert.match(bad.stderr, /invalid filter 'bogus'/);
  // rmi of one tag only untags; of the last tag deletes.
  assert.equal((await ok(['rmi', 'team/app:v1'])).trim(), 'Untagged: team/app:v1');
  assert.equal(
    (await ok(['rmi', '127.0.0.1:5000/team/app:v2'])).trim(),
    `Untagged: 127.0.0.1:5000/team/app:v2\nDeleted: ${id}`,
  );
  const gone = await d.docker(['rmi', 'team/app:v1']);
  assert.notEqual(gone.code, 0);
  assert.match(gone.stderr, /No such image: team\/app:v1/);
});

test('save and load keep image IDs (plain and gzip), in both formats', async () => {
  const tar = await mkTar([['file', 'data', '1']]);
  const id = (await ok(['import', '-', 'keep:1'], tar)).trim();
  const bb = (await ok(['image', 'inspect', 'busybox', '--format', '{{.Id}}'])).trim();
  const out = path.join(work, 'save.tar');
  await ok(['save', '-o', out, 'busybox', 'keep:1']);
  const names = execFileSync('tar', ['-tf', out]).toString().split('\n');
  for (const n of ['oci-layout', 'index.json', 'manifest.json', `blobs/sha256/${id.slice(7)}`])
    assert.ok(names.includes(n), n);
  const manifest = JSON.parse(execFileSync('tar', ['-xOf', out, 'manifest.json']).toString());
  assert.deepEqual(manifest.flatMap((m: { RepoTags: string[] }) => m.RepoTags).sort(), [
    'busybox:latest',
    'keep:1',
  ]);
  await ok(['rmi', 'keep:1']);
  assert.equal((await ok(['load', '-i', out])).trim(), 'Loaded image: busybox:latest\nLoaded image: keep:1');
  assert.equal((await ok(['image', 'inspect', 'keep:1', '--format', '{{.Id}}'])).trim(), id);
  assert.equal((await ok(['image', 'inspect', 'busybox', '--format', '{{.Id}}'])).trim(), bb);
  await ok(['rmi', 'keep:1']);
  await ok(['load'], gzipSync(await fs.readFile(out)));
  assert.equal((await ok(['image', 'inspect', 'keep:1', '--format', '{{.Id}}'])).trim(), id);
  // An OCI layout alone (manifest.json and repositories removed) loads too, tagged from index.json.
  const oci = path.join(work, 'oci');
  await fs.mkdir(oci);
  execFileSync('tar', ['-xf', out, '-C', oci]);
  await fs.rm(path.join(oci, 'manifest.json'));
  await fs.rm(path.join(oci, 'repositories'), { force: true });
  const ociTar = execFileSync('tar', ['-cf', '-', '-C', oci, '.'], { maxBuffer: 64 << 20 });
  await ok(['rmi', 'keep:1']);
  assert.match(await ok(['load'], ociTar), /Loaded image: keep:1/);
  assert.equal((await ok(['image', 'inspect', 'keep:1', '--format', '{{.Id}}'])).trim(), id);
  await ok(['rmi', 'keep:1']);
});

test('image prune removes dangling images, -a unused ones (with filters)', async () => {
  const before = await imageIds();
  const dangling = (await ok(['import', '-'], await mkTar([['file', 'x', 'dangling']]))).trim();
  const tagged = (
    await ok(['import', '-c', 'LABEL prune=1', '-', 'prune-me:1'], await mkTar([['file', 'x', 'tagged']]))
  ).trim();
  assert.match(await ok(['images', '--filter', 'dangling=true', '-q', '--no-trunc']), new RegExp(dangling));
  const p1 = await ok(['image', 'prune', '-f']);
  assert.match(p1, new RegExp(`deleted: ${dangling}`));
  assert.doesNotMatch(p1, new RegExp(tagged));
  const p2 = await ok(['image', 'prune', '-a', '-f', '--filter', 'label=prune=1']);
  assert.match(p2, /untagged: prune-me:1/);
  assert.match(p2, new RegExp(`deleted: ${tagged}`));
  assert.match(p2, /Total reclaimed space: [1-9]/);
  assert.deepEqual(await imageIds(), before, 'busybox (unused, no label) was kept');
});

test('a missing image: pull and run fail cleanly (Docker Hub is out of reach here)', async () => {
  const run = await d.docker(['run', '--rm', 'nosuchimage']);
  assert.equal(run.code, 125);
  assert.match(run.stderr, /Unable to find image 'nosuchimage:latest' locally/);
  assert.match(run.stderr, /Docker Hub cannot be reached from this machine/);
  const pull = await d.docker(['pull', 'nosuchimage:1']);
  assert.equal(pull.code, 1);
  assert.match(pull.stderr, /nosuchimage:1/);
});

test('hostile and broken archives are refused; nothing half-written, nothing outside', async () => {
  const outside = path.join(work, 'outside');
  await fs.mkdir(outside);
  const ids = await imageIds();
  const cases: [string, Buffer, RegExp][] = [
    ['dotdot', await mkTar([['file', '../../escape', 'x']]), /member name contains '\.\.'/],
    [
      'symlink then file',
      await mkTar([
        ['sym', 'a', outside],
        ['file', 'a/pwned', 'x'],
      ]),
      /through the symlink "a"/,
    ],
    [
      'relative symlink then file',
      await mkTar([
        ['sym', 'b', '../../../../../../tmp'],
        ['file', 'b/pwned', 'x'],
      ]),
      /through the symlink "b"/,
    ],
    ['hardlink out', await mkTar([['hard', 'h', '/etc/passwd']]), /invalid hardlink/],
    ['device', await mkTar([['chr', 'dev/mem']]), /device files are not allowed/],
    ['garbage', Buffer.alloc(4096, 0x5a), /invalid tar header/],
    ['truncated', (await mkTar([['file', 'big', 'y'.repeat(5000)]])).subarray(0, 2000), /unexpected EOF/],
  ];
  for (const [label, tar, re] of cases) {
    const imp = await d.docker(['import', '-', `bad:${label.replace(/ /g, '-')}`], { input: tar });
    assert.equal(imp.code, 1, label);
    assert.match(imp.stderr, /Error response from daemon: Error processing tar file/, label);
    assert.match(imp.stderr, re, label);
  }
  // load: a broken archive, an archive whose layer is hostile, and a layer with a wrong digest
  const trunc = await d.docker(['load'], {
    input: (await mkTar([['file', 'manifest.json', 'z'.repeat(3000)]])).subarray(0, 1500),
  });
  assert.equal(trunc.code, 1);
  assert.match(trunc.stderr, /unexpected EOF/);
  const layer = await mkTar([['file', '../evil', 'x']]);
  const h = (b: Buffer) => createHash('sha256').update(b).digest('hex');
  const config = Buffer.from(
    JSON.stringify({
      architecture: 'amd64',
      os: 'linux',
      config: {},
      rootfs: { type: 'layers', diff_ids: [`sha256:${h(layer)}`] },
    }),
  );
  const archive = async (layerBytes: Buffer) => {
    const manifest = JSON.stringify([
      { Config: `blobs/sha256/${h(config)}`, RepoTags: ['evil:1'], Layers: [`blobs/sha256/${h(layer)}`] },
    ]);
    return mkTar([
      ['dir', 'blobs'],
      ['dir', 'blobs/sha256'],
      ['file', `blobs/sha256/${h(config)}`, config],
      ['file', `blobs/sha256/${h(layer)}`, layerBytes],
      ['file', 'manifest.json', manifest],
    ]);
  };
  const hostile = await d.docker(['load'], { input: await archive(layer) });
  assert.equal(hostile.code, 1);
  assert.match(hostile.stderr, /member name contains '\.\.'/);
  const other = await mkTar([['file', 'fine', 'x']]);
  const mismatch = await d.docker(['load'], { input: await archive(other) });
  assert.equal(mismatch.code, 1);
  assert.match(mismatch.stderr, /digest mismatch/);
  // A refused upload is answered at once, not after the whole body (here 24 MB) is read.
  const big = await mkTar([
    ['file', '../escape', 'x'],
    ['file', 'big', Buffer.alloc(24 << 20, 0x61)],
  ]);
  for (const cmd of [['load'], ['import', '-']]) {
    const t0 = Date.now();
    const r = await d.docker(cmd, { input: big });
    assert.equal(r.code, 1);
    assert.match(r.stderr, /member name contains '\.\.'/);
    assert.ok(Date.now() - t0 < 10_000, `${cmd[0]} took ${Date.now() - t0} ms`);
  }
  const notArchive = await d.docker(['load'], { input: await mkTar([['file', 'hello', 'x']]) });
  assert.equal(notArchive.code, 1);
  assert.match(notArchive.stderr, /neither manifest.json nor index.json/);
  // Nothing was made, nothing written outside, no temp or layer leftovers.
  assert.deepEqual(await imageIds(), ids);
  assert.deepEqual(await fs.readdir(outside), []);
  await assert.rejects(fs.stat('/tmp/pwned'));
  assert.deepEqual(await fs.readdir(path.join(d.dataRoot, 'overlay', 'tmp')), []);
  assert.deepEqual(await fs.readdir(path.join(d.dataRoot, 'image', 'tmp')), []);
  const layers = await fs.readdir(path.join(d.dataRoot, 'overlay', 'layers'));
  const used = new Set<string>();
  for (const id of ids)
    for (const l of JSON.parse(await ok(['image', 'inspect', id]))[0].RootFS.Layers) used.add(l.slice(7));
  assert.deepEqual(layers.sort(), [...used].sort());
  // The daemon still serves.
  assert.equal((await d.docker(['version', '--format', '{{.Server.APIVersion}}'])).code, 0);
});
