/**
 * The Docker SDK for Python (docker-py) against a real berthd: the scenarios of
 * test/clients/docker_py_scenarios.py, once per docker-py installed here: Debian's python3-docker
 * (5.0.3, what Compose 1.29 uses; always installed by scripts/setup.sh) and, when the `python3` on
 * PATH has another version (7.x from pip), with that one too.
 */
import assert from 'node:assert/strict';
import * as path from 'node:path';
import { after, before, describe, test } from 'node:test';
import { REPO, startDaemon, type TestDaemon } from './helpers/daemon.js';
import { runCmd } from './helpers/run.js';

const SCRIPT = path.join(REPO, 'test', 'clients', 'docker_py_scenarios.py');
const SCENARIOS = ['run_foreground', 'run_error', 'run_detached_logs_wait', 'exec_run', 'archive', 'images', 'networks', 'volumes', 'events', 'df'];

async function dockerPyVersion(python: string): Promise<string | undefined> {
  const r = await runCmd(python, ['-c', 'import docker; print(docker.__version__)']).catch(() => undefined);
  return r?.code === 0 ? r.stdout.trim() : undefined;
}

const pythons: { python: string; version: string }[] = [];
const debian = await dockerPyVersion('/usr/bin/python3');
assert.ok(debian, 'python3-docker is not installed (scripts/setup.sh installs it)');
pythons.push({ python: '/usr/bin/python3', version: debian });
const onPath = await dockerPyVersion('python3');
if (onPath && onPath !== debian) pythons.push({ python: 'python3', version: onPath });

let d: TestDaemon;
before(async () => {
  d = await startDaemon();
});
after(async () => {
  await d?.destroy();
});

for (const { python, version } of pythons) {
  describe(`docker-py ${version}`, () => {
    for (const name of SCENARIOS) {
      test(name, async () => {
        const r = await runCmd(python, [SCRIPT, name], { env: d.env(), timeoutMs: 90_000 });
        assert.equal(r.code, 0, `${r.stdout}\n${r.stderr}`);
        assert.equal(r.stdout.trim(), 'ok');
      });
    }
  });
}
