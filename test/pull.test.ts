/** `docker pull` through berthd from a berth-registry on loopback (open and token-authenticated). */
import assert from 'node:assert/strict';
import { promises as fs } from 'node:fs';
import * as path from 'node:path';
import { after, before, test } from 'node:test';
import { startDaemon, type TestDaemon } from './helpers/daemon.js';
import { runCmd } from './helpers/run.js';
import { type Proc, REGISTRY_BIN, startRegistry, tempDir } from './registry/helpers.js';

let d: TestDaemon;
let open: Proc;
let secured: Proc;
let work: string;

/** Makes an image on top of busybox, pushes it with skopeo, and forgets it locally. */
async function publish(ref: string, creds?: string): Promise<void> {
  const c = await d.docker([
    'run',
    '--name',
    'src',
    '--network',
    'none',
    'busybox',
    'sh',
    '-c',
    'echo payload > /data',
  ]);
  assert.equal(c.code, 0, c.stderr);
  assert.equal((await d.docker(['commit', 'src', 'tmp/app:1'])).code, 0);
  const tar = path.join(work, 'app.tar');
  assert.equal((await d.docker(['save', '-o', tar, 'tmp/app:1'])).code, 0);
  const copy = await runCmd(
    'skopeo',
    [
      'copy',
      '--dest-tls-verify=false',
      ...(creds ? ['--dest-creds', creds] : []),
      `docker-archive:${tar}`,
      `docker://${ref}`,
    ],
    { timeoutMs: 60_000 },
  );
  assert.equal(copy.code, 0, copy.stderr);
  assert.equal((await d.docker(['rm', 'src'])).code, 0);
  assert.equal((await d.docker(['rmi', 'tmp/app:1'])).code, 0);
}

before(async () => {
  work = tempDir('berth-pull-');
  const pw = await runCmd(process.execPath, [REGISTRY_BIN, 'htpasswd', 'alice'], { input: 's3cret\n' });
  const htpasswd = path.join(work, 'htpasswd');
  await fs.writeFile(htpasswd, pw.stdout);
  open = await startRegistry();
  secured = await startRegistry({
    config: {
      auth: { type: 'token', htpasswd },
      access: { repositories: [{ match: 'private/**', pull: ['alice'], push: ['alice'] }] },
    },
  });
  d = await startDaemon();
});
after(async () => {
  await d?.destroy();
  await open?.destroy();
  await secured?.destroy();
  if (work) await fs.rm(work, { recursive: true, force: true });
});

test('pull a new image: shared base layer already exists, the new one is fetched and verified', async () => {
  const ref = `127.0.0.1:${open.port}/team/app:1`;
  await publish(ref);
  const r = await d.docker(['pull', ref]);
  assert.equal(r.code, 0, r.stderr);
  assert.match(r.stdout, /Already exists/);
  assert.match(r.stdout, /Pull complete/);
  assert.match(r.stdout, /Digest: sha256:[0-9a-f]{64}/);
  assert.match(r.stdout, new RegExp(`Status: Downloaded newer image for ${ref.replace(/\./g, '\\.')}`));
  const run = await d.docker(['run', '--rm', '--pull', 'never', '--network', 'none', ref, 'cat', '/data']);
  assert.equal(run.stdout, 'payload\n');
  const digests = await d.docker([
    'images',
    '--digests',
    '--format',
    '{{.Digest}}',
    `127.0.0.1:${open.port}/team/app`,
  ]);
  assert.match(digests.stdout, /^sha256:[0-9a-f]{64}\n$/);
  const again = await d.docker(['pull', ref]);
  assert.match(again.stdout, /Image is up to date/);
});

test('unknown tags and Docker Hub names fail cleanly', async () => {
  const missing = await d.docker(['pull', `127.0.0.1:${open.port}/team/app:nope`]);
  assert.equal(missing.code, 1);
  assert.match(missing.stderr, /manifest unknown/);
  const hub = await d.docker(['pull', 'alpine']);
  assert.equal(hub.code, 1);
  assert.match(hub.stderr, /Docker Hub cannot be reached/);
  const run = await d.docker(['run', '--rm', `127.0.0.1:${open.port}/team/none:1`]);
  assert.equal(run.code, 125);
});

test('a private repository needs docker login; the credentials travel in X-Registry-Auth', async () => {
  const host = `127.0.0.1:${secured.port}`;
  const ref = `${host}/private/app:1`;
  await publish(ref, 'alice:s3cret');
  const denied = await d.docker(['pull', ref]);
  assert.equal(denied.code, 1);
  assert.match(denied.stderr, /pull access denied|unauthorized/);
  assert.equal(
    (await d.docker(['login', host, '-u', 'alice', '--password-stdin'], { input: 's3cret\n' })).code,
    0,
  );
  const ok = await d.docker(['pull', ref]);
  assert.equal(ok.code, 0, ok.stderr);
  assert.match(ok.stdout, /Downloaded newer image/);
});

test('push to the registry and pull back: same image ID, layers already there are skipped', async () => {
  const ref = `127.0.0.1:${open.port}/team/pushed:v1`;
  const c = await d.docker([
    'run',
    '--name',
    'pusher',
    '--network',
    'none',
    'busybox',
    'sh',
    '-c',
    'echo pushed > /p',
  ]);
  assert.equal(c.code, 0, c.stderr);
  assert.equal((await d.docker(['commit', 'pusher', ref])).code, 0);
  await d.docker(['rm', 'pusher']);
  const id = (await d.docker(['inspect', '-f', '{{.Id}}', ref])).stdout.trim();
  const p = await d.docker(['push', ref]);
  assert.equal(p.code, 0, p.stderr);
  assert.match(p.stdout, /The push refers to repository \[127\.0\.0\.1:\d+\/team\/pushed\]/);
  assert.match(p.stdout, /v1: digest: sha256:[0-9a-f]{64} size: \d+/);
  const again = await d.docker(['push', ref]);
  assert.match(again.stdout, /Layer already exists/);
  assert.equal((await d.docker(['rmi', ref])).code, 0);
  const pulled = await d.docker(['pull', ref]);
  assert.equal(pulled.code, 0, pulled.stderr);
  assert.equal((await d.docker(['inspect', '-f', '{{.Id}}', ref])).stdout.trim(), id);
  const skopeo = await runCmd('skopeo', ['inspect', '--tls-verify=false', `docker://${ref}`], {
    timeoutMs: 30_000,
  });
  assert.equal(skopeo.code, 0, skopeo.stderr);
  const missing = await d.docker(['push', `127.0.0.1:${secured.port}/private/x:1`]);
  assert.equal(missing.code, 1);
  assert.match(missing.stderr, /does not exist locally/);
});
