/**
 * Test helpers for berth-registry: start it (and Debian's docker-registry as a peer) on a free
 * loopback port with a private root, make small OCI images, and speak raw HTTP to them.
 */
import { type ChildProcess, spawn } from 'node:child_process';
import { createHash } from 'node:crypto';
import { existsSync, promises as fs, mkdtempSync, readFileSync } from 'node:fs';
import * as http from 'node:http';
import * as https from 'node:https';
import * as net from 'node:net';
import { tmpdir } from 'node:os';
import * as path from 'node:path';
import { fileURLToPath } from 'node:url';
import { gzipSync } from 'node:zlib';
import * as tar from 'tar-stream';

export const REPO = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..', '..');
export const REGISTRY_BIN = path.join(REPO, 'bin', 'berth-registry');

export const sha256 = (b: Buffer | string) => `sha256:${createHash('sha256').update(b).digest('hex')}`;
export const sha512 = (b: Buffer | string) => `sha512:${createHash('sha512').update(b).digest('hex')}`;

export function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const s = net.createServer();
    s.once('error', reject);
    s.listen(0, '127.0.0.1', () => {
      const port = (s.address() as net.AddressInfo).port;
      s.close(() => resolve(port));
    });
  });
}

export function tempDir(prefix: string): string {
  return mkdtempSync(path.join(tmpdir(), prefix));
}

export class Proc {
  logs = '';
  exited?: Promise<number | null>;
  scheme = 'http';
  constructor(
    readonly proc: ChildProcess,
    readonly base: string,
    readonly port: number,
  ) {
    proc.stdout?.on('data', (b: Buffer) => (this.logs += b.toString()));
    proc.stderr?.on('data', (b: Buffer) => (this.logs += b.toString()));
    this.exited = new Promise((resolve) => proc.on('exit', (code) => resolve(code)));
  }
  get host(): string {
    return `127.0.0.1:${this.port}`;
  }
  get url(): string {
    return `${this.scheme}://127.0.0.1:${this.port}`;
  }
  async stop(): Promise<void> {
    if (this.proc.exitCode === null && this.proc.signalCode === null) {
      this.proc.kill('SIGTERM');
      const t = setTimeout(() => this.proc.kill('SIGKILL'), 10_000);
      await this.exited;
      clearTimeout(t);
    }
  }
  async destroy(): Promise<void> {
    await this.stop();
    await fs.rm(this.base, { recursive: true, force: true });
  }
}

async function waitReady(p: Proc, pathName = '/v2/'): Promise<void> {
  const deadline = Date.now() + 15_000;
  while (Date.now() < deadline) {
    if (p.proc.exitCode !== null) throw new Error(`registry exited early:\n${p.logs}`);
    try {
      const r = await request(p.url, 'GET', pathName);
      if (r.status > 0) return;
    } catch {}
    await new Promise((r) => setTimeout(r, 50));
  }
  throw new Error(`registry did not become ready:\n${p.logs}`);
}

/** Starts berth-registry: open mode on `root`, or with a config object written to a file. */
export async function startRegistry(
  opts: { config?: Record<string, unknown>; base?: string } = {},
): Promise<Proc> {
  const base = opts.base ?? tempDir('berth-reg-');
  const port = await freePort();
  const root = path.join(base, 'root');
  let args: string[];
  if (opts.config) {
    const file = path.join(base, 'config.json');
    await fs.writeFile(file, JSON.stringify({ root, ...opts.config, listen: `127.0.0.1:${port}` }));
    args = ['serve', '--config', file];
  } else args = ['serve', '--listen', `127.0.0.1:${port}`, '--root', root];
  const proc = spawn(process.execPath, [REGISTRY_BIN, ...args], { stdio: ['ignore', 'pipe', 'pipe'] });
  const p = new Proc(proc, base, port);
  if (opts.config?.tls) p.scheme = 'https';
  try {
    await waitReady(p, '/healthz');
  } catch (err) {
    // Do not leak the process or (when this call made it) the directory.
    if (opts.base) await p.stop();
    else await p.destroy();
    throw err;
  }
  return p;
}

/**
 * Starts Debian's docker-registry (CNCF distribution 2.8) if installed: delete enabled, or with
 * `proxy`, a pull-through cache of that registry URL (its proxy mode has no deletes).
 */
export async function startDockerRegistry(opts: { proxy?: string } = {}): Promise<Proc | undefined> {
  if (!existsSync('/usr/bin/docker-registry')) return undefined;
  const base = tempDir(opts.proxy ? 'dist-proxy-' : 'dist-reg-');
  const port = await freePort();
  const cfg = [
    'version: 0.1',
    'log:',
    '  level: error',
    '  accesslog:',
    '    disabled: true',
    'storage:',
    '  filesystem:',
    `    rootdirectory: ${base}/root`,
    ...(opts.proxy ? [] : ['  delete:', '    enabled: true']),
    'http:',
    `  addr: 127.0.0.1:${port}`,
    ...(opts.proxy ? ['proxy:', `  remoteurl: ${opts.proxy}`] : []),
    '',
  ].join('\n');
  await fs.writeFile(path.join(base, 'config.yml'), cfg);
  const proc = spawn('/usr/bin/docker-registry', ['serve', path.join(base, 'config.yml')], {
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  const p = new Proc(proc, base, port);
  try {
    await waitReady(p);
  } catch (err) {
    await p.destroy();
    throw err;
  }
  return p;
}

export interface Resp {
  status: number;
  headers: http.IncomingHttpHeaders;
  body: Buffer;
  json<T = any>(): T;
}

/** One HTTP request on a fresh connection (no keep-alive surprises between tests). */
export function request(
  base: string,
  method: string,
  p: string,
  opts: { headers?: Record<string, string | string[] | number>; body?: Buffer | string } = {},
): Promise<Resp> {
  return new Promise((resolve, reject) => {
    // The path is sent as given (no URL normalisation), so tests can send `..` and odd encodings.
    const u = new URL(base);
    const mod = u.protocol === 'https:' ? https : http;
    const req = mod.request(
      {
        rejectUnauthorized: false,
        host: u.hostname,
        port: u.port,
        path: p,
        method,
        headers: { Connection: 'close', ...(opts.headers ?? {}) },
        agent: false,
      },
      (res) => {
        const chunks: Buffer[] = [];
        res.on('data', (c: Buffer) => chunks.push(c));
        res.on('end', () => {
          const body = Buffer.concat(chunks);
          resolve({
            status: res.statusCode ?? 0,
            headers: res.headers,
            body,
            json: () => JSON.parse(body.toString('utf8')),
          });
        });
        res.on('error', reject);
      },
    );
    req.on('error', reject);
    if (opts.body !== undefined) req.end(opts.body);
    else req.end();
  });
}

/** Pushes a blob monolithically (POST then PUT) and returns its digest. */
export async function pushBlob(
  base: string,
  repo: string,
  data: Buffer,
  digest = sha256(data),
  headers = {},
) {
  const post = await request(base, 'POST', `/v2/${repo}/blobs/uploads/`, { headers });
  if (post.status !== 202) throw new Error(`POST ${post.status} ${post.body}`);
  const loc = new URL(post.headers.location!, base);
  loc.searchParams.set('digest', digest);
  const put = await request(base, 'PUT', loc.pathname + loc.search, {
    headers: { ...headers, 'Content-Type': 'application/octet-stream', 'Content-Length': data.length },
    body: data,
  });
  if (put.status !== 201) throw new Error(`PUT ${put.status} ${put.body}`);
  return digest;
}

export interface TestImage {
  config: Buffer;
  layers: Buffer[];
  manifest: Buffer;
  digest: string;
}

/** An OCI image (config + layers) with an optional artifactType/subject, pushed to `repo`. */
export async function pushImage(
  base: string,
  repo: string,
  opts: {
    tag?: string;
    layers?: Buffer[];
    subject?: { mediaType: string; digest: string; size: number };
    artifactType?: string;
    annotations?: Record<string, string>;
    configMediaType?: string;
    headers?: Record<string, string>;
  } = {},
): Promise<TestImage> {
  const headers = opts.headers ?? {};
  const layers = opts.layers ?? [Buffer.from(`layer-${Math.random()}`)];
  const config = Buffer.from(
    JSON.stringify({
      architecture: 'amd64',
      os: 'linux',
      rootfs: { type: 'layers', diff_ids: [] },
      n: Math.random(),
    }),
  );
  await pushBlob(base, repo, config, sha256(config), headers);
  for (const l of layers) await pushBlob(base, repo, l, sha256(l), headers);
  const m: Record<string, unknown> = {
    schemaVersion: 2,
    mediaType: 'application/vnd.oci.image.manifest.v1+json',
    config: {
      mediaType: opts.configMediaType ?? 'application/vnd.oci.image.config.v1+json',
      digest: sha256(config),
      size: config.length,
    },
    layers: layers.map((l) => ({
      mediaType: 'application/vnd.oci.image.layer.v1.tar',
      digest: sha256(l),
      size: l.length,
    })),
  };
  if (opts.artifactType) m.artifactType = opts.artifactType;
  if (opts.subject) m.subject = opts.subject;
  if (opts.annotations) m.annotations = opts.annotations;
  const manifest = Buffer.from(JSON.stringify(m));
  const digest = sha256(manifest);
  const r = await request(base, 'PUT', `/v2/${repo}/manifests/${opts.tag ?? digest}`, {
    headers: { ...headers, 'Content-Type': 'application/vnd.oci.image.manifest.v1+json' },
    body: manifest,
  });
  if (r.status !== 201) throw new Error(`manifest PUT ${r.status} ${r.body}`);
  return { config, layers, manifest, digest };
}

/** Writes an OCI image layout at `dir` holding busybox (from /bin/busybox) plus optional extra layers. */
export async function makeBusyboxLayout(
  dir: string,
  opts: { tag?: string; extraLayers?: Buffer[] } = {},
): Promise<string> {
  const tag = opts.tag ?? 'latest';
  await fs.mkdir(path.join(dir, 'blobs', 'sha256'), { recursive: true });
  const pack = tar.pack();
  const busybox = readFileSync('/bin/busybox');
  pack.entry({ name: 'bin/', type: 'directory', mode: 0o755, mtime: new Date(0) });
  pack.entry({ name: 'bin/busybox', mode: 0o755, mtime: new Date(0) }, busybox);
  pack.entry({ name: 'bin/sh', type: 'symlink', linkname: 'busybox', mtime: new Date(0) });
  pack.finalize();
  const chunks: Buffer[] = [];
  for await (const c of pack) chunks.push(c as Buffer);
  const rawLayers = [Buffer.concat(chunks), ...(opts.extraLayers ?? [])];
  const blobs: { mediaType: string; digest: string; size: number }[] = [];
  const diffIds: string[] = [];
  const write = async (data: Buffer) => {
    const d = sha256(data);
    await fs.writeFile(path.join(dir, 'blobs', 'sha256', d.slice(7)), data);
    return d;
  };
  for (const raw of rawLayers) {
    diffIds.push(sha256(raw));
    const gz = gzipSync(raw, { level: 1 });
    blobs.push({
      mediaType: 'application/vnd.oci.image.layer.v1.tar+gzip',
      digest: await write(gz),
      size: gz.length,
    });
  }
  const config = Buffer.from(
    JSON.stringify({
      architecture: 'amd64',
      os: 'linux',
      config: { Cmd: ['sh'] },
      rootfs: { type: 'layers', diff_ids: diffIds },
    }),
  );
  const manifest = Buffer.from(
    JSON.stringify({
      schemaVersion: 2,
      mediaType: 'application/vnd.oci.image.manifest.v1+json',
      config: {
        mediaType: 'application/vnd.oci.image.config.v1+json',
        digest: await write(config),
        size: config.length,
      },
      layers: blobs,
    }),
  );
  const md = await write(manifest);
  await fs.writeFile(path.join(dir, 'oci-layout'), JSON.stringify({ imageLayoutVersion: '1.0.0' }));
  await fs.writeFile(
    path.join(dir, 'index.json'),
    JSON.stringify({
      schemaVersion: 2,
      manifests: [
        {
          mediaType: 'application/vnd.oci.image.manifest.v1+json',
          digest: md,
          size: manifest.length,
          annotations: { 'org.opencontainers.image.ref.name': tag },
        },
      ],
    }),
  );
  return md;
}
