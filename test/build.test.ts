/**
 * The builder through the real docker CLI (the classic builder's protocol, DOCKER_BUILDKIT=0) and
 * through `berth build`: output lines, the step cache (unchanged, one file changed, --no-cache,
 * after a daemon restart), multi-stage builds, ARG, a failing RUN's exit code, -q/--iidfile,
 * .dockerignore, COPY/ADD details, the raw JSON stream, and that nothing is left behind by a
 * failed or cancelled build.
 */
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { createHash } from 'node:crypto';
import { promises as fs, mkdtempSync, readFileSync } from 'node:fs';
import * as http from 'node:http';
import { tmpdir } from 'node:os';
import * as path from 'node:path';
import { after, before, test } from 'node:test';
import { DOCKER, startDaemon, type TestDaemon } from './helpers/daemon.js';
import { runCmd } from './helpers/run.js';
import { REGISTRY_BIN, startRegistry } from './registry/helpers.js';

let d: TestDaemon;
const work = mkdtempSync(path.join(tmpdir(), 'berth-build-work-'));

before(async () => {
  d = await startDaemon();
});
after(async () => {
  await d?.destroy();
  await fs.rm(work, { recursive: true, force: true });
});

/** Writes a context directory from a map of relative path → content. */
async function context(name: string, files: Record<string, string>): Promise<string> {
  const dir = path.join(work, name);
  for (const [rel, content] of Object.entries(files)) {
    await fs.mkdir(path.dirname(path.join(dir, rel)), { recursive: true });
    await fs.writeFile(path.join(dir, rel), content);
  }
  return dir;
}

async function build(args: string[], timeoutMs = 120_000) {
  return d.docker(['build', ...args], { timeoutMs });
}

async function ok(args: string[]): Promise<string> {
  const r = await d.docker(args, { timeoutMs: 60_000 });
  assert.equal(r.code, 0, `docker ${args.join(' ')}: ${r.stderr}`);
  return r.stdout;
}

const imageId = async (ref: string) => (await ok(['image', 'inspect', '--format', '{{.Id}}', ref])).trim();

/** Nothing of a build is left: no containers, no mounts of the daemon's, no scratch layers. */
async function assertNothingLeft(): Promise<void> {
  assert.equal((await ok(['ps', '-aq'])).trim(), '', 'no containers left');
  const overlay = path.join(d.dataRoot, 'overlay', 'containers');
  const left = (await fs.readdir(overlay).catch(() => [] as string[])).filter((n) => n.startsWith('build-'));
  assert.deepEqual(left, [], 'no scratch layers left');
  const mounts = readFileSync('/proc/self/mountinfo', 'utf8')
    .split('\n')
    .map((l) => l.split(' ')[4])
    .filter((m) => m?.startsWith(path.join(d.dataRoot, 'overlay', 'containers')));
  assert.deepEqual(mounts, [], 'no container rootfs mounted');
  assert.deepEqual(
    await fs.readdir(path.join(d.dataRoot, 'build', 'tmp')),
    [],
    'no build work directories left',
  );
}

const APP_DOCKERFILE = `FROM busybox
ENV GREETING=hello NAME="the builder"
WORKDIR /app
COPY hello.txt ./
RUN echo "run: $GREETING $NAME" && cat hello.txt && echo made > made.txt
CMD ["cat", "/app/made.txt", "/app/hello.txt"]
`;

test('docker build: classic output lines, and the image runs', async () => {
  const dir = await context('app', { Dockerfile: APP_DOCKERFILE, 'hello.txt': 'hi from the context\n' });
  const r = await build(['-t', 'app:1', dir]);
  assert.equal(r.code, 0, r.stderr + r.stdout);
  const out = r.stdout;
  assert.match(out, /^Step 1\/6 : FROM busybox\n ---> [0-9a-f]{12}\n/m);
  assert.match(out, /^Step 2\/6 : ENV GREETING=hello NAME="the builder"\n ---> [0-9a-f]{12}\n/m);
  assert.match(
    out,
    /^Step 5\/6 : RUN echo .*\n ---> Running in ([0-9a-f]{12})\nrun: hello the builder\nhi from the context\n ---> Removed intermediate container \1\n ---> [0-9a-f]{12}\n/m,
  );
  const built = /^Successfully built ([0-9a-f]{12})$/m.exec(out);
  assert.ok(built, out);
  assert.match(out, /^Successfully tagged app:1$/m);
  assert.ok((await imageId('app:1')).startsWith(`sha256:${built[1]}`));
  assert.equal(await ok(['run', '--rm', '--pull=never', 'app:1']), 'made\nhi from the context\n');
  const inspect = JSON.parse(await ok(['image', 'inspect', 'app:1']))[0];
  assert.equal(inspect.Config.WorkingDir, '/app');
  assert.ok(inspect.Config.Env.includes('NAME=the builder'));
  await assertNothingLeft();
});

test('the cache: unchanged rebuild, one file changed, --no-cache, after a daemon restart', async () => {
  const dir = await context('cache', { Dockerfile: APP_DOCKERFILE, 'hello.txt': 'one\n' });
  const first = await build(['-t', 'cache:1', dir]);
  assert.equal(first.code, 0, first.stderr);
  const id1 = await imageId('cache:1');

  const again = await build(['-t', 'cache:1', dir]);
  assert.equal(again.code, 0, again.stderr);
  assert.equal((again.stdout.match(/ ---> Using cache/g) ?? []).length, 5, again.stdout);
  assert.doesNotMatch(again.stdout, /Running in/);
  assert.equal(await imageId('cache:1'), id1, 'an unchanged rebuild gives the same image ID');

  await fs.writeFile(path.join(dir, 'hello.txt'), 'two\n');
  const changed = await build(['-t', 'cache:2', dir]);
  assert.equal(changed.code, 0, changed.stderr);
  // ENV and WORKDIR come from the cache; COPY sees new content, so it and every later step run.
  assert.equal((changed.stdout.match(/ ---> Using cache/g) ?? []).length, 2, changed.stdout);
  assert.match(changed.stdout, /Step 4\/6 : COPY hello.txt \.\/\n ---> [0-9a-f]{12}\n/);
  assert.match(changed.stdout, /^two$/m);
  assert.notEqual(await imageId('cache:2'), id1);

  const noCache = await build(['--no-cache', '-t', 'cache:3', dir]);
  assert.equal(noCache.code, 0, noCache.stderr);
  assert.doesNotMatch(noCache.stdout, /Using cache/);
  assert.match(noCache.stdout, /Running in/);

  await d.restart();
  const afterRestart = await build(['-t', 'cache:2', dir]);
  assert.equal(afterRestart.code, 0, afterRestart.stderr);
  assert.equal((afterRestart.stdout.match(/ ---> Using cache/g) ?? []).length, 5, afterRestart.stdout);
  await assertNothingLeft();
});

test('multi-stage: COPY --from a stage and an image, ARG and --build-arg, --target, unused stages skipped', async () => {
  const dir = await context('multi', {
    Dockerfile: `ARG BASE=busybox
FROM \${BASE} AS unused
RUN echo this-stage-is-not-needed

FROM \${BASE} AS builder
ARG GREETING=hi
ARG SUFFIX
RUN mkdir /out && echo "\${GREETING:-none} \${SUFFIX:+suffix-set}\${SUFFIX:-no-suffix}" > /out/msg

FROM scratch
COPY --from=builder /out/msg /msg
COPY --from=busybox /bin/busybox /bin/busybox
CMD ["/bin/busybox", "cat", "/msg"]
`,
  });
  const r = await build(['-t', 'multi:1', '--build-arg', 'GREETING=hello', '--build-arg', 'NOBODY=1', dir]);
  assert.equal(r.code, 0, r.stderr + r.stdout);
  assert.doesNotMatch(r.stdout, /this-stage-is-not-needed/);
  assert.match(r.stdout, /^Step 1\/9 : ARG BASE=busybox$/m);
  assert.match(r.stdout, /^Step 9\/9 : CMD/m);
  assert.match(r.stdout, /\[Warning\] One or more build-args \[NOBODY\] were not consumed/);
  assert.equal(await ok(['run', '--rm', '--pull=never', 'multi:1']), 'hello no-suffix\n');

  const t = await build(['-t', 'multi:builder', '--target', 'builder', '--build-arg', 'SUFFIX=x', dir]);
  assert.equal(t.code, 0, t.stderr + t.stdout);
  assert.doesNotMatch(t.stdout, /FROM scratch/);
  assert.equal(
    await ok(['run', '--rm', '--pull=never', 'multi:builder', 'cat', '/out/msg']),
    'hi suffix-setx\n',
  );

  const bad = await build(['--target', 'nope', dir]);
  assert.notEqual(bad.code, 0);
  assert.match(bad.stderr, /target stage "nope" could not be found/);
  await assertNothingLeft();
});

test('a failing RUN: exit code, message, nothing left behind', async () => {
  const dir = await context('fail', {
    Dockerfile: 'FROM busybox\nRUN echo before\nRUN echo output-of-failing-step && exit 23\n',
  });
  const r = await build(['-t', 'fail:1', dir]);
  assert.equal(r.code, 23, r.stderr + r.stdout);
  assert.match(r.stdout, /output-of-failing-step/);
  assert.match(
    r.stderr,
    /The command '\/bin\/sh -c echo output-of-failing-step && exit 23' returned a non-zero code: 23/,
  );
  const tagged = await d.docker(['image', 'inspect', 'fail:1']);
  assert.notEqual(tagged.code, 0, 'no tag for a failed build');
  await assertNothingLeft();
});

test('Dockerfile errors are worded as Docker words them', async () => {
  const dir = await context('parse', { Dockerfile: 'FROM busybox\nRUN true\nFORM busybox\n' });
  const r = await build([dir]);
  assert.equal(r.code, 1);
  assert.match(r.stderr, /dockerfile parse error on line 3: unknown instruction: FORM/);
  const missing = await context('missing', { Dockerfile: 'FROM busybox\nCOPY nothere.txt /\n' });
  const m = await build([missing]);
  assert.notEqual(m.code, 0);
  assert.match(
    m.stderr + m.stdout,
    /COPY failed: file not found in build context or excluded by \.dockerignore: stat nothere\.txt: file does not exist/,
  );
  await assertNothingLeft();
});

test('-q prints only the ID; --iidfile gets it too', async () => {
  const dir = await context('quiet', { Dockerfile: 'FROM busybox\nRUN echo noisy\nLABEL q=1\n' });
  const iid = path.join(work, 'iid');
  const r = await build(['-q', '--iidfile', iid, dir]);
  assert.equal(r.code, 0, r.stderr);
  assert.match(r.stdout, /^sha256:[0-9a-f]{64}\n$/);
  assert.equal((await fs.readFile(iid, 'utf8')).trim(), r.stdout.trim());
  assert.equal(await imageId(r.stdout.trim()), r.stdout.trim());
});

test('.dockerignore, wildcards, --chown/--chmod, ADD of a local tar', async () => {
  const dir = await context('files', {
    Dockerfile: `FROM busybox
COPY . /ctx/
COPY --chown=1000:1001 --chmod=640 a*.txt /owned/
COPY --chown=nobody:nogroup b.txt /named/
ADD bundle.tar /unpacked/
RUN ls -a /ctx | sort | tr '\\n' ' ' && echo && stat -c '%n %u:%g %a' /owned/a1.txt /owned/a2.txt /named/b.txt && cat /unpacked/inner/file.txt
`,
    '.dockerignore': 'secrets\n*.log\n!keep.log\n',
    'a1.txt': '1',
    'a2.txt': '2',
    'b.txt': 'b',
    'secrets/key': 'do-not-send',
    'debug.log': 'x',
    'keep.log': 'kept',
  });
  await fs.mkdir(path.join(work, 'bundle', 'inner'), { recursive: true });
  await fs.writeFile(path.join(work, 'bundle', 'inner', 'file.txt'), 'from the tar\n');
  const t = await runCmd('tar', [
    '-cf',
    path.join(dir, 'bundle.tar'),
    '-C',
    path.join(work, 'bundle'),
    'inner',
  ]);
  assert.equal(t.code, 0, t.stderr);
  const r = await build(['-t', 'files:1', dir]);
  assert.equal(r.code, 0, r.stderr + r.stdout);
  assert.match(
    r.stdout,
    /^\. \.\. \.dockerignore Dockerfile a1\.txt a2\.txt b\.txt bundle\.tar keep\.log $/m,
  );
  assert.match(r.stdout, /^\/owned\/a1\.txt 1000:1001 640$/m);
  assert.match(r.stdout, /^\/owned\/a2\.txt 1000:1001 640$/m);
  assert.match(r.stdout, /^\/named\/b\.txt 65534:65534 644$/m);
  assert.match(r.stdout, /^from the tar$/m);

  const ignored = await context('ignored', {
    Dockerfile: 'FROM busybox\nCOPY secrets/key /\n',
    '.dockerignore': 'secrets\n',
    'secrets/key': 'x',
  });
  const e = await build([ignored]);
  assert.notEqual(e.code, 0);
  assert.match(e.stderr + e.stdout, /file not found in build context or excluded by \.dockerignore/);
  await assertNothingLeft();
});

/** POSTs a body to /build over the daemon's socket; resolves with the status and the body's lines. */
function postBuild(
  query: string,
  body: Buffer,
  contentType: string,
): Promise<{ status: number; lines: Record<string, unknown>[] }> {
  return new Promise((resolve, reject) => {
    const req = http.request(
      {
        socketPath: d.socket,
        method: 'POST',
        path: `/v1.50/build?${query}`,
        headers: { 'Content-Type': contentType },
      },
      (res) => {
        let text = '';
        res.on('data', (b: Buffer) => (text += b.toString()));
        res.on('end', () => {
          const lines = text
            .split('\n')
            .filter(Boolean)
            .map((l) => JSON.parse(l) as Record<string, unknown>);
          resolve({ status: res.statusCode ?? 0, lines });
        });
      },
    );
    req.on('error', reject);
    req.end(body);
  });
}

test('the raw /build stream: a gzip context and a bare Dockerfile', async () => {
  const dir = await context('raw', { Dockerfile: 'FROM busybox\nCOPY f /f\nRUN exit 7\n', f: 'x' });
  const tgz = path.join(work, 'raw.tgz');
  assert.equal((await runCmd('tar', ['-czf', tgz, '-C', dir, '.'])).code, 0);
  const r = await postBuild('t=raw%3A1', await fs.readFile(tgz), 'application/x-tar');
  assert.equal(r.status, 200);
  assert.deepEqual(r.lines[0], { stream: 'Step 1/3 : FROM busybox\n' });
  assert.ok(
    r.lines.some((l) => typeof l.stream === 'string' && /^ ---> Running in [0-9a-f]{12}\n$/.test(l.stream)),
  );
  const last = r.lines[r.lines.length - 1] as {
    errorDetail: { code: number; message: string };
    error: string;
  };
  assert.equal(last.errorDetail.code, 7);
  assert.equal(last.error, "The command '/bin/sh -c exit 7' returned a non-zero code: 7");

  const plain = await postBuild('', Buffer.from('FROM busybox\nLABEL bare=yes\n'), 'text/plain');
  assert.equal(plain.status, 200);
  const aux = plain.lines.find((l) => l.aux) as { aux: { ID: string } };
  assert.match(aux.aux.ID, /^sha256:[0-9a-f]{64}$/);
  const labels = JSON.parse(
    await ok(['image', 'inspect', '--format', '{{json .Config.Labels}}', aux.aux.ID]),
  );
  assert.deepEqual(labels, { bare: 'yes' });

  const badTag = await postBuild('t=Bad%20Tag', Buffer.from('FROM busybox\n'), 'text/plain');
  assert.equal(badTag.status, 400);
  await assertNothingLeft();
});

test('a client that disconnects mid-build cancels it: the step container goes', async () => {
  const dir = await context('cancel', { Dockerfile: 'FROM busybox\nRUN echo started && sleep 300\n' });
  const child = spawn(DOCKER, ['build', '--no-cache', dir], {
    env: d.env(),
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let out = '';
  await new Promise<void>((resolve, reject) => {
    child.stdout.on('data', (b: Buffer) => {
      out += b.toString();
      if (/^started$/m.test(out)) resolve();
    });
    child.once('exit', () => reject(new Error(`docker build ended early: ${out}`)));
  });
  child.kill('SIGKILL');
  // The daemon notices the closed connection, kills the step and removes its container.
  const deadline = Date.now() + 30_000;
  while ((await ok(['ps', '-aq'])).trim() !== '' && Date.now() < deadline)
    await new Promise((r) => setTimeout(r, 100));
  await assertNothingLeft();
});

test('berth build: -t, -f outside the context, --build-arg, --label, --target, -q, --iidfile, --no-cache, exit code', async () => {
  const dir = await context('berth', {
    'ctx/Dockerfile.ignored-by-f': 'FROM scratch\n',
    'ctx/data.txt': 'data\n',
    'ctx/skip.tmp': 'no\n',
    'ctx/.dockerignore': '*.tmp\n',
    'Dockerfile.outside': `FROM busybox AS base
ARG WHO
RUN echo "hello $WHO" > /greeting
FROM base
COPY . /ctx/
CMD ["sh", "-c", "cat /greeting; ls -A /ctx"]
`,
  });
  const ctx = path.join(dir, 'ctx');
  const r = await d.berth(
    [
      'build',
      '-t',
      'berth-built:1',
      '-f',
      path.join(dir, 'Dockerfile.outside'),
      '--build-arg',
      'WHO=berth',
      '--label',
      'made.by=berth',
      '--progress=plain',
      ctx,
    ],
    { timeoutMs: 120_000 },
  );
  assert.equal(r.code, 0, r.stderr + r.stdout);
  assert.match(r.stdout, /^Sending build context to Docker daemon/m);
  assert.match(r.stdout, /^Step 1\/7 : FROM busybox AS base$/m);
  assert.match(r.stdout, /^Successfully tagged berth-built:1$/m);
  const run = await ok(['run', '--rm', '--pull=never', 'berth-built:1']);
  assert.equal(
    run,
    'hello berth\nDockerfile.ignored-by-f\ndata.txt\n',
    'the outside Dockerfile and ignored files are not in the context',
  );
  assert.equal(
    (
      await ok(['image', 'inspect', '--format', '{{index .Config.Labels "made.by"}}', 'berth-built:1'])
    ).trim(),
    'berth',
  );

  const iid = path.join(work, 'berth-iid');
  const q = await d.berth(
    [
      'build',
      '-q',
      '--iidfile',
      iid,
      '--target',
      'base',
      '--build-arg',
      'WHO=berth',
      '-f',
      path.join(dir, 'Dockerfile.outside'),
      ctx,
    ],
    { timeoutMs: 120_000 },
  );
  assert.equal(q.code, 0, q.stderr);
  assert.match(q.stdout, /^sha256:[0-9a-f]{64}\n$/);
  assert.equal((await fs.readFile(iid, 'utf8')).trim(), q.stdout.trim());

  const nc = await d.berth(['build', '--no-cache', '-f', path.join(dir, 'Dockerfile.outside'), ctx], {
    timeoutMs: 120_000,
  });
  assert.equal(nc.code, 0, nc.stderr);
  assert.doesNotMatch(nc.stdout, /Using cache/);

  const failing = await context('berth-fail', { Dockerfile: 'FROM busybox\nRUN exit 42\n' });
  const f = await d.berth(['build', failing], { timeoutMs: 120_000 });
  assert.equal(f.code, 42);
  assert.match(f.stderr, /The command '\/bin\/sh -c exit 42' returned a non-zero code: 42/);
  await assertNothingLeft();
});

test('RUN --mount: cache kept between builds, tmpfs, bind from the context and a stage, a secret absent from the image', async () => {
  const dir = await context('mounts', {
    Dockerfile: `FROM busybox AS tools
RUN mkdir /tools && echo tool-from-stage > /tools/t.txt
FROM busybox
ARG RUNID
RUN --mount=type=cache,target=/var/cache/app echo "$RUNID" >> /var/cache/app/runs && cat /var/cache/app/runs | wc -l > /runs-seen
RUN --mount=type=tmpfs,target=/scratch echo temp > /scratch/x && cat /scratch/x
RUN --mount=type=bind,source=input.txt,target=/in.txt --mount=type=bind,from=tools,source=/tools,target=/t cat /in.txt /t/t.txt > /combined
RUN --mount=type=secret,id=token,required cat /run/secrets/token > /dev/null && echo secret-was-readable
CMD ["sh", "-c", "cat /runs-seen /combined; ls -A /var/cache /scratch /t /run/secrets /in.txt 2>&1 | sort"]
`,
    'input.txt': 'from-context\n',
  });
  const secret = path.join(work, 'token.txt');
  await fs.writeFile(secret, 'SUPER-SECRET-VALUE\n');
  const first = await d.berth(
    ['build', '-t', 'mounts:1', '--build-arg', 'RUNID=one', '--secret', `id=token,src=${secret}`, dir],
    { timeoutMs: 120_000 },
  );
  assert.equal(first.code, 0, first.stderr + first.stdout);
  assert.match(first.stdout, /^temp$/m);
  assert.match(first.stdout, /^secret-was-readable$/m);
  const second = await d.berth(
    ['build', '-t', 'mounts:2', '--build-arg', 'RUNID=two', '--secret', `id=token,src=${secret}`, dir],
    { timeoutMs: 120_000 },
  );
  assert.equal(second.code, 0, second.stderr + second.stdout);
  // The cache directory kept the first build's line; the layer of each build holds none of it.
  const out = await ok(['run', '--rm', '--pull=never', 'mounts:2']);
  const lines = out.split('\n');
  assert.equal(lines[0], '2', out);
  assert.equal(lines[1], 'from-context');
  assert.equal(lines[2], 'tool-from-stage');
  for (const p of ['/var/cache', '/scratch', '/t', '/run/secrets', '/in.txt'])
    assert.ok(out.includes(`ls: ${p}: No such file or directory`), `${p} left in the image:\n${out}`);
  const saved = await runCmd(DOCKER, ['save', 'mounts:2'], { env: d.env() });
  assert.equal(saved.code, 0);
  assert.ok(!saved.stdout.includes('SUPER-SECRET-VALUE'), 'the secret is in no layer');
  assert.ok(!(await ok(['history', '--no-trunc', 'mounts:2'])).includes('SUPER-SECRET-VALUE'));

  const missing = await d.berth(['build', dir], { timeoutMs: 120_000 });
  assert.notEqual(missing.code, 0);
  assert.match(missing.stderr, /secret token not found/);
  await assertNothingLeft();
});

test('system df shows the build cache; docker builder prune empties it (step entries and cache mounts)', async () => {
  const dir = await context('prune', {
    Dockerfile:
      'FROM busybox\nRUN --mount=type=cache,target=/c echo kept > /c/f && echo layer > /l\nLABEL p=1\n',
  });
  assert.equal((await d.berth(['build', '-t', 'prune:1', dir], { timeoutMs: 120_000 })).code, 0);
  const df = JSON.parse(
    await ok(['system', 'df', '--format', '{{json .}}']).then((o) => `[${o.trim().split('\n').join(',')}]`),
  ) as {
    Type: string;
    TotalCount: string;
  }[];
  const cache = df.find((r) => r.Type === 'Build Cache');
  assert.ok(cache && Number(cache.TotalCount) > 0, JSON.stringify(df));
  // -a: the steps of a tagged image are kept without it (build-extras.test.ts).
  const pruned = await ok(['builder', 'prune', '-af']);
  assert.match(pruned, /Deleted build cache objects:/);
  assert.match(pruned, /cachemount:/);
  const again = await d.berth(['build', '-t', 'prune:1', dir], { timeoutMs: 120_000 });
  assert.equal(again.code, 0, again.stderr);
  assert.doesNotMatch(again.stdout, /Using cache/);
});

test('ONBUILD triggers, heredocs, SHELL, HEALTHCHECK, EXPOSE, VOLUME, USER, ENTRYPOINT, # escape', async () => {
  const parent = await context('onbuild-parent', {
    Dockerfile: `FROM busybox
ONBUILD RUN echo "trigger ran in the child" > /from-trigger
ONBUILD COPY child.txt /child.txt
`,
  });
  assert.equal((await build(['-t', 'onbuild-parent:1', parent])).code, 0);
  const child = await context('onbuild-child', {
    Dockerfile: `# escape=\`
FROM onbuild-parent:1
SHELL ["/bin/sh", "-ec"]
RUN <<EOF
echo heredoc-line-1 > /heredoc
echo heredoc-line-2 >> /heredoc
EOF
COPY <<NOTE /note.txt
a note from a heredoc
NOTE
RUN echo one \`
    two > /continued
HEALTHCHECK --interval=5s --retries=2 CMD ["true"]
EXPOSE 8080 53/udp
VOLUME /data
USER 1000:1000
ENTRYPOINT ["cat"]
CMD ["/from-trigger", "/child.txt", "/heredoc", "/note.txt", "/continued"]
`,
    'child.txt': 'child file\n',
  });
  const r = await build(['-t', 'onbuild-child:1', child]);
  assert.equal(r.code, 0, r.stderr + r.stdout);
  assert.match(r.stdout, /# Executing 2 build triggers/);
  assert.equal(
    await ok(['run', '--rm', '--pull=never', 'onbuild-child:1']),
    'trigger ran in the child\nchild file\nheredoc-line-1\nheredoc-line-2\na note from a heredoc\none two\n',
  );
  const cfg = JSON.parse(await ok(['image', 'inspect', '--format', '{{json .Config}}', 'onbuild-child:1']));
  assert.deepEqual(cfg.Healthcheck, { Test: ['CMD', 'true'], Interval: 5e9, Retries: 2 });
  assert.deepEqual(Object.keys(cfg.ExposedPorts).sort(), ['53/udp', '8080/tcp']);
  assert.deepEqual(cfg.Volumes, { '/data': {} });
  assert.equal(cfg.User, '1000:1000');
  assert.deepEqual(cfg.Shell, ['/bin/sh', '-ec']);
  assert.ok(!cfg.OnBuild?.length, 'triggers are not inherited by the child');
});

test('FROM a private image of a registry on loopback: pulled with the credentials of docker login (X-Registry-Config)', async () => {
  const pw = await runCmd(process.execPath, [REGISTRY_BIN, 'htpasswd', 'alice'], { input: 's3cret\n' });
  const htpasswd = path.join(work, 'htpasswd');
  await fs.writeFile(htpasswd, pw.stdout);
  const reg = await startRegistry({
    config: {
      auth: { type: 'token', htpasswd },
      access: { repositories: [{ match: 'private/**', pull: ['alice'], push: ['alice'] }] },
    },
  });
  try {
    const host = `127.0.0.1:${reg.port}`;
    const ref = `${host}/private/base:1`;
    const base = await context('pushed-base', {
      Dockerfile: 'FROM busybox\nRUN echo from-the-registry > /marker\n',
    });
    assert.equal((await build(['-t', 'to-publish:1', base])).code, 0);
    // Published with skopeo (as test/pull.test.ts does), then forgotten locally.
    const tar = path.join(work, 'to-publish.tar');
    assert.equal((await d.docker(['save', '-o', tar, 'to-publish:1'])).code, 0);
    const copy = await runCmd(
      'skopeo',
      [
        'copy',
        '--dest-tls-verify=false',
        '--dest-creds',
        'alice:s3cret',
        `docker-archive:${tar}`,
        `docker://${ref}`,
      ],
      { timeoutMs: 60_000 },
    );
    assert.equal(copy.code, 0, copy.stderr);
    assert.equal((await d.docker(['rmi', 'to-publish:1'])).code, 0);
    const login = await d.docker(['login', '-u', 'alice', '--password-stdin', host], { input: 's3cret\n' });
    assert.equal(login.code, 0, login.stderr);
    const dir = await context('from-registry', { Dockerfile: `FROM ${ref}\nCMD ["cat", "/marker"]\n` });
    const r = await build(['-t', 'from-registry:1', dir]);
    assert.equal(r.code, 0, r.stderr + r.stdout);
    assert.match(r.stdout, /Status: Downloaded newer image/);
    assert.equal(await ok(['run', '--rm', '--pull=never', 'from-registry:1']), 'from-the-registry\n');
    // berth build sends the same credentials; --pull fetches even though the image is local now.
    const b = await d.berth(['build', '--pull', '-t', 'from-registry:2', dir], { timeoutMs: 120_000 });
    assert.equal(b.code, 0, b.stderr + b.stdout);
    assert.match(b.stdout, /Image is up to date|Status: /);
    assert.equal((await d.docker(['logout', host])).code, 0);
    assert.equal((await d.docker(['rmi', ref])).code, 0);
    const denied = await build([dir]);
    assert.notEqual(denied.code, 0);
    assert.match(denied.stderr, /denied|unauthorized/i);
  } finally {
    await reg.destroy();
  }
  await assertNothingLeft();
});

test("Compose's build: (docker-compose 1.29 through docker-py's POST /build)", async () => {
  const dir = await context('compose', {
    'docker-compose.yml':
      'version: "3"\nservices:\n  web:\n    build:\n      context: ./app\n      args:\n        GREETING: from-compose\n    image: composed:1\n',
    'app/Dockerfile':
      'FROM busybox\nARG GREETING\nRUN echo "$GREETING" > /greeting\nCMD ["cat", "/greeting"]\n',
  });
  const r = await runCmd('docker-compose', ['build'], {
    env: d.env({ COMPOSE_DOCKER_CLI_BUILD: '0' }),
    cwd: dir,
    timeoutMs: 120_000,
  });
  assert.equal(r.code, 0, r.stderr + r.stdout);
  assert.match(r.stdout, /Successfully tagged composed:1/);
  assert.equal(await ok(['run', '--rm', '--pull=never', 'composed:1']), 'from-compose\n');
});

test('SIGKILL of berthd mid-build: after the restart nothing of the build is left', async () => {
  const dir = await context('killed', { Dockerfile: 'FROM busybox\nRUN echo started && sleep 300\n' });
  const child = spawn(DOCKER, ['build', '--no-cache', '-t', 'killed:1', dir], {
    env: d.env(),
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let out = '';
  await new Promise<void>((resolve, reject) => {
    child.stdout.on('data', (b: Buffer) => {
      out += b.toString();
      if (/^started$/m.test(out)) resolve();
    });
    child.once('exit', () => reject(new Error(`docker build ended early: ${out}`)));
  });
  const exited = new Promise((r) => child.once('exit', r));
  await d.restart('SIGKILL');
  await exited;
  await assertNothingLeft();
  assert.notEqual((await d.docker(['image', 'inspect', 'killed:1'])).code, 0, 'no tag from the killed build');
});

test('SOURCE_DATE_EPOCH: two --no-cache builds give the same image ID', async () => {
  const dir = await context('epoch', {
    Dockerfile:
      'FROM busybox\nENV A=1\nWORKDIR /work\nCOPY f.txt ./\nRUN echo made > /work/made && mkdir -p /work/d && echo x > /work/d/x\nCMD ["cat", "/work/made"]\n',
    'f.txt': 'f\n',
  });
  const idOf = async (args: string[]) => {
    const r = await build(['-q', '--no-cache', ...args, dir]);
    assert.equal(r.code, 0, r.stderr);
    return r.stdout.trim();
  };
  const a = await idOf(['--build-arg', 'SOURCE_DATE_EPOCH=1700000000']);
  const b = await idOf(['--build-arg', 'SOURCE_DATE_EPOCH=1700000000']);
  assert.equal(a, b);
  assert.equal(
    (await ok(['image', 'inspect', '--format', '{{.Created}}', a])).trim(),
    '2023-11-14T22:13:20Z',
  );
  assert.notEqual(await idOf([]), await idOf([]), 'without it, each cold build is a new image');
});

test('ADD of a URL on loopback: downloaded with mode 0600 and Last-Modified, --checksum verified, a changed file misses the cache', async () => {
  let body = Buffer.from('remote content v1\n');
  const server = http.createServer((req, res) => {
    if (req.url === '/files/data.txt') {
      res.writeHead(200, { 'Last-Modified': 'Tue, 14 Nov 2023 22:13:20 GMT' });
      res.end(body);
    } else {
      res.writeHead(404);
      res.end();
    }
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  const port = (server.address() as { port: number }).port;
  try {
    const url = `http://127.0.0.1:${port}/files/data.txt`;
    const dir = await context('add-url', {
      Dockerfile: `FROM busybox\nADD ${url} /downloads/\nRUN stat -c '%a %Y' /downloads/data.txt && cat /downloads/data.txt\n`,
    });
    const r = await build(['-t', 'add-url:1', dir]);
    assert.equal(r.code, 0, r.stderr + r.stdout);
    assert.match(r.stdout, /^600 1700000000\nremote content v1$/m);
    const same = await build(['-t', 'add-url:1', dir]);
    assert.equal((same.stdout.match(/Using cache/g) ?? []).length, 2, same.stdout);
    body = Buffer.from('remote content v2\n');
    const changed = await build(['-t', 'add-url:2', dir]);
    assert.match(changed.stdout, /^remote content v2$/m);

    const sum = createHash('sha256').update(body).digest('hex');
    const good = await context('add-sum', {
      Dockerfile: `FROM busybox\nADD --checksum=sha256:${sum} ${url} /d.txt\n`,
    });
    assert.equal((await build([good])).code, 0);
    const bad = await context('add-badsum', {
      Dockerfile: `FROM busybox\nADD --checksum=sha256:${'0'.repeat(64)} ${url} /d.txt\n`,
    });
    const b = await build([bad]);
    assert.notEqual(b.code, 0);
    assert.match(b.stderr + b.stdout, /digest mismatch/);
    const missing = await context('add-404', {
      Dockerfile: `FROM busybox\nADD http://127.0.0.1:${port}/nope /x\n`,
    });
    const m = await build([missing]);
    assert.notEqual(m.code, 0);
    assert.match(m.stderr + m.stdout, /failed to GET .* with status 404/);
  } finally {
    await new Promise((r) => server.close(r));
  }
  await assertNothingLeft();
});

test('independent stages are built at the same time; the output stays in step order', async () => {
  // Each stage waits (up to a minute) for the other's mark in a shared cache mount: built one
  // after the other, the first would give up and fail the build.
  const stage = (me: string, other: string) => `FROM busybox AS ${me}
ARG SYNC
RUN --mount=type=cache,id=\${SYNC},target=/sync touch /sync/${me} && i=0 && while [ ! -e /sync/${other} ]; do i=$((i+1)); [ $i -lt 600 ] || exit 9; sleep 0.1; done && echo ${me} > /${me}
`;
  const dir = await context('concurrent', {
    Dockerfile: `${stage('one', 'two')}${stage('two', 'one')}FROM busybox
COPY --from=one /one /one
COPY --from=two /two /two
CMD ["cat", "/one", "/two"]
`,
  });
  const r = await build(['--no-cache', '-t', 'concurrent:1', '--build-arg', `SYNC=sync-${Date.now()}`, dir]);
  assert.equal(r.code, 0, r.stderr + r.stdout);
  const steps = [...r.stdout.matchAll(/^Step (\d+)\/10 : /gm)].map((m) => Number(m[1]));
  assert.deepEqual(steps, [1, 2, 3, 4, 5, 6, 7, 8, 9, 10]);
  assert.equal(await ok(['run', '--rm', '--pull=never', 'concurrent:1']), 'one\ntwo\n');
});

test('contexts on stdin: a bare Dockerfile, bzip2 and xz tars, -f - with a directory; a cut tar is refused', async () => {
  const dir = await context('stdin', {
    Dockerfile: 'FROM busybox\nCOPY a.txt /a.txt\n',
    'a.txt': 'a\n',
    'big.txt': 'b'.repeat(2000),
  });
  const bare = await d.docker(['build', '-'], {
    input: 'FROM busybox\nRUN echo from-stdin\n',
    timeoutMs: 120_000,
  });
  assert.equal(bare.code, 0, bare.stderr);
  assert.match(bare.stdout, /^from-stdin$/m);
  for (const flag of ['-cjf', '-cJf']) {
    const tar = path.join(work, `stdin${flag}.tar`);
    assert.equal((await runCmd('tar', ['-C', dir, flag, tar, '.'])).code, 0);
    const r = await d.docker(['build', '-'], { input: await fs.readFile(tar), timeoutMs: 120_000 });
    assert.equal(r.code, 0, r.stderr);
    assert.match(r.stdout, /Step 2\/2 : COPY a\.txt \/a\.txt/);
  }
  // The docker CLI sends this tar without padding or end blocks after the added Dockerfile.
  const dash = await d.docker(['build', '-t', 'stdin-f:1', '-f', '-', dir], {
    input: 'FROM busybox\nCOPY a.txt /b.txt\nCMD ["cat", "/b.txt"]\n',
    timeoutMs: 120_000,
  });
  assert.equal(dash.code, 0, dash.stderr);
  assert.equal(await ok(['run', '--rm', '--pull=never', 'stdin-f:1']), 'a\n');
  const tar = path.join(work, 'cut.tar');
  assert.equal((await runCmd('tar', ['-C', dir, '-cf', tar, 'Dockerfile', 'big.txt'])).code, 0);
  const cut = (await fs.readFile(tar)).subarray(0, 512 + 512 + 512 + 300); // big.txt's data cut short
  const r = await postBuild('', cut, 'application/x-tar');
  assert.equal(r.status, 400);
  await assertNothingLeft();
});
