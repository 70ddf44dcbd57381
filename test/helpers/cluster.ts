/**
 * Several berthd "hosts" on one machine for multi-host tests: an underlay bridge in the root
 * namespace (a private 10.231.N.0/24), one network namespace per host joined to it by a veth, and
 * etcd (1 or 3 members) in a namespace of its own on the same underlay. Everything is named
 * `bxo<tag>…` and removed by `destroy()`, also after a failure.
 */
import { type ChildProcess, spawn } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { mkdtempSync, promises as fs } from 'node:fs';
import * as http from 'node:http';
import { tmpdir } from 'node:os';
import * as path from 'node:path';
import { startDaemon, type TestDaemon } from './daemon.js';
import { runCmd } from './run.js';

const sh = async (cmd: string, args: string[]) => {
  const r = await runCmd(cmd, args, { timeoutMs: 20_000 });
  if (r.code !== 0) throw new Error(`${cmd} ${args.join(' ')}: ${r.stderr}`);
  return r.stdout;
};

/** Polls `fn` until it returns a truthy value (bounded); the last error in the message. */
export async function until<T>(
  what: string,
  fn: () => Promise<T | undefined | false>,
  timeoutMs = 20_000,
): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  let last: unknown;
  for (;;) {
    try {
      const v = await fn();
      if (v) return v;
    } catch (err) {
      last = err;
    }
    if (Date.now() > deadline)
      throw new Error(`timed out waiting for ${what}${last ? `: ${String(last)}` : ''}`);
    await new Promise((r) => setTimeout(r, 100));
  }
}

/** GET on a daemon's API socket, JSON body. */
export function apiGet<T = Record<string, unknown>>(d: TestDaemon, p: string): Promise<T> {
  return new Promise((resolve, reject) => {
    const req = http.get({ socketPath: d.socket, path: p }, (res) => {
      let body = '';
      res.on('data', (c: Buffer) => (body += c.toString()));
      res.on('end', () => {
        try {
          resolve(JSON.parse(body) as T);
        } catch (err) {
          reject(err);
        }
      });
    });
    req.on('error', reject);
  });
}

interface EtcdMember {
  name: string;
  client: string;
  peer: string;
  dir: string;
  proc?: ChildProcess;
}

export class TestCluster {
  readonly tag = randomBytes(3).toString('hex');
  readonly n = 1 + (randomBytes(1)[0] % 250);
  readonly bridge = `bxo${this.tag}`;
  readonly etcdNs = `bxo${this.tag}e`;
  readonly etcdAddr = `10.231.${this.n}.2`;
  readonly base = mkdtempSync(path.join(tmpdir(), 'berth-cluster-'));
  readonly members: EtcdMember[] = [];
  readonly hosts: TestDaemon[] = [];
  private readonly namespaces: string[] = [];
  private madeBridge = false;

  get store(): string {
    return `etcd://${this.members.map((m) => new URL(m.client).host).join(',')}`;
  }

  hostNs(i: number): string {
    return `bxo${this.tag}h${i}`;
  }

  hostAddr(i: number): string {
    return `10.231.${this.n}.${10 + i}`;
  }

  async underlay(): Promise<void> {
    await sh('ip', ['link', 'add', this.bridge, 'type', 'bridge']);
    this.madeBridge = true;
    await sh('ip', ['addr', 'add', `10.231.${this.n}.1/24`, 'dev', this.bridge]);
    await sh('ip', ['link', 'set', this.bridge, 'up']);
    await this.attachNs(this.etcdNs, 'e', this.etcdAddr);
  }

  private async attachNs(ns: string, suffix: string, addr: string): Promise<void> {
    await sh('ip', ['netns', 'add', ns]);
    this.namespaces.push(ns);
    const outer = `bxo${this.tag}v${suffix}`;
    await sh('ip', ['link', 'add', outer, 'type', 'veth', 'peer', 'name', 'ul0', 'netns', ns]);
    await sh('ip', ['link', 'set', outer, 'master', this.bridge, 'up']);
    await sh('ip', ['-n', ns, 'addr', 'add', `${addr}/24`, 'dev', 'ul0']);
    await sh('ip', ['-n', ns, 'link', 'set', 'ul0', 'up']);
    await sh('ip', ['-n', ns, 'link', 'set', 'lo', 'up']);
  }

  /** etcd with `count` members (one address, one port pair each) in the etcd namespace. */
  async startEtcd(count: number): Promise<void> {
    for (let i = 0; i < count; i++)
      this.members.push({
        name: `m${i}`,
        client: `http://${this.etcdAddr}:${2379 + 2 * i}`,
        peer: `http://${this.etcdAddr}:${2380 + 2 * i}`,
        dir: path.join(this.base, `etcd-m${i}`),
      });
    for (let i = 0; i < count; i++) this.startMember(i);
    await until('etcd to be healthy', async () => {
      const r = await this.etcdctl(['endpoint', 'health']);
      return r.code === 0;
    });
  }

  startMember(i: number): void {
    const m = this.members[i];
    const initial = this.members.map((x) => `${x.name}=${x.peer}`).join(',');
    const proc = spawn(
      'nsenter',
      [
        `--net=/run/netns/${this.etcdNs}`,
        '--',
        'etcd',
        '--name',
        m.name,
        '--data-dir',
        m.dir,
        '--listen-client-urls',
        m.client,
        '--advertise-client-urls',
        m.client,
        '--listen-peer-urls',
        m.peer,
        '--initial-advertise-peer-urls',
        m.peer,
        '--initial-cluster',
        initial,
        '--initial-cluster-token',
        `bxo${this.tag}`,
        '--log-level',
        'error',
      ],
      { stdio: ['ignore', 'ignore', 'pipe'] },
    );
    proc.stderr!.resume();
    m.proc = proc;
  }

  async stopMember(i: number): Promise<void> {
    const p = this.members[i].proc;
    if (!p || p.exitCode !== null || p.signalCode !== null) return;
    const done = new Promise<void>((r) => p.once('exit', () => r()));
    p.kill('SIGKILL');
    await done;
  }

  /** etcdctl against the members that are up (from the root namespace, over the underlay). */
  etcdctl(args: string[], members = this.members) {
    return runCmd(
      'etcdctl',
      [
        '--endpoints',
        members.map((m) => m.client).join(','),
        '--dial-timeout',
        '2s',
        '--command-timeout',
        '3s',
        ...args,
      ],
      {
        timeoutMs: 15_000,
        env: { ...process.env, ETCDCTL_API: '3' },
      },
    );
  }

  async keys(prefix = '/berth/'): Promise<string[]> {
    const r = await this.etcdctl(['get', '--prefix', '--keys-only', prefix]);
    if (r.code !== 0) throw new Error(r.stderr);
    return r.stdout.split('\n').filter(Boolean);
  }

  /** Host `i`: a namespace on the underlay and a berthd in it joined to the cluster store. */
  async addHost(i: number, extra: string[] = [], base?: string): Promise<TestDaemon> {
    if (!this.namespaces.includes(this.hostNs(i)))
      await this.attachNs(this.hostNs(i), `h${i}`, this.hostAddr(i));
    const d = await startDaemon({
      base,
      wrap: ['nsenter', `--net=/run/netns/${this.hostNs(i)}`, '--'],
      args: [
        '--bip',
        `10.232.${this.n}.${1 + 16 * i}/28`,
        '--cluster-store',
        this.store,
        '--cluster-advertise',
        'ul0',
        '--cluster-store-opt',
        'discovery.ttl=3',
        ...extra,
      ],
    });
    this.hosts[i] = d;
    return d;
  }

  async destroy(): Promise<void> {
    for (const d of this.hosts) if (d) await d.destroy().catch(() => {});
    for (let i = 0; i < this.members.length; i++) await this.stopMember(i).catch(() => {});
    for (const ns of this.namespaces)
      await runCmd('ip', ['netns', 'del', ns], { timeoutMs: 10_000 }).catch(() => {});
    if (this.madeBridge)
      await runCmd('ip', ['link', 'del', this.bridge], { timeoutMs: 10_000 }).catch(() => {});
    await fs.rm(this.base, { recursive: true, force: true });
  }
}
