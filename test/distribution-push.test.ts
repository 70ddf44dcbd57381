/**
 * `docker push` through berthd as Docker pushes: gzip-compressed layers under a Docker schema 2
 * manifest, `Layer already exists` on a second push (no layer compressed again), cross-repository
 * mounts on the same registry; an upload cut off midway fails clearly and the next push completes;
 * `berth push --compression zstd` (zstd layers, OCI manifest) and its pull back through berthd.
 */
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import * as http from 'node:http';
import type { AddressInfo } from 'node:net';
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

test('a push whose upload connection is cut fails clearly; the next push completes', async () => {
  // A proxy in front of the registry that cuts the first layer upload after 64 KiB.
  let cut = true;
  const proxy = http.createServer((req, res) => {
    const u = new URL(reg.url);
    if (cut && req.method === 'PATCH') {
      cut = false;
      let got = 0;
      req.on('data', (c: Buffer) => {
        got += c.length;
        if (got > 65536) req.socket.destroy();
      });
      return;
    }
    const up = http.request(
      { host: u.hostname, port: u.port, path: req.url, method: req.method, headers: { ...req.headers, host: u.host }, agent: false },
      (ur) => {
        res.writeHead(ur.statusCode ?? 502, ur.headers);
        ur.pipe(res);
      },
    );
    up.on('error', () => res.destroy());
    req.pipe(up);
  });
  await new Promise<void>((resolve) => proxy.listen(0, '127.0.0.1', resolve));
  const host = `127.0.0.1:${(proxy.address() as AddressInfo).port}`;
  try {
    // A layer of its own (random, so it is large after compression too).
    const c = await d.docker(['run', '--name', 'cut', '--network', 'none', 'busybox', 'sh', '-c', 'head -c 1000000 /dev/urandom > /r']);
    assert.equal(c.code, 0, c.stderr);
    assert.equal((await d.docker(['commit', 'cut', `${host}/team/cut:1`])).code, 0);
    assert.equal((await d.docker(['rm', 'cut'])).code, 0);
    const first = await d.docker(['push', `${host}/team/cut:1`]);
    assert.equal(first.code, 1, first.stdout);
    assert.match(first.stderr, /PATCH|socket hang up|ECONNRESET|connection/i);
    const none = await request(reg.url, 'GET', '/v2/team/cut/manifests/1');
    assert.equal(none.status, 404, 'no manifest after the failed push');
    const second = await d.docker(['push', `${host}/team/cut:1`]);
    assert.equal(second.code, 0, second.stderr);
    assert.match(second.stdout, /1: digest: sha256:/);
  } finally {
    proxy.close();
    proxy.closeAllConnections();
  }
});

test('berth push --compression zstd: zstd layers under an OCI manifest, remembered, pulled back through berthd', async () => {
  const ref = `${reg.host}/team/zst:1`;
  assert.equal((await d.docker(['tag', `${reg.host}/team/app:1`, ref])).code, 0);
  const bad = await d.berth(['push', '--compression', 'xz', ref]);
  assert.notEqual(bad.code, 0);
  assert.match(bad.stderr, /invalid compression: xz/);
  const r = await d.berth(['push', '--compression', 'zstd', ref]);
  assert.equal(r.code, 0, r.stderr);
  // Compressed anew (the gzip blobs known for these layers are not what was asked for).
  assert.equal((r.stdout.match(/: Pushed/g) ?? []).length, 3, r.stdout);
  const m = await request(reg.url, 'GET', '/v2/team/zst/manifests/1', {
    headers: { Accept: 'application/vnd.oci.image.manifest.v1+json' },
  });
  assert.equal(m.status, 200);
  const manifest = m.json();
  assert.equal(manifest.mediaType, 'application/vnd.oci.image.manifest.v1+json');
  assert.equal(manifest.config.mediaType, 'application/vnd.oci.image.config.v1+json');
  const diffIds = JSON.parse(
    (await d.docker(['image', 'inspect', '--format', '{{json .RootFS.Layers}}', ref])).stdout,
  );
  for (const [i, l] of manifest.layers.entries()) {
    assert.equal(l.mediaType, 'application/vnd.oci.image.layer.v1.tar+zstd');
    const blob = await request(reg.url, 'GET', `/v2/team/zst/blobs/${l.digest}`);
    assert.equal(blob.body.length, l.size);
    assert.deepEqual([...blob.body.subarray(0, 4)], [0x28, 0xb5, 0x2f, 0xfd], 'a zstd frame');
    const tar = spawnSync('zstd', ['-dcq'], { input: blob.body, maxBuffer: 1 << 28 });
    assert.equal(tar.status, 0, tar.stderr?.toString());
    assert.equal(sha256(tar.stdout), diffIds[i]);
  }
  // The zstd digests are remembered: a second zstd push compresses nothing.
  const again = await d.berth(['push', '--compression', 'zstd', ref]);
  assert.equal(again.code, 0, again.stderr);
  assert.equal((again.stdout.match(/: Layer already exists/g) ?? []).length, 3, again.stdout);
  const fresh = await startDaemon();
  try {
    const p = await fresh.docker(['pull', ref]);
    assert.equal(p.code, 0, p.stderr);
    const id = (dd: TestDaemon) => dd.docker(['image', 'inspect', '--format', '{{.Id}}', ref]);
    assert.equal((await id(fresh)).stdout, (await id(d)).stdout);
    const run = await fresh.docker(['run', '--rm', '--network', 'none', ref, 'tail', '-n1', '/f1']);
    assert.equal(run.stdout, '10000\n');
  } finally {
    await fresh.destroy();
  }
});
