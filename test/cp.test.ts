/**
 * `docker cp` both ways on stopped and running containers through the archive endpoints, into
 * volumes, and attempts to escape the container through symlinks and hostile tars.
 */
import assert from 'node:assert/strict';
import { existsSync, promises as fs, mkdtempSync, readFileSync } from 'node:fs';
import * as http from 'node:http';
import { tmpdir } from 'node:os';
import * as path from 'node:path';
import { after, before, describe, it } from 'node:test';
import * as tar from 'tar-stream';
import { startDaemon, type TestDaemon } from './helpers/daemon.js';
import { runCmd } from './helpers/run.js';

async function makeTar(
  entries: { name: string; type?: 'file' | 'symlink'; body?: string; linkname?: string }[],
): Promise<Buffer> {
  const pack = tar.pack();
  const chunks: Buffer[] = [];
  pack.on('data', (c) => {
    chunks.push(c as Buffer);
  });
  const done = new Promise<void>((r) => pack.on('end', () => r()));
  for (const e of entries)
    pack.entry(
      { name: e.name, type: e.type ?? 'file', linkname: e.linkname, mode: 0o644 },
      e.type === 'symlink' ? '' : (e.body ?? ''),
    );
  pack.finalize();
  await done;
  return Buffer.concat(chunks);
}

function put(
  socket: string,
  container: string,
  p: string,
  body: Buffer,
): Promise<{ status: number; text: string }> {
  return new Promise((resolve, reject) => {
    const req = http.request(
      {
        socketPath: socket,
        method: 'PUT',
        path: `/v1.50/containers/${container}/archive?path=${encodeURIComponent(p)}`,
        headers: { 'Content-Type': 'application/x-tar' },
      },
      (res) => {
        let text = '';
        res.on('data', (c) => (text += c));
        res.on('end', () => resolve({ status: res.statusCode ?? 0, text }));
      },
    );
    req.on('error', reject);
    req.end(body);
  });
}

describe('docker cp', () => {
  let d: TestDaemon;
  let work: string;
  const marker = `berth-cp-escape-${process.pid}-${Date.now()}`;

  const ok = async (args: string[], input?: string | Buffer) => {
    const r = await d.docker(args, { input });
    assert.equal(r.code, 0, `docker ${args.join(' ')}\n${r.stderr}`);
    return r.stdout;
  };

  before(async () => {
    work = mkdtempSync(path.join(tmpdir(), 'berth-cptest-'));
    d = await startDaemon();
    // The default image is made in the background at boot.
    for (let i = 0; i < 200 && (await d.docker(['image', 'inspect', 'busybox'])).code !== 0; i++)
      await new Promise((r) => setTimeout(r, 100));
    await ok(['create', '--name', 'c1', '--network', 'none', '-v', 'cpvol:/data', 'busybox', 'sleep', '60']);
    // A container whose filesystem holds hostile links.
    await ok([
      'run',
      '--name',
      'evil',
      '--network',
      'none',
      'busybox',
      'sh',
      '-c',
      'ln -s / /tmp/root && ln -s ../../../../../../../.. /tmp/up',
    ]);
  });
  after(async () => {
    await d?.destroy();
    await fs.rm(work, { recursive: true, force: true });
    for (const p of [`/${marker}`, `/tmp/${marker}`]) assert.ok(!existsSync(p), `nothing escaped to ${p}`);
  });

  it('round trip of a file and a directory into a stopped container', async () => {
    await fs.writeFile(path.join(work, 'hello.txt'), 'hello\n');
    await fs.mkdir(path.join(work, 'dir', 'sub'), { recursive: true });
    await fs.writeFile(path.join(work, 'dir', 'sub', 'a'), 'A');
    await fs.symlink('sub/a', path.join(work, 'dir', 'link'));
    await ok(['cp', path.join(work, 'hello.txt'), 'c1:/tmp/']);
    await ok(['cp', path.join(work, 'dir'), 'c1:/tmp/copied']);
    await ok(['cp', 'c1:/tmp/hello.txt', path.join(work, 'back.txt')]);
    assert.equal(readFileSync(path.join(work, 'back.txt'), 'utf8'), 'hello\n');
    await ok(['cp', 'c1:/tmp/copied', path.join(work, 'back-dir')]);
    assert.equal(readFileSync(path.join(work, 'back-dir', 'sub', 'a'), 'utf8'), 'A');
    assert.equal(await fs.readlink(path.join(work, 'back-dir', 'link')), 'sub/a');
    // `-` streams a tar.
    const r = await runCmd('sh', ['-c', `docker cp c1:/etc/passwd - | tar -tf -`], { env: d.env() });
    assert.equal(r.stdout.trim(), 'passwd');
  });

  it('writes land in the volume the path crosses; ro volumes are refused', async () => {
    await ok(['cp', path.join(work, 'hello.txt'), 'c1:/data/']);
    const mp = JSON.parse(await ok(['volume', 'inspect', 'cpvol']))[0].Mountpoint;
    assert.equal(readFileSync(path.join(mp, 'hello.txt'), 'utf8'), 'hello\n');
    await ok(['create', '--name', 'c2', '--network', 'none', '-v', 'cpvol:/ro:ro', 'busybox', 'true']);
    const r = await d.docker(['cp', path.join(work, 'hello.txt'), 'c2:/ro/']);
    assert.notEqual(r.code, 0);
    assert.match(r.stderr, /read-only/);
    await ok(['rm', 'c2']);
    await ok(['create', '--name', 'roc', '--network', 'none', '--read-only', 'busybox', 'true']);
    const ro = await d.docker(['cp', path.join(work, 'hello.txt'), 'roc:/tmp/']);
    assert.notEqual(ro.code, 0);
    assert.match(ro.stderr, /container rootfs is marked read-only/);
    await ok(['rm', 'roc']);
  });

  it('cp -a owns the files by the container user', async () => {
    await ok(['create', '--name', 'cu', '--network', 'none', '--user', '1234:5678', 'busybox', 'true']);
    await ok(['cp', '-a', path.join(work, 'hello.txt'), 'cu:/tmp/owned.txt']);
    const r = await runCmd('sh', ['-c', 'docker cp cu:/tmp/owned.txt - | tar -tvf - --numeric-owner'], {
      env: d.env(),
    });
    assert.match(r.stdout, /1234\/5678/);
    await ok(['rm', 'cu']);
  });

  it('works on a running container', async () => {
    await ok(['start', 'c1']);
    await ok(['cp', path.join(work, 'hello.txt'), 'c1:/tmp/running.txt']);
    assert.equal((await ok(['exec', 'c1', 'cat', '/tmp/running.txt'])).trim(), 'hello');
    await ok(['cp', 'c1:/tmp/running.txt', path.join(work, 'r.txt')]);
    assert.equal(readFileSync(path.join(work, 'r.txt'), 'utf8'), 'hello\n');
    await ok(['rm', '-f', 'c1']);
  });

  it('symlinks in the container never lead onto the host', async () => {
    await fs.writeFile(path.join(work, marker), 'x');
    // /tmp/root -> / inside the container: the file lands at the container's root.
    await ok(['cp', path.join(work, marker), 'evil:/tmp/root/']);
    assert.ok(!existsSync(`/${marker}`));
    assert.equal((await ok(['cp', `evil:/${marker}`, '-'])).length > 0, true);
    // Reading through the links gives the container's passwd, not the host's.
    await ok(['cp', 'evil:/tmp/up/etc/passwd', path.join(work, 'pw')]);
    const mine = (await ok(['run', '--rm', '--network', 'none', 'busybox', 'cat', '/etc/passwd'])).trim();
    assert.equal(readFileSync(path.join(work, 'pw'), 'utf8').trim(), mine);
    await ok(['cp', path.join(work, marker), 'evil:/tmp/up/tmp/']);
    assert.ok(!existsSync(`/tmp/${marker}`));
  });

  it('hostile tars are refused: .. names and symlinks pointing out', async () => {
    const dot = await put(
      d.socket,
      'evil',
      '/tmp',
      await makeTar([{ name: `../../../../tmp/${marker}`, body: 'x' }]),
    );
    assert.equal(dot.status, 400, `${dot.status} ${dot.text}`);
    assert.match(dot.text, /is outside of/);
    const link = await put(
      d.socket,
      'evil',
      '/tmp',
      await makeTar([
        { name: 'esc', type: 'symlink', linkname: '../../../../../../tmp' },
        { name: `esc/${marker}`, body: 'x' },
      ]),
    );
    assert.equal(link.status, 400, link.text);
    assert.match(link.text, /invalid symlink/);
    assert.ok(!existsSync(`/tmp/${marker}`));
  });

  it('missing paths and bad destinations', async () => {
    await fs.writeFile(path.join(work, 'hello.txt'), 'hello\n');
    let r = await d.docker(['cp', 'evil:/no/such', path.join(work, 'x')]);
    assert.notEqual(r.code, 0);
    assert.match(r.stderr, /Could not find the file \/no\/such in container evil/);
    r = await d.docker(['cp', path.join(work, 'hello.txt'), 'evil:/etc/passwd/']);
    assert.notEqual(r.code, 0);
    r = await d.docker(['cp', 'nosuch:/tmp/x', path.join(work, 'x')]);
    assert.match(r.stderr, /No such container: nosuch/);
  });
});
