/**
 * Two berth-registry replicas on one storage root serve as one registry: an upload started on one
 * is continued on the other and finished on the first; what one stores the other serves; a tag
 * written through both ends as the last write, whole, also when the writes race. `berth-registry gc`
 * beside them: it waits for a manifest push in progress in another process and keeps what that
 * push references, replicas' writes wait for its sweep, uploads in progress survive it.
 */
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { promises as fs } from 'node:fs';
import { hostname } from 'node:os';
import * as path from 'node:path';
import { after, before, test } from 'node:test';
import { RegistryStorage } from '../src/registry/storage.js';
import { runCmd } from './helpers/run.js';
import {
  type Proc,
  pushBlob,
  pushImage,
  REGISTRY_BIN,
  request,
  sha256,
  startRegistry,
  tempDir,
} from './registry/helpers.js';

let base: string;
let root: string;
let a: Proc;
let b: Proc;

const OCI_MANIFEST = 'application/vnd.oci.image.manifest.v1+json';

/** Polls `check` every 20 ms until it holds; fails after `limitMs` (a bound, not a synchronisation). */
async function until(what: string, check: () => boolean | Promise<boolean>, limitMs = 20_000): Promise<void> {
  const end = Date.now() + limitMs;
  while (!(await check())) {
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 20));
  }
}

const exists = (file: string) =>
  fs.stat(file).then(
    () => true,
    () => false,
  );

/** Makes a stored blob look two hours old, older than gc's grace period. */
async function age(digest: string): Promise<void> {
  const old = new Date(Date.now() - 2 * 3600_000);
  await fs.utimes(path.join(root, 'content', 'blobs', 'sha256', digest.slice(7)), old, old);
}

function imageManifest(config: Buffer, layers: Buffer[]): Buffer {
  return Buffer.from(
    JSON.stringify({
      schemaVersion: 2,
      mediaType: OCI_MANIFEST,
      config: {
        mediaType: 'application/vnd.oci.image.config.v1+json',
        digest: sha256(config),
        size: config.length,
      },
      layers: layers.map((l) => ({
        mediaType: 'application/vnd.oci.image.layer.v1.tar',
        digest: sha256(l),
        size: l.length,
      })),
    }),
  );
}

before(async () => {
  base = tempDir('berth-replicas-');
  root = path.join(base, 'root');
  a = await startRegistry({ config: { root } });
  b = await startRegistry({ config: { root } });
});
after(async () => {
  await a?.destroy();
  await b?.destroy();
  if (base) await fs.rm(base, { recursive: true, force: true });
});

test('an upload started on one replica is continued on the other and finished on the first', async () => {
  const data = randomBytes(300_000);
  const parts = [data.subarray(0, 100_000), data.subarray(100_000, 200_000), data.subarray(200_000)];
  const post = await request(a.url, 'POST', '/v2/team/split/blobs/uploads/');
  assert.equal(post.status, 202);
  let loc = new URL(post.headers.location!, a.url);
  const patch = async (reg: Proc, chunk: Buffer, start: number) => {
    const r = await request(reg.url, 'PATCH', loc.pathname + loc.search, {
      headers: {
        'Content-Type': 'application/octet-stream',
        'Content-Range': `${start}-${start + chunk.length - 1}`,
        'Content-Length': chunk.length,
      },
      body: chunk,
    });
    assert.equal(r.status, 202, r.body.toString());
    loc = new URL(r.headers.location!, reg.url);
    return r;
  };
  await patch(a, parts[0], 0);
  const second = await patch(b, parts[1], 100_000);
  assert.equal(second.headers.range, '0-199999');
  // Back on A, which held a running hash of the first chunk only.
  const status = await request(a.url, 'GET', loc.pathname);
  assert.equal(status.headers.range, '0-199999');
  await patch(a, parts[2], 200_000);
  const put = await request(a.url, 'PUT', `${loc.pathname}?digest=${sha256(data)}`, {
    headers: { 'Content-Length': 0 },
  });
  assert.equal(put.status, 201, put.body.toString());
  const got = await request(b.url, 'GET', `/v2/team/split/blobs/${sha256(data)}`);
  assert.equal(got.status, 200);
  assert.ok(got.body.equals(data));
});

test('what one replica stores, the other serves; tags written on both stay whole', async () => {
  const first = await pushImage(a.url, 'team/app', { tag: 'v1' });
  const second = await pushImage(b.url, 'team/app', { tag: 'v1' });
  for (const reg of [a, b]) {
    const m = await request(reg.url, 'GET', '/v2/team/app/manifests/v1', {
      headers: { Accept: 'application/vnd.oci.image.manifest.v1+json' },
    });
    assert.equal(m.status, 200);
    assert.equal(m.headers['docker-content-digest'], second.digest, 'the last write wins, on both');
    const old = await request(reg.url, 'GET', `/v2/team/app/manifests/${first.digest}`, {
      headers: { Accept: 'application/vnd.oci.image.manifest.v1+json' },
    });
    assert.equal(old.status, 200);
  }
  const tags = await request(b.url, 'GET', '/v2/team/app/tags/list');
  assert.deepEqual(tags.json().tags, ['v1']);
});

test('concurrent pushes of one tag through both replicas leave it whole', async () => {
  const config = Buffer.from(
    '{"architecture":"amd64","os":"linux","rootfs":{"type":"layers","diff_ids":[]}}',
  );
  await pushBlob(a.url, 'team/race', config);
  const layers = Array.from({ length: 16 }, (_, i) => Buffer.from(`race-layer-${i}`));
  for (const l of layers) await pushBlob(a.url, 'team/race', l);
  const manifests = layers.map((l) => imageManifest(config, [l]));
  const puts = await Promise.all(
    manifests.map((m, i) =>
      request((i % 2 ? a : b).url, 'PUT', '/v2/team/race/manifests/t', {
        headers: { 'Content-Type': OCI_MANIFEST },
        body: m,
      }),
    ),
  );
  for (const r of puts) assert.equal(r.status, 201, r.body.toString());
  const digests = new Set(manifests.map((m) => sha256(m)));
  for (const reg of [a, b]) {
    const got = await request(reg.url, 'GET', '/v2/team/race/manifests/t', {
      headers: { Accept: OCI_MANIFEST },
    });
    assert.equal(got.status, 200);
    assert.ok(digests.has(got.headers['docker-content-digest'] as string), 'the tag names one of the pushes');
    assert.equal(sha256(got.body), got.headers['docker-content-digest'], 'the manifest is whole');
  }
  const tagsDir = path.join(root, 'repositories', 'team', 'race', '_manifests', 'tags');
  assert.deepEqual(await fs.readdir(tagsDir), ['t'], 'no temporary file is left beside the tag');
});

test('gc waits for a manifest push in progress in another process and keeps what it references', async () => {
  // An old layer nothing references yet (pushed long ago, say), and an old stray blob.
  const config = Buffer.from(`{"architecture":"amd64","os":"linux","n":"${randomBytes(4).toString('hex')}"}`);
  const layer = randomBytes(2000);
  const stray = randomBytes(1000);
  for (const blob of [config, layer, stray]) {
    await pushBlob(a.url, 'team/gc', blob);
    await age(sha256(blob));
  }
  // A third process on the root (this test) is in the middle of pushing a manifest naming them.
  const writer = await RegistryStorage.open(root);
  let release!: () => void;
  const gate = new Promise<void>((r) => (release = r));
  let entered = false;
  const manifest = imageManifest(config, [layer]);
  const push = writer.fence.write(async () => {
    entered = true;
    await gate;
    await writer.putManifest('team/gc', manifest, sha256(manifest), OCI_MANIFEST, ['v1']);
  });
  await until('the writer to be inside its critical section', () => entered);
  const gc = runCmd(process.execPath, [REGISTRY_BIN, 'gc', '--root', root, '--grace', '60'], {
    timeoutMs: 60_000,
  });
  // gc marked (the manifest is not there yet) and now holds writers off while it waits for ours.
  await until('gc to start its sweep', () => exists(path.join(root, 'gc', 'sweeping')));
  // A replica's write now waits for the sweep.
  const other = randomBytes(500);
  const otherPush = pushBlob(b.url, 'team/gc', other);
  await until('replica b to wait for the sweep', () => b.logs.includes('waiting for a gc sweep'));
  assert.equal(
    (await request(a.url, 'HEAD', `/v2/team/gc/blobs/${sha256(stray)}`)).status,
    200,
    'nothing deleted yet',
  );
  release();
  await push;
  const res = await gc;
  assert.equal(res.code, 0, res.stderr);
  assert.match(res.stdout, /1 blobs deleted/);
  assert.equal(await otherPush, sha256(other));
  // What the push referenced is there, through either replica; the stray blob is gone.
  for (const reg of [a, b]) {
    const m = await request(reg.url, 'GET', '/v2/team/gc/manifests/v1', {
      headers: { Accept: OCI_MANIFEST },
    });
    assert.equal(m.status, 200);
    for (const blob of [config, layer]) {
      const got = await request(reg.url, 'GET', `/v2/team/gc/blobs/${sha256(blob)}`);
      assert.equal(got.status, 200);
      assert.ok(got.body.equals(blob));
    }
    assert.equal((await request(reg.url, 'HEAD', `/v2/team/gc/blobs/${sha256(stray)}`)).status, 404);
  }
  assert.deepEqual(await fs.readdir(path.join(root, 'gc', 'writers')), [], 'no intent left behind');
  assert.equal(await exists(path.join(root, 'gc', 'sweeping')), false);
});

test('an upload in progress survives gc and is finished on the other replica', async () => {
  const data = randomBytes(200_000);
  // The same bytes are already in the store, old and unreferenced: gc takes that copy.
  await pushBlob(a.url, 'team/up', data);
  await age(sha256(data));
  const post = await request(a.url, 'POST', '/v2/team/up/blobs/uploads/');
  const loc = new URL(post.headers.location!, a.url);
  const first = await request(a.url, 'PATCH', loc.pathname + loc.search, {
    headers: { 'Content-Type': 'application/octet-stream', 'Content-Length': 100_000 },
    body: data.subarray(0, 100_000),
  });
  assert.equal(first.status, 202);
  const res = await runCmd(process.execPath, [REGISTRY_BIN, 'gc', '--root', root, '--grace', '0'], {
    timeoutMs: 60_000,
  });
  assert.equal(res.code, 0, res.stderr);
  assert.match(res.stdout, new RegExp(`deleted ${sha256(data)}`));
  const next = new URL(first.headers.location!, a.url);
  const put = await request(b.url, 'PUT', `${next.pathname}?digest=${sha256(data)}`, {
    headers: { 'Content-Type': 'application/octet-stream', 'Content-Length': 100_000 },
    body: data.subarray(100_000),
  });
  assert.equal(put.status, 201, put.body.toString());
  const got = await request(a.url, 'GET', `/v2/team/up/blobs/${sha256(data)}`);
  assert.equal(got.status, 200);
  assert.ok(got.body.equals(data));
});

test('a sweep flag left by a crashed gc does not block writes; a live one stops a second gc', async () => {
  const flag = path.join(root, 'gc', 'sweeping');
  // A gc that died: its pid is gone.
  const gone = spawnSync('true').pid;
  await fs.writeFile(flag, JSON.stringify({ token: 'x', host: hostname(), pid: gone }));
  const blob = randomBytes(300);
  assert.equal(await pushBlob(a.url, 'team/stale', blob), sha256(blob));
  assert.equal(await exists(flag), false, 'the writer removed the stale flag');
  // A live sweep (this process's pid): a second gc refuses to run.
  await fs.writeFile(flag, JSON.stringify({ token: 'y', host: hostname(), pid: process.pid }));
  try {
    const res = await runCmd(process.execPath, [REGISTRY_BIN, 'gc', '--root', root], { timeoutMs: 60_000 });
    assert.notEqual(res.code, 0);
    assert.match(res.stderr, /another gc is running/);
  } finally {
    await fs.rm(flag, { force: true });
  }
});
