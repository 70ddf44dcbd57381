/**
 * Registry benchmark (not a test), issue 3: push and pull of a ~200 MB multi-layer image with
 * skopeo against berth-registry and against Debian's docker-registry (CNCF distribution 2.8) in the
 * same run, and manifest HEAD requests per second under a bounded loopback load; printed as ratios
 * berth / docker-registry (target ≥ 1.0).
 *
 * Each round starts both registries on fresh roots (so pushes really upload), then alternates which
 * one goes first. The image is an OCI layout of `--layers` uncompressed tar layers of random bytes
 * (`--size` MiB in total), written once to a temp directory. The HEAD load is `--concurrency`
 * keep-alive connections doing `HEAD /v2/<name>/manifests/<tag>` back to back for `--seconds`.
 *
 *   node --import tsx bench/registry.ts [--size 200] [--layers 4] [--rounds 3] [--concurrency 16] [--seconds 5]
 */
import { randomBytes } from 'node:crypto';
import { promises as fs } from 'node:fs';
import * as http from 'node:http';
import * as path from 'node:path';
import * as tar from 'tar-stream';
import { runCmd } from '../test/helpers/run.js';
import { type Proc, sha256, startDockerRegistry, startRegistry, tempDir } from '../test/registry/helpers.js';

const arg = (name: string, def: number) => {
  const i = process.argv.indexOf(`--${name}`);
  return i >= 0 ? Number(process.argv[i + 1]) || def : def;
};
const sizeMiB = arg('size', 200);
const layerCount = arg('layers', 4);
const rounds = arg('rounds', 3);
const concurrency = arg('concurrency', 16);
const seconds = arg('seconds', 5);
const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)];

async function makeLayout(dir: string): Promise<number> {
  await fs.mkdir(path.join(dir, 'blobs', 'sha256'), { recursive: true });
  const write = async (b: Buffer) => {
    const d = sha256(b);
    await fs.writeFile(path.join(dir, 'blobs', 'sha256', d.slice(7)), b);
    return { digest: d, size: b.length };
  };
  const per = Math.floor((sizeMiB * 1024 * 1024) / layerCount);
  const layers = [];
  const diffIds = [];
  let total = 0;
  for (let i = 0; i < layerCount; i++) {
    const pack = tar.pack();
    pack.entry({ name: `data-${i}.bin`, mode: 0o644, mtime: new Date(0) }, randomBytes(per));
    pack.finalize();
    const chunks: Buffer[] = [];
    for await (const c of pack) chunks.push(c as Buffer);
    const t = Buffer.concat(chunks);
    const d = await write(t);
    diffIds.push(d.digest);
    layers.push({ mediaType: 'application/vnd.oci.image.layer.v1.tar', ...d });
    total += t.length;
  }
  const config = await write(
    Buffer.from(
      JSON.stringify({ architecture: 'amd64', os: 'linux', rootfs: { type: 'layers', diff_ids: diffIds } }),
    ),
  );
  const manifest = Buffer.from(
    JSON.stringify({
      schemaVersion: 2,
      mediaType: 'application/vnd.oci.image.manifest.v1+json',
      config: { mediaType: 'application/vnd.oci.image.config.v1+json', ...config },
      layers,
    }),
  );
  const m = await write(manifest);
  await fs.writeFile(path.join(dir, 'oci-layout'), '{"imageLayoutVersion":"1.0.0"}');
  await fs.writeFile(
    path.join(dir, 'index.json'),
    JSON.stringify({
      schemaVersion: 2,
      manifests: [
        {
          mediaType: 'application/vnd.oci.image.manifest.v1+json',
          ...m,
          annotations: { 'org.opencontainers.image.ref.name': 'bench' },
        },
      ],
    }),
  );
  return total;
}

async function skopeo(...args: string[]): Promise<number> {
  const t0 = process.hrtime.bigint();
  const r = await runCmd('skopeo', ['--insecure-policy', ...args], { timeoutMs: 600_000 });
  if (r.code !== 0) throw new Error(`skopeo ${args.join(' ')}: ${r.stderr}`);
  return Number(process.hrtime.bigint() - t0) / 1e9;
}

/** HEAD requests per second over `concurrency` keep-alive connections. */
async function headRate(reg: Proc, pathName: string): Promise<number> {
  const agent = new http.Agent({ keepAlive: true, maxSockets: concurrency });
  const deadline = Date.now() + seconds * 1000;
  let done = 0;
  let failed = 0;
  const one = () =>
    new Promise<void>((resolve) => {
      const req = http.request(
        {
          host: '127.0.0.1',
          port: reg.port,
          path: pathName,
          method: 'HEAD',
          agent,
          headers: { Accept: 'application/vnd.oci.image.manifest.v1+json' },
        },
        (res) => {
          if (res.statusCode === 200) done++;
          else failed++;
          res.resume();
          res.on('end', resolve);
        },
      );
      req.on('error', () => {
        failed++;
        resolve();
      });
      req.end();
    });
  const worker = async () => {
    while (Date.now() < deadline) await one();
  };
  const t0 = process.hrtime.bigint();
  await Promise.all(Array.from({ length: concurrency }, worker));
  const secs = Number(process.hrtime.bigint() - t0) / 1e9;
  agent.destroy();
  if (failed) throw new Error(`${failed} HEAD requests failed`);
  return done / secs;
}

async function main() {
  const work = tempDir('berth-reg-bench-');
  try {
    const layout = path.join(work, 'layout');
    const bytes = await makeLayout(layout);
    const mb = bytes / 1e6;
    console.log(`image: ${layerCount} layers, ${mb.toFixed(1)} MB; ${rounds} rounds`);
    const res: Record<'berth' | 'dist', { push: number[]; pull: number[]; head: number[] }> = {
      berth: { push: [], pull: [], head: [] },
      dist: { push: [], pull: [], head: [] },
    };
    for (let round = 0; round < rounds; round++) {
      const berth = await startRegistry({});
      const dist = await startDockerRegistry();
      if (!dist) throw new Error('docker-registry is not installed (apt-get install docker-registry)');
      try {
        const order: ['berth' | 'dist', Proc][] = [
          ['berth', berth],
          ['dist', dist],
        ];
        if (round % 2) order.reverse();
        for (const [name, reg] of order) {
          const push = await skopeo(
            'copy',
            '--dest-tls-verify=false',
            `oci:${layout}:bench`,
            `docker://${reg.host}/bench/img:1`,
          );
          const out = path.join(work, `pull-${name}-${round}`);
          const pull = await skopeo(
            'copy',
            '--src-tls-verify=false',
            `docker://${reg.host}/bench/img:1`,
            `oci:${out}:x`,
          );
          await fs.rm(out, { recursive: true, force: true });
          const head = await headRate(reg, '/v2/bench/img/manifests/1');
          res[name].push.push(mb / push);
          res[name].pull.push(mb / pull);
          res[name].head.push(head);
          console.log(
            `round ${round + 1} ${name === 'berth' ? 'berth-registry ' : 'docker-registry'}: push ${(mb / push).toFixed(1)} MB/s, pull ${(mb / pull).toFixed(1)} MB/s, HEAD ${head.toFixed(0)} req/s`,
          );
        }
      } finally {
        await berth.destroy();
        await dist.destroy();
      }
    }
    const line = (what: 'push' | 'pull' | 'head', unit: string) => {
      const b = median(res.berth[what]);
      const d = median(res.dist[what]);
      console.log(
        `${what.padEnd(5)} berth-registry ${b.toFixed(1)} ${unit}, docker-registry ${d.toFixed(1)} ${unit}, ratio ${(b / d).toFixed(2)}`,
      );
    };
    console.log(`medians (concurrency ${concurrency} for HEAD):`);
    line('push', 'MB/s');
    line('pull', 'MB/s');
    line('head', 'req/s');
  } finally {
    await fs.rm(work, { recursive: true, force: true });
  }
}

await main();
