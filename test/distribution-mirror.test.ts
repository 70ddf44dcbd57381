/**
 * Docker Hub names through registry mirrors: berthd with `--registry-mirror` (a dead port first,
 * then two berth-registries on loopback) pulls `busybox`, `library/busybox` and `docker.io/bob/app`
 * from the first mirror that has them; `info` lists the mirrors; pushes never go to a mirror;
 * Docker's progress messages with current/total; `max-concurrent-downloads` queues layers.
 */
import assert from 'node:assert/strict';
import { promises as fs } from 'node:fs';
import * as http from 'node:http';
import * as path from 'node:path';
import { after, before, test } from 'node:test';
import { startDaemon, type TestDaemon } from './helpers/daemon.js';
import { freePort, type Proc, request, startRegistry, tempDir } from './registry/helpers.js';

let d: TestDaemon;
let m1: Proc;
let m2: Proc;
let work: string;
let deadPort: number;

/** Commits `layers` layers on busybox (each writing /data and /layerN), pushes it as `target`. */
async function publish(target: string, content: string, layers = 1): Promise<void> {
  let from = 'busybox';
  for (let i = 0; i < layers; i++) {
    const name = `mk${i}`;
    const c = await d.docker([
      'run',
      '--name',
      name,
      '--network',
      'none',
      from,
      'sh',
      '-c',
      `echo ${content} > /data; head -c ${20000 * (i + 1)} /dev/urandom > /layer${i}`,
    ]);
    assert.equal(c.code, 0, c.stderr);
    const tag = `tmp/mk:${i}`;
    assert.equal((await d.docker(['commit', name, tag])).code, 0);
    assert.equal((await d.docker(['rm', name])).code, 0);
    from = tag;
  }
  assert.equal((await d.docker(['tag', from, target])).code, 0);
  const p = await d.docker(['push', target]);
  assert.equal(p.code, 0, p.stderr);
  // Forget the images entirely (the push left a digest reference), so pulls really download.
  const id = (await d.docker(['image', 'inspect', '--format', '{{.Id}}', target])).stdout.trim();
  const tags = Array.from({ length: layers }, (_, i) => `tmp/mk:${i}`);
  assert.equal((await d.docker(['rmi', target, ...tags])).code, 0);
  const gone = await d.docker(['rmi', '-f', id]);
  assert.ok(gone.code === 0 || /No such image/.test(gone.stderr), gone.stderr);
}

/** `POST /images/create` on the daemon's socket; returns the JSON messages. */
function apiPull(fromImage: string, tag: string): Promise<Record<string, any>[]> {
  return new Promise((resolve, reject) => {
    const req = http.request(
      {
        socketPath: d.socket,
        method: 'POST',
        path: `/v1.50/images/create?fromImage=${encodeURIComponent(fromImage)}&tag=${tag}`,
      },
      (res) => {
        let body = '';
        res.on('data', (c: Buffer) => (body += c.toString()));
        res.on('end', () =>
          resolve(
            body
              .split('\n')
              .filter((l) => l.trim())
              .map((l) => JSON.parse(l)),
          ),
        );
        res.on('error', reject);
      },
    );
    req.on('error', reject);
    req.end();
  });
}

before(async () => {
  work = tempDir('berth-mirror-');
  deadPort = await freePort();
  m1 = await startRegistry();
  m2 = await startRegistry();
  await fs.writeFile(
    path.join(work, 'daemon.json'),
    JSON.stringify({ 'registry-mirrors': [`http://127.0.0.1:${deadPort}`, m1.url], 'insecure-registries': ['10.210.0.0/16', 'reg.test:5000'] }),
  );
  d = await startDaemon({
    args: ['--config-file', path.join(work, 'daemon.json'), '--registry-mirror', `${m2.url}/`],
  });
  await publish(`${m1.host}/library/busybox:latest`, 'from-m1', 3);
  await publish(`${m2.host}/library/busybox:latest`, 'from-m2');
  await publish(`${m2.host}/bob/app:1`, 'bob-app');
});
after(async () => {
  await d?.destroy();
  await m1?.destroy();
  await m2?.destroy();
  if (work) await fs.rm(work, { recursive: true, force: true });
});

test('info lists the mirrors in order and the insecure registries', async () => {
  const r = await d.docker(['info', '--format', '{{json .RegistryConfig}}']);
  assert.equal(r.code, 0, r.stderr);
  const cfg = JSON.parse(r.stdout);
  const mirrors = [`http://127.0.0.1:${deadPort}/`, `${m1.url}/`, `${m2.url}/`];
  assert.deepEqual(cfg.Mirrors, mirrors);
  assert.deepEqual(cfg.IndexConfigs['docker.io'], { Name: 'docker.io', Mirrors: mirrors, Secure: true, Official: true });
  assert.equal(cfg.IndexConfigs['reg.test:5000'].Secure, false);
  assert.ok(cfg.InsecureRegistryCIDRs.includes('10.210.0.0/16'));
  assert.ok(cfg.InsecureRegistryCIDRs.includes('127.0.0.0/8'));
  const text = await d.docker(['info']);
  assert.match(text.stdout, /Registry Mirrors:\n\s+http:\/\/127\.0\.0\.1:\d+\/\n/);
});

test('docker pull busybox: the dead mirror is skipped, the first live one serves', async () => {
  const r = await d.docker(['pull', 'busybox']);
  assert.equal(r.code, 0, r.stderr);
  assert.match(r.stdout, /latest: Pulling from library\/busybox/);
  assert.match(r.stdout, /Pull complete/);
  assert.match(r.stdout, /Status: Downloaded newer image for busybox:latest/);
  assert.match(r.stdout, /docker\.io\/library\/busybox:latest/);
  const run = await d.docker(['run', '--rm', '--pull', 'never', '--network', 'none', 'busybox', 'cat', '/data']);
  assert.equal(run.stdout, 'from-m1\n');
  const again = await d.docker(['pull', 'library/busybox']);
  assert.equal(again.code, 0, again.stderr);
  assert.match(again.stdout, /Image is up to date for busybox:latest/);
});

test('a repository only the second mirror has falls through to it', async () => {
  const r = await d.docker(['pull', 'docker.io/bob/app:1']);
  assert.equal(r.code, 0, r.stderr);
  const run = await d.docker(['run', '--rm', '--pull', 'never', '--network', 'none', 'bob/app:1', 'cat', '/data']);
  assert.equal(run.stdout, 'bob-app\n');
  const missing = await d.docker(['pull', 'nosuch/thing:1']);
  assert.equal(missing.code, 1);
  assert.match(missing.stderr, /manifest unknown/);
  assert.equal((await d.docker(['image', 'inspect', 'nosuch/thing:1'])).code, 1);
});

test('progress messages: per layer, in Docker order, with current and total', async () => {
  const id = (await d.docker(['image', 'inspect', '--format', '{{.Id}}', 'busybox'])).stdout.trim();
  assert.equal((await d.docker(['rmi', '-f', id])).code, 0);
  const msgs = await apiPull('busybox', 'latest');
  assert.ok(!msgs.some((m) => m.error), JSON.stringify(msgs));
  const ids = [...new Set(msgs.filter((m) => m.status === 'Pulling fs layer').map((m) => m.id))];
  assert.equal(ids.length, 3, JSON.stringify(msgs));
  for (const id of ids) {
    const mine = msgs.filter((m) => m.id === id);
    const order = ['Pulling fs layer', 'Downloading', 'Verifying Checksum', 'Download complete', 'Extracting', 'Pull complete'];
    const at = order.map((s) => mine.findIndex((m) => m.status === s));
    assert.ok(at.every((i, k) => i >= 0 && (k === 0 || i > at[k - 1])), `order for ${id}: ${JSON.stringify(mine)}`);
    const downloads = mine.filter((m) => m.status === 'Downloading');
    const last = downloads[downloads.length - 1];
    assert.ok(last.progressDetail.total > 0);
    assert.equal(last.progressDetail.current, last.progressDetail.total);
    assert.match(last.progress, /^\[=+\] .+B\/.+B$/);
  }
  assert.ok(msgs.some((m) => /^Digest: sha256:/.test(m.status)));
  assert.equal(msgs[msgs.length - 1].status, 'Status: Downloaded newer image for busybox:latest');
  // The default of three downloads at once: none of the three layers waited.
  assert.ok(!msgs.some((m) => m.status === 'Waiting'));
});

test('pushes never go to a mirror', async () => {
  const before = await request(m1.url, 'GET', '/v2/_catalog');
  const r = await d.docker(['push', 'busybox']);
  assert.equal(r.code, 1);
  assert.match(r.stderr, /Docker Hub cannot be reached/);
  const after = await request(m1.url, 'GET', '/v2/_catalog');
  assert.deepEqual(after.json(), before.json());
});

test('max-concurrent-downloads/uploads 1: the other layers wait; a bad mirror URL stops the daemon', async () => {
  const one = await startDaemon({
    args: ['--registry-mirror', m1.url, '--max-concurrent-downloads', '1', '--max-concurrent-uploads', '1'],
  });
  try {
    const r = await one.docker(['rmi', 'busybox']);
    assert.equal(r.code, 0, r.stderr);
    const pull = await one.docker(['pull', 'busybox']);
    assert.equal(pull.code, 0, pull.stderr);
    // The base layer went with `rmi busybox`: four layers to fetch, one at a time, three queue.
    assert.equal((pull.stdout.match(/: Waiting/g) ?? []).length, 3, pull.stdout);
    assert.equal((await one.docker(['tag', 'busybox', `${m2.host}/one/x:1`])).code, 0);
    const push = await one.docker(['push', `${m2.host}/one/x:1`]);
    assert.equal(push.code, 0, push.stderr);
    assert.equal((push.stdout.match(/: Waiting/g) ?? []).length, 3, push.stdout);
  } finally {
    await one.destroy();
  }
  await assert.rejects(startDaemon({ args: ['--registry-mirror', 'ftp://127.0.0.1:1'] }), /unsupported scheme "ftp"/);
});

test('docker run of a missing image pulls it through the mirror; --pull=always pulls again', async () => {
  const id = (await d.docker(['image', 'inspect', '--format', '{{.Id}}', 'bob/app:1'])).stdout.trim();
  if (id) assert.equal((await d.docker(['rmi', '-f', id])).code, 0);
  const run = await d.docker(['run', '--rm', '--network', 'none', 'bob/app:1', 'cat', '/data']);
  assert.equal(run.code, 0, run.stderr);
  assert.match(run.stderr, /Unable to find image 'bob\/app:1' locally/);
  assert.equal(run.stdout, 'bob-app\n');
  const always = await d.docker(['run', '--rm', '--pull', 'always', '--network', 'none', 'bob/app:1', 'cat', '/data']);
  assert.equal(always.code, 0, always.stderr);
  assert.match(always.stderr, /Image is up to date for bob\/app:1/);
  const never = await d.docker(['run', '--rm', '--pull', 'never', 'nosuch/image:1']);
  assert.equal(never.code, 125);
  assert.match(never.stderr, /No such image/);
});

test('docker search reads the catalog of the mirrors, or of the registry the term names', async () => {
  const hub = await d.docker(['search', '--format', '{{.Name}} {{.IsOfficial}}', 'busy']);
  assert.equal(hub.code, 0, hub.stderr);
  assert.equal(hub.stdout, 'busybox [OK]\n');
  const table = await d.docker(['search', 'busybox']);
  assert.match(table.stdout, /^NAME\s+DESCRIPTION\s+STARS\s+OFFICIAL\nbusybox\s+0\s+\[OK\]\n$/);
  const named = await d.docker(['search', '--format', '{{.Name}}', `${m2.host}/app`]);
  assert.equal(named.code, 0, named.stderr);
  assert.equal(named.stdout, `${m2.host}/bob/app\n`);
  const official = await d.docker(['search', '--filter', 'is-official=true', '--format', '{{.Name}}', `${m2.host}/b`]);
  assert.equal(official.stdout, '');
  const bad = await d.docker(['search', '--filter', 'nope=1', 'busybox']);
  assert.equal(bad.code, 1);
  assert.match(bad.stderr, /invalid filter 'nope'/);
});

test('FROM a Docker Hub name in a build pulls through the mirrors (--pull pulls busybox again)', async () => {
  const id = (await d.docker(['image', 'inspect', '--format', '{{.Id}}', 'bob/app:1'])).stdout.trim();
  if (id) assert.equal((await d.docker(['rmi', '-f', id])).code, 0);
  const dir = path.join(work, 'ctx');
  await fs.mkdir(dir, { recursive: true });
  await fs.writeFile(path.join(dir, 'Dockerfile'), 'FROM bob/app:1\nRUN cp /data /copy\n');
  const b = await d.docker(['build', '--network', 'none', '-t', 'built:1', dir], { timeoutMs: 120_000 });
  assert.equal(b.code, 0, b.stderr + b.stdout);
  const run = await d.docker(['run', '--rm', '--pull', 'never', '--network', 'none', 'built:1', 'cat', '/copy']);
  assert.equal(run.stdout, 'bob-app\n');
  await fs.writeFile(path.join(dir, 'Dockerfile'), 'FROM busybox\nRUN cp /data /copy\n');
  const pulled = await d.docker(['build', '--pull', '--network', 'none', '-t', 'built:2', dir], { timeoutMs: 120_000 });
  assert.equal(pulled.code, 0, pulled.stderr + pulled.stdout);
  assert.match(pulled.stdout + pulled.stderr, /Pulling from library\/busybox/);
  const run2 = await d.docker(['run', '--rm', '--pull', 'never', '--network', 'none', 'built:2', 'cat', '/copy']);
  assert.equal(run2.stdout, 'from-m1\n');
});
