/**
 * Container logs through the real docker CLI against a real berthd: Docker's json-file on disk
 * byte for byte, rotation and reading across rotated (and gzipped) files, logs kept across a
 * container restart and a berthd restart (with output written while berthd was down), long and
 * unterminated lines, and the create-time refusals of bad log options.
 */
import assert from 'node:assert/strict';
import { appendFileSync, existsSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import * as path from 'node:path';
import { gunzipSync } from 'node:zlib';
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

const docker = async (...args: string[]) => {
  const r = await d.docker(args);
  assert.equal(r.code, 0, `docker ${args.join(' ')}: ${r.stderr}`);
  return r;
};
/**
 * Runs `sh -c script` to its end; returns the container ID. The rest of a run's output is written
 * to the log in the background after the exit; a `docker logs` waits for it, so the files are
 * whole afterwards.
 */
const runToEnd = async (script: string, flags: string[] = []) => {
  const id = (await docker('run', '-d', '--network', 'none', ...flags, 'busybox', 'sh', '-c', script)).stdout.trim();
  await docker('wait', id);
  if (!flags.includes('none')) await docker('logs', '--tail', '0', id);
  return id;
};
const logPath = async (id: string) => JSON.parse((await docker('inspect', id)).stdout)[0].LogPath as string;
const waitFor = async (what: string, pred: () => boolean | Promise<boolean>, ms = 20_000) => {
  const end = Date.now() + ms;
  while (Date.now() < end) {
    if (await pred()) return;
    await new Promise((r) => setTimeout(r, 50));
  }
  throw new Error(`timed out waiting for ${what}`);
};

const TIME = /^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d*[1-9])?Z$/;
interface Entry {
  log: string;
  stream: string;
  time: string;
}
/** The entries of a json-file, each checked to be exactly in dockerd's key order and shape. */
function entries(text: string): Entry[] {
  return text
    .split('\n')
    .filter(Boolean)
    .map((l) => {
      const e = JSON.parse(l) as Entry;
      assert.deepEqual(Object.keys(e), ['log', 'stream', 'time'], l);
      assert.match(e.time, TIME, l);
      return e;
    });
}
/** All entries of a log, oldest file first (rotated files gunzipped). */
function allEntries(file: string): Entry[] {
  const dir = path.dirname(file);
  const base = path.basename(file);
  const rotated = readdirSync(dir)
    .map((n) => /^\.(\d+)(\.gz)?$/.exec(n.slice(base.length)) && n.startsWith(base) ? n : '')
    .filter(Boolean)
    .sort((a, b) => Number(b.split('.').slice(-2)[0].replace(/\D/g, '') || b.split('.').pop()) - Number(a.split('.').slice(-2)[0].replace(/\D/g, '') || a.split('.').pop()));
  const out: Entry[] = [];
  for (const n of [...rotated, base]) {
    const raw = readFileSync(path.join(dir, n));
    out.push(...entries((n.endsWith('.gz') ? gunzipSync(raw) : raw).toString('utf8')));
  }
  return out;
}
/** `-t` output lines → [fixed 9-digit time, text]. */
const stamped = (text: string) =>
  text
    .split('\n')
    .filter(Boolean)
    .map((l) => [l.slice(0, 30), l.slice(31)]);
const fixed = (t: string) => {
  const [s, f = ''] = t.slice(0, -1).split('.');
  return `${s}.${f.padEnd(9, '0')}Z`;
};

describe('json-file', () => {
  test('is the default, at Docker’s path, in dockerd’s format byte for byte', async () => {
    const info = JSON.parse((await docker('info', '--format', '{{json .}}')).stdout);
    assert.equal(info.LoggingDriver, 'json-file');
    assert.ok(info.Plugins.Log.includes('json-file'));
    const id = await runToEnd(`printf 'hi\\n'; printf '<a> & "q" \\\\ \\t\\r x\\n' >&2; printf 'caf\\303\\251 \\342\\200\\250 \\377\\n'; echo; printf 'no newline'`);
    const inspect = JSON.parse((await docker('inspect', id)).stdout)[0];
    assert.deepEqual(inspect.HostConfig.LogConfig, { Type: 'json-file', Config: {} });
    const file = inspect.LogPath as string;
    assert.equal(path.basename(file), `${id}-json.log`);
    assert.equal(path.basename(path.dirname(file)), id);
    assert.equal(path.basename(path.dirname(path.dirname(file))), 'containers');
    const lines = readFileSync(file, 'latin1').split('\n');
    assert.equal(lines.pop(), '');
    const shape = (log: string, stream: string) => new RegExp(`^\\{"log":"${log}","stream":"${stream}","time":"[0-9T:.Z-]+"\\}$`);
    const out = lines.filter((l) => l.includes('"stdout"'));
    const err = lines.filter((l) => l.includes('"stderr"'));
    assert.equal(out.length, 4, lines.join('\n'));
    assert.match(out[0], shape('hi\\\\n', 'stdout'));
    // é stays UTF-8 bytes; U+2028 and an invalid byte are escaped as dockerd escapes them.
    assert.match(out[1], shape('caf\u00c3\u00a9 \\\\u2028 \\\\ufffd\\\\n', 'stdout'));
    assert.match(out[2], shape('\\\\n', 'stdout'));
    assert.match(out[3], shape('no newline', 'stdout'));
    assert.equal(err.length, 1);
    assert.match(err[0], shape('\\\\u003ca\\\\u003e \\\\u0026 \\\\"q\\\\" \\\\\\\\ \\\\u0009\\\\r x\\\\n', 'stderr'));
    for (const e of entries(lines.join('\n'))) assert.match(e.time, TIME);
    const logs = await docker('logs', id);
    assert.equal(logs.stdout, 'hi\ncafé \u2028 \ufffd\n\nno newline');
    assert.equal(logs.stderr, '<a> & "q" \\ \t\r x\n');
  });

  test('long lines are split at 16 KiB as Docker splits them; a last line without newline stays whole', async () => {
    const id = await runToEnd(`head -c 40000 /dev/zero | tr '\\0' a; echo; head -c 16384 /dev/zero | tr '\\0' b; echo; head -c 20000 /dev/zero | tr '\\0' c`);
    const e = entries(readFileSync(await logPath(id), 'utf8'));
    assert.deepEqual(
      e.map((x) => [x.log[0], x.log.length, x.log.endsWith('\n')]),
      [
        ['a', 16384, false],
        ['a', 16384, false],
        ['a', 7233, true],
        ['b', 16384, false],
        ['\n', 1, true],
        ['c', 16384, false],
        ['c', 3616, false],
      ],
    );
    // The pieces of one line share the time of its first piece, as dockerd's copier stamps them.
    assert.equal(e[0].time, e[1].time);
    const logs = await docker('logs', id);
    assert.equal(logs.stdout, `${'a'.repeat(40000)}\n${'b'.repeat(16384)}\n${'c'.repeat(20000)}`);
  });

  test('labels/env/tag options add dockerd’s attrs to every line', async () => {
    const flags = ['--name', 'tagged', '--label', 'team=<ops>', '--label', 'other=x', '-e', 'STAGE=dev', '--log-opt', 'labels=team', '--log-opt', 'env=STAGE,NOPE', '--log-opt', 'tag={{.Name}}/{{.ID}}'];
    const id = await runToEnd('echo hi', flags);
    const line = readFileSync(await logPath(id), 'utf8').trimEnd();
    assert.match(line, new RegExp(`^\\{"log":"hi\\\\n","stream":"stdout","attrs":\\{"STAGE":"dev","tag":"tagged/${id.slice(0, 12)}","team":"\\\\u003cops\\\\u003e"\\},"time":"[^"]+"\\}$`));
    assert.equal((await docker('logs', id)).stdout, 'hi\n');
    const bad = await d.docker(['create', '--network', 'none', '--log-opt', 'labels-regex=(', 'busybox', 'true']);
    assert.notEqual(bad.code, 0);
    assert.match(bad.stderr, /error parsing regexp/);
  });

  test('a container restart appends to its log', async () => {
    const id = await runToEnd('echo run');
    await docker('start', '-a', id);
    await docker('start', '-a', id);
    assert.equal((await docker('logs', id)).stdout, 'run\nrun\nrun\n');
    assert.equal(entries(readFileSync(await logPath(id), 'utf8')).length, 3);
  });

  test('a damaged log file is read up to and past the damage', async () => {
    const id = await runToEnd('echo one');
    const file = await logPath(id);
    const good = readFileSync(file, 'utf8');
    appendFileSync(file, 'garbage\n{"log":"cut off\n\0\0\0\n');
    appendFileSync(file, good.replace('one', 'two'));
    assert.equal((await docker('logs', id)).stdout, 'one\ntwo\n');
  });
});

describe('rotation', () => {
  const script = 'i=0; while [ $i -lt 300 ]; do echo "line-$i"; i=$((i+1)); done';
  const expectTailOf = (stdout: string) => {
    const got = stdout.split('\n').filter(Boolean);
    const first = Number(got[0].slice(5));
    assert.deepEqual(
      got,
      Array.from({ length: 300 - first }, (_, k) => `line-${first + k}`),
    );
    return got;
  };

  test('max-size/max-file keep max-file files of max-size, and logs reads across them', async () => {
    const id = await runToEnd(script, ['--log-opt', 'max-size=1k', '--log-opt', 'max-file=3']);
    const file = await logPath(id);
    const dir = path.dirname(file);
    const names = readdirSync(dir).filter((n) => n.startsWith(path.basename(file))).sort();
    assert.deepEqual(names, [`${id}-json.log`, `${id}-json.log.1`, `${id}-json.log.2`]);
    for (const n of names.slice(1)) {
      const size = readFileSync(path.join(dir, n)).length;
      assert.ok(size >= 1000 && size < 1100, `${n}: ${size} bytes`);
    }
    const all = allEntries(file);
    const got = expectTailOf((await docker('logs', id)).stdout);
    assert.equal(got.length, all.length);
    assert.ok(got.length > 24 && got.length < 45, `${got.length} lines kept`);
    // --tail reaching into the oldest file.
    const tail = (await docker('logs', '--tail', String(all.length - 3), id)).stdout.split('\n').filter(Boolean);
    assert.deepEqual(tail, got.slice(3));
    assert.deepEqual((await docker('logs', '--tail', '2', id)).stdout, 'line-298\nline-299\n');
    assert.deepEqual((await docker('logs', '--tail', '0', id)).stdout, '');
  });

  test('compress gzips the rotated files; --tail/--since/--until/-t read across them', async () => {
    const id = await runToEnd(script, ['--log-opt', 'max-size=1k', '--log-opt', 'max-file=4', '--log-opt', 'compress=true']);
    const file = await logPath(id);
    const dir = path.dirname(file);
    const base = path.basename(file);
    // Compression runs in the background after each rotation: wait for it to settle.
    await waitFor('rotated files compressed', () => !readdirSync(dir).some((n) => n.startsWith(`${base}.`) && !n.endsWith('.gz')));
    assert.deepEqual(readdirSync(dir).filter((n) => n.startsWith(base)).sort(), [base, `${base}.1.gz`, `${base}.2.gz`, `${base}.3.gz`]);
    const all = allEntries(file);
    const withTimes = stamped((await docker('logs', '-t', id)).stdout);
    assert.deepEqual(
      withTimes,
      all.map((e) => [fixed(e.time), e.log.slice(0, -1)]),
    );
    expectTailOf(withTimes.map((x) => x[1]).join('\n'));
    const tail = stamped((await docker('logs', '-t', '--tail', String(all.length - 5), id)).stdout);
    assert.deepEqual(tail, withTimes.slice(5));
    // since/until by the times in the files: every entry at or after since, at or before until.
    const since = all[Math.floor(all.length / 4)].time;
    const until = all[Math.floor((3 * all.length) / 4)].time;
    const t = (x: string) => fixed(x);
    const between = all.filter((e) => t(e.time) >= t(since) && t(e.time) <= t(until)).map((e) => e.log);
    assert.equal((await docker('logs', '--since', since, '--until', until, id)).stdout, between.join(''));
    const after = all.filter((e) => t(e.time) >= t(since)).map((e) => e.log);
    assert.equal((await docker('logs', '--since', since, id)).stdout, after.join(''));
  });
});

describe('follow', () => {
  test('logs -f during rotation (max-size=1k, compress) misses nothing and repeats nothing', async () => {
    const sig = mkdtempSync(path.join(tmpdir(), 'berth-logs-sig-'));
    try {
      const script = 'while [ ! -e /sig/go ]; do sleep 0.05; done; i=0; while [ $i -lt 400 ]; do echo "line-$i"; i=$((i+1)); done';
      const flags = ['--log-opt', 'max-size=1k', '--log-opt', 'max-file=60', '--log-opt', 'compress=true'];
      const id = (await docker('run', '-d', '--network', 'none', '-v', `${sig}:/sig`, ...flags, 'busybox', 'sh', '-c', script)).stdout.trim();
      const following = d.docker(['logs', '-f', id]);
      // The follower is attached once its request reached berthd; any output before that is read
      // from the files anyway, so starting the writer now cannot lose lines either way.
      writeFileSync(path.join(sig, 'go'), '');
      const r = await following;
      assert.equal(r.code, 0, r.stderr);
      assert.equal(r.stdout, Array.from({ length: 400 }, (_, k) => `line-${k}\n`).join(''));
      const rotated = readdirSync(path.dirname(await logPath(id))).filter((n) => /-json\.log\.\d+/.test(n));
      assert.ok(rotated.length > 20, `${rotated.length} rotated files`);
    } finally {
      rmSync(sig, { recursive: true, force: true });
    }
  });
});

describe('restarts of berthd', () => {
  test('output written while berthd is down is in the log after it comes back', async () => {
    const sig = mkdtempSync(path.join(tmpdir(), 'berth-logs-sig-'));
    try {
      const script = 'echo before; while [ ! -e /sig/go ]; do sleep 0.05; done; echo during; echo during-err >&2; touch /sig/written; while [ ! -e /sig/go2 ]; do sleep 0.05; done; echo after';
      const id = (await docker('run', '-d', '--network', 'none', '-v', `${sig}:/sig`, 'busybox', 'sh', '-c', script)).stdout.trim();
      await waitFor('first output', async () => (await docker('logs', id)).stdout === 'before\n');
      await d.stop();
      writeFileSync(path.join(sig, 'go'), '');
      await waitFor('output while berthd is down', () => existsSync(path.join(sig, 'written')));
      await d.start();
      const logs = await docker('logs', id);
      assert.equal(logs.stdout, 'before\nduring\n');
      assert.equal(logs.stderr, 'during-err\n');
      writeFileSync(path.join(sig, 'go2'), '');
      await docker('wait', id);
      assert.equal((await docker('logs', id)).stdout, 'before\nduring\nafter\n');
      assert.equal(entries(readFileSync(await logPath(id), 'utf8')).length, 4);
    } finally {
      rmSync(sig, { recursive: true, force: true });
    }
  });

  test('logs -f follows new output and ends when the container stops', async () => {
    const sig = mkdtempSync(path.join(tmpdir(), 'berth-logs-sig-'));
    try {
      const script = 'echo one; while [ ! -e /sig/go ]; do sleep 0.05; done; echo two';
      const id = (await docker('run', '-d', '--network', 'none', '-v', `${sig}:/sig`, 'busybox', 'sh', '-c', script)).stdout.trim();
      await waitFor('first output', async () => (await docker('logs', id)).stdout === 'one\n');
      const following = d.docker(['logs', '-f', id]);
      writeFileSync(path.join(sig, 'go'), '');
      const r = await following;
      assert.equal(r.code, 0, r.stderr);
      assert.equal(r.stdout, 'one\ntwo\n');
    } finally {
      rmSync(sig, { recursive: true, force: true });
    }
  });
});

describe('clients', () => {
  test('docker-py containers.run() returns the output (it reads json-file logs)', async (t) => {
    const probe = await runCmd('python3', ['-c', 'import docker']);
    if (probe.code !== 0) return t.skip('docker-py (Debian python3-docker) is not installed');
    const script = [
      'import docker',
      'c = docker.from_env()',
      "out = c.containers.run('busybox', ['sh', '-c', 'echo out; echo err >&2'], network_mode='none', remove=True, stderr=True)",
      'print(repr(out))',
    ].join('\n');
    const r = await runCmd('python3', ['-c', script], { env: d.env() });
    assert.equal(r.code, 0, r.stderr);
    // docker-py asks for stdout and stderr together: their order between streams is not fixed.
    assert.ok(["b'out\\nerr\\n'", "b'err\\nout\\n'"].includes(r.stdout.trim()), r.stdout);
  });
});

describe('daemon defaults', () => {
  test('daemon.json log-driver/log-opts apply to containers that name no driver', async () => {
    const base = mkdtempSync(path.join(tmpdir(), 'berth-test-'));
    writeFileSync(path.join(base, 'daemon.json'), JSON.stringify({ 'log-driver': 'json-file', 'log-opts': { 'max-size': '1k', 'max-file': '2' } }));
    const d2 = await startDaemon({ base });
    try {
      const id = (await d2.docker(['create', '--network', 'none', 'busybox', 'true'])).stdout.trim();
      const own = (await d2.docker(['create', '--network', 'none', '--log-driver', 'k8s-file', 'busybox', 'true'])).stdout.trim();
      const inspect = JSON.parse((await d2.docker(['inspect', id, own])).stdout);
      assert.deepEqual(inspect[0].HostConfig.LogConfig, { Type: 'json-file', Config: { 'max-size': '1k', 'max-file': '2' } });
      assert.deepEqual(inspect[1].HostConfig.LogConfig, { Type: 'k8s-file', Config: {} });
    } finally {
      await d2.destroy();
    }
  });
});

describe('log options at create', () => {
  const refused: [string[], string][] = [
    [['--log-driver', 'nosuch'], "logger: no log driver named 'nosuch' is registered"],
    [['--log-opt', 'colour=red'], "unknown log opt 'colour' for json-file log driver"],
    [['--log-opt', 'max-size=10x'], "invalid size: '10x'"],
    [['--log-opt', 'max-size=0'], 'max-size must be a positive number'],
    [['--log-opt', 'max-file=0'], 'max-file cannot be less than 1'],
    [['--log-opt', 'max-file=many'], 'strconv.Atoi: parsing "many": invalid syntax'],
    [['--log-opt', 'compress=true', '--log-opt', 'max-size=1m'], 'compress cannot be true when max-file is less than 2 or max-size is not set'],
    [['--log-opt', 'mode=sometimes'], 'logger: logging mode not supported: sometimes'],
    [['--log-driver', 'k8s-file', '--log-opt', 'max-file=2'], "unknown log opt 'max-file' for k8s-file log driver"],
  ];
  test('are refused with dockerd’s words and nothing is created', async () => {
    const before = (await docker('ps', '-aq', '--no-trunc')).stdout;
    for (const [flags, msg] of refused) {
      const r = await d.docker(['create', '--network', 'none', ...flags, 'busybox', 'true']);
      assert.notEqual(r.code, 0, flags.join(' '));
      assert.ok(r.stderr.includes(`Error response from daemon: ${msg}`), `${flags.join(' ')}: ${r.stderr}`);
    }
    assert.equal((await docker('ps', '-aq', '--no-trunc')).stdout, before);
  });

  test('none records nothing and logs says so; k8s-file still works', async () => {
    const none = await runToEnd('echo x', ['--log-driver', 'none']);
    assert.equal(await logPath(none), '');
    const r = await d.docker(['logs', none]);
    assert.notEqual(r.code, 0);
    assert.match(r.stderr, /configured logging driver does not support reading/);
    const k8s = await runToEnd('echo y; echo z >&2', ['--log-driver', 'k8s-file']);
    const logs = await docker('logs', k8s);
    assert.equal(logs.stdout, 'y\n');
    assert.equal(logs.stderr, 'z\n');
  });
});
