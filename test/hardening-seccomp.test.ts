/**
 * Docker's default seccomp rules: namespace and mount syscalls are refused to a default container
 * (they need CAP_SYS_ADMIN), allowed with --privileged, --cap-add SYS_ADMIN or
 * seccomp=unconfined, and a user's profile given as `seccomp=PROFILE.json` is applied.
 */
import assert from 'node:assert/strict';
import { writeFileSync } from 'node:fs';
import * as path from 'node:path';
import { after, before, describe, test } from 'node:test';
import { startDaemon, type TestDaemon } from './helpers/daemon.js';

let d: TestDaemon;
before(async () => {
  d = await startDaemon();
});
after(async () => {
  await d?.destroy();
});

const run = (flags: string[], ...cmd: string[]) =>
  d.docker(['run', '--rm', '--network', 'none', ...flags, 'busybox', ...cmd]);

describe('seccomp', () => {
  test('a default container may not unshare a user namespace', async () => {
    const r = await run([], 'unshare', '-U', 'true');
    assert.notEqual(r.code, 0);
    assert.match(r.stderr, /Operation not permitted/);
  });

  test('namespace clone flags are refused; a plain fork works', async () => {
    // A subshell forks through clone without namespace flags: the mask lets it through.
    const fork = await run([], 'sh', '-c', '(echo child) && echo parent');
    assert.equal(fork.code, 0, fork.stderr);
    assert.equal(fork.stdout, 'child\nparent\n');
    const mnt = await run([], 'mount', '-t', 'tmpfs', 'none', '/mnt');
    assert.notEqual(mnt.code, 0);
  });

  test('--privileged, --cap-add SYS_ADMIN and seccomp=unconfined allow it', async () => {
    for (const flags of [
      ['--privileged'],
      ['--cap-add', 'SYS_ADMIN'],
      ['--security-opt', 'seccomp=unconfined'],
    ]) {
      const r = await run(flags, 'unshare', '-U', 'true');
      assert.equal(r.code, 0, `${flags.join(' ')}: ${r.stderr}`);
    }
  });

  test('seccomp=PROFILE.json applies the user profile', async () => {
    const file = path.join(d.base, 'no-mkdir.json');
    writeFileSync(
      file,
      JSON.stringify({
        defaultAction: 'SCMP_ACT_ALLOW',
        syscalls: [{ names: ['mkdir', 'mkdirat'], action: 'SCMP_ACT_ERRNO', errnoRet: 1 }],
      }),
    );
    const r = await run(['--security-opt', `seccomp=${file}`], 'sh', '-c', 'unshare -U true && mkdir /x');
    assert.notEqual(r.code, 0);
    assert.match(r.stderr, /mkdir.*Operation not permitted/);
    assert.doesNotMatch(r.stderr, /unshare/);
    const bad = path.join(d.base, 'bad.json');
    writeFileSync(bad, '{"syscalls": 5}');
    const rb = await run(['--security-opt', `seccomp=${bad}`], 'true');
    assert.notEqual(rb.code, 0);
  });
});
