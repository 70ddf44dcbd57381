/**
 * berth against a real berthd, compared with the real docker CLI on the same daemon: output formats,
 * tables, templates, errors and exit codes, host selection.
 */
import assert from 'node:assert/strict';
import { existsSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import * as path from 'node:path';
import { after, before, test } from 'node:test';
import { startDaemon, type TestDaemon } from './helpers/daemon.js';

let d: TestDaemon;
let tmp: string;
before(async () => {
  d = await startDaemon();
  tmp = mkdtempSync(path.join(tmpdir(), 'berth-cli-'));
});
after(async () => {
  if (tmp) rmSync(tmp, { recursive: true, force: true });
  await d?.destroy();
});

/** Runs the same command with both CLIs and checks that stdout, stderr and exit code agree. */
async function same(args: string[], opts: { stderrToo?: boolean; input?: string } = {}): Promise<string> {
  const [a, b] = await Promise.all([
    d.docker(args, { input: opts.input }),
    d.berth(args, { input: opts.input }),
  ]);
  assert.equal(b.stdout, a.stdout, `stdout of ${args.join(' ')}`);
  assert.equal(b.code, a.code, `exit code of ${args.join(' ')}: ${b.stderr}`);
  if (opts.stderrToo !== false) assert.equal(b.stderr, a.stderr, `stderr of ${args.join(' ')}`);
  return b.stdout;
}

/** As `same`, for outputs whose row order docker leaves to Go's random map iteration. */
async function sameRows(args: string[]): Promise<void> {
  const [a, b] = await Promise.all([d.docker(args), d.berth(args)]);
  const rows = (s: string) => {
    const l = s.split('\n');
    // a table header (all capitals) stays first; the rows are compared as a set
    return /^[A-Z][A-Z :]+$/.test(l[0]!.replace(/\s+/g, ' ')) ? [l[0], ...l.slice(1).sort()] : l.sort();
  };
  assert.deepEqual(rows(b.stdout), rows(a.stdout), `stdout of ${args.join(' ')}`);
  assert.equal(b.code, a.code);
  assert.equal(b.stderr, a.stderr);
}

test('version: server section and templates match docker', async () => {
  const [a, b] = await Promise.all([d.docker(['version']), d.berth(['version'])]);
  assert.equal(b.code, 0, b.stderr);
  const server = (s: string) => s.slice(s.indexOf('\n\nServer'));
  assert.equal(server(b.stdout), server(a.stdout));
  assert.match(b.stdout, /^Client:\n Version: {11}\S+\n API version: {7}1\.50\n/);
  await same([
    'version',
    '--format',
    '{{.Server.Version}} {{.Server.APIVersion}} {{.Server.Os}}/{{.Server.Arch}}',
  ]);
  await same(['version', '--format', '{{json .Server.Components}}']);
});

test('info: server section and --format match docker', async () => {
  const [a, b] = await Promise.all([d.docker(['info']), d.berth(['info'])]);
  assert.equal(b.code, 0, b.stderr);
  // Go prints the runtimes map in random order
  const server = (s: string) =>
    s
      .slice(s.indexOf('\nServer:'))
      .replace(/ Runtimes: (.*)/, (_m, r: string) => ` Runtimes: ${r.split(' ').sort().join(' ')}`);
  assert.equal(server(b.stdout), server(a.stdout));
  await same(['info', '--format', '{{.OSType}} {{.NCPU}} {{.Driver}} {{json .Plugins}} {{.DockerRootDir}}']);
  await same(['system', 'info', '--format', '{{.ServerVersion}}']);
});

test('images: table, quiet, digests, no-trunc, json and custom formats match docker', async () => {
  const tagged = await d.berth(['tag', 'busybox', 'cli-test/bb:v1']);
  assert.equal(tagged.code, 0, tagged.stderr);
  await sameRows(['images']);
  await sameRows(['images', '-q']);
  await sameRows(['images', '--digests', '--no-trunc']);
  await sameRows(['images', '--format', '{{json .}}']);
  await sameRows(['images', '--format', 'table {{.Repository}}:{{.Tag}}\t{{.ID}}\t{{.Size}}']);
  await same(['image', 'ls', 'cli-test/bb']);
  await same(['images', '--filter', 'reference=busybox']);
  await same(['history', 'busybox']);
  await same(['image', 'history', '--no-trunc', '--format', '{{.ID}}|{{.CreatedBy}}|{{.Size}}', 'busybox']);
  const rmi = await d.berth(['rmi', 'cli-test/bb:v1']);
  assert.equal(rmi.stdout, 'Untagged: cli-test/bb:v1\n', rmi.stderr);
});

test('inspect: JSON array, -f templates, --type, and errors match docker', async () => {
  await same(['image', 'inspect', 'busybox']);
  await same([
    'inspect',
    '-f',
    '{{.Id}} {{.Config.Cmd}} {{json .RepoTags}} {{index .Config.Env 0}}',
    'busybox',
  ]);
  await same([
    'inspect',
    '--format',
    '{{range .RootFS.Layers}}{{.}}{{end}}|{{len .RepoTags}}|{{upper .Os}}',
    'busybox',
  ]);
  await same(['inspect', 'nosuch-object']);
  await same(['inspect', 'busybox', 'nosuch-object'], { stderrToo: true });
  await same(['image', 'inspect', 'nosuch-image']);
  await same(['rmi', 'nosuch-image']);
  await same(['inspect', '--type', 'image', '-f', '{{.Architecture}}', 'busybox']);
});

test('system df and events match docker', async () => {
  await same(['system', 'df']);
  await same(['system', 'df', '--format', '{{json .}}']);
  await same(['events', '--since', '10m', '--until', '0s']);
  await same([
    'events',
    '--since',
    '10m',
    '--until',
    '0s',
    '--format',
    '{{.Type}} {{.Action}} {{json .Actor.Attributes}}',
  ]);
});

test('save, load, import and tag through berth keep image IDs', async () => {
  const out = path.join(tmp, 'bb.tar');
  const s = await d.berth(['save', '-o', out, 'busybox']);
  assert.equal(s.code, 0, s.stderr);
  assert.ok(existsSync(out));
  const id = (await d.berth(['image', 'inspect', '-f', '{{.Id}}', 'busybox'])).stdout.trim();
  const l = await d.berth(['load', '-i', out]);
  assert.equal(l.code, 0, l.stderr);
  assert.equal(l.stdout, 'Loaded image: busybox:latest\n');
  assert.equal((await d.berth(['image', 'inspect', '-f', '{{.Id}}', 'busybox'])).stdout.trim(), id);
  const imp = await d.berth(['import', '-c', 'CMD ["sh"]', '-m', 'from berth', out, 'cli-import:1']);
  assert.equal(imp.code, 0, imp.stderr);
  assert.match(imp.stdout, /^sha256:[0-9a-f]{64}\n$/);
  const hist = await d.berth(['history', '--format', '{{.Comment}}', 'cli-import:1']);
  assert.match(hist.stdout, /from berth/);
  assert.equal((await d.berth(['rmi', 'cli-import:1'])).code, 0);
  const refuse = await d.berth(['save', 'busybox']);
  // stdout is a pipe here, so save streams the tar rather than refusing
  assert.equal(refuse.code, 0);
  assert.ok(refuse.stdout.length > 0);
});

test('host selection: -H over BERTH_HOST over DOCKER_HOST; unreachable daemon', async () => {
  const bogus = `unix://${path.join(tmp, 'nothing.sock')}`;
  const viaBerthHost = await d.berth(['version', '--format', '{{.Server.Version}}'], {
    env: { DOCKER_HOST: bogus, BERTH_HOST: d.host },
  });
  assert.equal(viaBerthHost.code, 0, viaBerthHost.stderr);
  const viaFlag = await d.berth(['-H', d.host, 'version', '--format', '{{.Server.Version}}'], {
    env: { DOCKER_HOST: bogus, BERTH_HOST: bogus },
  });
  assert.equal(viaFlag.code, 0, viaFlag.stderr);
  const viaDocker = await d.berth(['images', '-q'], { env: { DOCKER_HOST: d.host, BERTH_HOST: '' } });
  assert.equal(viaDocker.code, 0, viaDocker.stderr);
  const down = await d.berth(['images'], { env: { BERTH_HOST: bogus } });
  assert.equal(down.code, 1);
  assert.equal(
    down.stderr,
    `Cannot connect to the Docker daemon at ${bogus}. Is the docker daemon running?\n`,
  );
  const dockerDown = await d.docker(['images'], { env: { DOCKER_HOST: bogus } });
  assert.equal(down.stderr, dockerDown.stderr);
});

test('usage errors: unknown flags and commands, missing arguments', async () => {
  const norm = (s: string) => s.replace(/berth/g, 'docker');
  for (const args of [
    ['ps', '--bogus'],
    ['run', '-x', 'busybox'],
    ['stop', '-t'],
    ['rm'],
    ['rename', 'a'],
    ['ps', 'a', 'b'],
    ['logs'],
    ['exec'],
    ['tag', 'a'],
  ]) {
    const [a, b] = await Promise.all([d.docker(args), d.berth(args)]);
    assert.equal(norm(b.stderr), a.stderr, args.join(' '));
    assert.equal(b.code, a.code, args.join(' '));
  }
  const c = await d.berth(['frobnicate']);
  assert.equal(c.code, 1);
  assert.match(c.stderr, /'frobnicate' is not a berth command/);
});

test('prune prompts: declining does nothing and exits 0, as docker', async () => {
  for (const c of [
    ['container', 'prune'],
    ['image', 'prune'],
    ['volume', 'prune'],
    ['network', 'prune'],
  ])
    await same(c, { input: 'n\n' });
});

test('login and logout keep credentials in $DOCKER_CONFIG/config.json', async () => {
  const r = await d.berth(['logout', '127.0.0.1:5999']);
  assert.equal(r.code, 0);
  assert.equal(r.stdout, 'Not logged in to 127.0.0.1:5999\n');
});

test('volumes and networks: create, ls, inspect, rm and prune match docker', async () => {
  const v = await d.berth(['volume', 'create', '--label', 'k=v', 'cli-vol1']);
  assert.equal(v.stdout, 'cli-vol1\n', v.stderr);
  assert.equal((await d.docker(['volume', 'create', 'cli-vol2'])).code, 0);
  await same(['volume', 'ls']);
  await same(['volume', 'ls', '-q']);
  await same(['volume', 'ls', '--format', '{{.Name}} {{.Driver}} {{.Labels}} {{.Label "k"}}']);
  await same(['volume', 'inspect', 'cli-vol1', 'cli-vol2']);
  await same(['volume', 'inspect', '-f', '{{.Name}} {{json .Labels}}', 'cli-vol1']);
  const rm = await d.berth(['volume', 'rm', 'cli-vol1', 'cli-vol2', 'cli-nosuch']);
  assert.equal(rm.code, 1);
  assert.equal(rm.stdout, 'cli-vol1\ncli-vol2\n');
  assert.match(rm.stderr, /^Error response from daemon: .*cli-nosuch/);

  const n = await d.berth(['network', 'create', '--label', 'a=b', 'cli-net1']);
  assert.equal(n.code, 0, n.stderr);
  assert.match(n.stdout, /^[0-9a-f]{64}\n$/);
  await same(['network', 'ls']);
  await same(['network', 'ls', '--no-trunc', '--format', '{{json .}}']);
  await same(['network', 'inspect', 'cli-net1']);
  await same(['network', 'inspect', '-f', '{{.Name}} {{.Driver}} {{index .Labels "a"}}', 'cli-net1', 'none']);
  const nrm = await d.berth(['network', 'rm', 'cli-net1']);
  assert.equal(nrm.stdout, 'cli-net1\n', nrm.stderr);
  await same(['network', 'rm', 'cli-net1']);
  const p = await d.berth(['volume', 'prune', '-f']);
  assert.equal(p.code, 0, p.stderr);
  assert.match(p.stdout, /Total reclaimed space: /);
});
