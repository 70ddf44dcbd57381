/**
 * `docker push` through berthd as Docker pushes: gzip-compressed layers under a Docker schema 2
 * manifest, `Layer already exists` on a second push (no layer compressed again), cross-repository
 * mounts on the same registry.
 */
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { after, before, test } from 'node:test';
import { gunzipSync } from 'node:zlib';
import { startDaemon, type TestDaemon } from './helpers/daemon.js';
import { type Proc, request, startRegistry } from './registry/helpers.js';

let d: TestDaemon;
let reg: Proc;

const sha256 = (b: Buffer) => `sha256:${createHash('sha256').update(b).digest('hex')}`;

before(async () => {
  reg = await startRegistry();
  d = await startDaemon();
  let from = 'busybox';
  for (let i = 0; i < 2; i++) {
    const c = await d.docker(['run', '--name', `p${i}`, '--network', 'none', from, 'sh', '-c', `seq 1 ${5000 * (i + 1)} > /f${i}`]);
    assert.equal(c.code, 0, c.stderr);
    assert.equal((await d.docker(['commit', `p${i}`, `tmp/p:${i}`])).code, 0);
    assert.equal((await d.docker(['rm', `p${i}`])).code, 0);
    from = `tmp/p:${i}`;
  }
  assert.equal((await d.docker(['tag', from, `${reg.host}/team/app:1`])).code, 0);
});
after(async () => {
  await d?.destroy();
  await reg?.destroy();
});

test('layers are pushed gzip-compressed under a Docker schema 2 manifest', async () => {
  const r = await d.docker(['push', `${reg.host}/team/app:1`]);
  assert.equal(r.code, 0, r.stderr);
  assert.equal((r.stdout.match(/: Pushed/g) ?? []).length, 3, r.stdout);
  assert.match(r.stdout, /1: digest: sha256:[0-9a-f]{64} size: \d+/);
  const m = await request(reg.url, 'GET', '/v2/team/app/manifests/1', {
    headers: { Accept: 'application/vnd.docker.distribution.manifest.v2+json' },
  });
  assert.equal(m.status, 200);
  const manifest = m.json();
  assert.equal(manifest.mediaType, 'application/vnd.docker.distribution.manifest.v2+json');
  const diffIds = JSON.parse(
    (await d.docker(['image', 'inspect', '--format', '{{json .RootFS.Layers}}', `${reg.host}/team/app:1`])).stdout,
  );
  assert.equal(manifest.layers.length, diffIds.length);
  for (const [i, l] of manifest.layers.entries()) {
    assert.equal(l.mediaType, 'application/vnd.docker.image.rootfs.diff.tar.gzip');
    const blob = await request(reg.url, 'GET', `/v2/team/app/blobs/${l.digest}`);
    assert.equal(blob.body.length, l.size);
    assert.notEqual(l.digest, diffIds[i]);
    assert.equal(sha256(gunzipSync(blob.body)), diffIds[i]);
  }
});

test('a second push finds every layer; another repository mounts them', async () => {
  const again = await d.docker(['push', `${reg.host}/team/app:1`]);
  assert.equal(again.code, 0, again.stderr);
  assert.equal((again.stdout.match(/: Layer already exists/g) ?? []).length, 3, again.stdout);
  assert.doesNotMatch(again.stdout, /Pushing|Pushed/);

  assert.equal((await d.docker(['tag', `${reg.host}/team/app:1`, `${reg.host}/other/app:1`])).code, 0);
  const mounted = await d.docker(['push', `${reg.host}/other/app:1`]);
  assert.equal(mounted.code, 0, mounted.stderr);
  assert.equal((mounted.stdout.match(/: Mounted from team\/app/g) ?? []).length, 3, mounted.stdout);
  const m1 = (await request(reg.url, 'GET', '/v2/team/app/manifests/1', { headers: { Accept: 'application/vnd.docker.distribution.manifest.v2+json' } })).json();
  const m2 = (await request(reg.url, 'GET', '/v2/other/app/manifests/1', { headers: { Accept: 'application/vnd.docker.distribution.manifest.v2+json' } })).json();
  assert.deepEqual(m2.layers, m1.layers);
});

test('pushed image pulls back into a fresh daemon with the same image ID', async () => {
  const fresh = await startDaemon();
  try {
    const r = await fresh.docker(['pull', `${reg.host}/other/app:1`]);
    assert.equal(r.code, 0, r.stderr);
    const id = (ref: string, dd: TestDaemon) => dd.docker(['image', 'inspect', '--format', '{{.Id}}', ref]);
    assert.equal((await id(`${reg.host}/other/app:1`, fresh)).stdout, (await id(`${reg.host}/team/app:1`, d)).stdout);
    const run = await fresh.docker(['run', '--rm', '--network', 'none', `${reg.host}/other/app:1`, 'tail', '-n1', '/f1']);
    assert.equal(run.stdout, '10000\n');
  } finally {
    await fresh.destroy();
  }
});
