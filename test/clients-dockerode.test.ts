/**
 * dockerode (the Node SDK most JavaScript tooling sits on) against a real berthd, in the ways its
 * users drive it: create + attach before start + wait, demuxStream, exec, events, list with
 * filters, and a pull that fails before any progress (it must fail fast with an HTTP status).
 */
import assert from 'node:assert/strict';
import * as net from 'node:net';
import { PassThrough, type Readable } from 'node:stream';
import { after, before, test } from 'node:test';
import Docker from 'dockerode';
import { startDaemon, type TestDaemon } from './helpers/daemon.js';

let d: TestDaemon;
let docker: Docker;
before(async () => {
  d = await startDaemon();
  docker = new Docker({ socketPath: d.socket });
});
after(async () => {
  await d?.destroy();
});

/** Collects a demultiplexed attach/exec stream into its stdout and stderr text. */
function demux(stream: NodeJS.ReadableStream): Promise<{ stdout: string; stderr: string }> {
  const out = new PassThrough();
  const err = new PassThrough();
  let stdout = '';
  let stderr = '';
  out.on('data', (b: Buffer) => (stdout += b.toString()));
  err.on('data', (b: Buffer) => (stderr += b.toString()));
  docker.modem.demuxStream(stream, out, err);
  return new Promise((resolve, reject) => {
    stream.on('end', () => resolve({ stdout, stderr }));
    stream.on('close', () => resolve({ stdout, stderr }));
    stream.on('error', reject);
  });
}

test('create, attach before start, wait: both streams and the exit code', async () => {
  const c = await docker.createContainer({
    Image: 'busybox',
    Cmd: ['sh', '-c', 'echo to-out; echo to-err >&2; exit 3'],
    AttachStdout: true,
    AttachStderr: true,
    HostConfig: { NetworkMode: 'none' },
  });
  const stream = await c.attach({ stream: true, stdout: true, stderr: true, hijack: true });
  const collected = demux(stream);
  // next-exit: a created container is already "not running", the default condition.
  const waited = c.wait({ condition: 'next-exit' });
  await c.start();
  assert.deepEqual(await waited, { StatusCode: 3, Error: null });
  assert.deepEqual(await c.wait(), { StatusCode: 3, Error: null });
  assert.deepEqual(await collected, { stdout: 'to-out\n', stderr: 'to-err\n' });
  await c.remove();
});

test('one attach per stream before start (as dockerpty does): no output lost', async () => {
  for (let i = 0; i < 5; i++) {
    const c = await docker.createContainer({ Image: 'busybox', Cmd: ['sh', '-c', 'echo out; echo err >&2'], OpenStdin: true, HostConfig: { NetworkMode: 'none' } });
    const streams = await Promise.all(
      (['stdin', 'stdout', 'stderr'] as const).map((k) => c.attach({ stream: true, [k]: true, hijack: true }) as Promise<NodeJS.ReadWriteStream>),
    );
    const collected = streams.slice(1).map((s) => demux(s));
    await c.start();
    const [out, err] = await Promise.all(collected);
    assert.deepEqual([out.stdout, err.stderr], ['out\n', 'err\n'], `run ${i}`);
    streams[0].end();
    await c.remove({ force: true });
  }
});

test('exec: environment, working directory, demuxed output, exit code', async () => {
  const c = await docker.createContainer({ Image: 'busybox', Cmd: ['sleep', '300'], HostConfig: { NetworkMode: 'none' } });
  await c.start();
  try {
    const e = await c.exec({ Cmd: ['sh', '-c', 'echo "$GREETING from $(pwd)"; echo oops >&2; exit 4'], Env: ['GREETING=hello'], WorkingDir: '/etc', AttachStdout: true, AttachStderr: true });
    const stream = await e.start({ hijack: true, stdin: false });
    assert.deepEqual(await demux(stream), { stdout: 'hello from /etc\n', stderr: 'oops\n' });
    const info = await e.inspect();
    assert.equal(info.ExitCode, 4);
    assert.equal(info.Running, false);
  } finally {
    await c.remove({ force: true });
  }
});

test('events: a container life cycle as a stream of JSON messages', async () => {
  const events = (await docker.getEvents({ filters: { type: ['container'], label: ['clients-test=events'] } })) as Readable;
  const seen: string[] = [];
  const died = new Promise<void>((resolve) => {
    let buf = '';
    events.on('data', (b: Buffer) => {
      buf += b.toString();
      let nl = buf.indexOf('\n');
      while (nl >= 0) {
        const m = JSON.parse(buf.slice(0, nl)) as { Action: string; Actor: { Attributes: Record<string, string> } };
        buf = buf.slice(nl + 1);
        seen.push(m.Action);
        assert.equal(m.Actor.Attributes['clients-test'], 'events');
        if (m.Action === 'die') resolve();
        nl = buf.indexOf('\n');
      }
    });
  });
  const c = await docker.createContainer({ Image: 'busybox', Cmd: ['true'], Labels: { 'clients-test': 'events' }, HostConfig: { NetworkMode: 'none' } });
  await c.start();
  await died;
  events.destroy();
  assert.deepEqual(seen.slice(0, 3), ['create', 'start', 'die']);
  await c.remove();
});

test('list with filters: label and status', async () => {
  const a = await docker.createContainer({ Image: 'busybox', Cmd: ['true'], Labels: { 'clients-test': 'list', which: 'a' }, HostConfig: { NetworkMode: 'none' } });
  const b = await docker.createContainer({ Image: 'busybox', Cmd: ['sleep', '300'], Labels: { 'clients-test': 'list', which: 'b' }, HostConfig: { NetworkMode: 'none' } });
  await b.start();
  try {
    const running = await docker.listContainers({ filters: { label: ['clients-test=list'] } });
    assert.deepEqual(running.map((c) => c.Id), [b.id]);
    const created = await docker.listContainers({ all: true, filters: { label: ['clients-test=list'], status: ['created'] } });
    assert.deepEqual(created.map((c) => c.Labels.which), ['a']);
    const both = await docker.listContainers({ all: true, filters: { label: ['clients-test=list'] } });
    assert.deepEqual(both.map((c) => c.Labels.which).sort(), ['a', 'b']);
  } finally {
    await b.remove({ force: true });
    await a.remove();
  }
});

test('a pull that cannot reach its registry fails at once with an HTTP error', async () => {
  // A port that was free a moment ago: nothing listens there.
  const port = await new Promise<number>((resolve) => {
    const s = net.createServer().listen(0, '127.0.0.1', () => {
      const p = (s.address() as net.AddressInfo).port;
      s.close(() => resolve(p));
    });
  });
  await assert.rejects(docker.pull(`127.0.0.1:${port}/clients/none:v1`), (err: Error & { statusCode?: number }) => {
    assert.ok(err.statusCode !== undefined && err.statusCode >= 400, `status ${err.statusCode}: ${err.message}`);
    return true;
  });
  await assert.rejects(docker.pull('busybox-does-not-exist:v1'), (err: Error & { statusCode?: number }) => {
    assert.equal(err.statusCode, 404, err.message);
    return true;
  });
});
