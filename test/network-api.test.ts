/**
 * `docker network …` against a real berthd: predefined networks, create/inspect/ls/rm/prune with
 * labels, filters and IPAM options, macvlan on a veth parent, Docker's errors, and no host object
 * left once the daemon is destroyed.
 */
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { promises as fs } from 'node:fs';
import * as path from 'node:path';
import { after, before, test } from 'node:test';
import { startDaemon, type TestDaemon } from './helpers/daemon.js';
import { runCmd } from './helpers/run.js';

let d: TestDaemon;
let instance = '';

async function links(): Promise<string[]> {
  const r = await runCmd('ip', ['-j', 'link', 'show']);
  return (JSON.parse(r.stdout) as { ifname: string }[]).map((l) => l.ifname);
}

before(async () => {
  d = await startDaemon();
  instance = createHash('sha256').update(path.join(d.base, 'data')).digest('hex').slice(0, 6);
});

after(async () => {
  await d?.destroy();
  // Nothing of this daemon is left on the host.
  const left = (await links()).filter(
    (l) => l === `bt${instance}` || l.startsWith(`bb${instance}`) || l.startsWith(`vb${instance}`),
  );
  assert.deepEqual(left, []);
  const ns = (await fs.readdir('/run/netns').catch(() => [] as string[])).filter((n) =>
    n.startsWith(`berth${instance}-`),
  );
  assert.deepEqual(ns, []);
  const t = await runCmd('nft', ['list', 'table', 'ip', `berth_${instance}`]);
  assert.notEqual(t.code, 0, 'nft table left behind');
});

test('predefined networks', async () => {
  const r = await d.docker(['network', 'ls', '--format', '{{.Name}} {{.Driver}} {{.Scope}}']);
  assert.equal(r.code, 0, r.stderr);
  assert.deepEqual(r.stdout.trim().split('\n').sort(), [
    'bridge bridge local',
    'host host local',
    'none null local',
  ]);
  const br = JSON.parse((await d.docker(['network', 'inspect', 'bridge'])).stdout)[0];
  assert.match(br.Id, /^[0-9a-f]{64}$/);
  assert.equal(br.Options['com.docker.network.bridge.name'], `bt${instance}`);
  assert.ok((await links()).includes(`bt${instance}`));
  const rm = await d.docker(['network', 'rm', 'bridge']);
  assert.notEqual(rm.code, 0);
  assert.match(rm.stderr, /pre-defined network and cannot be removed/);
});

test('create, inspect, filter, remove, prune', async () => {
  const c = await d.docker([
    'network',
    'create',
    '--subnet',
    '10.253.40.0/24',
    '--gateway',
    '10.253.40.254',
    '--ip-range',
    '10.253.40.128/25',
    '--label',
    'team=a',
    'n1',
  ]);
  assert.equal(c.code, 0, c.stderr);
  const id = c.stdout.trim();
  const n1 = JSON.parse((await d.docker(['network', 'inspect', 'n1'])).stdout)[0];
  assert.equal(n1.Id, id);
  assert.deepEqual(n1.IPAM.Config, [
    { Subnet: '10.253.40.0/24', Gateway: '10.253.40.254', IPRange: '10.253.40.128/25' },
  ]);
  assert.deepEqual(n1.Labels, { team: 'a' });
  const addr = await runCmd('ip', ['-br', 'addr', 'show', 'dev', `bb${instance}${id.slice(0, 7)}`]);
  assert.match(addr.stdout, /10\.253\.40\.254\/24/);

  assert.equal((await d.docker(['network', 'create', '--internal', 'n2'])).code, 0);
  const dup = await d.docker(['network', 'create', 'n1']);
  assert.notEqual(dup.code, 0);
  assert.match(dup.stderr, /network with name n1 already exists/);
  const ov = await d.docker(['network', 'create', '--subnet', '10.253.40.0/25', 'n3']);
  assert.match(ov.stderr, /Pool overlaps/);
  const bad = await d.docker([
    'network',
    'create',
    '--subnet',
    '10.253.41.0/24',
    '--gateway',
    '10.1.1.1',
    'n4',
  ]);
  assert.match(bad.stderr, /no matching subnet for gateway/);
  assert.equal((await d.docker(['network', 'ls', '-q', '--filter', 'name=n4'])).stdout.trim(), '');

  const byLabel = await d.docker(['network', 'ls', '--filter', 'label=team=a', '--format', '{{.Name}}']);
  assert.equal(byLabel.stdout.trim(), 'n1');
  const custom = await d.docker(['network', 'ls', '--filter', 'type=custom', '--format', '{{.Name}}']);
  assert.deepEqual(custom.stdout.trim().split('\n').sort(), ['n1', 'n2']);
  const internal = JSON.parse((await d.docker(['network', 'inspect', 'n2'])).stdout)[0];
  assert.equal(internal.Internal, true);
  assert.match(internal.IPAM.Config[0].Subnet, /^10\./);

  const rm = await d.docker(['network', 'rm', 'n1']);
  assert.equal(rm.code, 0, rm.stderr);
  assert.ok(!(await links()).includes(`bb${instance}${id.slice(0, 7)}`), 'bridge removed with its network');
  const missing = await d.docker(['network', 'rm', 'n1']);
  assert.notEqual(missing.code, 0);
  assert.match(missing.stderr, /not found/);
  const pr = await d.docker(['network', 'prune', '-f']);
  assert.equal(pr.code, 0, pr.stderr);
  assert.match(pr.stdout, /n2/);
  assert.deepEqual((await d.docker(['network', 'ls', '-q', '--filter', 'type=custom'])).stdout.trim(), '');
});

test('macvlan needs an existing parent link', async () => {
  const parent = `vb${instance}p0`;
  await runCmd('ip', ['link', 'add', parent, 'type', 'veth', 'peer', 'name', `vb${instance}p1`]);
  try {
    const bad = await d.docker(['network', 'create', '-d', 'macvlan', '-o', 'parent=nosuch9', 'mv0']);
    assert.notEqual(bad.code, 0);
    assert.match(bad.stderr, /parent interface was not found on the host: nosuch9/);
    const ok = await d.docker([
      'network',
      'create',
      '-d',
      'macvlan',
      '-o',
      `parent=${parent}`,
      '--subnet',
      '10.253.42.0/24',
      'mv1',
    ]);
    assert.equal(ok.code, 0, ok.stderr);
    const mv = JSON.parse((await d.docker(['network', 'inspect', 'mv1'])).stdout)[0];
    assert.equal(mv.Driver, 'macvlan');
    assert.equal(mv.Options.parent, parent);
    assert.equal((await d.docker(['network', 'rm', 'mv1'])).code, 0);
  } finally {
    await runCmd('ip', ['link', 'del', parent]);
  }
});
