/**
 * Distribution benchmark (not a test), issue 14; `bench/registry.ts` measures the registry alone.
 * A 5-layer image (≈ 100 MB: per layer 10 MiB random and 9 MB of text) made in a private berthd,
 * then per round, on fresh registries:
 *
 * - push through berthd (gzip, concurrent) vs skopeo pushing the same image (`docker save`
 *   archive, skopeo compresses it) to another repository: ratio berthd / skopeo;
 * - a second push (every layer exists);
 * - pull through berthd (download, verify, unpack) vs skopeo copying it into an OCI layout
 *   (download and write, no unpack): ratio berthd / skopeo;
 * - pull through a berth-registry pull-through cache, cold then warm, and through Debian's
 *   docker-registry (CNCF distribution 2.8) in proxy mode when installed: warm / direct (target
 *   ≤ 1.0) and berth cache / distribution cache.
 *
 * No dockerd here (the issue's comparison with dockerd needs docker.io installed): skopeo is the
 * in-run reference instead.
 *
 *   node --import tsx bench/distribution.ts [--rounds 2]
 */
import { promises as fs } from 'node:fs';
import * as path from 'node:path';
import { startDaemon, type TestDaemon } from '../test/helpers/daemon.js';
import { runCmd } from '../test/helpers/run.js';
import { startDockerRegistry, startRegistry, tempDir } from '../test/registry/helpers.js';

const arg = (name: string, def: number) => {
  const i = process.argv.indexOf(`--${name}`);
  return i >= 0 ? Number(process.argv[i + 1]) || def : def;
};
const rounds = arg('rounds', 2);
const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)];

async function timed(fn: () => Promise<unknown>): Promise<number> {
  const t0 = process.hrtime.bigint();
  await fn();
  return Number(process.hrtime.bigint() - t0) / 1e9;
}

async function ok(p: Promise<{ code: number | null; stderr: string; stdout: string }>, what: string) {
  const r = await p;
  if (r.code !== 0) throw new Error(`${what}: ${r.stderr || r.stdout}`);
  return r;
}

async function makeImage(d: TestDaemon): Promise<void> {
  let from = 'busybox';
  for (let i = 0; i < 5; i++) {
    const script = `head -c 10485760 /dev/urandom > /r${i}; seq ${i * 1300000} ${(i + 1) * 1300000} > /t${i}`;
    await ok(d.docker(['run', '--name', `l${i}`, '--network', 'none', from, 'sh', '-c', script]), 'run');
    await ok(d.docker(['commit', `l${i}`, `bench/l:${i}`]), 'commit');
    await ok(d.docker(['rm', `l${i}`]), 'rm');
    from = `bench/l:${i}`;
  }
  await ok(d.docker(['tag', from, 'bench/app:1']), 'tag');
}

/** Removes the image (every name of it) so the next pull downloads its layers again. */
async function forget(d: TestDaemon, id: string): Promise<void> {
  const r = await d.docker(['rmi', '-f', id]);
  if (r.code !== 0 && !/No such image/.test(r.stderr)) throw new Error(`rmi: ${r.stderr}`);
}

async function main() {
  const work = tempDir('berth-dist-bench-');
  const d = await startDaemon();
  try {
    await makeImage(d);
    const archive = path.join(work, 'app.tar');
    await ok(d.docker(['save', '-o', archive, 'bench/app:1']), 'save');
    const id = (await ok(d.docker(['image', 'inspect', '--format', '{{.Id}}', 'bench/app:1']), 'inspect')).stdout.trim();
    const r: Record<string, number[]> = {};
    const add = (k: string, v: number) => {
      r[k] ??= [];
      r[k].push(v);
    };
    for (let round = 0; round < rounds; round++) {
      const upstream = await startRegistry();
      const cache = await startRegistry({ config: { proxy: { remoteurl: upstream.url, ttl: '1h' } } });
      const dist = await startDockerRegistry({ proxy: upstream.url });
      try {
        const ref = `${upstream.host}/bench/app:1`;
        await ok(d.docker(['tag', 'bench/app:1', ref]), 'tag');
        add('push', await timed(() => ok(d.docker(['push', ref]), 'push')));
        add('push again', await timed(() => ok(d.docker(['push', ref]), 'push again')));
        add(
          'skopeo push',
          await timed(() =>
            ok(runCmd('skopeo', ['--insecure-policy', 'copy', '--dest-tls-verify=false', `docker-archive:${archive}`, `docker://${upstream.host}/bench/skopeo:1`], { timeoutMs: 600_000 }), 'skopeo push'),
          ),
        );
        await forget(d, id);
        add('pull', await timed(() => ok(d.docker(['pull', ref]), 'pull')));
        const out = path.join(work, `oci-${round}`);
        add(
          'skopeo pull',
          await timed(() =>
            ok(runCmd('skopeo', ['--insecure-policy', 'copy', '--src-tls-verify=false', `docker://${ref}`, `oci:${out}:x`], { timeoutMs: 600_000 }), 'skopeo pull'),
          ),
        );
        await fs.rm(out, { recursive: true, force: true });
        for (const [name, reg] of [['berth cache', cache], ['dist cache', dist]] as const) {
          if (!reg) continue;
          const via = `${reg.host}/bench/app:1`;
          await forget(d, id);
          add(`${name} cold`, await timed(() => ok(d.docker(['pull', via]), `${name} cold pull`)));
          await forget(d, id);
          add(`${name} warm`, await timed(() => ok(d.docker(['pull', via]), `${name} warm pull`)));
        }
        await forget(d, id);
        add('pull (again)', await timed(() => ok(d.docker(['pull', ref]), 'pull')));
        await ok(d.docker(['tag', ref, 'bench/app:1']), 'tag');
        console.log(`round ${round + 1}: ${Object.entries(r).map(([k, v]) => `${k} ${v[v.length - 1].toFixed(2)} s`).join(', ')}`);
      } finally {
        await upstream.destroy();
        await cache.destroy();
        await dist?.destroy();
      }
    }
    const m = (k: string) => median(r[k] ?? [Number.NaN]);
    const direct = median([...(r.pull ?? []), ...(r['pull (again)'] ?? [])]);
    console.log('medians (s):', Object.fromEntries(Object.keys(r).map((k) => [k, Number(m(k).toFixed(2))])));
    console.log(`push / skopeo push ${(m('push') / m('skopeo push')).toFixed(2)}`);
    console.log(`second push / first push ${(m('push again') / m('push')).toFixed(2)}`);
    console.log(`pull / skopeo pull (no unpack) ${(m('pull') / m('skopeo pull')).toFixed(2)}`);
    console.log(`berth cache warm / direct pull ${(m('berth cache warm') / direct).toFixed(2)} (target <= 1.0)`);
    if (r['dist cache cold']) {
      console.log(`berth cache cold / distribution cache cold ${(m('berth cache cold') / m('dist cache cold')).toFixed(2)}`);
      console.log(`berth cache warm / distribution cache warm ${(m('berth cache warm') / m('dist cache warm')).toFixed(2)}`);
    }
  } finally {
    await d.destroy();
    await fs.rm(work, { recursive: true, force: true });
  }
}

await main();
