/**
 * Engine API details that SDKs and the docker CLI rely on, checked on the wire and through the
 * docker CLI against a real berthd: HostPort "0", logs tail=-1, attach without Upgrade, pull errors
 * with an HTTP status, pull by digest, rmi of a repository's last tag, OOMKilled, docker update of
 * a running container, --sysctl, and Berth's own version.
 */
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import * as http from 'node:http';
import * as path from 'node:path';
import { after, before, test } from 'node:test';
import { REPO, startDaemon, type TestDaemon } from './helpers/daemon.js';
import { type Proc, startRegistry } from './registry/helpers.js';

let d: TestDaemon;
let registry: Proc;
before(async () => {
  d = await startDaemon();
  registry = await startRegistry();
});
after(async () => {
  await d?.destroy();
  await registry?.destroy();
});

async function ok(...args: string[]): Promise<string> {
  const r = await d.docker(args);
  assert.equal(r.code, 0, `docker ${args.join(' ')}: ${r.stderr}`);
  return r.stdout;
}

interface Answer {
  status: number;
  headers: http.IncomingHttpHeaders;
  body: string;
}
/** One request on the daemon's socket; with `headOnly`, resolves at the headers and drops the connection. */
function api(method: string, p: string, body?: unknown, headOnly = false): Promise<Answer> {
  return new Promise((resolve, reject) => {
    const req = http.request({ socketPath: d.socket, method, path: p, headers: body ? { 'Content-Type': 'application/json' } : {} }, (res) => {
      if (headOnly) {
        resolve({ status: res.statusCode ?? 0, headers: res.headers, body: '' });
        req.destroy();
        return;
      }
      let text = '';
      res.on('data', (b: Buffer) => (text += b.toString()));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, headers: res.headers, body: text }));
    });
    req.on('error', (e) => (headOnly ? undefined : reject(e)));
    req.end(body ? JSON.stringify(body) : undefined);
  });
}

test('HostPort "0" publishes on a free host port', async () => {
  const created = await api('POST', '/containers/create?name=port0', {
    Image: 'busybox',
    Cmd: ['sleep', '300'],
    ExposedPorts: { '80/tcp': {} },
    HostConfig: { PortBindings: { '80/tcp': [{ HostIp: '127.0.0.1', HostPort: '0' }] } },
  });
  assert.equal(created.status, 201, created.body);
  await ok('start', 'port0');
  const port = (await ok('port', 'port0', '80')).trim();
  assert.match(port, /^127\.0\.0\.1:\d+$/);
  assert.notEqual(port, '127.0.0.1:0');
  await ok('rm', '-f', 'port0');
});

test('logs: tail=-1 and a non-numeric tail mean every line', async () => {
  await ok('run', '--name', 'tail', '--network', 'none', 'busybox', 'sh', '-c', 'echo one; echo two; echo three');
  for (const tail of ['-1', 'x', 'all']) {
    const r = await api('GET', `/containers/tail/logs?stdout=1&tail=${tail}`);
    assert.equal(r.status, 200, r.body);
    // Multiplexed frames: 8-byte headers around each line.
    assert.deepEqual(r.body.match(/one|two|three/g), ['one', 'two', 'three'], `tail=${tail}`);
  }
  const two = await api('GET', '/containers/tail/logs?stdout=1&tail=2');
  assert.deepEqual(two.body.match(/one|two|three/g), ['two', 'three']);
  await ok('rm', 'tail');
});

test('attach without Upgrade: 200 with the raw-stream content type', async () => {
  await ok('create', '--name', 'att', '--network', 'none', 'busybox', 'true');
  const r = await api('POST', '/containers/att/attach?stream=1&stdout=1&stderr=1', undefined, true);
  assert.equal(r.status, 200);
  assert.equal(r.headers['content-type'], 'application/vnd.docker.raw-stream');
  await ok('rm', 'att');
});

test('a pull that fails before any progress answers with its HTTP status', async () => {
  const missing = await api('POST', `/images/create?fromImage=127.0.0.1:${registry.port}/clients/none&tag=v1`);
  assert.equal(missing.status, 404, missing.body);
  assert.match(JSON.parse(missing.body).message, /not found|manifest unknown/);
  const hub = await api('POST', '/images/create?fromImage=clients-not-here&tag=latest');
  assert.equal(hub.status, 404, hub.body);
});

test('pull by digest; rmi of the last tag drops the digest reference and the image', async () => {
  const reg = `127.0.0.1:${registry.port}`;
  await ok('run', '--name', 'digest-src', '--network', 'none', 'busybox', 'sh', '-c', 'echo v1 > /version');
  await ok('commit', 'digest-src', `${reg}/clients/app:v1`);
  await ok('rm', 'digest-src');
  const pushed = await ok('push', `${reg}/clients/app:v1`);
  const digest = /digest: (sha256:[0-9a-f]{64})/.exec(pushed)![1];
  const id = (await ok('inspect', '--format', '{{.Id}}', `${reg}/clients/app:v1`)).trim();
  await ok('rmi', `${reg}/clients/app:v1`);
  // The docker CLI sends the digest in `tag`.
  await ok('pull', `${reg}/clients/app@${digest}`);
  assert.equal((await ok('inspect', '--format', '{{.Id}}', `${reg}/clients/app@${digest}`)).trim(), id);
  await ok('rmi', `${reg}/clients/app@${digest}`);
  await ok('pull', `${reg}/clients/app:v1`);
  assert.match(await ok('inspect', '--format', '{{json .RepoDigests}}', id), new RegExp(digest));
  const removed = await ok('rmi', `${reg}/clients/app:v1`);
  assert.match(removed, new RegExp(`Untagged: ${reg}/clients/app@${digest}`));
  assert.match(removed, /Deleted: sha256:/);
  assert.notEqual((await d.docker(['image', 'inspect', id])).code, 0, 'the image is gone');
});

test('OOMKilled is set for a container killed by its memory limit', async () => {
  const r = await d.docker(['run', '--name', 'oom', '--network', 'none', '-m', '8m', '--memory-swap', '8m', 'busybox', 'sh', '-c', 'x=a; while true; do x="$x$x"; done']);
  assert.equal(r.code, 137, r.stderr);
  assert.equal((await ok('inspect', '--format', '{{.State.OOMKilled}}', 'oom')).trim(), 'true');
  await ok('rm', 'oom');
});

test('docker update --memory on a running container changes its cgroup', async () => {
  await ok('run', '-d', '--name', 'upd', '--network', 'none', 'busybox', 'sleep', '300');
  await ok('update', '--memory', '64m', '--memory-swap', '128m', 'upd');
  const pid = (await ok('inspect', '--format', '{{.State.Pid}}', 'upd')).trim();
  const memLine = readFileSync(`/proc/${pid}/cgroup`, 'utf8')
    .split('\n')
    .find((l) => /:memory:/.test(l))!;
  const cg = path.join('/sys/fs/cgroup/memory', memLine.split(':')[2]);
  assert.equal(readFileSync(path.join(cg, 'memory.limit_in_bytes'), 'utf8').trim(), String(64 * 1024 * 1024));
  assert.equal((await ok('inspect', '--format', '{{.HostConfig.Memory}}', 'upd')).trim(), String(64 * 1024 * 1024));
  await ok('rm', '-f', 'upd');
});

test('--sysctl is applied in the container; net.* refused with the host network', async () => {
  const out = await ok('run', '--rm', '--network', 'none', '--sysctl', 'net.ipv4.ip_forward=1', '--sysctl', 'kernel.shmmni=1234', 'busybox', 'cat', '/proc/sys/net/ipv4/ip_forward', '/proc/sys/kernel/shmmni');
  assert.equal(out, '1\n1234\n');
  const host = await d.docker(['run', '--rm', '--network', 'host', '--sysctl', 'net.ipv4.ip_forward=1', 'busybox', 'true']);
  assert.notEqual(host.code, 0);
  assert.match(host.stderr, /not allowed in host network namespace/);
});

test("version and info report Berth's own version, API 1.50", async () => {
  const own = JSON.parse(readFileSync(path.join(REPO, 'package.json'), 'utf8')).version;
  assert.equal((await ok('version', '--format', '{{.Server.Version}} {{.Server.APIVersion}}')).trim(), `${own} 1.50`);
  assert.equal((await ok('info', '--format', '{{.ServerVersion}}')).trim(), own);
  const ping = await api('GET', '/_ping');
  assert.equal(ping.headers.server, `Berth/${own} (linux)`);
});

test('a container its policy restarts is "restarting" with its last exit code, never "exited" in between', async () => {
  await ok('run', '-d', '--name', 'again', '--network', 'none', '--restart', 'always', 'busybox', 'sh', '-c', 'exit 143');
  const seen = new Set<string>();
  for (;;) {
    const [state, count] = (await ok('inspect', '--format', '{{.State.Status}} {{.State.ExitCode}}|{{.RestartCount}}', 'again')).trim().split('|');
    if (!state.startsWith('running')) seen.add(state);
    if (Number(count) >= 3) break;
  }
  assert.deepEqual([...seen], ['restarting 143']);
  await ok('stop', 'again');
  assert.equal((await ok('inspect', '--format', '{{.State.Status}} {{.State.ExitCode}}', 'again')).trim(), 'exited 143');
  await ok('rm', 'again');
});
