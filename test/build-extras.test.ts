/**
 * The builder's later additions, through the raw API and the docker CLI: `POST /build/cancel`
 * (a build named by `buildid` stops, its step container and scratch filesystems go, nothing is
 * tagged), `--cache-from`, `builder prune` filters and `-a`, `berth build --progress=tty` in tmux.
 */
import assert from 'node:assert/strict';
import { promises as fs, mkdtempSync, readFileSync } from 'node:fs';
import * as http from 'node:http';
import { tmpdir } from 'node:os';
import * as path from 'node:path';
import { after, before, test } from 'node:test';
import { cacheMountDir } from '../src/build/mounts.js';
import { BERTH, startDaemon, type TestDaemon } from './helpers/daemon.js';
import { runCmd } from './helpers/run.js';

let d: TestDaemon;
const work = mkdtempSync(path.join(tmpdir(), 'berth-build-extras-'));

before(async () => {
  d = await startDaemon();
});
after(async () => {
  await d?.destroy();
  await fs.rm(work, { recursive: true, force: true });
});

async function ok(args: string[]): Promise<string> {
  const r = await d.docker(args, { timeoutMs: 120_000 });
  assert.equal(r.code, 0, `docker ${args.join(' ')}: ${r.stderr}${r.stdout}`);
  return r.stdout;
}

async function context(name: string, files: Record<string, string>): Promise<string> {
  const dir = path.join(work, name);
  for (const [rel, content] of Object.entries(files)) {
    await fs.mkdir(path.dirname(path.join(dir, rel)), { recursive: true });
    await fs.writeFile(path.join(dir, rel), content);
  }
  return dir;
}

/** Nothing of a build is left: no containers, no scratch layers or markers, no mounts, no work dirs. */
async function assertNothingLeft(): Promise<void> {
  assert.equal((await ok(['ps', '-aq'])).trim(), '', 'no containers left');
  const overlay = path.join(d.dataRoot, 'overlay', 'containers');
  const left = (await fs.readdir(overlay).catch(() => [] as string[])).filter((n) => n.startsWith('build-'));
  assert.deepEqual(left, [], 'no scratch layers left');
  assert.deepEqual(await fs.readdir(path.join(d.dataRoot, 'build', 'scratch')), [], 'no scratch markers');
  const mounts = readFileSync('/proc/self/mountinfo', 'utf8')
    .split('\n')
    .map((l) => l.split(' ')[4])
    .filter((m) => m?.startsWith(path.join(d.dataRoot, 'overlay', 'containers')));
  assert.deepEqual(mounts, [], 'no container rootfs mounted');
  assert.deepEqual(await fs.readdir(path.join(d.dataRoot, 'build', 'tmp')), [], 'no work directories');
}

/** A request over the daemon's socket; `onLine` sees each JSON line of the body as it arrives. */
function request(
  method: string,
  query: string,
  body?: Buffer,
  onLine?: (line: Record<string, unknown>) => void,
): Promise<{ status: number; text: string; lines: Record<string, unknown>[] }> {
  return new Promise((resolve, reject) => {
    const req = http.request(
      { socketPath: d.socket, method, path: `/v1.50${query}`, headers: { 'Content-Type': 'text/plain' } },
      (res) => {
        let text = '';
        let pending = '';
        const lines: Record<string, unknown>[] = [];
        res.on('data', (b: Buffer) => {
          text += b.toString();
          pending += b.toString();
          let nl = pending.indexOf('\n');
          while (nl >= 0) {
            const raw = pending.slice(0, nl);
            pending = pending.slice(nl + 1);
            if (raw.trim() && res.headers['content-type']?.includes('json')) {
              const line = JSON.parse(raw) as Record<string, unknown>;
              lines.push(line);
              onLine?.(line);
            }
            nl = pending.indexOf('\n');
          }
        });
        res.on('end', () => resolve({ status: res.statusCode ?? 0, text, lines }));
      },
    );
    req.on('error', reject);
    req.end(body);
  });
}

test('POST /build/cancel stops the build named by buildid: its container and scratch go, nothing is tagged', async () => {
  // A COPY before the RUN: the scratch filesystem of a file step is made and removed on the way.
  const missing = await request('POST', '/build/cancel');
  assert.equal(missing.status, 400);
  assert.match(missing.text, /build ID not provided/);
  const unknown = await request('POST', '/build/cancel?id=nobody');
  assert.equal(unknown.status, 200, 'an ID that names no running build is no error');

  let started!: () => void;
  const running = new Promise<void>((r) => (started = r));
  const built = request(
    'POST',
    '/build?buildid=cancel-me&t=cancelled%3A1&nocache=1',
    Buffer.from('FROM busybox\nWORKDIR /w\nRUN echo started && sleep 300\nLABEL never=reached\n'),
    (l) => {
      if (typeof l.stream === 'string' && /^started$/m.test(l.stream)) started();
    },
  );
  await Promise.race([running, built.then((r) => assert.fail(`build ended early: ${r.text}`))]);
  assert.notEqual((await ok(['ps', '-aq'])).trim(), '', 'the step container runs');
  // The same ID cannot name two running builds.
  const twice = await request('POST', '/build?buildid=cancel-me', Buffer.from('FROM busybox\n'));
  assert.equal(twice.status, 409, twice.text);

  const cancelled = await request('POST', '/build/cancel?id=cancel-me');
  assert.equal(cancelled.status, 200);
  const r = await built;
  assert.equal(r.status, 200);
  const last = r.lines[r.lines.length - 1] as { error?: string };
  assert.match(last.error ?? '', /cancelled/i, r.text);
  assert.ok(!r.lines.some((l) => typeof l.stream === 'string' && /Successfully/.test(l.stream)), r.text);
  const tagged = await d.docker(['image', 'inspect', 'cancelled:1']);
  assert.notEqual(tagged.code, 0, 'a cancelled build tags nothing');
  await assertNothingLeft();
  // Once ended, the ID is free again.
  const again = await request('POST', '/build?buildid=cancel-me', Buffer.from('FROM busybox\nLABEL a=b\n'));
  assert.equal(again.status, 200);
  assert.ok(again.lines.some((l) => l.aux), again.text);
});

const usingCache = (out: string) => (out.match(/ ---> Using cache/g) ?? []).length;
const imageId = async (ref: string) => (await ok(['image', 'inspect', '--format', '{{.Id}}', ref])).trim();

test('--cache-from: a loaded image gives the steps its history matches, local hits outside its chain do not count', async () => {
  const dir = await context('cachefrom', {
    Dockerfile: 'FROM busybox\nENV A=1\nCOPY f /f\nRUN echo run > /r\nLABEL done=1\n',
    f: 'one\n',
  });
  await ok(['build', '-t', 'cf:1', dir]);
  const id1 = await imageId('cf:1');
  const tar = path.join(work, 'cf.tar');
  await ok(['save', '-o', tar, 'cf:1']);
  await ok(['rmi', 'cf:1']);
  await ok(['builder', 'prune', '-f']);
  await ok(['load', '-i', tar]);

  // Without the flag nothing is cached any more (this build's entries are outside cf:1's chain).
  const plain = await ok(['build', dir]);
  assert.equal(usingCache(plain), 0, plain);

  const from = await ok(['build', '--cache-from', 'cf:1', '-t', 'cf:2', dir]);
  assert.equal(usingCache(from), 4, from);
  assert.doesNotMatch(from, /Running in/);
  assert.equal(await imageId('cf:2'), id1, 'the last step is the --cache-from image itself');
  // The steps found that way are in the local index now.
  const local = await ok(['build', dir]);
  assert.equal(usingCache(local), 4, local);

  // A changed file: ENV still comes from the image, COPY and what follows run.
  await fs.writeFile(path.join(dir, 'f'), 'two\n');
  const changed = await ok(['build', '--cache-from', 'cf:1', '-t', 'cf:3', dir]);
  assert.equal(usingCache(changed), 1, changed);
  assert.match(changed, /Running in/);

  // Local entries exist for every step now, but none is in busybox's chain: with --cache-from
  // the classic builder only reuses what the named images hold.
  const unrelated = await ok(['build', '--cache-from', 'busybox', dir]);
  assert.equal(usingCache(unrelated), 0, unrelated);
  // A name that does not resolve is skipped, as by Docker.
  const missing = await ok(['build', '--cache-from', 'no-such-image:1', '--cache-from', 'cf:3', dir]);
  assert.equal(usingCache(missing), 4, missing);
  await assertNothingLeft();
});

test('docker builder prune: dangling entries without -a, --filter until/type/id, --keep-storage, then -a', async () => {
  await ok(['builder', 'prune', '-af']);
  const tagged = await context('prune-tagged', {
    Dockerfile: 'FROM busybox\nRUN --mount=type=cache,target=/c echo kept > /c/f && echo t > /t\nLABEL kind=tagged\n',
  });
  const loose = await context('prune-loose', { Dockerfile: 'FROM busybox\nRUN echo l > /l\nLABEL kind=loose\n' });
  await ok(['build', '-t', 'pr:1', tagged]);
  await ok(['build', loose]);
  const deletedBy = async (args: string[]) => {
    const out = await ok(['builder', 'prune', '-f', ...args]);
    return out.includes('Deleted build cache objects:') ? out.split('\n\n')[0].split('\n').slice(1) : [];
  };
  // Everything was used a moment ago.
  assert.deepEqual(await deletedBy(['--filter', 'until=1h']), []);
  // The whole cache is far below a gigabyte.
  assert.deepEqual(await deletedBy(['--keep-storage', '1GB']), []);
  assert.deepEqual(await deletedBy(['--filter', 'id=^no-such-id$']), []);
  const mounts = await deletedBy(['--filter', 'type=exec.cachemount']);
  assert.equal(mounts.length, 1, mounts.join('\n'));
  assert.match(mounts[0], /^cachemount:/);

  // Without -a the steps of the untagged build go, those of pr:1 stay.
  const dangling = await deletedBy([]);
  assert.equal(dangling.length, 2, dangling.join('\n'));
  assert.equal(usingCache(await ok(['build', '-t', 'pr:1', tagged])), 2);
  assert.equal(usingCache(await ok(['build', loose])), 0);

  const bad = await d.docker(['builder', 'prune', '-f', '--filter', 'until=yesterday']);
  assert.notEqual(bad.code, 0);
  assert.match(bad.stderr, /"until" filter expects a duration/);
  const unknown = await d.docker(['builder', 'prune', '-f', '--filter', 'colour=red']);
  assert.match(unknown.stderr, /invalid filter 'colour'/);

  const everything = await deletedBy(['-a']);
  assert.equal(everything.length, 5, everything.join('\n')); // 2 + 2 steps and the cache mount
  assert.equal(usingCache(await ok(['build', '-t', 'pr:1', tagged])), 0);
  await ok(['rmi', 'pr:1']);
  await assertNothingLeft();
});

/** A private tmux server: `berth build` on a real terminal. */
async function tmux(sock: string, args: string[]): Promise<string> {
  const r = await runCmd('tmux', ['-L', sock, ...args], { timeoutMs: 10_000 });
  assert.equal(r.code, 0, `tmux ${args.join(' ')}: ${r.stderr}`);
  return r.stdout;
}

/** Polls the pane until `want` matches it (the build moves on its own; no fixed waits). */
async function paneUntil(sock: string, want: RegExp): Promise<string> {
  const deadline = Date.now() + 60_000;
  let pane = '';
  while (Date.now() < deadline) {
    pane = await tmux(sock, ['capture-pane', '-p', '-t', 'b']);
    if (want.test(pane)) return pane;
    await new Promise((r) => setTimeout(r, 100));
  }
  assert.fail(`pane never matched ${want}:\n${pane}`);
}

test("berth build --progress=tty on a terminal: the running step's last lines in place, gone when it ends", async () => {
  // The step prints 9 lines, then waits for a file the test puts into its cache mount.
  const dir = await context('tty', {
    Dockerfile:
      'FROM busybox\nRUN --mount=type=cache,target=/gate,id=tty-gate for i in 1 2 3 4 5 6 7 8 9; do echo out-$i; done; ' +
      'until [ -e /gate/go ]; do sleep 0.05; done; rm /gate/go\nLABEL tty=1\n',
  });
  const sock = `berth-build-extras-${process.pid}`;
  const env = `BERTH_HOST=${d.host} DOCKER_CONFIG=${d.dockerConfig}`;
  try {
    await tmux(sock, [
      'new-session', '-d', '-s', 'b', '-x', '100', '-y', '40',
      `env ${env} ${BERTH} build --progress=tty --no-cache -t tty:1 ${dir}; echo BUILD-EXIT=$?; cat`,
    ]);
    const running = await paneUntil(sock, /│ out-9/);
    const lines = running.split('\n');
    const at = lines.findIndex((l) => /^ ---> Running in [0-9a-f]{12}$/.test(l));
    assert.ok(at >= 0, running);
    assert.deepEqual(lines.slice(at + 1, at + 7), [4, 5, 6, 7, 8, 9].map((i) => ` │ out-${i}`), running);
    assert.doesNotMatch(running, /out-3/);
    await fs.writeFile(path.join(cacheMountDir(path.join(d.dataRoot, 'build'), 'tty-gate'), 'go'), '');
    const done = await paneUntil(sock, /BUILD-EXIT=\d+/);
    assert.match(done, /BUILD-EXIT=0/, done);
    assert.match(done, /^ ---> Removed intermediate container [0-9a-f]{12}$/m);
    assert.match(done, /^Successfully tagged tty:1$/m);
    assert.doesNotMatch(done, /out-\d/, 'the window went with the step');
  } finally {
    await runCmd('tmux', ['-L', sock, 'kill-server'], { timeoutMs: 10_000 }).catch(() => {});
  }
  await ok(['rmi', 'tty:1']);
  await assertNothingLeft();
});
