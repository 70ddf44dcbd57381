/**
 * berth-registry as a pull-through cache (`proxy` in its config) of a second berth-registry, used by
 * berthd as its Docker Hub mirror: first pull fetched from the upstream and stored; tags served
 * from the store within their TTL and asked upstream again after it; everything cached served with
 * the upstream stopped; pushes refused.
 */
import assert from 'node:assert/strict';
import { promises as fs } from 'node:fs';
import * as path from 'node:path';
import { after, before, test } from 'node:test';
import { startDaemon, type TestDaemon } from './helpers/daemon.js';
import { runCmd } from './helpers/run.js';
import { type Proc, pushImage, REGISTRY_BIN, request, sha256, startRegistry, tempDir } from './registry/helpers.js';

let d: TestDaemon;
let upstream: Proc;
/** Caches tags for an hour. */
let cache: Proc;
/** Asks the upstream about a tag on every request. */
let eager: Proc;

const ACCEPT = 'application/vnd.docker.distribution.manifest.v2+json, application/vnd.oci.image.manifest.v1+json';

/** busybox plus a layer writing /data, pushed to the upstream as library/busybox:latest and forgotten here. */
async function publish(content: string): Promise<string> {
  const c = await d.docker(['run', '--name', 'mk', '--network', 'none', 'busybox', 'sh', '-c', `echo ${content} > /data`]);
  assert.equal(c.code, 0, c.stderr);
  const target = `${upstream.host}/library/busybox:latest`;
  assert.equal((await d.docker(['commit', 'mk', target])).code, 0);
  assert.equal((await d.docker(['rm', 'mk'])).code, 0);
  const p = await d.docker(['push', target]);
  assert.equal(p.code, 0, p.stderr);
  const digest = /digest: (sha256:[0-9a-f]{64})/.exec(p.stdout)?.[1];
  assert.ok(digest, p.stdout);
  const id = (await d.docker(['image', 'inspect', '--format', '{{.Id}}', target])).stdout.trim();
  assert.equal((await d.docker(['rmi', '-f', id])).code, 0);
  return digest;
}

const tagDigest = async (reg: Proc) => {
  const r = await request(reg.url, 'GET', '/v2/library/busybox/manifests/latest', { headers: { Accept: ACCEPT } });
  assert.equal(r.status, 200, r.body.toString());
  return r.headers['docker-content-digest'];
};

const catData = (dd: TestDaemon) =>
  dd.docker(['run', '--rm', '--pull', 'never', '--network', 'none', 'busybox', 'cat', '/data']);

let v1: string;
let v2: string;

before(async () => {
  upstream = await startRegistry();
  cache = await startRegistry({ config: { proxy: { remoteurl: upstream.url, ttl: '1h' } } });
  eager = await startRegistry({ config: { proxy: { remoteurl: upstream.url, ttl: 0 } } });
  d = await startDaemon({ args: ['--registry-mirror', cache.url] });
  v1 = await publish('v1');
});
after(async () => {
  await d?.destroy();
  await cache?.destroy();
  await eager?.destroy();
  await upstream?.destroy();
});

test('first pull through the cache fetches from the upstream and stores', async () => {
  const r = await d.docker(['pull', 'busybox']);
  assert.equal(r.code, 0, r.stderr);
  assert.match(r.stdout, new RegExp(`Digest: ${v1}`));
  assert.equal((await catData(d)).stdout, 'v1\n');
  // What the pull fetched (the config and the layer on top of busybox's, which berthd had) is now
  // in the cache's own store.
  const m = await request(cache.url, 'GET', `/v2/library/busybox/manifests/${v1}`, { headers: { Accept: ACCEPT } });
  const layers: { digest: string }[] = m.json().layers;
  for (const { digest } of [m.json().config, layers[layers.length - 1]])
    await fs.access(path.join(cache.base, 'root', 'repositories', 'library', 'busybox', '_layers', 'sha256', digest.slice(7)));
  assert.equal(await tagDigest(eager), v1);
});

test('a tag moved upstream: served from the store within its TTL, refreshed after it', async () => {
  v2 = await publish('v2');
  assert.notEqual(v2, v1);
  assert.equal(await tagDigest(cache), v1, 'within the TTL the cached tag is served');
  assert.equal(await tagDigest(eager), v2, 'with TTL 0 the upstream is asked again');
});

test('with the upstream stopped, everything cached is still served', async () => {
  await upstream.stop();
  const id = (await d.docker(['image', 'inspect', '--format', '{{.Id}}', 'busybox'])).stdout.trim();
  assert.equal((await d.docker(['rmi', '-f', id])).code, 0);
  const r = await d.docker(['pull', 'busybox']);
  assert.equal(r.code, 0, r.stderr);
  assert.equal((await catData(d)).stdout, 'v1\n');
  // TTL 0 asks the upstream every time; with it down, the last tag seen is served.
  assert.equal(await tagDigest(eager), v2);
  const missing = await d.docker(['pull', 'nosuch/thing:1']);
  assert.equal(missing.code, 1);
  assert.match(missing.stderr, /nosuch\/thing/);
});

test('pushes to a pull-through cache are refused', async () => {
  assert.equal((await d.docker(['tag', 'busybox', `${cache.host}/team/x:1`])).code, 0);
  const r = await d.docker(['push', `${cache.host}/team/x:1`]);
  assert.equal(r.code, 1);
  assert.match(r.stderr, /pull-through cache/);
  const m = await request(cache.url, 'PUT', '/v2/team/x/manifests/1', {
    headers: { 'Content-Type': 'application/vnd.oci.image.manifest.v1+json' },
    body: '{}',
  });
  assert.equal(m.status, 405);
});

test('a cache of an upstream that needs a login answers its challenge with the configured account', async () => {
  const dir = tempDir('berth-cache-auth-');
  const pw = await runCmd(process.execPath, [REGISTRY_BIN, 'htpasswd', 'cacher'], { input: 'pa55\n' });
  await fs.writeFile(path.join(dir, 'htpasswd'), pw.stdout);
  const secured = await startRegistry({
    config: {
      auth: { type: 'token', htpasswd: path.join(dir, 'htpasswd') },
      access: { repositories: [{ match: 'private/**', pull: ['cacher'], push: ['cacher'] }] },
    },
  });
  const basic = { Authorization: `Basic ${Buffer.from('cacher:pa55').toString('base64')}` };
  const img = await pushImage(secured.url, 'private/app', { tag: 'v1', headers: basic });
  const withLogin = await startRegistry({
    config: { proxy: { remoteurl: secured.url, username: 'cacher', password: 'pa55' } },
  });
  const anonymous = await startRegistry({ config: { proxy: { remoteurl: secured.url } } });
  try {
    const m = await request(withLogin.url, 'GET', '/v2/private/app/manifests/v1', {
      headers: { Accept: 'application/vnd.oci.image.manifest.v1+json' },
    });
    assert.equal(m.status, 200, m.body.toString());
    assert.equal(m.headers['docker-content-digest'], img.digest);
    const blob = await request(withLogin.url, 'GET', `/v2/private/app/blobs/${sha256(img.layers[0])}`);
    assert.ok(blob.body.equals(img.layers[0]));
    const denied = await request(anonymous.url, 'GET', '/v2/private/app/manifests/v1', {
      headers: { Accept: 'application/vnd.oci.image.manifest.v1+json' },
    });
    assert.notEqual(denied.status, 200);
  } finally {
    await withLogin.destroy();
    await anonymous.destroy();
    await secured.destroy();
    await fs.rm(dir, { recursive: true, force: true });
  }
});
