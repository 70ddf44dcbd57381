/**
 * Images through the real docker CLI against berthd: the default busybox image, images/inspect/
 * history/tag/rmi, import with --change, save/load ID stability (plain and gzip), prune, and
 * hostile or broken archives (clear errors, nothing half-written, nothing outside the layer).
 */
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { promises as fs, mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import * as path from 'node:path';
import { after, before, test } from 'node:test';
import { gzipSync } from 'node:zlib';
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

/** A tar made by python's tarfile (independent of our own tar code), as a Buffer. */
function pyTar(spec: string): Buffer {
  const script = `
import tarfile, io, sys
buf = io.BytesIO()
with tarfile.open(fileobj=buf, mode='w', format=tarfile.PAX_FORMAT) as t:
    for kind, name, arg in ${spec}:
        ti = tarfile.TarInfo(name)
        ti.mtime = 1700000000
        if kind == 'file':
            data = arg.encode(); ti.size = len(data); t.addfile(ti, io.BytesIO(data))
        elif kind == 'dir':
            ti.type = tarfile.DIRTYPE; ti.mode = 0o755; t.addfile(ti)
        elif kind == 'sym':
            ti.type = tarfile.SYMTYPE; ti.linkname = arg; t.addfile(ti)
        elif kind == 'hard':
            ti.type = tarfile.LNKTYPE; ti.linkname = arg; t.addfile(ti)
        elif kind == 'chr':
            ti.type = tarfile.CHRTYPE; ti.devmajor = 1; ti.devminor = 3; t.addfile(ti)
sys.stdout.buffer.write(buf.getvalue())
`;
  return execFileSync('python3', ['-c', script]);
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
  const tar = pyTar("[('dir','app',None),('file','app/hello','hi\\n')]");
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
  const tar = pyTar("[('file','data','1')]");
  const id = (await ok(['import', '-', 'keep:1'], tar)).trim();
  const bb = (await ok(['image', 'inspect', 'busybox', '--format', '{{.Id}}'])).trim();
  const out = path.join(work, 'save.tar');
  await ok(['save', '-o', out, 'busybox', 'keep:1']);
  const names = execFileSync('tar', ['-tf', out]).toString().split('\n');
  for (const n of ['oci-layout', 'index.json', 'manifest.json', `blobs/sha256/${id.slice(7)}`])
    assert.ok(names.includes(n), n);
  const manifest = JSON.parse(execFileSync('tar', ['-xOf', out, 'manifest.json']).toString());
  assert.deepEqual(
    manifest
      .map((m: { RepoTags: string[] }) => m.RepoTags)
      .flat()
      .sort(),
    ['busybox:latest', 'keep:1'],
  );
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

test('image prune removes dangling images, -a unused ones', async () => {
  const before = await imageIds();
  const dangling = (await ok(['import', '-'], pyTar("[('file','x','dangling')]"))).trim();
  const tagged = (await ok(['import', '-', 'prune-me:1'], pyTar("[('file','x','tagged')]"))).trim();
  assert.match(await ok(['images', '--filter', 'dangling=true', '-q', '--no-trunc']), new RegExp(dangling));
  const p1 = await ok(['image', 'prune', '-f']);
  assert.match(p1, new RegExp(`deleted: ${dangling}`));
  assert.doesNotMatch(p1, new RegExp(tagged));
  const p2 = await ok(['image', 'prune', '-a', '-f', '--filter', 'label!=keep']);
  assert.match(p2, new RegExp(`deleted: ${tagged}`));
  assert.match(p2, /Total reclaimed space: [1-9]/);
  // busybox is unused here, so `prune -a` removed it too unless a container holds it
  const after = await imageIds();
  assert.ok(after.every((i) => before.includes(i)));
  if (!after.length) {
    // bring the default image back for the other tests
    await d.restart();
  }
  assert.ok((await imageIds()).length >= 1);
});

test('a missing image: pull and run fail cleanly (no registry client)', async () => {
  const run = await d.docker(['run', '--rm', 'nosuchimage']);
  assert.equal(run.code, 125);
  assert.match(run.stderr, /Unable to find image 'nosuchimage:latest' locally/);
  assert.match(run.stderr, /pulling images from a registry is not supported/);
  const pull = await d.docker(['pull', 'nosuchimage:1']);
  assert.equal(pull.code, 1);
  assert.match(pull.stderr, /nosuchimage:1/);
});

test('hostile and broken archives are refused; nothing half-written, nothing outside', async () => {
  const outside = path.join(work, 'outside');
  await fs.mkdir(outside);
  const ids = await imageIds();
  const cases: [string, Buffer, RegExp][] = [
    ['dotdot', pyTar("[('file','../../escape','x')]"), /member name contains '\.\.'/],
    [
      'symlink then file',
      pyTar(`[('sym','a','${outside}'),('file','a/pwned','x')]`),
      /through the symlink "a"/,
    ],
    [
      'relative symlink then file',
      pyTar("[('sym','b','../../../../../../tmp'),('file','b/pwned','x')]"),
      /through the symlink "b"/,
    ],
    ['hardlink out', pyTar("[('hard','h','/etc/passwd')]"), /invalid hardlink/],
    ['device', pyTar("[('chr','dev/mem',None)]"), /device files are not allowed/],
    ['garbage', Buffer.alloc(4096, 0x5a), /invalid tar header/],
    ['truncated', pyTar(`[('file','big','${'y'.repeat(5000)}')]`).subarray(0, 2000), /unexpected EOF/],
  ];
  for (const [label, tar, re] of cases) {
    const imp = await d.docker(['import', '-', `bad:${label.replace(/ /g, '-')}`], { input: tar });
    assert.equal(imp.code, 1, label);
    assert.match(imp.stderr, /Error response from daemon: Error processing tar file/, label);
    assert.match(imp.stderr, re, label);
  }
  // load: a broken archive, an archive whose layer is hostile, and a layer with a wrong digest
  const trunc = await d.docker(['load'], {
    input: pyTar(`[('file','manifest.json','${'z'.repeat(3000)}')]`).subarray(0, 1500),
  });
  assert.equal(trunc.code, 1);
  assert.match(trunc.stderr, /unexpected EOF/);
  const layer = pyTar("[('file','../evil','x')]");
  const { createHash } = await import('node:crypto');
  const h = (b: Buffer) => createHash('sha256').update(b).digest('hex');
  const config = Buffer.from(
    JSON.stringify({
      architecture: 'amd64',
      os: 'linux',
      config: {},
      rootfs: { type: 'layers', diff_ids: [`sha256:${h(layer)}`] },
    }),
  );
  const archive = (layerBytes: Buffer) => {
    const manifest = JSON.stringify([
      { Config: `blobs/sha256/${h(config)}`, RepoTags: ['evil:1'], Layers: [`blobs/sha256/${h(layer)}`] },
    ]);
    return pyTar(
      `[('dir','blobs',None),('dir','blobs/sha256',None),('file','blobs/sha256/${h(config)}',${JSON.stringify(config.toString())}),('file','blobs/sha256/${h(layer)}',${JSON.stringify(layerBytes.toString('latin1'))}),('file','manifest.json',${JSON.stringify(manifest)})]`,
    );
  };
  const hostile = await d.docker(['load'], { input: archive(layer) });
  assert.equal(hostile.code, 1);
  assert.match(hostile.stderr, /member name contains '\.\.'/);
  const other = pyTar("[('file','fine','x')]");
  const mismatch = await d.docker(['load'], { input: archive(other) });
  assert.equal(mismatch.code, 1);
  assert.match(mismatch.stderr, /digest mismatch/);
  const notArchive = await d.docker(['load'], { input: pyTar("[('file','hello','x')]") });
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
