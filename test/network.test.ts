/**
 * Real containers on real bridges, driven with the docker CLI against a real berthd:
 * container-to-container by name and alias, published ports answered on 127.0.0.1, isolation
 * between two user networks, connect/disconnect of a running container, a daemon restart with
 * running containers whose ports and DNS still work, and nothing left on the host afterwards.
 * Containers get only the embedded DNS or `--dns 127.0.0.1`; forwarding is off (test daemon).
 */
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { promises as fs } from 'node:fs';
import * as net from 'node:net';
import * as path from 'node:path';
import { after, before, test } from 'node:test';
import { startDaemon, type TestDaemon } from './helpers/daemon.js';
import { runCmd } from './helpers/run.js';

let d: TestDaemon;
let instance = '';

async function ok(args: string[]): Promise<string> {
  const r = await d.docker(args, { timeoutMs: 60_000 });
  assert.equal(r.code, 0, `docker ${args.join(' ')}: ${r.stderr}`);
  return r.stdout.trim();
}

/** An HTTP GET from inside a container (busybox wget; `timeout` bounds it). */
function wgetIn(container: string, url: string, secs = 3) {
  return d.docker(['exec', container, 'timeout', String(secs), 'wget', '-q', '-O', '-', url], {
    timeoutMs: 30_000,
  });
}

async function curl(url: string): Promise<string> {
  const r = await runCmd('curl', ['-s', '--max-time', '3', url], { timeoutMs: 10_000 });
  return r.code === 0 ? r.stdout : `curl exit ${r.code}`;
}

async function freePort(): Promise<number> {
  const s = net.createServer();
  await new Promise<void>((r) => s.listen(0, '127.0.0.1', () => r()));
  const p = (s.address() as net.AddressInfo).port;
  await new Promise<void>((r) => s.close(() => r()));
  return p;
}

/** A web server container serving its own name. */
async function web(name: string, args: string[]): Promise<void> {
  await ok([
    'run',
    '-d',
    '--name',
    name,
    ...args,
    'busybox',
    'sh',
    '-c',
    `mkdir -p /www && echo ${name} > /www/index.html && exec httpd -f -p 80 -h /www`,
  ]);
}

async function poll(fn: () => Promise<boolean>, ms = 5000): Promise<boolean> {
  const end = Date.now() + ms;
  while (Date.now() < end) {
    if (await fn()) return true;
    await new Promise((r) => setTimeout(r, 50));
  }
  return fn();
}

before(async () => {
  d = await startDaemon();
  instance = createHash('sha256').update(path.join(d.base, 'data')).digest('hex').slice(0, 6);
});

after(async () => {
  await d?.destroy();
  const links = (JSON.parse((await runCmd('ip', ['-j', 'link', 'show'])).stdout) as { ifname: string }[]).map(
    (l) => l.ifname,
  );
  assert.deepEqual(
    links.filter(
      (l) => l === `bt${instance}` || l.startsWith(`bb${instance}`) || l.startsWith(`vb${instance}`),
    ),
    [],
  );
  const ns = (await fs.readdir('/run/netns').catch(() => [] as string[])).filter((n) =>
    n.startsWith(`berth${instance}-`),
  );
  assert.deepEqual(ns, []);
  assert.notEqual((await runCmd('nft', ['list', 'table', 'ip', `berth_${instance}`])).code, 0);
});

test('default bridge: address, route, resolv.conf, published port on 127.0.0.1', async () => {
  const port = await freePort();
  await web('w0', ['--dns', '127.0.0.1', '-p', `127.0.0.1:${port}:80`, '-p', '80']);
  const insp = JSON.parse(await ok(['inspect', 'w0']))[0];
  const ep = insp.NetworkSettings.Networks.bridge;
  assert.match(ep.IPAddress, /^\d+\.\d+\.\d+\.\d+$/);
  const route = await ok(['exec', 'w0', 'ip', 'route']);
  assert.match(route, new RegExp(`default via ${ep.Gateway.replace(/\./g, '\\.')}`));
  assert.match(await ok(['exec', 'w0', 'cat', '/etc/resolv.conf']), /^nameserver 127\.0\.0\.1$/m);
  assert.ok(
    await poll(async () => (await curl(`http://127.0.0.1:${port}/`)) === 'w0\n'),
    'published port answers',
  );
  const ports = await ok(['port', 'w0']);
  assert.match(ports, new RegExp(`80/tcp -> 127\\.0\\.0\\.1:${port}`));
  assert.match(ports, /80\/tcp -> 0\.0\.0\.0:\d+/);
  const eph = Number(/0\.0\.0\.0:(\d+)/.exec(ports)![1]);
  assert.equal(await curl(`http://127.0.0.1:${eph}/`), 'w0\n');
  // Hairpin: the container reaches its own published port through a host address.
  const hostRoute = JSON.parse(
    (await runCmd('ip', ['-j', '-4', 'route', 'get', '1.1.1.1'])).stdout || '[]',
  ) as { prefsrc?: string }[];
  const hostAddr = hostRoute[0]?.prefsrc;
  if (hostAddr) assert.equal((await wgetIn('w0', `http://${hostAddr}:${eph}/`)).stdout, 'w0\n');
  // A taken host port: a clear error, nothing half-made.
  const dup = await d.docker(
    ['run', '-d', '--name', 'w0b', '-p', `127.0.0.1:${port}:80`, 'busybox', 'true'],
    { timeoutMs: 60_000 },
  );
  assert.notEqual(dup.code, 0);
  assert.match(dup.stderr, /port is already allocated/);
  await ok(['rm', '-f', 'w0', 'w0b']);
  assert.notEqual(await curl(`http://127.0.0.1:${port}/`), 'w0\n', 'rule removed with the container');
});

test('user networks: names, aliases, short IDs, isolation, connect/disconnect', async () => {
  await ok(['network', 'create', 'front']);
  await ok(['network', 'create', 'back']);
  await web('api', ['--network', 'front', '--network-alias', 'service']);
  await ok(['run', '-d', '--name', 'client', '--network', 'front', 'busybox', 'sleep', '300']);
  await ok(['run', '-d', '--name', 'outsider', '--network', 'back', 'busybox', 'sleep', '300']);
  const apiId = (await ok(['inspect', '-f', '{{.Id}}', 'api'])).slice(0, 12);
  assert.match(await ok(['exec', 'client', 'cat', '/etc/resolv.conf']), /^nameserver \d+\.\d+\.\d+\.\d+$/m);
  for (const name of ['api', 'service', apiId]) {
    const r = await wgetIn('client', `http://${name}/`);
    assert.equal(r.stdout, 'api\n', `${name}: ${r.stderr}`);
  }
  const apiIp = await ok(['inspect', '-f', '{{.NetworkSettings.Networks.front.IPAddress}}', 'api']);
  const blocked = await wgetIn('outsider', `http://${apiIp}/`, 1);
  assert.notEqual(blocked.stdout, 'api\n', 'back reached front');
  const unknown = await d.docker(['exec', 'outsider', 'nslookup', 'api'], { timeoutMs: 30_000 });
  assert.doesNotMatch(unknown.stdout, new RegExp(apiIp.replace(/\./g, '\\.')));

  await ok(['network', 'connect', '--alias', 'o', 'front', 'outsider']);
  assert.equal((await wgetIn('outsider', 'http://service/')).stdout, 'api\n');
  assert.match(await ok(['exec', 'outsider', 'ip', 'addr']), /eth1/);
  const rm = await d.docker(['network', 'rm', 'front']);
  assert.match(rm.stderr, /has active endpoints/);
  await ok(['network', 'disconnect', 'front', 'outsider']);
  assert.notEqual((await wgetIn('outsider', `http://${apiIp}/`, 1)).stdout, 'api\n');
  assert.doesNotMatch(await ok(['exec', 'outsider', 'ip', 'addr']), /eth1/);
  await ok(['rm', '-f', 'api', 'client', 'outsider']);
  await ok(['network', 'rm', 'front', 'back']);
});

test('-P with --expose, container: mode, --add-host, --dns-search/--dns-option, --link', async () => {
  await web('pa', [
    '--expose',
    '80',
    '-P',
    '--dns',
    '127.0.0.1',
    '--dns-search',
    'example.test',
    '--dns-option',
    'ndots:2',
    '--add-host',
    'db.local:10.1.2.3',
  ]);
  const m = /0\.0\.0\.0:(\d+)/.exec(await ok(['port', 'pa', '80/tcp']));
  assert.ok(m, 'ephemeral host port for the exposed port');
  assert.ok(await poll(async () => (await curl(`http://127.0.0.1:${m[1]}/`)) === 'pa\n'));
  const resolv = await ok(['exec', 'pa', 'cat', '/etc/resolv.conf']);
  assert.match(resolv, /^search example\.test$/m);
  assert.match(resolv, /^options ndots:2$/m);
  assert.match(await ok(['exec', 'pa', 'cat', '/etc/hosts']), /^10\.1\.2\.3\s+db\.local$/m);
  const ip = await ok(['inspect', '-f', '{{.NetworkSettings.Networks.bridge.IPAddress}}', 'pa']);
  const shared = await ok(['run', '--rm', '--network', 'container:pa', 'busybox', 'ip', '-o', '-4', 'addr']);
  assert.match(shared, new RegExp(`inet ${ip.replace(/\./g, '\\.')}/`));
  const linked = await ok([
    'run',
    '--rm',
    '--dns',
    '127.0.0.1',
    '--link',
    'pa:webby',
    'busybox',
    'cat',
    '/etc/hosts',
  ]);
  assert.match(linked, new RegExp(`^${ip.replace(/\./g, '\\.')}\\s+webby\\b`, 'm'));
  await ok(['rm', '-f', 'pa']);
});

test('a stopped container keeps its networks but no address or ports', async () => {
  await ok(['run', '-d', '--name', 'st', '-p', '127.0.0.1::80', 'busybox', 'sleep', '300']);
  assert.match(
    await ok(['inspect', '-f', '{{.NetworkSettings.Networks.bridge.IPAddress}}', 'st']),
    /^\d+\.\d+\.\d+\.\d+$/,
  );
  await ok(['stop', '-t', '1', 'st']);
  assert.equal(
    await ok([
      'inspect',
      '-f',
      '{{.NetworkSettings.Networks.bridge.IPAddress}}|{{len .NetworkSettings.Ports}}',
      'st',
    ]),
    '|0',
  );
  assert.equal(await ok(['port', 'st']), '');
  await ok(['rm', 'st']);
});

test('bad input at run: unknown network, address outside the subnet; a fixed address', async () => {
  // 404 as moby answers it (the docker CLI then tries to pull the image, which berthd refuses).
  const unknown = await runCmd('curl', [
    '-s',
    '-w',
    '\n%{http_code}',
    '--unix-socket',
    d.socket,
    '-H',
    'Content-Type: application/json',
    '-d',
    JSON.stringify({ Image: 'busybox', Cmd: ['true'], HostConfig: { NetworkMode: 'nosuchnet' } }),
    'http://localhost/v1.50/containers/create',
  ]);
  assert.match(unknown.stdout, /network nosuchnet not found[\s\S]*\n404$/);
  await ok(['network', 'create', '--subnet', '10.253.50.0/24', 'fixed']);
  const outside = await d.docker(
    ['run', '--rm', '--network', 'fixed', '--ip', '10.253.51.9', 'busybox', 'true'],
    { timeoutMs: 60_000 },
  );
  assert.equal(outside.code, 125);
  assert.match(outside.stderr, /does not belong to any of this network's subnets/);
  const fixedIp = await ok([
    'run',
    '--rm',
    '--network',
    'fixed',
    '--ip',
    '10.253.50.9',
    'busybox',
    'ip',
    '-o',
    '-4',
    'addr',
    'show',
    'eth0',
  ]);
  assert.match(fixedIp, /inet 10\.253\.50\.9\/24/);
  await ok(['network', 'rm', 'fixed']);
});

test('a container that died while the daemon was down leaves no rule once it is back', async () => {
  const port = await freePort();
  await web('crash', ['-p', `127.0.0.1:${port}:80`]);
  assert.ok(await poll(async () => (await curl(`http://127.0.0.1:${port}/`)) === 'crash\n'));
  const pid = Number(await ok(['inspect', '-f', '{{.State.Pid}}', 'crash']));
  assert.ok(pid > 1);
  await d.stop('SIGKILL');
  process.kill(pid, 'SIGKILL');
  await d.start();
  assert.ok(
    await poll(
      async () =>
        !(await runCmd('nft', ['list', 'chain', 'ip', `berth_${instance}`, 'ports'])).stdout.includes(
          `dport ${port} `,
        ),
    ),
    'the port rule of the dead container is gone',
  );
  assert.notEqual(await curl(`http://127.0.0.1:${port}/`), 'crash\n');
  await ok(['rm', '-f', 'crash']);
});

test('connect a created container (with --ip): it starts on both networks', async () => {
  await ok(['network', 'create', '--subnet', '10.253.60.0/24', 'extra']);
  await ok(['create', '--name', 'two', '--dns', '127.0.0.1', 'busybox', 'sleep', '300']);
  await ok(['network', 'connect', '--ip', '10.253.60.7', '--alias', 'second', 'extra', 'two']);
  await ok(['start', 'two']);
  const addrs = await ok(['exec', 'two', 'ip', '-o', '-4', 'addr']);
  assert.match(addrs, /eth0/);
  assert.match(addrs, /eth1\s+inet 10\.253\.60\.7\/24/);
  const nets = await ok([
    'inspect',
    '-f',
    '{{range $k, $v := .NetworkSettings.Networks}}{{$k}}={{$v.IPAddress}} {{end}}',
    'two',
  ]);
  assert.match(nets, /bridge=\d+\.\d+\.\d+\.\d+/);
  assert.match(nets, /extra=10\.253\.60\.7/);
  await ok(['rm', '-f', 'two']);
  await ok(['network', 'rm', 'extra']);
});

test('host and none', async () => {
  const none = await ok(['run', '--rm', '--network', 'none', 'busybox', 'ip', '-o', 'link']);
  assert.deepEqual(
    none
      .split('\n')
      .map((l) => l.split(':')[1].trim())
      .sort(),
    ['lo'],
  );
  const host = await ok(['run', '--rm', '--network', 'host', 'busybox', 'ip', '-o', 'link']);
  assert.match(host, /eth0|lo/);
  assert.ok(
    host.split('\n').length >= (await runCmd('ip', ['-o', 'link'])).stdout.trim().split('\n').length - 5,
  );
});

test('daemon restart: running containers keep ports and DNS', async () => {
  const port = await freePort();
  await ok(['network', 'create', 'keep']);
  await web('kw', ['--network', 'keep', '-p', `127.0.0.1:${port}:80`]);
  await ok(['run', '-d', '--name', 'kc', '--network', 'keep', 'busybox', 'sleep', '300']);
  assert.ok(await poll(async () => (await curl(`http://127.0.0.1:${port}/`)) === 'kw\n'));
  await d.stop();
  assert.equal(await curl(`http://127.0.0.1:${port}/`), 'kw\n', 'port works while the daemon is down');
  await d.start();
  assert.equal(await curl(`http://127.0.0.1:${port}/`), 'kw\n');
  assert.equal((await wgetIn('kc', 'http://kw/')).stdout, 'kw\n');
  await ok(['rm', '-f', 'kw', 'kc']);
  await ok(['network', 'rm', 'keep']);
});
