/**
 * Logs benchmark (not a test). In one run, against `cat` of the same bytes as the reference (and
 * Docker Engine's numbers when one is installed here, which is not the case on the project's
 * machines):
 *   - 588k short lines (10 MB) and 10 MB without a newline, through attach (`docker run`) and
 *     through `docker logs` (plain, -t, --tail 100, --since), with berthd's CPU and RSS around each;
 *   - the conversion cost: berthd's CPU while a container writes those 10 MB (conmon's k8s-file
 *     turned into json-file);
 *   - a 200 MB burst from a container with nobody reading, berthd's RSS sampled throughout, then
 *     `docker logs` of all of it (bytes checked).
 *
 *   node --import tsx bench/logs.ts
 */
import { execFileSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import * as path from 'node:path';
import { DOCKER, startDaemon, type TestDaemon } from '../test/helpers/daemon.js';
import { runCmd } from '../test/helpers/run.js';

const TICK = 100; // clock ticks per second (/proc stat)

function rssKiB(pid: number): number {
  const m = /VmRSS:\s+(\d+) kB/.exec(readFileSync(`/proc/${pid}/status`, 'utf8'));
  return m ? Number(m[1]) : 0;
}

function cpuSeconds(pid: number): number {
  const f = readFileSync(`/proc/${pid}/stat`, 'utf8').split(') ')[1].split(' ');
  return (Number(f[11]) + Number(f[12])) / TICK; // utime + stime
}

async function sh(d: TestDaemon, script: string): Promise<void> {
  const r = await runCmd('sh', ['-c', script], { env: d.env(), timeoutMs: 600_000 });
  if (r.code !== 0) throw new Error(`${script}: ${r.stderr}`);
}

interface Measure {
  wall: number;
  cpu: number;
  rssBefore: number;
  rssMax: number;
}

/** Runs `fn` while sampling berthd's RSS every 20 ms. */
async function measure(pid: number, fn: () => Promise<void>): Promise<Measure> {
  const rssBefore = rssKiB(pid);
  let rssMax = rssBefore;
  const timer = setInterval(() => (rssMax = Math.max(rssMax, rssKiB(pid))), 20);
  const cpu0 = cpuSeconds(pid);
  const t0 = performance.now();
  try {
    await fn();
  } finally {
    clearInterval(timer);
  }
  rssMax = Math.max(rssMax, rssKiB(pid));
  return { wall: (performance.now() - t0) / 1000, cpu: cpuSeconds(pid) - cpu0, rssBefore, rssMax };
}

const mib = (kib: number) => (kib / 1024).toFixed(1);
const row = (name: string, m: Measure, ref?: number) =>
  console.log(
    `${name.padEnd(44)} ${m.wall.toFixed(3).padStart(7)} s  berthd CPU ${m.cpu.toFixed(2).padStart(5)} s  RSS ${mib(m.rssBefore)} → max ${mib(m.rssMax)} MiB (+${mib(m.rssMax - m.rssBefore)})${ref ? `  ${(m.wall / ref).toFixed(1)}× cat` : ''}`,
  );

async function main(): Promise<void> {
  const work = mkdtempSync(path.join(tmpdir(), 'berth-bench-logs-'));
  const data = path.join(work, 'data');
  execFileSync('mkdir', ['-p', data]);
  // 588,235 lines of 17 bytes = 10,000,000 bytes; and 10,000,000 bytes without a newline.
  const line = 'log line 0123456\n';
  writeFileSync(path.join(data, 'short'), line.repeat(588_235));
  writeFileSync(path.join(data, 'long'), Buffer.alloc(10_000_000, 'a'));
  const d = await startDaemon();
  const pid = d.proc!.pid!;
  try {
    const hasDocker = (await runCmd('sh', ['-c', 'command -v dockerd'])).code === 0;
    console.log(`reference: cat of the same bytes${hasDocker ? ' (a dockerd is installed: compare by hand against it)' : ' (no Docker Engine installed here)'}`);
    for (const [kind, file] of [
      ['588k short lines', 'short'],
      ['10 MB without newline', 'long'],
    ] as const) {
      const host = path.join(data, file);
      const cat = await measure(pid, () => sh(d, `cat ${host} | cat > /dev/null`));
      row(`${kind}: cat | cat (reference)`, cat);
      const name = `bench-${file}`;
      const run = await measure(pid, () => sh(d, `${DOCKER} run --name ${name} --network none -v ${data}:/data:ro busybox cat /data/${file} > /dev/null`));
      row(`${kind}: docker run (attach + conversion)`, run, cat.wall);
      for (const [what, flags] of [
        ['docker logs', ''],
        ['docker logs -t', '-t'],
        ['docker logs --tail 100', '--tail 100'],
        ['docker logs --since (all)', '--since 2000-01-01T00:00:00Z'],
      ]) {
        const m = await measure(pid, () => sh(d, `${DOCKER} logs ${flags} ${name} > /dev/null 2>&1`));
        row(`${kind}: ${what}`, m, cat.wall);
      }
      const bytes = Number((await runCmd('sh', ['-c', `${DOCKER} logs ${name} | wc -c`], { env: d.env() })).stdout.trim());
      console.log(`${kind}: docker logs returned ${bytes} bytes (expected ${readFileSync(host).length})`);
      await d.docker(['rm', name]);
    }
    // 200 MB as fast as the container can write, nobody reading.
    const burst = await measure(pid, () =>
      sh(d, `${DOCKER} run -d --name burst --network none busybox sh -c "yes 0123456789012345678901234567890123456789012345678901234567890123456789012345678901234567890123456 | head -c 200000000" > /dev/null && ${DOCKER} wait burst > /dev/null`),
    );
    row('200 MB burst, no reader (until exit)', burst);
    const read = await measure(pid, () => sh(d, `${DOCKER} logs burst > /dev/null`));
    row('200 MB: docker logs (after the rest of the conversion)', read);
    const n = Number((await runCmd('sh', ['-c', `${DOCKER} logs burst | wc -c`], { env: d.env(), timeoutMs: 600_000 })).stdout.trim());
    console.log(`200 MB: docker logs returned ${n} bytes (expected 200000000)`);
    await d.docker(['rm', 'burst']);
  } finally {
    await d.destroy();
    rmSync(work, { recursive: true, force: true });
  }
}

main().catch((err) => {
  console.error(err);
  process.exit(1);
});
