/**
 * A full data root: berthd still starts (it does not rewrite its state at every start), running
 * containers and records survive, an operation that needs space says so (`no space left on
 * device`), and a failed atomic write leaves no temp file. The data root is a small tmpfs, filled.
 */
import assert from 'node:assert/strict';
import { existsSync, mkdirSync, mkdtempSync, readdirSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import * as path from 'node:path';
import { after, before, test } from 'node:test';
import { startDaemon, type TestDaemon } from './helpers/daemon.js';
import { runCmd } from './helpers/run.js';

let d: TestDaemon | undefined;
const base = mkdtempSync(path.join(tmpdir(), 'berth-test-'));
const fill = path.join(base, 'data', 'fill');

before(async () => {
  mkdirSync(path.join(base, 'data'));
  const m = await runCmd('mount', ['-t', 'tmpfs', '-o', 'size=96m', 'tmpfs', path.join(base, 'data')]);
  assert.equal(m.code, 0, m.stderr);
  d = await startDaemon({ base });
});
after(async () => {
  rmSync(fill, { force: true });
  if (d) await d.destroy();
  else await runCmd('umount', ['-l', path.join(base, 'data')]).catch(() => {});
  rmSync(base, { recursive: true, force: true });
});

/**
 * Starts berthd and waits for its restore to end (the API answers before it does): the
 * `berthd ready` line it logs after restore, counted so that an earlier start's line is not taken.
 */
async function startedAndRestored(dm: TestDaemon): Promise<void> {
  const ready = () => dm.logs.split('berthd ready').length - 1;
  const before = ready();
  await dm.start();
  for (let i = 0; i < 600 && ready() === before; i++) await new Promise((r) => setTimeout(r, 50));
  assert.ok(ready() > before, 'berthd finished its restore');
}

/** Every `.tmp-*` file under dir (leftovers of atomic writes). */
function temps(dir: string): string[] {
  const out: string[] = [];
  for (const e of readdirSync(dir, { withFileTypes: true })) {
    const p = path.join(dir, e.name);
    if (e.name.startsWith('.tmp-')) out.push(p);
    else if (e.isDirectory() && !statSync(p).isSymbolicLink() && !p.includes('/overlay/'))
      out.push(...temps(p));
  }
  return out;
}

test('on a full data root: ENOSPC said as such, no temp left, the daemon restarts, containers survive', async () => {
  const dm = d!;
  const run = await dm.docker([
    'run',
    '-d',
    '--name',
    'keeper',
    '--network',
    'none',
    'busybox',
    'sleep',
    '600',
  ]);
  assert.equal(run.code, 0, run.stderr);
  const ex = await dm.docker([
    'run',
    '-d',
    '--name',
    'exiter',
    '--network',
    'none',
    'busybox',
    'sleep',
    '600',
  ]);
  assert.equal(ex.code, 0, ex.stderr);
  assert.equal((await dm.docker(['network', 'create', '--subnet', '10.232.7.0/24', 'fullnet'])).code, 0);
  // Fill it: dd stops at ENOSPC.
  const dd = await runCmd('dd', ['if=/dev/zero', `of=${fill}`, 'bs=1M'], { timeoutMs: 60_000 });
  assert.notEqual(dd.code, 0);
  assert.match(dd.stderr, /No space left on device/);

  const vol = await dm.docker(['volume', 'create', 'nospace', '--label', 'x=y']);
  assert.notEqual(vol.code, 0);
  assert.match(vol.stderr, /no space left on device/);
  const net = await dm.docker(['network', 'create', '--subnet', '10.232.8.0/24', 'nospace']);
  assert.notEqual(net.code, 0);
  assert.match(net.stderr, /no space left on device/);
  assert.deepEqual(temps(dm.dataRoot), []);

  // One container exits while berthd is down: its exit cannot be saved on the full disk at the start.
  await dm.stop();
  const kill = await runCmd('crun', [
    '--root',
    path.join(dm.execRoot, 'crun'),
    'kill',
    ex.stdout.trim().slice(0, 16),
    'KILL',
  ]);
  assert.equal(kill.code, 0, kill.stderr);
  // The kill is sent, not done: wait for conmon's exit file, so the start sees the exit.
  const exitFile = path.join(dm.execRoot, 'exits', ex.stdout.trim().slice(0, 16));
  for (let i = 0; i < 300 && !existsSync(exitFile); i++) await new Promise((r) => setTimeout(r, 50));
  assert.ok(existsSync(exitFile), 'conmon recorded the exit');
  await startedAndRestored(dm);
  const ps = await dm.docker(['ps', '-a', '--format', '{{.Names}} {{.State}}']);
  assert.equal(ps.code, 0, ps.stderr);
  assert.deepEqual(ps.stdout.trim().split('\n').sort(), ['exiter exited', 'keeper running']);
  const ls = await dm.docker(['network', 'ls', '--format', '{{.Name}}']);
  assert.ok(ls.stdout.split('\n').includes('fullnet'), ls.stdout);
  assert.equal((await dm.docker(['volume', 'ls', '-q'])).code, 0);

  rmSync(fill, { force: true });
  const ok = await dm.docker(['volume', 'create', 'roomnow']);
  assert.equal(ok.code, 0, ok.stderr);
  // With room again, the exit is saved at the next start, still with its real code.
  await dm.stop();
  await startedAndRestored(dm);
  const code = await dm.docker(['inspect', '-f', '{{.State.ExitCode}}', 'exiter']);
  assert.equal(code.stdout.trim(), '137');
  assert.equal((await dm.docker(['rm', '-f', 'keeper', 'exiter'])).code, 0);
});
