import assert from 'node:assert/strict';
import { test } from 'node:test';
import { DEFAULT_CAPS } from './capabilities.js';
import { CLONE_NAMESPACE_FLAGS, dockerDefaultSeccomp } from './seccomp-default.js';

const allowed = (caps: string[], name: string) =>
  dockerDefaultSeccomp(caps, 'x64').syscalls.filter(
    (r) => r.names.includes(name) && r.action === 'SCMP_ACT_ALLOW',
  );

test('namespace and mount syscalls need CAP_SYS_ADMIN', () => {
  for (const name of ['unshare', 'setns', 'mount', 'umount2', 'clone3', 'sethostname']) {
    assert.equal(allowed(DEFAULT_CAPS, name).length, 0, name);
    assert.equal(allowed([...DEFAULT_CAPS, 'CAP_SYS_ADMIN'], name).length, 1, name);
  }
  assert.equal(allowed(DEFAULT_CAPS, 'keyctl').length, 0, 'keyctl is never allowed');
});

test('clone without CAP_SYS_ADMIN: only without namespace flags; clone3 says ENOSYS', () => {
  const s = dockerDefaultSeccomp(DEFAULT_CAPS, 'x64');
  const [clone] = allowed(DEFAULT_CAPS, 'clone');
  assert.deepEqual(clone.args, [
    { index: 0, value: CLONE_NAMESPACE_FLAGS, valueTwo: 0, op: 'SCMP_CMP_MASKED_EQ' },
  ]);
  assert.equal(CLONE_NAMESPACE_FLAGS, 0x7e020000);
  assert.deepEqual(
    s.syscalls.find((r) => r.names.includes('clone3')),
    { names: ['clone3'], action: 'SCMP_ACT_ERRNO', errnoRet: 38 },
  );
  assert.equal(
    dockerDefaultSeccomp(DEFAULT_CAPS, 's390x').syscalls.find((r) => r.names.includes('clone'))?.args?.[0]
      .index,
    1,
  );
  const admin = allowed([...DEFAULT_CAPS, 'CAP_SYS_ADMIN'], 'clone');
  assert.equal(admin.length, 1);
  assert.equal(admin[0].args, undefined);
});

test('capability-gated syscalls, personality values, arch extras, EPERM default', () => {
  assert.equal(allowed(DEFAULT_CAPS, 'ptrace').length, 1); // kernel ≥ 4.8
  assert.equal(allowed(DEFAULT_CAPS, 'reboot').length, 0);
  assert.equal(allowed([...DEFAULT_CAPS, 'CAP_SYS_BOOT'], 'reboot').length, 1);
  assert.equal(allowed(DEFAULT_CAPS, 'chroot').length, 1); // CAP_SYS_CHROOT is a default
  assert.equal(allowed(['CAP_CHOWN'], 'chroot').length, 0);
  assert.equal(allowed(DEFAULT_CAPS, 'pidfd_getfd').length, 0);
  assert.equal(allowed([...DEFAULT_CAPS, 'CAP_SYS_PTRACE'], 'pidfd_getfd').length, 1);
  assert.deepEqual(
    allowed(DEFAULT_CAPS, 'personality').map((r) => r.args?.[0].value),
    [0, 8, 0x20000, 0x20008, 0xffffffff],
  );
  assert.equal(allowed(DEFAULT_CAPS, 'arch_prctl').length, 1);
  assert.equal(
    dockerDefaultSeccomp(DEFAULT_CAPS, 'arm64').syscalls.some((r) => r.names.includes('arch_prctl')),
    false,
  );
  const s = dockerDefaultSeccomp(DEFAULT_CAPS, 'x64');
  assert.equal(s.defaultAction, 'SCMP_ACT_ERRNO');
  assert.equal(s.defaultErrnoRet, 1);
  assert.deepEqual(s.architectures, ['SCMP_ARCH_X86_64', 'SCMP_ARCH_X86', 'SCMP_ARCH_X32']);
  assert.deepEqual(allowed(DEFAULT_CAPS, 'socket')[0].args, [{ index: 0, value: 40, op: 'SCMP_CMP_NE' }]);
});
