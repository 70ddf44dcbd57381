/**
 * Builder benchmark (not a test), issue 10: `docker build` (classic protocol) against berthd for
 *   - a cold build of a 6-step Dockerfile (FROM, ENV, WORKDIR, COPY, RUN, CMD; `--no-cache`),
 *   - an unchanged rebuild (every step from the cache),
 *   - a rebuild after one COPY'd file changed,
 *   - a 3-stage build (two builder stages, COPY --from both; `--no-cache`),
 *   - a build with a cache mount (`RUN --mount=type=cache`; `--no-cache`),
 * each as the median of `--rounds`, printed with its ratio to a reference measured in the same
 * run: `docker run --rm busybox sh -c '<the RUN step's command>'` against the same berthd (the
 * least a cold build with one RUN must do). When Debian's docker.io (dockerd) is installed, Docker
 * Engine's classic builder is measured too; it is not installed here, so no ratio to it is printed.
 * Also: berthd's RSS before and at the end of the builds.
 *
 *   node --import tsx bench/build.ts [--rounds 7]
 */
import { existsSync, mkdtempSync, promises as fs, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import * as path from 'node:path';
import { startDaemon, type TestDaemon } from '../test/helpers/daemon.js';

const arg = (name: string, def: number) => {
  const i = process.argv.indexOf(`--${name}`);
  return i >= 0 ? Number(process.argv[i + 1]) || def : def;
};
const rounds = arg('rounds', 7);
const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)];

function rssKiB(pid: number): number {
  const m = /VmRSS:\s+(\d+) kB/.exec(readFileSync(`/proc/${pid}/status`, 'utf8'));
  return m ? Number(m[1]) : 0;
}

const RUN_CMD = 'cat /app/data.txt > /app/copy.txt && echo built >> /app/copy.txt';

const SIX_STEPS = `FROM busybox
ENV APP_MODE=bench
WORKDIR /app
COPY data.txt ./
RUN ${RUN_CMD}
CMD ["cat", "/app/copy.txt"]
`;

const THREE_STAGES = `FROM busybox AS one
RUN echo one > /one
FROM busybox AS two
RUN echo two > /two
FROM busybox
COPY --from=one /one /one
COPY --from=two /two /two
CMD ["cat", "/one", "/two"]
`;

const CACHE_MOUNT = `FROM busybox
RUN --mount=type=cache,target=/cache echo x >> /cache/runs && wc -l < /cache/runs > /runs
`;

async function timed(d: TestDaemon, args: string[]): Promise<number> {
  const t0 = performance.now();
  const r = await d.docker(args, { timeoutMs: 120_000 });
  const ms = performance.now() - t0;
  if (r.code !== 0) throw new Error(`docker ${args.join(' ')}: ${r.stderr}${r.stdout}`);
  return ms;
}

async function main(): Promise<void> {
  const work = mkdtempSync(path.join(tmpdir(), 'berth-bench-build-'));
  const d = await startDaemon();
  try {
    const ctx = (name: string) => path.join(work, name);
    for (const [name, df] of [
      ['six', SIX_STEPS],
      ['stages', THREE_STAGES],
      ['cachemount', CACHE_MOUNT],
    ]) {
      await fs.mkdir(ctx(name), { recursive: true });
      await fs.writeFile(path.join(ctx(name), 'Dockerfile'), df);
      await fs.writeFile(path.join(ctx(name), 'data.txt'), 'x'.repeat(64 * 1024));
    }
    // Warm-up: the default image, the bridge, the page cache.
    await timed(d, ['run', '--rm', 'busybox', 'true']);
    await timed(d, ['build', '-t', 'bench:six', ctx('six')]);
    const pid = d.proc!.pid!;
    const rssBefore = rssKiB(pid);
    let rssMax = rssBefore;
    const sample = setInterval(() => {
      rssMax = Math.max(rssMax, rssKiB(pid));
    }, 20);

    const results: Record<string, number[]> = {
      reference: [],
      cold: [],
      unchanged: [],
      oneFile: [],
      stages: [],
      cacheMount: [],
    };
    for (let i = 0; i < rounds; i++) {
      results.reference.push(
        await timed(d, [
          'run',
          '--rm',
          '--pull=never',
          'busybox',
          'sh',
          '-c',
          `mkdir -p /app && ${RUN_CMD.replaceAll('/app/data.txt', '/etc/passwd')}`,
        ]),
      );
      results.cold.push(await timed(d, ['build', '--no-cache', '-t', 'bench:six', ctx('six')]));
      results.unchanged.push(await timed(d, ['build', '-t', 'bench:six', ctx('six')]));
      await fs.writeFile(path.join(ctx('six'), 'data.txt'), `${'y'.repeat(64 * 1024)}${i}`);
      results.oneFile.push(await timed(d, ['build', '-t', 'bench:six', ctx('six')]));
      results.stages.push(await timed(d, ['build', '--no-cache', '-t', 'bench:stages', ctx('stages')]));
      results.cacheMount.push(await timed(d, ['build', '--no-cache', '-t', 'bench:cm', ctx('cachemount')]));
    }
    clearInterval(sample);
    const rssAfter = rssKiB(pid);
    const ref = median(results.reference);
    const line = (label: string, xs: number[]) =>
      console.log(
        `${label.padEnd(44)} ${median(xs).toFixed(0).padStart(6)} ms   ${(median(xs) / ref).toFixed(2)}× reference`,
      );
    console.log(
      `builder benchmark, ${rounds} rounds, medians (reference: docker run --rm of the RUN command)`,
    );
    line('reference: docker run --rm busybox sh -c …', results.reference);
    line('cold 6-step build (--no-cache)', results.cold);
    line('unchanged rebuild (all steps cached)', results.unchanged);
    line('rebuild after one COPY’d file changed', results.oneFile);
    line('3-stage build (--no-cache)', results.stages);
    line('build with a cache mount (--no-cache)', results.cacheMount);
    console.log(
      `unchanged rebuild / cold build: ${(median(results.unchanged) / median(results.cold)).toFixed(2)}`,
    );
    console.log(
      `berthd RSS: ${(rssBefore / 1024).toFixed(1)} MiB before, ${(rssMax / 1024).toFixed(1)} MiB peak, ${(rssAfter / 1024).toFixed(1)} MiB after (growth ${((rssAfter - rssBefore) / 1024).toFixed(1)} MiB)`,
    );
    if (!existsSync('/usr/sbin/dockerd') && !existsSync('/usr/bin/dockerd'))
      console.log(
        "Docker Engine's classic builder: not installed here (Debian docker.io), no ratio to it measured",
      );
  } finally {
    await d.destroy();
    await fs.rm(work, { recursive: true, force: true });
  }
}

await main();
