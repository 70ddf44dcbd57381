/**
 * Two simultaneous pulls of one image through berthd download its layer once: the second waits for
 * the first's download; when that download fails, the second downloads the layer itself. A proxy in
 * front of a berth-registry holds the first download of a layer midway (so the second pull surely
 * starts while it runs) and counts the layer's GETs.
 */
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import * as http from 'node:http';
import type { AddressInfo } from 'node:net';
import { after, before, test } from 'node:test';
import { gzipSync } from 'node:zlib';
import * as tar from 'tar-stream';
import { startDaemon, type TestDaemon } from './helpers/daemon.js';
import { type Proc, pushBlob, request, sha256, startRegistry } from './registry/helpers.js';

let d: TestDaemon;
let reg: Proc;
let proxy: http.Server;

/** What the proxy does with one image's layer: hold its first GET midway, then finish or corrupt it. */
class Scenario {
  gets = 0;
  layerDigest = '';
  corrupt = false;
  readonly held: Promise<void>;
  private heldNow!: () => void;
  readonly gate: Promise<void>;
  release!: () => void;
  constructor(readonly tag: string) {
    this.held = new Promise((resolve) => {
      this.heldNow = resolve;
    });
    this.gate = new Promise((resolve) => {
      this.release = resolve;
    });
  }
  /** Answers the proxied layer GET: the first one 64 KiB, then the rest once released. */
  serve(all: Buffer, res: http.ServerResponse): void {
    if (++this.gets !== 1) {
      res.end(all);
      return;
    }
    res.write(all.subarray(0, 65536));
    this.heldNow();
    this.gate.then(() => {
      const rest = Buffer.from(all.subarray(65536));
      if (this.corrupt) rest[rest.length - 100] ^= 0xff;
      res.end(rest);
    });
  }
}

const scenarios = [new Scenario('joins'), new Scenario('takes-over')];
scenarios[1].corrupt = true;

const ARCH = process.arch === 'x64' ? 'amd64' : process.arch;

async function layerTar(): Promise<Buffer> {
  const pack = tar.pack();
  pack.entry({ name: 'data', mode: 0o644, mtime: new Date(0) }, randomBytes(1 << 20));
  pack.finalize();
  const chunks: Buffer[] = [];
  for await (const c of pack) chunks.push(c as Buffer);
  return Buffer.concat(chunks);
}

/** An image of one fresh layer, pushed as team/shared:<tag>; returns the layer's blob digest. */
async function pushImage(tag: string): Promise<string> {
  const raw = await layerTar();
  const blob = gzipSync(raw, { level: 1 });
  const layerDigest = await pushBlob(reg.url, 'team/shared', blob);
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
  const put = await request(reg.url, 'PUT', `/v2/team/shared/manifests/${tag}`, {
    headers: { 'Content-Type': 'application/vnd.oci.image.manifest.v1+json' },
    body: manifest,
  });
  assert.equal(put.status, 201);
  return layerDigest;
}

before(async () => {
  reg = await startRegistry();
  for (const s of scenarios) s.layerDigest = await pushImage(s.tag);
  // Everything passes through; the layers of the scenarios are answered by them.
  proxy = http.createServer((req, res) => {
    const scenario = scenarios.find(
      (s) => req.method === 'GET' && req.url?.endsWith(`/blobs/${s.layerDigest}`),
    );
    const up = http.request(
      { host: '127.0.0.1', port: reg.port, path: req.url, method: req.method, headers: req.headers },
      (ur) => {
        res.writeHead(ur.statusCode ?? 502, ur.headers);
        if (!scenario) {
          ur.pipe(res);
          return;
        }
        const chunks: Buffer[] = [];
        ur.on('data', (c: Buffer) => chunks.push(c));
        ur.on('end', () => scenario.serve(Buffer.concat(chunks), res));
      },
    );
    up.on('error', () => res.destroy());
    req.pipe(up);
  });
  await new Promise<void>((resolve) => proxy.listen(0, '127.0.0.1', resolve));
  d = await startDaemon();
});
after(async () => {
  for (const s of scenarios) s.release();
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

/** Starts two pulls of the scenario's image, the second while the first's layer download is held. */
async function twoPulls(s: Scenario) {
  const port = (proxy.address() as AddressInfo).port;
  const ref = `127.0.0.1:${port}/team/shared`;
  const id = s.layerDigest.slice(7, 19);
  const first = startPull(ref, s.tag);
  await s.held; // the first pull is mid-layer
  const second = startPull(ref, s.tag);
  // Either the second pull waits for the download (as it should) or asks the registry for the layer.
  await until(
    'the second pull to wait or to fetch',
    () => s.gets > 1 || second.messages.some((m) => m.status === 'Waiting' && m.id === id),
  );
  const fetchedBeforeRelease = s.gets;
  s.release();
  const [a, b] = await Promise.allSettled([first.done, second.done]);
  assert.equal(a.status, 'fulfilled');
  assert.equal(b.status, 'fulfilled');
  return { ref, id, first, second, fetchedBeforeRelease };
}

test('a second pull of a layer being downloaded waits for that download instead of fetching it again', async () => {
  const s = scenarios[0];
  const { ref, id, first, second } = await twoPulls(s);
  assert.equal(s.gets, 1, 'the layer was downloaded once');
  for (const p of [first, second]) {
    assert.deepEqual(
      p.messages.filter((m) => m.error),
      [],
    );
    assert.ok(p.messages.some((m) => m.status === 'Pull complete' && m.id === id));
    assert.match(p.messages.at(-1)?.status ?? '', /^Status: /);
  }
  const inspect = await d.docker(['image', 'inspect', '--format', '{{.Id}}', `${ref}:${s.tag}`]);
  assert.equal(inspect.code, 0, inspect.stderr);
});

test('when the download waited for fails, the waiting pull downloads the layer itself', async () => {
  const s = scenarios[1];
  const { ref, id, first, second, fetchedBeforeRelease } = await twoPulls(s);
  assert.equal(fetchedBeforeRelease, 1, 'the second pull waited');
  assert.ok(
    first.messages.some((m) => m.error),
    'the first pull got the corrupt layer and failed',
  );
  assert.equal(s.gets, 2, 'the second pull fetched the layer once the first failed');
  assert.deepEqual(
    second.messages.filter((m) => m.error),
    [],
  );
  assert.ok(second.messages.some((m) => m.status === 'Pull complete' && m.id === id));
  const inspect = await d.docker(['image', 'inspect', '--format', '{{.Id}}', `${ref}:${s.tag}`]);
  assert.equal(inspect.code, 0, inspect.stderr);
});
