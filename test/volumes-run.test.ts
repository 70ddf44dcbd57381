/**
 * Volumes and mounts used by real containers (berthd + crun + the docker CLI): data that outlives
 * a container (named volume, --volumes-from, bind mount), ro enforced, tmpfs present and gone,
 * copy-up into empty volumes but not into binds, anonymous volume clean-up, "in use", bad input,
 * and the example plugin's Mount/Unmount calls around a container.
 */
import assert from 'node:assert/strict';
import { type ChildProcess, spawn } from 'node:child_process';
import { existsSync, promises as fs, mkdtempSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import * as path from 'node:path';
import { after, before, describe, it } from 'node:test';
import { REPO, startDaemon, type TestDaemon } from './helpers/daemon.js';

const RUN = ['run', '--rm', '--network', 'none'];

describe('volumes and mounts in containers', () => {
  let d: TestDaemon;
  let work: string;
  let plugin: ChildProcess | undefined;
  let pluginDir: string;

  const ok = async (args: string[]) => {
    const r = await d.docker(args);
    assert.equal(r.code, 0, `docker ${args.join(' ')}\n${r.stderr}`);
    return r.stdout;
  };
  const volumes = async () => (await ok(['volume', 'ls', '-q'])).split('\n').filter(Boolean);

  before(async () => {
    work = mkdtempSync(path.join(tmpdir(), 'berth-volrun-'));
    pluginDir = path.join(work, 'plugins');
    await fs.mkdir(pluginDir, { recursive: true });
    d = await startDaemon({ args: ['--plugin-dir', pluginDir] });
    // The default image is made in the background at boot.
    for (let i = 0; i < 200 && (await d.docker(['image', 'inspect', 'busybox'])).code !== 0; i++)
      await new Promise((r) => setTimeout(r, 100));
  });
  after(async () => {
    if (plugin && plugin.exitCode === null) {
      const gone = new Promise((r) => plugin!.once('exit', r));
      plugin.kill('SIGTERM');
      await gone;
    }
    await d?.destroy();
    await fs.rm(work, { recursive: true, force: true });
  });

  it('a named volume keeps data from one container to the next', async () => {
    await ok([...RUN, '-v', 'data1:/data', 'busybox', 'sh', '-c', 'echo one > /data/f']);
    assert.equal((await ok([...RUN, '-v', 'data1:/data', 'busybox', 'cat', '/data/f'])).trim(), 'one');
    const mp = JSON.parse(await ok(['volume', 'inspect', 'data1']))[0].Mountpoint;
    assert.equal(readFileSync(path.join(mp, 'f'), 'utf8'), 'one\n');
  });

  it('bind mounts: read/write, ro enforced, no copy-up, -v creates a missing source', async () => {
    const host = path.join(work, 'bind');
    await fs.mkdir(host);
    await ok([...RUN, '-v', `${host}:/b`, 'busybox', 'sh', '-c', 'echo hi > /b/from-ctr']);
    assert.equal(readFileSync(path.join(host, 'from-ctr'), 'utf8'), 'hi\n');
    const r = await d.docker([
      ...RUN,
      '-v',
      `${host}:/b:ro`,
      'busybox',
      'sh',
      '-c',
      'cat /b/from-ctr && echo x > /b/nope',
    ]);
    assert.notEqual(r.code, 0);
    assert.match(r.stdout + r.stderr, /hi[\s\S]*Read-only file system/);
    assert.ok(!existsSync(path.join(host, 'nope')));
    const empty = path.join(work, 'empty');
    await fs.mkdir(empty);
    await ok([...RUN, '-v', `${empty}:/etc/ssl`, 'busybox', 'true']);
    assert.deepEqual(await fs.readdir(empty), [], 'no copy-up into a bind mount');
    const missing = path.join(work, 'made-by-v');
    await ok([...RUN, '-v', `${missing}:/m`, 'busybox', 'true']);
    assert.ok(existsSync(missing));
    const m = await d.docker([
      ...RUN,
      '--mount',
      `type=bind,src=${path.join(work, 'nonexistent')},dst=/m`,
      'busybox',
      'true',
    ]);
    assert.notEqual(m.code, 0);
    assert.match(m.stderr, /bind source path does not exist/);
  });

  it('copy-up: an empty volume gets the image content at its destination', async () => {
    assert.match(await ok([...RUN, '-v', 'etcvol:/etc', 'busybox', 'cat', '/etc/passwd']), /^root:/m);
    const mp = JSON.parse(await ok(['volume', 'inspect', 'etcvol']))[0].Mountpoint;
    assert.ok(existsSync(path.join(mp, 'passwd')));
    await ok([...RUN, '-v', 'etcvol:/etc', 'busybox', 'sh', '-c', 'rm /etc/group']);
    await ok([...RUN, '-v', 'etcvol:/etc', 'busybox', 'true']);
    assert.ok(!existsSync(path.join(mp, 'group')), 'not copied again into a volume that has content');
    await ok([...RUN, '--mount', 'type=volume,src=nocp,dst=/etc,volume-nocopy', 'busybox', 'true']);
    const mp2 = JSON.parse(await ok(['volume', 'inspect', 'nocp']))[0].Mountpoint;
    assert.ok(!existsSync(path.join(mp2, 'passwd')), 'volume-nocopy');
  });

  it("an image's VOLUME becomes an anonymous volume holding the image's content", async () => {
    const before = await volumes();
    await ok([
      'run',
      '--name',
      'seedsrc',
      '--network',
      'none',
      'busybox',
      'sh',
      '-c',
      'mkdir /seed && echo seeded > /seed/f',
    ]);
    await ok(['commit', '-c', 'VOLUME ["/seed"]', 'seedsrc', 'seedimg:1']);
    await ok([
      'create',
      '--name',
      'seeded',
      '--network',
      'none',
      'seedimg:1',
      'sh',
      '-c',
      'cat /seed/f; echo more >> /seed/f',
    ]);
    assert.equal((await ok(['start', '-a', 'seeded'])).trim(), 'seeded');
    assert.equal(
      (await ok(['start', '-a', 'seeded'])).trim(),
      'seeded\nmore',
      'the volume keeps its data across starts',
    );
    const [m] = JSON.parse(await ok(['inspect', 'seeded']))[0].Mounts;
    assert.equal(m.Destination, '/seed');
    assert.equal(readFileSync(path.join(m.Source, 'f'), 'utf8'), 'seeded\nmore\nmore\n');
    await ok(['rm', '-v', 'seeded', 'seedsrc']);
    await ok(['rmi', 'seedimg:1']);
    assert.deepEqual(await volumes(), before);
  });

  it('--mount volume-subpath mounts a directory of the volume, never outside it', async () => {
    await ok([
      ...RUN,
      '-v',
      'sp:/v',
      'busybox',
      'sh',
      '-c',
      'mkdir -p /v/a/b && echo deep > /v/a/b/f && ln -s / /v/esc',
    ]);
    const sub = ['type=volume,src=sp,dst=/x,volume-subpath'];
    assert.equal((await ok([...RUN, '--mount', `${sub}=a/b`, 'busybox', 'cat', '/x/f'])).trim(), 'deep');
    let r = await d.docker([...RUN, '--mount', `${sub}=../..`, 'busybox', 'true']);
    assert.notEqual(r.code, 0);
    r = await d.docker([...RUN, '--mount', `${sub}=nope`, 'busybox', 'true']);
    assert.match(r.stderr, /cannot access path nope in volume sp/);
    // A symlink inside the volume is resolved inside the volume: /v/esc -> / is the volume's root.
    assert.equal((await ok([...RUN, '--mount', `${sub}=esc/a/b`, 'busybox', 'cat', '/x/f'])).trim(), 'deep');
    await ok(['volume', 'rm', 'sp']);
  });

  it('--volumes-from shares volumes, :ro makes them read-only', async () => {
    await ok(['create', '--name', 'store', '--network', 'none', '-v', '/shared', 'busybox', 'true']);
    await ok([...RUN, '--volumes-from', 'store', 'busybox', 'sh', '-c', 'echo x > /shared/f']);
    const r = await d.docker([
      ...RUN,
      '--volumes-from',
      'store:ro',
      'busybox',
      'sh',
      '-c',
      'cat /shared/f; echo y > /shared/g',
    ]);
    assert.match(r.stdout, /^x$/m);
    assert.match(r.stderr + r.stdout, /Read-only file system/);
    const mounts = JSON.parse(await ok(['inspect', 'store']))[0].Mounts;
    assert.equal(mounts.length, 1);
    assert.equal(mounts[0].Type, 'volume');
    assert.equal(mounts[0].Destination, '/shared');
    assert.match(mounts[0].Name, /^[0-9a-f]{64}$/);
    await ok(['rm', '-v', 'store']);
    assert.ok(!(await volumes()).includes(mounts[0].Name), 'rm -v removed the anonymous volume');
  });

  it('tmpfs is mounted, and gone after the container stops', async () => {
    const out = await ok([
      ...RUN,
      '--tmpfs',
      '/scratch:size=1m',
      'busybox',
      'sh',
      '-c',
      'grep " /scratch " /proc/mounts',
    ]);
    assert.match(out, /^tmpfs \/scratch tmpfs .*size=1024k/m);
    await ok([
      'run',
      '--name',
      'tm',
      '--network',
      'none',
      '--mount',
      'type=tmpfs,dst=/scratch',
      'busybox',
      'sh',
      '-c',
      'ls /scratch; echo x > /scratch/f',
    ]);
    const again = await ok(['start', '-a', 'tm']);
    assert.equal(again.trim(), '', 'the file written in the tmpfs did not survive the stop');
    const mounts = JSON.parse(await ok(['inspect', 'tm']))[0].Mounts;
    assert.deepEqual(
      mounts.map((m: { Type: string; Destination: string }) => `${m.Type} ${m.Destination}`),
      ['tmpfs /scratch'],
    );
    await ok(['rm', 'tm']);
  });

  it('anonymous volumes: --rm and rm -v remove them, plain rm keeps them; in use cannot be removed', async () => {
    const before = (await volumes()).length;
    await ok([...RUN, '-v', '/anon', 'busybox', 'true']);
    assert.equal((await volumes()).length, before, '--rm removed the anonymous volume');
    await ok(['create', '--name', 'a3', '-v', '/anon3', '-v', 'named3:/n', 'busybox', 'true']);
    const r = await d.docker(['volume', 'rm', 'named3']);
    assert.notEqual(r.code, 0);
    assert.match(r.stderr, /remove named3: volume is in use - \[[0-9a-f]{64}\]/);
    await ok(['rm', 'a3']);
    assert.equal((await volumes()).length, before + 2, 'plain rm keeps both volumes');
    const pruned = await ok(['volume', 'prune', '-f']);
    assert.match(pruned, /[0-9a-f]{64}/);
    assert.ok((await volumes()).includes('named3'), 'prune keeps named volumes');
    await ok(['volume', 'rm', 'named3']);
  });

  it('bad specs are refused before anything is created', async () => {
    const before = await volumes();
    let r = await d.docker([...RUN, '-v', 'ok1:/x', '-v', '/tmp:relative', 'busybox', 'true']);
    assert.notEqual(r.code, 0);
    assert.match(r.stderr, /mount path must be absolute/);
    r = await d.docker([...RUN, '-v', 'a/b:/x', 'busybox', 'true']);
    assert.match(r.stderr, /includes invalid characters for a local volume name/);
    assert.deepEqual(await volumes(), before);
  });

  it('a tmpfs-backed volume stays mounted across a daemon restart and goes with its last user', async () => {
    await ok([
      'volume',
      'create',
      '--opt',
      'type=tmpfs',
      '--opt',
      'device=tmpfs',
      '--opt',
      'o=size=1m',
      'rv',
    ]);
    const mp = JSON.parse(await ok(['volume', 'inspect', 'rv']))[0].Mountpoint;
    const mounted = () =>
      readFileSync('/proc/self/mountinfo', 'utf8')
        .split('\n')
        .some((l) => l.split(' ')[4] === mp);
    await ok([
      'run',
      '-d',
      '--name',
      'rr',
      '--network',
      'none',
      '-v',
      'rv:/r',
      'busybox',
      'sh',
      '-c',
      'echo kept > /r/f; sleep 60',
    ]);
    assert.ok(mounted());
    await d.restart();
    assert.ok(mounted(), 'still mounted for the running container');
    assert.equal((await ok(['exec', 'rr', 'cat', '/r/f'])).trim(), 'kept');
    await ok(['stop', '-t', '0', 'rr']);
    assert.ok(!mounted(), 'unmounted after the last user stopped');
    await ok(['rm', 'rr']);
    await ok(['volume', 'rm', 'rv']);
  });

  it('the example plugin serves a container: Create, Mount, Unmount with the container ID', async () => {
    const sock = path.join(pluginDir, 'demo.sock');
    const log = path.join(work, 'calls.jsonl');
    plugin = spawn(
      process.execPath,
      [
        path.join(REPO, 'examples', 'volume-plugin', 'plugin.mjs'),
        '--socket',
        sock,
        '--root',
        path.join(work, 'pdata'),
        '--log',
        log,
      ],
      { stdio: 'ignore' },
    );
    const end = Date.now() + 5000;
    while (!existsSync(sock) && Date.now() < end) await new Promise((r) => setTimeout(r, 20));
    await ok([
      ...RUN,
      '--volume-driver',
      'demo',
      '-v',
      'pvol:/data',
      'busybox',
      'sh',
      '-c',
      'echo p > /data/f',
    ]);
    assert.equal(readFileSync(path.join(work, 'pdata', 'pvol', 'f'), 'utf8'), 'p\n');
    const calls = readFileSync(log, 'utf8')
      .split('\n')
      .filter(Boolean)
      .map((l) => JSON.parse(l));
    const seq = calls
      .map((c) => c.call)
      .filter(
        (c) => c !== 'VolumeDriver.Get' && c !== 'VolumeDriver.Path' && c !== 'VolumeDriver.Capabilities',
      );
    assert.deepEqual(seq, [
      'Plugin.Activate',
      'VolumeDriver.Create',
      'VolumeDriver.Mount',
      'VolumeDriver.Unmount',
    ]);
    const mount = calls.find((c) => c.call === 'VolumeDriver.Mount');
    const unmount = calls.find((c) => c.call === 'VolumeDriver.Unmount');
    assert.match(mount.body.ID, /^[0-9a-f]{64}$/);
    assert.equal(unmount.body.ID, mount.body.ID);
    await ok(['volume', 'rm', 'pvol']);
  });
});
