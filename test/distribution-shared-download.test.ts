/**
 * Two simultaneous pulls of one image through berthd download its layer once: the second waits for
 * the first's download. A proxy in front of a berth-registry holds the first download midway, so
 * the second pull surely starts while it runs; the proxy counts the layer's GETs.
 */
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import * as http from 'node:http';
import type { AddressInfo } from 'node:net';
import { gzipSync } from 'node:zlib';
import { after, before, test } from 'node:test';
import * as tar from 'tar-stream';
import { startDaemon, type TestDaemon } from './helpers/daemon.js';
import { type Proc, pushBlob, request, sha256, startRegistry } from './registry/helpers.js';

let d: TestDaemon;
let reg: Proc;
let proxy: http.Server;
let layerDigest: string;
/** GETs of the layer blob that reached the proxy. */
let layerGets = 0;
let holdStarted!: () => void;
/** Settles once the first layer download is held midway. */
const firstHeld = new Promise<void>((resolve) => {
  holdStarted = resolve;
});
let releaseFirst!: () => void;
const gate = new Promise<void>((resolve) => {
  releaseFirst = resolve;
});

const ARCH = process.arch === 'x64' ? 'amd64' : process.arch;

async function layerTar(): Promise<Buffer> {
  const pack = tar.pack();
  pack.entry({ name: 'data', mode: 0o644, mtime: new Date(0) }, randomBytes(1 << 20));
  pack.finalize();
  const chunks: Buffer[] = [];
  for await (const c of pack) chunks.push(c as Buffer);
  return Buffer.concat(chunks);
}

before(async () => {
  reg = await startRegistry();
  const raw = await layerTar();
  const blob = gzipSync(raw, { level: 1 });
  layerDigest = await pushBlob(reg.url, 'team/shared', blob);
  const config = Buffer.from(
    JSON.stringify({
      architecture: ARCH,
      os: 'linux',
      config: {},
      rootfs: { type: 'layers', diff_ids: [sha256(raw)] },
    }),
  );
  await pushBlob(reg.url, 'team/shared', config);
  const manifest = Buffer.from(
    JSON.stringify({
      schemaVersion: 2,
      mediaType: 'application/vnd.oci.image.manifest.v1+json',
      config: {
        mediaType: 'application/vnd.oci.image.config.v1+json',
        digest: sha256(config),
        size: config.length,
      },
      layers: [
        { mediaType: 'application/vnd.oci.image.layer.v1.tar+gzip', digest: layerDigest, size: blob.length },
      ],
    }),
  );
  const put = await request(reg.url, 'PUT', '/v2/team/shared/manifests/1', {
    headers: { 'Content-Type': 'application/vnd.oci.image.manifest.v1+json' },
    body: manifest,
  });
  assert.equal(put.status, 201);
  // The proxy passes everything through; the first GET of the layer stops after 64 KiB until released.
  proxy = http.createServer((req, res) => {
    const isLayer = req.method === 'GET' && req.url?.endsWith(`/blobs/${layerDigest}`);
    const n = isLayer ? ++layerGets : 0;
    const up = http.request(
      { host: '127.0.0.1', port: reg.port, path: req.url, method: req.method, headers: req.headers },
      (ur) => {
        res.writeHead(ur.statusCode ?? 502, ur.headers);
        if (n !== 1) {
          ur.pipe(res);
          return;
        }
        const chunks: Buffer[] = [];
        ur.on('data', (c: Buffer) => chunks.push(c));
        ur.on('end', () => {
          const all = Buffer.concat(chunks);
          res.write(all.subarray(0, 65536));
          holdStarted();
          gate.then(() => res.end(all.subarray(65536)));
        });
      },
    );
    up.on('error', () => res.destroy());
    req.pipe(up);
  });
  await new Promise<void>((resolve) => proxy.listen(0, '127.0.0.1', resolve));
  d = await startDaemon();
});
after(async () => {
  releaseFirst?.();
  await d?.destroy();
  proxy?.closeAllConnections();
  proxy?.close();
  await reg?.destroy();
});

interface Message {
  status?: string;
  id?: string;
  error?: string;
}

/** `POST /images/create` on berthd; `messages` fills as the JSON stream arrives. */
function startPull(ref: string, tag: string): { messages: Message[]; done: Promise<void> } {
  const messages: Message[] = [];
  const done = new Promise<void>((resolve, reject) => {
    const req = http.request(
      {
        socketPath: d.socket,
        method: 'POST',
        path: `/v1.50/images/create?fromImage=${encodeURIComponent(ref)}&tag=${tag}`,
      },
      (res) => {
        let buf = '';
        res.on('data', (c: Buffer) => {
          buf += c.toString();
          let i = buf.indexOf('\n');
          while (i >= 0) {
            const line = buf.slice(0, i).trim();
            buf = buf.slice(i + 1);
            if (line) messages.push(JSON.parse(line) as Message);
            i = buf.indexOf('\n');
          }
        });
        res.on('end', () =>
          res.statusCode === 200 ? resolve() : reject(new Error(`status ${res.statusCode}: ${buf}`)),
        );
        res.on('error', reject);
      },
    );
    req.on('error', reject);
    req.end();
  });
  return { messages, done };
}

async function until(what: string, check: () => boolean, limitMs = 30_000): Promise<void> {
  const end = Date.now() + limitMs;
  while (!check()) {
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 20));
  }
}

test('a second pull of a layer being downloaded waits for that download instead of fetching it again', async () => {
  const port = (proxy.address() as AddressInfo).port;
  const ref = `127.0.0.1:${port}/team/shared`;
  const id = layerDigest.slice(7, 19);
  const first = startPull(ref, '1');
  await firstHeld; // the first pull is mid-layer
  const second = startPull(ref, '1');
  // Either the second pull joins the download (new) or asks the registry for the layer too (old).
  await until(
    'the second pull to wait or to fetch',
    () => layerGets > 1 || second.messages.some((m) => m.status === 'Waiting' && m.id === id),
  );
  releaseFirst();
  await Promise.all([first.done, second.done]);
  assert.equal(layerGets, 1, 'the layer was downloaded once');
  for (const p of [first, second]) {
    assert.deepEqual(
      p.messages.filter((m) => m.error),
      [],
    );
    assert.ok(p.messages.some((m) => m.status === 'Pull complete' && m.id === id));
    assert.match(p.messages.at(-1)?.status ?? '', /^Status: /);
  }
  const inspect = await d.docker(['image', 'inspect', '--format', '{{.Id}}', `${ref}:1`]);
  assert.equal(inspect.code, 0, inspect.stderr);
});
