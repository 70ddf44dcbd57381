/**
 * The host side of networking, through iproute2: links, addresses, routes, network namespaces
 * and the sysctls berthd needs. Batches several commands into one `ip -batch` process where it can
 * (a process start costs a few milliseconds; container start time matters).
 */
import { randomBytes } from 'node:crypto';
import { promises as fs } from 'node:fs';
import { tmpdir } from 'node:os';
import * as path from 'node:path';
import { systemError } from '../util/errors.js';
import { run } from '../util/exec.js';
import { type Cidr, parseCidr } from './ipam.js';
import { ResidentProcess } from '../util/resident-process.js';
import { ShellPool } from '../util/shell-pool.js';

/**
 * One long-lived `ip -force -batch -` process: starting a process from the daemon costs 5–25 ms
 * (more under load), about as much as the kernel work of a whole endpoint. Commands are written to
 * its stdin; after each group a marker command that fails on purpose (`link show dev <marker>`)
 * tells, on stderr, that the group is done, and any other error line before it is the group's.
 * Commands for a namespace run as `netns exec NAME ip -batch FILE` (a fork of ip, not of node).
 */
class IpShell {
  private current?: ResidentProcess<string[]>;
  private seq = 0;

  exec(lines: string[]): Promise<string[]> {
    if (!this.current?.alive) this.current = new ResidentProcess('ip', ['-force', '-batch', '-'], takeIpMarker);
    const marker = `zq${(this.seq++ % 0xffffffff).toString(16).padStart(8, '0')}`;
    return this.current.run(`${lines.join('\n')}\nlink show dev ${marker}\n`, marker);
  }

  close(): void {
    this.current?.end();
    this.current = undefined;
  }
}

/** The marker is a device that does not exist; the error lines before it are the group's. */
function takeIpMarker(err: string, marker: string): { result: string[]; rest: string } | undefined {
  const tag = `Device "${marker}" does not exist.`;
  const i = err.indexOf(tag);
  if (i < 0) return undefined;
  const result = err
    .slice(0, i)
    .split('\n')
    .map((l) => l.trim())
    .filter((l) => l && !/^Command failed -:\d+$/.test(l));
  return { result, rest: err.slice(i + tag.length) };
}

/**
 * A long-lived shell (the shared ShellPool) for commands in a namespace: `ip -n NS -batch FILE`
 * (setns only; `ip netns exec` would also unshare a mount namespace and remount /sys). A fork of
 * sh costs about a millisecond, a process start from node 5–25 ms.
 */
const nsShell = new ShellPool(1);

/** Runs one command line (arguments must need no quoting); its output lines when it fails. */
async function shExec(cmd: string): Promise<string[]> {
  const r = await nsShell.runLine(cmd);
  if (r.code === 0) return [];
  const lines = r.output
    .split('\n')
    .map((l) => l.trim())
    .filter((l) => l);
  return lines.length ? lines : [`exit ${r.code}`];
}

const shell = new IpShell();
let scratch = '';

/** Where namespace command files are written (a directory of the daemon's exec root). */
export async function setIpScratchDir(dir: string): Promise<void> {
  await fs.mkdir(dir, { recursive: true });
  scratch = dir;
}

export function closeIpShell(): void {
  shell.close();
  nsShell.close();
}

/** Runs `ip` commands (one per line), on the host or inside a named netns; throws on any error unless `allowFail`. */
export async function ipBatch(lines: string[], netns?: string, allowFail = false): Promise<void> {
  if (lines.length === 0) return;
  let errors: string[];
  if (netns) {
    const dir = scratch || tmpdir();
    const file = path.join(dir, `ns-${randomBytes(6).toString('hex')}.batch`);
    await fs.writeFile(file, lines.join('\n') + '\n');
    try {
      errors = await shExec(`ip -n ${netns} ${allowFail ? '-force ' : ''}-batch ${file}`);
    } finally {
      await fs.rm(file, { force: true });
    }
  } else {
    // The shell runs with -force: a failing line does not stop the group; the caller rolls back.
    errors = await shell.exec(lines);
  }
  if (errors.length && !allowFail) throw systemError(`ip: ${errors.join('; ')}`);
}

export async function linkExists(name: string, netns?: string): Promise<boolean> {
  const args = netns ? ['-n', netns, 'link', 'show', 'dev', name] : ['link', 'show', 'dev', name];
  const r = await run('ip', args, { allowFail: true });
  return r.code === 0;
}

export interface LinkInfo {
  ifname: string;
  master?: string;
  link_type?: string;
  linkinfo?: { info_kind?: string };
  operstate?: string;
}

export async function listLinks(): Promise<LinkInfo[]> {
  const r = await run('ip', ['-j', '-d', 'link', 'show']);
  return JSON.parse(r.stdout || '[]') as LinkInfo[];
}

/** Every IPv4 prefix routed on the host (to avoid handing out subnets that are in use). */
export async function hostRoutes(): Promise<{ cidr: Cidr; dev: string }[]> {
  const r = await run('ip', ['-j', '-4', 'route', 'show', 'table', 'all'], { allowFail: true });
  const out: { cidr: Cidr; dev: string }[] = [];
  for (const route of JSON.parse(r.stdout || '[]') as { dst: string; dev?: string; type?: string }[]) {
    if (!route.dst || route.dst === 'default' || route.type === 'local' || route.type === 'broadcast')
      continue;
    if (route.dst.startsWith('127.')) continue;
    try {
      out.push({
        cidr: parseCidr(route.dst.includes('/') ? route.dst : `${route.dst}/32`),
        dev: route.dev ?? '',
      });
    } catch {}
  }
  return out;
}

export async function listNetns(): Promise<string[]> {
  try {
    return await fs.readdir('/run/netns');
  } catch {
    return [];
  }
}

export function netnsPath(name: string): string {
  return `/run/netns/${name}`;
}

/** The address containers on user networks are given as their resolver (Docker's). */
export const RESOLVER_ADDRESS = '127.0.0.11';

/**
 * Makes Docker's resolver address work inside a namespace: 127.0.0.11:53 (UDP and TCP) is
 * redirected to the embedded DNS on the network's gateway. Queries leave with the container's own
 * address (masquerade: the resolver answers per asking container) and the replies come back to a
 * loopback address through eth0, which needs route_localnet in that namespace. One process:
 * nsenter joins the network namespace only.
 */
export async function redirectResolver(netns: string, gateway: string): Promise<void> {
  const rules = [
    'table ip berth_resolver {',
    '  chain out {',
    '    type nat hook output priority -100; policy accept;',
    `    ip daddr ${RESOLVER_ADDRESS} udp dport 53 dnat to ${gateway}:53`,
    `    ip daddr ${RESOLVER_ADDRESS} tcp dport 53 dnat to ${gateway}:53`,
    '  }',
    '  chain post {',
    '    type nat hook postrouting priority 100; policy accept;',
    `    ip saddr 127.0.0.0/8 ip daddr ${gateway} masquerade`,
    '  }',
    '}',
  ].join('\n');
  const file = path.join(scratch || tmpdir(), `resolver-${randomBytes(6).toString('hex')}.nft`);
  await fs.writeFile(file, `${rules}\n`);
  try {
    const errors = await shExec(`nsenter --net=${netnsPath(netns)} sh -c 'echo 1 > /proc/sys/net/ipv4/conf/all/route_localnet && nft -f ${file}' 2>&1`);
    if (errors.length) throw systemError(`cannot redirect the container's resolver address: ${errors.join('; ')}`);
  } finally {
    await fs.rm(file, { force: true });
  }
}

export async function setSysctl(key: string, value: string): Promise<void> {
  const file = `/proc/sys/${key.replace(/\./g, '/')}`;
  const cur = (await fs.readFile(file, 'utf8').catch(() => '')).trim();
  if (cur !== value) await fs.writeFile(file, value);
}

/** Nameservers, search domains and options of the host's resolver configuration. */
export async function hostResolvConf(): Promise<{
  nameservers: string[];
  search: string[];
  options: string[];
}> {
  const text = await fs.readFile('/etc/resolv.conf', 'utf8').catch(() => '');
  const res = { nameservers: [] as string[], search: [] as string[], options: [] as string[] };
  for (const line of text.split('\n')) {
    const [k, ...v] = line.trim().split(/\s+/);
    if (k === 'nameserver' && v[0]) res.nameservers.push(v[0]);
    else if (k === 'search' || k === 'domain') res.search = v;
    else if (k === 'options') res.options.push(...v);
  }
  return res;
}
