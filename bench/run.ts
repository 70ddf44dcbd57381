/**
 * Engine-core benchmark (not a test): container start-to-exit latency of `docker run --rm busybox
 * true` and `berth run --rm busybox true` against berthd, as ratios to a raw `crun run` of the same
 * rootfs measured in the same run; berthd's idle memory; memory per running container; and 50
 * containers started in parallel, 8 at a time.
 *
 *   node --import tsx bench/run.ts [--rounds 15]
 */
import { execFileSync } from 'node:child_process';
import { mkdtempSync, promises as fs, readFileSync } from 'node:fs';
import { cpus, tmpdir } from 'node:os';
import * as path from 'node:path';
import { BERTH, DOCKER, startDaemon, type TestDaemon } from '../test/helpers/daemon.js';
import { runCmd } from '../test/helpers/run.js';
import { EngineClient, parseHost } from '../src/client/client.js';

const arg = (name: string, def: number) => {
  const i = process.argv.indexOf(`--${name}`);
  return i >= 0 ? Number(process.argv[i + 1]) || def : def;
};
const rounds = arg('rounds', 15);
const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)];

async function timeMs(fn: () => Promise<void>): Promise<number> {
  const t0 = performance.now();
  await fn();
  return performance.now() - t0;
}

function rssKiB(pid: number): number {
  const m = /VmRSS:\s+(\d+) kB/.exec(readFileSync(`/proc/${pid}/status`, 'utf8'));
  return m ? Number(m[1]) : 0;
}

async function must<T extends { code: number; stderr: string }>(p: Promise<T>, what: string): Promise<T> {
  const r = await p;
  if (r.code !== 0) throw new Error(`${what}: ${r.stderr}`);
  return r;
}

/** A raw OCI bundle of the default image's rootfs, run by crun directly: the reference. */
async function rawBundle(d: TestDaemon, work: string): Promise<string> {
  const bundle = path.join(work, 'bundle');
  await fs.mkdir(path.join(bundle, 'rootfs'), { recursive: true });
  const id = (await must(d.docker(['create', 'busybox', 'true']), 'create')).stdout.trim();
  execFileSync('sh', ['-c', `DOCKER_HOST=${d.host} ${DOCKER} export ${id} | tar -x -C ${bundle}/rootfs`]);
  await d.docker(['rm', id]);
  execFileSync('crun', ['spec'], { cwd: bundle });
  const spec = JSON.parse(await fs.readFile(path.join(bundle, 'config.json'), 'utf8'));
  spec.process.terminal = false;
  spec.process.args = ['/bin/true'];
  await fs.writeFile(path.join(bundle, 'config.json'), JSON.stringify(spec));
  return bundle;
}

/** CPU seconds used by waited-for children of this process (the docker CLIs run through sh). */
function childCpuSeconds(): number {
  const f = readFileSync('/proc/self/stat', 'utf8').split(') ')[1].split(' ');
  return (Number(f[13]) + Number(f[14])) / 100; // cutime + cstime, in clock ticks
}

async function removeAll(d: TestDaemon): Promise<void> {
  const all = (await d.docker(['ps', '-aq'])).stdout.split('\n').filter(Boolean);
  if (all.length) await must(d.docker(['rm', '-f', ...all]), 'rm');
}

async function main(): Promise<void> {
  const work = mkdtempSync(path.join(tmpdir(), 'berth-bench-run-'));
  const d = await startDaemon();
  try {
    const bundle = await rawBundle(d, work);
    const crunRoot = path.join(work, 'crun-root');
    let n = 0;
    const crun = () => must(runCmd('crun', ['--root', crunRoot, 'run', '--bundle', bundle, `bench${n++}`]), 'crun run').then(() => {});
    const dockerRun = (net: string) => () => must(d.docker(['run', '--rm', '--network', net, 'busybox', 'true']), 'docker run').then(() => {});
    const berthRun = () => must(d.berth(['run', '--rm', '--network', 'none', 'busybox', 'true']), 'berth run').then(() => {});
    const dockerVersion = () => must(d.docker(['version', '--format', '{{.Client.Version}}']), 'docker version').then(() => {});
    const cases: [string, () => Promise<void>][] = [
      ['crun run (reference)', crun],
      ['docker CLI alone (docker version)', dockerVersion],
      ['docker run --rm --network none busybox true', dockerRun('none')],
      ['docker run --rm busybox true (bridge)', dockerRun('bridge')],
      ['berth run --rm --network none busybox true', berthRun],
    ];
    // Warm up every path once, then interleave rounds so drift in machine load hits all alike.
    for (const [, fn] of cases) await fn();
    const samples = new Map<string, number[]>(cases.map(([k]) => [k, []]));
    for (let i = 0; i < rounds; i++) for (const [k, fn] of cases) samples.get(k)!.push(await timeMs(fn));
    const ref = median(samples.get('crun run (reference)')!);
    console.log(`\nstart-to-exit latency, median of ${rounds} (machine load ${readFileSync('/proc/loadavg', 'utf8').split(' ')[0]}):`);
    for (const [k] of cases) {
      const m = median(samples.get(k)!);
      console.log(`  ${k.padEnd(48)} ${m.toFixed(1).padStart(7)} ms   ${(m / ref).toFixed(2)}× crun`);
    }

    // Idle memory of a daemon as it usually runs: restarted on an existing data root (the first
    // start on an empty root builds the default image, whose buffers stay until a later GC).
    const afterRounds = rssKiB(d.proc!.pid!);
    await d.restart('SIGTERM');
    await new Promise((r) => setTimeout(r, 2000));
    const pid = d.proc!.pid!;
    const idle = rssKiB(pid);
    const ids: string[] = [];
    for (let i = 0; i < 10; i++) ids.push((await must(d.docker(['run', '-d', '--network', 'none', 'busybox', 'sleep', '1000']), 'run -d')).stdout.trim());
    const withTen = rssKiB(pid);
    const conmons = ids.map((id) => Number(readFileSync(path.join(d.execRoot, 'b', id.slice(0, 16), 'conmon.pid'), 'utf8'))).map(rssKiB);
    console.log(`\nmemory:`);
    console.log(`  berthd idle RSS (restarted on its data root)  ${(idle / 1024).toFixed(1)} MiB (${((idle * 1024) / 1e6).toFixed(1)} MB)`);
    console.log(`  berthd RSS right after the latency rounds     ${(afterRounds / 1024).toFixed(1)} MiB (${((afterRounds * 1024) / 1e6).toFixed(1)} MB)`);
    console.log(`  berthd growth per running container           ${((withTen - idle) / 10 / 1024).toFixed(2)} MiB`);
    console.log(`  conmon RSS per running container (median)     ${(median(conmons) / 1024).toFixed(2)} MiB`);
    await must(d.docker(['rm', '-f', ...ids]), 'rm');

    // 50 × `docker run -d`, 8 at a time, from a plain shell (`xargs -P 8`), as a user would: a
    // spawn from this Node process would add the harness's own fork cost to every run.
    const cliCpu0 = childCpuSeconds();
    const total = await timeMs(async () => {
      await must(
        runCmd('sh', ['-c', `seq 50 | xargs -P 8 -I{} ${DOCKER} run -d --network none busybox true >/dev/null`], { env: d.env(), timeoutMs: 300_000 }),
        'parallel docker run',
      );
    });
    const cliCpu = childCpuSeconds() - cliCpu0;
    await removeAll(d);
    // The same through the Engine API directly (create + start), without the docker CLI's own
    // start-up: what the engine itself sustains.
    const client = new EngineClient(parseHost(d.host));
    const apiTotal = await timeMs(async () => {
      let next = 0;
      const worker = async () => {
        while (next < 50) {
          next++;
          const { Id } = await client.post<{ Id: string }>('/containers/create', undefined, { Image: 'busybox', Cmd: ['true'], HostConfig: { NetworkMode: 'none' } });
          await client.status('POST', `/containers/${Id}/start`);
        }
      };
      await Promise.all(Array.from({ length: 8 }, worker));
    });
    // The machine's own floor in this run: 50 raw `crun run` of the same rootfs, 8 at a time.
    const crunTotal = await timeMs(async () => {
      await must(
        runCmd('sh', ['-c', `seq 50 | xargs -P 8 -I{} crun --root ${crunRoot} run --bundle ${bundle} par{} >/dev/null`], { timeoutMs: 300_000 }),
        'parallel crun run',
      );
    });
    console.log(`\n50 containers started in parallel, 8 at a time (Docker on this kind of machine: 24 s):`);
    console.log(`  raw crun run (xargs -P 8, reference)          ${(crunTotal / 1000).toFixed(2)} s`);
    console.log(`  docker run -d (xargs -P 8)                    ${(total / 1000).toFixed(2)} s   (${(total / crunTotal).toFixed(2)}× raw crun; the docker CLI processes alone used ${cliCpu.toFixed(1)} s of CPU on ${cpus().length} cores)`);
    console.log(`  Engine API create + start (8 workers)         ${(apiTotal / 1000).toFixed(2)} s   (${(apiTotal / crunTotal).toFixed(2)}× raw crun)`);
    await removeAll(d);
  } catch (err) {
    process.stderr.write(`daemon log tail:\n${d.logs.split('\n').slice(-15).join('\n')}\n`);
    throw err;
  } finally {
    await d.destroy();
    await fs.rm(work, { recursive: true, force: true });
  }
}

void BERTH;
main().catch((err) => {
  console.error(err);
  process.exit(1);
});
