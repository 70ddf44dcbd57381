import assert from 'node:assert/strict';
import { promises as fs, mkdtempSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import * as path from 'node:path';
import { after, test } from 'node:test';
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
  const inner = m as unknown as { helper?: { proc: { kill: () => void } }; shells: { shells: { proc: { kill: () => void } }[] } };
  (inner.helper?.proc ?? inner.shells.shells[0].proc).kill();
  await new Promise((r) => setTimeout(r, 50));
  await m.mount('tmpfs', target, 'tmpfs', 'size=1m', base);
  assert.ok(mounted(target));
  assert.equal((await m.umount(target)).code, 0);
});
