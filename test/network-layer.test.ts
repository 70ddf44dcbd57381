/**
 * The network layer on real kernel objects, driven directly (no container runtime): real
 * namespaces, veths, bridges, macvlan links, nft rules and the embedded DNS. "Containers" are
 * processes started in the namespaces `attach` makes (busybox httpd/wget/nslookup via
 * `ip netns exec`). Everything is named after a random instance tag and removed at the end.
 */
import assert from 'node:assert/strict';
import { type ChildProcess, spawn } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import * as dgram from 'node:dgram';
import dnsPacket from 'dns-packet';
import { existsSync, mkdtempSync, promises as fs } from 'node:fs';
import * as net from 'node:net';
import { tmpdir } from 'node:os';
import * as path from 'node:path';
import { after, before, test } from 'node:test';
import type { ContainerRecord } from '../src/model/container.js';
import { defaultConfig, finalizeConfig } from '../src/daemon/config.js';
import { EventBus } from '../src/model/events.js';
import type { NetworkService } from '../src/network/index.js';
import { hostNames } from '../src/network/names.js';
import { openNetworkService } from '../src/network/service.js';
import { cleanupNetwork } from './helpers/network-cleanup.js';
import { runCmd } from './helpers/run.js';

const instance = randomBytes(3).toString('hex');
const base = mkdtempSync(path.join(tmpdir(), 'berth-netlayer-'));
const www = path.join(base, 'www');
const records = new Map<string, ContainerRecord>();
const procs: ChildProcess[] = [];
let svc: NetworkService;

const directory = {
  get(ref: string): ContainerRecord {
    const r =
      records.get(ref) ?? [...records.values()].find((c) => c.Name === `/${ref}` || c.Id.startsWith(ref));
    if (!r) throw Object.assign(new Error(`No such container: ${ref}`), { kind: 'not-found' });
    return r;
  },
  list: () => [...records.values()],
};

function config() {
  const c = defaultConfig();
  c.dataRoot = path.join(base, 'data');
  c.execRoot = path.join(base, 'run');
  c.instance = instance;
  c.dnsForward = false;
  return finalizeConfig(c);
}

function record(
  name: string,
  hc: Partial<ContainerRecord['HostConfig']> = {},
  eps: ContainerRecord['NetworkingConfig'] = {},
  exposed?: Record<string, object>,
): ContainerRecord {
  const id = randomBytes(32).toString('hex');
  const r = {
    Id: id,
    Name: `/${name}`,
    Config: { Hostname: id.slice(0, 12), ExposedPorts: exposed },
    HostConfig: { NetworkMode: 'default', ...hc },
    NetworkingConfig: eps,
    State: { Running: true, Pid: 0 },
    NetworkSettings: { Bridge: '', SandboxID: '', SandboxKey: '', Ports: {}, Networks: {} },
  } as unknown as ContainerRecord;
  records.set(id, r);
  return r;
}

function nsName(p: string | undefined): string {
  assert.ok(p, 'attachment has a namespace path');
  return path.basename(p);
}

function inNs(ns: string, args: string[], timeoutMs = 10_000) {
  return runCmd('ip', ['netns', 'exec', ns, 'busybox', ...args], { timeoutMs });
}

/** curl from inside a namespace (busybox wget segfaults in its static resolver here). */
function inCurl(ns: string, maxTime: number, args: string[]) {
  return runCmd('ip', ['netns', 'exec', ns, 'curl', '-s', '--max-time', String(maxTime), ...args], {
    timeoutMs: 10_000,
  });
}

async function httpd(ns: string, port = 80): Promise<void> {
  const p = spawn('ip', ['netns', 'exec', ns, 'busybox', 'httpd', '-f', '-p', String(port), '-h', www], {
    stdio: 'ignore',
  });
  procs.push(p);
  for (let i = 0; i < 50; i++) {
    const r = await runCmd(
      'ip',
      ['netns', 'exec', ns, 'curl', '-s', '-o', '/dev/null', '--max-time', '1', `http://127.0.0.1:${port}/`],
      { timeoutMs: 5000 },
    );
    if (r.code === 0) return;
    await new Promise((r2) => setTimeout(r2, 20));
  }
  throw new Error('httpd did not start');
}

async function vethsOf(tag: string): Promise<string[]> {
  const r = await runCmd('ip', ['-j', 'link', 'show']);
  return (JSON.parse(r.stdout) as { ifname: string }[])
    .map((l) => l.ifname)
    .filter((n) => n.startsWith(`vb${tag}`))
    .sort();
}

async function curl(url: string): Promise<{ code: number; body: string }> {
  const r = await runCmd('curl', ['-s', '--max-time', '3', url], { timeoutMs: 10_000 });
  return { code: r.code, body: r.stdout };
}

before(async () => {
  await fs.mkdir(www, { recursive: true });
  await fs.writeFile(path.join(www, 'index.html'), 'hello from berth\n');
  svc = await openNetworkService({ config: config(), events: new EventBus(), containers: directory });
});

after(async () => {
  for (const p of procs) p.kill('SIGKILL');
  await svc?.close().catch(() => {});
  await cleanupNetwork(instance, base);
  await fs.rm(base, { recursive: true, force: true });
});

test('user networks: DNS by name, alias and short ID; isolation; connect/disconnect; ports; teardown', async () => {
  const a = await svc.create({ Name: 'neta', Labels: { t: '1' } });
  await svc.create({ Name: 'netb' });
  const db = record('db', { NetworkMode: 'neta' }, { EndpointsConfig: { neta: { Aliases: ['database'] } } });
  const app = record('app', { NetworkMode: 'neta' });
  const other = record('other', { NetworkMode: 'netb' });
  const web = record('web', {
    PortBindings: {
      '80/tcp': [
        { HostIp: '127.0.0.1', HostPort: '' },
        { HostIp: '', HostPort: '' },
      ],
    },
  });

  const t0 = performance.now();
  const dbA = await svc.attach(db);
  const attachMs = performance.now() - t0;
  const appA = await svc.attach(app);
  const otherA = await svc.attach(other);
  const webA = await svc.attach(web);
  assert.ok(attachMs < 1000, `attach took ${attachMs} ms`);

  const gw = (await svc.inspect('neta')).IPAM.Config[0].Gateway!;
  // Docker's resolver address, redirected in the namespace to the network's embedded DNS.
  assert.equal(appA.resolvConf.split('\n')[0], 'nameserver 127.0.0.11');
  const dbIp = dbA.addresses[0];
  assert.equal(dbA.settings.Networks.neta.IPAddress, dbIp);
  assert.deepEqual(dbA.settings.Networks.neta.DNSNames, ['db', 'database', db.Id.slice(0, 12)]);
  assert.equal((await svc.inspect(a.Id)).Containers[db.Id].IPv4Address, `${dbIp}/24`);

  await httpd(nsName(dbA.netnsPath));
  const appNs = nsName(appA.netnsPath);
  const viaResolver = await inNs(appNs, ['nslookup', 'db', '127.0.0.11']);
  assert.match(viaResolver.stdout, new RegExp(`Address: ${dbIp.replace(/\./g, '\\.')}`), viaResolver.stdout + viaResolver.stderr);
  for (const name of ['db', 'database', db.Id.slice(0, 12), 'db.neta']) {
    const r = await inNs(appNs, ['nslookup', name, gw]);
    assert.match(
      r.stdout,
      new RegExp(`Address: ${dbIp.replace(/\./g, '\\.')}`),
      `${name}: ${r.stdout}${r.stderr}`,
    );
  }
  // The same over TCP (length-prefixed), from the host side of the bridge.
  const tcpAnswer = await new Promise<string[]>((resolve, reject) => {
    const q = dnsPacket.encode({
      type: 'query',
      id: 7,
      flags: dnsPacket.RECURSION_DESIRED,
      questions: [{ type: 'A', name: 'database' }],
    });
    const len = Buffer.alloc(2);
    len.writeUInt16BE(q.length);
    const c = net.connect(53, gw, () => c.write(Buffer.concat([len, q])));
    let got = Buffer.alloc(0);
    c.on('data', (b) => {
      got = Buffer.concat([got, b]);
      if (got.length >= 2 && got.length >= 2 + got.readUInt16BE(0)) {
        c.destroy();
        const ans = dnsPacket.decode(got.subarray(2)).answers ?? [];
        resolve(ans.map((a) => String((a as { data: unknown }).data)));
      }
    });
    c.on('error', reject);
  });
  assert.deepEqual(tcpAnswer, [dbIp]);
  const ptr = await inNs(appNs, ['nslookup', dbIp, gw]);
  assert.match(ptr.stdout, /name = db\.neta/, ptr.stdout);
  const nx = await inNs(appNs, ['nslookup', 'web', gw]);
  assert.doesNotMatch(nx.stdout, /Address: 10\./, 'web is not on neta');
  const ok = await inCurl(appNs, 2, [`http://${dbIp}/`]);
  assert.equal(ok.stdout, 'hello from berth\n');

  // Isolation: netb cannot reach neta.
  const otherNs = nsName(otherA.netnsPath);
  const blocked = await inCurl(otherNs, 1, [`http://${dbIp}/`]);
  assert.notEqual(blocked.code, 0, 'netb reached neta');

  // Connect the running container to neta: reachable; disconnect: not any more.
  const joined = await svc.connect('neta', other, { Aliases: ['o2'] });
  other.NetworkingConfig = { EndpointsConfig: joined.EndpointsConfig };
  const via = await inCurl(otherNs, 2, [`http://${dbIp}/`]);
  assert.equal(via.stdout, 'hello from berth\n');
  const o2 = await inNs(appNs, ['nslookup', 'o2', gw]);
  assert.match(o2.stdout, /Address: 10\./);
  assert.ok(joined.EndpointsConfig.neta, 'connect returns the endpoint for the container config');
  assert.ok(joined.NetworkSettings.Networks.neta?.IPAddress, 'and the running endpoint in its settings');
  await assert.rejects(svc.remove('neta'), /has active endpoints/);
  const left = await svc.disconnect('neta', other);
  assert.equal(left.EndpointsConfig.neta, undefined);
  const again = await inCurl(otherNs, 1, [`http://${dbIp}/`]);
  assert.notEqual(again.code, 0);

  // Published ports: loopback, host address (ephemeral), from another container via the host address.
  const webNs = nsName(webA.netnsPath);
  await httpd(webNs);
  const ports = webA.settings.Ports['80/tcp']!;
  assert.equal(ports.length, 2);
  const lo = ports.find((p) => p.HostIp === '127.0.0.1')!;
  const any = ports.find((p) => p.HostIp === '0.0.0.0')!;
  assert.equal((await curl(`http://127.0.0.1:${lo.HostPort}/`)).body, 'hello from berth\n');
  assert.equal((await curl(`http://127.0.0.1:${any.HostPort}/`)).body, 'hello from berth\n');
  const hostIp = (await runCmd('ip', ['-j', '-4', 'route', 'get', '1.1.1.1'])).stdout;
  const src = (JSON.parse(hostIp) as { prefsrc?: string }[])[0]?.prefsrc;
  if (src) {
    assert.equal((await curl(`http://${src}:${any.HostPort}/`)).body, 'hello from berth\n');
    const fromC = await inCurl(appNs, 2, [`http://${src}:${any.HostPort}/`]);
    assert.equal(fromC.stdout, 'hello from berth\n');
  }

  // UDP: an echo server in the namespace, a datagram to the published port on loopback.
  const udpRec = record('udp', {
    NetworkMode: 'netb',
    PortBindings: { '5353/udp': [{ HostIp: '127.0.0.1', HostPort: '' }] },
  });
  const udpA = await svc.attach(udpRec);
  const echo = spawn(
    'ip',
    [
      'netns',
      'exec',
      nsName(udpA.netnsPath),
      process.execPath,
      '-e',
      "const s=require('dgram').createSocket('udp4');s.on('message',(m,r)=>s.send(m,r.port,r.address));s.bind(5353,()=>console.log('ready'))",
    ],
    { stdio: ['ignore', 'pipe', 'ignore'] },
  );
  procs.push(echo);
  await new Promise((r) => echo.stdout!.once('data', r));
  const udpPort = Number(udpA.settings.Ports['5353/udp']![0].HostPort);
  const reply = await new Promise<string>((resolve) => {
    const c = dgram.createSocket('udp4');
    const timer = setTimeout(() => {
      c.close();
      resolve('timeout');
    }, 3000);
    c.on('message', (m) => {
      clearTimeout(timer);
      c.close();
      resolve(m.toString());
    });
    c.send('ping-udp', udpPort, '127.0.0.1');
  });
  assert.equal(reply, 'ping-udp');

  // Teardown leaves nothing behind (the "container" processes exit first, as they do for real).
  for (const p of procs.splice(0)) p.kill('SIGKILL');
  await new Promise((r) => setTimeout(r, 50));
  for (const r of [db, app, other, web, udpRec]) await svc.detach(r);
  await svc.detach(web); // idempotent
  for (const ns of [dbA, appA, otherA, webA].map((x) => nsName(x.netnsPath)))
    assert.ok(!existsSync(`/run/netns/${ns}`), `${ns} left`);
  // The endpoints' veths went with their namespaces; what is left on each bridge is at most the
  // veth of its spare sandbox (made in the background for the next start).
  const bridgeOf = async (n: string) =>
    n === 'bridge' ? `bt${instance}` : `bb${instance}${(await svc.inspect(n)).Id.slice(0, 7)}`;
  const onBridge = async (ifname: string) =>
    (JSON.parse((await runCmd('ip', ['-j', 'link', 'show', 'master', ifname])).stdout || '[]') as unknown[])
      .length;
  let settled = false;
  for (let i = 0; i < 160 && !settled; i++) {
    settled = true;
    for (const n of ['bridge', 'neta', 'netb']) if ((await onBridge(await bridgeOf(n))) > 1) settled = false;
    if (!settled) await new Promise((r) => setTimeout(r, 50));
  }
  assert.ok(settled, 'veths removed with their namespaces');
  const table = (await runCmd('nft', ['list', 'chain', 'ip', `berth_${instance}`, 'ports'])).stdout;
  assert.doesNotMatch(table, /dnat/);
  assert.notEqual((await curl(`http://127.0.0.1:${lo.HostPort}/`)).code, 0);
  assert.deepEqual(Object.keys((await svc.inspect('neta')).Containers), []);
  await svc.remove('neta');
  await svc.remove('netb');
  assert.doesNotMatch((await runCmd('ip', ['-br', 'link'])).stdout, new RegExp(`bb${instance}`));
});

test('bad input: clear errors and nothing half-made', async () => {
  await svc.create({ Name: 'bad1', IPAM: { Config: [{ Subnet: '10.251.7.0/24' }] } });
  await assert.rejects(svc.create({ Name: 'bad1' }), /network with name bad1 already exists/);
  await assert.rejects(
    svc.create({ Name: 'bad2', IPAM: { Config: [{ Subnet: '10.251.7.128/25' }] } }),
    /overlaps/,
  );
  await assert.rejects(
    svc.create({ Name: 'bad3', IPAM: { Config: [{ Subnet: '10.251.8.0/24', Gateway: '10.9.9.9' }] } }),
    /no matching subnet/,
  );
  await assert.rejects(
    svc.create({ Name: 'bad4', Driver: 'macvlan', Options: { parent: 'nosuch0' } }),
    /parent interface was not found/,
  );
  await assert.rejects(svc.create({ Name: 'bad5', Driver: 'nosuch' }), /plugin "nosuch" not found/);
  assert.deepEqual(
    (await svc.list(new Map())).map((n) => n.Name).sort(),
    [
      'bad1',
      'bridge',
      'host',
      'none',
      ...(await svc.list(new Map([['name', ['net']]]))).map((n) => n.Name),
    ].sort(),
  );
  const outside = record(
    'outside',
    { NetworkMode: 'bad1' },
    { EndpointsConfig: { bad1: { IPAMConfig: { IPv4Address: '10.1.1.1' } } } },
  );
  await assert.rejects(svc.validate(outside), /does not belong/);
  await assert.rejects(
    svc.validate(record('unknown', { NetworkMode: 'nosuchnet' })),
    /network nosuchnet not found/,
  );

  // A host port held by a host process: the attach fails and leaves no namespace or lease.
  const holder = net.createServer();
  await new Promise<void>((r) => holder.listen(0, '127.0.0.1', () => r()));
  const port = (holder.address() as net.AddressInfo).port;
  try {
    const taken = record('taken', {
      NetworkMode: 'bad1',
      PortBindings: { '80/tcp': [{ HostIp: '127.0.0.1', HostPort: String(port) }] },
    });
    const mine = (n: string) => n.startsWith(`berth${instance}-`) && !n.startsWith(`berth${instance}-s`);
    const before = (await fs.readdir('/run/netns').catch(() => [])).filter(mine);
    await assert.rejects(svc.attach(taken), /port is already allocated/);
    const after2 = (await fs.readdir('/run/netns').catch(() => [])).filter(mine);
    assert.deepEqual(after2, before);
    assert.deepEqual((await svc.inspect('bad1')).Containers, {});
    const vethOfTaken = hostNames(instance).veth(taken.Id, (await svc.inspect('bad1')).Id);
    assert.ok(!(await vethsOf(instance)).includes(vethOfTaken), 'no veth of the failed start');
  } finally {
    holder.close();
  }
  // Fixed address twice.
  const f1 = record(
    'f1',
    { NetworkMode: 'bad1' },
    { EndpointsConfig: { bad1: { IPAMConfig: { IPv4Address: '10.251.7.50' } } } },
  );
  const f2 = record(
    'f2',
    { NetworkMode: 'bad1' },
    { EndpointsConfig: { bad1: { IPAMConfig: { IPv4Address: '10.251.7.50' } } } },
  );
  const a1 = await svc.attach(f1);
  assert.deepEqual(a1.addresses, ['10.251.7.50']);
  await assert.rejects(svc.attach(f2), /Address already in use/);
  await svc.detach(f1);
  await svc.remove('bad1');
});

test('macvlan on a veth parent; host and none modes', async () => {
  const parent = `vb${instance}mvp`;
  await runCmd('ip', ['link', 'add', parent, 'type', 'veth', 'peer', 'name', `vb${instance}mvq`]);
  await runCmd('ip', ['link', 'set', `vb${instance}mvq`, 'up']);
  await svc.create({
    Name: 'mv',
    Driver: 'macvlan',
    Options: { parent },
    IPAM: { Config: [{ Subnet: '10.252.9.0/24', Gateway: '10.252.9.254' }] },
  });
  const m1 = record('m1', { NetworkMode: 'mv' });
  const m2 = record('m2', { NetworkMode: 'mv' });
  const a1 = await svc.attach(m1);
  const a2 = await svc.attach(m2);
  assert.equal(a1.addresses[0], '10.252.9.1');
  const ping = await inNs(nsName(a1.netnsPath), ['ping', '-c', '1', '-W', '2', a2.addresses[0]]);
  assert.equal(ping.code, 0, ping.stdout + ping.stderr);
  await svc.detach(m1);
  await svc.detach(m2);
  await svc.remove('mv');

  // --internal: no default route out, and the bridge's traffic to other links is dropped.
  await svc.create({ Name: 'inner', Internal: true });
  const ir = record('inner1', { NetworkMode: 'inner' });
  const ia = await svc.attach(ir);
  const routes = await runCmd('ip', ['-n', nsName(ia.netnsPath), 'route']);
  assert.doesNotMatch(routes.stdout, /default/);
  const rules = (await runCmd('nft', ['list', 'chain', 'ip', `berth_${instance}`, 'forward'])).stdout;
  assert.match(rules, /iifname "bb[0-9a-f]+" oifname != "bb[0-9a-f]+" drop/);
  await svc.detach(ir);
  await svc.remove('inner');

  const h = await svc.attach(record('h', { NetworkMode: 'host' }));
  assert.equal(h.hostNetwork, true);
  assert.equal(h.netnsPath, undefined);
  const n = await svc.attach(record('n', { NetworkMode: 'none' }));
  assert.equal(n.hostNetwork, false);
  assert.equal(n.netnsPath, undefined);
  assert.deepEqual(Object.keys(n.settings.Networks), ['none']);
});

test('restart: running sandboxes keep ports; DNS comes back; gone ones are reconciled', async () => {
  await svc.create({ Name: 'rs' });
  const keep = record('keep', {
    NetworkMode: 'rs',
    PortBindings: { '80/tcp': [{ HostIp: '127.0.0.1', HostPort: '' }] },
  });
  const gone = record('gone', {
    NetworkMode: 'rs',
    PortBindings: { '80/tcp': [{ HostIp: '127.0.0.1', HostPort: '' }] },
  });
  const ka = await svc.attach(keep);
  const ga = await svc.attach(gone);
  await httpd(nsName(ka.netnsPath));
  const port = ka.settings.Ports['80/tcp']![0].HostPort;
  const gonePort = ga.settings.Ports['80/tcp']![0].HostPort;
  await svc.close();
  // Daemon down: the published port still answers.
  assert.equal((await curl(`http://127.0.0.1:${port}/`)).body, 'hello from berth\n');
  svc = await openNetworkService({ config: config(), events: new EventBus(), containers: directory });
  await svc.restore([keep]);
  assert.equal((await curl(`http://127.0.0.1:${port}/`)).body, 'hello from berth\n');
  const gw = (await svc.inspect('rs')).IPAM.Config[0].Gateway!;
  const r = await inNs(nsName(ka.netnsPath), ['nslookup', 'keep', gw]);
  assert.match(r.stdout, new RegExp(`Address: ${ka.addresses[0].replace(/\./g, '\\.')}`));
  assert.ok(!existsSync(ga.netnsPath!), 'the gone container namespace was removed');
  const table = (await runCmd('nft', ['list', 'chain', 'ip', `berth_${instance}`, 'ports'])).stdout;
  assert.doesNotMatch(table, new RegExp(`dport ${gonePort} `));
  await svc.detach(keep);
  await svc.remove('rs');
});

test('forwarding on: unknown names go to the upstream resolver (a local one here)', async () => {
  const tag = randomBytes(3).toString('hex');
  const base2 = mkdtempSync(path.join(tmpdir(), 'berth-netlayer-fwd-'));
  const upstreamIp = '127.0.0.77';
  const upstream = dgram.createSocket('udp4');
  upstream.on('message', (msg, rinfo) => {
    const q = dnsPacket.decode(msg);
    const reply = dnsPacket.encode({
      type: 'response',
      id: q.id,
      flags: dnsPacket.RECURSION_AVAILABLE,
      questions: q.questions,
      answers: (q.questions ?? [])
        .filter((x) => x.type === 'A' && x.name === 'outside.example')
        .map((x) => ({ type: 'A' as const, name: x.name, ttl: 60, data: '192.0.2.99' })),
    });
    upstream.send(reply, rinfo.port, rinfo.address);
  });
  await new Promise<void>((r) => upstream.bind(53, upstreamIp, () => r()));
  const c = defaultConfig();
  c.dataRoot = path.join(base2, 'data');
  c.execRoot = path.join(base2, 'run');
  c.instance = tag;
  c.dnsForward = true;
  c.dns = [upstreamIp];
  finalizeConfig(c);
  const svc2 = await openNetworkService({ config: c, events: new EventBus(), containers: directory });
  try {
    await svc2.create({ Name: 'fw' });
    const r = record('fwc', { NetworkMode: 'fw' });
    const a = await svc2.attach(r);
    const gw = (await svc2.inspect('fw')).IPAM.Config[0].Gateway!;
    const res = await inNs(nsName(a.netnsPath), ['nslookup', 'outside.example', gw]);
    assert.match(res.stdout, /Address: 192\.0\.2\.99/, res.stdout + res.stderr);
    const own = await inNs(nsName(a.netnsPath), ['nslookup', 'fwc', gw]);
    assert.match(own.stdout, new RegExp(`Address: ${a.addresses[0].replace(/\./g, '\\.')}`));
    await svc2.detach(r);
  } finally {
    await svc2.close();
    upstream.close();
    await cleanupNetwork(tag, base2);
    await fs.rm(base2, { recursive: true, force: true });
  }
});
