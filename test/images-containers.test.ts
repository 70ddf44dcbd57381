/**
 * Images made from containers, through the real docker CLI: `docker diff`, `commit` (stopped and
 * running, pausing while it reads), `export`, and rmi's conflicts with containers.
 */
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { readdirSync } from 'node:fs';
import { after, before, test } from 'node:test';
import { startDaemon, type TestDaemon } from './helpers/daemon.js';
import { runCmd } from './helpers/run.js';

/** A one-file layer with the static busybox binary, made by GNU tar. */
async function busyboxTar(): Promise<Buffer> {
  return execFileSync('tar', ['-cf', '-', '--transform', 's,^usr/bin,bin,', '-C', '/', 'usr/bin/busybox'], {
    maxBuffer: 16 << 20,
  });
}

let d: TestDaemon;
before(async () => {
  d = await startDaemon();
});
after(async () => {
  await d?.destroy();
});

async function ok(args: string[], input?: string, buf?: Buffer): Promise<string> {
  const r = await d.docker(args, { input: buf ?? input });
  assert.equal(r.code, 0, `docker ${args.join(' ')}: ${r.stderr}`);
  return r.stdout;
}

test('diff, commit and export of a stopped container', async () => {
  await ok([
    'run',
    '--name',
    'c1',
    '--network',
    'none',
    'busybox',
    'sh',
    '-c',
    'echo hi > /tmp/x && rm /etc/group && mkdir /data',
  ]);
  const diff = (await ok(['diff', 'c1'])).trim().split('\n');
  assert.deepEqual(diff, ['A /data', 'C /etc', 'D /etc/group', 'C /tmp', 'A /tmp/x']);
  const id = (
    await ok([
      'commit',
      '-c',
      'CMD ["cat", "/tmp/x"]',
      '-c',
      'ENV COMMITTED=1',
      '-m',
      'msg',
      '-a',
      'me',
      'c1',
      'myc:1',
    ])
  ).trim();
  assert.match(id, /^sha256:[0-9a-f]{64}$/);
  const insp = JSON.parse(await ok(['image', 'inspect', 'myc:1']))[0];
  assert.equal(insp.Id, id);
  assert.equal(insp.Author, 'me');
  assert.equal(insp.Comment, 'msg');
  assert.deepEqual(insp.Config.Cmd, ['cat', '/tmp/x']);
  assert.ok(insp.Config.Env.includes('COMMITTED=1'));
  assert.equal(insp.RootFS.Layers.length, 2);
  assert.equal(insp.Parent, (await ok(['image', 'inspect', 'busybox', '--format', '{{.Id}}'])).trim());
  assert.equal((await ok(['run', '--rm', '--network', 'none', 'myc:1'])).trim(), 'hi');
  const gone = await d.docker(['run', '--rm', '--network', 'none', 'myc:1', 'cat', '/etc/group']);
  assert.notEqual(gone.code, 0, 'the deletion was committed');
  const hist = await ok(['history', '--format', '{{.Comment}}', 'myc:1']);
  assert.equal(hist.split('\n')[0], 'msg');
  // export: the whole filesystem with the container's changes
  const tar = await runCmd('sh', ['-c', `${'/usr/local/bin/docker'} export c1 | tar -tf -`], {
    env: d.env(),
  });
  assert.equal(tar.code, 0, tar.stderr);
  const names = tar.stdout.split('\n');
  assert.ok(
    names.includes('tmp/x') && names.includes('bin/sh') && names.includes('data/'),
    names.slice(0, 20).join(' '),
  );
  assert.ok(!names.includes('etc/group'));
  // rmi conflicts: the last tag of an image a container uses needs -f; by ID it says which container.
  const c1 = (await ok(['inspect', 'c1', '--format', '{{.Id}}'])).trim();
  const rmi = await d.docker(['rmi', 'busybox']);
  assert.notEqual(rmi.code, 0);
  assert.match(
    rmi.stderr,
    new RegExp(
      `unable to remove repository reference "busybox" \\(must force\\) - container ${c1.slice(0, 12)} is using its referenced image`,
    ),
  );
  const rmiId = await d.docker(['rmi', insp.Parent]);
  assert.match(rmiId.stderr, /image has dependent child images|must be forced/);
  await ok(['rm', 'c1']);
  await ok(['rmi', 'myc:1']);
});

test('commit pauses a running container and leaves it running; rmi -f refuses a running one', async () => {
  await ok([
    'run',
    '-d',
    '--name',
    'c2',
    '--network',
    'none',
    'busybox',
    'sh',
    '-c',
    'echo live > /tmp/live; sleep 60',
  ]);
  try {
    let seen = '';
    for (let i = 0; i < 50 && seen !== 'live'; i++) {
      const r = await d.docker(['exec', 'c2', 'cat', '/tmp/live']);
      seen = r.stdout.trim();
      if (seen !== 'live') await new Promise((r2) => setTimeout(r2, 100));
    }
    assert.equal(seen, 'live');
    const id = (await ok(['commit', 'c2', 'live:1'])).trim();
    assert.equal((await ok(['inspect', 'c2', '--format', '{{.State.Status}}'])).trim(), 'running');
    assert.equal(
      (await ok(['run', '--rm', '--network', 'none', 'live:1', 'cat', '/tmp/live'])).trim(),
      'live',
    );
    await ok(['run', '-d', '--name', 'c3', '--network', 'none', 'live:1', 'sleep', '60']);
    const rmi = await d.docker(['rmi', '-f', id]);
    assert.notEqual(rmi.code, 0);
    assert.match(rmi.stderr, /\(cannot be forced\) - image is being used by running container/);
  } finally {
    await d.docker(['rm', '-f', 'c2', 'c3']);
  }
  await ok(['rmi', 'live:1']);
});

test('rmi -f of an image a stopped container uses: the container keeps its layers until it goes', async () => {
  const id = (
    await ok(
      ['import', '-c', 'CMD ["/bin/busybox", "echo", "still here"]', '-', 'doomed:1'],
      undefined,
      await busyboxTar(),
    )
  ).trim();
  await ok(['create', '--name', 'c4', '--network', 'none', 'doomed:1']);
  const out = await ok(['rmi', '-f', 'doomed:1']);
  assert.match(out, /Untagged: doomed:1/);
  assert.match(out, new RegExp(`Deleted: ${id}`));
  assert.equal((await ok(['start', '-a', 'c4'])).trim(), 'still here');
  // Committing it still gives a whole image: the removed image's layers come from the rootfs.
  await ok(['commit', 'c4', 'revived:1']);
  assert.equal((await ok(['run', '--rm', '--network', 'none', 'revived:1'])).trim(), 'still here');
  await ok(['rmi', 'revived:1']);
  const layers = async () => readdirSync(`${d.dataRoot}/overlay/layers`).length;
  const before = await layers();
  await ok(['rm', 'c4']);
  let after = before;
  for (let i = 0; i < 50 && after === before; i++) {
    await new Promise((r) => setTimeout(r, 50));
    after = await layers();
  }
  assert.equal(after, before - 1, 'the orphaned layer was collected');
});
