/**
 * Networking benchmark (not a test). Prints ratios against references measured in the same run:
 *
 * 1. The cost networking adds to a container start:
 *    a. at the network layer: `attach`+`detach` of a bridge endpoint vs `--network none`
 *       (netns, veth, address, route, state write), medians;
 *    b. end to end, `docker run --rm busybox true` bridge vs `--network none` against a real berthd,
 *       when the daemon can run containers (skipped with a note otherwise).
 * 2. A published port on loopback vs a direct connection to the container's address:
 *    bulk throughput (one connection, 512 MiB) and new connections per second.
 *
 * Targets (issue 4): bridge adds < 30 ms to a start; the published port carries ≥ 80 % of the
 * direct bulk throughput and ≥ 80 % of its connections per second.
 *
 *   node --import tsx bench/network.ts [--iterations N]
 */
import { type ChildProcess, spawn } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { mkdtempSync, promises as fs } from 'node:fs';
import * as net from 'node:net';
import { tmpdir } from 'node:os';
import * as path from 'node:path';
import type { ContainerRecord } from '../src/model/container.js';
import { defaultConfig, finalizeConfig } from '../src/daemon/config.js';
import { EventBus } from '../src/model/events.js';
import { openNetworkService } from '../src/network/service.js';
import { startDaemon } from '../test/helpers/daemon.js';
import { cleanupNetwork } from '../test/helpers/network-cleanup.js';

const iterations = Number(process.argv[process.argv.indexOf('--iterations') + 1]) || 30;
const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)];
const fmt = (n: number) => n.toFixed(1);

function record(mode: string, ports: ContainerRecord['HostConfig']['PortBindings'] = {}): ContainerRecord {
  const id = randomBytes(32).toString('hex');
  return {
    Id: id,
    Name: `/bench-${id.slice(0, 6)}`,
    Config: { Hostname: id.slice(0, 12) },
    HostConfig: { NetworkMode: mode, PortBindings: ports },
    NetworkingConfig: {},
    State: { Running: true, Pid: 0 },
    NetworkSettings: { Bridge: '', SandboxID: '', SandboxKey: '', Ports: {}, Networks: {} },
  } as unknown as ContainerRecord;
}

/**
 * A server inside the namespace: `B<n>` streams n bytes; anything else gets one byte back, and the
 * client closes first (so TIME_WAIT stays on the host side, whose port allocator knows it).
 */
const SERVER = `
const net = require('node:net');
const chunk = Buffer.alloc(1 << 20, 120);
const handler = (s) => {
  s.once('data', (b) => {
    if (b[0] === 66) { let left = Number(b.toString().slice(1)); const pump = () => { while (left > 0) { left -= chunk.length; if (!s.write(chunk)) return s.once('drain', pump); } s.end(); }; pump(); }
    else s.write('k');
  });
  s.on('end', () => s.end());
  s.on('error', () => {});
};
// 8000 is reached directly, 8001 through the published port: separate tuples, so the NAT's
// conntrack entries of one run cannot collide with the other's direct connections.
net.createServer(handler).listen(8000, '0.0.0.0', () => net.createServer(handler).listen(8001, '0.0.0.0', () => console.log('ready')));
`;

function startServer(ns: string): Promise<ChildProcess> {
  return new Promise((resolve, reject) => {
    const p = spawn('ip', ['netns', 'exec', ns, process.execPath, '-e', SERVER], {
      stdio: ['ignore', 'pipe', 'inherit'],
    });
    p.stdout!.once('data', () => resolve(p));
    p.once('exit', (c) => reject(new Error(`server exited ${c}`)));
  });
}

function bulk(host: string, port: number, bytes: number): Promise<number> {
  return new Promise((resolve, reject) => {
    const t0 = performance.now();
    let got = 0;
    const s = net.connect(port, host, () => s.write(`B${bytes}`));
    s.on('data', (b) => (got += b.length));
    s.on('end', () => resolve((got / 2 ** 20 / (performance.now() - t0)) * 1000));
    s.on('error', reject);
  });
}

async function connRate(host: string, port: number, ms: number, parallel = 8): Promise<number> {
  let n = 0;
  const end = performance.now() + ms;
  const worker = async () => {
    while (performance.now() < end) {
      await new Promise<void>((resolve, reject) => {
        const s = net.connect(port, host, () => s.write('c'));
        s.once('data', () => s.end());
        s.on('close', () => {
          n++;
          resolve();
        });
        s.on('error', reject);
      });
    }
  };
  await Promise.all(Array.from({ length: parallel }, worker));
  return (n / ms) * 1000;
}

async function layerBench(): Promise<void> {
  const instance = randomBytes(3).toString('hex');
  const base = mkdtempSync(path.join(tmpdir(), 'berth-netbench-'));
  const c = defaultConfig();
  c.dataRoot = path.join(base, 'data');
  c.execRoot = path.join(base, 'run');
  c.instance = instance;
  c.dnsForward = false;
  finalizeConfig(c);
  const directory = {
    get: (): ContainerRecord => {
      throw new Error('none');
    },
    list: () => [],
  };
  const svc = await openNetworkService({ config: c, events: new EventBus(), containers: directory });
  let server: ChildProcess | undefined;
  try {
    // Interleaved (none, bridge, none, bridge…) so that load from elsewhere hits both alike. A
    // start's path is `attach`; `detach` runs at exit. Between them a container runs: 100 ms here,
    // in which the service makes the next spare sandbox (as it would while a container runs).
    const once = async (mode: string) => {
      const r = record(mode);
      const t0 = performance.now();
      await svc.attach(r);
      const t1 = performance.now();
      await new Promise((res) => setTimeout(res, 100));
      const t2 = performance.now();
      await svc.detach(r);
      return { attach: t1 - t0, detach: performance.now() - t2 };
    };
    await once('default'); // warm-up
    const aNone: number[] = [];
    const aBridge: number[] = [];
    const dNone: number[] = [];
    const dBridge: number[] = [];
    for (let i = 0; i < iterations; i++) {
      const n = await once('none');
      const b = await once('default');
      aNone.push(n.attach);
      dNone.push(n.detach);
      aBridge.push(b.attach);
      dBridge.push(b.detach);
    }
    console.log(
      `network layer (median of ${iterations}, interleaved): attach none ${fmt(median(aNone))} ms, bridge ${fmt(median(aBridge))} ms → bridge adds ${fmt(median(aBridge) - median(aNone))} ms to a start (target < 30 ms); detach none ${fmt(median(dNone))} ms, bridge ${fmt(median(dBridge))} ms`,
    );
    const r = record('default', { '8001/tcp': [{ HostIp: '127.0.0.1', HostPort: '' }] });
    const a = await svc.attach(r);
    server = await startServer(path.basename(a.netnsPath!));
    const direct = a.addresses[0];
    const hostPort = Number(a.settings.Ports['8001/tcp']![0].HostPort);
    const bytes = 256 * 2 ** 20;
    await bulk(direct, 8000, 64 * 2 ** 20);
    const bd: number[] = [];
    const bp: number[] = [];
    const bulkRatios: number[] = [];
    for (let i = 0; i < 6; i++) {
      const x = await bulk(direct, 8000, bytes);
      const y = await bulk('127.0.0.1', hostPort, bytes);
      bd.push(x);
      bp.push(y);
      bulkRatios.push(y / x);
    }
    const cds: number[] = [];
    const cps: number[] = [];
    const ratios: number[] = [];
    for (let i = 0; i < 8; i++) {
      const p = await connRate('127.0.0.1', hostPort, 750);
      const q = await connRate(direct, 8000, 750);
      cps.push(p);
      cds.push(q);
      ratios.push(p / q);
    }
    const cd = median(cds);
    const cp = median(cps);
    console.log(
      `bulk throughput: direct ${fmt(median(bd))} MiB/s, published 127.0.0.1:${hostPort} ${fmt(median(bp))} MiB/s, ratio ${fmt((median(bp) / median(bd)) * 100)} %, median of paired ratios ${fmt(median(bulkRatios) * 100)} % (target ≥ 80 %)`,
    );
    console.log(
      `new connections/s: direct ${fmt(cd)}, published ${fmt(cp)}, ratio ${fmt((cp / cd) * 100)} %, median of paired ratios ${fmt(median(ratios) * 100)} % (target ≥ 80 %)`,
    );
    server.kill('SIGKILL');
    server = undefined;
    await svc.detach(r);
  } finally {
    server?.kill('SIGKILL');
    await svc.close();
    await cleanupNetwork(instance, base);
    await fs.rm(base, { recursive: true, force: true });
  }
}

async function runBench(): Promise<void> {
  const d = await startDaemon();
  try {
    const probe = await d.docker(['run', '--rm', '--network', 'none', 'busybox', 'true'], {
      timeoutMs: 60_000,
    });
    if (probe.code !== 0) {
      console.log(
        `docker run --rm: skipped, this daemon cannot run containers yet (${probe.stderr.trim().split('\n').pop()})`,
      );
      return;
    }
    const once = async (args: string[]) => {
      const t0 = performance.now();
      const r = await d.docker(['run', '--rm', ...args, 'busybox', 'true'], { timeoutMs: 60_000 });
      if (r.code !== 0) throw new Error(r.stderr);
      return performance.now() - t0;
    };
    await once([]);
    const xsNone: number[] = [];
    const xsBridge: number[] = [];
    for (let i = 0; i < Math.min(iterations, 15); i++) {
      xsNone.push(await once(['--network', 'none']));
      xsBridge.push(await once([]));
    }
    const none = median(xsNone);
    const bridge = median(xsBridge);
    console.log(
      `docker run --rm busybox true (median, interleaved): --network none ${fmt(none)} ms, bridge ${fmt(bridge)} ms, bridge adds ${fmt(bridge - none)} ms (target < 30 ms), ratio ${fmt(bridge / none)}`,
    );
  } finally {
    await d.destroy();
  }
}

await layerBench();
await runBench();
