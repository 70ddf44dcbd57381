/**
 * berthd SIGKILLed in the middle of a parallel run / kill / rm -fv workload, several rounds at
 * different points: after each restart every container is whole (record, layer) or gone, exit
 * codes are the real ones (3 for a process that exited 3, 137 for a killed one; never an unknown
 * 255), and nothing is left on disk that no record names (layers, volumes, mounts).
 *
 * The kill points are delays after the workload starts; the assertions hold whichever operation
 * each kill interrupts, so the outcome does not depend on timing.
 */
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { existsSync, readdirSync, readFileSync } from 'node:fs';
import * as path from 'node:path';
import { after, before, test } from 'node:test';
import { startDaemon, type TestDaemon } from './helpers/daemon.js';
import { runCmd } from './helpers/run.js';

let d: TestDaemon;
before(async () => {
  d = await startDaemon();
});
after(async () => {
  await d?.destroy();
});

const FILES = 1000;
/** Writes FILES files and a marker into its anonymous volume, then exits 3. */
const WRITER = `i=0; while [ $i -lt ${FILES} ]; do echo $i > /data/f$i; i=$((i+1)); done; touch /data/done; exit 3`;

interface Inspected {
  Id: string;
  Config: { Labels: Record<string, string> };
  State: { Status: string; Running: boolean; ExitCode: number };
  Mounts: { Type: string; Name?: string }[];
}

const readyCount = () => d.logs.split('berthd ready').length - 1;

async function waitFor(what: string, pred: () => boolean | Promise<boolean>, ms = 30_000): Promise<void> {
  const end = Date.now() + ms;
  while (Date.now() < end) {
    if (await pred()) return;
    await new Promise((r) => setTimeout(r, 50));
  }
  throw new Error(`timed out waiting for ${what}`);
}

async function inspectAll(): Promise<Inspected[]> {
  const ids = await d.docker(['ps', '-aq', '--no-trunc']);
  assert.equal(ids.code, 0, ids.stderr);
  const list = ids.stdout.split('\n').filter(Boolean);
  if (!list.length) return [];
  const r = await d.docker(['inspect', ...list]);
  assert.equal(r.code, 0, r.stderr);
  return JSON.parse(r.stdout) as Inspected[];
}

/** The daemon's instance tag (see daemon/config.ts: a hash of the data root). */
const instance = () => createHash('sha256').update(d.dataRoot).digest('hex').slice(0, 6);
/** Its cgroup parent. */
const cgroupParent = () => `berth-${instance()}`;

const dirs = (p: string) => (existsSync(p) ? readdirSync(p).filter((n) => !n.startsWith('.')) : []);

/** The invariants that must hold after any crash and restart. */
async function checkConsistent(round: number): Promise<Inspected[]> {
  const all = await inspectAll();
  const ids = new Set(all.map((c) => c.Id));
  const where = `round ${round}`;
  for (const c of all) {
    assert.notEqual(c.State.Status, 'removing', `${where}: ${c.Id} left half-removed`);
    assert.ok(
      existsSync(path.join(d.dataRoot, 'overlay', 'containers', c.Id, 'meta.json')),
      `${where}: ${c.Id} has no layer`,
    );
    if (c.State.Running) continue;
    // A start interrupted by the crash must not leave a process the record does not know of.
    const held = path.join(d.execRoot, 'crun', c.Id.slice(0, 16));
    assert.ok(!existsSync(held), `${where}: ${c.State.Status} container ${c.Id} still held by the runtime`);
    assert.ok(
      !existsSync(path.join('/sys/fs/cgroup/pids', cgroupParent(), c.Id, 'cgroup.procs')) ||
        !readFileSync(path.join('/sys/fs/cgroup/pids', cgroupParent(), c.Id, 'cgroup.procs'), 'utf8').trim(),
      `${where}: processes in the cgroup of ${c.State.Status} container ${c.Id}`,
    );
    const kind = c.Config.Labels.kind;
    if (c.State.Status === 'created') continue;
    if (kind === 'writer')
      assert.ok([3, 137].includes(c.State.ExitCode), `${where}: writer exit ${c.State.ExitCode}`);
    if (kind === 'sleeper') assert.equal(c.State.ExitCode, 137, `${where}: sleeper exit code`);
    if (kind === 'writer' && c.State.ExitCode === 3) {
      const vol = c.Mounts.find((m) => m.Type === 'volume')?.Name;
      assert.ok(vol, `${where}: writer without its volume`);
      const data = path.join(d.dataRoot, 'volumes', vol, '_data');
      assert.equal(dirs(data).length, FILES + 1, `${where}: volume ${vol} of an exited writer is not whole`);
    }
  }
  // Layers: exactly the containers' own.
  assert.deepEqual(
    dirs(path.join(d.dataRoot, 'overlay', 'containers')).sort(),
    [...ids].sort(),
    `${where}: layers`,
  );
  // Volumes: exactly those the containers mount (all are anonymous here), each with its data.
  const named = new Set(all.flatMap((c) => c.Mounts.filter((m) => m.Type === 'volume').map((m) => m.Name!)));
  const vols = await d.docker(['volume', 'ls', '-q']);
  assert.equal(vols.code, 0, vols.stderr);
  assert.deepEqual(vols.stdout.split('\n').filter(Boolean).sort(), [...named].sort(), `${where}: volumes`);
  assert.deepEqual(dirs(path.join(d.dataRoot, 'volumes')).sort(), [...named].sort(), `${where}: volume dirs`);
  // Mounts: only of containers that exist.
  const mounted = readFileSync('/proc/self/mountinfo', 'utf8')
    .split('\n')
    .map((l) => l.split(' ')[4] ?? '')
    .filter((m) => m.startsWith(path.join(d.dataRoot, 'overlay', 'containers') + '/'))
    .map((m) => m.split('/').slice(-2)[0]);
  for (const id of mounted) assert.ok(ids.has(id), `${where}: a mount of a container no record names: ${id}`);
  // Network namespaces (sleepers are on the default bridge): only of running containers.
  const prefix = `berth${instance()}-`;
  const running = new Set(all.filter((c) => c.State.Running).map((c) => c.Id.slice(0, 12)));
  const netns = existsSync('/run/netns') ? readdirSync('/run/netns').filter((n) => n.startsWith(prefix)) : [];
  for (const n of netns) {
    const owner = n.slice(prefix.length);
    if (owner.startsWith('s')) continue; // a spare, made ahead for the next start
    const state = all.find((c) => c.Id.startsWith(owner))?.State.Status ?? 'no record';
    assert.ok(
      running.has(owner),
      `${where}: network namespace ${n} of a container that is not running (${state})`,
    );
  }
  return all;
}

test('SIGKILL during parallel run / kill / rm -fv: whole or gone, real exit codes, nothing orphaned', async () => {
  const delays = [300, 600, 900, 1200, 1500, 2000];
  for (const [round, delay] of delays.entries()) {
    const before = await inspectAll();
    const ops: Promise<unknown>[] = [];
    const docker = (...args: string[]) => ops.push(d.docker(args, { timeoutMs: 60_000 }));
    for (let i = 0; i < 8; i++)
      docker(
        'run',
        '-d',
        '--network',
        'none',
        '--label',
        'kind=writer',
        '-v',
        '/data',
        'busybox',
        'sh',
        '-c',
        WRITER,
      );
    for (let i = 0; i < 4; i++) docker('run', '-d', '--label', 'kind=sleeper', 'busybox', 'sleep', '300');
    for (const c of before) {
      if (c.Config.Labels.kind === 'writer' || !c.State.Running) docker('rm', '-fv', c.Id);
      else docker('kill', c.Id);
    }
    await new Promise((r) => setTimeout(r, delay)); // where the crash lands; any point is fine
    const readyBefore = readyCount();
    await d.stop('SIGKILL');
    await Promise.all(ops);
    await d.start();
    await waitFor('restore to finish', () => readyCount() > readyBefore);
    try {
      await checkConsistent(round);
    } catch (err) {
      // What the daemon warned about is the first clue to a broken invariant.
      console.log(
        d.logs
          .split('\n')
          .filter((l) => /level=(warn|error)|no container record names/.test(l))
          .join('\n'),
      );
      throw err;
    }
  }
  // Everything can still be removed, and then nothing at all is left.
  const left = await inspectAll();
  if (left.length) {
    const rm = await d.docker(['rm', '-fv', ...left.map((c) => c.Id)], { timeoutMs: 60_000 });
    assert.equal(rm.code, 0, rm.stderr);
  }
  assert.deepEqual(await checkConsistent(delays.length), []);
  const cgroups = readdirSync(path.join('/sys/fs/cgroup/pids', cgroupParent()), {
    withFileTypes: true,
  }).filter((e) => e.isDirectory());
  assert.deepEqual(
    cgroups.map((e) => e.name),
    [],
    'container cgroups left',
  );
  // Host ends of veth pairs: only those of spare sandboxes (made ahead for the next start, in the
  // background: a spare being made may have one without the other for a moment).
  let seen = '';
  await waitFor(
    'veths to be only those of spares',
    async () => {
      const spares = readdirSync('/run/netns').filter((n) => n.startsWith(`berth${instance()}-s`));
      const links = JSON.parse((await runCmd('ip', ['-j', 'link', 'show'])).stdout) as { ifname: string }[];
      const veths = links.filter((l) => l.ifname.startsWith(`vb${instance()}`));
      seen = `veths ${veths.map((l) => l.ifname)} for spares ${spares}`;
      return veths.length === spares.length;
    },
    15_000,
  ).catch(() => assert.fail(seen));
});
