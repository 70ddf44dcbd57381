/**
 * Testcontainers for Node against a real berthd, with the image already local (`busybox`) and the
 * reaper disabled: a GenericContainer with a random host port, both wait strategies, mapped ports,
 * copying content in, exec, and stop() removing the container. Also the reaper enabled while its
 * image cannot be pulled (no Docker Hub here): it must fail fast, saying why.
 */
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import * as net from 'node:net';
import { after, before, test } from 'node:test';
import type { StartedTestContainer } from 'testcontainers';
import { REPO, startDaemon, type TestDaemon } from './helpers/daemon.js';

let d: TestDaemon;
let tc: typeof import('testcontainers');
before(async () => {
  d = await startDaemon();
  // Testcontainers reads these when it first looks for a container runtime.
  Object.assign(process.env, d.env({ TESTCONTAINERS_RYUK_DISABLED: 'true', TESTCONTAINERS_HOST_OVERRIDE: '127.0.0.1' }));
  tc = await import('testcontainers');
});
after(async () => {
  await d?.destroy();
});

/** A line back from a TCP server on the host port. */
function readLine(port: number): Promise<string> {
  return new Promise((resolve, reject) => {
    const s = net.connect(port, '127.0.0.1');
    let text = '';
    s.on('data', (b: Buffer) => (text += b.toString()));
    s.on('end', () => resolve(text));
    s.on('error', reject);
  });
}

test('GenericContainer: random host port, listening-port wait, exec, copied content, stop removes it', async () => {
  const { GenericContainer, Wait } = tc;
  const started: StartedTestContainer = await new GenericContainer('busybox')
    .withCommand(['sh', '-c', 'mkdir -p /www && echo served > /www/index.html && exec httpd -f -p 8080 -h /www'])
    .withExposedPorts(8080)
    .withWaitStrategy(Wait.forListeningPorts())
    .withCopyContentToContainer([{ content: 'copied in\n', target: '/data/note.txt' }])
    .start();
  const id = started.getId();
  try {
    const port = started.getMappedPort(8080);
    assert.ok(port > 0 && port !== 8080, `mapped port ${port}`);
    const res = await fetch(`http://127.0.0.1:${port}/index.html`);
    assert.equal(await res.text(), 'served\n');
    const ex = await started.exec(['cat', '/data/note.txt']);
    assert.deepEqual({ exitCode: ex.exitCode, output: ex.output }, { exitCode: 0, output: 'copied in\n' });
    await started.copyContentToContainer([{ content: 'later\n', target: '/data/later.txt' }]);
    const later = await started.exec(['sh', '-c', 'cat /data/later.txt; exit 2']);
    assert.deepEqual({ exitCode: later.exitCode, stdout: later.stdout }, { exitCode: 2, stdout: 'later\n' });
  } finally {
    await started.stop();
  }
  const gone = await d.docker(['inspect', id]);
  assert.notEqual(gone.code, 0, 'stop() removes the container');
});

test('GenericContainer: log-message wait on a TCP server', async () => {
  const { GenericContainer, Wait } = tc;
  const started = await new GenericContainer('busybox')
    // "ready" only once the server listens: the wait strategy trusts the message.
    .withCommand(['sh', '-c', 'echo warming up; nc -ll -p 7000 -e echo pong & until netstat -ltn | grep -q ":7000 "; do sleep 0.1; done; echo ready to serve; wait'])
    .withExposedPorts(7000)
    .withWaitStrategy(Wait.forLogMessage('ready to serve'))
    .start();
  try {
    assert.equal(await readLine(started.getMappedPort(7000)), 'pong\n');
    const logs = await started.logs();
    let text = '';
    for await (const chunk of logs) {
      text += chunk.toString();
      if (text.includes('ready to serve')) break;
    }
    logs.destroy();
    assert.match(text, /warming up\n/);
  } finally {
    await started.stop();
  }
});

test('reaper enabled but its image cannot be pulled: a fast, clear failure', async () => {
  const script = `
    import { GenericContainer } from 'testcontainers';
    try {
      await new GenericContainer('busybox').withCommand(['sleep', '30']).start();
      console.log('STARTED');
    } catch (err) {
      console.log('FAILED: ' + err.message);
    }`;
  const env = d.env({ TESTCONTAINERS_HOST_OVERRIDE: '127.0.0.1' });
  delete env.TESTCONTAINERS_RYUK_DISABLED;
  const t0 = Date.now();
  const out = await new Promise<string>((resolve, reject) => {
    const child = spawn(process.execPath, ['--input-type=module', '-e', script], { cwd: REPO, env, stdio: ['ignore', 'pipe', 'inherit'] });
    let text = '';
    child.stdout.on('data', (b: Buffer) => (text += b.toString()));
    child.on('error', reject);
    child.on('close', () => resolve(text));
  });
  assert.match(out, /FAILED: .*(testcontainers\/ryuk|pull access denied)/);
  assert.ok(Date.now() - t0 < 30_000, `failed after ${Date.now() - t0} ms`);
  const ps = await d.docker(['ps', '-aq', '--filter', 'label=org.testcontainers=true']);
  assert.equal(ps.stdout.trim(), '', 'nothing left running');
});
