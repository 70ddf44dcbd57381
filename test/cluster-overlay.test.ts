/**
 * Multi-host overlay networks (issue 15): two berthd "hosts" in their own network namespaces on
 * an underlay bridge, etcd (one member) as the cluster store. Joining and `info`, an overlay
 * network made on one host and seen on the other, cross-host ping and TCP by name, addresses
 * unique across hosts, `network rm` refused while in use anywhere and clean after, and a host
 * whose berthd is SIGKILLed: its endpoints expire with its lease and come back on restart.
 */
import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';
import { apiGet, TestCluster, until } from './helpers/cluster.js';
import type { TestDaemon } from './helpers/daemon.js';
import { runCmd } from './helpers/run.js';

let c: TestCluster;
let h0: TestDaemon;
let h1: TestDaemon;

async function ok(d: TestDaemon, args: string[]): Promise<string> {
  const r = await d.docker(args, { timeoutMs: 60_000 });
  assert.equal(r.code, 0, `docker ${args.join(' ')}: ${r.stderr}`);
  return r.stdout.trim();
}

const ipOn = async (d: TestDaemon, name: string) =>
  ok(d, ['inspect', '-f', '{{(index .NetworkSettings.Networks "ov").IPAddress}}', name]);

before(async () => {
  c = new TestCluster();
  try {
    await c.underlay();
    await c.startEtcd(1);
    h0 = await c.addHost(0);
    h1 = await c.addHost(1);
  } catch (err) {
    await c.destroy();
    throw err;
  }
});

after(async () => {
  await c?.destroy();
});

test('hosts join the store and info shows the cluster', async () => {
  const info = await until('both hosts in info', async () => {
    const i = await apiGet<{
      ClusterStore: string;
      ClusterAdvertise: string;
      Cluster: { State: string; Hosts: { Addr: string }[] };
    }>(h0, '/info');
    return i.Cluster?.State === 'ready' && i.Cluster.Hosts.length === 2 ? i : undefined;
  });
  assert.equal(info.ClusterStore, c.store);
  assert.equal(info.ClusterAdvertise, c.hostAddr(0));
  assert.deepEqual(info.Cluster.Hosts.map((h) => h.Addr).sort(), [c.hostAddr(0), c.hostAddr(1)].sort());
  assert.deepEqual(
    await c.keys('/berth/hosts/'),
    [`/berth/hosts/${c.hostAddr(0)}`, `/berth/hosts/${c.hostAddr(1)}`].sort(),
  );
});

test('an overlay network carries traffic between hosts, by name', async () => {
  const subnet = `10.233.${c.n}.0/24`;
  await ok(h0, ['network', 'create', '-d', 'overlay', '--subnet', subnet, '--attachable', 'ov']);
  // Visible on the other host, scope global.
  await until(
    'ov on host 1',
    async () =>
      (await ok(h1, [
        'network',
        'ls',
        '--filter',
        'scope=global',
        '--format',
        '{{.Name}} {{.Driver}} {{.Scope}}',
      ])) === 'ov overlay global',
  );
  const dup = await h1.docker(['network', 'create', '-d', 'overlay', 'ov']);
  assert.notEqual(dup.code, 0);
  assert.match(dup.stderr, /already exists/);
  // Overlapping another overlay network, or a local network of the creating host: refused, nothing made.
  for (const s of [`10.233.${c.n}.128/25`, `10.232.${c.n}.0/28`]) {
    const r = await h0.docker(['network', 'create', '-d', 'overlay', '--subnet', s, 'ov2']);
    assert.notEqual(r.code, 0);
    assert.match(r.stderr, /Pool overlaps with other one on this address space/);
  }
  assert.equal((await c.keys('/berth/networks/')).length, 1);

  await ok(h0, ['run', '-d', '--name', 'ca', '--network', 'ov', 'busybox', 'sleep', '600']);
  await ok(h1, [
    'run',
    '-d',
    '--name',
    'cb',
    '--network',
    'ov',
    '--network-alias',
    'web',
    'busybox',
    'sleep',
    '600',
  ]);
  const ipA = await ipOn(h0, 'ca');
  const ipB = await ipOn(h1, 'cb');
  assert.notEqual(ipA, ipB);
  assert.ok(ipA.startsWith(`10.233.${c.n}.`) && ipB.startsWith(`10.233.${c.n}.`));

  // b reaches a by name (the DNS of host 1 answers for a container of host 0), and back.
  await until(
    'cb pings ca by name',
    async () => (await h1.docker(['exec', 'cb', 'ping', '-c', '1', '-W', '1', 'ca'])).code === 0,
  );
  await until(
    'ca pings cb by name',
    async () => (await h0.docker(['exec', 'ca', 'ping', '-c', '1', '-W', '1', 'cb'])).code === 0,
  );
  const ns = await ok(h0, ['exec', 'ca', 'nslookup', 'cb']);
  assert.match(ns, new RegExp(ipB.replace(/\./g, '\\.')));
  // Aliases and reverse lookups of remote containers too.
  assert.match(await ok(h0, ['exec', 'ca', 'nslookup', 'web']), new RegExp(ipB.replace(/\./g, '\\.')));
  assert.match(await ok(h1, ['exec', 'cb', 'nslookup', ipA]), /ca\.ov/);

  // TCP across hosts, by name: ca serves HTTP, cb asks (nc: busybox wget crashes in this build).
  await ok(h0, [
    'exec',
    '-d',
    'ca',
    'sh',
    '-c',
    'mkdir -p /www && echo cross-host > /www/index.html && httpd -f -p 8080 -h /www',
  ]);
  const body = await until('cb fetches from ca over TCP', async () => {
    const r = await h1.docker([
      'exec',
      'cb',
      'sh',
      '-c',
      "printf 'GET / HTTP/1.0\\r\\n\\r\\n' | nc -w 2 ca 8080",
    ]);
    return r.code === 0 && r.stdout.includes('cross-host') ? r.stdout : undefined;
  });
  assert.match(body, /200 OK/);

  // Fixed address taken on the other host.
  const taken = await h1.docker([
    'run',
    '-d',
    '--name',
    'c2',
    '--network',
    'ov',
    '--ip',
    ipA,
    'busybox',
    'sleep',
    '60',
  ]);
  assert.notEqual(taken.code, 0);
  assert.match(taken.stderr, /Address already in use/);
  await h1.docker(['rm', '-f', 'c2']);

  // Removal refused while this host has containers on it.
  const busy = await h1.docker(['network', 'rm', 'ov']);
  assert.notEqual(busy.code, 0);
  assert.match(busy.stderr, /has active endpoints/);
});

test("an overlay network on the addresses of another host's local network stays off that host", async () => {
  const local = `10.236.${c.n}.0/24`;
  await ok(h1, ['network', 'create', '--subnet', local, 'loc1']);
  await ok(h0, ['network', 'create', '-d', 'overlay', '--subnet', local, 'ovclash']);
  await ok(h0, ['network', 'create', '-d', 'overlay', '--subnet', `10.237.${c.n}.0/24`, 'ovlater']);
  // Snapshots apply in order: once the later network is on host 1, the clashing one was seen.
  const names = await until('ovlater on host 1', async () => {
    const ls = (await ok(h1, ['network', 'ls', '--format', '{{.Name}}'])).split('\n');
    return ls.includes('ovlater') ? ls : undefined;
  });
  assert.ok(!names.includes('ovclash'), names.join(' '));
  await ok(h0, ['network', 'rm', 'ovclash', 'ovlater']);
  await ok(h1, ['network', 'rm', 'loc1']);
});

test('a SIGKILLed host expires and comes back with its containers', async () => {
  const ipA = await ipOn(h0, 'ca');
  await h0.stop('SIGKILL');
  // The lease (3 s TTL) expires: host 0 and its endpoint leave the store.
  await until(
    'host 0 gone from the store',
    async () => !(await c.keys('/berth/')).some((k) => k.includes(c.hostAddr(0)) || k.endsWith(`/${ipA}`)),
    20_000,
  );
  await h0.start();
  // Live restore: its container is back in the store and reachable again.
  await until('ca back in the store', async () =>
    (await c.keys('/berth/endpoints/')).some((k) => k.endsWith(`/${ipA}`)),
  );
  await until(
    'cb pings ca again',
    async () => (await h1.docker(['exec', 'cb', 'ping', '-c', '1', '-W', '1', 'ca'])).code === 0,
  );
});

test('a container with a fixed address restarts with it', async () => {
  const ip = `10.233.${c.n}.50`;
  await ok(h1, ['run', '-d', '--name', 'cf', '--network', 'ov', '--ip', ip, 'busybox', 'sleep', '600']);
  await ok(h1, ['restart', '-t', '0', 'cf']);
  assert.equal(await ipOn(h1, 'cf'), ip);
  await until(
    'ca pings cf after its restart',
    async () => (await h0.docker(['exec', 'ca', 'ping', '-c', '1', '-W', '1', 'cf'])).code === 0,
  );
  await ok(h1, ['rm', '-f', 'cf']);
  await until(
    'cf released',
    async () => !(await c.keys('/berth/endpoints/')).some((k) => k.endsWith(`/${ip}`)),
  );
});

test('network connect and disconnect of a running container on another network', async () => {
  await ok(h1, ['run', '-d', '--name', 'cn', 'busybox', 'sleep', '600']);
  await ok(h1, ['network', 'connect', 'ov', 'cn']);
  const ip = await ipOn(h1, 'cn');
  assert.ok(ip.startsWith(`10.233.${c.n}.`));
  await until(
    'ca pings cn by name',
    async () => (await h0.docker(['exec', 'ca', 'ping', '-c', '1', '-W', '1', 'cn'])).code === 0,
  );
  await ok(h1, ['network', 'disconnect', 'ov', 'cn']);
  await until(
    'cn released',
    async () => !(await c.keys('/berth/endpoints/')).some((k) => k.endsWith(`/${ip}`)),
  );
  await until(
    'cn no longer resolves on host 0',
    async () => (await h0.docker(['exec', 'ca', 'nslookup', 'cn'])).code !== 0,
  );
  await ok(h1, ['rm', '-f', 'cn']);
});

test('network rm is refused while another host uses it, and leaves nothing behind after', async () => {
  await ok(h1, ['rm', '-f', 'cb']);
  // Host 1 has no container on ov any more; host 0 still has one.
  const busy = await h1.docker(['network', 'rm', 'ov']);
  assert.notEqual(busy.code, 0);
  assert.match(busy.stderr, /error while removing network: network ov id [0-9a-f]{64} has active endpoints/);
  assert.equal((await c.keys('/berth/networks/')).length, 1);
  await ok(h0, ['rm', '-f', 'ca']);
  await until('endpoints released', async () => (await c.keys('/berth/endpoints/')).length === 0);
  await ok(h1, ['network', 'rm', 'ov']);
  await until(
    'ov gone on host 0',
    async () => !(await ok(h0, ['network', 'ls', '--format', '{{.Name}}'])).split('\n').includes('ov'),
  );
  assert.deepEqual(await c.keys('/berth/networks/'), []);
  // No VXLAN device or overlay bridge left on either host.
  for (const i of [0, 1]) {
    const links = await until(`host ${i} without overlay links`, async () => {
      const r = await runCmd('ip', ['-n', c.hostNs(i), '-o', 'link', 'show']);
      return r.code === 0 && !/: (bo|vo)[0-9a-f]{6}/.test(r.stdout) ? r.stdout : undefined;
    });
    assert.doesNotMatch(links, /vxlan/);
  }
});
