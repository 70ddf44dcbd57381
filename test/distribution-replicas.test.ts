/**
 * Two berth-registry replicas on one storage root serve as one registry: an upload started on one
 * is continued on the other and finished on the first; what one stores the other serves; a tag
 * written through both ends as the last write, whole.
 */
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { promises as fs } from 'node:fs';
import * as path from 'node:path';
import { after, before, test } from 'node:test';
import { type Proc, pushImage, request, sha256, startRegistry, tempDir } from './registry/helpers.js';

let base: string;
let a: Proc;
let b: Proc;

before(async () => {
  base = tempDir('berth-replicas-');
  const root = path.join(base, 'root');
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
  const put = await request(a.url, 'PUT', `${loc.pathname}?digest=${sha256(data)}`, { headers: { 'Content-Length': 0 } });
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
