/**
 * The host side of networking, through iproute2: links, addresses, routes, network namespaces
 * and the sysctls berthd needs. Batches several commands into one `ip -batch` process where it can
 * (a process start costs a few milliseconds; container start time matters).
 */
import { promises as fs } from 'node:fs';
import { run } from '../util/exec.js';
import { type Cidr, parseCidr } from './ipam.js';

/** Runs `ip` commands (one per line) in one process, on the host or inside a named netns. */
export async function ipBatch(lines: string[], netns?: string, allowFail = false): Promise<void> {
  if (lines.length === 0) return;
  const force = allowFail ? ['-force'] : [];
  const args = netns ? ['-n', netns, ...force, '-batch', '-'] : [...force, '-batch', '-'];
  await run('ip', args, { input: lines.join('\n') + '\n', allowFail });
}

export async function linkExists(name: string, netns?: string): Promise<boolean> {
  const args = netns ? ['-n', netns, 'link', 'show', 'dev', name] : ['link', 'show', 'dev', name];
  const r = await run('ip', args, { allowFail: true });
  return r.code === 0;
}

export interface LinkInfo {
  ifname: string;
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
