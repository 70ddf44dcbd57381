/**
 * The cluster store's failures (issue 15), with three berthd hosts and a three-member etcd: a
 * host started before the store is reachable (runs, says why, refuses overlay work, joins once
 * the store answers), a host advertising another's address, concurrent `run` on every host
 * without a duplicate address, one etcd member down (nothing changes), quorum lost (running
 * containers keep talking, overlay changes fail clearly) and regained.
 */
import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';
import { apiGet, TestCluster, until } from './helpers/cluster.js';
import type { TestDaemon } from './helpers/daemon.js';

type Info = { Cluster?: { State: string; Error: string; Hosts: { Addr: string }[] }; Warnings: string[] };

let c: TestCluster;
const hosts: TestDaemon[] = [];
const PER_HOST = 6;

async function ok(d: TestDaemon, args: string[]): Promise<string> {
  const r = await d.docker(args, { timeoutMs: 90_000 });
  assert.equal(r.code, 0, `docker ${args.join(' ')}: ${r.stderr}`);
  return r.stdout.trim();
}

before(async () => {
  c = new TestCluster();
  try {
    await c.underlay();
  } catch (err) {
    await c.destroy();
    throw err;
  }
});

after(async () => {
  await c?.destroy();
});

test('a host started before its store runs, refuses overlay work, and joins when the store answers', async () => {
  // No etcd yet: the members' addresses are known, nobody listens.
  c.members.push(
    ...[0, 1, 2].map((i) => ({
      name: `m${i}`,
      client: `http://${c.etcdAddr}:${2379 + 2 * i}`,
      peer: `http://${c.etcdAddr}:${2380 + 2 * i}`,
      dir: `${c.base}/etcd-m${i}`,
    })),
  );
  hosts[0] = await c.addHost(0);
  const info = await until('the store error in info', async () => {
    const i = await apiGet<Info>(hosts[0], '/info');
    return i.Cluster?.State === 'error' ? i : undefined;
  });
  assert.ok(info.Cluster!.Error.length > 0);
  assert.ok(info.Warnings.some((w) => w.includes(c.store)));
  const refused = await hosts[0].docker(['network', 'create', '-d', 'overlay', 'early']);
  assert.notEqual(refused.code, 0);
  assert.match(refused.stderr, /cluster store etcd:\/\/\S+ is not available/);

  for (let i = 0; i < 3; i++) c.startMember(i);
  await until('etcd healthy', async () => (await c.etcdctl(['endpoint', 'health'])).code === 0, 30_000);
  await until(
    'host 0 joined',
    async () => (await apiGet<Info>(hosts[0], '/info')).Cluster?.State === 'ready',
    30_000,
  );
  hosts[1] = await c.addHost(1);
  hosts[2] = await c.addHost(2);
  await until(
    'three live hosts',
    async () => (await apiGet<Info>(hosts[2], '/info')).Cluster?.Hosts.length === 3,
  );
});

test('a host advertising an address another host has is told so', async () => {
  const clash = await c.addHost(3, ['--cluster-advertise', c.hostAddr(0)]);
  const info = await until('the clash in info', async () => {
    const i = await apiGet<Info>(clash, '/info');
    return i.Cluster?.State === 'error' && /already advertises/.test(i.Cluster.Error) ? i : undefined;
  });
  assert.match(info.Cluster!.Error, new RegExp(`already advertises ${c.hostAddr(0).replace(/\./g, '\\.')}`));
  await clash.destroy();
  c.hosts.splice(3, 1);
});

test('concurrent runs on every host never share an address', async () => {
  // No --subnet: carved from the cluster pool.
  await ok(hosts[1], ['network', 'create', '-d', 'overlay', 'ovf']);
  await Promise.all(
    hosts.map((h) =>
      until('ovf known', async () => (await h.docker(['network', 'inspect', 'ovf'])).code === 0),
    ),
  );
  const runs = hosts.flatMap((h, i) =>
    Array.from({ length: PER_HOST }, (_, j) =>
      ok(h, ['run', '-d', '--name', `h${i}c${j}`, '--network', 'ovf', 'busybox', 'sleep', '600']),
    ),
  );
  await Promise.all(runs);
  const ips = await Promise.all(
    hosts.flatMap((h, i) =>
      Array.from({ length: PER_HOST }, (_, j) =>
        ok(h, ['inspect', '-f', '{{(index .NetworkSettings.Networks "ovf").IPAddress}}', `h${i}c${j}`]),
      ),
    ),
  );
  assert.equal(new Set(ips).size, ips.length, `duplicate address among ${ips.join(' ')}`);
  assert.equal((await c.keys('/berth/endpoints/')).length, 3 * PER_HOST);
});

test('one etcd member down changes nothing', async () => {
  await c.stopMember(2);
  await ok(hosts[0], ['run', '-d', '--name', 'late', '--network', 'ovf', 'busybox', 'sleep', '600']);
  await until(
    'h2c0 pings late by name',
    async () => (await hosts[2].docker(['exec', 'h2c0', 'ping', '-c', '1', '-W', '1', 'late'])).code === 0,
  );
});

test('quorum lost: traffic keeps flowing, overlay changes fail clearly; regained: changes work again', async () => {
  await c.stopMember(1);
  // Running containers still reach each other across hosts.
  await until(
    'h1c0 pings h0c0 without quorum',
    async () => (await hosts[1].docker(['exec', 'h1c0', 'ping', '-c', '1', '-W', '1', 'h0c0'])).code === 0,
  );
  const create = await hosts[0].docker(['network', 'create', '-d', 'overlay', 'ovq'], { timeoutMs: 90_000 });
  assert.notEqual(create.code, 0);
  assert.match(create.stderr, /cluster store etcd:\/\/\S+ is not available/);
  const run = await hosts[2].docker(
    ['run', '-d', '--name', 'noq', '--network', 'ovf', 'busybox', 'sleep', '60'],
    { timeoutMs: 90_000 },
  );
  assert.notEqual(run.code, 0);
  assert.match(run.stderr, /cluster store etcd:\/\/\S+ is not available/);
  await hosts[2].docker(['rm', '-f', 'noq']);
  assert.equal((await hosts[1].docker(['exec', 'h1c0', 'ping', '-c', '1', '-W', '1', 'h2c1'])).code, 0);

  c.startMember(1);
  await until(
    'overlay changes work again',
    async () => (await hosts[0].docker(['network', 'create', '-d', 'overlay', 'ovq'])).code === 0,
    60_000,
  );
  await until(
    'every host ready again',
    async () => {
      const states = await Promise.all(hosts.map((h) => apiGet<Info>(h, '/info')));
      return states.every((s) => s.Cluster?.State === 'ready');
    },
    30_000,
  );
  await ok(hosts[2], ['run', '-d', '--name', 'after', '--network', 'ovf', 'busybox', 'sleep', '600']);
  await until(
    'h0c0 pings after',
    async () => (await hosts[0].docker(['exec', 'h0c0', 'ping', '-c', '1', '-W', '1', 'after'])).code === 0,
  );
  await until(
    'after pings h1c0',
    async () => (await hosts[2].docker(['exec', 'after', 'ping', '-c', '1', '-W', '1', 'h1c0'])).code === 0,
  );
});

test('everything removed leaves no key behind', async () => {
  await Promise.all(
    hosts.map(async (h) => {
      const ids = (await ok(h, ['ps', '-aq'])).split('\n').filter(Boolean);
      if (ids.length) await ok(h, ['rm', '-f', ...ids]);
    }),
  );
  await until('endpoints released', async () => (await c.keys('/berth/endpoints/')).length === 0);
  await ok(hosts[0], ['network', 'rm', 'ovf', 'ovq']);
  assert.deepEqual(await c.keys('/berth/networks/'), []);
});
