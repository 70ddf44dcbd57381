/** `docker login` / `berth login` through berthd's `POST /auth` against a berth-registry on loopback. */
import assert from 'node:assert/strict';
import { promises as fs } from 'node:fs';
import * as path from 'node:path';
import { after, before, describe, test } from 'node:test';
import { startDaemon, type TestDaemon } from './helpers/daemon.js';
import { type Proc, REGISTRY_BIN, startRegistry, tempDir } from './registry/helpers.js';
import { runCmd } from './helpers/run.js';

let d: TestDaemon;
let work: string;
let htpasswd: string;
before(async () => {
  work = tempDir('berth-login-');
  const r = await runCmd(process.execPath, [REGISTRY_BIN, 'htpasswd', 'alice'], { input: 's3cret\n' });
  assert.equal(r.code, 0, r.stderr);
  htpasswd = path.join(work, 'htpasswd');
  await fs.writeFile(htpasswd, r.stdout);
  d = await startDaemon();
});
after(async () => {
  await d?.destroy();
  if (work) await fs.rm(work, { recursive: true, force: true });
});

for (const type of ['basic', 'token'] as const) {
  describe(`a registry with ${type} authentication`, () => {
    let reg: Proc;
    before(async () => {
      reg = await startRegistry({ config: { auth: { type, htpasswd } } });
    });
    after(async () => {
      await reg?.destroy();
    });

    test('the right password logs in, a wrong one is refused', async () => {
      const host = `127.0.0.1:${reg.port}`;
      const ok = await d.docker(['login', host, '-u', 'alice', '--password-stdin'], { input: 's3cret\n' });
      assert.equal(ok.code, 0, ok.stderr);
      assert.match(ok.stdout, /Login Succeeded/);
      const cfg = JSON.parse(await fs.readFile(path.join(d.dockerConfig, 'config.json'), 'utf8'));
      assert.ok(cfg.auths[host], 'the CLI stored the credentials');
      const bad = await d.docker(['login', host, '-u', 'alice', '--password-stdin'], { input: 'wrong\n' });
      assert.equal(bad.code, 1);
      assert.match(bad.stderr, /401/);
      const berth = await d.berth(['login', host, '-u', 'alice', '--password-stdin'], { input: 's3cret\n' });
      assert.equal(berth.code, 0, berth.stderr);
      assert.match(berth.stdout, /Login Succeeded/);
    });
  });
}

test('an unreachable registry is a clear error', async () => {
  const r = await d.docker(['login', '127.0.0.1:1', '-u', 'alice', '--password-stdin'], { input: 'x\n' });
  assert.equal(r.code, 1);
  assert.match(r.stderr, /127\.0\.0\.1:1/);
});
