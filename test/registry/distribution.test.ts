/**
 * The OCI Distribution Spec, workflow by workflow (pull, push, content discovery, content
 * management), against a real berth-registry on loopback, with sha256 and sha512 digests and
 * the bad input the conformance suite sends.
 */
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { existsSync, readdirSync } from 'node:fs';
import * as http from 'node:http';
import * as path from 'node:path';
import { after, before, describe, test } from 'node:test';
import { type Proc, pushBlob, pushImage, request, sha256, sha512, startRegistry } from './helpers.js';

let reg: Proc;
let base: string;
before(async () => {
  reg = await startRegistry();
  base = reg.url;
});
after(async () => {
  await reg?.destroy();
});

const OCI_MANIFEST = 'application/vnd.oci.image.manifest.v1+json';
const OCI_INDEX = 'application/vnd.oci.image.index.v1+json';
const DOCKER_MANIFEST = 'application/vnd.docker.distribution.manifest.v2+json';
const DOCKER_LIST = 'application/vnd.docker.distribution.manifest.list.v2+json';

const errCode = (r: { json(): any }) => r.json().errors[0].code as string;
const uploadsLeft = () => readdirSync(path.join(reg.base, 'root', 'uploads')).length;

describe('ping and errors', () => {
  test('GET /v2/ answers 200 with the API version header', async () => {
    const r = await request(base, 'GET', '/v2/');
    assert.equal(r.status, 200);
    assert.equal(r.headers['docker-distribution-api-version'], 'registry/2.0');
  });

  test('bad repository names are NAME_INVALID (uppercase, "..", empty components)', async () => {
    for (const name of ['Foo/bar', 'foo/../bar', 'foo//bar', 'foo/-bar', '.hidden']) {
      const r = await request(base, 'GET', `/v2/${name}/tags/list`);
      assert.ok(r.status === 400 || r.status === 404, `${name}: ${r.status}`);
      assert.equal(errCode(r), 'NAME_INVALID', name);
    }
    const r = await request(base, 'POST', '/v2/UPPER/blobs/uploads/');
    assert.equal(r.status, 400);
    assert.equal(errCode(r), 'NAME_INVALID');
  });

  test('unknown repository: 404 NAME_UNKNOWN for tags, MANIFEST_UNKNOWN, BLOB_UNKNOWN; referrers 200 empty', async () => {
    const tags = await request(base, 'GET', '/v2/nothing/here/tags/list');
    assert.equal(tags.status, 404);
    assert.equal(errCode(tags), 'NAME_UNKNOWN');
    const m = await request(base, 'GET', '/v2/nothing/here/manifests/latest');
    assert.equal(m.status, 404);
    assert.equal(errCode(m), 'MANIFEST_UNKNOWN');
    const b = await request(base, 'GET', `/v2/nothing/here/blobs/${sha256('x')}`);
    assert.equal(b.status, 404);
    assert.equal(errCode(b), 'BLOB_UNKNOWN');
    const ref = await request(base, 'GET', `/v2/nothing/here/referrers/${sha256('x')}`);
    assert.equal(ref.status, 200);
    assert.equal(ref.headers['content-type'], OCI_INDEX);
    assert.deepEqual(ref.json(), { schemaVersion: 2, mediaType: OCI_INDEX, manifests: [] });
  });

  test('malformed requests get the spec error and the server keeps serving', async () => {
    const cases: [string, string, Record<string, string | number>, string | undefined, number, string][] = [
      ['GET', '/v2/%zz/tags/list', {}, undefined, 400, 'NAME_INVALID'],
      ['POST', '/v2/bad/in/blobs/uploads/?mount=garbage&from=x', {}, undefined, 400, 'DIGEST_INVALID'],
      ['POST', '/v2/bad/in/blobs/uploads/?digest-algorithm=md5', {}, undefined, 400, 'DIGEST_INVALID'],
      [
        'PUT',
        '/v2/bad/in/blobs/uploads/not-a-uuid?digest=sha256:x',
        {},
        undefined,
        404,
        'BLOB_UPLOAD_UNKNOWN',
      ],
      [
        'PUT',
        '/v2/bad/in/manifests/t',
        { 'Content-Type': OCI_MANIFEST },
        '{"schemaVersion":2,"config":{"digest":"x"}}',
        400,
        'MANIFEST_INVALID',
      ],
      [
        'PUT',
        '/v2/bad/in/manifests/-bad-tag',
        { 'Content-Type': OCI_MANIFEST },
        '{}',
        400,
        'MANIFEST_INVALID',
      ],
      ['GET', '/v2/_catalog?n=abc', {}, undefined, 400, 'UNSUPPORTED'],
      ['PATCH', '/v2/bad/in/manifests/t', {}, undefined, 405, 'UNSUPPORTED'],
    ];
    for (const [method, p, headers, body, status, code] of cases) {
      const r = await request(base, method, p, { headers, body });
      assert.equal(r.status, status, `${method} ${p}: ${r.body}`);
      assert.equal(errCode(r), code, `${method} ${p}`);
    }
    const post = await request(base, 'POST', '/v2/bad/in/blobs/uploads/');
    const r = await request(base, 'PATCH', post.headers.location!, {
      headers: { 'Content-Range': 'bytes=zz' },
      body: 'x',
    });
    assert.equal(r.status, 400);
    assert.equal(errCode(r), 'BLOB_UPLOAD_INVALID');
    const mismatch = await request(base, 'PATCH', post.headers.location!, {
      headers: { 'Content-Range': '0-9', 'Content-Length': 5 },
      body: 'hello',
    });
    assert.equal(mismatch.status, 400);
    assert.equal(errCode(mismatch), 'SIZE_INVALID');
    assert.equal((await request(base, 'GET', '/v2/')).status, 200);
  });

  test('invalid digests are 400 DIGEST_INVALID, never 500', async () => {
    for (const d of ['sha256:baddigeststring', 'sha256:ABC', 'md5:abcd', `sha512:${'a'.repeat(64)}`]) {
      const b = await request(base, 'GET', `/v2/x/blobs/${d}`);
      assert.equal(b.status, 400, d);
      assert.equal(errCode(b), 'DIGEST_INVALID');
      const m = await request(base, 'GET', `/v2/x/manifests/${d}`);
      assert.equal(m.status, 400, d);
    }
  });
});

describe('push and pull of blobs', () => {
  test('POST then PUT (monolithic), then HEAD and GET with Docker-Content-Digest', async () => {
    const data = randomBytes(512);
    const d = await pushBlob(base, 'push/mono', data);
    const head = await request(base, 'HEAD', `/v2/push/mono/blobs/${d}`);
    assert.equal(head.status, 200);
    assert.equal(head.headers['content-length'], '512');
    assert.equal(head.headers['docker-content-digest'], d);
    assert.equal(head.body.length, 0);
    const get = await request(base, 'GET', `/v2/push/mono/blobs/${d}`);
    assert.equal(get.status, 200);
    assert.deepEqual(get.body, data);
  });

  test('single POST with ?digest= answers 201 with a pullable Location', async () => {
    const data = randomBytes(700);
    const r = await request(base, 'POST', `/v2/push/single/blobs/uploads/?digest=${sha256(data)}`, {
      headers: { 'Content-Type': 'application/octet-stream', 'Content-Length': data.length },
      body: data,
    });
    assert.equal(r.status, 201);
    assert.equal(r.headers['docker-content-digest'], sha256(data));
    const got = await request(base, 'GET', r.headers.location!);
    assert.deepEqual(got.body, data);
  });

  test('the empty blob and {} push and pull', async () => {
    for (const data of [Buffer.alloc(0), Buffer.from('{}')]) {
      const d = await pushBlob(base, 'push/empty', data);
      const get = await request(base, 'GET', `/v2/push/empty/blobs/${d}`);
      assert.equal(get.status, 200);
      assert.equal(get.headers['content-length'], String(data.length));
      assert.deepEqual(get.body, data);
    }
  });

  test('chunked PATCH uploads with Content-Range; status via GET; out-of-order chunk is 416', async () => {
    const data = randomBytes(3 * 1024 - 5);
    const post = await request(base, 'POST', '/v2/push/chunked/blobs/uploads/', {
      headers: { 'Content-Length': 0 },
    });
    assert.equal(post.status, 202);
    let loc = post.headers.location!;
    assert.match(loc, /\/v2\/push\/chunked\/blobs\/uploads\/[0-9a-f-]{36}$/);
    const chunk = (start: number, end: number, method = 'PATCH', q = '') =>
      request(base, method, loc + q, {
        headers: {
          'Content-Type': 'application/octet-stream',
          'Content-Range': `${start}-${end}`,
          'Content-Length': end - start + 1,
        },
        body: data.subarray(start, end + 1),
      });
    let r = await chunk(0, 1023);
    assert.equal(r.status, 202);
    assert.equal(r.headers.range, '0-1023');
    loc = r.headers.location!;
    // Skipping ahead: 416, nothing appended.
    r = await chunk(2048, data.length - 1);
    assert.equal(r.status, 416);
    assert.equal(r.headers['content-length'], String(r.body.length));
    assert.equal(r.headers.range, '0-1023');
    // Going back: 416 too, also when the chunk comes with chunked transfer encoding (as Go sends it).
    r = await request(base, 'PATCH', loc, {
      headers: { 'Content-Range': '0-1023', 'Transfer-Encoding': 'chunked' },
      body: data.subarray(0, 1024),
    });
    assert.equal(r.status, 416);
    assert.equal(r.headers['content-length'], String(r.body.length));
    const status = await request(base, 'GET', loc);
    assert.equal(status.status, 204);
    assert.equal(status.headers.range, '0-1023');
    assert.ok(status.headers.location);
    r = await request(base, 'PATCH', loc, {
      headers: { 'Content-Range': '1024-2047', 'Transfer-Encoding': 'chunked' },
      body: data.subarray(1024, 2048),
    });
    assert.equal(r.status, 202);
    assert.equal(r.headers.range, '0-2047');
    // Final chunk with the PUT; out of order on the PUT is 416 as well.
    r = await chunk(1000, data.length - 1, 'PUT', `?digest=${sha256(data)}`);
    assert.equal(r.status, 416);
    r = await chunk(2048, data.length - 1, 'PUT', `?digest=${sha256(data)}`);
    assert.equal(r.status, 201, r.body.toString());
    const got = await request(base, 'GET', r.headers.location!);
    assert.deepEqual(got.body, data);
  });

  test('streamed PATCH without Content-Range, then PUT without body', async () => {
    const data = randomBytes(5000);
    const post = await request(base, 'POST', '/v2/push/stream/blobs/uploads/');
    const patch = await request(base, 'PATCH', post.headers.location!, {
      headers: { 'Content-Type': 'application/octet-stream', 'Transfer-Encoding': 'chunked' },
      body: data,
    });
    assert.equal(patch.status, 202);
    assert.equal(patch.headers.range, '0-4999');
    const put = await request(base, 'PUT', `${patch.headers.location}?digest=${sha256(data)}`, {
      headers: { 'Content-Length': 0 },
    });
    assert.equal(put.status, 201);
    assert.ok(put.headers.location);
    assert.deepEqual((await request(base, 'GET', put.headers.location!)).body, data);
  });

  test('a wrong digest is 400 DIGEST_INVALID on every upload path and stores nothing', async () => {
    const data = randomBytes(3000);
    const wrong = sha256(Buffer.concat([data, Buffer.from('oh no')]));
    const single = await request(base, 'POST', `/v2/push/bad/blobs/uploads/?digest=${wrong}`, { body: data });
    assert.equal(single.status, 400);
    assert.equal(errCode(single), 'DIGEST_INVALID');
    await assert.rejects(pushBlob(base, 'push/bad', data, wrong), /PUT 400/);
    const post = await request(base, 'POST', '/v2/push/bad/blobs/uploads/');
    await request(base, 'PATCH', post.headers.location!, { body: data });
    const put = await request(base, 'PUT', `${post.headers.location}?digest=${wrong}`);
    assert.equal(put.status, 400);
    assert.equal(errCode(put), 'DIGEST_INVALID');
    // The session is gone and no blob is readable under either digest.
    assert.equal((await request(base, 'GET', post.headers.location!)).status, 404);
    assert.equal((await request(base, 'HEAD', `/v2/push/bad/blobs/${wrong}`)).status, 404);
    assert.equal((await request(base, 'HEAD', `/v2/push/bad/blobs/${sha256(data)}`)).status, 404);
    const missingDigest = await request(base, 'POST', '/v2/push/bad/blobs/uploads/');
    const put2 = await request(base, 'PUT', missingDigest.headers.location!);
    assert.equal(put2.status, 400);
  });

  test('a truncated chunk (client hangs up mid-body) is rolled back; the upload resumes', async () => {
    const data = randomBytes(64 * 1024);
    const post = await request(base, 'POST', '/v2/push/trunc/blobs/uploads/');
    const loc = post.headers.location!;
    await request(base, 'PATCH', loc, {
      headers: { 'Content-Range': '0-1023', 'Content-Length': 1024 },
      body: data.subarray(0, 1024),
    });
    // Announce the rest but send only part of it, then drop the connection.
    await new Promise<void>((resolve) => {
      const req = http.request(new URL(loc, base), {
        method: 'PATCH',
        headers: { 'Content-Range': `1024-${data.length - 1}`, 'Content-Length': data.length - 1024 },
        agent: false,
      });
      req.on('error', () => resolve());
      req.write(data.subarray(1024, 9000), () => setTimeout(() => req.destroy(), 100));
      req.on('close', () => resolve());
    });
    // Poll: the server rolls the partial chunk back once it sees the hang-up.
    let range = '';
    for (let i = 0; i < 50; i++) {
      range = (await request(base, 'GET', loc)).headers.range as string;
      if (range === '0-1023') break;
      await new Promise((r) => setTimeout(r, 20));
    }
    assert.equal(range, '0-1023');
    const put = await request(base, 'PUT', `${loc}?digest=${sha256(data)}`, {
      headers: { 'Content-Range': `1024-${data.length - 1}`, 'Content-Length': data.length - 1024 },
      body: data.subarray(1024),
    });
    assert.equal(put.status, 201, put.body.toString());
    assert.deepEqual((await request(base, 'GET', `/v2/push/trunc/blobs/${sha256(data)}`)).body, data);
  });

  test('cancel an upload with DELETE (204), then it is unknown (404 BLOB_UPLOAD_UNKNOWN)', async () => {
    const before = uploadsLeft();
    const post = await request(base, 'POST', '/v2/push/cancel/blobs/uploads/');
    assert.equal(uploadsLeft(), before + 1);
    const del = await request(base, 'DELETE', post.headers.location!, { headers: { 'Content-Length': 0 } });
    assert.equal(del.status, 204);
    const st = await request(base, 'GET', post.headers.location!);
    assert.equal(st.status, 404);
    assert.equal(errCode(st), 'BLOB_UPLOAD_UNKNOWN');
    assert.equal(uploadsLeft(), before);
    // An upload id from another repository is unknown here.
    const other = await request(base, 'POST', '/v2/push/other/blobs/uploads/');
    const id = other.headers.location!.split('/').pop();
    assert.equal((await request(base, 'GET', `/v2/push/cancel/blobs/uploads/${id}`)).status, 404);
  });

  test('cross-repository mount: 201 from a source holding it, 202 session when it does not', async () => {
    const data = randomBytes(600);
    const d = await pushBlob(base, 'mount/src', data);
    const r = await request(base, 'POST', `/v2/mount/dst/blobs/uploads/?mount=${d}&from=mount/src`);
    assert.equal(r.status, 201);
    assert.equal(r.headers['docker-content-digest'], d);
    assert.deepEqual((await request(base, 'GET', r.headers.location!)).body, data);
    // Anonymous mount (no from) works in an open registry.
    const anon = await request(base, 'POST', `/v2/mount/anon/blobs/uploads/?mount=${d}`);
    assert.equal(anon.status, 201);
    // A source that lacks the blob: an upload session instead.
    const missing = randomBytes(100);
    const m = await request(
      base,
      'POST',
      `/v2/mount/dst2/blobs/uploads/?mount=${sha256(missing)}&from=mount/src`,
    );
    assert.equal(m.status, 202);
    assert.match(m.headers.location!, /uploads\/[0-9a-f-]{36}$/);
  });

  test('range requests: 206 with Content-Range, suffix ranges, 416 when unsatisfiable', async () => {
    const data = randomBytes(2048);
    const d = await pushBlob(base, 'range/r', data);
    const get = (range: string) =>
      request(base, 'GET', `/v2/range/r/blobs/${d}`, { headers: { Range: range } });
    let r = await get('bytes=500-1499');
    assert.equal(r.status, 206);
    assert.equal(r.headers['content-range'], 'bytes 500-1499/2048');
    assert.deepEqual(r.body, data.subarray(500, 1500));
    r = await get('bytes=500-');
    assert.deepEqual(r.body, data.subarray(500));
    r = await get('bytes=-500');
    assert.equal(r.headers['content-length'], '500');
    assert.deepEqual(r.body, data.subarray(1548));
    r = await get('bytes=2000-5000');
    assert.equal(r.status, 206);
    assert.deepEqual(r.body, data.subarray(2000));
    for (const bad of ['bytes=500-0', 'bytes=5000-10000']) {
      r = await get(bad);
      assert.equal(r.status, 416, bad);
      assert.equal(r.headers['content-range'], 'bytes */2048');
      assert.equal(Number(r.headers['content-length']), r.body.length);
    }
  });

  test('sha512: chunked upload, HEAD, GET, and manifest by sha512 digest', async () => {
    const data = randomBytes(3000);
    const d512 = sha512(data);
    const post = await request(base, 'POST', '/v2/algo/five/blobs/uploads/?digest-algorithm=sha512');
    assert.equal(post.status, 202);
    const p = await request(base, 'PATCH', post.headers.location!, {
      headers: { 'Content-Range': '0-2999' },
      body: data,
    });
    assert.equal(p.status, 202);
    const put = await request(base, 'PUT', `${p.headers.location}?digest=${d512}`);
    assert.equal(put.status, 201);
    assert.equal(put.headers['docker-content-digest'], d512);
    const head = await request(base, 'HEAD', `/v2/algo/five/blobs/${d512}`);
    assert.equal(head.status, 200);
    // Uploaded without announcing the algorithm: the registry rehashes on PUT.
    const cfg = Buffer.from('{"architecture":"amd64","os":"linux"}');
    await pushBlob(base, 'algo/five', cfg, sha512(cfg));
    const manifest = Buffer.from(
      JSON.stringify({
        schemaVersion: 2,
        mediaType: OCI_MANIFEST,
        config: {
          mediaType: 'application/vnd.oci.image.config.v1+json',
          digest: sha512(cfg),
          size: cfg.length,
        },
        layers: [{ mediaType: 'application/vnd.oci.image.layer.v1.tar', digest: d512, size: data.length }],
      }),
    );
    const md = sha512(manifest);
    const mp = await request(base, 'PUT', `/v2/algo/five/manifests/${md}`, {
      headers: { 'Content-Type': OCI_MANIFEST },
      body: manifest,
    });
    assert.equal(mp.status, 201, mp.body.toString());
    assert.equal(mp.headers['docker-content-digest'], md);
    const mg = await request(base, 'GET', `/v2/algo/five/manifests/${md}`, {
      headers: { Accept: OCI_MANIFEST },
    });
    assert.equal(mg.status, 200);
    assert.deepEqual(mg.body, manifest);
    assert.equal(mg.headers['docker-content-digest'], md);
    // Pushing those bytes under a sha256 reference does not match.
    const wrong = await request(base, 'PUT', `/v2/algo/five/manifests/${sha512(Buffer.from('x'))}`, {
      headers: { 'Content-Type': OCI_MANIFEST },
      body: manifest,
    });
    assert.equal(wrong.status, 400);
    assert.equal(errCode(wrong), 'DIGEST_INVALID');
  });
});

describe('manifests', () => {
  test('push by tag and by digest; pull with HEAD and GET; exact bytes and Content-Type', async () => {
    const img = await pushImage(base, 'man/a', { tag: 'v1' });
    for (const ref of ['v1', img.digest]) {
      const head = await request(base, 'HEAD', `/v2/man/a/manifests/${ref}`, {
        headers: { Accept: `${OCI_MANIFEST}, ${OCI_INDEX}` },
      });
      assert.equal(head.status, 200);
      assert.equal(head.headers['content-type'], OCI_MANIFEST);
      assert.equal(head.headers['docker-content-digest'], img.digest);
      assert.equal(head.headers['content-length'], String(img.manifest.length));
      const get = await request(base, 'GET', `/v2/man/a/manifests/${ref}`);
      assert.deepEqual(get.body, img.manifest);
    }
    // The manifest is also readable as a blob of the repository (as Distribution allows).
    const blob = await request(base, 'GET', `/v2/man/a/blobs/${img.digest}`);
    assert.equal(blob.status, 200);
    assert.deepEqual(blob.body, img.manifest);
  });

  test('a manifest whose bytes do not match the digest reference is 400 DIGEST_INVALID', async () => {
    const img = await pushImage(base, 'man/bad');
    const body = Buffer.concat([img.manifest, Buffer.from('  ')]);
    const r = await request(base, 'PUT', `/v2/man/bad/manifests/${img.digest}`, {
      headers: { 'Content-Type': OCI_MANIFEST },
      body,
    });
    assert.equal(r.status, 400);
    assert.equal(errCode(r), 'DIGEST_INVALID');
    const r2 = await request(base, 'PUT', '/v2/man/bad/manifests/sha256:baddigeststring', {
      headers: { 'Content-Type': OCI_MANIFEST },
      body,
    });
    assert.equal(r2.status, 400);
  });

  test('a manifest referencing missing blobs is 400 MANIFEST_BLOB_UNKNOWN and nothing is stored', async () => {
    const cfg = Buffer.from('{}');
    await pushBlob(base, 'man/missing', cfg);
    const layer = randomBytes(10);
    const m = Buffer.from(
      JSON.stringify({
        schemaVersion: 2,
        mediaType: OCI_MANIFEST,
        config: { mediaType: 'application/vnd.oci.image.config.v1+json', digest: sha256(cfg), size: 2 },
        layers: [{ mediaType: 'application/vnd.oci.image.layer.v1.tar', digest: sha256(layer), size: 10 }],
      }),
    );
    const r = await request(base, 'PUT', '/v2/man/missing/manifests/t', {
      headers: { 'Content-Type': OCI_MANIFEST },
      body: m,
    });
    assert.equal(r.status, 400);
    assert.equal(errCode(r), 'MANIFEST_BLOB_UNKNOWN');
    assert.equal((await request(base, 'GET', '/v2/man/missing/manifests/t')).status, 404);
    assert.equal((await request(base, 'GET', `/v2/man/missing/manifests/${sha256(m)}`)).status, 404);
    // A blob in another repository does not count.
    await pushBlob(base, 'man/elsewhere', layer);
    const r2 = await request(base, 'PUT', '/v2/man/missing/manifests/t', {
      headers: { 'Content-Type': OCI_MANIFEST },
      body: m,
    });
    assert.equal(r2.status, 400);
    // An index naming a manifest that is not there.
    const idx = Buffer.from(
      JSON.stringify({
        schemaVersion: 2,
        mediaType: OCI_INDEX,
        manifests: [{ mediaType: OCI_MANIFEST, digest: sha256('nope'), size: 4 }],
      }),
    );
    const r3 = await request(base, 'PUT', '/v2/man/missing/manifests/i', {
      headers: { 'Content-Type': OCI_INDEX },
      body: idx,
    });
    assert.equal(r3.status, 400);
    assert.equal(errCode(r3), 'MANIFEST_BLOB_UNKNOWN');
  });

  test('non-distributable layers need not be pushed; invalid JSON and schema 1 are MANIFEST_INVALID', async () => {
    const cfg = Buffer.from('{"os":"linux"}');
    await pushBlob(base, 'man/nd', cfg);
    const m = Buffer.from(
      JSON.stringify({
        schemaVersion: 2,
        mediaType: OCI_MANIFEST,
        config: {
          mediaType: 'application/vnd.oci.image.config.v1+json',
          digest: sha256(cfg),
          size: cfg.length,
        },
        layers: [
          {
            mediaType: 'application/vnd.oci.image.layer.nondistributable.v1.tar+gzip',
            digest: sha256('far away'),
            size: 123456,
            urls: ['https://store.example.com/blob'],
          },
        ],
      }),
    );
    const r = await request(base, 'PUT', '/v2/man/nd/manifests/nd', {
      headers: { 'Content-Type': OCI_MANIFEST },
      body: m,
    });
    assert.equal(r.status, 201, r.body.toString());
    for (const body of ['not json', '{"schemaVersion":1,"name":"x","tag":"y","fsLayers":[]}', '[]']) {
      const bad = await request(base, 'PUT', '/v2/man/nd/manifests/bad', {
        headers: { 'Content-Type': OCI_MANIFEST },
        body,
      });
      assert.equal(bad.status, 400, body);
      assert.equal(errCode(bad), 'MANIFEST_INVALID');
    }
  });

  test('an oversized manifest is 413 and not stored; 4 MB manifests are accepted', async () => {
    const cfg = Buffer.from('{}');
    await pushBlob(base, 'man/big', cfg);
    const mk = (n: number) =>
      Buffer.from(
        JSON.stringify({
          schemaVersion: 2,
          mediaType: OCI_MANIFEST,
          config: { mediaType: 'application/vnd.oci.image.config.v1+json', digest: sha256(cfg), size: 2 },
          layers: [],
          annotations: { big: 'A'.repeat(n) },
        }),
      );
    const ok = mk(3_990_000);
    const r = await request(base, 'PUT', '/v2/man/big/manifests/ok', {
      headers: { 'Content-Type': OCI_MANIFEST },
      body: ok,
    });
    assert.equal(r.status, 201);
    const big = mk(4 * 1024 * 1024 + 10);
    const r2 = await request(base, 'PUT', '/v2/man/big/manifests/big', {
      headers: { 'Content-Type': OCI_MANIFEST },
      body: big,
    });
    assert.equal(r2.status, 413);
    assert.equal(errCode(r2), 'MANIFEST_INVALID');
    assert.equal((await request(base, 'GET', '/v2/man/big/manifests/big')).status, 404);
    // The server keeps serving.
    assert.equal((await request(base, 'GET', '/v2/')).status, 200);
  });

  test('Docker schema 2 manifests and lists; content negotiation; linux/amd64 fallback for old clients', async () => {
    const cfg = Buffer.from('{"architecture":"amd64","os":"linux","rootfs":{"type":"layers","diff_ids":[]}}');
    const layer = randomBytes(100);
    await pushBlob(base, 'neg/d', cfg);
    await pushBlob(base, 'neg/d', layer);
    const m = Buffer.from(
      JSON.stringify({
        schemaVersion: 2,
        mediaType: DOCKER_MANIFEST,
        config: {
          mediaType: 'application/vnd.docker.container.image.v1+json',
          digest: sha256(cfg),
          size: cfg.length,
        },
        layers: [
          {
            mediaType: 'application/vnd.docker.image.rootfs.diff.tar.gzip',
            digest: sha256(layer),
            size: layer.length,
          },
        ],
      }),
    );
    let r = await request(base, 'PUT', '/v2/neg/d/manifests/img', {
      headers: { 'Content-Type': DOCKER_MANIFEST },
      body: m,
    });
    assert.equal(r.status, 201);
    const list = Buffer.from(
      JSON.stringify({
        schemaVersion: 2,
        mediaType: DOCKER_LIST,
        manifests: [
          {
            mediaType: DOCKER_MANIFEST,
            digest: sha256(m),
            size: m.length,
            platform: { os: 'linux', architecture: 'amd64' },
          },
        ],
      }),
    );
    r = await request(base, 'PUT', '/v2/neg/d/manifests/list', {
      headers: { 'Content-Type': DOCKER_LIST },
      body: list,
    });
    assert.equal(r.status, 201);
    // A Content-Type that contradicts the manifest's mediaType is refused.
    r = await request(base, 'PUT', '/v2/neg/d/manifests/x', {
      headers: { 'Content-Type': OCI_INDEX },
      body: list,
    });
    assert.equal(r.status, 400);
    // Accepting everything Docker accepts: the list as stored.
    r = await request(base, 'GET', '/v2/neg/d/manifests/list', {
      headers: { Accept: `${DOCKER_LIST}, ${DOCKER_MANIFEST}, ${OCI_INDEX}, ${OCI_MANIFEST}` },
    });
    assert.equal(r.headers['content-type'], DOCKER_LIST);
    assert.deepEqual(r.body, list);
    // A client that only takes image manifests gets the linux/amd64 image.
    r = await request(base, 'GET', '/v2/neg/d/manifests/list', { headers: { Accept: DOCKER_MANIFEST } });
    assert.equal(r.status, 200);
    assert.equal(r.headers['content-type'], DOCKER_MANIFEST);
    assert.equal(r.headers['docker-content-digest'], sha256(m));
    // A client that takes only OCI types cannot read a Docker manifest: 404 MANIFEST_UNKNOWN.
    r = await request(base, 'GET', '/v2/neg/d/manifests/img', { headers: { Accept: OCI_MANIFEST } });
    assert.equal(r.status, 404);
    assert.equal(errCode(r), 'MANIFEST_UNKNOWN');
    // No Accept header at all: served as stored.
    r = await request(base, 'GET', '/v2/neg/d/manifests/img');
    assert.equal(r.headers['content-type'], DOCKER_MANIFEST);
  });

  test('push by digest with ?tag= parameters answers OCI-Tag', async () => {
    const img = await pushImage(base, 'man/tp');
    const r = await request(base, 'PUT', `/v2/man/tp/manifests/${img.digest}?tag=a&tag=b`, {
      headers: { 'Content-Type': OCI_MANIFEST },
      body: img.manifest,
    });
    assert.equal(r.status, 201);
    assert.match(String(r.headers['oci-tag']), /a, b|a,b/);
    assert.deepEqual((await request(base, 'GET', '/v2/man/tp/tags/list')).json().tags, ['a', 'b']);
  });
});

describe('content discovery', () => {
  test('tags list in order, with n, last, and a Link header to the next page', async () => {
    const img = await pushImage(base, 'disc/tags');
    const tags = ['b', 'a', 'c10', 'c2', 'Z', 'd'];
    for (const t of tags) {
      const r = await request(base, 'PUT', `/v2/disc/tags/manifests/${t}`, {
        headers: { 'Content-Type': OCI_MANIFEST },
        body: img.manifest,
      });
      assert.equal(r.status, 201);
    }
    const sorted = [...tags].sort();
    let r = await request(base, 'GET', '/v2/disc/tags/tags/list');
    assert.deepEqual(r.json(), { name: 'disc/tags', tags: sorted });
    r = await request(base, 'GET', '/v2/disc/tags/tags/list?n=2');
    assert.deepEqual(r.json().tags, sorted.slice(0, 2));
    assert.equal(r.headers.link, `</v2/disc/tags/tags/list?n=2&last=${sorted[1]}>; rel="next"`);
    // Follow the links to the end.
    const seen: string[] = [...r.json().tags];
    let link = r.headers.link as string | undefined;
    while (link) {
      const next = /<([^>]+)>/.exec(link)![1];
      r = await request(base, 'GET', next);
      seen.push(...r.json().tags);
      link = r.headers.link as string | undefined;
    }
    assert.deepEqual(seen, sorted);
    r = await request(base, 'GET', `/v2/disc/tags/tags/list?last=${sorted[2]}`);
    assert.deepEqual(r.json().tags, sorted.slice(3));
    r = await request(base, 'GET', '/v2/disc/tags/tags/list?n=0');
    assert.deepEqual(r.json().tags, []);
    assert.equal(r.headers.link, undefined);
    r = await request(base, 'GET', `/v2/disc/tags/tags/list?n=100&last=${sorted[3]}`);
    assert.deepEqual(r.json().tags, sorted.slice(4));
    assert.equal(r.headers.link, undefined);
    r = await request(base, 'GET', '/v2/disc/tags/tags/list?n=-1');
    assert.equal(r.status, 400);
  });

  test('catalog with pagination', async () => {
    await pushBlob(base, 'cat/one', Buffer.from('1'));
    await pushBlob(base, 'cat/two', Buffer.from('2'));
    const all = (await request(base, 'GET', '/v2/_catalog')).json().repositories as string[];
    assert.ok(all.includes('cat/one') && all.includes('cat/two'));
    assert.deepEqual(all, [...all].sort());
    const page = await request(base, 'GET', '/v2/_catalog?n=1');
    assert.equal(page.json().repositories.length, 1);
    assert.match(page.headers.link as string, /^<\/v2\/_catalog\?n=1&last=.+>; rel="next"$/);
  });

  test('referrers: OCI-Subject on push, artifactType from the manifest or its config, filter, annotations', async () => {
    const subject = await pushImage(base, 'ref/r', { tag: 'subject' });
    const subj = { mediaType: OCI_MANIFEST, digest: subject.digest, size: subject.manifest.length };
    const a1 = await pushImage(base, 'ref/r', {
      subject: subj,
      artifactType: 'application/vnd.example.sbom',
      annotations: { 'org.example': 'one' },
    });
    const a2 = await pushImage(base, 'ref/r', {
      subject: subj,
      configMediaType: 'application/vnd.example.sig',
    });
    // A subject that does not exist yet is accepted.
    const ghost = { mediaType: OCI_MANIFEST, digest: sha256('missing content'), size: 123 };
    const a3 = await pushImage(base, 'ref/r', { subject: ghost, artifactType: 'application/vnd.example.x' });
    const put = await request(base, 'PUT', `/v2/ref/r/manifests/${a1.digest}`, {
      headers: { 'Content-Type': OCI_MANIFEST },
      body: a1.manifest,
    });
    assert.equal(put.headers['oci-subject'], subject.digest);
    let r = await request(base, 'GET', `/v2/ref/r/referrers/${subject.digest}`);
    assert.equal(r.status, 200);
    assert.equal(r.headers['content-type'], OCI_INDEX);
    const list = r.json().manifests as any[];
    assert.equal(list.length, 2);
    const e1 = list.find((d) => d.digest === a1.digest);
    assert.deepEqual(e1, {
      mediaType: OCI_MANIFEST,
      digest: a1.digest,
      size: a1.manifest.length,
      artifactType: 'application/vnd.example.sbom',
      annotations: { 'org.example': 'one' },
    });
    assert.equal(list.find((d) => d.digest === a2.digest).artifactType, 'application/vnd.example.sig');
    r = await request(
      base,
      'GET',
      `/v2/ref/r/referrers/${subject.digest}?artifactType=application/vnd.example.sig`,
    );
    assert.equal(r.headers['oci-filters-applied'], 'artifactType');
    assert.deepEqual(
      r.json().manifests.map((d: any) => d.digest),
      [a2.digest],
    );
    r = await request(base, 'GET', `/v2/ref/r/referrers/${ghost.digest}`);
    assert.deepEqual(
      r.json().manifests.map((d: any) => d.digest),
      [a3.digest],
    );
    // Deleting a referrer removes it from the list.
    assert.equal((await request(base, 'DELETE', `/v2/ref/r/manifests/${a1.digest}`)).status, 202);
    r = await request(base, 'GET', `/v2/ref/r/referrers/${subject.digest}`);
    assert.deepEqual(
      r.json().manifests.map((d: any) => d.digest),
      [a2.digest],
    );
    assert.equal((await request(base, 'GET', '/v2/ref/r/referrers/sha256:nope')).status, 400);
  });
});

describe('content management', () => {
  test('delete a tag, a manifest, a blob: 202, then 404 at once', async () => {
    const img = await pushImage(base, 'del/d', { tag: 'keep' });
    await request(base, 'PUT', '/v2/del/d/manifests/gone', {
      headers: { 'Content-Type': OCI_MANIFEST },
      body: img.manifest,
    });
    let r = await request(base, 'DELETE', '/v2/del/d/manifests/gone');
    assert.equal(r.status, 202);
    assert.equal((await request(base, 'HEAD', '/v2/del/d/manifests/gone')).status, 404);
    assert.equal((await request(base, 'HEAD', '/v2/del/d/manifests/keep')).status, 200);
    r = await request(base, 'DELETE', `/v2/del/d/manifests/${img.digest}`);
    assert.equal(r.status, 202);
    assert.equal((await request(base, 'HEAD', `/v2/del/d/manifests/${img.digest}`)).status, 404);
    // Deleting a manifest removes the tags that point at it.
    assert.equal((await request(base, 'HEAD', '/v2/del/d/manifests/keep')).status, 404);
    assert.deepEqual((await request(base, 'GET', '/v2/del/d/tags/list')).json().tags, []);
    r = await request(base, 'DELETE', `/v2/del/d/manifests/${img.digest}`);
    assert.equal(r.status, 404);
    assert.equal(errCode(r), 'MANIFEST_UNKNOWN');
    const ld = sha256(img.layers[0]);
    r = await request(base, 'DELETE', `/v2/del/d/blobs/${ld}`);
    assert.equal(r.status, 202);
    assert.equal((await request(base, 'HEAD', `/v2/del/d/blobs/${ld}`)).status, 404);
    r = await request(base, 'DELETE', `/v2/del/d/blobs/${ld}`);
    assert.equal(r.status, 404);
    assert.equal(errCode(r), 'BLOB_UNKNOWN');
  });

  test('a blob deleted from one repository stays readable in another', async () => {
    const data = randomBytes(64);
    const d = await pushBlob(base, 'del/a', data);
    await pushBlob(base, 'del/b', data);
    await request(base, 'DELETE', `/v2/del/a/blobs/${d}`);
    assert.equal((await request(base, 'GET', `/v2/del/a/blobs/${d}`)).status, 404);
    assert.deepEqual((await request(base, 'GET', `/v2/del/b/blobs/${d}`)).body, data);
  });

  test('nothing half-written is left in the store after failed pushes', async () => {
    const ingest = path.join(reg.base, 'root', 'content', 'ingest');
    if (existsSync(ingest)) assert.deepEqual(readdirSync(ingest), []);
  });
});

describe('concurrency', () => {
  test('parallel pushes of one blob, racing chunks on one session, parallel tags', async () => {
    const data = randomBytes(100_000);
    const results = await Promise.all(Array.from({ length: 8 }, () => pushBlob(base, 'conc/a', data)));
    assert.ok(results.every((d) => d === sha256(data)));
    assert.deepEqual((await request(base, 'GET', `/v2/conc/a/blobs/${sha256(data)}`)).body, data);
    // The same first chunk sent four times at once: one is taken, the others are out of order.
    const post = await request(base, 'POST', '/v2/conc/a/blobs/uploads/');
    const chunk = data.subarray(0, 1024);
    const statuses = await Promise.all(
      Array.from({ length: 4 }, () =>
        request(base, 'PATCH', post.headers.location!, {
          headers: { 'Content-Range': '0-1023' },
          body: chunk,
        }).then((r) => r.status),
      ),
    );
    assert.deepEqual(statuses.sort(), [202, 416, 416, 416]);
    assert.equal((await request(base, 'GET', post.headers.location!)).headers.range, '0-1023');
    const img = await pushImage(base, 'conc/a');
    const tags = Array.from({ length: 10 }, (_, i) => `t${i}`);
    const puts = await Promise.all(
      tags.map((t) =>
        request(base, 'PUT', `/v2/conc/a/manifests/${t}`, {
          headers: { 'Content-Type': OCI_MANIFEST },
          body: img.manifest,
        }),
      ),
    );
    assert.ok(puts.every((r) => r.status === 201));
    assert.deepEqual((await request(base, 'GET', '/v2/conc/a/tags/list')).json().tags, [...tags].sort());
  });
});

describe('delete disabled', () => {
  let ro: Proc;
  before(async () => {
    ro = await startRegistry({ config: { delete: false } });
  });
  after(async () => {
    await ro?.destroy();
  });
  test('DELETE of manifests and blobs is 405 UNSUPPORTED', async () => {
    const img = await pushImage(ro.url, 'ro/x', { tag: 't' });
    for (const p of [
      `/v2/ro/x/manifests/${img.digest}`,
      '/v2/ro/x/manifests/t',
      `/v2/ro/x/blobs/${sha256(img.config)}`,
    ]) {
      const r = await request(ro.url, 'DELETE', p);
      assert.equal(r.status, 405, p);
      assert.equal(errCode(r), 'UNSUPPORTED');
    }
    assert.equal((await request(ro.url, 'HEAD', '/v2/ro/x/manifests/t')).status, 200);
  });
});
