import assert from 'node:assert/strict';
import { promises as fs, mkdtempSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import * as path from 'node:path';
import { after, test } from 'node:test';
import { MountHelper } from './mount-helper.js';
import { Mounter } from './mounter.js';

const base = mkdtempSync(path.join(tmpdir(), 'berth-mounter-'));
const m = new Mounter();
after(async () => {
  await m.umount(path.join(base, "it's here"), true);
  m.close();
  await fs.rm(base, { recursive: true, force: true });
});

const mounted = (p: string) =>
  readFileSync('/proc/self/mountinfo', 'utf8')
    .split('\n')
    .some((l) => l.split(' ')[4] === p.replace(/ /g, '\\040'));

test('mounts and unmounts (helper or shell); errors say why; a dead helper is replaced', async () => {
  const target = path.join(base, "it's here");
  await fs.mkdir(target);
  await m.mount('tmpfs', target, 'tmpfs', 'size=1m', base);
  assert.ok(mounted(target));
  assert.equal((await m.umount(target)).code, 0);
  assert.ok(!mounted(target));
  const bad = await m.umount(target);
  assert.notEqual(bad.code, 0);
  await assert.rejects(m.mount('overlay', target, 'overlay', 'lowerdir=nonexistent', base), /mount .*: .+/);
  // Kill whichever runs the calls (the mount helper, or the shell without python3): the next call
  // starts a new one.
  const inner = m as unknown as {
    helper?: { proc: { kill: () => void } };
    shells: { shells: { proc: { kill: () => void } }[] };
  };
  (inner.helper?.proc ?? inner.shells.shells[0].proc).kill();
  await new Promise((r) => setTimeout(r, 50));
  await m.mount('tmpfs', target, 'tmpfs', 'size=1m', base);
  assert.ok(mounted(target));
  assert.equal((await m.umount(target)).code, 0);
});

test('an idle mount helper exits; the next call starts a new one', {
  skip: !MountHelper.available(),
}, async () => {
  const h = new MountHelper(50);
  const target = path.join(base, 'idle');
  await fs.mkdir(target);
  assert.equal(
    (await h.run({ op: 'mount', source: 'tmpfs', target, fstype: 'tmpfs', data: 'size=1m', cwd: base })).code,
    0,
  );
  const first = (h as unknown as { proc?: { pid: number } }).proc;
  assert.ok(first);
  await new Promise((r) => setTimeout(r, 300));
  assert.equal((h as unknown as { proc?: unknown }).proc, undefined, 'retired');
  assert.throws(() => process.kill(first.pid, 0), 'the idle helper exited');
  assert.equal((await h.run({ op: 'umount', target })).code, 0);
  assert.ok(!mounted(target));
  h.close();
});
