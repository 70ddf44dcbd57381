/**
 * `docker volume …` against a real berthd: create/ls/inspect/rm/prune with labels, filters and
 * local driver options, events, `system df`, bad input; and a volume plugin (the example in
 * examples/volume-plugin) discovered through --plugin-dir, with its exact call sequence.
 */
import assert from 'node:assert/strict';
import { type ChildProcess, spawn } from 'node:child_process';
import { existsSync, promises as fs, mkdtempSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import * as path from 'node:path';
import { after, before, describe, it } from 'node:test';
import { REPO, startDaemon, type TestDaemon } from './helpers/daemon.js';

const PLUGIN = path.join(REPO, 'examples', 'volume-plugin', 'plugin.mjs');

async function waitFor(cond: () => boolean, ms = 5000): Promise<void> {
  const end = Date.now() + ms;
  while (!cond()) {
    if (Date.now() > end) throw new Error('timed out waiting');
    await new Promise((r) => setTimeout(r, 20));
  }
}

describe('docker volume', () => {
  let d: TestDaemon;
  let work: string;
  let plugin: ChildProcess | undefined;
  let pluginDir: string;
  let pluginLog: string;

  const startPlugin = async () => {
    const sock = path.join(pluginDir, 'demo.sock');
    plugin = spawn(
      process.execPath,
      [PLUGIN, '--socket', sock, '--root', path.join(work, 'plugin-data'), '--log', pluginLog],
      { stdio: 'ignore' },
    );
    await waitFor(() => existsSync(sock));
  };
  const stopPlugin = async () => {
    const p = plugin;
    plugin = undefined;
    if (!p || p.exitCode !== null) return;
    const gone = new Promise((r) => p.once('exit', r));
    p.kill('SIGTERM');
    await gone;
  };
  const calls = () =>
    readFileSync(pluginLog, 'utf8')
      .split('\n')
      .filter(Boolean)
      .map((l) => JSON.parse(l) as { call: string; body: Record<string, unknown> });

  before(async () => {
    work = mkdtempSync(path.join(tmpdir(), 'berth-voltest-'));
    pluginDir = path.join(work, 'plugins');
    pluginLog = path.join(work, 'calls.jsonl');
    await fs.mkdir(pluginDir, { recursive: true });
    d = await startDaemon({ args: ['--plugin-dir', pluginDir] });
  });
  after(async () => {
    await stopPlugin();
    await d?.destroy();
    await fs.rm(work, { recursive: true, force: true });
  });

  it('create, inspect, ls with filters, rm', async () => {
    let r = await d.docker(['volume', 'create', '--label', 'team=a', 'v1']);
    assert.equal(r.code, 0, r.stderr);
    assert.equal(r.stdout.trim(), 'v1');
    r = await d.docker([
      'volume',
      'create',
      '--driver',
      'local',
      '--opt',
      'type=tmpfs',
      '--opt',
      'device=tmpfs',
      '--opt',
      'o=size=1m',
      'tv',
    ]);
    assert.equal(r.code, 0, r.stderr);
    r = await d.docker(['volume', 'inspect', 'v1', 'tv']);
    const [v1, tv] = JSON.parse(r.stdout);
    assert.equal(v1.Driver, 'local');
    assert.deepEqual(v1.Labels, { team: 'a' });
    assert.equal(v1.Mountpoint, path.join(d.dataRoot, 'volumes', 'v1', '_data'));
    assert.ok(existsSync(v1.Mountpoint));
    assert.match(v1.CreatedAt, /^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ$/);
    assert.deepEqual(tv.Options, { type: 'tmpfs', device: 'tmpfs', o: 'size=1m' });
    r = await d.docker(['volume', 'ls', '-q', '--filter', 'label=team=a']);
    assert.deepEqual(r.stdout.trim().split('\n'), ['v1']);
    r = await d.docker(['volume', 'ls', '-q', '--filter', 'dangling=true', '--filter', 'name=v']);
    assert.deepEqual(r.stdout.trim().split('\n').sort(), ['tv', 'v1']);
    r = await d.docker(['volume', 'ls', '--format', '{{.Name}} {{.Driver}}', '--filter', 'driver=local']);
    assert.ok(r.stdout.includes('v1 local'));
    // Creating an existing name again returns it.
    r = await d.docker(['volume', 'create', 'v1']);
    assert.equal(r.code, 0, r.stderr);
    r = await d.docker(['volume', 'rm', 'v1', 'tv']);
    assert.equal(r.code, 0, r.stderr);
    assert.ok(!existsSync(v1.Mountpoint));
    r = await d.docker(['volume', 'ls', '-q']);
    assert.equal(r.stdout.trim(), '');
  });

  it('bad input is refused with Docker words', async () => {
    let r = await d.docker(['volume', 'create', 'a/b']);
    assert.notEqual(r.code, 0);
    assert.match(r.stderr, /"a\/b" includes invalid characters for a local volume name/);
    r = await d.docker(['volume', 'create', '--opt', 'bogus=1', 'x1']);
    assert.match(r.stderr, /invalid option: "bogus"/);
    r = await d.docker(['volume', 'create', '--opt', 'type=tmpfs', 'x2']);
    assert.match(r.stderr, /missing required option: "device"/);
    r = await d.docker(['volume', 'inspect', 'nosuch']);
    assert.notEqual(r.code, 0);
    assert.match(r.stderr, /no such volume/);
    r = await d.docker(['volume', 'rm', 'nosuch']);
    assert.match(r.stderr, /get nosuch: no such volume/);
    r = await d.docker(['volume', 'rm', '-f', 'nosuch']);
    assert.equal(r.code, 0, r.stderr);
    r = await d.docker(['volume', 'create', '-d', 'nosuchplugin', 'x3']);
    assert.match(r.stderr, /plugin "nosuchplugin" not found/);
    r = await d.docker(['volume', 'ls', '-q', '--filter', 'bogus=1']);
    assert.match(r.stderr, /invalid filter 'bogus'/);
    r = await d.docker(['volume', 'ls', '-q']);
    assert.equal(r.stdout.trim(), '', 'nothing half-created');
  });

  it('prune removes only anonymous volumes unless --all; events and system df', async () => {
    const since = Math.floor(Date.now() / 1000) - 1;
    await d.docker(['volume', 'create', 'keep1']);
    await d.docker(['volume', 'create', '--label', 'x=y', 'gone1']);
    let r = await d.docker(['system', 'df', '--format', '{{.Type}} {{.TotalCount}}']);
    assert.equal(r.code, 0, r.stderr);
    assert.match(r.stdout, /Local Volumes 2/);
    r = await d.docker(['volume', 'prune', '-f']);
    assert.equal(r.code, 0, r.stderr);
    r = await d.docker(['volume', 'ls', '-q']);
    assert.deepEqual(r.stdout.trim().split('\n').sort(), ['gone1', 'keep1']);
    r = await d.docker(['volume', 'prune', '-f', '--all', '--filter', 'label=x=y']);
    assert.match(r.stdout, /gone1/);
    // Clients older than API 1.42 expect every unused volume to go.
    await d.docker(['volume', 'create', 'old1']);
    r = await d.docker(['volume', 'prune', '-f', '--filter', 'label!=keep'], {
      env: { DOCKER_API_VERSION: '1.41' },
    });
    assert.match(r.stdout, /old1/);
    assert.match(r.stdout, /keep1/);
    await d.docker(['volume', 'create', 'keep1']);
    r = await d.docker(['volume', 'rm', 'keep1']);
    assert.equal(r.code, 0, r.stderr);
    r = await d.docker([
      'events',
      '--since',
      String(since),
      '--until',
      String(Math.floor(Date.now() / 1000) + 1),
      '--filter',
      'type=volume',
      '--format',
      '{{.Action}} {{.Actor.ID}}',
    ]);
    const lines = r.stdout.trim().split('\n');
    for (const want of ['create keep1', 'create gone1', 'destroy gone1', 'destroy keep1'])
      assert.ok(lines.includes(want), `${want} in ${lines}`);
  });

  it('a volume plugin: discovery, call sequence, errors when it is down', async () => {
    // A volume the plugin already holds (made before this daemon knew the plugin).
    await fs.mkdir(path.join(work, 'plugin-data', 'pre1'), { recursive: true });
    await startPlugin();
    const info = await d.docker(['info', '--format', '{{json .Plugins.Volume}}']);
    assert.deepEqual(JSON.parse(info.stdout), ['local', 'demo']);
    let r = await d.docker([
      'volume',
      'create',
      '-d',
      'demo',
      '--opt',
      'size=small',
      '--label',
      'p=1',
      'pv1',
    ]);
    assert.equal(r.code, 0, r.stderr);
    r = await d.docker(['volume', 'inspect', 'pv1']);
    const v = JSON.parse(r.stdout)[0];
    assert.equal(v.Driver, 'demo');
    assert.deepEqual(v.Status?.opts, { size: 'small' });
    r = await d.docker(['volume', 'ls', '--format', '{{.Driver}} {{.Name}}']);
    assert.ok(r.stdout.includes('demo pv1'));
    assert.ok(r.stdout.includes('demo pre1'), 'volumes the plugin lists are shown');
    r = await d.docker(['volume', 'rm', 'pre1']);
    assert.equal(r.code, 0, r.stderr);
    assert.ok(!existsSync(path.join(work, 'plugin-data', 'pre1')));
    r = await d.docker(['volume', 'create', '-d', 'demo', '--opt', 'fail=no-space', 'pv2']);
    assert.notEqual(r.code, 0);
    assert.match(r.stderr, /refusing to create pv2: no-space/);
    r = await d.docker(['volume', 'rm', 'pv1']);
    assert.equal(r.code, 0, r.stderr);
    const seq = calls().map((c) => c.call);
    assert.equal(seq[0], 'Plugin.Activate');
    assert.deepEqual(calls()[1], {
      call: 'VolumeDriver.Create',
      body: { Name: 'pv1', Opts: { size: 'small' } },
    });
    assert.ok(seq.includes('VolumeDriver.Get'));
    assert.equal(seq.at(-1), 'VolumeDriver.Remove');
    // Plugin dead with its socket left behind, then gone: clear errors, no half-recorded volume.
    plugin?.kill('SIGKILL');
    await new Promise((res) => plugin?.once('exit', res));
    plugin = undefined;
    r = await d.docker(['volume', 'create', '-d', 'demo', 'pv3']);
    assert.notEqual(r.code, 0);
    assert.match(r.stderr, /error while calling plugin demo .*ECONNREFUSED/);
    await fs.rm(path.join(pluginDir, 'demo.sock'), { force: true });
    r = await d.docker(['volume', 'create', '-d', 'demo', 'pv3']);
    assert.notEqual(r.code, 0);
    assert.match(r.stderr, /plugin "demo" not found/);
    r = await d.docker(['volume', 'ls', '-q']);
    assert.equal(r.stdout.trim(), '');
  });
});
