/**
 * Operating berth-registry: garbage collection (dry run, grace period, uploads in flight), graceful
 * shutdown that finishes an upload in flight, uploads resumed after a restart, health endpoint,
 * structured request logs, size limits, TLS.
 */
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { promises as fs } from 'node:fs';
import * as http from 'node:http';
import * as path from 'node:path';
import { after, test } from 'node:test';
import { runCmd } from '../helpers/run.js';
import {
  type Proc,
  pushBlob,
  pushImage,
  REGISTRY_BIN,
  request,
  sha256,
  startRegistry,
  tempDir,
} from './helpers.js';

const cleanup: Proc[] = [];
const dirs: string[] = [];
after(async () => {
  for (const p of cleanup) await p.destroy();
  for (const d of dirs) await fs.rm(d, { recursive: true, force: true });
});

async function started(opts: Parameters<typeof startRegistry>[0] = {}): Promise<Proc> {
  const p = await startRegistry(opts);
  cleanup.push(p);
  return p;
}

const gc = (root: string, ...args: string[]) =>
  runCmd(process.execPath, [REGISTRY_BIN, 'gc', '--root', root, ...args], { timeoutMs: 30_000 });

test('gc: dry run reports, real run deletes only unreferenced blobs, spares young ones and uploads in flight', async () => {
  const reg = await started();
  const root = path.join(reg.base, 'root');
  const kept = await pushImage(reg.url, 'gc/app', { tag: 'keep' });
  const dropped = await pushImage(reg.url, 'gc/app', { tag: 'drop' });
  const stray = await pushBlob(reg.url, 'gc/other', randomBytes(100));
  assert.equal((await request(reg.url, 'DELETE', `/v2/gc/app/manifests/${dropped.digest}`)).status, 202);
  // An upload in progress (not yet a blob).
  const post = await request(reg.url, 'POST', '/v2/gc/app/blobs/uploads/');
  const part = randomBytes(2048);
  await request(reg.url, 'PATCH', post.headers.location!, {
    headers: { 'Content-Range': '0-1023' },
    body: part.subarray(0, 1024),
  });

  const doomed = [dropped.digest, sha256(dropped.config), sha256(dropped.layers[0]), stray].sort();
  let r = await gc(root, '--dry-run', '--grace', '0');
  assert.equal(r.code, 0, r.stderr);
  for (const d of doomed) assert.match(r.stdout, new RegExp(`would delete ${d}`));
  assert.match(r.stdout, /dry run: .* 4 blobs eligible/);
  assert.equal((await request(reg.url, 'HEAD', `/v2/gc/other/blobs/${stray}`)).status, 200);

  // With the default grace period everything is too young to go.
  r = await gc(root);
  assert.equal(r.code, 0, r.stderr);
  assert.match(r.stdout, /0 blobs deleted .* 4 spared as too recent/);

  r = await gc(root, '--grace', '0');
  assert.equal(r.code, 0, r.stderr);
  assert.match(r.stdout, /4 blobs deleted/);
  assert.equal((await request(reg.url, 'HEAD', `/v2/gc/other/blobs/${stray}`)).status, 404);
  assert.equal((await request(reg.url, 'HEAD', `/v2/gc/app/blobs/${sha256(dropped.layers[0])}`)).status, 404);
  // Everything of the kept image is intact.
  const m = await request(reg.url, 'GET', '/v2/gc/app/manifests/keep');
  assert.deepEqual(m.body, kept.manifest);
  for (const b of [kept.config, ...kept.layers]) {
    assert.deepEqual((await request(reg.url, 'GET', `/v2/gc/app/blobs/${sha256(b)}`)).body, b);
  }
  // The upload in flight finishes after the collection.
  const put = await request(reg.url, 'PUT', `${post.headers.location}?digest=${sha256(part)}`, {
    headers: { 'Content-Range': '1024-2047' },
    body: part.subarray(1024),
  });
  assert.equal(put.status, 201);
});

test('graceful shutdown finishes an upload in flight, refuses new connections, exits 0', async () => {
  const reg = await started();
  const post = await request(reg.url, 'POST', '/v2/shut/down/blobs/uploads/');
  const data = randomBytes(256 * 1024);
  const inflight = new Promise<{ status: number; range?: string }>((resolve, reject) => {
    const req = http.request(
      {
        host: '127.0.0.1',
        port: reg.port,
        path: post.headers.location!,
        method: 'PATCH',
        agent: false,
        headers: { 'Content-Length': data.length },
      },
      (res) => {
        res.resume();
        res.on('end', () => resolve({ status: res.statusCode ?? 0, range: res.headers.range as string }));
      },
    );
    req.on('error', reject);
    const id = post.headers.location!.split('/').pop()!;
    const file = path.join(reg.base, 'root', 'uploads', id, 'data');
    req.write(data.subarray(0, 1000), async () => {
      // Once the registry is writing this body, ask it to stop; then send the rest.
      for (let i = 0; i < 200 && (await fs.stat(file)).size === 0; i++)
        await new Promise((r) => setTimeout(r, 10));
      reg.proc.kill('SIGTERM');
      setTimeout(() => req.end(data.subarray(1000)), 300);
    });
  });
  const res = await inflight;
  assert.equal(res.status, 202);
  assert.equal(res.range, `0-${data.length - 1}`);
  assert.equal(await reg.exited, 0);
  await assert.rejects(request(reg.url, 'GET', '/v2/'), /ECONNREFUSED/);
  assert.match(reg.logs, /"msg":"shutting down"/);
  assert.match(reg.logs, /"msg":"stopped"/);

  // Restart on the same root: the upload session resumes where it stopped.
  const again = await startRegistry({ base: reg.base });
  cleanup.push(again);
  const st = await request(again.url, 'GET', post.headers.location!);
  assert.equal(st.status, 204);
  assert.equal(st.headers.range, `0-${data.length - 1}`);
  const tail = randomBytes(10);
  const all = Buffer.concat([data, tail]);
  const put = await request(again.url, 'PUT', `${post.headers.location}?digest=${sha256(all)}`, {
    body: tail,
  });
  assert.equal(put.status, 201, put.body.toString());
  assert.deepEqual((await request(again.url, 'GET', `/v2/shut/down/blobs/${sha256(all)}`)).body, all);
});

test('health endpoint and structured JSON request logs', async () => {
  const reg = await started();
  const h = await request(reg.url, 'GET', '/healthz');
  assert.equal(h.status, 200);
  assert.deepEqual(h.json(), { status: 'ok' });
  await request(reg.url, 'GET', '/v2/log/me/manifests/nope');
  await new Promise((r) => setTimeout(r, 100));
  const lines = reg.logs
    .split('\n')
    .filter(Boolean)
    .map((l) => JSON.parse(l));
  const entry = lines.find((l) => l.msg === 'request' && l.path === '/v2/log/me/manifests/nope');
  assert.ok(entry, reg.logs);
  assert.equal(entry.method, 'GET');
  assert.equal(entry.status, 404);
  assert.equal(entry.repository, 'log/me');
  assert.equal(typeof entry.durationMs, 'number');
  assert.ok(entry.time);
});

test('limits: oversized blobs and manifests are refused with 413, and the server keeps serving', async () => {
  const reg = await started({ config: { limits: { blobBytes: 4096, manifestBytes: 2048 } } });
  const big = randomBytes(5000);
  const r = await request(reg.url, 'POST', `/v2/lim/x/blobs/uploads/?digest=${sha256(big)}`, { body: big });
  assert.equal(r.status, 413);
  assert.equal(r.json().errors[0].code, 'SIZE_INVALID');
  // Chunked: the chunk that crosses the limit is refused and rolled back.
  const post = await request(reg.url, 'POST', '/v2/lim/x/blobs/uploads/');
  assert.equal(
    (await request(reg.url, 'PATCH', post.headers.location!, { body: big.subarray(0, 3000) })).status,
    202,
  );
  const over = await request(reg.url, 'PATCH', post.headers.location!, { body: big.subarray(3000) });
  assert.equal(over.status, 413);
  assert.equal((await request(reg.url, 'GET', post.headers.location!)).headers.range, '0-2999');
  const img = await pushImage(reg.url, 'lim/x', { annotations: { pad: 'x'.repeat(3000) } }).catch(
    (e: Error) => e,
  );
  assert.match(String(img), /manifest PUT 413/);
  assert.equal((await request(reg.url, 'GET', '/v2/')).status, 200);
});

test('TLS: serves HTTPS with the configured certificate', async () => {
  const dir = tempDir('berth-reg-tls-');
  dirs.push(dir);
  const r = await runCmd('openssl', [
    'req',
    '-x509',
    '-newkey',
    'ec',
    '-pkeyopt',
    'ec_paramgen_curve:prime256v1',
    '-nodes',
    '-days',
    '1',
    '-subj',
    '/CN=127.0.0.1',
    '-addext',
    'subjectAltName=IP:127.0.0.1',
    '-keyout',
    path.join(dir, 'key.pem'),
    '-out',
    path.join(dir, 'cert.pem'),
  ]);
  assert.equal(r.code, 0, r.stderr);
  const reg = await started({
    config: { tls: { certificate: path.join(dir, 'cert.pem'), key: path.join(dir, 'key.pem') } },
  });
  assert.match(reg.url, /^https:/);
  const ping = await request(reg.url, 'GET', '/v2/');
  assert.equal(ping.status, 200);
  await pushImage(reg.url, 'tls/app', { tag: 'v1' });
  const skopeo = await runCmd(
    'skopeo',
    ['inspect', '--raw', '--cert-dir', dir, '--tls-verify=false', `docker://${reg.host}/tls/app:v1`],
    { timeoutMs: 30_000 },
  );
  assert.equal(skopeo.code, 0, skopeo.stderr);
  assert.match(skopeo.stdout, /"schemaVersion":2/);
});
