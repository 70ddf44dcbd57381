/**
 * Storage benchmark (not a test): sequential write and read throughput inside a container, in a
 * named volume and in a bind mount, against the same work on a host directory directly, as
 * ratios measured in the same run (target, issue 5: ≥ 95 %).
 *
 * Each measurement is Debian's busybox `dd` (the one the default image is built from): write
 * `--size` MiB with `conv=fsync`, then read it back (warm page cache, the same for every case; the
 * machine's caches are not dropped since other work may share it). The time is taken inside the
 * same shell around dd, from `/proc/self/sched` `se.exec_start` (monotonic, ns precision; busybox's
 * `date` has no `%N`), so container start-up is not in it. Container cases run `docker run --rm`
 * against a private berthd.
 *
 *   node --import tsx bench/volumes.ts [--size 256] [--rounds 5]
 */
import { mkdtempSync, promises as fs } from 'node:fs';
import { tmpdir } from 'node:os';
import * as path from 'node:path';
import { startDaemon, type TestDaemon } from '../test/helpers/daemon.js';
import { runCmd } from '../test/helpers/run.js';

const arg = (name: string, def: number) => {
  const i = process.argv.indexOf(`--${name}`);
  return i >= 0 ? Number(process.argv[i + 1]) || def : def;
};
const sizeMiB = arg('size', 256);
const rounds = arg('rounds', 5);
const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)];

const STAMP = "grep exec_start /proc/self/sched | tr -s ' ' | cut -d' ' -f3";
const timed = (cmd: string) => `a=$(${STAMP}); ${cmd} 2>/dev/null; b=$(${STAMP}); echo "T $a $b"`;

/** MB/s (10^6 bytes) from the two stamps (milliseconds) the timed script printed. */
function throughput(out: string): number {
  const m = /T ([\d.]+) ([\d.]+)/.exec(out);
  if (!m) throw new Error(`cannot parse timing: ${out}`);
  const seconds = (Number(m[2]) - Number(m[1])) / 1000;
  return (sizeMiB * 1024 * 1024) / seconds / 1e6;
}

const WRITE = (f: string) => timed(`dd if=/dev/zero of=${f} bs=1M count=${sizeMiB} conv=fsync`);
const READ = (f: string) => timed(`dd if=${f} of=/dev/null bs=1M`);

async function host(dir: string, script: string): Promise<string> {
  const r = await runCmd('busybox', ['sh', '-c', `cd ${dir} && ${script}`], { timeoutMs: 300_000 });
  if (r.code !== 0) throw new Error(r.stderr);
  return r.stdout;
}

async function container(d: TestDaemon, mount: string[], script: string): Promise<string> {
  const r = await d.docker(
    ['run', '--rm', '--network', 'none', ...mount, 'busybox', 'sh', '-c', `cd /w && ${script}`],
    { timeoutMs: 300_000 },
  );
  if (r.code !== 0) throw new Error(r.stderr);
  return r.stdout;
}

async function main(): Promise<void> {
  const work = mkdtempSync(path.join(tmpdir(), 'berth-bench-vol-'));
  const hostDir = path.join(work, 'host');
  const bindDir = path.join(work, 'bind');
  await fs.mkdir(hostDir);
  await fs.mkdir(bindDir);
  const d = await startDaemon();
  try {
    // The default image is made in the background at boot.
    for (let i = 0; i < 200 && (await d.docker(['image', 'inspect', 'busybox'])).code !== 0; i++)
      await new Promise((r) => setTimeout(r, 100));
    const probe = await d.docker(['run', '--rm', '--network', 'none', 'busybox', 'true']);
    if (probe.code !== 0) {
      console.log(`containers cannot run on this daemon yet (${probe.stderr.trim()}); nothing measured`);
      return;
    }
    const cases: { name: string; run: (s: string) => Promise<string> }[] = [
      { name: 'host directory', run: (s) => host(hostDir, s) },
      { name: 'named volume', run: (s) => container(d, ['-v', 'benchvol:/w'], s) },
      { name: 'bind mount', run: (s) => container(d, ['-v', `${bindDir}:/w`], s) },
    ];
    const results = new Map<string, { write: number[]; read: number[] }>();
    for (const c of cases) results.set(c.name, { write: [], read: [] });
    // Interleave the cases round by round so drift in the machine's load hits all of them alike.
    for (let i = 0; i < rounds; i++) {
      for (const c of cases) {
        const r = results.get(c.name)!;
        r.write.push(throughput(await c.run(WRITE('f'))));
        r.read.push(throughput(await c.run(READ('f'))));
        await c.run('rm -f f');
      }
    }
    const ref = results.get('host directory')!;
    const refW = median(ref.write);
    const refR = median(ref.read);
    console.log(`sequential ${sizeMiB} MiB, busybox dd bs=1M, ${rounds} rounds, medians (MB/s)`);
    console.log('case              write    read   write/host  read/host');
    for (const c of cases) {
      const r = results.get(c.name)!;
      const w = median(r.write);
      const rd = median(r.read);
      console.log(
        `${c.name.padEnd(16)} ${w.toFixed(0).padStart(6)}  ${rd.toFixed(0).padStart(6)}   ${((100 * w) / refW).toFixed(1).padStart(8)} %  ${((100 * rd) / refR).toFixed(1).padStart(7)} %`,
      );
    }
    console.log('target: ≥ 95 % of the host directory for both');
  } finally {
    await d.docker(['volume', 'rm', '-f', 'benchvol']).catch(() => undefined);
    await d.destroy();
    await fs.rm(work, { recursive: true, force: true });
  }
}

main().catch((err) => {
  console.error(err);
  process.exitCode = 1;
});
