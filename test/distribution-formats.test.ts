/**
 * Pulls through mirrors that misbehave: a mirror answering garbage is skipped; gzip and zstd layers
 * behind an image index resolved to this platform; a layer with a wrong digest fails cleanly
 * (nothing half-pulled listed) and the next attempt completes; a connection cut mid-layer is
 * resumed with an HTTP range. The misbehaving mirror is a small proxy in front of a berth-registry.
 */
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import * as http from 'node:http';
import type { AddressInfo } from 'node:net';
import { after, before, test } from 'node:test';
import { gzipSync } from 'node:zlib';
import * as tar from 'tar-stream';
import { startDaemon, type TestDaemon } from './helpers/daemon.js';
import { type Proc, pushBlob, request, sha256, startRegistry } from './registry/helpers.js';

let d: TestDaemon;
let reg: Proc;
let garbage: http.Server;
let proxy: http.Server;
/** What the proxy does to GETs of one blob: pass it, flip a byte, or cut the first answer short. */
const fault: { digest?: string; mode?: 'corrupt' | 'cut' } = {};
const seen: string[] = [];

const ARCH = process.arch === 'x64' ? 'amd64' : process.arch;

async function tarOf(entries: { name: string; body?: Buffer; type?: 'symlink'; linkname?: string }[]): Promise<Buffer> {
  const pack = tar.pack();
  for (const e of entries)
    pack.entry({ name: e.name, mode: 0o755, mtime: new Date(0), type: e.type ?? 'file', linkname: e.linkname }, e.body ?? Buffer.alloc(0));
  pack.finalize();
  const chunks: Buffer[] = [];
  for await (const c of pack) chunks.push(c as Buffer);
  return Buffer.concat(chunks);
}

const compress = (raw: Buffer, how: 'gzip' | 'zstd') =>
  how === 'gzip' ? gzipSync(raw, { level: 1 }) : execFileSync('zstd', ['-q', '-c'], { input: raw, maxBuffer: 64 << 20 });

/** busybox plus one layer holding `files`, compressed `how`; pushed by digest (and tag). */
async function pushImage(
  repo: string,
  files: Record<string, Buffer>,
  how: 'gzip' | 'zstd',
  tag?: string,
): Promise<{ digest: string; size: number; dataLayer: string }> {
  const base = await tarOf([
    { name: 'bin/busybox', body: readFileSync('/bin/busybox') },
    { name: 'bin/sh', type: 'symlink', linkname: 'busybox' },
  ]);
  const data = await tarOf(Object.entries(files).map(([name, body]) => ({ name, body })));
  const layers = [
    { raw: base, blob: compress(base, 'gzip'), type: 'application/vnd.oci.image.layer.v1.tar+gzip' },
    { raw: data, blob: compress(data, how), type: `application/vnd.oci.image.layer.v1.tar+${how}` },
  ];
  const config = Buffer.from(
    JSON.stringify({ architecture: ARCH, os: 'linux', config: { Cmd: ['sh'] }, rootfs: { type: 'layers', diff_ids: layers.map((l) => sha256(l.raw)) } }),
  );
  await pushBlob(reg.url, repo, config);
  for (const l of layers) await pushBlob(reg.url, repo, l.blob);
  const manifest = Buffer.from(
    JSON.stringify({
      schemaVersion: 2,
      mediaType: 'application/vnd.oci.image.manifest.v1+json',
      config: { mediaType: 'application/vnd.oci.image.config.v1+json', digest: sha256(config), size: config.length },
      layers: layers.map((l) => ({ mediaType: l.type, digest: sha256(l.blob), size: l.blob.length })),
    }),
  );
  const digest = sha256(manifest);
  const r = await request(reg.url, 'PUT', `/v2/${repo}/manifests/${tag ?? digest}`, {
    headers: { 'Content-Type': 'application/vnd.oci.image.manifest.v1+json' },
    body: manifest,
  });
  assert.equal(r.status, 201, r.body.toString());
  return { digest, size: manifest.length, dataLayer: sha256(layers[1].blob) };
}

async function pushIndex(repo: string, tag: string, entries: { digest: string; size: number; arch: string }[]) {
  const index = Buffer.from(
    JSON.stringify({
      schemaVersion: 2,
      mediaType: 'application/vnd.oci.image.index.v1+json',
      manifests: entries.map((e) => ({
        mediaType: 'application/vnd.oci.image.manifest.v1+json',
        digest: e.digest,
        size: e.size,
        platform: { os: 'linux', architecture: e.arch },
      })),
    }),
  );
  const r = await request(reg.url, 'PUT', `/v2/${repo}/manifests/${tag}`, {
    headers: { 'Content-Type': 'application/vnd.oci.image.index.v1+json' },
    body: index,
  });
  assert.equal(r.status, 201, r.body.toString());
}

function listen(server: http.Server): Promise<string> {
  return new Promise((resolve) =>
    server.listen(0, '127.0.0.1', () => resolve(`http://127.0.0.1:${(server.address() as AddressInfo).port}`)),
  );
}

/** Forwards to the registry; applies `fault` to the blob it names. */
function proxyHandler(req: http.IncomingMessage, res: http.ServerResponse): void {
  seen.push(`${req.method} ${req.url} ${req.headers.range ?? ''}`.trim());
  const u = new URL(reg.url);
  const up = http.request(
    { host: u.hostname, port: u.port, path: req.url, method: req.method, headers: { ...req.headers, host: u.host }, agent: false },
    (ur) => {
      const faulty = fault.digest && req.method === 'GET' && req.url?.endsWith(`/blobs/${fault.digest}`) && ur.statusCode === 200;
      res.writeHead(ur.statusCode ?? 502, ur.headers);
      if (!faulty) return void ur.pipe(res);
      const chunks: Buffer[] = [];
      ur.on('data', (c: Buffer) => chunks.push(c));
      ur.on('end', () => {
        const body = Buffer.concat(chunks);
        if (fault.mode === 'corrupt') {
          body[body.length >> 1] ^= 0xff;
          res.end(body);
        } else {
          fault.digest = undefined; // only the first answer is cut
          res.write(body.subarray(0, body.length >> 1), () => res.socket?.destroy());
        }
      });
    },
  );
  up.on('error', () => res.destroy());
  req.pipe(up);
}

before(async () => {
  reg = await startRegistry();
  garbage = http.createServer((_req, res) => {
    res.writeHead(200, { 'Content-Type': 'application/json' });
    res.end('this is not a registry');
  });
  proxy = http.createServer(proxyHandler);
  const g = await listen(garbage);
  const p = await listen(proxy);
  d = await startDaemon({ args: ['--registry-mirror', g, '--registry-mirror', p] });
});
after(async () => {
  await d?.destroy();
  await reg?.destroy();
  garbage?.close();
  proxy?.close();
  garbage?.closeAllConnections();
  proxy?.closeAllConnections();
});

test('an index resolves to this platform; gzip and zstd layers; the garbage mirror is skipped', async () => {
  const here = await pushImage('library/fmt', { data: Buffer.from('zstd-layer\n') }, 'zstd');
  const other = await pushImage('library/fmt', { data: Buffer.from('other-arch\n') }, 'gzip');
  await pushIndex('library/fmt', 'multi', [
    { ...other, arch: ARCH === 's390x' ? 'ppc64le' : 's390x' },
    { ...here, arch: ARCH },
  ]);
  const r = await d.docker(['pull', 'fmt:multi']);
  assert.equal(r.code, 0, r.stderr);
  const run = await d.docker(['run', '--rm', '--pull', 'never', '--network', 'none', 'fmt:multi', 'busybox', 'cat', '/data']);
  assert.equal(run.code, 0, run.stderr);
  assert.equal(run.stdout, 'zstd-layer\n');
  assert.ok(!seen.some((s) => s.includes(other.digest)), 'the other platform was not fetched');

  await pushIndex('library/fmt', 'elsewhere', [{ ...other, arch: ARCH === 's390x' ? 'ppc64le' : 's390x' }]);
  const none = await d.docker(['pull', 'fmt:elsewhere']);
  assert.equal(none.code, 1);
  assert.match(none.stderr, new RegExp(`no matching manifest for linux/${ARCH}`));
});

test('a layer with a wrong digest fails cleanly; nothing is listed; the next attempt completes', async () => {
  const img = await pushImage('library/bad', { data: Buffer.from('finally\n') }, 'gzip', '1');
  fault.digest = img.dataLayer;
  fault.mode = 'corrupt';
  const r = await d.docker(['pull', 'bad:1']);
  assert.equal(r.code, 1);
  assert.match(r.stderr, /digest mismatch/);
  assert.equal((await d.docker(['images', '-q', 'bad'])).stdout, '');
  fault.digest = undefined;
  const ok = await d.docker(['pull', 'bad:1']);
  assert.equal(ok.code, 0, ok.stderr);
  const run = await d.docker(['run', '--rm', '--pull', 'never', '--network', 'none', 'bad:1', 'busybox', 'cat', '/data']);
  assert.equal(run.stdout, 'finally\n');
});

test('a connection cut in the middle of a layer is resumed with a range request', async () => {
  const big = execFileSync('head', ['-c', String(3 << 20), '/dev/urandom'], { maxBuffer: 8 << 20 });
  const img = await pushImage('library/big', { data: Buffer.from('resumed\n'), noise: big }, 'gzip', '1');
  fault.digest = img.dataLayer;
  fault.mode = 'cut';
  const r = await d.docker(['pull', 'big:1']);
  assert.equal(r.code, 0, r.stderr);
  assert.ok(
    seen.some((s) => s.startsWith(`GET /v2/library/big/blobs/${img.dataLayer} bytes=`)),
    seen.join('\n'),
  );
  const run = await d.docker(['run', '--rm', '--pull', 'never', '--network', 'none', 'big:1', 'busybox', 'cat', '/data']);
  assert.equal(run.stdout, 'resumed\n');
});
