import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';
import { startDaemon, type TestDaemon } from './helpers/daemon.js';

let d: TestDaemon;
before(async () => {
  d = await startDaemon();
});
after(async () => {
  await d?.destroy();
});

test('docker version and info work against berthd', async () => {
  const v = await d.docker(['version', '--format', '{{.Server.APIVersion}}']);
  assert.equal(v.code, 0, v.stderr);
  assert.equal(v.stdout.trim(), '1.50');
  const i = await d.docker(['info', '--format', '{{.OSType}} {{.CgroupDriver}}']);
  assert.equal(i.stdout.trim(), 'linux cgroupfs');
});

test('API versions outside 1.24..1.50 are refused with Docker wording', async () => {
  const r = await d.docker(['version'], { env: { DOCKER_API_VERSION: '1.12' } });
  assert.notEqual(r.code, 0);
  assert.match(r.stderr, /client version 1.12 is too old/);
});

test('a second berthd on the same data root is refused', async () => {
  const { runCmd } = await import('./helpers/run.js');
  const { BERTHD } = await import('./helpers/daemon.js');
  const r = await runCmd(process.execPath, [BERTHD, '--data-root', d.dataRoot, '--exec-root', d.execRoot + '2', '-H', `unix://${d.base}/other.sock`], { timeoutMs: 20_000 });
  assert.equal(r.code, 1);
  assert.match(r.stderr, /in use by another berthd/);
});
