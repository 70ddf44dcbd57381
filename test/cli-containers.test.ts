/**
 * berth's container commands against a real berthd: run/exit codes, stdin, -d, ps, logs, exec,
 * stop/wait/rm, inspect, -it under a pseudo-terminal; compared with the docker CLI where output
 * must match.
 */
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import * as path from 'node:path';
import { after, before, test } from 'node:test';
import { BERTH, startDaemon, type TestDaemon } from './helpers/daemon.js';
import { runCmd } from './helpers/run.js';

let d: TestDaemon;
before(async () => {
  d = await startDaemon();
});
after(async () => {
  if (d)
    await d
      .berth(['rm', '-f', 'cli-c1', 'cli-c2', 'cli-c3', 'cli-tty', 'cli-sig', 'cli-cp'])
      .catch(() => undefined);
  await d?.destroy();
});

test('run: output, stderr, exit codes as docker', async () => {
  const r = await d.berth([
    'run',
    '--rm',
    '--network',
    'none',
    'busybox',
    'sh',
    '-c',
    'echo out; echo err >&2; exit 3',
  ]);
  assert.equal(r.stdout, 'out\n');
  assert.equal(r.stderr, 'err\n');
  assert.equal(r.code, 3);
  const missing = await d.berth(['run', '--name', 'cli-c1', '--network', 'none', 'busybox', '/nonexistent']);
  const dmissing = await d.docker([
    'run',
    '--name',
    'cli-c2',
    '--network',
    'none',
    'busybox',
    '/nonexistent',
  ]);
  await d.berth(['rm', 'cli-c1', 'cli-c2']);
  assert.equal(missing.code, 127, missing.stderr);
  assert.equal(missing.code, dmissing.code);
  assert.match(
    missing.stderr,
    /^berth: Error response from daemon: .*no such file or directory.*\n\nRun 'berth run --help' for more information\n$/m,
  );
  // a missing image: "Unable to find image … locally", then the pull's in-stream error, exit 125 (as docker)
  const pullArgs = ['run', '--rm', 'cli-no-such-image'];
  const [pa, pb] = await Promise.all([d.docker(pullArgs), d.berth(pullArgs)]);
  assert.equal(pb.code, pa.code);
  assert.equal(pb.stderr.replace(/berth/g, 'docker'), pa.stderr.replace(/berth/g, 'docker'));
  assert.match(pb.stderr, /^Unable to find image 'cli-no-such-image:latest' locally\n/);
  const noimg = await d.berth(['run', '--rm', '--pull', 'never', 'cli-no-such-image']);
  assert.equal(noimg.code, 125);
  assert.match(noimg.stderr, /No such image/);
  const badpull = await d.berth(['run', '--pull', 'sometimes', 'busybox']);
  assert.equal(badpull.code, 125);
  assert.match(badpull.stderr, /invalid pull option: 'sometimes'/);
});

test('run -i: stdin is piped to the container and closed at EOF', async () => {
  const r = await d.berth(
    ['run', '--rm', '-i', '--network', 'none', 'busybox', 'sh', '-c', 'cat; echo done'],
    { input: 'line1\nline2\n' },
  );
  assert.equal(r.code, 0, r.stderr);
  assert.equal(r.stdout, 'line1\nline2\ndone\n');
});

test('run -d, ps, inspect, logs, exec, stop, wait, rm', async () => {
  const run = await d.berth([
    'run',
    '-d',
    '--name',
    'cli-c1',
    '-l',
    'k=v',
    '--network',
    'none',
    'busybox',
    'sh',
    '-c',
    'echo hello; echo oops >&2; sleep 60',
  ]);
  assert.equal(run.code, 0, run.stderr);
  assert.match(run.stdout, /^[0-9a-f]{64}\n$/);
  const id = run.stdout.trim();
  const fmt = [
    'ps',
    '-a',
    '--no-trunc',
    '--format',
    'table {{.ID}}\t{{.Image}}\t{{.Command}}\t{{.State}}\t{{.Ports}}\t{{.Names}}\t{{.Labels}}\t{{.Label "k"}}\t{{.Networks}}',
  ];
  const [a, b] = await Promise.all([d.docker(fmt), d.berth(fmt)]);
  assert.equal(b.stdout, a.stdout);
  assert.match(b.stdout, new RegExp(id));
  // column widths follow the Status text, which changes by the second: compare the columns
  const cols = (out: string) => out.split('\n')[0]!.split(/ {2,}/);
  assert.deepEqual(cols((await d.berth(['ps'])).stdout), cols((await d.docker(['ps'])).stdout));
  assert.deepEqual(cols((await d.berth(['ps'])).stdout), [
    'CONTAINER ID',
    'IMAGE',
    'COMMAND',
    'CREATED',
    'STATUS',
    'PORTS',
    'NAMES',
  ]);
  const q = await d.berth(['ps', '-q', '--filter', 'name=cli-c1']);
  assert.equal(q.stdout, `${id.slice(0, 12)}\n`);
  const insp = [
    'inspect',
    '-f',
    '{{.Id}} {{.Name}} {{.State.Status}} {{json .Config.Labels}} {{.HostConfig.NetworkMode}} {{.Config.Cmd}}',
    'cli-c1',
  ];
  const [ia, ib] = await Promise.all([d.docker(insp), d.berth(insp)]);
  assert.equal(ib.stdout, ia.stdout);
  assert.equal(
    ib.stdout,
    `${id} /cli-c1 running {"k":"v"} none [sh -c echo hello; echo oops >&2; sleep 60]\n`,
  );
  const full = ['container', 'inspect', 'cli-c1'];
  const [fa, fb] = await Promise.all([d.docker(full), d.berth(full)]);
  assert.deepEqual(JSON.parse(fb.stdout)[0].Id, JSON.parse(fa.stdout)[0].Id);

  let logs = await d.berth(['logs', 'cli-c1']);
  for (let i = 0; i < 50 && logs.stdout !== 'hello\n'; i++) {
    await new Promise((r) => setTimeout(r, 100));
    logs = await d.berth(['logs', 'cli-c1']);
  }
  assert.equal(logs.stdout, 'hello\n');
  assert.equal(logs.stderr, 'oops\n');
  const ts = await d.berth(['logs', '-t', '--tail', '1', 'cli-c1']);
  assert.match(ts.stdout + ts.stderr, /^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d+Z (hello|oops)\n$/);

  const ex = await d.berth(['exec', '-e', 'X=42', 'cli-c1', 'sh', '-c', 'echo $X; echo e >&2']);
  assert.equal(ex.code, 0, ex.stderr);
  assert.equal(ex.stdout, '42\n');
  assert.equal(ex.stderr, 'e\n');

  const stop = await d.berth(['stop', '-t', '1', 'cli-c1']);
  assert.equal(stop.stdout, 'cli-c1\n', stop.stderr);
  const wait = await d.berth(['wait', 'cli-c1']);
  assert.equal(wait.code, 0, wait.stderr);
  assert.match(wait.stdout, /^(137|143)\n$/);
  const rm = await d.berth(['rm', 'cli-c1', 'cli-nosuch']);
  assert.equal(rm.code, 1);
  assert.equal(rm.stdout, 'cli-c1\n');
  const drm = await d.docker(['rm', 'cli-nosuch']);
  assert.equal(rm.stderr, drm.stderr);
});

test('create, start -a, rename, kill, restart, pause', async () => {
  const c = await d.berth([
    'create',
    '--name',
    'cli-c2',
    '--network',
    'none',
    'busybox',
    'sh',
    '-c',
    'echo started; exit 7',
  ]);
  assert.equal(c.code, 0, c.stderr);
  const s = await d.berth(['start', '-a', 'cli-c2']);
  assert.equal(s.stdout, 'started\n');
  assert.equal(s.code, 7);
  const rn = await d.berth(['rename', 'cli-c2', 'cli-c3']);
  assert.equal(rn.code, 0, rn.stderr);
  const st = await d.berth(['inspect', '-f', '{{.State.ExitCode}} {{.Name}}', 'cli-c3']);
  assert.equal(st.stdout, '7 /cli-c3\n');
  const k = await d.berth(['kill', 'cli-c3']);
  const dk = await d.docker(['kill', 'cli-c3']);
  assert.equal(k.code, dk.code);
  assert.equal(k.stderr, dk.stderr);
  assert.equal((await d.berth(['rm', '-f', 'cli-c3'])).stdout, 'cli-c3\n');
});

test('run -it under a pseudo-terminal: TTY, raw mode, exit code', async () => {
  const cmd = `${process.execPath} ${BERTH} run --rm -it --name cli-tty --network none busybox sh -c 'test -t 0 && echo tty-yes; exit 4'`;
  const r = await runCmd('script', ['-qec', cmd, '/dev/null'], { env: d.env(), timeoutMs: 30_000 });
  assert.match(r.stdout, /tty-yes\r\n/);
  assert.equal(r.code, 4, r.stdout);
});

test('attach follows a running container and exits with its code', async () => {
  const r = await d.berth([
    'run',
    '-d',
    '--name',
    'cli-c3',
    '--network',
    'none',
    'busybox',
    'sh',
    '-c',
    'sleep 1; echo one; echo two >&2; exit 6',
  ]);
  assert.equal(r.code, 0, r.stderr);
  const a = await d.berth(['attach', 'cli-c3'], { timeoutMs: 20_000 });
  assert.equal(a.stdout, 'one\n');
  assert.equal(a.stderr, 'two\n');
  assert.equal(a.code, 6);
  const again = await d.berth(['attach', 'cli-c3']);
  assert.equal(again.code, 1);
  assert.equal(again.stderr, 'You cannot attach to a stopped container, start it first\n');
  assert.equal((await d.berth(['rm', 'cli-c3'])).code, 0);
});

test('signals sent to berth run reach the container (sig-proxy)', async () => {
  const child = spawn(
    process.execPath,
    [
      BERTH,
      'run',
      '--rm',
      '--name',
      'cli-sig',
      '--network',
      'none',
      'busybox',
      'sh',
      '-c',
      'trap "echo got-term; exit 42" TERM; echo ready; while true; do sleep 0.1; done',
    ],
    {
      env: d.env(),
      stdio: ['ignore', 'pipe', 'pipe'],
    },
  );
  let out = '';
  const exited = new Promise<number>((resolve) => child.on('close', (code) => resolve(code ?? -1)));
  try {
    await new Promise<void>((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error(`container not ready: ${out}`)), 20_000);
      child.stdout!.on('data', (b: Buffer) => {
        out += b.toString();
        if (out.includes('ready')) {
          clearTimeout(timer);
          resolve();
        }
      });
    });
    child.kill('SIGTERM');
    const code = await exited;
    assert.equal(code, 42);
    assert.match(out, /got-term/);
  } finally {
    if (child.exitCode === null) child.kill('SIGKILL');
  }
});

test('cp both ways, diff, commit, export, events', async () => {
  const dir = mkdtempSync(path.join(tmpdir(), 'berth-cli-cp-'));
  try {
    const r = await d.berth([
      'run',
      '-d',
      '--name',
      'cli-cp',
      '--network',
      'none',
      'busybox',
      'sh',
      '-c',
      'echo data > /tmp/f; sleep 60',
    ]);
    assert.equal(r.code, 0, r.stderr);
    let got = await d.berth(['cp', 'cli-cp:/tmp/f', path.join(dir, 'g')]);
    for (let i = 0; i < 50 && got.code !== 0; i++) {
      await new Promise((res) => setTimeout(res, 100));
      got = await d.berth(['cp', 'cli-cp:/tmp/f', path.join(dir, 'g')]);
    }
    assert.equal(got.code, 0, got.stderr);
    assert.equal(readFileSync(path.join(dir, 'g'), 'utf8'), 'data\n');
    writeFileSync(path.join(dir, 'l.txt'), 'local\n');
    assert.equal((await d.berth(['cp', path.join(dir, 'l.txt'), 'cli-cp:/tmp/'])).code, 0);
    assert.equal((await d.berth(['cp', path.join(dir, 'l.txt'), 'cli-cp:/tmp/renamed.txt'])).code, 0);
    const ls = await d.berth(['exec', 'cli-cp', 'cat', '/tmp/l.txt', '/tmp/renamed.txt']);
    assert.equal(ls.stdout, 'local\nlocal\n', ls.stderr);
    const [da, db] = await Promise.all([d.docker(['diff', 'cli-cp']), d.berth(['diff', 'cli-cp'])]);
    assert.equal(db.stdout, da.stdout);
    assert.match(db.stdout, /^A \/tmp\/f$/m);
    const c = await d.berth(['commit', '-m', 'from cli', '-c', 'ENV A=b', 'cli-cp', 'cli-commit:1']);
    assert.equal(c.code, 0, c.stderr);
    assert.match(c.stdout, /^sha256:[0-9a-f]{64}\n$/);
    const ci = await d.berth(['inspect', '-f', '{{.Comment}} {{index .Config.Env 1}}', 'cli-commit:1']);
    assert.equal(ci.stdout, 'from cli A=b\n');
    const ex = await d.berth(['export', '-o', path.join(dir, 'x.tar'), 'cli-cp']);
    assert.equal(ex.code, 0, ex.stderr);
    const t = await runCmd('tar', ['-tf', path.join(dir, 'x.tar')]);
    assert.match(t.stdout, /^tmp\/f$/m);
    // One absolute --until for both CLIs: `0s` is read at each CLI's own start, which may fall
    // on either side of a second boundary. The next whole second: every event so far is at or
    // before it (the create may fall in this very second; a floor would leave it out), and
    // nothing happens to the container until then, so both CLIs see the same events.
    const until = String(Math.floor(Date.now() / 1000) + 1);
    const ev = ['events', '--since', '5m', '--until', until, '--filter', 'container=cli-cp'];
    const [ea, eb] = await Promise.all([d.docker(ev), d.berth(ev)]);
    assert.equal(eb.stdout, ea.stdout);
    assert.match(eb.stdout, /container create [0-9a-f]{64} \(image=busybox, name=cli-cp\)/);
    assert.equal((await d.berth(['rm', '-f', 'cli-cp'])).code, 0);
    assert.equal((await d.berth(['rmi', 'cli-commit:1'])).code, 0);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});
