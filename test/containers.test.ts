/** The container life cycle through the real docker CLI against a real berthd, crun and conmon. */
import assert from 'node:assert/strict';
import { mkdirSync, readdirSync, readFileSync, writeFileSync } from 'node:fs';
import * as path from 'node:path';
import { after, before, describe, test } from 'node:test';
import { startDaemon, type TestDaemon } from './helpers/daemon.js';
import { runCmd } from './helpers/run.js';

let d: TestDaemon;
before(async () => {
  d = await startDaemon();
});
after(async () => {
  await d?.destroy();
});

const docker = (...args: string[]) => d.docker(args);
/** `docker run -d --network none [flags] busybox sh -c script`; returns the container ID. */
const runDetached = async (script: string, flags: string[] = []) => {
  const r = await docker('run', '-d', '--network', 'none', ...flags, 'busybox', 'sh', '-c', script);
  assert.equal(r.code, 0, r.stderr);
  return r.stdout.trim();
};
const waitFor = async (what: string, pred: () => Promise<boolean>, ms = 15_000) => {
  const end = Date.now() + ms;
  while (Date.now() < end) {
    if (await pred()) return;
    await new Promise((r) => setTimeout(r, 100));
  }
  throw new Error(`timed out waiting for ${what}`);
};

describe('run', () => {
  test('prints output and removes the container with --rm', async () => {
    const r = await docker('run', '--rm', '--network', 'none', 'busybox', 'echo', 'hello from berth');
    assert.equal(r.code, 0, r.stderr);
    assert.equal(r.stdout, 'hello from berth\n');
    const ps = await docker('ps', '-aq');
    assert.equal(ps.stdout.trim(), '');
  });

  test('the runtime runs from a read-only mount of its binary, and an --rm layer leaves nothing', async () => {
    // crun copies itself to /tmp on every call unless it runs from a read-only mount (sealed-binary.ts).
    const mounts = readFileSync('/proc/self/mountinfo', 'utf8')
      .split('\n')
      .map((l) => l.split(' '));
    const crun = mounts.find((f) => f[4]?.startsWith(path.join(d.execRoot, 'bin', 'crun-')));
    assert.ok(crun, 'a mount of crun under the exec root');
    assert.ok(crun[5].split(',').includes('ro'), `read-only: ${crun[5]}`);
    const r = await docker('run', '--rm', '--network', 'none', 'busybox', 'true');
    assert.equal(r.code, 0, r.stderr);
    // The removed layer is unmounted and deleted in the background: soon nothing is left of it.
    await waitFor('the removed layers to go', async () => {
      const left = readdirSync(path.join(d.dataRoot, 'overlay', 'tmp'));
      const merged = readFileSync('/proc/self/mountinfo', 'utf8').includes(
        path.join(d.dataRoot, 'overlay', 'tmp'),
      );
      return left.length === 0 && !merged;
    });
  });

  test('exit codes reach the user: the command’s, 127 missing, 126 not executable', async () => {
    assert.equal((await docker('run', '--rm', '--network', 'none', 'busybox', 'sh', '-c', 'exit 3')).code, 3);
    const missing = await docker('run', '--rm', '--network', 'none', 'busybox', '/nonexistent');
    assert.equal(missing.code, 127, missing.stderr);
    assert.match(missing.stderr, /no such file or directory/);
    assert.equal((await docker('run', '--rm', '--network', 'none', 'busybox', 'nosuchcmd')).code, 127);
    const noexec = await docker('run', '--rm', '--network', 'none', 'busybox', '/etc/passwd');
    assert.equal(noexec.code, 126, noexec.stderr);
  });

  test('stdin is piped with -i and closed at EOF', async () => {
    const r = await d.docker(
      ['run', '-i', '--rm', '--network', 'none', 'busybox', 'sh', '-c', 'cat; echo done'],
      { input: 'line1\nline2\n' },
    );
    assert.equal(r.code, 0, r.stderr);
    assert.equal(r.stdout, 'line1\nline2\ndone\n');
  });

  test('stdout and stderr stay separate', async () => {
    const r = await docker(
      'run',
      '--rm',
      '--network',
      'none',
      'busybox',
      'sh',
      '-c',
      'echo out; echo err >&2',
    );
    assert.equal(r.stdout, 'out\n');
    assert.equal(r.stderr, 'err\n');
  });

  test('-it runs under a pseudo-terminal', async () => {
    const cmd = `docker run -it --rm --network none busybox sh -c 'tty; exit 5'`;
    const r = await runCmd('script', ['-qec', cmd, '/dev/null'], { env: d.env(), timeoutMs: 30_000 });
    assert.equal(r.code, 5, r.stdout + r.stderr);
    assert.match(r.stdout, /\/dev\/pts\/\d+/);
  });

  test('a missing image fails cleanly with 125', async () => {
    const r = await docker('run', '--rm', '--pull', 'never', 'nosuchimage:1');
    assert.equal(r.code, 125);
    assert.match(r.stderr, /No such image: nosuchimage:1/);
  });

  test('isolation defaults: own hostname, pid 1, default caps, masked /proc paths, cgroup limits', async () => {
    const r = await docker(
      'run',
      '--rm',
      '--network',
      'none',
      '-m',
      '64m',
      '--pids-limit',
      '50',
      '--hostname',
      'box',
      'busybox',
      'sh',
      '-c',
      'hostname; echo $$; grep CapEff /proc/self/status; wc -c < /proc/interrupts; cat /sys/fs/cgroup/memory/memory.limit_in_bytes; cat /sys/fs/cgroup/pids/pids.max; grep "^Seccomp:" /proc/self/status',
    );
    assert.equal(r.code, 0, r.stderr);
    const lines = r.stdout.trim().split('\n');
    assert.equal(lines[0], 'box');
    assert.equal(lines[1], '1');
    assert.match(lines[2], /CapEff:\s+00000000a80425fb/);
    assert.equal(lines[3], '0');
    assert.equal(lines[4], String(64 * 1024 * 1024));
    assert.equal(lines[5], '50');
    assert.match(lines[6], /Seccomp:\s+2/); // the default profile is loaded (filter mode)
    const unconfined = await docker(
      'run',
      '--rm',
      '--network',
      'none',
      '--security-opt',
      'seccomp=unconfined',
      'busybox',
      'grep',
      '^Seccomp:',
      '/proc/self/status',
    );
    assert.match(unconfined.stdout, /Seccomp:\s+0/);
  });

  test('--read-only, --cap-drop, --user and --init', async () => {
    const ro = await docker('run', '--rm', '--network', 'none', '--read-only', 'busybox', 'touch', '/x');
    assert.notEqual(ro.code, 0);
    assert.match(ro.stderr, /Read-only file system/);
    const caps = await docker(
      'run',
      '--rm',
      '--network',
      'none',
      '--cap-drop',
      'ALL',
      'busybox',
      'grep',
      'CapEff',
      '/proc/self/status',
    );
    assert.match(caps.stdout, /CapEff:\s+0000000000000000/);
    const user = await docker('run', '--rm', '--network', 'none', '-u', '1000:1000', 'busybox', 'id');
    assert.match(user.stdout, /uid=1000.*gid=1000/);
    const init = await docker(
      'run',
      '--rm',
      '--network',
      'none',
      '--init',
      'busybox',
      'sh',
      '-c',
      'cat /proc/1/cmdline | tr "\\0" " "',
    );
    assert.match(init.stdout, /docker-init -- sh/);
  });
});

describe('life cycle', () => {
  test('detached run, logs, exec, top, pause, stop with timeout, rm', async () => {
    const run = await docker(
      'run',
      '-d',
      '--name',
      'web',
      '--network',
      'none',
      'busybox',
      'sh',
      '-c',
      'echo started; echo oops >&2; exec sleep 1000',
    );
    assert.equal(run.code, 0, run.stderr);
    const id = run.stdout.trim();
    assert.match(id, /^[0-9a-f]{64}$/);
    await waitFor('logs', async () => (await docker('logs', 'web')).stdout === 'started\n');
    const logs = await docker('logs', 'web');
    assert.equal(logs.stderr, 'oops\n');
    const ts = await docker('logs', '-t', '--tail', '1', 'web');
    assert.match(ts.stdout + ts.stderr, /^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{9}Z (started|oops)\n$/);

    const ex = await docker('exec', 'web', 'sh', '-c', 'echo in-exec; exit 7');
    assert.equal(ex.code, 7);
    assert.equal(ex.stdout, 'in-exec\n');
    const exi = await d.docker(['exec', '-i', 'web', 'cat'], { input: 'piped\n' });
    assert.equal(exi.stdout, 'piped\n');
    const exenv = await docker(
      'exec',
      '-e',
      'A=1',
      '-w',
      '/tmp',
      '-u',
      'nobody',
      'web',
      'sh',
      '-c',
      'echo $A $(pwd) $(id -un)',
    );
    assert.equal(exenv.stdout, '1 /tmp nobody\n');
    assert.equal((await docker('exec', 'web', 'nosuchcmd')).code, 127);

    const top = await docker('top', 'web');
    assert.match(top.stdout, /sleep 1000/);
    assert.equal((await docker('pause', 'web')).code, 0);
    assert.equal((await docker('inspect', '-f', '{{.State.Status}}', 'web')).stdout.trim(), 'paused');
    const paused = await docker('exec', 'web', 'true');
    assert.match(paused.stderr, /is paused, unpause the container before exec/);
    assert.equal((await docker('unpause', 'web')).code, 0);

    const rmRunning = await docker('rm', 'web');
    assert.equal(rmRunning.code, 1);
    assert.match(
      rmRunning.stderr,
      /container is running: stop the container before removing or force remove/,
    );

    // sleep as PID 1 ignores SIGTERM: stop waits the timeout, then kills.
    const t0 = Date.now();
    assert.equal((await docker('stop', '-t', '1', 'web')).code, 0);
    const took = Date.now() - t0;
    assert.ok(took >= 900 && took < 8000, `stop took ${took} ms`);
    assert.equal(
      (await docker('inspect', '-f', '{{.State.Status}} {{.State.ExitCode}}', 'web')).stdout.trim(),
      'exited 137',
    );
    const again = await docker('stop', 'web');
    assert.equal(again.code, 0); // 304 is success for the CLI
    assert.equal((await docker('exec', 'web', 'true')).code, 1);
    assert.equal((await docker('rm', id.slice(0, 10))).code, 0);
    const gone = await docker('inspect', 'web');
    assert.match(gone.stderr, /No such object: web/);
  });

  test('many long-running containers at once (more than libuv has threadpool threads)', async () => {
    const ids: string[] = [];
    for (let i = 0; i < 6; i++) {
      const r = await d.docker(['run', '-d', '--network', 'none', 'busybox', 'sleep', '1000'], {
        timeoutMs: 20_000,
      });
      assert.equal(r.code, 0, r.stderr);
      ids.push(r.stdout.trim());
    }
    const ex = await docker('exec', ids[5], 'echo', 'still-serving');
    assert.equal(ex.stdout, 'still-serving\n');
    assert.equal((await docker('rm', '-f', ...ids)).code, 0);
  });

  test('inspect -s and ps -s report the container layer in bytes', async () => {
    const id = await runDetached('head -c 100000 /dev/zero > /big; sleep 1000');
    await waitFor(
      'the file',
      async () => (await docker('inspect', '-s', '-f', '{{.SizeRw}}', id)).stdout.trim() === '100000',
    );
    const ps = await docker('ps', '-s', '--filter', `id=${id}`, '--format', '{{.Size}}');
    assert.match(ps.stdout, /^100kB \(virtual \d/);
    assert.equal((await docker('rm', '-f', id)).code, 0);
  });

  test('logs -f follows and ends when the container exits', async () => {
    const id = await runDetached('for i in 1 2 3; do echo $i; sleep 0.3; done');
    const f = await d.docker(['logs', '-f', id], { timeoutMs: 20_000 });
    assert.equal(f.stdout, '1\n2\n3\n');
    await docker('rm', id);
  });

  test('names are unique, rename works, ps filters select', async () => {
    assert.equal((await docker('create', '--name', 'one', '--label', 'tier=db', 'busybox', 'true')).code, 0);
    const dup = await docker('create', '--name', 'one', 'busybox', 'true');
    assert.equal(dup.code, 1);
    assert.match(dup.stderr, /Conflict. The container name "\/one" is already in use/);
    assert.equal((await docker('rename', 'one', 'two')).code, 0);
    const byLabel = await docker(
      'ps',
      '-a',
      '--filter',
      'label=tier=db',
      '--format',
      '{{.Names}} {{.Status}}',
    );
    assert.equal(byLabel.stdout.trim(), 'two Created');
    const byStatus = await docker('ps', '-a', '-q', '--filter', 'status=running', '--filter', 'name=two');
    assert.equal(byStatus.stdout.trim(), '');
    assert.equal((await docker('start', '-a', 'two')).code, 0);
    const exited = await docker('ps', '-a', '--filter', 'exited=0', '--format', '{{.Names}}');
    assert.match(exited.stdout, /two/);
    assert.equal((await docker('rm', 'two')).code, 0);
  });

  test('restart policy on-failure:2 retries twice', async () => {
    const id = await runDetached('exit 4', ['--restart', 'on-failure:2']);
    await waitFor('two restarts', async () => {
      const s = (await docker('inspect', '-f', '{{.RestartCount}} {{.State.Status}}', id)).stdout.trim();
      return s === '2 exited';
    });
    assert.equal((await docker('rm', '-f', id)).code, 0);
  });

  test('kill sends the signal; wait returns the exit code', async () => {
    const id = await runDetached('trap "exit 42" HUP; while true; do sleep 0.1; done');
    await new Promise((res) => setTimeout(res, 300));
    assert.equal((await docker('kill', '-s', 'HUP', id)).code, 0);
    const w = await docker('wait', id);
    assert.equal(w.stdout.trim(), '42');
    const k = await docker('kill', id);
    assert.match(k.stderr, /is not running/);
    await docker('rm', id);
  });
});

describe('bad input', () => {
  test('malformed JSON and wrong types get a 400, the daemon keeps serving', async () => {
    /** POST /containers/create with a raw body; stdout is the answer followed by its status. */
    const createRaw = (body: string) =>
      runCmd('curl', [
        '-s',
        '-o',
        '-',
        '-w',
        '%{http_code}',
        '--unix-socket',
        d.socket,
        '-H',
        'Content-Type: application/json',
        '-d',
        body,
        'http://x/v1.50/containers/create',
      ]);
    const bad = await createRaw('{"Image": "busybox", ');
    assert.match(bad.stdout, /invalid JSON.*400$/s);
    const wrong = await createRaw('{"Image": "busybox", "Cmd": 5}');
    assert.match(wrong.stdout, /400$/);
    const name = await docker('create', '--name', 'bad/name', 'busybox');
    assert.match(name.stderr, /Invalid container name/);
    const rp = await createRaw('{"Image":"busybox","HostConfig":{"RestartPolicy":{"Name":"sometimes"}}}');
    assert.match(rp.stdout, /invalid restart policy.*400$/s);
    const ghost = await docker('start', 'ghost');
    assert.match(ghost.stderr, /No such container: ghost/);
    assert.equal((await docker('ps', '-aq')).code, 0);
  });
});

describe('live restore', () => {
  test('containers survive a daemon restart and a SIGKILL; exits meanwhile are recorded', async () => {
    const long = await runDetached('echo before; sleep 1000', ['--name', 'keeper']);
    const short = await runDetached('sleep 1.5; exit 9');
    await d.restart('SIGKILL');
    assert.equal((await docker('inspect', '-f', '{{.State.Status}}', long)).stdout.trim(), 'running');
    await waitFor(
      'short exit',
      async () =>
        (await docker('inspect', '-f', '{{.State.Status}} {{.State.ExitCode}}', short)).stdout.trim() ===
        'exited 9',
    );
    await d.restart('SIGTERM');
    const ex = await docker('exec', 'keeper', 'echo', 'alive');
    assert.equal(ex.stdout, 'alive\n');
    assert.equal((await docker('logs', 'keeper')).stdout, 'before\n');
    assert.equal((await docker('rm', '-f', long, short)).code, 0);
  });

  test('a removal interrupted by a stop is finished at the next start, its mount detached first', async () => {
    await d.stop('SIGKILL');
    // What a stop in the middle of a background layer removal leaves: a trash directory with a mount.
    const merged = path.join(d.dataRoot, 'overlay', 'tmp', 'rm-interrupted', 'merged');
    mkdirSync(merged, { recursive: true });
    writeFileSync(path.join(merged, '..', 'meta.json'), '{}');
    const m = await runCmd('mount', ['-t', 'tmpfs', 'tmpfs', merged]);
    assert.equal(m.code, 0, m.stderr);
    try {
      await d.start();
      assert.ok(!readFileSync('/proc/self/mountinfo', 'utf8').includes(merged), 'the mount is gone');
      assert.deepEqual(readdirSync(path.join(d.dataRoot, 'overlay', 'tmp')), []);
    } finally {
      await runCmd('umount', ['-l', merged]).catch(() => {});
    }
  });

  test('a run-state file damaged by a crash leaves the durable record in force', async () => {
    const id = await runDetached('exit 3', ['--name', 'crashy']);
    await waitFor(
      'exit',
      async () => (await docker('inspect', '-f', '{{.State.Status}}', id)).stdout.trim() === 'exited',
    );
    await d.stop('SIGKILL');
    // What a power loss can leave of a file replaced without fsync on some filesystems: nothing.
    writeFileSync(path.join(d.dataRoot, 'containers', id, 'state.json'), '');
    await d.start();
    const r = await docker('inspect', '-f', '{{.Name}} {{.Config.Image}} {{.State.Status}}', id);
    assert.equal(r.stdout.trim(), '/crashy busybox created', r.stderr);
    const again = await docker('start', '-a', 'crashy');
    assert.equal(again.code, 3, again.stderr);
    assert.equal((await docker('rm', 'crashy')).code, 0);
  });
});
